"""Figures: attention maps, training curves, positional encodings, embeddings.

Every function takes data (arrays, tensors, metrics) and writes or returns a
matplotlib figure; nothing here trains or loads models.
"""

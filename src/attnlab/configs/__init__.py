"""Configuration dataclasses shared by more than one engine, kept torch-free.

They sit in the base layer (with `config`, `errors`, `checkpoint`), so the NumPy engine
(`scratch/`) and the PyTorch models (`models/`) can both import them without `scratch`
depending on `models`. Today: `attnlab.configs.gpt` (`GPTConfig`, `GPT_PRESETS`).
"""

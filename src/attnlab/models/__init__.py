"""Models: one readable file a model, each with its frozen config dataclass and presets.

Import the model you need, e.g. `from attnlab.models.gpt import GPT, GPTConfig`.
`attnlab.models.registry` maps the `model_type` stored in a checkpoint to its class.
"""

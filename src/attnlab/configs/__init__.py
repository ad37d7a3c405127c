"""Configuration dataclasses shared by more than one engine, kept torch-free.

They sit in the base layer (with `config`, `errors`, `checkpoint`), so the NumPy engine
(`scratch/`) and the PyTorch models (`models/`) can both import them without `scratch`
depending on `models`. `attnlab.configs.base` holds what every model config shares
(`IGNORE_INDEX`, the `Literal` field types, the checks, `PresetsMixin`, `BlockShape`,
`TransformerConfig`); `attnlab.configs.gpt` holds `GPTConfig` and `GPT_PRESETS`.
"""

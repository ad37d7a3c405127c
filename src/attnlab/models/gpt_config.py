"""The GPT configuration, re-exported from its torch-free home `attnlab.configs.gpt`.

`GPTConfig` lives below both engines so that the NumPy engine (`scratch/`) never imports
`models/` (README, "Design": scratch and nn know nothing above them). Existing imports
`from attnlab.models.gpt_config import GPTConfig` keep working.
"""

from attnlab.configs.gpt import GPT_PRESETS, Activation, GPTConfig, Positional

__all__ = ["GPTConfig", "GPT_PRESETS", "Positional", "Activation"]

"""How to pick each next token: `SamplingConfig`, its defaults and its checks. Torch-free.

One configuration and one set of defaults for every sampler: the PyTorch decoders
(`attnlab.decoding`), the NumPy GPT (`attnlab.scratch.gpt.NumpyGPT.generate`), the CLI
(`attnlab generate`) and the app's Generate page. It sits in the base layer (README,
"Design"), so the NumPy engine imports it without importing torch or the decoders.

The rules every sampler follows (Fan et al. 2018 for top-k; Holtzman et al. 2020 for
top-p "nucleus" sampling):
  1. a temperature <= 0 means greedy decoding: the most likely token (the lowest id on a tie);
  2. else the logits, shifted so that their maximum is 0, are divided by the temperature
     (T < 1 sharpens, T > 1 flattens);
  3. top-k keeps every token whose logit is at least the k-th largest (a tie with the
     k-th is kept; k >= V keeps all);
  4. top-p sorts the tokens by probability (a tie: the lower id first) and keeps the
     shortest prefix whose probabilities add up to at least p; the most likely token is
     always kept, however small p;
  5. sample from the softmax of what is left.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

from attnlab import limits
from attnlab.errors import ConfigError

DEFAULT_TEMPERATURE = 0.8  # what the CLI, the app and the library start from: a little sharper than the model
DEFAULT_MAX_NEW_TOKENS = 200  # tokens generated when nothing else is asked


@dataclass(frozen=True)
class SamplingConfig:
    """How to pick each next token (see the module docstring for the rules)."""

    max_new_tokens: int = DEFAULT_MAX_NEW_TOKENS  # tokens to generate
    temperature: float = DEFAULT_TEMPERATURE  # <= 0 means greedy
    top_k: int | None = None  # keep only the k most likely tokens (None = all)
    top_p: float | None = None  # keep the smallest set with probability >= p (None = all)
    seed: int | None = None  # seed for sampling; None = nondeterministic
    use_cache: bool = True  # reuse keys/values of earlier positions (engines without a cache ignore it)
    stop_at_eos: bool = False  # stop when the tokenizer's end-of-sequence token is produced

    def __post_init__(self) -> None:
        if self.max_new_tokens < 0:
            raise ConfigError(f"max_new_tokens must be >= 0, got {self.max_new_tokens}")
        if math.isnan(self.temperature) or math.isinf(self.temperature):
            raise ConfigError(f"temperature must be a finite number, got {self.temperature}")
        if self.top_k is not None and self.top_k < 1:
            raise ConfigError(f"top_k must be at least 1 (or omitted for no limit), got {self.top_k}")
        if self.top_p is not None and not (0.0 < self.top_p <= 1.0):
            raise ConfigError(f"top_p must be in (0, 1], got {self.top_p}")
        limits.check_int(
            self.max_new_tokens,
            "max_new_tokens",
            0,
            limits.MAX_NEW_TOKENS,
            hint="generate in several calls, each continuing the last",
        )
        if self.top_k is not None:
            limits.check_int(self.top_k, "top_k", 1, limits.MAX_TOP_K)
        if self.seed is not None:
            limits.check_seed(self.seed, "seed")
        if 0 < self.temperature < limits.MIN_TEMPERATURE or self.temperature > limits.MAX_TEMPERATURE:
            raise ConfigError(
                f"temperature must be 0 (or less) for greedy decoding, or from {limits.MIN_TEMPERATURE:g} to "
                f"{limits.MAX_TEMPERATURE:g}, got {self.temperature:g} (a smaller positive temperature overflows "
                "the softmax)"
            )

    @property
    def greedy(self) -> bool:
        """True when the temperature is <= 0: always the most likely token."""
        return self.temperature <= 0


__all__ = ["DEFAULT_MAX_NEW_TOKENS", "DEFAULT_TEMPERATURE", "SamplingConfig"]

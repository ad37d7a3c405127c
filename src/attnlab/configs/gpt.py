"""The GPT configuration, shared by the PyTorch GPT (`models/gpt.py`) and the NumPy GPT
(`scratch/gpt.py`). Torch-free on purpose, so the NumPy engine never imports torch, and
below both engines in the layering (README, "Design"): `scratch` may import it without
importing `models`. `attnlab.models.gpt_config` and `attnlab.models.gpt` re-export it.

Architecture (GPT-2 style, Radford et al. 2019; nanoGPT's layout):
    x = tok_emb[idx] + pos_emb[0:T]          (B, T, C)
    for each block (pre-norm):  x = x + attn(norm1(x));  x = x + ff(norm2(x))
    logits = norm(x) @ tok_emb.weight^T      (B, T, V)   (weight tying)
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from typing import Any, Literal

from attnlab.errors import ConfigError

Positional = Literal["learned", "sinusoidal", "fourier", "rotary", "none"]
Activation = Literal["gelu", "gelu_tanh", "relu"]


@dataclass(frozen=True)
class GPTConfig:
    """Hyper-parameters of a decoder-only transformer (GPT)."""

    vocab_size: int = 65  # number of token ids; set from the tokenizer at training time
    max_seq_len: int = 64  # context length: the most tokens the model sees at once
    num_layers: int = 4  # transformer blocks
    num_heads: int = 4  # attention heads per block; must divide embed_dim
    embed_dim: int = 128  # width of the residual stream (C)
    ff_dim: int | None = None  # hidden width of the feed-forward layer; None = 4 * embed_dim
    dropout: float = 0.0  # dropout on attention weights, residual branches and embeddings
    bias: bool = False  # biases in linear layers and LayerNorms (GPT-2 uses them; nanoGPT's CPU example does not)
    tie_weights: bool = True  # output head shares the token-embedding matrix
    positional: Positional = "learned"  # position information: learned table, sinusoidal, fourier, rotary or none
    activation: Activation = "gelu"  # feed-forward non-linearity (GPT-2 uses gelu_tanh)
    norm_first: bool = True  # pre-norm blocks (GPT-2) or post-norm (original transformer)
    layer_norm_eps: float = 1e-5  # epsilon inside LayerNorm
    init_std: float = 0.02  # std of the normal initialisation of weights
    rope_base: float = 10000.0  # base of the rotary frequencies (positional = rotary)

    def __post_init__(self) -> None:
        for name in ("vocab_size", "max_seq_len", "num_layers", "num_heads", "embed_dim"):
            if getattr(self, name) < 1:
                raise ConfigError(f"model.{name} must be at least 1, got {getattr(self, name)}")
        if self.embed_dim % self.num_heads:
            raise ConfigError(
                f"model.embed_dim ({self.embed_dim}) must be divisible by model.num_heads ({self.num_heads})"
            )
        if self.positional == "rotary" and self.head_dim % 2:
            raise ConfigError(f"rotary positions need an even head size, got {self.head_dim}")
        if self.positional in ("sinusoidal", "fourier") and self.embed_dim % 2:
            raise ConfigError(f"{self.positional} positions need an even model.embed_dim, got {self.embed_dim}")
        if self.ff_dim is not None and self.ff_dim < 1:
            raise ConfigError(f"model.ff_dim must be at least 1, got {self.ff_dim}")
        if not 0.0 <= self.dropout < 1.0:
            raise ConfigError(f"model.dropout must be in [0, 1), got {self.dropout}")
        if not (0 < self.layer_norm_eps < float("inf")) or not (0 < self.init_std < float("inf")):  # NaN fails too
            raise ConfigError("model.layer_norm_eps and model.init_std must be positive")
        if not 0 < self.rope_base < float("inf"):  # base ** (-2i / D): a base <= 0 has no real powers
            raise ConfigError(f"model.rope_base must be a positive number (10000 in the RoFormer paper), got {self.rope_base}")

    @property
    def head_dim(self) -> int:
        """Size of one head (D = C / H)."""
        return self.embed_dim // self.num_heads

    @property
    def hidden_dim(self) -> int:
        """Hidden width of the feed-forward layer."""
        return self.ff_dim if self.ff_dim is not None else 4 * self.embed_dim

    @classmethod
    def from_name(cls, name: str, **overrides: Any) -> "GPTConfig":
        """A named preset (`nano`, `baby`, `small`), optionally with fields overridden."""
        if name not in GPT_PRESETS:
            raise ConfigError(f"unknown GPT preset {name!r}; choose one of: {', '.join(GPT_PRESETS)}")
        return dataclasses.replace(cls(**GPT_PRESETS[name]), **overrides)


GPT_PRESETS: dict[str, dict[str, Any]] = {
    # Two tiny layers: fast enough for unit tests.
    "nano": dict(max_seq_len=32, num_layers=2, num_heads=2, embed_dim=32),
    # nanoGPT's CPU example for tiny Shakespeare: 4 layers, 4 heads, 128 dims, context 64,
    # with rotary positions instead of a learned table: on tiny Shakespeare with nanoGPT's
    # settings they reach a validation loss of 1.77 instead of 1.88-1.91 after 2,000 steps
    # (benchmarks/RESULTS.md). `--model.positional=learned` gives nanoGPT's model exactly.
    "baby": dict(max_seq_len=64, num_layers=4, num_heads=4, embed_dim=128, positional="rotary"),
    # nanoGPT's shakespeare-char model (6 layers, 6 heads, 384 dims, context 256), rotary too.
    "small": dict(max_seq_len=256, num_layers=6, num_heads=6, embed_dim=384, dropout=0.2, positional="rotary"),
}

"""What the model configurations share: field types, checks, presets and the block shape.

Torch-free, so the NumPy engine (`scratch/`) and the PyTorch models (`models/`) can both
build on it. Every model config is a frozen dataclass built strictly from a dict
(`attnlab.config.from_dict`, which validates the `Literal` types below); its field names
and defaults are the checkpoint format, so they do not change here.

  * `IGNORE_INDEX`: the target value no loss scores (padding, unmasked tokens).
  * `Positional`, `Activation` and the narrower aliases of models that allow fewer.
  * `check_*`: the field checks, each with the one message every model gives.
  * `PresetsMixin`: `from_name(name, **overrides)` driven by the class variables
    `presets` (name -> fields) and `preset_kind` ("GPT", "encoder", ... in messages).
  * `BlockShape`: `head_dim`, `hidden_dim` and `block_kwargs()` (the keyword arguments of
    `attnlab.nn.block.TransformerBlock`) for any config with the block fields.
  * `TransformerConfig`: the fields of a token transformer (GPT, encoder, LLaMA), with
    GPT's defaults; a subclass redeclares a field to change its default.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, ClassVar, Literal, TypeVar

from attnlab.errors import ConfigError

IGNORE_INDEX = -100  # target value that is not scored (padding, unmasked tokens), as in PyTorch and HF

Positional = Literal["learned", "sinusoidal", "fourier", "rotary", "none"]
Activation = Literal["gelu", "gelu_tanh", "relu"]
EncoderPositional = Literal["learned", "sinusoidal", "rotary", "none"]  # no fourier features in the encoder
TablePositional = Literal["learned", "sinusoidal"]  # an added position table only (the sequence transformer)
BaselineActivation = Literal["relu", "gelu"]  # the MLP baseline's non-linearity

P = TypeVar("P", bound="PresetsMixin")


# ---------------------------------------------------------------------------
# Checks (one message each, whichever model asks)
# ---------------------------------------------------------------------------


def check_at_least_one(config: Any, names: Sequence[str]) -> None:
    """Each named integer field of `config` must be >= 1."""
    for name in names:
        if getattr(config, name) < 1:
            raise ConfigError(f"model.{name} must be at least 1, got {getattr(config, name)}")


def check_dropout(dropout: float) -> None:
    """A dropout probability must be in [0, 1)."""
    if not 0.0 <= dropout < 1.0:
        raise ConfigError(f"model.dropout must be in [0, 1), got {dropout}")


def check_heads(embed_dim: int, num_heads: int) -> None:
    """The heads split the model width evenly."""
    if embed_dim % num_heads:
        raise ConfigError(f"model.embed_dim ({embed_dim}) must be divisible by model.num_heads ({num_heads})")


def check_ff_dim(ff_dim: int | None, none_means: str = "") -> None:
    """A feed-forward width is None (the default width, described by `none_means` in the message) or >= 1."""
    if ff_dim is not None and ff_dim < 1:
        hint = f" (or None for {none_means})" if none_means else ""
        raise ConfigError(f"model.ff_dim must be at least 1{hint}, got {ff_dim}")


def check_positional(positional: str, embed_dim: int, head_dim: int) -> None:
    """Rotary positions rotate pairs of a head's channels; sinusoidal/fourier tables pair the model's."""
    if positional == "rotary" and head_dim % 2:
        raise ConfigError(f"rotary positions need an even head size (embed_dim / num_heads), got {head_dim}")
    if positional in ("sinusoidal", "fourier") and embed_dim % 2:
        raise ConfigError(f"{positional} positions need an even model.embed_dim, got {embed_dim}")


def check_norm_and_init(layer_norm_eps: float, init_std: float) -> None:
    """Both are positive finite numbers (NaN fails too)."""
    if not (0 < layer_norm_eps < float("inf")) or not (0 < init_std < float("inf")):
        raise ConfigError("model.layer_norm_eps and model.init_std must be positive")


def check_rope_base(rope_base: float) -> None:
    """base ** (-2i / D): a base <= 0 has no real powers."""
    if not 0 < rope_base < float("inf"):
        raise ConfigError(f"model.rope_base must be a positive number (10000 in the RoFormer paper), got {rope_base}")


# ---------------------------------------------------------------------------
# Presets and the block shape
# ---------------------------------------------------------------------------


class PresetsMixin:
    """`from_name(name, **overrides)` for a config class with `presets` and `preset_kind`."""

    presets: ClassVar[dict[str, dict[str, Any]]] = {}
    preset_kind: ClassVar[str] = "model"  # names the preset family in the "unknown ... preset" message

    @classmethod
    def from_name(cls: type[P], name: str, **overrides: Any) -> P:
        """A named preset (see the class's `presets`), optionally with fields overridden."""
        if name not in cls.presets:
            raise ConfigError(f"unknown {cls.preset_kind} preset {name!r}; choose one of: {', '.join(cls.presets)}")
        unknown = sorted(set(overrides) - {f.name for f in dataclasses.fields(cls)})  # type: ignore[arg-type]
        if unknown:
            raise ConfigError(f"unknown {cls.__name__} field(s): {', '.join(unknown)}")
        return cls(**{**cls.presets[name], **overrides})  # type: ignore[call-arg]


class BlockShape(PresetsMixin):
    """Derived sizes and block arguments of a config with the transformer-block fields.

    The config provides embed_dim, num_heads, ff_dim, dropout, activation, norm_first,
    layer_norm_eps, init_std and bias (a field, or a class constant where the model has no
    choice); `check_block_fields` also checks positional and rope_base where it has them.
    """

    embed_dim: int
    num_heads: int
    ff_dim: int | None
    dropout: float
    activation: str
    norm_first: bool
    bias: bool
    layer_norm_eps: float
    init_std: float

    @property
    def head_dim(self) -> int:
        """Size of one head (D = C / H)."""
        return self.embed_dim // self.num_heads

    @property
    def hidden_dim(self) -> int:
        """Hidden width of the feed-forward layer."""
        return self.ff_dim if self.ff_dim is not None else 4 * self.embed_dim

    def block_kwargs(self) -> dict[str, Any]:
        """Keyword arguments of `attnlab.nn.block.TransformerBlock` that come from this config."""
        return dict(
            embed_dim=self.embed_dim,
            num_heads=self.num_heads,
            hidden_dim=self.hidden_dim,
            dropout=self.dropout,
            activation=self.activation,
            norm_first=self.norm_first,
            bias=self.bias,
            layer_norm_eps=self.layer_norm_eps,
        )

    def check_block_fields(self, ff_dim_none_means: str = "") -> None:
        """The checks of the block fields (and of positional / rope_base where the config has them).

        Args:
            ff_dim_none_means: what ff_dim = None gives, for the message ("" = not said).
        """
        check_heads(self.embed_dim, self.num_heads)
        if hasattr(self, "positional"):
            check_positional(self.positional, self.embed_dim, self.head_dim)
        check_ff_dim(self.ff_dim, ff_dim_none_means)
        check_dropout(self.dropout)
        check_norm_and_init(self.layer_norm_eps, self.init_std)
        if hasattr(self, "rope_base"):
            check_rope_base(self.rope_base)


@dataclass(frozen=True)
class TransformerConfig(BlockShape):
    """The fields of a token transformer (GPT, encoder, LLaMA), with GPT's defaults."""

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
        check_at_least_one(self, ("vocab_size", "max_seq_len", "num_layers", "num_heads", "embed_dim"))
        self.check_block_fields()

"""Positional encodings: sinusoidal, regular Fourier basis, learned, and rotary (RoPE).

Attention itself is permutation-equivariant: without position information a
transformer cannot tell "dog bites man" from "man bites dog". Four ways to add it:

* Sinusoidal (Vaswani et al., 2017, sec. 3.5): PE[p, 2i] = sin(p / 10000^(2i/C)),
  PE[p, 2i+1] = cos(p / 10000^(2i/C)); geometric frequencies, added to the embeddings.
* Regular Fourier basis: the same sin/cos pairs at evenly spaced angles
  2*pi*k*p / period for k = 1 .. C/2 (period defaults to C). With period = number of
  positions the columns form an orthogonal discrete Fourier basis; positions repeat
  after `period`.
* Learned: a trainable table, one vector per position (GPT-2, BERT, ViT).
* Rotary (Su et al., 2021, "RoFormer"): rotate each (pair of) query/key channels by an
  angle proportional to the position, so that q_m . k_n depends only on m - n. Uses the
  "rotate half" channel pairing of GPT-NeoX / Hugging Face ESM-2.

Notation: T positions, C channels, B batch, H heads, D head size.
"""

from __future__ import annotations

import math

import torch
from torch import Tensor, nn


def sinusoidal_table(num_positions: int, dim: int, base: float = 10000.0) -> Tensor:
    """The (T, C) sinusoidal encoding of Vaswani et al.; sin on even, cos on odd channels."""
    if dim % 2:
        raise ValueError(f"sinusoidal encodings need an even dimension, got {dim}")
    position = torch.arange(num_positions, dtype=torch.float32)[:, None]  # (T, 1)
    inv_freq = torch.exp(-math.log(base) * torch.arange(0, dim, 2, dtype=torch.float32) / dim)  # (C/2,)
    angles = position * inv_freq  # (T, C/2)
    table = torch.empty(num_positions, dim)
    table[:, 0::2] = torch.sin(angles)
    table[:, 1::2] = torch.cos(angles)
    return table


def fourier_table(num_positions: int, dim: int, period: float | None = None) -> Tensor:
    """(T, C) regular Fourier basis: channels 2(k-1), 2(k-1)+1 = sin, cos of 2*pi*k*p/period.

    Args:
        num_positions: T.
        dim: C (even).
        period: positions per full turn of the lowest frequency; default C.
    """
    if dim % 2:
        raise ValueError(f"Fourier encodings need an even dimension, got {dim}")
    period = float(dim if period is None else period)
    position = torch.arange(num_positions, dtype=torch.float32)[:, None]  # (T, 1)
    k = torch.arange(1, dim // 2 + 1, dtype=torch.float32)  # (C/2,)
    angles = 2 * math.pi * position * k / period  # (T, C/2)
    table = torch.empty(num_positions, dim)
    table[:, 0::2] = torch.sin(angles)
    table[:, 1::2] = torch.cos(angles)
    return table


class FixedPositionalEncoding(nn.Module):
    """Adds a fixed (not trained) sinusoidal or Fourier table to (B, T, C) inputs.

    The table is a non-persistent buffer: it is rebuilt from the config, never saved.
    """

    def __init__(self, max_seq_len: int, dim: int, kind: str = "sinusoidal"):
        super().__init__()
        if kind == "sinusoidal":
            table = sinusoidal_table(max_seq_len, dim)
        elif kind == "fourier":
            table = fourier_table(max_seq_len, dim)
        else:
            raise ValueError(f"unknown fixed positional encoding {kind!r}")
        self.kind = kind
        self.register_buffer("table", table, persistent=False)

    def forward(self, positions: Tensor) -> Tensor:
        """(T,) positions -> (T, C) encodings."""
        return self.table[positions]


class LearnedPositionalEmbedding(nn.Embedding):
    """A trainable (max_seq_len, C) table; `forward(positions)` -> (T, C)."""

    def __init__(self, max_seq_len: int, dim: int):
        super().__init__(max_seq_len, dim)


def rotate_half(x: Tensor) -> Tensor:
    """(.., D) -> (.., D): [x1, x2] -> [-x2, x1] with x1, x2 the two halves of the channels."""
    x1, x2 = x.chunk(2, dim=-1)
    return torch.cat((-x2, x1), dim=-1)


def rotary_angles(positions: Tensor, head_dim: int, base: float = 10000.0) -> Tensor:
    """(T,) positions -> (T, D/2) rotation angles p * base^(-2i/D), computed in float64
    (the NumPy engine computes the very same numbers)."""
    # Python floats: the same frequencies, bit for bit, as the NumPy engine computes
    inv_freq = torch.tensor(
        [1.0 / base ** (i / head_dim) for i in range(0, head_dim, 2)], dtype=torch.float64, device=positions.device
    )
    return positions.to(torch.float64)[:, None] * inv_freq[None, :]


class RotaryEmbedding(nn.Module):
    """Rotary position embedding applied to queries and keys of shape (B, H, T, D).

    Channel i of the first half and channel i of the second half form a pair that is
    rotated by the angle p * base^(-2i/D) at position p. The cos/sin tables are
    computed in float64 and rounded to the input's dtype, so the two engines agree.

    Args:
        head_dim: D (even).
        base: frequency base (10000 in RoFormer and ESM-2).
    """

    def __init__(self, head_dim: int, base: float = 10000.0):
        super().__init__()
        if head_dim % 2:
            raise ValueError(f"rotary embeddings need an even head size, got {head_dim}")
        self.head_dim = head_dim
        self.base = base
        self._cached: tuple | None = None  # (key, cos, sin): every layer of a forward reuses it

    def cos_sin(self, positions: Tensor, dtype: torch.dtype) -> tuple[Tensor, Tensor]:
        """(T,) positions -> cos, sin tables of shape (T, D)."""
        key = (positions.device, dtype, positions.numel(), int(positions[0]) if positions.numel() else 0)
        if self._cached is not None and self._cached[0] == key:
            return self._cached[1], self._cached[2]
        angles = rotary_angles(positions, self.head_dim, self.base)  # (T, D/2)
        emb = torch.cat((angles, angles), dim=-1)  # (T, D): same angle for both channels of a pair
        cos, sin = emb.cos().to(dtype), emb.sin().to(dtype)
        self._cached = (key, cos, sin)
        return cos, sin

    def forward(self, x: Tensor, positions: Tensor, time_dim: int = -2) -> Tensor:
        """Rotate x by its positions (T,) (consecutive, as in every caller).

        Args:
            x: (..., T, D) by default, e.g. (B, H, T, D); `time_dim` says where T is
                otherwise (e.g. 1 for (B, T, 2, H, D)).
            positions: (T,) positions of x's tokens.
        """
        cos, sin = self.cos_sin(positions, x.dtype)  # (T, D)
        if time_dim not in (-2, x.dim() - 2):
            shape = [1] * x.dim()
            shape[time_dim], shape[-1] = cos.size(0), cos.size(1)
            cos, sin = cos.view(shape), sin.view(shape)
        return x * cos + rotate_half(x) * sin


def position_modules(
    kind: str, max_len: int, embed_dim: int, head_dim: int, rope_base: float = 10000.0
) -> tuple[nn.Module | None, RotaryEmbedding | None]:
    """The position modules a model config asks for: (added table, rotary).

    `kind` "learned" -> a `LearnedPositionalEmbedding` of `max_len` rows; "sinusoidal" or
    "fourier" -> a `FixedPositionalEncoding`; "rotary" -> a `RotaryEmbedding` over `head_dim`
    (applied to queries and keys inside attention, nothing added to the tokens); "none" ->
    neither. The model config has validated `kind` already.
    """
    if kind == "learned":
        return LearnedPositionalEmbedding(max_len, embed_dim), None
    if kind in ("sinusoidal", "fourier"):
        return FixedPositionalEncoding(max_len, embed_dim, kind), None
    if kind == "rotary":
        return None, RotaryEmbedding(head_dim, rope_base)
    return None, None

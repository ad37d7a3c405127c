"""Positional encodings in NumPy: sinusoidal, regular Fourier basis, and learned.

The fixed tables are the ones of `attnlab.nn.positional` (same formulas, computed in
float32 in the same order, so both engines add the same numbers):
  * sinusoidal (Vaswani et al., 2017, sec. 3.5):
        PE[p, 2i] = sin(p / 10000^(2i/C)),  PE[p, 2i+1] = cos(p / 10000^(2i/C));
  * Fourier: sin / cos of 2 pi k p / period for k = 1 .. C/2 (period defaults to C);
  * learned: a trainable (max_seq_len, C) table; its backward sums the gradient over
    the batch, row p receiving the gradient of every token at position p.
  * rotary (Su et al., 2021): queries and keys are rotated pairwise by p * base^(-2i/D);
    the rotation is linear, so its backward is the rotation by the opposite angle.

Notation: T positions, C channels, B batch.
"""

from __future__ import annotations

import math

import numpy as np

from attnlab.scratch.module import Module, as_float_dtype

__all__ = [
    "sinusoidal_table",
    "fourier_table",
    "FixedPositionalEncoding",
    "LearnedPositionalEmbedding",
    "rotate_half",
    "rotary_tables",
    "apply_rotary",
    "apply_rotary_backward",
]


def _interleave(angles: np.ndarray) -> np.ndarray:
    """(T, C/2) angles -> (T, C) table with sin on even and cos on odd channels."""
    T, half = angles.shape
    table = np.empty((T, 2 * half), dtype=np.float32)
    table[:, 0::2] = np.sin(angles.astype(np.float64))  # float64 then rounded: correctly rounded values
    table[:, 1::2] = np.cos(angles.astype(np.float64))
    return table


def sinusoidal_table(num_positions: int, dim: int, base: float = 10000.0) -> np.ndarray:
    """The (T, C) float32 sinusoidal encoding of Vaswani et al.; sin on even, cos on odd channels."""
    if dim % 2:
        raise ValueError(f"sinusoidal encodings need an even dimension, got {dim}")
    position = np.arange(num_positions, dtype=np.float32)[:, None]  # (T, 1)
    exponent = np.float32(-math.log(base)) * np.arange(0, dim, 2, dtype=np.float32) / np.float32(dim)
    inv_freq = np.exp(exponent.astype(np.float64)).astype(np.float32)  # (C/2,)
    return _interleave(position * inv_freq)  # angles (T, C/2) in float32, like the PyTorch table


def fourier_table(num_positions: int, dim: int, period: float | None = None) -> np.ndarray:
    """(T, C) float32 regular Fourier basis: channels 2(k-1), 2(k-1)+1 = sin, cos of 2 pi k p / period.

    Args:
        num_positions: T.
        dim: C (even).
        period: positions per full turn of the lowest frequency; default C.
    """
    if dim % 2:
        raise ValueError(f"Fourier encodings need an even dimension, got {dim}")
    period = float(dim if period is None else period)
    position = np.arange(num_positions, dtype=np.float32)[:, None]  # (T, 1)
    k = np.arange(1, dim // 2 + 1, dtype=np.float32)  # (C/2,)
    angles = np.float32(2 * math.pi) * position * k / np.float32(period)  # (T, C/2)
    return _interleave(angles)


class FixedPositionalEncoding(Module):
    """A fixed (not trained) sinusoidal or Fourier table; `forward(positions)` -> (T, C).

    Args:
        max_seq_len: rows of the table.
        dim: C.
        kind: "sinusoidal" or "fourier".
        dtype: dtype of the returned encodings.
    """

    def __init__(self, max_seq_len: int, dim: int, kind: str = "sinusoidal", *, dtype=np.float32):
        super().__init__()
        if kind == "sinusoidal":
            table = sinusoidal_table(max_seq_len, dim)
        elif kind == "fourier":
            table = fourier_table(max_seq_len, dim)
        else:
            raise ValueError(f"unknown fixed positional encoding {kind!r}")
        self.kind = kind
        self.table = table.astype(as_float_dtype(dtype))  # a buffer, not a parameter

    def forward(self, positions: np.ndarray) -> np.ndarray:
        """(T,) positions -> (T, C)."""
        return self.table[positions]

    def backward(self, dy: np.ndarray) -> None:
        """Nothing to learn: the gradient stops here."""
        return None


class LearnedPositionalEmbedding(Module):
    """A trainable (max_seq_len, C) table W; `forward(positions)` -> W[positions] (T, C).

    Backward: dy (B, T, C) is the gradient of the encodings added to every batch row, so
        dW[positions[t]] += sum_b dy[b, t]     (positions are distinct: no collisions).

    Args:
        max_seq_len: rows of the table.
        dim: C.
        dtype: np.float32 or np.float64.
        rng: generator for the N(0, init_std) initialisation.
        init_std: std of the initialisation.
    """

    def __init__(
        self,
        max_seq_len: int,
        dim: int,
        *,
        dtype=np.float32,
        rng: np.random.Generator | None = None,
        init_std: float = 1.0,
    ):
        super().__init__()
        rng = rng if rng is not None else np.random.default_rng(0)
        self.params["weight"] = (rng.standard_normal((max_seq_len, dim)) * init_std).astype(as_float_dtype(dtype))
        self._positions: np.ndarray | None = None

    def forward(self, positions: np.ndarray) -> np.ndarray:
        """(T,) distinct positions -> (T, C)."""
        self._positions = np.asarray(positions)
        return self.params["weight"][self._positions]

    def backward(self, dy: np.ndarray) -> None:
        """dy (B, T, C) or (T, C); adds dW to `grads`."""
        W = self.params["weight"]
        d_rows = dy.reshape(-1, *dy.shape[-2:]).sum(axis=0)  # (T, C): summed over the batch
        dW = np.zeros_like(W)
        dW[self._positions] = d_rows
        self._accumulate("weight", dW)
        self._positions = None
        return None


def rotate_half(x: np.ndarray) -> np.ndarray:
    """(.., D) -> (.., D): [x1, x2] -> [-x2, x1] with x1, x2 the two halves of the channels."""
    half = x.shape[-1] // 2
    return np.concatenate((-x[..., half:], x[..., :half]), axis=-1)


def rotary_tables(
    num_positions: int, head_dim: int, base: float = 10000.0, dtype=np.float32
) -> tuple[np.ndarray, np.ndarray]:
    """cos and sin tables (T, D) for positions 0 .. T-1, computed in float64 then rounded
    to `dtype` (exactly what attnlab.nn.positional.RotaryEmbedding does)."""
    if head_dim % 2:
        raise ValueError(f"rotary embeddings need an even head size, got {head_dim}")
    inv_freq = np.array([1.0 / base ** (i / head_dim) for i in range(0, head_dim, 2)], dtype=np.float64)  # (D/2,)
    angles = np.arange(num_positions, dtype=np.float64)[:, None] * inv_freq[None, :]  # (T, D/2)
    emb = np.concatenate((angles, angles), axis=-1)  # (T, D): one angle per channel pair
    return np.cos(emb).astype(dtype), np.sin(emb).astype(dtype)


def apply_rotary(x: np.ndarray, cos: np.ndarray, sin: np.ndarray) -> np.ndarray:
    """Rotate x (B, H, T, D) by the tables (T, D): y = x cos + rotate_half(x) sin."""
    return x * cos + rotate_half(x) * sin


def apply_rotary_backward(dy: np.ndarray, cos: np.ndarray, sin: np.ndarray) -> np.ndarray:
    """Gradient through `apply_rotary`. With R = rotate_half (R^T = -R):
    y = (cos + sin R) x  =>  dx = cos dy + R^T (sin dy) = dy cos - rotate_half(dy sin)."""
    return dy * cos - rotate_half(dy * sin)

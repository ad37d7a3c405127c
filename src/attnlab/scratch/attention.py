"""Scaled dot-product attention and multi-head self-attention in NumPy, with backward passes.

Follows "Attention Is All You Need" (Vaswani et al., 2017), sec. 3.2:
    Attention(Q, K, V) = softmax(Q K^T / sqrt(D)) V
and computes the same function as `attnlab.nn.attention.attention_naive` and
`attnlab.nn.attention.MultiHeadAttention` (fused qkv projection, rows ordered q, k, v).
Heads are a array dimension: one batched matrix product over (B, H) does every head
at once, with no Python loop over heads or positions.

Mask convention (the library's): a boolean array broadcastable to (B, H, T, S), True =
"this query may attend to this key". A query whose keys are all blocked attends to
nothing: its output is zero.

Grouped-query attention (Ainslie et al., 2023; LLaMA): with `num_kv_heads` G < H the
projection makes G key/value heads, each shared by H / G consecutive query heads; its
backward sums the gradients of the copies back into the G heads.

Notation: B batch, H heads, T query length, S key length, C model width, D head size (C / H),
G key/value heads.
"""

from __future__ import annotations

import math

import numpy as np

from attnlab.scratch.layers import Dropout, Linear, softmax, softmax_backward
from attnlab.scratch.module import Module
from attnlab.scratch.positional import apply_rotary, apply_rotary_backward, rotary_tables

__all__ = [
    "causal_mask",
    "padding_mask",
    "repeat_kv",
    "repeat_kv_backward",
    "ScaledDotProductAttention",
    "MultiHeadAttention",
]


def causal_mask(query_len: int, key_len: int | None = None) -> np.ndarray:
    """Boolean (T, S) mask letting query i attend to keys 0 .. i + (S - T).

    Example (T = S = 3):
        [[ True, False, False],
         [ True,  True, False],
         [ True,  True,  True]]
    """
    key_len = query_len if key_len is None else key_len
    if key_len < query_len:
        raise ValueError(f"causal_mask needs key_len >= query_len, got {key_len} < {query_len}")
    return np.tri(query_len, key_len, k=key_len - query_len, dtype=bool)


def padding_mask(attention_mask: np.ndarray) -> np.ndarray:
    """A Hugging Face style (B, S) mask (1 = real token, 0 = padding) -> (B, 1, 1, S) booleans."""
    attention_mask = np.asarray(attention_mask)
    if attention_mask.ndim != 2:
        raise ValueError(f"attention_mask must be (batch, seq_len), got shape {attention_mask.shape}")
    return attention_mask.astype(bool)[:, None, None, :]


def repeat_kv(x: np.ndarray, groups: int) -> np.ndarray:
    """(B, G, S, D) -> (B, G * groups, S, D): key/value head g serves query heads g*groups .. (g+1)*groups - 1."""
    return x if groups == 1 else np.repeat(x, groups, axis=1)


def repeat_kv_backward(dx: np.ndarray, groups: int) -> np.ndarray:
    """Gradient through `repeat_kv`: (B, G * groups, S, D) -> (B, G, S, D), the copies' gradients summed."""
    if groups == 1:
        return dx
    B, H, S, D = dx.shape
    return dx.reshape(B, H // groups, groups, S, D).sum(axis=2)


class ScaledDotProductAttention(Module):
    """softmax(Q K^T / sqrt(D) + mask) V for stacked heads, with dropout on the weights.

    Forward (all products batched over B and H):
        scores = Q K^T / sqrt(D)                    (B, H, T, S)
        scores = -inf where the mask is False
        A      = softmax(scores) over S             (B, H, T, S)
        A'     = dropout(A)
        out    = A' V                               (B, H, T, D)
    Backward, from dout (B, H, T, D):
        dV      = A'^T dout                          (B, H, S, D)
        dA'     = dout V^T                           (B, H, T, S)
        dA      = dropout backward of dA'
        dscores = A * (dA - sum_S(dA * A)) / sqrt(D)  (softmax backward; blocked entries get 0)
        dQ      = dscores K                          (B, H, T, D)
        dK      = dscores^T Q                        (B, H, S, D)

    Args:
        dropout: dropout probability on the attention weights (training only).
        rng: generator for the dropout masks.
    """

    def __init__(self, dropout: float = 0.0, rng: np.random.Generator | None = None):
        super().__init__()
        self.dropout = Dropout(dropout, rng)
        self.weights: np.ndarray | None = None  # (B, H, T, S) of the last forward, for inspection
        self._mask_bias_cache: dict[tuple, np.ndarray] = {}

    def _mask_bias(self, mask: np.ndarray, dtype: np.dtype) -> np.ndarray:
        """0 where the mask allows, -inf where it blocks: added to the scores."""
        return np.where(mask, dtype.type(0.0), dtype.type(-np.inf))

    def _causal_bias(self, T: int, S: int, dtype: np.dtype) -> np.ndarray:
        key = (T, S, dtype)
        if key not in self._mask_bias_cache:  # the same (T, S) table is needed every step
            self._mask_bias_cache = {key: self._mask_bias(causal_mask(T, S), dtype)}
        return self._mask_bias_cache[key]

    def forward(
        self, q: np.ndarray, k: np.ndarray, v: np.ndarray, mask: np.ndarray | None = None, is_causal: bool = False
    ) -> np.ndarray:
        """q (B, H, T, D), k (B, H, S, D), v (B, H, S, D) -> (B, H, T, D).

        Args:
            mask: boolean, broadcastable to (B, H, T, S); True = may attend.
            is_causal: also block keys after each query (queries aligned with the end of the keys).
        """
        T, S, D = q.shape[-2], k.shape[-2], q.shape[-1]
        scale = 1.0 / math.sqrt(D)
        scores = q @ k.swapaxes(-1, -2)  # (B, H, T, S)
        scores *= scale  # keeps the scores' variance ~1 so the softmax does not saturate
        if is_causal:
            scores += self._causal_bias(T, S, scores.dtype)  # (T, S) broadcasts over B, H
        if mask is not None:
            if mask.dtype != bool:
                raise TypeError(f"attention masks must be boolean (True = may attend), got {mask.dtype}")
            scores = scores + self._mask_bias(mask, scores.dtype)  # not in place: the mask may broadcast wider
        weights = softmax(scores, axis=-1)  # (B, H, T, S); all-blocked rows are 0
        dropped = self.dropout(weights)
        self.weights = weights
        self._q, self._k, self._v, self._dropped, self._scale = q, k, v, dropped, scale
        return dropped @ v  # (B, H, T, D)

    def backward(self, dout: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """dout (B, H, T, D) -> (dq, dk, dv) with the shapes of q, k, v."""
        q, k, v, dropped, weights = self._q, self._k, self._v, self._dropped, self.weights
        dv = dropped.swapaxes(-1, -2) @ dout  # (B, H, S, D)
        d_dropped = dout @ v.swapaxes(-1, -2)  # (B, H, T, S)
        d_weights = self.dropout.backward(d_dropped)
        dscores = softmax_backward(weights, d_weights)  # (B, H, T, S)
        dscores *= self._scale
        dq = dscores @ k  # (B, H, T, D)
        dk = dscores.swapaxes(-1, -2) @ q  # (B, H, S, D)
        self._q = self._k = self._v = self._dropped = None
        return dq, dk, dv


class MultiHeadAttention(Module):
    """Multi-head self-attention with a fused qkv projection.

    Forward:
        [Q K V] = x W_qkv^T + b_qkv                  (B, T, 3C), W_qkv (3C, C) rows q, k, v
        split each of Q, K, V into H heads of size D  (B, H, T, D)
        O = attention(Q, K, V)                        (B, H, T, D)
        y = merge_heads(O) W_out^T + b_out            (B, T, C)
    Backward runs these steps in reverse: the out projection, the attention, then the
    gradients of Q, K, V are put back side by side as (B, T, 3C) for the qkv projection.
    With G = num_kv_heads < H, W_qkv is ((H + 2G) D, C) with rows [q (H D) | k (G D) | v (G D)],
    K and V have G heads, repeated H / G times for the attention (`repeat_kv`).

    Args:
        embed_dim: C.
        num_heads: H (must divide C).
        dropout: dropout on the attention weights.
        bias: biases in the projections.
        dtype: np.float32 or np.float64.
        rng: generator for the initialisation.
        init_std: N(0, init_std) weights (None = PyTorch's default init).
        out_init_std: std for the output projection (GPT-2 scales it down).
        dropout_rng: generator for the dropout masks.
        rope_base: rotate queries and keys by their positions (rotary embeddings) with
            this frequency base; None = no rotation.
        num_kv_heads: key/value heads G (must divide H); None = H.
    """

    def __init__(
        self,
        embed_dim: int,
        num_heads: int,
        *,
        dropout: float = 0.0,
        bias: bool = True,
        dtype=np.float32,
        rng: np.random.Generator | None = None,
        init_std: float | None = None,
        out_init_std: float | None = None,
        dropout_rng: np.random.Generator | None = None,
        rope_base: float | None = None,
        num_kv_heads: int | None = None,
    ):
        super().__init__()
        if embed_dim % num_heads:
            raise ValueError(f"embed_dim ({embed_dim}) must be divisible by num_heads ({num_heads})")
        num_kv_heads = num_heads if num_kv_heads is None else num_kv_heads
        if num_kv_heads < 1 or num_heads % num_kv_heads:
            raise ValueError(f"num_kv_heads ({num_kv_heads}) must divide num_heads ({num_heads})")
        rng = rng if rng is not None else np.random.default_rng(0)
        self.embed_dim, self.num_heads, self.head_dim = embed_dim, num_heads, embed_dim // num_heads
        self.num_kv_heads = num_kv_heads
        qkv_dim = (num_heads + 2 * num_kv_heads) * self.head_dim
        self.qkv = Linear(embed_dim, qkv_dim, bias, dtype=dtype, rng=rng, init_std=init_std)
        self.out = Linear(
            embed_dim,
            embed_dim,
            bias,
            dtype=dtype,
            rng=rng,
            init_std=out_init_std if out_init_std is not None else init_std,
        )
        self.attention = ScaledDotProductAttention(dropout, dropout_rng)
        self.rope_base = rope_base
        self._rope: tuple[np.ndarray, np.ndarray] | None = None  # cos, sin of the last forward

    @property
    def weights(self) -> np.ndarray | None:
        """Attention weights (B, H, T, T) of the last forward pass."""
        return self.attention.weights

    def forward(self, x: np.ndarray, mask: np.ndarray | None = None, is_causal: bool = False) -> np.ndarray:
        """x (B, T, C) -> (B, T, C).

        Args:
            mask: boolean, broadcastable to (B, H, T, T); True = may attend.
            is_causal: causal self-attention.
        """
        B, T, C = x.shape
        H, D, G = self.num_heads, self.head_dim, self.num_kv_heads
        if G == H:
            qkv = self.qkv(x).reshape(B, T, 3, H, D).transpose(2, 0, 3, 1, 4)  # (3, B, H, T, D), a view
            q, k, v = qkv[0], qkv[1], qkv[2]
        else:
            qkv = self.qkv(x).reshape(B, T, H + 2 * G, D).transpose(0, 2, 1, 3)  # (B, H + 2G, T, D), a view
            q, k, v = qkv[:, :H], qkv[:, H : H + G], qkv[:, H + G :]  # (B, H, T, D), (B, G, T, D) x 2
        if self.rope_base is not None:
            cos, sin = rotary_tables(T, D, self.rope_base, x.dtype)  # (T, D) each
            q, k = apply_rotary(q, cos, sin), apply_rotary(k, cos, sin)
            self._rope = (cos, sin)
        k, v = repeat_kv(k, H // G), repeat_kv(v, H // G)  # (B, H, T, D): each kv head serves H / G query heads
        out = self.attention(q, k, v, mask=mask, is_causal=is_causal)  # (B, H, T, D)
        out = out.transpose(0, 2, 1, 3).reshape(B, T, C)  # merge heads: (B, T, H*D)
        return self.out(out)

    def backward(self, dy: np.ndarray) -> np.ndarray:
        """dy (B, T, C) -> dx (B, T, C)."""
        B, T, C = dy.shape
        H, D, G = self.num_heads, self.head_dim, self.num_kv_heads
        d_merged = self.out.backward(dy)  # (B, T, C)
        d_out = d_merged.reshape(B, T, H, D).transpose(0, 2, 1, 3)  # split heads: (B, H, T, D)
        dq, dk, dv = self.attention.backward(d_out)
        dk, dv = repeat_kv_backward(dk, H // G), repeat_kv_backward(dv, H // G)  # (B, G, T, D): copies summed
        if self.rope_base is not None:  # undo the rotation: rotate the gradients back
            cos, sin = self._rope
            dq, dk = apply_rotary_backward(dq, cos, sin), apply_rotary_backward(dk, cos, sin)
        d_qkv = np.empty((B, T, H + 2 * G, D), dtype=dy.dtype)  # the inverse of the split in forward
        d_qkv[:, :, :H] = dq.transpose(0, 2, 1, 3)
        d_qkv[:, :, H : H + G] = dk.transpose(0, 2, 1, 3)
        d_qkv[:, :, H + G :] = dv.transpose(0, 2, 1, 3)
        return self.qkv.backward(d_qkv.reshape(B, T, (H + 2 * G) * D))

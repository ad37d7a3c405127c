"""Scaled dot-product attention, masks, multi-head self- and cross-attention, KV cache.

Follows "Attention Is All You Need" (Vaswani et al., 2017), section 3.2:
    Attention(Q, K, V) = softmax(Q K^T / sqrt(d_k)) V

Notation for shapes: B batch, H heads, T query length, S key/value length,
C model width (embed_dim), D head size (C / H), G key/value heads (G divides H).

Grouped-query attention (Ainslie et al. 2023; LLaMA 2/3): keys and values have only G
heads, each shared by H / G consecutive query heads; the KV cache holds the G heads.
With G = H it is ordinary multi-head attention, G = 1 is multi-query attention.

Mask convention (the one convention of the whole library)
---------------------------------------------------------
A mask is a boolean tensor broadcastable to (B, H, T, S) in which True means
"this query may attend to this key" and False means "blocked". Helpers:
  * `causal_mask(T, S)`            (T, S): query i sees keys up to its own position.
  * `padding_mask(attention_mask)` (B, 1, 1, S) from a Hugging Face style (B, S) 0/1 mask.
  * `combine_masks(a, b)`          logical AND of masks (None means "no mask").
Other libraries differ, so convert only at the boundary:
  * `torch.nn.MultiheadAttention`: `attn_mask` / `key_padding_mask` use True = *blocked*
    (`to_torch_mha_masks`).
  * Hugging Face `attention_mask`: (B, S) with 1 = real token, 0 = padding (`padding_mask`).
  * `F.scaled_dot_product_attention` with a boolean mask: True = may attend (same as ours).
A query row whose keys are all blocked attends to nothing: its output is zero
(rather than NaN), in both the step-by-step and the fused path.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Literal

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from attnlab.nn.hooks import HookedMixin, HookPoint

AttentionImpl = Literal["auto", "naive", "fused"]


# ---------------------------------------------------------------------------
# Masks
# ---------------------------------------------------------------------------


def causal_mask(query_len: int, key_len: int | None = None, device: torch.device | str | None = None) -> Tensor:
    """Boolean (T, S) mask letting query i attend to keys 0 .. i + (S - T).

    With S > T (queries are the last T of S positions, as with a KV cache) the
    queries line up with the *end* of the keys.

    Example (T = S = 3):
        [[ True, False, False],
         [ True,  True, False],
         [ True,  True,  True]]
    """
    key_len = query_len if key_len is None else key_len
    if key_len < query_len:
        raise ValueError(f"causal_mask needs key_len >= query_len, got {key_len} < {query_len}")
    return torch.ones(query_len, key_len, dtype=torch.bool, device=device).tril(diagonal=key_len - query_len)


def padding_mask(attention_mask: Tensor) -> Tensor:
    """Turn a Hugging Face style (B, S) mask (1/True = real token) into (B, 1, 1, S) booleans."""
    if attention_mask.dim() != 2:
        raise ValueError(f"attention_mask must be (batch, seq_len), got shape {tuple(attention_mask.shape)}")
    return attention_mask.bool()[:, None, None, :]


def lengths_to_mask(lengths: Tensor, max_len: int) -> Tensor:
    """(B,) sequence lengths -> (B, max_len) boolean mask, True on real tokens."""
    return torch.arange(max_len, device=lengths.device)[None, :] < lengths[:, None]


def combine_masks(*masks: Tensor | None) -> Tensor | None:
    """Logical AND of boolean masks (broadcasting); None entries are ignored."""
    out = None
    for m in masks:
        if m is None:
            continue
        out = m if out is None else (out & m)
    return out


def to_torch_mha_masks(mask: Tensor | None) -> Tensor | None:
    """Our mask (True = may attend) -> `nn.MultiheadAttention`'s boolean mask (True = blocked)."""
    return None if mask is None else ~mask


# ---------------------------------------------------------------------------
# Scaled dot-product attention
# ---------------------------------------------------------------------------


def repeat_kv(x: Tensor, groups: int) -> Tensor:
    """(B, G, S, D) -> (B, G * groups, S, D): each key/value head serves `groups` consecutive
    query heads (Hugging Face's `repeat_kv`)."""
    return x if groups == 1 else x.repeat_interleave(groups, dim=1)


def attention_naive(
    q: Tensor, k: Tensor, v: Tensor, mask: Tensor | None = None, dropout_p: float = 0.0, training: bool = False
) -> tuple[Tensor, Tensor]:
    """Scaled dot-product attention written out step by step.

    Args:
        q: queries (B, H, T, D).
        k: keys (B, H, S, D), or (B, G, S, D) with G dividing H (grouped-query attention).
        v: values, shaped like k.
        mask: boolean, broadcastable to (B, H, T, S); True = may attend.
        dropout_p: dropout on the attention weights (only when `training`).
        training: apply dropout.
    Returns:
        (output (B, H, T, D), attention weights (B, H, T, S)).
    """
    # 0. grouped-query attention: share each key/value head among H / G query heads
    if k.size(1) != q.size(1):
        k, v = repeat_kv(k, q.size(1) // k.size(1)), repeat_kv(v, q.size(1) // v.size(1))  # (B, H, S, D)
    # 1. similarity of every query with every key
    scores = q @ k.transpose(-2, -1)  # (B, H, T, S)
    # 2. scale by 1/sqrt(D): keeps the scores' variance ~1 so softmax does not saturate
    scores = scores / math.sqrt(q.size(-1))
    # 3. blocked positions get -inf, i.e. weight exactly 0 after the softmax
    if mask is not None:
        scores = scores.masked_fill(~mask, float("-inf"))
    # 4. softmax over the keys: each query's weights sum to 1
    weights = torch.softmax(scores, dim=-1)
    if mask is not None:
        # a row with every key blocked is all -inf -> NaN; it attends to nothing instead
        weights = weights.nan_to_num(0.0)
    if dropout_p > 0.0 and training:
        weights = F.dropout(weights, p=dropout_p)
    # 5. weighted sum of the values
    return weights @ v, weights  # (B, H, T, D), (B, H, T, S)


def scaled_dot_product_attention(
    q: Tensor,
    k: Tensor,
    v: Tensor,
    mask: Tensor | None = None,
    *,
    is_causal: bool = False,
    dropout_p: float = 0.0,
    training: bool = False,
    need_weights: bool = False,
    impl: AttentionImpl = "auto",
) -> tuple[Tensor, Tensor | None]:
    """Attention through either the step-by-step path or PyTorch's fused kernel.

    Both paths compute the same function. The fused path
    (`F.scaled_dot_product_attention`) never materialises the weights, so it is used
    unless the weights are requested (`need_weights`) or `impl="naive"`.

    Args:
        q, k, v: (B, H, T, D), (B, H, S, D), (B, H, S, D); k and v may have G heads
            dividing H (grouped-query attention).
        mask: boolean, broadcastable to (B, H, T, S); True = may attend.
        is_causal: add a causal mask (queries aligned with the end of the keys).
        dropout_p: dropout on the attention weights when `training`.
        training: whether dropout is active.
        need_weights: also return the (B, H, T, S) attention weights.
        impl: "auto", "naive" (step by step) or "fused".
    Returns:
        (output (B, H, T, D), weights (B, H, T, S) or None).
    """
    if is_causal:
        mask = combine_masks(causal_mask(q.size(-2), k.size(-2), device=q.device), mask)
    if need_weights or impl == "naive":
        out, weights = attention_naive(q, k, v, mask, dropout_p, training)
        return out, (weights if need_weights else None)
    if mask is not None and mask.dtype != torch.bool:
        raise TypeError(f"attention masks must be boolean (True = may attend), got {mask.dtype}")
    p = dropout_p if training else 0.0
    gqa = {"enable_gqa": True} if k.size(1) != q.size(1) else {}  # the kernel shares key/value heads itself
    if mask is None:
        return F.scaled_dot_product_attention(q, k, v, dropout_p=p, **gqa), None
    if mask.dim() == 2 and is_causal and q.size(-2) == k.size(-2):
        # a plain square causal mask: let the kernel build it itself (faster paths)
        return F.scaled_dot_product_attention(q, k, v, dropout_p=p, is_causal=True, **gqa), None
    out = F.scaled_dot_product_attention(q, k, v, attn_mask=mask, dropout_p=p, **gqa)
    # rows with no visible key: the kernel's result is undefined (NaN); define it as 0
    has_key = mask.any(dim=-1, keepdim=True)  # (.., T, 1)
    if not bool(has_key.all()):
        out = out.masked_fill(~has_key, 0.0)
    return out, None


# ---------------------------------------------------------------------------
# KV cache
# ---------------------------------------------------------------------------


@dataclass
class LayerKVCache:
    """Keys and values of one attention layer, grown one step at a time."""

    k: Tensor | None = None  # (B, G, S, D): G key/value heads (G = H without grouped-query attention)
    v: Tensor | None = None  # (B, G, S, D)

    @property
    def length(self) -> int:
        return 0 if self.k is None else self.k.size(-2)

    def append(self, k: Tensor, v: Tensor) -> tuple[Tensor, Tensor]:
        """Add the new step(s) and return all keys and values so far."""
        if self.k is None:
            self.k, self.v = k, v
        else:
            self.k = torch.cat([self.k, k], dim=-2)
            self.v = torch.cat([self.v, v], dim=-2)
        return self.k, self.v

    def crop(self, length: int) -> None:
        """Keep the first `length` positions (drop the newest ones)."""
        if self.k is not None:
            self.k, self.v = self.k[..., :length, :], self.v[..., :length, :]


@dataclass
class KVCache:
    """One `LayerKVCache` per block (and one per cross-attention, for encoder-decoders).

    Self-attention entries grow with each generated token; cross-attention entries are
    filled once from the encoder output and reused.
    """

    num_layers: int
    layers: list[LayerKVCache] = field(default_factory=list)
    cross: list[LayerKVCache] = field(default_factory=list)

    def __post_init__(self) -> None:
        if not self.layers:
            self.layers = [LayerKVCache() for _ in range(self.num_layers)]
        if not self.cross:
            self.cross = [LayerKVCache() for _ in range(self.num_layers)]

    @property
    def length(self) -> int:
        """Number of positions already cached (the position of the next token)."""
        return self.layers[0].length if self.layers else 0

    def crop(self, length: int) -> None:
        """Forget every position from `length` on: the cache is then what feeding the first
        `length` tokens gave (the model continues at position `length`). Cross-attention
        entries, which hold the encoder's positions, are kept whole.

        Raises:
            ValueError: `length` is negative or more than is cached.
        """
        if not 0 <= length <= self.length:
            raise ValueError(f"cannot crop a cache of {self.length} positions to {length}")
        for entry in self.layers:
            entry.crop(length)

    def reorder(self, index: Tensor) -> None:
        """Keep batch rows `index` (beam search): select along the batch dimension."""
        for entry in (*self.layers, *self.cross):
            if entry.k is not None:
                entry.k = entry.k.index_select(0, index)
                entry.v = entry.v.index_select(0, index)


# ---------------------------------------------------------------------------
# Multi-head attention
# ---------------------------------------------------------------------------


class MultiHeadAttention(HookedMixin, nn.Module):
    """Multi-head attention with heads as a tensor dimension (no loop over heads).

    Self-attention projects queries, keys and values with one fused linear layer
    (`qkv`, weight (3C, C), rows ordered q, k, v as in `nn.MultiheadAttention`'s
    `in_proj_weight`). Cross-attention (`cross=True`) projects queries from `x` with
    `q` and keys/values from `context` with a fused `kv` layer.

    Grouped-query attention (`num_kv_heads` G < H, self-attention only): `qkv`'s weight is
    ((H + 2G) D, C), rows [q (H D) | k (G D) | v (G D)]; the cache stores the G key/value
    heads and each serves H / G consecutive query heads.

    Args:
        embed_dim: model width C.
        num_heads: number of heads H (must divide C).
        cross: build a cross-attention layer instead of self-attention.
        context_dim: width of `context` for cross-attention (default C).
        dropout: dropout on the attention weights.
        bias: biases in the projections.
        rotary: a `RotaryEmbedding` applied to queries and keys (self-attention only).
        impl: "auto" (fused unless weights are requested), "naive" or "fused".
        num_kv_heads: key/value heads G (must divide H); None = H.

    Hook points (`attnlab.nn.hooks`; called only while `hooked`, which also takes the
    step-by-step path): `hook_q` (B, T, H, D), `hook_k` / `hook_v` (B, T, G, D) of this
    call's new positions (after the rotary rotation, TransformerLens's `hook_rot_q`/`hook_rot_k`
    for rotary models), `hook_attn_scores` (B, H, T, S) scaled and masked (-inf) scores,
    `hook_pattern` (B, H, T, S) the weights, `hook_z` (B, T, H, D) each head's weighted
    values before the output projection.
    """

    def __init__(
        self,
        embed_dim: int,
        num_heads: int,
        *,
        cross: bool = False,
        context_dim: int | None = None,
        dropout: float = 0.0,
        bias: bool = True,
        rotary: nn.Module | None = None,
        impl: AttentionImpl = "auto",
        num_kv_heads: int | None = None,
    ):
        super().__init__()
        if embed_dim % num_heads:
            raise ValueError(f"embed_dim ({embed_dim}) must be divisible by num_heads ({num_heads})")
        num_kv_heads = num_heads if num_kv_heads is None else num_kv_heads
        if num_kv_heads < 1 or num_heads % num_kv_heads:
            raise ValueError(f"num_kv_heads ({num_kv_heads}) must divide num_heads ({num_heads})")
        if cross and num_kv_heads != num_heads:
            raise ValueError("grouped-query attention (num_kv_heads) is for self-attention only")
        self.embed_dim = embed_dim
        self.num_heads = num_heads
        self.num_kv_heads = num_kv_heads
        self.head_dim = embed_dim // num_heads
        self.cross = cross
        self.dropout = dropout
        self.impl = impl
        if cross:
            self.q = nn.Linear(embed_dim, embed_dim, bias=bias)
            self.kv = nn.Linear(context_dim or embed_dim, 2 * embed_dim, bias=bias)
        else:
            self.qkv = nn.Linear(embed_dim, (num_heads + 2 * num_kv_heads) * self.head_dim, bias=bias)
        self.out = nn.Linear(embed_dim, embed_dim, bias=bias)
        self.rotary = rotary
        for name in ("hook_q", "hook_k", "hook_v", "hook_attn_scores", "hook_pattern", "hook_z"):
            setattr(self, name, HookPoint())

    def residual_projections(self) -> list[nn.Linear]:
        """The layers that write into the residual stream (GPT-2 scales their initialisation)."""
        return [self.out]

    def _split_heads(self, x: Tensor) -> Tensor:
        B, T, _ = x.shape
        return x.view(B, T, self.num_heads, self.head_dim).transpose(1, 2)  # (B, H, T, D)

    def forward(
        self,
        x: Tensor,
        context: Tensor | None = None,
        *,
        mask: Tensor | None = None,
        is_causal: bool = False,
        cache: LayerKVCache | None = None,
        positions: Tensor | None = None,
        need_weights: bool = False,
    ) -> tuple[Tensor, Tensor | None]:
        """Attend from `x` to itself (or to `context` for cross-attention).

        Args:
            x: (B, T, C) queries' input.
            context: (B, S, C_ctx) keys'/values' input for cross-attention. With a filled
                cross-attention cache it may be None.
            mask: boolean, broadcastable to (B, H, T, S); True = may attend.
            is_causal: add the causal mask (self-attention).
            cache: a `LayerKVCache`; self-attention appends this call's keys/values to it,
                cross-attention fills it once and then reuses it.
            positions: (T,) absolute positions of `x`'s tokens, for rotary embeddings
                (default: cache length + 0..T-1).
            need_weights: return the attention weights (B, H, T, S).
        Returns:
            (output (B, T, C), weights or None).
        """
        B, T, C = x.shape
        if self.cross:
            q = self._split_heads(self.q(x))
            if self.hooked:
                q = self._hook_qkv(q, None, None)[0]  # before k, v: the hook points fire in q, k, v order
            if cache is not None and cache.k is not None:
                k, v = cache.k, cache.v
            else:
                if context is None:
                    raise ValueError("cross-attention needs a context (the encoder output)")
                k, v = self.kv(context).split(self.embed_dim, dim=-1)
                k, v = self._split_heads(k), self._split_heads(v)  # (B, H, S, D)
                if self.hooked:  # (with a filled cache the cached, already hooked keys/values are reused)
                    k, v = self._hook_kv(k, v)
                if cache is not None:
                    cache.k, cache.v = k, v
        else:
            start = cache.length if cache is not None else 0
            if self.rotary is not None and positions is None:
                positions = torch.arange(start, start + T, device=x.device)
            if self.num_kv_heads == self.num_heads:
                qkv = self.qkv(x).view(B, T, 3, self.num_heads, self.head_dim)  # (B, T, 3, H, D)
                if self.rotary is not None:
                    # rotate queries and keys together: one set of element-wise ops, not two
                    qk = self.rotary(qkv[:, :, :2], positions, time_dim=1)  # (B, T, 2, H, D)
                    q, k = qk[:, :, 0].transpose(1, 2), qk[:, :, 1].transpose(1, 2)  # (B, H, T, D)
                else:
                    q, k = qkv[:, :, 0].transpose(1, 2), qkv[:, :, 1].transpose(1, 2)  # (B, H, T, D)
                v = qkv[:, :, 2].transpose(1, 2)  # (B, H, T, D)
            else:
                G, D = self.num_kv_heads, self.head_dim
                q, k, v = self.qkv(x).split([self.num_heads * D, G * D, G * D], dim=-1)
                q = self._split_heads(q)  # (B, H, T, D)
                k, v = k.view(B, T, G, D).transpose(1, 2), v.view(B, T, G, D).transpose(1, 2)  # (B, G, T, D)
                if self.rotary is not None:
                    q, k = self.rotary(q, positions), self.rotary(k, positions)
            if self.hooked:
                q, k, v = self._hook_qkv(q, k, v)
            if cache is not None:
                k, v = cache.append(k, v)  # (B, G, S, D) with S = start + T
            if is_causal and T == 1:
                is_causal = False  # one new query may see every cached key
        if self.hooked:
            return self._attend_hooked(q, k, v, mask, is_causal, need_weights)
        out, weights = scaled_dot_product_attention(
            q,
            k,
            v,
            mask,
            is_causal=is_causal,
            dropout_p=self.dropout,
            training=self.training,
            need_weights=need_weights,
            impl=self.impl,
        )
        out = out.transpose(1, 2).reshape(B, T, C)  # merge heads: (B, T, H*D)
        return self.out(out), weights

    # -- the hooked path (attnlab.interp) ----------------------------------------

    def _hook_qkv(self, q: Tensor, k: Tensor | None, v: Tensor | None) -> tuple[Tensor, Tensor | None, Tensor | None]:
        """Pass (B, H, T, D) queries (and (B, G, T, D) keys, values) through their hook points as (B, T, H, D)."""
        q = self.hook_q(q.transpose(1, 2)).transpose(1, 2)
        if k is not None:
            k, v = self._hook_kv(k, v)
        return q, k, v

    def _hook_kv(self, k: Tensor, v: Tensor) -> tuple[Tensor, Tensor]:
        """Pass (B, G, S, D) keys and values through `hook_k`, `hook_v` as (B, S, G, D)."""
        return self.hook_k(k.transpose(1, 2)).transpose(1, 2), self.hook_v(v.transpose(1, 2)).transpose(1, 2)

    def _attend_hooked(
        self, q: Tensor, k: Tensor, v: Tensor, mask: Tensor | None, is_causal: bool, need_weights: bool
    ) -> tuple[Tensor, Tensor | None]:
        """`attention_naive` with the scores, the pattern and z passing through their hook points."""
        B, H, T, D = q.shape
        if is_causal:
            mask = combine_masks(causal_mask(T, k.size(-2), device=q.device), mask)
        if k.size(1) != H:
            k, v = repeat_kv(k, H // k.size(1)), repeat_kv(v, H // v.size(1))  # (B, H, S, D)
        scores = (q @ k.transpose(-2, -1)) / math.sqrt(D)  # (B, H, T, S)
        if mask is not None:
            scores = scores.masked_fill(~mask, float("-inf"))
        scores = self.hook_attn_scores(scores)
        weights = torch.softmax(scores, dim=-1)
        if mask is not None:
            weights = weights.nan_to_num(0.0)  # a query with no visible key attends to nothing
        weights = self.hook_pattern(weights)
        dropped = F.dropout(weights, p=self.dropout) if self.dropout > 0.0 and self.training else weights
        z = self.hook_z((dropped @ v).transpose(1, 2))  # (B, T, H, D)
        return self.out(z.reshape(B, T, H * D)), (weights if need_weights else None)

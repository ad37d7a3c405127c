"""The transformer block: attention and feed-forward sub-layers with residuals and norms.

Post-norm (the original transformer, Vaswani et al. 2017; BERT):
    x = norm1(x + attn(x));  x = norm2(x + ff(x))
Pre-norm (GPT-2, Radford et al. 2019; Xiong et al. 2020 show it trains more stably):
    x = x + attn(norm1(x));  x = x + ff(norm2(x))
A decoder block of an encoder-decoder adds cross-attention to the encoder output
between the two (`cross_attention=True`), with its own norm (`norm_cross`).
A LLaMA block (Touvron et al. 2023) is the pre-norm block with RMSNorm (`norm="rms"`), a
SwiGLU feed-forward (`feed_forward="swiglu"`) and grouped-query attention (`num_kv_heads`).

Notation: B batch, T time, S source (encoder) length, C channels, H heads.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

from torch import Tensor, nn

from attnlab.nn.attention import AttentionImpl, LayerKVCache, MultiHeadAttention
from attnlab.nn.layers import FeedForward, SwiGLU, make_norm

NormKind = Literal["layer", "rms"]
FeedForwardKind = Literal["mlp", "swiglu"]


@dataclass
class BlockOutput:
    """What a block returns: the new residual stream and, on request, attention weights."""

    hidden: Tensor  # (B, T, C)
    attention: Tensor | None = None  # (B, H, T, T) self-attention weights
    cross_attention: Tensor | None = None  # (B, H, T, S) cross-attention weights


class TransformerBlock(nn.Module):
    """One transformer layer.

    Args:
        embed_dim: C.
        num_heads: H.
        hidden_dim: feed-forward width (commonly 4 * C).
        dropout: dropout on the residual branches and on attention weights.
        activation: feed-forward activation (relu, gelu, gelu_tanh; silu for SwiGLU).
        norm_first: pre-norm when True, post-norm when False.
        bias: biases in linear layers and norms.
        layer_norm_eps: the norms' epsilon.
        cross_attention: add a cross-attention sub-layer (decoder of an encoder-decoder).
        rotary: `RotaryEmbedding` for the self-attention, or None.
        ff_inner_dropout: dropout after the feed-forward activation (nn.TransformerEncoderLayer style).
        attn_impl: "auto", "naive" or "fused".
        norm: "layer" (LayerNorm) or "rms" (RMSNorm, no bias).
        feed_forward: "mlp" (`FeedForward`: fc1, fc2) or "swiglu" (`SwiGLU`: w_gate, w_up, w_down).
        num_kv_heads: key/value heads of the self-attention (grouped-query attention); None = num_heads.
    """

    def __init__(
        self,
        embed_dim: int,
        num_heads: int,
        hidden_dim: int,
        *,
        dropout: float = 0.0,
        activation: str = "gelu",
        norm_first: bool = True,
        bias: bool = True,
        layer_norm_eps: float = 1e-5,
        cross_attention: bool = False,
        context_dim: int | None = None,
        rotary: nn.Module | None = None,
        ff_inner_dropout: float = 0.0,
        attn_impl: AttentionImpl = "auto",
        norm: NormKind = "layer",
        feed_forward: FeedForwardKind = "mlp",
        num_kv_heads: int | None = None,
    ):
        super().__init__()
        if feed_forward not in ("mlp", "swiglu"):
            raise ValueError(f"unknown feed_forward {feed_forward!r}; choose mlp or swiglu")
        self.norm_first = norm_first
        self.norm1 = make_norm(norm, embed_dim, layer_norm_eps, bias)
        self.attn = MultiHeadAttention(
            embed_dim, num_heads, dropout=dropout, bias=bias, rotary=rotary, impl=attn_impl, num_kv_heads=num_kv_heads
        )
        self.drop1 = nn.Dropout(dropout)
        if cross_attention:
            self.norm_cross = make_norm(norm, embed_dim, layer_norm_eps, bias)
            self.cross_attn = MultiHeadAttention(
                embed_dim, num_heads, cross=True, context_dim=context_dim, dropout=dropout, bias=bias, impl=attn_impl
            )
            self.drop_cross = nn.Dropout(dropout)
        else:
            self.cross_attn = None
        self.norm2 = make_norm(norm, embed_dim, layer_norm_eps, bias)
        self.ff: FeedForward | SwiGLU
        if feed_forward == "swiglu":
            self.ff = SwiGLU(embed_dim, hidden_dim, activation, dropout=dropout, bias=bias)
        else:
            self.ff = FeedForward(
                embed_dim, hidden_dim, activation, dropout=dropout, inner_dropout=ff_inner_dropout, bias=bias
            )

    def forward(
        self,
        x: Tensor,
        *,
        mask: Tensor | None = None,
        is_causal: bool = False,
        context: Tensor | None = None,
        context_mask: Tensor | None = None,
        cache: LayerKVCache | None = None,
        cross_cache: LayerKVCache | None = None,
        positions: Tensor | None = None,
        need_weights: bool = False,
        trace: dict[str, Tensor] | None = None,
    ) -> BlockOutput:
        """Run the block.

        Args:
            x: (B, T, C) residual stream.
            mask: self-attention mask, broadcastable to (B, H, T, T); True = may attend.
            is_causal: causal self-attention (decoders).
            context: (B, S, C) encoder output for cross-attention.
            context_mask: cross-attention mask broadcastable to (B, H, T, S).
            cache / cross_cache: KV caches for incremental decoding.
            positions: (T,) token positions for rotary embeddings.
            need_weights: return attention weights.
            trace: if a dict is given, the block stores its intermediate tensors in it
                (`attn_out`, `after_attn`, `cross_out`, `after_cross`, `ff_out`, `after_ff`),
                which is how the app shows the effect of each sub-layer.
        Returns:
            `BlockOutput` with the new (B, T, C) stream.
        """
        attn_args = dict(mask=mask, is_causal=is_causal, cache=cache, positions=positions, need_weights=need_weights)
        cross_w = None
        if self.norm_first:
            a, w = self.attn(self.norm1(x), **attn_args)
            a = self.drop1(a)
            x = x + a
            if trace is not None:
                trace["attn_out"], trace["after_attn"] = a, x
            if self.cross_attn is not None:
                c, cross_w = self.cross_attn(
                    self.norm_cross(x), context, mask=context_mask, cache=cross_cache, need_weights=need_weights
                )
                c = self.drop_cross(c)
                x = x + c
                if trace is not None:
                    trace["cross_out"], trace["after_cross"] = c, x
            f = self.ff(self.norm2(x))
            x = x + f
        else:
            a, w = self.attn(x, **attn_args)
            a = self.drop1(a)
            x = self.norm1(x + a)
            if trace is not None:
                trace["attn_out"], trace["after_attn"] = a, x
            if self.cross_attn is not None:
                c, cross_w = self.cross_attn(
                    x, context, mask=context_mask, cache=cross_cache, need_weights=need_weights
                )
                c = self.drop_cross(c)
                x = self.norm_cross(x + c)
                if trace is not None:
                    trace["cross_out"], trace["after_cross"] = c, x
            f = self.ff(x)
            x = self.norm2(x + f)
        if trace is not None:
            trace["ff_out"], trace["after_ff"] = f, x
        return BlockOutput(x, w, cross_w)

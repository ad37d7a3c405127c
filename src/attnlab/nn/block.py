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
from attnlab.nn.hooks import HookedMixin, HookPoint
from attnlab.nn.layers import FeedForward, SwiGLU, make_norm

NormKind = Literal["layer", "rms"]
FeedForwardKind = Literal["mlp", "swiglu", "none"]


@dataclass
class BlockOutput:
    """What a block returns: the new residual stream and, on request, attention weights."""

    hidden: Tensor  # (B, T, C)
    attention: Tensor | None = None  # (B, H, T, T) self-attention weights
    cross_attention: Tensor | None = None  # (B, H, T, S) cross-attention weights


class TransformerBlock(HookedMixin, nn.Module):
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

    `feed_forward="none"` builds an attention-only block (Elhage et al. 2021; the induction
    lab): no feed-forward sub-layer and no `norm2`.

    Hook points (`attnlab.nn.hooks`, TransformerLens's names): `hook_resid_pre` (the stream in),
    `hook_attn_in` (attention's input: norm1's output in a pre-norm block), `hook_attn_out`
    (what attention adds), `hook_resid_mid_cross` / `hook_cross_out` (decoder blocks with
    cross-attention: the stream before it, what it adds), `hook_resid_mid` (the stream
    before the feed-forward), `hook_mlp_in`, `hook_mlp_out`, `hook_resid_post` (the stream out).
    In a post-norm block the stream points hold the normalised stream.
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
        if feed_forward not in ("mlp", "swiglu", "none"):
            raise ValueError(f"unknown feed_forward {feed_forward!r}; choose mlp, swiglu or none")
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
        self.ff: FeedForward | SwiGLU | None
        if feed_forward != "none":
            self.norm2 = make_norm(norm, embed_dim, layer_norm_eps, bias)
        if feed_forward == "none":
            self.ff = None
        elif feed_forward == "swiglu":
            self.ff = SwiGLU(embed_dim, hidden_dim, activation, dropout=dropout, bias=bias)
        else:
            self.ff = FeedForward(
                embed_dim, hidden_dim, activation, dropout=dropout, inner_dropout=ff_inner_dropout, bias=bias
            )
        names = ["hook_resid_pre", "hook_attn_in", "hook_attn_out"]
        if cross_attention:
            names += ["hook_resid_mid_cross", "hook_cross_out"]
        names += ["hook_resid_mid"]
        if self.ff is not None:
            names += ["hook_mlp_in", "hook_mlp_out"]
        for name in [*names, "hook_resid_post"]:
            setattr(self, name, HookPoint())

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
        cross_args = dict(mask=context_mask, cache=cross_cache, need_weights=need_weights)
        hooked = self.hooked  # hook points run only in a hooked forward (attnlab.interp)
        cross_w = None
        if hooked:
            x = self.hook_resid_pre(x)
        if self.norm_first:
            h = self.hook_attn_in(self.norm1(x)) if hooked else self.norm1(x)
            a, w = self.attn(h, **attn_args)
            a = self.drop1(a)
            if hooked:
                a = self.hook_attn_out(a)
            x = x + a
            if trace is not None:
                trace["attn_out"], trace["after_attn"] = a, x
            if self.cross_attn is not None:
                if hooked:
                    x = self.hook_resid_mid_cross(x)
                c, cross_w = self.cross_attn(self.norm_cross(x), context, **cross_args)
                c = self.drop_cross(c)
                if hooked:
                    c = self.hook_cross_out(c)
                x = x + c
                if trace is not None:
                    trace["cross_out"], trace["after_cross"] = c, x
            if hooked:
                x = self.hook_resid_mid(x)
            if self.ff is not None:
                f = self.ff(self.hook_mlp_in(self.norm2(x)) if hooked else self.norm2(x))
                if hooked:
                    f = self.hook_mlp_out(f)
                x = x + f
        else:
            a, w = self.attn(self.hook_attn_in(x) if hooked else x, **attn_args)
            a = self.drop1(a)
            if hooked:
                a = self.hook_attn_out(a)
            x = self.norm1(x + a)
            if trace is not None:
                trace["attn_out"], trace["after_attn"] = a, x
            if self.cross_attn is not None:
                if hooked:
                    x = self.hook_resid_mid_cross(x)
                c, cross_w = self.cross_attn(x, context, **cross_args)
                c = self.drop_cross(c)
                if hooked:
                    c = self.hook_cross_out(c)
                x = self.norm_cross(x + c)
                if trace is not None:
                    trace["cross_out"], trace["after_cross"] = c, x
            if hooked:
                x = self.hook_resid_mid(x)
            if self.ff is not None:
                f = self.ff(self.hook_mlp_in(x) if hooked else x)
                if hooked:
                    f = self.hook_mlp_out(f)
                x = self.norm2(x + f)
        if self.ff is None:
            f = x.new_zeros(())  # an attention-only block: no feed-forward sub-layer
        if trace is not None:
            trace["ff_out"], trace["after_ff"] = f, x
        if hooked:
            x = self.hook_resid_post(x)
        return BlockOutput(x, w, cross_w)

"""The transformer block in NumPy: attention and feed-forward sub-layers with residuals and norms.

Post-norm (the original transformer, Vaswani et al. 2017):
    h = norm1(x + attn(x));        y = norm2(h + ff(h))
Pre-norm (GPT-2, Radford et al. 2019):
    h = x + attn(norm1(x));        y = h + ff(norm2(h))
(each sub-layer's output passes through dropout before the residual add). A LLaMA block
(Touvron et al. 2023) is the pre-norm block with RMSNorm (`norm="rms"`), a SwiGLU
feed-forward (`feed_forward="swiglu"`) and grouped-query attention (`num_kv_heads`).
Same parameter names as `attnlab.nn.block.TransformerBlock`: norm1, attn, norm2, ff
(ff.fc1 / ff.fc2, or ff.w_gate / ff.w_up / ff.w_down; an RMSNorm has a weight only).

The backward pass of a residual connection y = x + f(x) is dx = dy + f'(x)^T dy: the
gradient flows through the identity unchanged *and* through the branch, and the two
are added. That unchanged path is why deep pre-norm stacks train easily.

Notation: B batch, T time, C channels, H heads.
"""

from __future__ import annotations

import numpy as np

from attnlab.scratch.attention import MultiHeadAttention
from attnlab.scratch.layers import Dropout, FeedForward, LayerNorm, RMSNorm, SwiGLU
from attnlab.scratch.module import Module

__all__ = ["TransformerBlock", "make_norm"]


def make_norm(kind: str, dim: int, eps: float = 1e-5, bias: bool = True, *, dtype=np.float32) -> Module:
    """The norm a block asks for: "layer" (`LayerNorm`, bias optional) or "rms" (`RMSNorm`, no bias)."""
    if kind == "layer":
        return LayerNorm(dim, eps, bias, dtype=dtype)
    if kind == "rms":
        return RMSNorm(dim, eps, dtype=dtype)
    raise ValueError(f"unknown norm {kind!r}; choose layer or rms")


class TransformerBlock(Module):
    """One transformer layer (self-attention only).

    Args:
        embed_dim: C.
        num_heads: H.
        hidden_dim: feed-forward width (commonly 4 C).
        dropout: dropout on attention weights and on both residual branches.
        activation: relu, gelu, gelu_tanh or tanh (silu too for SwiGLU).
        norm_first: pre-norm when True, post-norm when False.
        bias: biases in linear layers and norms.
        layer_norm_eps: the norms' epsilon.
        dtype: np.float32 or np.float64.
        rng: generator for the initialisation.
        init_std: N(0, init_std) weights (None = PyTorch's default init).
        out_init_std: std of the two projections into the residual stream (attn.out, ff.fc2).
        dropout_rng: generator for the dropout masks.
        rope_base: rotary positions in the self-attention with this base (None = none).
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
        dtype=np.float32,
        rng: np.random.Generator | None = None,
        init_std: float | None = None,
        out_init_std: float | None = None,
        dropout_rng: np.random.Generator | None = None,
        rope_base: float | None = None,
        norm: str = "layer",
        feed_forward: str = "mlp",
        num_kv_heads: int | None = None,
    ):
        super().__init__()
        if feed_forward not in ("mlp", "swiglu"):
            raise ValueError(f"unknown feed_forward {feed_forward!r}; choose mlp or swiglu")
        rng = rng if rng is not None else np.random.default_rng(0)
        self.norm_first = norm_first
        self.norm1 = make_norm(norm, embed_dim, layer_norm_eps, bias, dtype=dtype)
        self.attn = MultiHeadAttention(
            embed_dim,
            num_heads,
            dropout=dropout,
            bias=bias,
            dtype=dtype,
            rng=rng,
            init_std=init_std,
            out_init_std=out_init_std,
            dropout_rng=dropout_rng,
            rope_base=rope_base,
            num_kv_heads=num_kv_heads,
        )
        self.drop1 = Dropout(dropout, dropout_rng)
        self.norm2 = make_norm(norm, embed_dim, layer_norm_eps, bias, dtype=dtype)
        ff_class = SwiGLU if feed_forward == "swiglu" else FeedForward
        self.ff = ff_class(
            embed_dim,
            hidden_dim,
            activation,
            dropout,
            bias,
            dtype=dtype,
            rng=rng,
            init_std=init_std,
            out_init_std=out_init_std,
            dropout_rng=dropout_rng,
        )

    def forward(self, x: np.ndarray, mask: np.ndarray | None = None, is_causal: bool = False) -> np.ndarray:
        """x (B, T, C) -> (B, T, C).

        Args:
            mask: boolean self-attention mask broadcastable to (B, H, T, T); True = may attend.
            is_causal: causal self-attention (decoders).
        """
        if self.norm_first:
            h = x + self.drop1(self.attn(self.norm1(x), mask=mask, is_causal=is_causal))
            return h + self.ff(self.norm2(h))
        h = self.norm1(x + self.drop1(self.attn(x, mask=mask, is_causal=is_causal)))
        return self.norm2(h + self.ff(h))

    def backward(self, dy: np.ndarray) -> np.ndarray:
        """dy (B, T, C) -> dx (B, T, C)."""
        if self.norm_first:
            # y = h + ff(norm2(h)):  dh = dy + norm2'^T ff'^T dy
            dh = self.norm2.backward(self.ff.backward(dy))
            dh += dy
            # h = x + attn(norm1(x)):  dx = dh + norm1'^T attn'^T dh
            dx = self.norm1.backward(self.attn.backward(self.drop1.backward(dh)))
            dx += dh
            return dx
        # y = norm2(s2), s2 = h + ff(h):  ds2 = norm2'^T dy,  dh = ds2 + ff'^T ds2
        ds2 = self.norm2.backward(dy)
        dh = self.ff.backward(ds2)
        dh += ds2
        # h = norm1(s1), s1 = x + attn(x):  ds1 = norm1'^T dh,  dx = ds1 + attn'^T ds1
        ds1 = self.norm1.backward(dh)
        dx = self.attn.backward(self.drop1.backward(ds1))
        dx += ds1
        return dx

"""Feed-forward layer, activations and norms: the parts of a block besides attention.

The position-wise feed-forward network of Vaswani et al. (2017), sec. 3.3:
    FFN(x) = act(x W1 + b1) W2 + b2,   hidden width usually 4 * C.
GELU is from Hendrycks & Gimpel (2016); `gelu_tanh` is its tanh approximation, which
GPT-2 uses. Layer normalisation is Ba et al. (2016).

LLaMA (Touvron et al. 2023) swaps both for simpler parts:
  * RMSNorm (Zhang & Sennrich 2019): y = x / sqrt(mean(x^2) + eps) * g, no centring, no bias;
  * SwiGLU (Shazeer 2020): FFN(x) = (silu(x W_gate) * (x W_up)) W_down, a gated linear unit
    whose gate goes through SiLU; three matrices and no biases, hidden width ~ 8/3 C.

Notation: B batch, T time, C channels (embed_dim), F hidden width.
"""

from __future__ import annotations

from collections.abc import Callable

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from attnlab.nn.hooks import HookedMixin, HookPoint

ACTIVATIONS: dict[str, Callable[[Tensor], Tensor]] = {
    "relu": F.relu,
    "gelu": F.gelu,  # exact: x * Phi(x)
    "gelu_tanh": lambda x: F.gelu(x, approximate="tanh"),
    "tanh": torch.tanh,
    "silu": F.silu,
}


def get_activation(name: str) -> Callable[[Tensor], Tensor]:
    """The activation function called `name` (relu, gelu, gelu_tanh, tanh, silu)."""
    try:
        return ACTIVATIONS[name]
    except KeyError:
        raise ValueError(f"unknown activation {name!r}; choose one of: {', '.join(ACTIVATIONS)}") from None


class FeedForward(HookedMixin, nn.Module):
    """Position-wise feed-forward network: fc2(dropout?(act(fc1(x)))).

    Args:
        embed_dim: C.
        hidden_dim: F (commonly 4 * C).
        activation: relu, gelu, gelu_tanh, tanh or silu.
        dropout: dropout on the output (the residual branch).
        inner_dropout: dropout after the activation (as `nn.TransformerEncoderLayer` does).
        bias: biases in both linear layers.
    """

    def __init__(
        self,
        embed_dim: int,
        hidden_dim: int,
        activation: str = "gelu",
        dropout: float = 0.0,
        inner_dropout: float = 0.0,
        bias: bool = True,
    ):
        super().__init__()
        self.fc1 = nn.Linear(embed_dim, hidden_dim, bias=bias)
        self.fc2 = nn.Linear(hidden_dim, embed_dim, bias=bias)
        self.activation_name = activation
        self.act = get_activation(activation)
        self.inner_dropout = nn.Dropout(inner_dropout)
        self.dropout = nn.Dropout(dropout)
        self.hook_pre, self.hook_post = HookPoint(), HookPoint()  # (B, T, F) before / after the activation

    def forward(self, x: Tensor) -> Tensor:
        """(B, T, C) -> (B, T, C)."""
        if self.hooked:
            pre = self.hook_pre(self.fc1(x))  # (B, T, F) before the activation
            return self.dropout(self.fc2(self.inner_dropout(self.hook_post(self.act(pre)))))
        return self.dropout(self.fc2(self.inner_dropout(self.act(self.fc1(x)))))

    def residual_projections(self) -> list[nn.Linear]:
        """The layers that write into the residual stream (GPT-2 scales their initialisation)."""
        return [self.fc2]


class SwiGLU(HookedMixin, nn.Module):
    """Gated feed-forward network of LLaMA: w_down(act(w_gate(x)) * w_up(x)), act = SiLU.

    Args:
        embed_dim: C.
        hidden_dim: F (LLaMA: 2/3 of 4 C, rounded up).
        activation: the gate's non-linearity (silu for SwiGLU; gelu gives GeGLU).
        dropout: dropout on the output (the residual branch).
        bias: biases in the three linear layers (LLaMA has none).
    """

    def __init__(
        self, embed_dim: int, hidden_dim: int, activation: str = "silu", dropout: float = 0.0, bias: bool = False
    ):
        super().__init__()
        self.w_gate = nn.Linear(embed_dim, hidden_dim, bias=bias)
        self.w_up = nn.Linear(embed_dim, hidden_dim, bias=bias)
        self.w_down = nn.Linear(hidden_dim, embed_dim, bias=bias)
        self.activation_name = activation
        self.act = get_activation(activation)
        self.dropout = nn.Dropout(dropout)
        # (B, T, F): the gate before its activation, the up projection, their product
        self.hook_pre, self.hook_pre_linear, self.hook_post = HookPoint(), HookPoint(), HookPoint()

    def forward(self, x: Tensor) -> Tensor:
        """(B, T, C) -> (B, T, C)."""
        if self.hooked:
            gate, up = self.hook_pre(self.w_gate(x)), self.hook_pre_linear(self.w_up(x))  # (B, T, F) each
            return self.dropout(self.w_down(self.hook_post(self.act(gate) * up)))
        return self.dropout(self.w_down(self.act(self.w_gate(x)) * self.w_up(x)))  # gate and value: (B, T, F)

    def residual_projections(self) -> list[nn.Linear]:
        """The layers that write into the residual stream (GPT-2 scales their initialisation)."""
        return [self.w_down]


def layer_norm(dim: int, eps: float = 1e-5, bias: bool = True) -> nn.LayerNorm:
    """`nn.LayerNorm` over the last dimension, optionally without the bias (nanoGPT)."""
    return nn.LayerNorm(dim, eps=eps, bias=bias)


class RMSNorm(nn.Module):
    """Root-mean-square normalisation over the last dimension: x / sqrt(mean(x^2) + eps) * weight.

    Computed in float32 whatever the input dtype, and scaled by the weight after rounding
    back, exactly as Hugging Face's `LlamaRMSNorm` (`torch.nn.RMSNorm` keeps the input dtype).

    Args:
        dim: C.
        eps: added to the mean square.
    """

    def __init__(self, dim: int, eps: float = 1e-5):
        super().__init__()
        self.eps = eps
        self.weight = nn.Parameter(torch.ones(dim))

    def forward(self, x: Tensor) -> Tensor:
        """(..., C) -> (..., C)."""
        h = x.to(torch.float32) if x.dtype in (torch.float16, torch.bfloat16) else x
        h = h * torch.rsqrt(h.pow(2).mean(-1, keepdim=True) + self.eps)  # (..., C) of unit RMS
        return self.weight * h.to(x.dtype)

    def extra_repr(self) -> str:
        return f"{self.weight.size(0)}, eps={self.eps}"


def make_norm(kind: str, dim: int, eps: float = 1e-5, bias: bool = True) -> nn.Module:
    """The norm a block asks for: "layer" (`nn.LayerNorm`, bias optional) or "rms" (`RMSNorm`, no bias)."""
    if kind == "layer":
        return layer_norm(dim, eps, bias)
    if kind == "rms":
        return RMSNorm(dim, eps)
    raise ValueError(f"unknown norm {kind!r}; choose layer or rms")

"""Feed-forward layer, activations and norms: the parts of a block besides attention.

The position-wise feed-forward network of Vaswani et al. (2017), sec. 3.3:
    FFN(x) = act(x W1 + b1) W2 + b2,   hidden width usually 4 * C.
GELU is from Hendrycks & Gimpel (2016); `gelu_tanh` is its tanh approximation, which
GPT-2 uses. Layer normalisation is Ba et al. (2016).

Notation: B batch, T time, C channels (embed_dim), F hidden width.
"""

from __future__ import annotations

from typing import Callable

import torch
import torch.nn.functional as F
from torch import Tensor, nn

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


class FeedForward(nn.Module):
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

    def forward(self, x: Tensor) -> Tensor:
        """(B, T, C) -> (B, T, C)."""
        return self.dropout(self.fc2(self.inner_dropout(self.act(self.fc1(x)))))


def layer_norm(dim: int, eps: float = 1e-5, bias: bool = True) -> nn.LayerNorm:
    """`nn.LayerNorm` over the last dimension, optionally without the bias (nanoGPT)."""
    return nn.LayerNorm(dim, eps=eps, bias=bias)

"""The built-in probe modules: linear, MLP and attention-pooling probes (PyTorch), registered as kinds.

    linear     one Linear layer: logistic regression for classification, ridge regression
               (solved in closed form by `fit_probe`) for regression.
    mlp        Linear -> GELU -> Dropout (x num_hidden_layers) -> Linear.
    attention  per-residue embeddings -> learned attention pooling -> linear head: a
               sequence-level probe that chooses which residues to read.

Notation: B batch, T residues (padded), C embedding channels, K outputs.
"""

from __future__ import annotations

import torch
from torch import nn

from attnlab.bio.pooling import AttentionPooling
from attnlab.bio.probe_kinds import ProbeConfig, register_probe
from attnlab.errors import ConfigError


@register_probe("linear", takes_residues=False, description="logistic / ridge regression")
def _build_linear(input_dim: int, num_outputs: int, task: str, config: ProbeConfig) -> nn.Module:
    return nn.Linear(input_dim, num_outputs)


class MLPProbe(nn.Module):
    """Linear -> GELU -> Dropout, `num_hidden_layers` times, then a Linear head: (B, C) -> (B, K)."""

    def __init__(self, input_dim: int, num_outputs: int, hidden_dim: int, num_hidden_layers: int, dropout: float):
        super().__init__()
        layers: list[nn.Module] = []
        width = input_dim
        for _ in range(num_hidden_layers):
            layers += [nn.Linear(width, hidden_dim), nn.GELU(), nn.Dropout(dropout)]
            width = hidden_dim
        layers.append(nn.Linear(width, num_outputs))
        self.net = nn.Sequential(*layers)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.net(x)


@register_probe("mlp", takes_residues=False, description="multi-layer perceptron")
def _build_mlp(input_dim: int, num_outputs: int, task: str, config: ProbeConfig) -> nn.Module:
    return MLPProbe(input_dim, num_outputs, config.hidden_dim, config.num_hidden_layers, config.dropout)


class AttentionProbe(nn.Module):
    """Attention pooling over residues, dropout, then a linear head: (B, T, C) + mask -> (B, K)."""

    def __init__(self, input_dim: int, num_outputs: int, dropout: float):
        super().__init__()
        self.pool = AttentionPooling(input_dim)
        self.dropout = nn.Dropout(dropout)
        self.head = nn.Linear(input_dim, num_outputs)

    def forward(self, x: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
        return self.head(self.dropout(self.pool(x, mask)))  # (B, K)


@register_probe("attention", takes_residues=True, description="learned attention pooling + linear head")
def _build_attention(input_dim: int, num_outputs: int, task: str, config: ProbeConfig) -> nn.Module:
    if task == "residue":
        raise ConfigError("the attention probe pools residues into one vector; for per-residue tasks use linear or mlp")
    return AttentionProbe(input_dim, num_outputs, config.dropout)

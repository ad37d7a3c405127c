"""Random weights that make every part of a model matter (shared by the tests of attnlab.interp)."""

from __future__ import annotations

import math

import torch
from torch import nn


def scramble(model: nn.Module, seed: int = 0) -> nn.Module:
    """Weights of order 1/sqrt(fan-in), norm gains near 1, small biases; returns the model in eval mode.

    A freshly initialised model has zero biases and unit gains, under which some mistakes
    (a bias left out, a gain applied twice) change nothing; these weights expose them.
    """
    g = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for name, p in model.named_parameters():
            noise = torch.randn(p.shape, generator=g)
            if p.dim() >= 2:
                p.copy_(noise / math.sqrt(p.shape[-1]))
            elif name.endswith("weight"):
                p.copy_(1.0 + 0.1 * noise)
            else:
                p.copy_(0.1 * noise)
    return model.eval()

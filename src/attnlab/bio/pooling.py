"""Pooling per-residue embeddings into one vector per sequence (PyTorch).

Notation: B batch, T tokens (residues, possibly with special tokens and padding), C channels.
Masks follow the library convention: boolean, True = a real token to pool over; False =
padding (or a special token you want left out, e.g. ESM's <cls>/<eos> for mean pooling).

    mean       average of the real tokens (the usual choice for ESM embeddings,
               Rives et al. 2021; Elnaggar et al. 2021 for ProtTrans)
    max        channel-wise maximum over the real tokens
    cls        the vector at one position (index 0: BERT's/ESM's <cls> token)
    attention  a learned softmax-weighted average: one trained query vector q scores each
               token, a_t = softmax_t(x_t . q / sqrt(C)), pooled = sum_t a_t x_t
               (attention pooling as in Lin et al. 2017, "A structured self-attentive
               sentence embedding", with a single head). It has parameters, so it is trained
               together with a probe (probe kind "attention"), not used for cached embeddings.
"""

from __future__ import annotations

import math

import torch
from torch import nn

from attnlab.errors import ConfigError

POOLING_METHODS = ("mean", "max", "cls")  # parameter-free; "attention" is the AttentionPooling module


def _check(x: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
    if x.dim() != 3:
        raise ValueError(f"expected embeddings of shape (B, T, C), got {tuple(x.shape)}")
    if mask.shape != x.shape[:2]:
        raise ValueError(f"mask shape {tuple(mask.shape)} does not match embeddings {tuple(x.shape[:2])}")
    if mask.dtype != torch.bool:
        raise ValueError(f"mask must be boolean (True = real token), got {mask.dtype}")
    return mask


def mean_pool(x: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
    """Average over the tokens where `mask` is True.

    Args:
        x: (B, T, C) embeddings.
        mask: (B, T) bool, True = include.
    Returns:
        (B, C); rows with no True position are zeros.
    """
    mask = _check(x, mask)
    weights = mask.to(x.dtype).unsqueeze(-1)  # (B, T, 1)
    count = weights.sum(dim=1).clamp(min=1.0)  # (B, 1): avoid 0/0 for empty rows
    return (x * weights).sum(dim=1) / count


def max_pool(x: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
    """Channel-wise maximum over the tokens where `mask` is True.

    Args:
        x: (B, T, C) embeddings.
        mask: (B, T) bool, True = include.
    Returns:
        (B, C); rows with no True position are zeros.
    """
    mask = _check(x, mask)
    filled = x.masked_fill(~mask.unsqueeze(-1), float("-inf"))
    pooled = filled.amax(dim=1)  # (B, C)
    empty = ~mask.any(dim=1)  # (B,)
    return pooled.masked_fill(empty.unsqueeze(-1), 0.0)


def cls_pool(x: torch.Tensor, mask: torch.Tensor | None = None, position: int = 0) -> torch.Tensor:
    """The embedding at `position` (0: the <cls> token).

    Args:
        x: (B, T, C) embeddings (with the special tokens still in place).
        mask: unused except for a shape check; accepted so all poolers share a signature.
        position: token index to take.
    Returns:
        (B, C).
    """
    if mask is not None:
        _check(x, mask)
    return x[:, position]


def pool(x: torch.Tensor, mask: torch.Tensor, method: str = "mean") -> torch.Tensor:
    """Parameter-free pooling by name: "mean", "max" or "cls".

    Args:
        x: (B, T, C); mask: (B, T) bool, True = include.
    Returns:
        (B, C).
    """
    if method == "mean":
        return mean_pool(x, mask)
    if method == "max":
        return max_pool(x, mask)
    if method == "cls":
        return cls_pool(x, mask)
    if method == "attention":
        raise ConfigError("attention pooling is learned: use the AttentionPooling module (probe kind 'attention')")
    raise ConfigError(f"unknown pooling {method!r}; choose one of: {', '.join(POOLING_METHODS)}")


class AttentionPooling(nn.Module):
    """Softmax-weighted average of the tokens with one learned query vector.

    scores_t = x_t . q / sqrt(C) (masked positions get -inf), a = softmax(scores),
    output = sum_t a_t x_t. The query starts at zero, so an untrained module is exactly
    mean pooling; training moves the weight towards informative residues. The last
    weights are kept in `last_weights` (B, T) for plotting which residues the probe used.

    Args:
        embed_dim: C.
    """

    def __init__(self, embed_dim: int):
        super().__init__()
        self.embed_dim = embed_dim
        self.query = nn.Parameter(torch.zeros(embed_dim))
        self.last_weights: torch.Tensor | None = None

    def forward(self, x: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
        """Pool `x` (B, T, C) over `mask` (B, T) (True = include) into (B, C)."""
        mask = _check(x, mask)
        scores = (x @ self.query) / math.sqrt(self.embed_dim)  # (B, T)
        scores = scores.masked_fill(~mask, float("-inf"))
        empty = ~mask.any(dim=1, keepdim=True)  # (B, 1): an all-padding row would give NaN
        weights = torch.softmax(scores.masked_fill(empty, 0.0), dim=1) * (~empty)  # (B, T)
        self.last_weights = weights.detach()
        return (weights.unsqueeze(-1) * x).sum(dim=1)

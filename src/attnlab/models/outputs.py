"""The output object every attnlab PyTorch model returns.

A model's `forward` returns `ModelOutput`; the Trainer only reads `.loss`, so any
model whose forward takes the batch's tensors as keyword arguments and returns an
object with `.loss` trains with it. The optional fields follow the layouts of
Hugging Face `transformers`:
  hidden_states: tuple of (num_layers + 1) tensors (B, T, C): the embeddings, then the
                 output of each block (GPT: the last one after the final LayerNorm).
  attentions:    tuple of num_layers tensors (B, H, T, T), softmax weights per head.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import torch
import torch.nn.functional as F

from attnlab.configs.base import IGNORE_INDEX


@dataclass
class ModelOutput:
    """Logits (never softmaxed), the loss when targets were given, and optional internals."""

    logits: torch.Tensor | None = None  # (B, T, V) for language models, (B, K) for classifiers
    loss: torch.Tensor | None = None  # scalar, mean over scored positions
    hidden_states: tuple[torch.Tensor, ...] | None = None  # (num_layers + 1) x (B, T, C)
    attentions: tuple[torch.Tensor, ...] | None = None  # num_layers x (B, H, T, T)
    cross_attentions: tuple[torch.Tensor, ...] | None = None  # num_layers x (B, H, T, S) (seq2seq)
    extras: dict[str, Any] = field(default_factory=dict)  # model-specific (pooled output, traces ...)


def cross_entropy_loss(logits: torch.Tensor, targets: torch.Tensor | None) -> torch.Tensor | None:
    """Mean cross-entropy over the positions whose target is not -100 (`IGNORE_INDEX`); None without targets.

    Args:
        logits: (..., K) scores, e.g. (B, T, V) next-token logits or (B, K) class logits.
        targets: class ids of shape (...), or None.
    """
    if targets is None:
        return None
    return F.cross_entropy(logits.reshape(-1, logits.size(-1)), targets.reshape(-1), ignore_index=IGNORE_INDEX)

"""Inputs of probes: pooled vectors or per-residue arrays checked against their targets, and padding.

Notation: N items, B batch, T residues (padded), C embedding channels.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import torch

from attnlab.errors import DataError


def _num_outputs(task: str, num_classes: int) -> int:
    return 1 if task in ("binary", "regression") else num_classes


def _as_vectors(X: Any, what: str) -> np.ndarray:
    if isinstance(X, torch.Tensor):
        X = X.detach().cpu().numpy()
    X = np.asarray(X, dtype=np.float32)
    if X.ndim != 2:
        raise DataError(f"{what}: expected pooled embeddings of shape (N, C), got shape {X.shape}")
    if not np.isfinite(X).all():
        raise DataError(f"{what}: the embeddings contain NaN or infinite values")
    return X


def _as_residues(X: Any, what: str) -> list[np.ndarray]:
    if isinstance(X, np.ndarray) and X.dtype != object and X.ndim == 2:
        raise DataError(f"{what}: expected a list of per-residue arrays (L_i, C), got one (N, C) array (pooled?)")
    out = []
    for i, x in enumerate(X):
        x = x.detach().cpu().numpy() if isinstance(x, torch.Tensor) else np.asarray(x)
        x = x.astype(np.float32, copy=False)
        if x.ndim != 2 or len(x) == 0:
            raise DataError(f"{what}: item {i} should be a non-empty (L, C) array, got shape {x.shape}")
        if not np.isfinite(x).all():
            raise DataError(f"{what}: item {i} contains NaN or infinite values")
        out.append(x)
    if not out:
        raise DataError(f"{what}: no sequences")
    if len({x.shape[1] for x in out}) != 1:
        raise DataError(f"{what}: the per-residue arrays disagree in their channel count C")
    return out


@dataclass
class _Split:
    """One split, ready for training: vectors (N, C) or per-residue lists, and targets."""

    vectors: np.ndarray | None = None  # (N, C): per-sequence pooled input, or flattened residues
    residues: list[np.ndarray] | None = None  # N x (L_i, C)
    targets: Any = None  # (N,) / (N, K) array, or N x (L_i,) arrays for residue tasks with residue input
    masks: list[np.ndarray] | None = None  # N x (L_i,) bool, residue task only

    def __len__(self) -> int:
        return len(self.vectors) if self.vectors is not None else len(self.residues)  # type: ignore[arg-type]


def _check_targets(task: str, y: Any, n: int, what: str) -> Any:
    if task == "residue":
        ys = [np.asarray(v, dtype=np.int64) for v in y]
        if len(ys) != n:
            raise DataError(f"{what}: {len(ys)} label arrays for {n} sequences")
        return ys
    y = np.asarray(y.detach().cpu().numpy() if isinstance(y, torch.Tensor) else y)
    if len(y) != n:
        raise DataError(f"{what}: {len(y)} labels for {n} embeddings")
    if task == "multilabel":
        if y.ndim != 2:
            raise DataError(f"{what}: multi-label targets must be an (N, K) 0/1 matrix (LabelEncoder.transform)")
        return y.astype(np.float32)
    if task == "regression":
        y = y.astype(np.float32).reshape(-1)
        if not np.isfinite(y).all():
            raise DataError(f"{what}: the regression targets contain NaN or infinite values")
        return y
    if y.dtype == bool or (np.issubdtype(y.dtype, np.floating) and np.all(np.mod(y, 1) == 0)):
        y = y.astype(np.int64)  # 0/1 flags or integral floats (e.g. from a torch tensor) are fine
    if y.ndim != 1 or not np.issubdtype(y.dtype, np.integer):
        raise DataError(
            f"{what}: class labels must be (N,) integer indices (LabelEncoder.transform), got {y.dtype} {y.shape}"
        )
    return y.astype(np.int64)


def _flatten_residue_split(split: _Split) -> _Split:
    """Residue task with a per-vector probe: keep the scored residues as rows."""
    assert split.residues is not None
    xs, ys = [], []
    for i, (x, y) in enumerate(zip(split.residues, split.targets)):
        if len(y) != len(x):
            raise DataError(f"sequence {i}: {len(y)} residue labels for {len(x)} residue embeddings")
        keep = split.masks[i] if split.masks is not None else slice(None)
        xs.append(x[keep])
        ys.append(y[keep])
    return _Split(vectors=np.concatenate(xs), targets=np.concatenate(ys))


def _pad(residues: Sequence[np.ndarray | torch.Tensor]) -> tuple[torch.Tensor, torch.Tensor]:
    """Right-pad (L_i, C) arrays into x (B, T, C) and mask (B, T) (True = real residue)."""
    tensors = [torch.as_tensor(r) for r in residues]
    x = torch.nn.utils.rnn.pad_sequence(tensors, batch_first=True)  # (B, T, C), zeros after each end
    lengths = torch.tensor([len(t) for t in tensors])
    mask = torch.arange(x.shape[1]).unsqueeze(0) < lengths.unsqueeze(1)  # (B, T)
    return x, mask

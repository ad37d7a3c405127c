"""Train / valid / test splits: seeded (optionally stratified) index splits and `assign_splits`."""

from __future__ import annotations

import logging
import math
from collections.abc import Sequence
from typing import Any

import numpy as np

from attnlab.bio.data.dataset import SPLIT_NAMES, SequenceDataset
from attnlab.bio.data.labels import CLASSIFICATION_TASKS
from attnlab.errors import DataError

logger = logging.getLogger(__name__)


def split_indices(
    num_items: int,
    fractions: Sequence[float] = (0.8, 0.1, 0.1),
    seed: int = 0,
    groups: Sequence[Any] | None = None,
) -> dict[str, np.ndarray]:
    """Deterministic train/valid/test indices, stratified by `groups` when given.

    Within each group (class) the items are shuffled with `numpy.random.default_rng(seed)`
    and cut by the fractions; a group's counts are floor(n * fraction) plus the leftover
    items given to the splits with the largest remainders (ties: train, valid, test), so
    every class keeps the same proportions up to one item per split.

    Args:
        num_items: N.
        fractions: (train, valid, test), non-negative, summing to 1.
        seed: the shuffle seed (same seed, same split).
        groups: optional (N,) class of each item for a stratified split.
    Returns:
        {"train": idx, "valid": idx, "test": idx}, sorted int64 index arrays.
    """
    fractions = tuple(float(f) for f in fractions)
    if len(fractions) != 3 or any(f < 0 for f in fractions) or not math.isclose(sum(fractions), 1.0, abs_tol=1e-6):
        raise DataError(
            f"split fractions must be three non-negative numbers (train, valid, test) summing to 1, got {fractions}"
        )
    if fractions[0] == 0:
        raise DataError("the train fraction must be above 0")
    if groups is not None and len(groups) != num_items:
        raise DataError(f"{len(groups)} stratification groups for {num_items} items")
    rng = np.random.default_rng(seed)
    keys = [0] * num_items if groups is None else [str(g) for g in groups]
    members: dict[str, list[int]] = {}
    for i, key in enumerate(keys):
        members.setdefault(key, []).append(i)
    out: dict[str, list[int]] = {name: [] for name in SPLIT_NAMES}
    for key in sorted(members, key=str):  # sorted: the result must not depend on row order of first appearance
        idx = np.array(members[key])
        idx = idx[rng.permutation(len(idx))]
        exact = np.array(fractions) * len(idx)
        counts = np.floor(exact).astype(int)
        leftover = len(idx) - counts.sum()
        order = np.argsort(-(exact - counts), kind="stable")  # largest remainder first, ties in split order
        counts[order[:leftover]] += 1
        start = 0
        for name, count in zip(SPLIT_NAMES, counts):
            out[name].extend(idx[start : start + count].tolist())
            start += count
    return {name: np.array(sorted(v), dtype=np.int64) for name, v in out.items()}


def assign_splits(
    dataset: SequenceDataset,
    fractions: Sequence[float] = (0.8, 0.1, 0.1),
    seed: int = 0,
    stratify: bool | None = None,
) -> SequenceDataset:
    """A copy of `dataset` with deterministic train/valid/test splits (replacing any present).

    Args:
        dataset: the (de-duplicated) data.
        fractions: (train, valid, test) fractions summing to 1.
        seed: shuffle seed.
        stratify: stratify by class; None = yes for binary/multiclass, no otherwise
            (regression, multilabel and per-residue tasks are split plainly by sequence).
    """
    if stratify is None:
        stratify = dataset.task in CLASSIFICATION_TASKS
    if stratify and dataset.task not in CLASSIFICATION_TASKS:
        raise DataError(f"stratified splits need a binary or multiclass task, not {dataset.task!r}; use stratify=False")
    if dataset.splits is not None:
        logger.info("%s: replacing the existing splits", dataset.name or "dataset")
    parts = split_indices(len(dataset), fractions, seed, dataset.labels if stratify else None)
    splits = [""] * len(dataset)
    for name, idx in parts.items():
        for i in idx:
            splits[i] = name
    kind = "stratified" if stratify else "random"
    note = f"{kind} split {tuple(fractions)} seed {seed}: " + ", ".join(f"{k} {len(v)}" for k, v in parts.items())
    return dataset.with_splits(splits, note=note)

"""Cleaning sequence data: de-duplication (identical sequences, conflicting labels) and length filters."""

from __future__ import annotations

import logging
import math
from collections import Counter
from dataclasses import dataclass
from typing import Any, Literal

import numpy as np

from attnlab.bio.data.dataset import SequenceDataset
from attnlab.errors import DataError

logger = logging.getLogger(__name__)


@dataclass(frozen=True)
class DedupReport:
    """What `deduplicate` did."""

    num_input: int  # rows before
    num_distinct: int  # distinct sequences
    num_duplicate_rows: int  # rows beyond the first of each distinct sequence
    num_conflicting_sequences: int  # distinct sequences whose copies carry different labels
    num_conflicting_rows: int  # rows of those sequences
    num_output: int  # rows after
    conflicts: str  # the policy applied to conflicting sequences

    def __str__(self) -> str:
        text = (
            f"de-duplicated {self.num_input} -> {self.num_output} rows: {self.num_distinct} distinct sequences, "
            f"{self.num_duplicate_rows} duplicate rows removed"
        )
        if self.num_conflicting_sequences:
            action = {
                "drop": "dropped",
                "first": "kept the first label",
                "majority": "majority label (ties dropped)",
                "mean": "labels averaged",
            }[self.conflicts]
            text += (
                f"; {self.num_conflicting_sequences} sequences ({self.num_conflicting_rows} rows) carried "
                f"conflicting labels: {action}"
            )
        return text


def deduplicate(
    dataset: SequenceDataset,
    conflicts: Literal["drop", "first", "majority", "mean"] = "drop",
) -> tuple[SequenceDataset, DedupReport]:
    """Collapse exact duplicate sequences to their first occurrence.

    Copies whose labels (and masks) differ are "conflicting"; `conflicts` decides:
    "drop" removes every copy of such a sequence (default; the honest choice when the
    label is ambiguous), "first" keeps the first copy's label, "majority" (classification)
    keeps the most common label and drops ties, "mean" (regression) averages the values.
    The kept row keeps its id and split (de-duplicate before assigning splits).

    Returns:
        (the de-duplicated dataset, a DedupReport); the report is also added to `notes`.
    """
    if conflicts not in ("drop", "first", "majority", "mean"):
        raise DataError(f"unknown conflicts policy {conflicts!r}; choose drop, first, majority or mean")
    if conflicts == "majority" and dataset.task not in ("binary", "multiclass", "multilabel", "residue"):
        raise DataError("conflicts='majority' needs a classification task; use 'mean', 'first' or 'drop'")
    if conflicts == "mean" and dataset.task != "regression":
        raise DataError("conflicts='mean' needs task 'regression'; use 'majority', 'first' or 'drop'")
    groups: dict[str, list[int]] = {}
    for i, seq in enumerate(dataset.sequences):
        groups.setdefault(seq, []).append(i)

    def label_key(i: int) -> Any:
        if dataset.labels is None:
            return None
        lab = dataset.labels[i]
        if dataset.mask is not None:
            return (lab, dataset.mask[i].tobytes())
        return lab

    keep: list[int] = []
    new_labels = list(dataset.labels) if dataset.labels is not None else None
    n_conflict_seq = n_conflict_rows = 0
    for rows in groups.values():
        keys = [label_key(i) for i in rows]
        if len(set(keys)) <= 1:
            keep.append(rows[0])
            continue
        n_conflict_seq += 1
        n_conflict_rows += len(rows)
        if conflicts == "drop":
            continue
        if conflicts == "first":
            keep.append(rows[0])
        elif conflicts == "majority":
            ranked = Counter(keys).most_common()
            if len(ranked) > 1 and ranked[0][1] == ranked[1][1]:
                continue  # a tie: no majority
            winner = next(i for i, k in zip(rows, keys) if k == ranked[0][0])
            keep.append(winner)
        else:  # mean
            assert new_labels is not None
            new_labels[rows[0]] = float(np.mean([dataset.labels[i] for i in rows]))  # type: ignore[index]
            keep.append(rows[0])
    keep.sort()
    report = DedupReport(
        num_input=len(dataset),
        num_distinct=len(groups),
        num_duplicate_rows=len(dataset) - len(groups),
        num_conflicting_sequences=n_conflict_seq,
        num_conflicting_rows=n_conflict_rows,
        num_output=len(keep),
        conflicts=conflicts,
    )
    source = SequenceDataset(
        dataset.ids,
        dataset.sequences,
        new_labels,
        dataset.task,
        dataset.mask,
        dataset.splits,
        name=dataset.name,
        label_names=dataset.label_names,
        notes=dataset.notes,
    )
    logger.info("%s: %s", dataset.name or "dataset", report)
    return source.subset(keep, note=str(report)), report


def filter_length(
    dataset: SequenceDataset, min_length: int | None = None, max_length: int | None = None
) -> tuple[SequenceDataset, int]:
    """Keep sequences with `min_length <= len <= max_length` (None = no bound).

    Returns:
        (the filtered dataset, the number of sequences removed); noted in `notes`.
    """
    if min_length is not None and max_length is not None and min_length > max_length:
        raise DataError(f"min_length={min_length} is larger than max_length={max_length}")
    lo = min_length if min_length is not None else 0
    hi = max_length if max_length is not None else math.inf
    keep = [i for i, s in enumerate(dataset.sequences) if lo <= len(s) <= hi]
    removed = len(dataset) - len(keep)
    if not keep:
        raise DataError(
            f"no sequence of {dataset.name or 'the dataset'} has a length in [{lo}, {hi}]; "
            f"its lengths range from {dataset.lengths.min()} to {dataset.lengths.max()}"
        )
    note = f"length filter [{lo}, {hi}]: removed {removed} of {len(dataset)} sequences"
    logger.info("%s: %s", dataset.name or "dataset", note)
    return dataset.subset(keep, note=note), removed

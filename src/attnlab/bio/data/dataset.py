"""`SequenceDataset`: ids, sequences (upper-case), labels, the task, optional per-residue masks and split names.

Splits are named "train", "valid" and "test" (aliases such as "validation", "val", "dev"
are normalised on loading).
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable, Sequence
from typing import Any

import numpy as np

from attnlab.bio.data.labels import TASKS, is_missing_label
from attnlab.errors import DataError

SPLIT_NAMES = ("train", "valid", "test")


_SPLIT_ALIASES = {
    "train": "train",
    "training": "train",
    "trn": "train",
    "valid": "valid",
    "validation": "valid",
    "val": "valid",
    "dev": "valid",
    "development": "valid",
    "test": "test",
    "testing": "test",
    "tst": "test",
}


class SequenceDataset:
    """Sequences with labels, task, optional per-residue masks and split names.

    Args:
        ids: one identifier per sequence.
        sequences: the sequences (upper-case letters).
        labels: one label per sequence, typed by task: int/str (binary, multiclass),
            tuple of str (multilabel), float (regression), str of per-residue classes as long
            as the sequence (residue); None for an unlabelled set.
        task: one of `TASKS`, or None when there are no labels.
        mask: per sequence a bool array (L,), True = residue is scored (e.g. resolved); None = all.
        splits: per sequence "train", "valid" or "test"; None when not split yet.
        name: a short name for summaries.
        label_names: optional display names of the classes (e.g. {0: "UniProt", 1: "AMP"}).
        notes: processing history (filters, de-duplication), shown by `describe()`.
    Raises:
        DataError: the parts disagree in length, or a label does not fit the task.
    """

    def __init__(
        self,
        ids: Sequence[str],
        sequences: Sequence[str],
        labels: Sequence[Any] | None = None,
        task: str | None = None,
        mask: Sequence[np.ndarray] | None = None,
        splits: Sequence[str] | None = None,
        *,
        name: str = "",
        label_names: dict[Any, str] | None = None,
        notes: Sequence[str] = (),
    ):
        self.ids = [str(i) for i in ids]
        self.sequences = list(sequences)
        self.labels = list(labels) if labels is not None else None
        self.task = task
        self.mask = [np.asarray(m, dtype=bool) for m in mask] if mask is not None else None
        self.splits = list(splits) if splits is not None else None
        self.name = name
        self.label_names = dict(label_names) if label_names else None
        self.notes = list(notes)
        self._validate()

    def _validate(self) -> None:
        n = len(self.sequences)
        for part, values in (("ids", self.ids), ("labels", self.labels), ("mask", self.mask), ("splits", self.splits)):
            if values is not None and len(values) != n:
                raise DataError(f"SequenceDataset: {len(values)} {part} for {n} sequences; give one per sequence")
        if self.task is not None and self.task not in TASKS:
            raise DataError(f"unknown task {self.task!r}; choose one of: {', '.join(TASKS)}")
        if self.labels is not None and self.task is None:
            raise DataError(
                "SequenceDataset: labels were given without a task; pass task= (one of " + ", ".join(TASKS) + ")"
            )
        if self.labels is None and self.task is not None:
            raise DataError(f"SequenceDataset: task {self.task!r} needs labels")
        for i, seq in enumerate(self.sequences):
            if not seq:
                raise DataError(f"SequenceDataset: sequence {self.ids[i]!r} is empty")
            if self.mask is not None and len(self.mask[i]) != len(seq):
                raise DataError(
                    f"SequenceDataset: record {self.ids[i]!r} has a mask of length {len(self.mask[i])} "
                    f"for a sequence of length {len(seq)}"
                )
            if self.labels is not None and (
                self.labels[i] is None
                or (self.task not in ("residue", "multilabel") and is_missing_label(self.labels[i]))
            ):
                raise DataError(
                    f"SequenceDataset: record {self.ids[i]!r} has a missing or non-finite label {self.labels[i]!r}; "
                    "fill in its label or leave the record out"
                )
            if self.task == "residue" and len(self.labels[i]) != len(seq):  # type: ignore[index]
                raise DataError(
                    f"SequenceDataset: record {self.ids[i]!r} has {len(self.labels[i])} residue labels "  # type: ignore[index]
                    f"for a sequence of length {len(seq)}"
                )
        if self.splits is not None:
            bad = sorted(set(self.splits) - set(SPLIT_NAMES))
            if bad:
                raise DataError(f"SequenceDataset: unknown split name(s) {bad}; use {', '.join(SPLIT_NAMES)}")

    def __len__(self) -> int:
        return len(self.sequences)

    def __repr__(self) -> str:
        return f"SequenceDataset(name={self.name!r}, n={len(self)}, task={self.task!r})"

    @property
    def lengths(self) -> np.ndarray:
        """(N,) int64 sequence lengths."""
        return np.array([len(s) for s in self.sequences], dtype=np.int64)

    @property
    def split_names(self) -> list[str]:
        """The split names present, in train/valid/test order."""
        if self.splits is None:
            return []
        present = set(self.splits)
        return [s for s in SPLIT_NAMES if s in present]

    def subset(self, indices: Iterable[int], note: str | None = None) -> SequenceDataset:
        """A new dataset with the rows at `indices` (in that order)."""
        idx = [int(i) for i in indices]

        def pick(values):
            return None if values is None else [values[i] for i in idx]

        return SequenceDataset(
            pick(self.ids),
            pick(self.sequences),
            pick(self.labels),
            self.task,
            pick(self.mask),
            pick(self.splits),
            name=self.name,
            label_names=self.label_names,
            notes=self.notes + ([note] if note else []),
        )

    def split(self, name: str) -> SequenceDataset:
        """The rows of split `name` ("train", "valid" or "test").

        Raises:
            DataError: the dataset has no splits, or none named `name`.
        """
        if self.splits is None:
            raise DataError(
                f"dataset {self.name or '(unnamed)'} has no splits; call assign_splits() or give a split column"
            )
        name = _SPLIT_ALIASES.get(name.lower(), name)
        idx = [i for i, s in enumerate(self.splits) if s == name]
        if not idx:
            raise DataError(
                f"dataset {self.name or '(unnamed)'} has no {name!r} rows; its splits are {self.split_names}"
            )
        return self.subset(idx)

    def with_splits(self, splits: Sequence[str], note: str | None = None) -> SequenceDataset:
        """A copy with new split names (one per row)."""
        return SequenceDataset(
            self.ids,
            self.sequences,
            self.labels,
            self.task,
            self.mask,
            list(splits),
            name=self.name,
            label_names=self.label_names,
            notes=self.notes + ([note] if note else []),
        )

    def label_counts(self) -> dict[Any, int]:
        """Class -> count (binary, multiclass, multilabel per class, residue per scored residue)."""
        if self.labels is None or self.task == "regression":
            return {}
        counts: Counter = Counter()
        if self.task == "multilabel":
            for labels in self.labels:
                counts.update(labels)
        elif self.task == "residue":
            for i, labels in enumerate(self.labels):
                if self.mask is None:
                    counts.update(labels)
                else:
                    counts.update(c for c, keep in zip(labels, self.mask[i]) if keep)
        else:
            counts.update(self.labels)
        return dict(sorted(counts.items(), key=lambda kv: str(kv[0])))

    def summary(self) -> dict[str, Any]:
        """Counts and statistics as a JSON-ready dict (sizes, lengths, labels, splits, notes)."""
        lengths = self.lengths
        out: dict[str, Any] = {"name": self.name, "task": self.task, "num_sequences": len(self)}
        if len(self):
            out["length"] = {
                "min": int(lengths.min()),
                "median": float(np.median(lengths)),
                "mean": round(float(lengths.mean()), 2),
                "max": int(lengths.max()),
            }
        if self.task == "regression":
            y = np.asarray(self.labels, dtype=np.float64)
            out["label_stats"] = {
                "mean": float(y.mean()),
                "std": float(y.std()),
                "min": float(y.min()),
                "max": float(y.max()),
            }
        elif self.labels is not None:
            out["label_counts"] = {str(k): v for k, v in self.label_counts().items()}
        if self.label_names:
            out["label_names"] = {str(k): v for k, v in self.label_names.items()}
        if self.mask is not None:
            out["masked_out_residues"] = int(sum(int((~m).sum()) for m in self.mask))
        if self.splits is not None:
            counts = Counter(self.splits)
            out["splits"] = {s: counts[s] for s in SPLIT_NAMES if s in counts}
        out["notes"] = list(self.notes)
        return out

    def describe(self) -> str:
        """A few human-readable lines summarising the dataset."""
        s = self.summary()
        lines = [f"{s['name'] or 'dataset'}: {s['num_sequences']} sequences, task {s['task']}"]
        if "length" in s:
            L = s["length"]
            lines.append(f"  length min {L['min']}, median {L['median']:g}, max {L['max']}")
        if "label_counts" in s:
            what = "residue labels (scored residues)" if self.task == "residue" else "labels"
            lines.append(f"  {what} " + ", ".join(f"{k}: {v}" for k, v in s["label_counts"].items()))
        if "label_stats" in s:
            st = s["label_stats"]
            lines.append(f"  labels mean {st['mean']:.4g} std {st['std']:.4g} range [{st['min']:.4g}, {st['max']:.4g}]")
        if "splits" in s:
            lines.append("  splits " + ", ".join(f"{k}: {v}" for k, v in s["splits"].items()))
        lines.extend(f"  - {note}" for note in s["notes"])
        return "\n".join(lines)

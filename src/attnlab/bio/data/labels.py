"""Labels of sequence data: the tasks, label conventions, task inference, label parsing and `LabelEncoder`.

Tasks (the `task` strings used across attnlab.bio):
    binary       one of two classes per sequence (ints or strings)
    multiclass   one of K classes per sequence
    multilabel   a set of classes per sequence (CSV cell / header value "a;b;c")
    regression   one float per sequence
    residue      one class per residue: a label string as long as the sequence
                 ("CCHHHE"), with an optional 0/1 mask string of the same length

Missing labels ("", "nan", "NA", ...) and non-finite numbers are refused, or dropped with a
note under `bad_labels="drop"` (see `is_missing_label`).
"""

from __future__ import annotations

import json
import logging
import math
import re
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

from attnlab.errors import DataError
from attnlab.utils import write_json_atomic

logger = logging.getLogger(__name__)


TASKS = ("binary", "multiclass", "multilabel", "regression", "residue")
CLASSIFICATION_TASKS = ("binary", "multiclass")


MULTILABEL_SEPARATOR = ";"
# Integer labels with at most this many distinct values are inferred as classes, not numbers.
MAX_INFERRED_CLASSES = 10


_INT = re.compile(r"[+-]?\d+")
# Label values that mean "no label" (compared case-insensitively, after stripping spaces); any
# other value that parses as a non-finite float ("1e999", "-Infinity") is refused as well.
MISSING_LABELS = frozenset(
    {
        "",
        "nan",
        "+nan",
        "-nan",
        "inf",
        "+inf",
        "-inf",
        "infinity",
        "+infinity",
        "-infinity",
        "na",
        "n/a",
        "null",
        "none",
    }
)
BAD_LABEL_POLICIES = ("error", "drop")


def infer_task(labels: Sequence[str], sequences: Sequence[str]) -> str:
    """Guess the task from raw label strings (pass `task=` to loaders to skip the guess).

    Rules, in order: every label as long as its sequence (and sequences of at least 2
    residues) -> residue; any label containing ';' -> multilabel; all integers with at most
    `MAX_INFERRED_CLASSES` distinct values -> binary (<= 2 values) or multiclass; all numbers
    -> regression; otherwise binary (<= 2 distinct strings) or multiclass.
    """
    if not labels:
        raise DataError("cannot infer the task from zero labels; pass task=")
    if all(len(lab) == len(seq) for lab, seq in zip(labels, sequences)) and min(len(s) for s in sequences) >= 2:
        return "residue"
    if any(MULTILABEL_SEPARATOR in lab for lab in labels):
        return "multilabel"
    distinct = set(labels)
    if all(_INT.fullmatch(lab) for lab in distinct):
        if len(distinct) <= MAX_INFERRED_CLASSES:
            return "binary" if len(distinct) <= 2 else "multiclass"
        return "regression"
    if all(_is_float(lab) for lab in distinct):
        return "regression"
    return "binary" if len(distinct) <= 2 else "multiclass"


def _is_float(text: str) -> bool:
    try:
        return math.isfinite(float(text))
    except ValueError:
        return False


def is_missing_label(value: Any) -> bool:
    """True for a missing or non-finite label.

    Missing: None, a NaN or infinite number, a string in `MISSING_LABELS` ("", "nan", "NA",
    "N/A", "null", "None", "inf", ...; any case) or one that parses as a non-finite float.
    """
    if value is None:
        return True
    if isinstance(value, (float, np.floating)):
        return not math.isfinite(value)
    if isinstance(value, str):
        text = value.strip()
        if text.lower() in MISSING_LABELS:
            return True
        try:
            return not math.isfinite(float(text))
        except ValueError:
            return False
    return False


def _label_problem(value: str | None, separator: str) -> str | None:
    """What is wrong with a raw label ("empty", ...), or None when it is usable."""
    if value is None:
        return "absent"
    if not value.strip():
        return "empty"
    if is_missing_label(value):
        return "missing or not a finite number"
    if separator in value and any(is_missing_label(p) for p in value.split(separator) if p.strip()):
        return "a multi-label value with a missing class"
    return None


def _column_label_problem(value: str, column: str, separator: str) -> str | None:
    """What is wrong with the label `value` of CSV column `column`, as a clause; None when usable."""
    problem = _label_problem(value, separator)
    if problem is None:
        return None
    if problem == "empty":
        return f"the label column {column!r} is empty"
    return f"the label {value!r} (column {column!r}) is {problem}"


_DROP_HINT = " (or drop such records: bad_labels='drop', `attnlab probe --drop-bad-labels`)"


class _LabelScreen:
    """The `bad_labels` policy of a loader: raise at the first bad label, or drop and count the records."""

    def __init__(self, policy: str):
        if policy not in BAD_LABEL_POLICIES:
            raise DataError(f"unknown bad_labels policy {policy!r}; choose {' or '.join(BAD_LABEL_POLICIES)}")
        self.policy = policy
        self.dropped = 0
        self.first: str | None = None  # where the first dropped record was

    def reject(self, where: str, message: str) -> None:
        """Raise DataError(message) under "error"; count the record under "drop"."""
        if self.policy == "error":
            raise DataError(message + _DROP_HINT)
        self.dropped += 1
        if self.first is None:
            self.first = where
        logger.debug("dropped: %s", message)

    def note(self, total: int) -> str | None:
        """The dataset note for what was dropped (None when nothing was)."""
        if not self.dropped:
            return None
        return (
            f"dropped {self.dropped} of {total} records with a missing or non-finite label "
            f"(bad_labels='drop'; the first: {self.first})"
        )


def _parse_labels(raw: list[str], sequences: list[str], task: str, where: list[str], separator: str) -> list[Any]:
    """Typed labels from raw strings; `where[i]` names row i in error messages."""
    if task in CLASSIFICATION_TASKS:
        as_int = all(_INT.fullmatch(lab) for lab in raw)
        labels: list[Any] = [int(lab) for lab in raw] if as_int else list(raw)
        n_classes = len(set(labels))
        if task == "binary" and n_classes > 2:
            shown = ", ".join(repr(c) for c in sorted(set(labels), key=str)[:6])
            raise DataError(
                f"task 'binary' needs at most 2 classes, but the labels have {n_classes} ({shown}...); "
                "use task='multiclass'"
            )
        return labels
    if task == "multilabel":
        out = []
        for lab, w in zip(raw, where):
            parts = tuple(sorted({p.strip() for p in lab.split(separator) if p.strip()}))
            if not parts:
                raise DataError(f"{w}: the multi-label value {lab!r} names no class; write classes as 'a{separator}b'")
            out.append(parts)
        return out
    if task == "regression":
        out = []
        for lab, w in zip(raw, where):
            try:
                value = float(lab)
            except ValueError:
                raise DataError(f"{w}: the label {lab!r} is not a number (task 'regression')") from None
            if not math.isfinite(value):
                raise DataError(f"{w}: the label {lab!r} is not a finite number; remove the row or fix the value")
            out.append(value)
        return out
    if task == "residue":
        for lab, seq, w in zip(raw, sequences, where):
            if len(lab) != len(seq):
                raise DataError(
                    f"{w}: {len(lab)} residue labels for a sequence of length {len(seq)}; "
                    "a per-residue label string needs one character per residue"
                )
        return list(raw)
    raise DataError(f"unknown task {task!r}; choose one of: {', '.join(TASKS)}")


class LabelEncoder:
    """Labels <-> numbers for one task; saves to JSON.

    Encodings (`transform`):
        binary, multiclass  (N,) int64 class index; classes sorted (ints numerically), so
                            for binary 0/1 labels class 1 is the positive class.
        multilabel          (N, K) float32 multi-hot.
        regression          (N,) float32 (values unchanged).
        residue             list of (L_i,) int64 arrays, one class index per residue.

    Args:
        task: one of `TASKS`.
        classes: the class list in index order (None for regression).
    """

    def __init__(self, task: str, classes: Sequence[Any] | None = None):
        if task not in TASKS:
            raise DataError(f"unknown task {task!r}; choose one of: {', '.join(TASKS)}")
        if task != "regression" and not classes:
            raise DataError(f"a {task} label encoder needs its classes; build it with LabelEncoder.fit(labels, task)")
        self.task = task
        self.classes = list(classes) if classes is not None and task != "regression" else []
        self._index = {c: i for i, c in enumerate(self.classes)}

    @classmethod
    def fit(cls, labels: Sequence[Any], task: str) -> LabelEncoder:
        """Collect the classes of `labels` (typed as in `SequenceDataset.labels`)."""
        if task == "regression":
            return cls(task)
        if task == "multilabel":
            values = {c for lab in labels for c in lab}
        elif task == "residue":
            values = {c for lab in labels for c in lab}
        else:
            values = set(labels)
        if not values:
            raise DataError("cannot fit a label encoder on zero labels")
        if task == "binary":
            if values <= {0, 1}:
                values = {0, 1}  # 0/1 labels keep their meaning even when a subset holds one class
            elif len(values) != 2:
                raise DataError(
                    f"binary labels need exactly two classes, found {sorted(values, key=str)}; "
                    "fit the encoder on the whole data set, or give the classes: LabelEncoder('binary', [neg, pos])"
                )
        return cls(task, sorted(values, key=lambda v: (isinstance(v, str), v)))

    @property
    def num_classes(self) -> int:
        """K (0 for regression)."""
        return len(self.classes)

    def _lookup(self, value: Any) -> int:
        try:
            return self._index[value]
        except (KeyError, TypeError):
            raise DataError(
                f"label {value!r} was not seen when the encoder was fitted (classes: {self.classes[:20]}); "
                "fit the encoder on all labels"
            ) from None

    def transform(self, labels: Sequence[Any]) -> np.ndarray | list[np.ndarray]:
        """Encode labels (see the class docstring for the shapes)."""
        if self.task == "regression":
            return np.asarray([float(v) for v in labels], dtype=np.float32)
        if self.task == "multilabel":
            out = np.zeros((len(labels), self.num_classes), dtype=np.float32)
            for i, lab in enumerate(labels):
                for c in lab:
                    out[i, self._lookup(c)] = 1.0
            return out
        if self.task == "residue":
            table = np.full(256, -1, dtype=np.int64)
            for c, i in self._index.items():
                if len(c) == 1 and ord(c) < 256:
                    table[ord(c)] = i
            encoded = []
            for lab in labels:
                codes = table[np.frombuffer(lab.encode("latin-1", errors="replace"), dtype=np.uint8)]
                if (codes < 0).any():
                    self._lookup(next(c for c, k in zip(lab, codes) if k < 0))  # raises naming it
                encoded.append(codes)
            return encoded
        return np.asarray([self._lookup(v) for v in labels], dtype=np.int64)

    def inverse_transform(self, encoded: Any) -> list[Any]:
        """Labels back from `transform` output (or from predictions of the same shape)."""
        if self.task == "regression":
            return [float(v) for v in np.asarray(encoded).ravel()]
        if self.task == "multilabel":
            return [tuple(self.classes[j] for j in np.flatnonzero(row > 0.5)) for row in np.asarray(encoded)]
        if self.task == "residue":
            return ["".join(self.classes[int(k)] for k in row) for row in encoded]
        return [self.classes[int(k)] for k in np.asarray(encoded).ravel()]

    def to_dict(self) -> dict[str, Any]:
        return {"task": self.task, "classes": self.classes}

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> LabelEncoder:
        try:
            return cls(data["task"], data.get("classes") or None)
        except (KeyError, TypeError) as e:
            raise DataError(f"corrupt label encoder description ({type(e).__name__}: {e})") from None

    def save(self, path: str | Path) -> None:
        """Write the encoder as JSON (atomically)."""
        write_json_atomic(path, self.to_dict())

    @classmethod
    def load(cls, path: str | Path) -> LabelEncoder:
        """Read an encoder written by `save`."""
        try:
            data = json.loads(Path(path).read_text(encoding="utf-8"))
        except (OSError, json.JSONDecodeError, UnicodeDecodeError) as e:
            raise DataError(f"cannot read the label encoder {str(path)!r} ({e})") from None
        return cls.from_dict(data)

    def __eq__(self, other: object) -> bool:
        return isinstance(other, LabelEncoder) and other.to_dict() == self.to_dict()

    def __repr__(self) -> str:
        return f"LabelEncoder(task={self.task!r}, classes={self.classes!r})"

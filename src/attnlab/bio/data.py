"""Labelled biological sequence data: loaders, validation, de-duplication, splits, label encoding.

A `SequenceDataset` holds ids, sequences (upper-case), labels, the task, an optional
per-residue mask and optional split names. Loaders read FASTA and CSV files (and the
antimicrobial-peptide set bundled with the `modlamp` package) and raise `DataError`s
that name the file, the line and the record when something is wrong.

Tasks (the `task` strings used across attnlab.bio):
    binary       one of two classes per sequence (ints or strings)
    multiclass   one of K classes per sequence
    multilabel   a set of classes per sequence (CSV cell / header value "a;b;c")
    regression   one float per sequence
    residue      one class per residue: a label string as long as the sequence
                 ("CCHHHE"), with an optional 0/1 mask string of the same length

File conventions:
    FASTA   `>ID key=value key=value free text`; the label is the `label=` value (the key
            is configurable), the split the `split=` value; or labels come from a CSV
            joined on the id (`labels_path`). Lines starting with ';' are comments.
    CSV     a header row; columns found by name (case-insensitive) unless given:
            id (id, name, accession, ...), sequence (sequence, seq, ...), label (label,
            target, y, ss3, ...), mask (mask, resolved_mask), split (split, set) and a
            FLIP-style `validation` column (True moves a train row to the valid split).

Splits are named "train", "valid" and "test" (aliases such as "validation", "val",
"dev" are normalised on loading).
"""

from __future__ import annotations

import csv
import importlib.util
import io
import json
import logging
import math
import re
from collections import Counter
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Iterable, Literal, Sequence

import numpy as np

from attnlab.bio.tokenizers import DNA_LETTERS, PROTEIN_LETTERS, RNA_LETTERS
from attnlab.errors import DataError
from attnlab.utils import write_json_atomic

logger = logging.getLogger(__name__)

TASKS = ("binary", "multiclass", "multilabel", "regression", "residue")
CLASSIFICATION_TASKS = ("binary", "multiclass")
SPLIT_NAMES = ("train", "valid", "test")
ALPHABETS = {"protein": PROTEIN_LETTERS, "dna": DNA_LETTERS, "rna": RNA_LETTERS}
FASTA_SUFFIXES = (".fasta", ".fa", ".faa", ".fna", ".fas", ".ffn", ".frn", ".mpfa")
MULTILABEL_SEPARATOR = ";"
# Integer labels with at most this many distinct values are inferred as classes, not numbers.
MAX_INFERRED_CLASSES = 10

_SPLIT_ALIASES = {
    "train": "train", "training": "train", "trn": "train",
    "valid": "valid", "validation": "valid", "val": "valid", "dev": "valid", "development": "valid",
    "test": "test", "testing": "test", "tst": "test",
}  # fmt: skip
_TRUE = {"true", "1", "yes", "y", "t"}
_FALSE = {"false", "0", "no", "n", "f", ""}
_INT = re.compile(r"[+-]?\d+")
# Label values that mean "no label" (compared case-insensitively, after stripping spaces); any
# other value that parses as a non-finite float ("1e999", "-Infinity") is refused as well.
MISSING_LABELS = frozenset({"", "nan", "+nan", "-nan", "inf", "+inf", "-inf", "infinity", "+infinity", "-infinity",
                            "na", "n/a", "null", "none"})  # fmt: skip
BAD_LABEL_POLICIES = ("error", "drop")

# Column names looked for (case-insensitive), in order of preference.
COLUMN_CANDIDATES: dict[str, tuple[str, ...]] = {
    "id": ("id", "name", "accession", "identifier", "entry", "header", "seq_id", "sequence_id"),
    "sequence": ("sequence", "seq", "sequences", "protein", "peptide", "aa_seq", "primary", "dna", "rna"),
    "label": ("label", "labels", "target", "targets", "y", "ss3", "ss8", "class", "fitness"),
    "mask": ("mask", "resolved_mask", "resolved"),
    "split": ("split", "set", "partition", "subset"),
    "validation": ("validation", "is_validation", "valid"),
}


# ----------------------------------------------------------------------------- dataset


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
            raise DataError("SequenceDataset: labels were given without a task; pass task= (one of " + ", ".join(TASKS) + ")")
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
            if self.labels is not None and (self.labels[i] is None or (
                    self.task not in ("residue", "multilabel") and is_missing_label(self.labels[i]))):
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

    def subset(self, indices: Iterable[int], note: str | None = None) -> "SequenceDataset":
        """A new dataset with the rows at `indices` (in that order)."""
        idx = [int(i) for i in indices]

        def pick(values):
            return None if values is None else [values[i] for i in idx]

        return SequenceDataset(
            pick(self.ids), pick(self.sequences), pick(self.labels), self.task, pick(self.mask), pick(self.splits),
            name=self.name, label_names=self.label_names, notes=self.notes + ([note] if note else []),
        )  # fmt: skip

    def split(self, name: str) -> "SequenceDataset":
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
            raise DataError(f"dataset {self.name or '(unnamed)'} has no {name!r} rows; its splits are {self.split_names}")
        return self.subset(idx)

    def with_splits(self, splits: Sequence[str], note: str | None = None) -> "SequenceDataset":
        """A copy with new split names (one per row)."""
        return SequenceDataset(
            self.ids, self.sequences, self.labels, self.task, self.mask, list(splits),
            name=self.name, label_names=self.label_names, notes=self.notes + ([note] if note else []),
        )  # fmt: skip

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
                "min": int(lengths.min()), "median": float(np.median(lengths)),
                "mean": round(float(lengths.mean()), 2), "max": int(lengths.max()),
            }  # fmt: skip
        if self.task == "regression":
            y = np.asarray(self.labels, dtype=np.float64)
            out["label_stats"] = {"mean": float(y.mean()), "std": float(y.std()), "min": float(y.min()), "max": float(y.max())}
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


# ----------------------------------------------------------------------------- reading files


def _read_text(path: str | Path) -> str:
    """Read a UTF-8 text file; DataError for a missing, unreadable or non-UTF-8 file."""
    path = Path(path)
    if not path.exists():
        raise DataError(f"data file {str(path)!r} does not exist; check the path")
    if path.is_dir():
        raise DataError(f"{str(path)!r} is a folder, not a data file; pass a FASTA or CSV file")
    try:
        raw = path.read_bytes()
    except OSError as e:
        raise DataError(f"cannot read data file {str(path)!r} ({e.strerror or e}); check its permissions") from None
    try:
        text = raw.decode("utf-8-sig")  # -sig: tolerate the byte-order mark some editors write
    except UnicodeDecodeError as e:
        line = raw[: e.start].count(b"\n") + 1
        raise DataError(
            f"{str(path)!r} is not UTF-8 text (byte 0x{raw[e.start]:02x} on line {line}); "
            "re-save it as UTF-8 (e.g. `iconv -f latin1 -t utf-8`)"
        ) from None
    return text.replace("\r\n", "\n").replace("\r", "\n")


def _check_letters(seq: str, alphabet: str | None, where: str, line_starts: Sequence[tuple[int, int]] = ()) -> str:
    """Upper-case `seq` and check it against `alphabet`; DataError naming `where` and the first bad residue.

    Args:
        line_starts: (offset in `seq`, file line) of each sequence line of a wrapped FASTA
            record, so the error can name the line of the first bad letter.
    """
    seq = seq.strip().upper()
    if not seq:
        raise DataError(f"{where}: the sequence is empty; remove the record or fill in its sequence")
    if alphabet is None:
        return seq
    if alphabet not in ALPHABETS:
        raise DataError(f"unknown alphabet {alphabet!r}; choose one of: {', '.join(ALPHABETS)} (or None to skip checks)")
    bad = set(seq) - set(ALPHABETS[alphabet])
    if bad:
        shown = ", ".join(repr(c) for c in sorted(bad)[:10])
        hint = "write unknown residues as X" if alphabet == "protein" else "write unknown bases as N"
        if "*" in bad:
            hint += " and remove stop codons '*'"
        first = next(i for i, c in enumerate(seq) if c in bad)
        at = f"first at residue {first + 1}"
        if line_starts:
            at += f", line {max((ls for ls in line_starts if ls[0] <= first), default=line_starts[0])[1]}"
        raise DataError(
            f"{where}: the sequence contains letters that are not valid {alphabet} letters: {shown} ({at}); {hint}"
        )
    return seq


def _find_column(header: Sequence[str], role: str, given: str | None, path: Path, required: bool) -> str | None:
    """The header name to use for `role` (given explicitly, or found among the candidates)."""
    lower = {h.strip().lower(): h for h in header}
    if given is not None:
        if given in header:
            return given
        if given.lower() in lower:
            return lower[given.lower()]
        raise DataError(f"{str(path)!r} has no column {given!r}; its columns are: {', '.join(header)}")
    for candidate in COLUMN_CANDIDATES[role]:
        if candidate in lower:
            return lower[candidate]
    if required:
        raise DataError(
            f"{str(path)!r} has no {role} column (looked for {', '.join(COLUMN_CANDIDATES[role])}); "
            f"its columns are: {', '.join(header)}; name it with {role}_column="
        )
    return None


def _read_table(path: Path, text: str) -> tuple[list[str], list[tuple[int, dict[str, str]]]]:
    """Header and (line number, row) pairs of a CSV/TSV text; DataError for ragged rows."""
    delimiter = "\t" if path.suffix.lower() in (".tsv", ".tab") else ","
    reader = csv.DictReader(io.StringIO(text), delimiter=delimiter)
    try:
        header = reader.fieldnames
        if not header:
            raise DataError(f"{str(path)!r} is empty; a CSV file needs a header row and data rows")
        header = [h.strip() for h in header]
        reader.fieldnames = header
        dupes = sorted({h for h in header if header.count(h) > 1})
        if dupes:
            raise DataError(f"{str(path)!r}: the header repeats column(s) {dupes}; give every column a distinct name")
        rows = []
        for row in reader:
            line = reader.line_num
            if None in row or any(v is None for v in row.values()):
                n_fields = len(header) + len(row.get(None, []) or []) - sum(v is None for v in row.values())
                raise DataError(
                    f"{str(path)!r}, line {line}: {n_fields} fields where the header has {len(header)}; "
                    "check for a missing or extra comma (quote fields that contain commas)"
                )
            rows.append((line, {k: v.strip() for k, v in row.items()}))
    except csv.Error as e:
        raise DataError(f"{str(path)!r}, line {reader.line_num}: malformed CSV ({e})") from None
    if not rows:
        raise DataError(f"{str(path)!r} has a header but no data rows")
    return header, rows


# ----------------------------------------------------------------------------- labels


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
        return (f"dropped {self.dropped} of {total} records with a missing or non-finite label "
                f"(bad_labels='drop'; the first: {self.first})")  # fmt: skip


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


def _parse_mask(value: str, seq: str, where: str) -> np.ndarray:
    if len(value) != len(seq):
        raise DataError(
            f"{where}: the mask has {len(value)} characters for a sequence of length {len(seq)}; "
            "give one 0/1 per residue"
        )
    bad = set(value) - {"0", "1"}
    if bad:
        raise DataError(f"{where}: the mask may only contain 0 and 1, found {', '.join(repr(c) for c in sorted(bad))}")
    return np.frombuffer(value.encode("ascii"), dtype=np.uint8) == ord("1")


def _parse_split(value: str, where: str) -> str:
    name = _SPLIT_ALIASES.get(value.strip().lower())
    if name is None:
        raise DataError(f"{where}: unknown split {value!r}; use train, valid (validation) or test")
    return name


def _parse_bool(value: str, where: str) -> bool:
    v = value.strip().lower()
    if v in _TRUE:
        return True
    if v in _FALSE:
        return False
    raise DataError(f"{where}: expected True or False in the validation column, got {value!r}")


def _finish(
    ids: list[str],
    sequences: list[str],
    raw_labels: list[str] | None,
    task: str | None,
    masks: list[np.ndarray] | None,
    splits: list[str] | None,
    where: list[str],
    name: str,
    separator: str,
    source: str,
    screen: _LabelScreen | None = None,
    total: int = 0,
) -> SequenceDataset:
    dropped = screen.note(total) if screen is not None else None
    if dropped is not None and not sequences:
        raise DataError(f"{source}: all {total} records have a missing or non-finite label; fill in the labels")
    labels = None
    if raw_labels is not None:
        if task is None:
            task = infer_task(raw_labels, sequences)
            logger.info("%s: task inferred as %r from the labels; pass task= to override", source, task)
        labels = _parse_labels(raw_labels, sequences, task, where, separator)
    elif task is not None:
        raise DataError(f"{source}: task {task!r} was requested but the file has no labels; name the label column")
    note = f"read {len(sequences)} sequences from {source}"
    notes = [note] + ([dropped] if dropped else [])
    dataset = SequenceDataset(ids, sequences, labels, task if labels is not None else None, masks, splits, name=name, notes=notes)
    for text in notes:
        logger.info("%s", text)
    return dataset


def read_csv(
    path: str | Path,
    *,
    task: str | None = None,
    sequence_column: str | None = None,
    label_column: str | None = None,
    id_column: str | None = None,
    mask_column: str | None = None,
    split_column: str | None = None,
    validation_column: str | None = None,
    alphabet: str | None = "protein",
    label_separator: str = MULTILABEL_SEPARATOR,
    name: str | None = None,
    bad_labels: Literal["error", "drop"] = "error",
) -> SequenceDataset:
    """Read a CSV (or .tsv) file with one sequence per row.

    Columns not given are found by name (see `COLUMN_CANDIDATES`); a missing label
    column gives an unlabelled dataset, a missing id column ids "line<N>".

    Args:
        path: the file.
        task: one of `TASKS`; None infers it from the labels (see `infer_task`).
        sequence_column, label_column, id_column, mask_column, split_column,
            validation_column: column names (case-insensitive), or None to auto-detect.
        alphabet: "protein", "dna", "rna", or None to skip the letter check.
        label_separator: separator of multi-label values.
        name: dataset name (default: the file name without suffix).
        bad_labels: a missing or non-finite label ("", NaN, inf, NA, null, ...; see
            `is_missing_label`): "error" raises naming the first such row, "drop" drops
            those rows and counts them in the dataset's `notes`.
    Returns:
        SequenceDataset.
    Raises:
        DataError: unreadable file, missing column, invalid letters, empty sequence,
            missing or non-finite label, label/mask length mismatch, bad split name; the
            message names the file, the line and the record id.
    """
    path = Path(path)
    header, rows = _read_table(path, _read_text(path))
    seq_col = _find_column(header, "sequence", sequence_column, path, required=True)
    id_col = _find_column(header, "id", id_column, path, required=False)
    label_col = _find_column(header, "label", label_column, path, required=task is not None)
    mask_col = _find_column(header, "mask", mask_column, path, required=False)
    split_col = _find_column(header, "split", split_column, path, required=False)
    valid_col = _find_column(header, "validation", validation_column, path, required=False)
    if valid_col is not None and split_col is None:
        raise DataError(
            f"{str(path)!r} has a validation column {valid_col!r} but no split column (set/split); "
            "the validation flag marks train rows, so add the split column"
        )
    for role, col in (("label", label_col), ("mask", mask_col), ("split", split_col), ("id", id_col), ("validation", valid_col)):
        if col == seq_col:
            raise DataError(f"{str(path)!r}: the {role} column and the sequence column are both {col!r}")

    screen = _LabelScreen(bad_labels)
    ids, seqs, raw, masks, splits, where = [], [], [], [], [], []
    for line, row in rows:
        rid = row[id_col] if id_col else f"line{line}"
        w = f"{str(path)!r}, line {line} (id {rid!r})"
        if id_col and not rid:
            raise DataError(f"{str(path)!r}, line {line}: the id column {id_col!r} is empty")
        if label_col is not None:
            value = row[label_col]
            what = _column_label_problem(value, label_col, label_separator)
            if what is not None:
                screen.reject(w, f"{w}: {what}; fill in the label or remove the row")
                continue
            raw.append(value)
        seq = _check_letters(row[seq_col], alphabet, w)
        if mask_col is not None:
            masks.append(_parse_mask(row[mask_col], seq, w))
        if split_col is not None:
            split = _parse_split(row[split_col], w)
            if valid_col is not None and _parse_bool(row[valid_col], w):
                if split != "train":
                    raise DataError(f"{w}: the row is marked validation but its split is {split!r}; only train rows can be")
                split = "valid"
            splits.append(split)
        ids.append(rid)
        seqs.append(seq)
        where.append(w)
    return _finish(
        ids, seqs, raw if label_col else None, task, masks if mask_col else None, splits if split_col else None,
        where, name or path.stem, label_separator, repr(str(path)), screen, len(rows),
    )  # fmt: skip


def read_fasta(
    path: str | Path,
    *,
    task: str | None = None,
    label_key: str = "label",
    split_key: str = "split",
    labels_path: str | Path | None = None,
    labels_id_column: str | None = None,
    labels_column: str | None = None,
    labels_mask_column: str | None = None,
    labels_split_column: str | None = None,
    alphabet: str | None = "protein",
    label_separator: str = MULTILABEL_SEPARATOR,
    name: str | None = None,
    bad_labels: Literal["error", "drop"] = "error",
) -> SequenceDataset:
    """Read a FASTA file; labels from the headers (`>ID label=1`) or from a CSV joined on the id.

    Header format: `>ID key=value key=value free text`. The id is the first word; the
    label is the value of `label_key`, the split the value of `split_key` (values have no
    spaces). Sequence lines may wrap; blank lines and ';' comment lines are skipped.

    Args:
        path: the FASTA file.
        task: one of `TASKS`; None infers it from the labels.
        label_key, split_key: header keys for the label and the split.
        labels_path: optional CSV with an id column and a label column (and optionally
            mask and split columns); its labels replace header labels.
        labels_id_column, labels_column, labels_mask_column, labels_split_column: its
            column names (None = auto-detect).
        alphabet: "protein", "dna", "rna", or None to skip the letter check.
        label_separator: separator of multi-label values.
        name: dataset name (default: the file name without suffix).
        bad_labels: a missing or non-finite label (no `label=` while other records have
            one, an empty value, NaN, inf, NA, null, ...; or no row in `labels_path`):
            "error" raises naming the first such record, "drop" drops those records and
            counts them in the dataset's `notes`.
    Returns:
        SequenceDataset.
    Raises:
        DataError: malformed FASTA (text before the first header, empty id, duplicate id,
            record without sequence), invalid letters, missing or non-finite labels; the
            message names the file, the record id and its header line.
    """
    path = Path(path)
    text = _read_text(path)
    records: list[tuple[int, str, dict[str, str], list[tuple[int, str]]]] = []  # (line, id, fields, (line, part)s)
    seen: dict[str, int] = {}
    for n, line in enumerate(text.split("\n"), start=1):
        stripped = line.strip()
        if not stripped or stripped.startswith(";"):
            continue
        if stripped.startswith(">"):
            words = stripped[1:].split()
            if not words:
                raise DataError(f"{str(path)!r}, line {n}: a '>' header without an id; write '>ID' followed by the sequence")
            rid = words[0]
            if rid in seen:
                raise DataError(
                    f"{str(path)!r}, line {n}: record id {rid!r} was already used on line {seen[rid]}; ids must be unique"
                )
            seen[rid] = n
            fields = dict(w.split("=", 1) for w in words[1:] if "=" in w)
            records.append((n, rid, fields, []))
        else:
            if not records:
                raise DataError(
                    f"{str(path)!r}, line {n}: sequence text before the first '>' header; "
                    "a FASTA file starts with a '>ID' line (is this really FASTA?)"
                )
            records[-1][3].append((n, "".join(stripped.split())))
    if not records:
        raise DataError(f"{str(path)!r} contains no FASTA records; a record is a '>ID' line followed by its sequence")

    screen = _LabelScreen(bad_labels)
    ids, seqs, where, raw, splits = [], [], [], [], []
    header_labels = [label_key in fields for _, _, fields, _ in records]
    header_splits = [split_key in fields for _, _, fields, _ in records]
    for (n, rid, fields, parts), has_label, has_split in zip(records, header_labels, header_splits):
        w = f"{str(path)!r}, record {rid!r} (line {n})"
        if labels_path is None and any(header_labels):
            value = fields.get(label_key)
            problem = _label_problem(value, label_separator)
            if problem == "absent":
                screen.reject(w, f"{w}: the header has no {label_key}= value, but other records do; add it")
                continue
            if problem is not None:
                screen.reject(w, f"{w}: the header's {label_key}={value} is {problem}; fill in the label or remove the record")
                continue
            raw.append(value)
        starts, offset = [], 0
        for line_number, part in parts:
            starts.append((offset, line_number))
            offset += len(part)
        seqs.append(_check_letters("".join(part for _, part in parts), alphabet, w, starts))
        ids.append(rid)
        where.append(w)
        if any(header_splits):
            if not has_split:
                raise DataError(f"{w}: the header has no {split_key}= value, but other records do; add it")
            splits.append(_parse_split(fields[split_key], w))

    masks = None
    if labels_path is not None:
        kept, raw, masks, csv_splits = _join_labels(
            Path(labels_path), ids, seqs, where, labels_id_column, labels_column, labels_mask_column, labels_split_column,
            screen, label_separator,
        )  # fmt: skip
        if len(kept) < len(ids):
            ids, seqs, where = [ids[i] for i in kept], [seqs[i] for i in kept], [where[i] for i in kept]
            splits = [splits[i] for i in kept] if splits else splits
        if csv_splits is not None:
            splits = csv_splits
    return _finish(
        ids, seqs, raw if raw else None, task, masks, splits if splits else None, where,
        name or path.stem, label_separator, repr(str(path)), screen, len(records),
    )  # fmt: skip


def _join_labels(
    path: Path,
    ids: list[str],
    seqs: list[str],
    where: list[str],
    id_column: str | None,
    label_column: str | None,
    mask_column: str | None,
    split_column: str | None,
    screen: _LabelScreen,
    separator: str,
) -> tuple[list[int], list[str], list[np.ndarray] | None, list[str] | None]:
    """Labels (and masks, splits) for `ids` from a CSV keyed by id.

    Returns:
        (the indices of the records kept (all, unless `screen` drops bad labels), and the
        labels, masks and splits of those records).
    """
    header, rows = _read_table(path, _read_text(path))
    id_col = _find_column(header, "id", id_column, path, required=True)
    label_col = _find_column(header, "label", label_column, path, required=True)
    mask_col = _find_column(header, "mask", mask_column, path, required=False)
    split_col = _find_column(header, "split", split_column, path, required=False)
    by_id: dict[str, tuple[int, dict[str, str]]] = {}
    for line, row in rows:
        rid = row[id_col]
        if rid in by_id:
            raise DataError(f"{str(path)!r}, line {line}: id {rid!r} already appears on line {by_id[rid][0]}")
        by_id[rid] = (line, row)
    missing = [rid for rid in ids if rid not in by_id]
    if missing and screen.policy == "error":
        shown = ", ".join(repr(m) for m in missing[:5])
        first = where[ids.index(missing[0])]
        raise DataError(
            f"{len(missing)} FASTA record(s) have no row in the labels file {str(path)!r} (e.g. {shown}; the first: "
            f"{first}); add them to its {id_col!r} column" + _DROP_HINT
        )
    extra = len(by_id) - len(set(ids))
    if extra:
        logger.warning("%s: %d label rows name ids that are not in the FASTA file; they are not used", path, extra)
    kept, raw, masks, splits = [], [], [], []
    for i, (rid, seq, w) in enumerate(zip(ids, seqs, where)):
        if rid not in by_id:
            screen.reject(w, f"{w}: no row in the labels file {str(path)!r}")
            continue
        line, row = by_id[rid]
        w_csv = f"{w} / {str(path)!r}, line {line}"
        value = row[label_col]
        what = _column_label_problem(value, label_col, separator)
        if what is not None:
            screen.reject(w_csv, f"{w_csv}: {what}; fill it in or remove the row")
            continue
        kept.append(i)
        raw.append(value)
        if mask_col is not None:
            masks.append(_parse_mask(row[mask_col], seq, w_csv))
        if split_col is not None:
            splits.append(_parse_split(row[split_col], w_csv))
    return kept, raw, masks if mask_col else None, splits if split_col else None


def load_dataset(source: str | Path, **options: Any) -> SequenceDataset:
    """Load a named data set or a file.

    Args:
        source: "amp" (the offline antimicrobial-peptide set, see `load_amp`), or a path:
            FASTA by suffix (.fasta, .fa, .faa, ...), CSV/TSV otherwise (a file whose first
            non-blank character is '>' is read as FASTA whatever its suffix).
        **options: passed to `load_amp`, `read_fasta` or `read_csv` (all take
            `bad_labels="error"|"drop"`).
    """
    if str(source).lower() == "amp":
        return load_amp(**options)
    path = Path(source)
    is_fasta = path.suffix.lower() in FASTA_SUFFIXES
    if not is_fasta and path.is_file():
        text = _read_text(path)
        is_fasta = text.lstrip().startswith(">")
    return read_fasta(path, **options) if is_fasta else read_csv(path, **options)


# ----------------------------------------------------------------------------- bundled data

AMP_LABEL_NAMES = {0: "UniProt", 1: "AMP"}
_MODLAMP_FILE = ("data", "AMPvsUniProt.csv")


def modlamp_amp_path() -> Path:
    """Path of `AMPvsUniProt.csv` inside the installed `modlamp` package (not imported).

    Raises:
        DataError: modlamp is not installed.
    """
    spec = importlib.util.find_spec("modlamp")  # locates the package without running it
    if spec is None or not spec.submodule_search_locations:
        raise DataError(
            "the antimicrobial-peptide set ships with the modlamp package, which is not installed; "
            "run `pip install modlamp`, or point at a copy of its AMPvsUniProt.csv "
            "(`attnlab probe --data PATH`, `load_amp(path=PATH)`)"
        )
    path = Path(list(spec.submodule_search_locations)[0]).joinpath(*_MODLAMP_FILE)
    if not path.is_file():
        raise DataError(f"the installed modlamp has no {'/'.join(_MODLAMP_FILE)}; "
                        "reinstall modlamp>=4.3, or point at a copy of the CSV (`--data PATH`, `load_amp(path=PATH)`)")
    return path


def load_amp(
    path: str | Path | None = None,
    *,
    dedup: bool = True,
    conflicts: str = "drop",
    bad_labels: Literal["error", "drop"] = "error",
) -> SequenceDataset:
    """The antimicrobial peptides (APD3) vs random UniProt peptides set of modlamp (Müller et al.).

    5,200 sequences, label 1 = AMP (2,600 from APD3), 0 = UniProt (2,600 random
    sequences of length 10-50). Read offline from the `modlamp` package, or from `path`:
    either modlamp's own file (first line `5200,1,UniProt,AMP`) or a CSV with
    `sequence,label` columns. The set holds 4,642 distinct sequences, 22 of them with
    both labels; with `dedup` (the default) exact duplicates are collapsed and the
    conflicting ones dropped (see `deduplicate`), leaving 4,620.

    Args:
        path: the CSV file; None reads the copy inside the installed modlamp.
        dedup: collapse exact duplicate sequences (always do this before splitting).
        conflicts: what to do with duplicates carrying different labels (see `deduplicate`).
        bad_labels: rows with a missing or non-finite label: "error" (name the first) or
            "drop" (count them in `notes`).
    Returns:
        SequenceDataset with task "binary", ids "amp0001".."amp5200" (file row order).
    """
    path = Path(path) if path is not None else modlamp_amp_path()
    text = _read_text(path)
    first = text.split("\n", 1)[0].split(",")
    if first and first[0].strip().isdigit():  # modlamp's sklearn-style header: n, n_features, names...
        names = [f.strip() for f in first[2:]]
        label_names = dict(enumerate(names)) if len(names) == 2 else dict(AMP_LABEL_NAMES)
        seqs, labels, where = [], [], []
        screen, total = _LabelScreen(bad_labels), 0
        for n, line in enumerate(text.split("\n")[1:], start=2):
            if not line.strip():
                continue
            parts = [p.strip() for p in line.split(",")]
            w = f"{str(path)!r}, line {n}"
            total += 1
            if len(parts) == 2 and _label_problem(parts[1], MULTILABEL_SEPARATOR) is not None:
                screen.reject(w, f"{w}: the label {parts[1]!r} is {_label_problem(parts[1], MULTILABEL_SEPARATOR)}; "
                                 "write 0 or 1, or remove the row")  # fmt: skip
                continue
            if len(parts) != 2 or not _INT.fullmatch(parts[1]):
                raise DataError(f"{w}: expected 'SEQUENCE,LABEL', got {line!r}")
            seqs.append(_check_letters(parts[0], "protein", w))
            labels.append(int(parts[1]))
            where.append(w)
        ids = [f"amp{i:04d}" for i in range(1, len(seqs) + 1)]
        dataset = SequenceDataset(
            ids, seqs, labels, "binary", name="amp", label_names=label_names,
            notes=[f"read {len(seqs)} sequences from {str(path)!r}"] + ([screen.note(total)] if screen.dropped else []),
        )  # fmt: skip
    else:
        read = read_csv(path, task="binary", id_column=None, name="amp", bad_labels=bad_labels)
        ids = [f"amp{i:04d}" for i in range(1, len(read) + 1)]
        dataset = SequenceDataset(ids, read.sequences, read.labels, "binary", name="amp", label_names=AMP_LABEL_NAMES, notes=read.notes)
    if dedup:
        dataset, _ = deduplicate(dataset, conflicts=conflicts)
    return dataset


def load_flip_ss3(path: str | Path) -> SequenceDataset:
    """FLIP's 3-state secondary structure set (NetSurfP-2.0 data; Dallago et al. 2021).

    A CSV with columns id, sequence, ss3 (H helix / E strand / C coil per residue),
    resolved_mask (0/1 per residue), set (train/test) and validation (True marks
    train rows used for validation), e.g. shared/data/flip_secondary_structure_ss3.csv.

    Returns:
        SequenceDataset with task "residue", masks and train/valid/test splits.
    """
    return read_csv(
        path, task="residue", id_column="id", sequence_column="sequence", label_column="ss3",
        mask_column="resolved_mask", split_column="set", validation_column="validation", name="flip_ss3",
    )  # fmt: skip


# ----------------------------------------------------------------------------- cleaning


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
            action = {"drop": "dropped", "first": "kept the first label", "majority": "majority label (ties dropped)",
                      "mean": "labels averaged"}[self.conflicts]  # fmt: skip
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
    for seq, rows in groups.items():
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
        num_input=len(dataset), num_distinct=len(groups), num_duplicate_rows=len(dataset) - len(groups),
        num_conflicting_sequences=n_conflict_seq, num_conflicting_rows=n_conflict_rows, num_output=len(keep),
        conflicts=conflicts,
    )  # fmt: skip
    source = SequenceDataset(
        dataset.ids, dataset.sequences, new_labels, dataset.task, dataset.mask, dataset.splits,
        name=dataset.name, label_names=dataset.label_names, notes=dataset.notes,
    )  # fmt: skip
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


# ----------------------------------------------------------------------------- splits


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
        raise DataError(f"split fractions must be three non-negative numbers (train, valid, test) summing to 1, got {fractions}")
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


# ----------------------------------------------------------------------------- label encoding


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
    def fit(cls, labels: Sequence[Any], task: str) -> "LabelEncoder":
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
    def from_dict(cls, data: dict[str, Any]) -> "LabelEncoder":
        try:
            return cls(data["task"], data.get("classes") or None)
        except (KeyError, TypeError) as e:
            raise DataError(f"corrupt label encoder description ({type(e).__name__}: {e})") from None

    def save(self, path: str | Path) -> None:
        """Write the encoder as JSON (atomically)."""
        write_json_atomic(path, self.to_dict())

    @classmethod
    def load(cls, path: str | Path) -> "LabelEncoder":
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

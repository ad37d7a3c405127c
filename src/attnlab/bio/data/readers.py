"""Reading labelled sequences from FASTA and CSV files, with `DataError`s that name the file, line and record.

File conventions:
    FASTA   `>ID key=value key=value free text`; the label is the `label=` value (the key
            is configurable), the split the `split=` value; or labels come from a CSV
            joined on the id (`labels_path`). Lines starting with ';' are comments.
    CSV     a header row; columns found by name (case-insensitive) unless given:
            id (id, name, accession, ...), sequence (sequence, seq, ...), label (label,
            target, y, ss3, ...), mask (mask, resolved_mask), split (split, set) and a
            FLIP-style `validation` column (True moves a train row to the valid split).
"""

from __future__ import annotations

import csv
import io
import logging
from collections.abc import Sequence
from pathlib import Path
from typing import Literal

import numpy as np

from attnlab.bio.data.dataset import _SPLIT_ALIASES, SequenceDataset
from attnlab.bio.data.labels import (
    _DROP_HINT,
    MULTILABEL_SEPARATOR,
    _column_label_problem,
    _label_problem,
    _LabelScreen,
    _parse_labels,
    infer_task,
)
from attnlab.bio.tokenizers import DNA_LETTERS, PROTEIN_LETTERS, RNA_LETTERS
from attnlab.errors import DataError

logger = logging.getLogger(__name__)


ALPHABETS = {"protein": PROTEIN_LETTERS, "dna": DNA_LETTERS, "rna": RNA_LETTERS}
FASTA_SUFFIXES = (".fasta", ".fa", ".faa", ".fna", ".fas", ".ffn", ".frn", ".mpfa")


_TRUE = {"true", "1", "yes", "y", "t"}
_FALSE = {"false", "0", "no", "n", "f", ""}


# Column names looked for (case-insensitive), in order of preference.
COLUMN_CANDIDATES: dict[str, tuple[str, ...]] = {
    "id": ("id", "name", "accession", "identifier", "entry", "header", "seq_id", "sequence_id"),
    "sequence": ("sequence", "seq", "sequences", "protein", "peptide", "aa_seq", "primary", "dna", "rna"),
    "label": ("label", "labels", "target", "targets", "y", "ss3", "ss8", "class", "fitness"),
    "mask": ("mask", "resolved_mask", "resolved"),
    "split": ("split", "set", "partition", "subset"),
    "validation": ("validation", "is_validation", "valid"),
}


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
        raise DataError(
            f"unknown alphabet {alphabet!r}; choose one of: {', '.join(ALPHABETS)} (or None to skip checks)"
        )
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
    dataset = SequenceDataset(
        ids, sequences, labels, task if labels is not None else None, masks, splits, name=name, notes=notes
    )
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
    for role, col in (
        ("label", label_col),
        ("mask", mask_col),
        ("split", split_col),
        ("id", id_col),
        ("validation", valid_col),
    ):
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
                    raise DataError(
                        f"{w}: the row is marked validation but its split is {split!r}; only train rows can be"
                    )
                split = "valid"
            splits.append(split)
        ids.append(rid)
        seqs.append(seq)
        where.append(w)
    return _finish(
        ids,
        seqs,
        raw if label_col else None,
        task,
        masks if mask_col else None,
        splits if split_col else None,
        where,
        name or path.stem,
        label_separator,
        repr(str(path)),
        screen,
        len(rows),
    )


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
                raise DataError(
                    f"{str(path)!r}, line {n}: a '>' header without an id; write '>ID' followed by the sequence"
                )
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
    for (n, rid, fields, parts), has_split in zip(records, header_splits):
        w = f"{str(path)!r}, record {rid!r} (line {n})"
        if labels_path is None and any(header_labels):
            value = fields.get(label_key)
            problem = _label_problem(value, label_separator)
            if problem == "absent":
                screen.reject(w, f"{w}: the header has no {label_key}= value, but other records do; add it")
                continue
            if problem is not None:
                screen.reject(
                    w, f"{w}: the header's {label_key}={value} is {problem}; fill in the label or remove the record"
                )
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
            Path(labels_path),
            ids,
            seqs,
            where,
            labels_id_column,
            labels_column,
            labels_mask_column,
            labels_split_column,
            screen,
            label_separator,
        )
        if len(kept) < len(ids):
            ids, seqs, where = [ids[i] for i in kept], [seqs[i] for i in kept], [where[i] for i in kept]
            splits = [splits[i] for i in kept] if splits else splits
        if csv_splits is not None:
            splits = csv_splits
    return _finish(
        ids,
        seqs,
        raw if raw else None,
        task,
        masks,
        splits if splits else None,
        where,
        name or path.stem,
        label_separator,
        repr(str(path)),
        screen,
        len(records),
    )


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

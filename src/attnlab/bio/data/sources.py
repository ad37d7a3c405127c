"""Where sequence data comes from: `load_dataset` (a named data set or a FASTA/CSV file) and the named sets.

Named sets: the antimicrobial-peptide set bundled with the `modlamp` package (`load_amp`, name "amp") and
FLIP's secondary-structure (SS3) CSV files (`load_flip_ss3`).
"""

from __future__ import annotations

import importlib.util
from pathlib import Path
from typing import Any, Literal

from attnlab.bio.data.cleaning import deduplicate
from attnlab.bio.data.dataset import SequenceDataset
from attnlab.bio.data.labels import _INT, MULTILABEL_SEPARATOR, _label_problem, _LabelScreen
from attnlab.bio.data.readers import FASTA_SUFFIXES, _check_letters, _read_text, read_csv, read_fasta
from attnlab.errors import DataError

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
        raise DataError(
            f"the installed modlamp has no {'/'.join(_MODLAMP_FILE)}; "
            "reinstall modlamp>=4.3, or point at a copy of the CSV (`--data PATH`, `load_amp(path=PATH)`)"
        )
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
                screen.reject(
                    w,
                    f"{w}: the label {parts[1]!r} is {_label_problem(parts[1], MULTILABEL_SEPARATOR)}; "
                    "write 0 or 1, or remove the row",
                )
                continue
            if len(parts) != 2 or not _INT.fullmatch(parts[1]):
                raise DataError(f"{w}: expected 'SEQUENCE,LABEL', got {line!r}")
            seqs.append(_check_letters(parts[0], "protein", w))
            labels.append(int(parts[1]))
            where.append(w)
        ids = [f"amp{i:04d}" for i in range(1, len(seqs) + 1)]
        dataset = SequenceDataset(
            ids,
            seqs,
            labels,
            "binary",
            name="amp",
            label_names=label_names,
            notes=[f"read {len(seqs)} sequences from {str(path)!r}"] + ([screen.note(total)] if screen.dropped else []),
        )
    else:
        read = read_csv(path, task="binary", id_column=None, name="amp", bad_labels=bad_labels)
        ids = [f"amp{i:04d}" for i in range(1, len(read) + 1)]
        dataset = SequenceDataset(
            ids, read.sequences, read.labels, "binary", name="amp", label_names=AMP_LABEL_NAMES, notes=read.notes
        )
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
        path,
        task="residue",
        id_column="id",
        sequence_column="sequence",
        label_column="ss3",
        mask_column="resolved_mask",
        split_column="set",
        validation_column="validation",
        name="flip_ss3",
    )


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

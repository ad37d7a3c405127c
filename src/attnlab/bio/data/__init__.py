"""Labelled biological sequence data: loaders, validation, de-duplication, splits, label encoding.

A `SequenceDataset` holds ids, sequences (upper-case), labels, the task, an optional
per-residue mask and optional split names. Loaders read FASTA and CSV files (and the
antimicrobial-peptide set bundled with the `modlamp` package) and raise `DataError`s
that name the file, the line and the record when something is wrong.

Modules (every public name is importable from `attnlab.bio.data` as well):
    attnlab.bio.data.labels    the tasks, label conventions, `infer_task`, `is_missing_label`, `LabelEncoder`
    attnlab.bio.data.dataset   `SequenceDataset` and the split names
    attnlab.bio.data.readers   `read_fasta`, `read_csv` and their file conventions
    attnlab.bio.data.sources   `load_dataset` (a name or a file), `load_amp`, `load_flip_ss3`
    attnlab.bio.data.cleaning  `deduplicate`, `filter_length`
    attnlab.bio.data.splits    `split_indices`, `assign_splits`
"""

from attnlab.bio.data.cleaning import DedupReport, deduplicate, filter_length
from attnlab.bio.data.dataset import SPLIT_NAMES, SequenceDataset
from attnlab.bio.data.labels import (
    BAD_LABEL_POLICIES,
    CLASSIFICATION_TASKS,
    MAX_INFERRED_CLASSES,
    MISSING_LABELS,
    MULTILABEL_SEPARATOR,
    TASKS,
    LabelEncoder,
    infer_task,
    is_missing_label,
)
from attnlab.bio.data.readers import ALPHABETS, COLUMN_CANDIDATES, FASTA_SUFFIXES, read_csv, read_fasta
from attnlab.bio.data.sources import AMP_LABEL_NAMES, load_amp, load_dataset, load_flip_ss3, modlamp_amp_path
from attnlab.bio.data.splits import assign_splits, split_indices

__all__ = [
    "ALPHABETS",
    "AMP_LABEL_NAMES",
    "BAD_LABEL_POLICIES",
    "CLASSIFICATION_TASKS",
    "COLUMN_CANDIDATES",
    "FASTA_SUFFIXES",
    "MAX_INFERRED_CLASSES",
    "MISSING_LABELS",
    "MULTILABEL_SEPARATOR",
    "SPLIT_NAMES",
    "TASKS",
    "DedupReport",
    "LabelEncoder",
    "SequenceDataset",
    "assign_splits",
    "deduplicate",
    "filter_length",
    "infer_task",
    "is_missing_label",
    "load_amp",
    "load_dataset",
    "load_flip_ss3",
    "modlamp_amp_path",
    "read_csv",
    "read_fasta",
    "split_indices",
]

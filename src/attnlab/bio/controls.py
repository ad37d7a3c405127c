"""Control embeddings: what a probe can learn without any language model.

A probe on language-model embeddings is only interesting when it beats probes on
simple features of the same sequences (Hewitt & Liang 2019, "Designing and
interpreting probes with control tasks", make the general point). Two controls live here:

    one-hot      one column per standard residue plus one "other" column for the rare
                 letters (protein: 20 + 1 for X B Z U O; DNA: A C G T + 1 for N). Per
                 residue (L, 21), or pooled: mean-pooled one-hot is the residue
                 composition, max-pooled one-hot says which residues occur at all.
    composition  per sequence the fraction of each residue (the 21 columns above) plus
                 the sequence length: the classic baseline for peptide classification.

A third control, a transformer of the same shape as the language model but with random
weights, is built on top of the Encoder model elsewhere.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from attnlab.bio.embedder_base import ResidueEmbedder, SequenceEmbedder
from attnlab.bio.tokenizers import STANDARD_AMINO_ACIDS
from attnlab.errors import ConfigError

# The letters that get their own one-hot column; everything else goes to "other".
CONTROL_ALPHABETS = {"protein": STANDARD_AMINO_ACIDS, "dna": "ACGT", "rna": "ACGU"}


def _table(alphabet: str) -> tuple[np.ndarray, int]:
    if alphabet not in CONTROL_ALPHABETS:
        raise ConfigError(f"unknown alphabet {alphabet!r}; choose one of: {', '.join(CONTROL_ALPHABETS)}")
    letters = CONTROL_ALPHABETS[alphabet]
    table = np.full(256, len(letters), dtype=np.int64)  # default column: "other"
    for i, c in enumerate(letters):
        table[ord(c)] = i
        table[ord(c.lower())] = i
    return table, len(letters) + 1


def feature_names(alphabet: str = "protein", include_length: bool = False) -> list[str]:
    """Column names of the one-hot / composition features (e.g. ["A", ..., "Y", "other", "length"])."""
    _table(alphabet)
    return list(CONTROL_ALPHABETS[alphabet]) + ["other"] + (["length"] if include_length else [])


def one_hot(sequence: str, alphabet: str = "protein") -> np.ndarray:
    """One-hot encoding of one sequence.

    Args:
        sequence: L letters.
        alphabet: "protein", "dna" or "rna".
    Returns:
        (L, A + 1) float32; column order as `feature_names(alphabet)`.
    """
    table, width = _table(alphabet)
    codes = table[np.frombuffer(sequence.encode("latin-1", errors="replace"), dtype=np.uint8)]  # (L,)
    out = np.zeros((len(codes), width), dtype=np.float32)
    out[np.arange(len(codes)), codes] = 1.0
    return out


def composition(sequences: Sequence[str], alphabet: str = "protein", include_length: bool = True) -> np.ndarray:
    """Residue fractions (and length) of each sequence.

    Args:
        sequences: N sequences.
        alphabet: "protein", "dna" or "rna".
        include_length: append the sequence length as a last column.
    Returns:
        (N, A + 1 [+ 1]) float32; each row's fractions sum to 1.
    """
    table, width = _table(alphabet)
    out = np.zeros((len(sequences), width + int(include_length)), dtype=np.float32)
    for i, seq in enumerate(sequences):
        codes = table[np.frombuffer(seq.encode("latin-1", errors="replace"), dtype=np.uint8)]
        out[i, :width] = np.bincount(codes, minlength=width) / max(len(seq), 1)
        if include_length:
            out[i, width] = len(seq)
    return out


class OneHotEmbedder(ResidueEmbedder):
    """The one-hot control as an embedder (poolings "none", "mean", "max").

    Args:
        alphabet: "protein", "dna" or "rna".
    """

    def __init__(self, alphabet: str = "protein"):
        _table(alphabet)
        self.alphabet = alphabet

    @property
    def identity(self) -> str:
        return f"control:onehot:{self.alphabet}:v1"

    @property
    def embedding_dim(self) -> int:
        return len(CONTROL_ALPHABETS[self.alphabet]) + 1

    def embed_residues(self, sequences: Sequence[str]) -> list[np.ndarray]:
        return [one_hot(s, self.alphabet) for s in sequences]


class CompositionEmbedder(SequenceEmbedder):
    """The composition (+ length) control as an embedder: one vector per sequence.

    Its only pooling is "mean" (composition is the mean of the one-hot rows).

    Args:
        alphabet: "protein", "dna" or "rna".
        include_length: append the length column.
    """

    poolings = ("mean",)

    def __init__(self, alphabet: str = "protein", include_length: bool = True):
        _table(alphabet)
        self.alphabet = alphabet
        self.include_length = include_length

    @property
    def identity(self) -> str:
        return f"control:composition:{self.alphabet}:length={int(self.include_length)}:v1"

    @property
    def embedding_dim(self) -> int:
        return len(CONTROL_ALPHABETS[self.alphabet]) + 1 + int(self.include_length)

    def embed(self, sequences: Sequence[str], pooling: str = "mean") -> np.ndarray:
        self.check_pooling(pooling)
        return composition(sequences, self.alphabet, self.include_length)

"""Protein and nucleotide tokenizers: one id per residue (protein) or per k-mer (DNA / RNA).

ProteinTokenizer ("protein") uses exactly the ESM-2 alphabet and id order (Lin et al.
2023, "Evolutionary-scale prediction of atomic-level protein structure with a language
model"; the 33-token vocabulary of `facebook/esm2_*`), so ids line up with ESM-2
checkpoints and ESM weights can be imported without re-mapping embedding rows:

    id  0-3    <cls> <pad> <eos> <unk>
    id  4-23   L A G V S E R T I D P K Q N F Y M H W C   (the 20 standard amino acids, ESM order)
    id 24-28   X B U Z O                                 (ambiguous / rare letters, see below)
    id 29-30   . -                                       (alignment gaps; only with allow_gaps=True)
    id 31      <null_1>                                  (ESM's unused slot, never produced)
    id 32      <mask>

The rare letters each keep their own id: X = unknown amino acid, B = D or N (Asx),
Z = E or Q (Glx), U = selenocysteine, O = pyrrolysine. Lowercase input is upper-cased
(FASTA files often use lowercase for soft-masked regions) unless `uppercase=False`, in
which case lowercase letters are rejected. Any other character (J, digits, '*', spaces)
raises `InvalidLettersError` (an `UnknownCharactersError`) naming the characters.

DNATokenizer ("dna") and RNATokenizer ("rna") tokenize nucleotides A C G T (U for RNA)
and N (any base) as k-mers, k = 1..6, like DNABERT (Ji et al. 2021):

    id 0-4     <cls> <pad> <eos> <unk> <mask>
    then       all 5**k k-mers over "ACGTN" ("ACGUN"), in lexicographic alphabet order
    then       the shorter pieces (lengths k-1 down to 1), same order; they encode the tail
               of a sequence whose length is not a multiple of k (non-overlapping) or a
               whole sequence shorter than k (overlapping), so that every sequence
               round-trips exactly.

Non-overlapping (default): "ACGTAC" with k=3 -> ACG, TAC; "ACGTA" -> ACG, TA.
Overlapping (stride 1): "ACGTA" with k=3 -> ACG, CGT, GTA (L - k + 1 tokens); decoding
takes the first base of every k-mer plus the rest of the last one.
"""

from __future__ import annotations

import itertools
import logging
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, ClassVar

from attnlab.errors import TokenizerError, UnknownCharactersError
from attnlab.tokenizers.base import Tokenizer, register_tokenizer

if TYPE_CHECKING:  # torch is imported lazily: this module loads with attnlab.tokenizers
    import torch

logger = logging.getLogger(__name__)

# The 20 standard amino acids in ESM-2's id order (most frequent first).
ESM_STANDARD_ORDER = "LAGVSERTIDPKQNFYMHWC"
# The 20 standard amino acids, alphabetically (used for features such as composition).
STANDARD_AMINO_ACIDS = "ACDEFGHIKLMNPQRSTVWY"
# Ambiguous / rare letters, in ESM-2's id order, with their meaning.
RARE_AMINO_ACIDS = {
    "X": "unknown amino acid",
    "B": "aspartate or asparagine (D/N, Asx)",
    "U": "selenocysteine",
    "Z": "glutamate or glutamine (E/Q, Glx)",
    "O": "pyrrolysine",
}
# Every letter a protein sequence may contain.
PROTEIN_LETTERS = ESM_STANDARD_ORDER + "".join(RARE_AMINO_ACIDS)
GAP_CHARACTERS = ".-"
# The full ESM-2 vocabulary, id = position.
ESM2_VOCAB = (
    ["<cls>", "<pad>", "<eos>", "<unk>"] + list(PROTEIN_LETTERS) + list(GAP_CHARACTERS) + ["<null_1>", "<mask>"]
)

DNA_LETTERS = "ACGTN"
RNA_LETTERS = "ACGUN"
NUCLEOTIDE_SPECIALS = ("<cls>", "<pad>", "<eos>", "<unk>", "<mask>")
MAX_KMER = 6


class InvalidLettersError(UnknownCharactersError):
    """A sequence holds letters outside its alphabet (an `UnknownCharactersError`)."""

    def __init__(self, chars: Iterable[str], alphabet_name: str, allowed: str, hint: str = ""):
        self.chars = sorted(set(chars))
        shown = ", ".join(repr(c) for c in self.chars[:20])
        more = f" (and {len(self.chars) - 20} more)" if len(self.chars) > 20 else ""
        hint = hint or "remove or replace them"
        # Bypass UnknownCharactersError's generic message ("train on data that includes
        # them" does not apply to a fixed biological alphabet).
        TokenizerError.__init__(
            self,
            f"the {alphabet_name} sequence contains {len(self.chars)} letter(s) outside its alphabet: "
            f"{shown}{more}; allowed letters are {allowed}; {hint}",
        )


@dataclass
class EncodedBatch:
    """A padded batch of token ids, ready for a model.

    Attributes:
        input_ids: (B, T) int64 token ids, padded with the tokenizer's `<pad>` id.
        attention_mask: (B, T) bool, True at real tokens (specials included), False at padding.
        residue_mask: (B, T) bool, True only at residue/k-mer positions (not <cls>, <eos>,
            padding): the positions to average over for mean pooling or to score per residue.
        lengths: (B,) int64 number of residues (k-mer tokens) per sequence, after truncation.
    """

    input_ids: torch.Tensor
    attention_mask: torch.Tensor
    residue_mask: torch.Tensor
    lengths: torch.Tensor


class SequenceTokenizer(Tokenizer):
    """Shared behaviour of the biological tokenizers: validation, specials, batching."""

    alphabet_name: ClassVar[str] = "biological"

    def __init__(self, uppercase: bool = True):
        self.uppercase = bool(uppercase)

    # Subclasses provide the accepted letters (after upper-casing).
    @property
    def letters(self) -> str:  # pragma: no cover - overridden
        raise NotImplementedError

    def _hint(self, bad: set[str]) -> str:
        return "remove or replace them"

    def normalize(self, sequence: str) -> str:
        """Upper-case `sequence` (when `uppercase`) and check every letter.

        Raises:
            InvalidLettersError: naming the letters outside the alphabet.
        """
        if self.uppercase:
            sequence = sequence.upper()
        bad = self.invalid_letters(sequence)
        if bad:
            raise InvalidLettersError(bad, self.alphabet_name, self._allowed_text(), self._hint(bad))
        return sequence

    def invalid_letters(self, sequence: str) -> set[str]:
        """Letters of `sequence` (upper-cased when `uppercase`) that this tokenizer rejects."""
        if self.uppercase:
            sequence = sequence.upper()
        return set(sequence) - set(self.letters)

    def _allowed_text(self) -> str:
        extra = " (lowercase is upper-cased)" if self.uppercase else " (uppercase only)"
        return " ".join(self.letters) + extra

    def encode_with_specials(self, text: str) -> list[int]:
        """`<cls>` + `encode(text)` + `<eos>` (ESM-2's layout)."""
        return [self.special_tokens["<cls>"], *self.encode(text), self.special_tokens["<eos>"]]

    def encode_batch(
        self,
        sequences: Sequence[str],
        add_special_tokens: bool = True,
        max_length: int | None = None,
    ) -> EncodedBatch:
        """Encode and right-pad a batch of sequences.

        Args:
            sequences: B sequences.
            add_special_tokens: add `<cls>` in front and `<eos>` at the end of each.
            max_length: longest allowed row T (specials included). Longer sequences are
                cut at the end (a warning says how many); None keeps every token.
        Returns:
            EncodedBatch with (B, T) `input_ids`, `attention_mask`, `residue_mask`.
        """
        import torch

        n_special = 2 if add_special_tokens else 0
        if max_length is not None and max_length <= n_special:
            raise TokenizerError(f"max_length={max_length} leaves no room for residues; use a value above {n_special}")
        rows, n_cut = [], 0
        for seq in sequences:
            ids = self.encode(seq)
            if max_length is not None and len(ids) > max_length - n_special:
                ids = ids[: max_length - n_special]
                n_cut += 1
            rows.append(ids)
        if n_cut:
            logger.warning("%d of %d sequences were cut to max_length=%d tokens", n_cut, len(rows), max_length)
        width = max((len(r) for r in rows), default=0) + n_special
        input_ids = torch.full((len(rows), width), self.special_tokens["<pad>"], dtype=torch.long)
        attention_mask = torch.zeros((len(rows), width), dtype=torch.bool)
        residue_mask = torch.zeros((len(rows), width), dtype=torch.bool)
        start = 1 if add_special_tokens else 0
        for b, ids in enumerate(rows):
            n = len(ids)
            input_ids[b, start : start + n] = torch.tensor(ids, dtype=torch.long)
            residue_mask[b, start : start + n] = True
            attention_mask[b, : n + n_special] = True
            if add_special_tokens:
                input_ids[b, 0] = self.special_tokens["<cls>"]
                input_ids[b, n + 1] = self.special_tokens["<eos>"]
        lengths = torch.tensor([len(r) for r in rows], dtype=torch.long)
        return EncodedBatch(input_ids, attention_mask, residue_mask, lengths)

    def _check_ids(self, ids: Iterable[int]) -> list[int]:
        out = []
        for i in ids:
            i = int(i)
            if not 0 <= i < self.vocab_size:
                raise TokenizerError(f"token id {i} is outside the vocabulary (size {self.vocab_size})")
            out.append(i)
        return out


@register_tokenizer("protein")
class ProteinTokenizer(SequenceTokenizer):
    """Amino acids <-> ESM-2 ids (33 tokens; see the module docstring for the table).

    Args:
        uppercase: upper-case the input first (True); with False lowercase letters are errors.
        allow_gaps: accept the alignment characters '.' and '-' (ids 29, 30); off by
            default because plain sequences should not contain them.
    """

    alphabet_name = "protein"

    def __init__(self, uppercase: bool = True, allow_gaps: bool = False):
        super().__init__(uppercase)
        self.allow_gaps = bool(allow_gaps)
        self.itos = list(ESM2_VOCAB)
        self.stoi = {t: i for i, t in enumerate(self.itos)}
        self._specials = {t: i for i, t in enumerate(self.itos) if t.startswith("<")}

    @classmethod
    def train(cls, text: str, **options: Any) -> ProteinTokenizer:
        """Return the fixed alphabet after checking that `text` uses only its letters.

        Whitespace (line breaks between sequences) is ignored; `options` go to the constructor.

        Raises:
            InvalidLettersError: `text` holds letters that are not amino acids.
        """
        tokenizer = cls(**options)
        if not text.strip():
            raise TokenizerError("cannot check an empty protein corpus; give at least one sequence")
        tokenizer.normalize("".join(text.split()))
        return tokenizer

    @property
    def letters(self) -> str:
        return PROTEIN_LETTERS + (GAP_CHARACTERS if self.allow_gaps else "")

    def _hint(self, bad: set[str]) -> str:
        hints = ["write unknown residues as X"]
        if "*" in bad:
            hints.append("remove stop codons ('*')")
        if bad & set(GAP_CHARACTERS):
            hints.append("remove alignment gaps or use allow_gaps=True")
        if any(c.islower() for c in bad):
            hints.append("upper-case the sequence or use uppercase=True")
        return ", ".join(hints)

    @property
    def vocab_size(self) -> int:
        return len(self.itos)

    @property
    def special_tokens(self) -> dict[str, int]:
        return dict(self._specials)

    def encode(self, text: str) -> list[int]:
        stoi = self.stoi
        return [stoi[c] for c in self.normalize(text)]

    def decode(self, ids: Iterable[int]) -> str:
        return "".join(self.itos[i] for i in self._check_ids(ids))

    def token_strings(self, ids: Sequence[int]) -> list[str]:
        return [self.itos[i] for i in self._check_ids(ids)]

    def to_dict(self) -> dict[str, Any]:
        return {"uppercase": self.uppercase, "allow_gaps": self.allow_gaps, "vocab": self.itos}

    @classmethod
    def from_dict(cls, data: dict[str, Any], folder: Path) -> ProteinTokenizer:
        tokenizer = cls(uppercase=data.get("uppercase", True), allow_gaps=data.get("allow_gaps", False))
        if "vocab" in data and list(data["vocab"]) != tokenizer.itos:
            raise TokenizerError(
                "the saved protein vocabulary differs from the ESM-2 alphabet this attnlab version uses; "
                "re-create the tokenizer with ProteinTokenizer()"
            )
        return tokenizer


@register_tokenizer("dna")
class DNATokenizer(SequenceTokenizer):
    """Nucleotides <-> k-mer ids (see the module docstring for the id layout).

    Args:
        k: k-mer size, 1..6 (1 = one token per base).
        overlapping: stride 1 (overlapping k-mers, DNABERT style) instead of stride k.
        uppercase: upper-case the input first (True); with False lowercase is an error.
        rna: use U instead of T (the alphabet becomes A C G U N).
    """

    alphabet_name = "DNA"

    def __init__(self, k: int = 1, overlapping: bool = False, uppercase: bool = True, rna: bool = False):
        super().__init__(uppercase)
        if not isinstance(k, int) or isinstance(k, bool) or not 1 <= k <= MAX_KMER:
            raise TokenizerError(f"k-mer size k={k!r} is not supported; choose an integer from 1 to {MAX_KMER}")
        self.k = k
        self.overlapping = bool(overlapping)
        self.rna = bool(rna)
        if self.rna:
            self.alphabet_name = "RNA"
        base = RNA_LETTERS if self.rna else DNA_LETTERS
        self._letters = base
        pieces = [
            "".join(p) for size in range(k, 0, -1) for p in itertools.product(base, repeat=size)
        ]  # full k-mers first, then the shorter tail pieces
        self.itos = list(NUCLEOTIDE_SPECIALS) + pieces
        self.stoi = {t: i for i, t in enumerate(self.itos)}

    @classmethod
    def train(cls, text: str, **options: Any) -> DNATokenizer:
        """Return the fixed k-mer vocabulary after checking that `text` uses only its letters.

        Whitespace is ignored; `options` (k, overlapping, uppercase, rna) go to the constructor.
        """
        tokenizer = cls(**options)
        if not text.strip():
            raise TokenizerError(f"cannot check an empty {tokenizer.alphabet_name} corpus; give at least one sequence")
        tokenizer.normalize("".join(text.split()))
        return tokenizer

    @property
    def letters(self) -> str:
        return self._letters

    def _hint(self, bad: set[str]) -> str:
        other = "T" if self.rna else "U"
        hint = "write unknown bases as N"
        if other in bad:
            hint += f" ('{other}' belongs to the {'DNA' if self.rna else 'RNA'} alphabet: use rna={not self.rna})"
        if any(c.islower() for c in bad):
            hint += "; upper-case the sequence or use uppercase=True"
        return hint

    @property
    def vocab_size(self) -> int:
        return len(self.itos)

    @property
    def special_tokens(self) -> dict[str, int]:
        return {t: i for i, t in enumerate(NUCLEOTIDE_SPECIALS)}

    def split_kmers(self, text: str) -> list[str]:
        """The k-mer pieces `encode` turns into ids (after upper-casing and checking)."""
        seq = self.normalize(text)
        k = self.k
        if not seq:
            return []
        if self.overlapping and len(seq) >= k:
            return [seq[i : i + k] for i in range(len(seq) - k + 1)]
        if self.overlapping:  # shorter than k: the whole sequence is one (tail) piece
            return [seq]
        return [seq[i : i + k] for i in range(0, len(seq), k)]

    def encode(self, text: str) -> list[int]:
        stoi = self.stoi
        return [stoi[p] for p in self.split_kmers(text)]

    def decode(self, ids: Iterable[int]) -> str:
        """Text of the ids; special tokens are written as their text.

        Overlapping k-mers are joined by their first base plus the rest of the last k-mer
        of each run between special tokens (exact for ids produced by `encode`).
        """
        n_special = len(NUCLEOTIDE_SPECIALS)
        out: list[str] = []
        run: list[str] = []

        def flush() -> None:
            if run:
                if self.overlapping:
                    out.append("".join(p[0] for p in run[:-1]) + run[-1])
                else:
                    out.append("".join(run))
                run.clear()

        for i in self._check_ids(ids):
            if i < n_special:
                flush()
                out.append(self.itos[i])
            else:
                run.append(self.itos[i])
        flush()
        return "".join(out)

    def token_strings(self, ids: Sequence[int]) -> list[str]:
        return [self.itos[i] for i in self._check_ids(ids)]

    def to_dict(self) -> dict[str, Any]:
        return {"k": self.k, "overlapping": self.overlapping, "uppercase": self.uppercase, "rna": self.rna}

    @classmethod
    def from_dict(cls, data: dict[str, Any], folder: Path) -> DNATokenizer:
        return cls(
            k=int(data["k"]),
            overlapping=bool(data.get("overlapping", False)),
            uppercase=bool(data.get("uppercase", True)),
            rna=bool(data.get("rna", False)),
        )

    def __repr__(self) -> str:
        mode = "overlapping" if self.overlapping else "non-overlapping"
        return f"{type(self).__name__}(k={self.k}, {mode}, alphabet={self.letters!r}, vocab_size={self.vocab_size})"


@register_tokenizer("rna")
class RNATokenizer(DNATokenizer):
    """`DNATokenizer` with the RNA alphabet A C G U N (same options, `rna` fixed to True)."""

    def __init__(self, k: int = 1, overlapping: bool = False, uppercase: bool = True, rna: bool = True):
        if not rna:
            raise TokenizerError("RNATokenizer always uses the RNA alphabet; use DNATokenizer for DNA")
        super().__init__(k=k, overlapping=overlapping, uppercase=uppercase, rna=True)

"""Character-level tokenizer: one id per distinct character of the training text.

The simplest tokenizer (Karpathy's char-rnn and nanoGPT's shakespeare_char): the
vocabulary is the sorted set of characters, optionally preceded by special tokens.

Whole corpora are scanned and encoded in slices of `ENCODE_CHUNK_CHARS` characters, each
turned into an array of code points at once (the slice's ASCII bytes, or its UTF-32) and
mapped through a lookup table indexed by code point, so no Python object is made per
character and the ids go straight into a compact array (`encode_array`, `encode_chunks`).
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Sequence
from pathlib import Path
from typing import Any

import numpy as np

from attnlab.errors import TokenizerError, UnknownCharactersError
from attnlab.tokenizers.base import Tokenizer, register_tokenizer, token_dtype

# Characters per slice when a corpus is scanned or encoded: while a slice is processed it
# costs its copy, 4 bytes a character of UTF-32 and 4 of int32 ids (~10 MB), whatever the
# corpus size; 1 Mi characters was also the fastest size measured (vs 256 Ki and 4 Mi).
ENCODE_CHUNK_CHARS = 1 << 20


def _slices(text: str) -> Iterator[str]:
    size = ENCODE_CHUNK_CHARS
    for start in range(0, len(text), size):
        yield text[start : start + size]


def _codepoints(chunk: str) -> np.ndarray:
    """(n,) code points of the n characters of `chunk` (uint8 when it is ASCII, else uint32)."""
    if chunk.isascii():  # O(1) in CPython; a slice is stored as ASCII when all of it is
        return np.frombuffer(chunk.encode("ascii"), dtype=np.uint8)
    # surrogatepass: a lone surrogate (possible in a str, never in decoded UTF-8) is its own code point
    return np.frombuffer(chunk.encode("utf-32-le", "surrogatepass"), dtype="<u4")


def distinct_chars(text: str) -> list[str]:
    """The distinct characters of `text`, sorted (equal to `sorted(set(text))`, in slices)."""
    present: set[int] = set()
    for chunk in _slices(text):
        present.update(np.flatnonzero(np.bincount(_codepoints(chunk))).tolist())
    return [chr(c) for c in sorted(present)]


@register_tokenizer("char")
class CharTokenizer(Tokenizer):
    """Characters <-> ids.

    Args:
        chars: the vocabulary characters, in id order (after the special tokens).
        specials: special tokens, given ids 0..len(specials)-1 (e.g. `["[PAD]", "[UNK]"]`).
            With an unknown token (`<unk>`/`[UNK]`) unseen characters map to it;
            without one, encoding unseen characters raises `UnknownCharactersError`.
    """

    def __init__(self, chars: Sequence[str], specials: Sequence[str] = ()):
        chars = list(chars)
        if any(len(c) != 1 for c in chars):
            raise TokenizerError("CharTokenizer vocabulary entries must be single characters")
        if len(set(chars)) != len(chars):
            raise TokenizerError("CharTokenizer vocabulary has duplicate characters")
        if len(set(specials)) != len(specials):
            raise TokenizerError("CharTokenizer special tokens must be distinct")
        self.specials = list(specials)
        self.chars = chars
        self.itos = self.specials + self.chars
        self._special_ids = {s: i for i, s in enumerate(self.specials)}
        self.stoi = {c: i + len(self.specials) for i, c in enumerate(chars)}
        self._table: np.ndarray | None = None  # code point -> id, built on first `encode_array`

    @classmethod
    def train(cls, text: str, specials: Sequence[str] = ()) -> CharTokenizer:
        """Build the vocabulary from the distinct characters of `text`."""
        if not text:
            raise TokenizerError("cannot build a character vocabulary from empty text")
        return cls(distinct_chars(text), specials)

    @property
    def vocab_size(self) -> int:
        return len(self.itos)

    @property
    def special_tokens(self) -> dict[str, int]:
        return dict(self._special_ids)

    def encode(self, text: str) -> list[int]:
        stoi = self.stoi
        try:
            return [stoi[c] for c in text]
        except KeyError:
            unknown = {c for c in text if c not in stoi}
            unk = self.unk_id
            if unk is None:
                raise UnknownCharactersError(unknown) from None
            return [stoi.get(c, unk) for c in text]

    def _lookup_table(self) -> np.ndarray:
        """(max code point + 2,) int32: the id of each code point; the last entry (where
        larger code points are clipped to) and every character outside the vocabulary hold
        the unknown token's id, or -1 when there is none."""
        if self._table is None:
            codes = np.array([ord(c) for c in self.chars], dtype=np.int64)
            unk = self.unk_id
            table = np.full(int(codes.max(initial=127)) + 2, -1 if unk is None else unk, dtype=np.int32)
            table[codes] = np.arange(len(self.specials), len(self.itos), dtype=np.int32)
            self._table = table
        return self._table

    def _encode_slice(self, chunk: str, text: str) -> np.ndarray:
        """(n,) int32 ids of `chunk` (a slice of `text`, which is scanned for the error message)."""
        ids = np.take(self._lookup_table(), _codepoints(chunk), mode="clip")
        if self.unk_id is None and len(ids) and ids.min() < 0:
            raise UnknownCharactersError(set(distinct_chars(text)) - self.stoi.keys())
        return ids

    def encode_array(self, text: str) -> np.ndarray:
        """Token ids of `text` as a compact (N,) array, encoded slice by slice (no list of ints).

        Raises:
            UnknownCharactersError: as `encode`, naming every unknown character of `text`.
        """
        if type(self).encode is not CharTokenizer.encode:  # a subclass changed the encoding
            return super().encode_array(text)
        out = np.empty(len(text), dtype=token_dtype(self.vocab_size))
        start = 0
        for chunk in _slices(text):
            out[start : start + len(chunk)] = self._encode_slice(chunk, text)
            start += len(chunk)
        return out

    def encode_chunks(self, text: str) -> Iterator[np.ndarray]:
        """`encode_array(text)` in consecutive pieces of up to `ENCODE_CHUNK_CHARS` ids."""
        if type(self).encode is not CharTokenizer.encode:
            yield from super().encode_chunks(text)
            return
        dtype = token_dtype(self.vocab_size)
        for chunk in _slices(text):
            yield self._encode_slice(chunk, text).astype(dtype)

    def decode(self, ids: Iterable[int]) -> str:
        itos = self.itos
        out = []
        for i in ids:
            i = int(i)
            if not 0 <= i < len(itos):
                raise TokenizerError(f"token id {i} is outside the vocabulary (size {len(itos)})")
            out.append(itos[i])
        return "".join(out)

    def token_strings(self, ids: Sequence[int]) -> list[str]:
        return [self.itos[int(i)] for i in ids]

    def to_dict(self) -> dict[str, Any]:
        return {"chars": self.chars, "specials": self.specials}

    @classmethod
    def from_dict(cls, data: dict[str, Any], folder: Path) -> CharTokenizer:
        return cls(data["chars"], data.get("specials", []))

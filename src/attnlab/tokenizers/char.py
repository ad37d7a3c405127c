"""Character-level tokenizer: one id per distinct character of the training text.

The simplest tokenizer (Karpathy's char-rnn and nanoGPT's shakespeare_char): the
vocabulary is the sorted set of characters, optionally preceded by special tokens.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, Iterable, Sequence

from attnlab.errors import TokenizerError, UnknownCharactersError
from attnlab.tokenizers.base import Tokenizer, register_tokenizer


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

    @classmethod
    def train(cls, text: str, specials: Sequence[str] = ()) -> "CharTokenizer":
        """Build the vocabulary from the distinct characters of `text`."""
        if not text:
            raise TokenizerError("cannot build a character vocabulary from empty text")
        return cls(sorted(set(text)), specials)

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
    def from_dict(cls, data: dict[str, Any], folder: Path) -> "CharTokenizer":
        return cls(data["chars"], data.get("specials", []))

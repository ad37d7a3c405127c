"""Word-level tokenizer with `<pad> <unk> <bos> <eos>` (plus optional extra special tokens).

Text is split GPT-2 style into words that carry their leading space (`" cat"`),
runs of punctuation, and whitespace, so decoding gives back exactly the text that
was encoded when every piece is in the vocabulary. Pieces outside the vocabulary
(kept to the most frequent `max_vocab` pieces seen `min_freq` times) become `<unk>`.
"""

from __future__ import annotations

import re
from collections import Counter
from collections.abc import Iterable, Sequence
from pathlib import Path
from typing import Any

from attnlab.errors import TokenizerError
from attnlab.tokenizers.base import Tokenizer, register_tokenizer

WORD_SPECIALS = ("<pad>", "<unk>", "<bos>", "<eos>")
# A word or a punctuation run, each with an optional leading space; else whitespace.
_PIECE = re.compile(r" ?\w+| ?[^\w\s]+|\s+(?!\S)|\s+")


def split_words(text: str) -> list[str]:
    """Split text into the pieces the word tokenizer counts (concatenation == text)."""
    return _PIECE.findall(text)


@register_tokenizer("word")
class WordTokenizer(Tokenizer):
    """Words <-> ids; ids 0-3 are `<pad> <unk> <bos> <eos>`, then any extra `specials`
    (e.g. BERT's `[CLS] [SEP] [MASK]` for masked-LM training), then the words."""

    def __init__(self, words: Sequence[str], specials: Sequence[str] = ()):
        self.extra_specials = [s for s in specials if s not in WORD_SPECIALS]
        reserved = set(WORD_SPECIALS) | set(self.extra_specials)
        self.itos = list(WORD_SPECIALS) + self.extra_specials + [w for w in words if w not in reserved]
        if len(set(self.itos)) != len(self.itos):
            raise TokenizerError("WordTokenizer vocabulary has duplicate entries")
        self.stoi = {w: i for i, w in enumerate(self.itos)}

    @classmethod
    def train(cls, text: str, max_vocab: int = 20000, min_freq: int = 1, specials: Sequence[str] = ()) -> WordTokenizer:
        """Keep the `max_vocab - 4 - len(specials)` most frequent pieces seen at least `min_freq` times.

        Ties are broken alphabetically so that the vocabulary is deterministic.
        """
        if not text:
            raise TokenizerError("cannot build a word vocabulary from empty text")
        n_special = len(WORD_SPECIALS) + len([s for s in specials if s not in WORD_SPECIALS])
        if max_vocab <= n_special:
            raise TokenizerError(f"max_vocab must exceed {n_special} (the special tokens)")
        counts = Counter(split_words(text))
        ranked = sorted(
            (w for w, n in counts.items() if n >= min_freq and w not in specials), key=lambda w: (-counts[w], w)
        )
        return cls(ranked[: max_vocab - n_special], specials)

    @property
    def vocab_size(self) -> int:
        return len(self.itos)

    @property
    def special_tokens(self) -> dict[str, int]:
        return {s: i for i, s in enumerate([*WORD_SPECIALS, *self.extra_specials])}

    def encode(self, text: str) -> list[int]:
        unk = self.stoi["<unk>"]
        return [self.stoi.get(p, unk) for p in split_words(text)]

    def decode(self, ids: Iterable[int]) -> str:
        out = []
        for i in ids:
            i = int(i)
            if not 0 <= i < len(self.itos):
                raise TokenizerError(f"token id {i} is outside the vocabulary (size {len(self.itos)})")
            out.append(self.itos[i])
        return "".join(out)

    def to_dict(self) -> dict[str, Any]:
        n_special = len(WORD_SPECIALS) + len(self.extra_specials)
        out: dict[str, Any] = {"words": self.itos[n_special:]}
        if self.extra_specials:
            out["specials"] = list(self.extra_specials)
        return out

    @classmethod
    def from_dict(cls, data: dict[str, Any], folder: Path) -> WordTokenizer:
        return cls(data["words"], data.get("specials", ()))

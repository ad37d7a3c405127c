"""Tokenizers: character, word, byte-level BPE (and, from the bio lab, protein and DNA).

All share the `Tokenizer` interface (`encode`, `decode`, `vocab_size`, `special_tokens`,
`save`) and load back with `load_tokenizer(folder)`.
"""

from attnlab.tokenizers.base import Tokenizer, load_tokenizer, register_tokenizer, registered_kinds, tokenizer_class
from attnlab.tokenizers.bpe import BPETokenizer, HFTokenizer
from attnlab.tokenizers.char import CharTokenizer
from attnlab.tokenizers.word import WordTokenizer

# The protein / DNA / RNA tokenizers live with the bio lab (`attnlab.bio.tokenizers`) and
# are imported only when one is loaded or built (`attnlab.tokenizers.base.LAZY_KINDS`).

__all__ = [
    "Tokenizer",
    "CharTokenizer",
    "WordTokenizer",
    "BPETokenizer",
    "HFTokenizer",
    "load_tokenizer",
    "register_tokenizer",
    "registered_kinds",
    "tokenizer_class",
    "build_tokenizer",
]


def build_tokenizer(kind: str, text: str, **options) -> Tokenizer:
    """Train a tokenizer of `kind` (`char`, `word`, `bpe`, or a registered bio kind) on `text`."""
    from attnlab.errors import TokenizerError

    if kind == "char":
        return CharTokenizer.train(text, **options)
    if kind == "word":
        return WordTokenizer.train(text, **options)
    if kind == "bpe":
        return BPETokenizer.train(text, **options)
    cls = tokenizer_class(kind) if isinstance(kind, str) else None
    if cls is not None and hasattr(cls, "train"):
        return cls.train(text, **options)  # type: ignore[attr-defined]
    raise TokenizerError(f"unknown tokenizer {kind!r}; choose one of: {', '.join(registered_kinds())}")

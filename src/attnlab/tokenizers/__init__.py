"""Tokenizers: character, word, byte-level BPE (and, from the bio lab, protein and DNA).

All share the `Tokenizer` interface (`encode`, `decode`, `vocab_size`, `special_tokens`,
`save`) and load back with `load_tokenizer(folder)`.
"""

from attnlab.tokenizers.base import Tokenizer, load_tokenizer, register_tokenizer, registered_kinds
from attnlab.tokenizers.bpe import BPETokenizer, HFTokenizer
from attnlab.tokenizers.char import CharTokenizer
from attnlab.tokenizers.word import WordTokenizer

try:  # protein / DNA tokenizers live with the bio lab
    import attnlab.bio.tokenizers  # noqa: F401
except ModuleNotFoundError as e:  # pragma: no cover - while the bio lab is absent
    if e.name not in ("attnlab.bio.tokenizers", "attnlab.bio"):
        raise

__all__ = [
    "Tokenizer",
    "CharTokenizer",
    "WordTokenizer",
    "BPETokenizer",
    "HFTokenizer",
    "load_tokenizer",
    "register_tokenizer",
    "registered_kinds",
    "build_tokenizer",
]



def build_tokenizer(kind: str, text: str, **options) -> Tokenizer:
    """Train a tokenizer of `kind` (`char`, `word`, `bpe`, or a registered bio kind) on `text`."""
    from attnlab.errors import TokenizerError
    from attnlab.tokenizers.base import _REGISTRY

    if kind == "char":
        return CharTokenizer.train(text, **options)
    if kind == "word":
        return WordTokenizer.train(text, **options)
    if kind == "bpe":
        return BPETokenizer.train(text, **options)
    cls = _REGISTRY.get(kind)
    if cls is not None and hasattr(cls, "train"):
        return cls.train(text, **options)  # type: ignore[attr-defined]
    raise TokenizerError(f"unknown tokenizer {kind!r}; choose one of: {', '.join(registered_kinds())}")

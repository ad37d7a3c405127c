"""The tokenizer interface every attnlab tokenizer follows, and its save/load format.

A tokenizer turns text into a list of integer ids and back; `encode_array` gives the ids
of a whole corpus as a compact NumPy array instead (`token_dtype`: uint8, uint16 or
uint32, the smallest that holds the vocabulary), and `encode_chunks` streams them. Each one saves to a
folder (normally a checkpoint folder) as `attnlab_tokenizer.json`, a small JSON file
whose `type` names the class; Hugging Face based tokenizers also write the standard
`tokenizer.json` beside it. `load_tokenizer(folder)` reads either back.

Kinds defined above this package (the bio lab's protein, DNA and RNA tokenizers) are
listed in `LAZY_KINDS` and imported only when a tokenizer of that kind is loaded or
built, so loading a character-level checkpoint never imports `attnlab.bio`.
"""

from __future__ import annotations

import importlib
import json
from abc import ABC, abstractmethod
from collections.abc import Callable, Iterable, Iterator, Sequence
from pathlib import Path
from typing import Any, ClassVar

import numpy as np

from attnlab.errors import TokenizerError
from attnlab.utils import write_json_atomic

TOKENIZER_FILE = "attnlab_tokenizer.json"

_REGISTRY: dict[str, type[Tokenizer]] = {}

# kind -> "module:Class" of tokenizers that live outside `attnlab.tokenizers`; the module
# is imported (and its class registers itself) the first time that kind is needed.
LAZY_KINDS: dict[str, str] = {
    "protein": "attnlab.bio.tokenizers:ProteinTokenizer",
    "dna": "attnlab.bio.tokenizers:DNATokenizer",
    "rna": "attnlab.bio.tokenizers:RNATokenizer",
}


def token_dtype(vocab_size: int) -> np.dtype:
    """The smallest unsigned integer dtype that holds every id of a vocabulary.

    Args:
        vocab_size: number of ids (ids are 0 .. vocab_size - 1).
    Returns:
        uint8 up to 256 ids, uint16 up to 65,536, else uint32.
    """
    if vocab_size <= 1 << 8:
        return np.dtype(np.uint8)
    if vocab_size <= 1 << 16:
        return np.dtype(np.uint16)
    if vocab_size <= 1 << 32:
        return np.dtype(np.uint32)
    raise TokenizerError(f"a vocabulary of {vocab_size:,} ids does not fit 32-bit token ids")


def register_tokenizer(kind: str) -> Callable[[type[Tokenizer]], type[Tokenizer]]:
    """Class decorator: make a tokenizer class loadable under `type: kind`."""

    def wrap(cls: type[Tokenizer]) -> type[Tokenizer]:
        cls.kind = kind
        _REGISTRY[kind] = cls
        return cls

    return wrap


class Tokenizer(ABC):
    """Text <-> token ids.

    Special tokens (padding, unknown, begin/end of sequence, BERT's CLS/SEP/MASK) are
    kept in `special_tokens`, a mapping from the token's text to its id.
    """

    kind: ClassVar[str] = "base"

    # Spellings looked for by the `pad_id`, `unk_id`, ... properties, in order.
    _ROLE_NAMES: ClassVar[dict[str, tuple[str, ...]]] = {
        "pad": ("<pad>", "[PAD]"),
        "unk": ("<unk>", "[UNK]"),
        "bos": ("<bos>", "<s>", "<cls>", "[CLS]", "<|endoftext|>"),
        "eos": ("<eos>", "</s>", "[SEP]", "<|endoftext|>"),
        "cls": ("[CLS]", "<cls>", "<s>"),
        "sep": ("[SEP]", "</s>", "<eos>"),
        "mask": ("[MASK]", "<mask>"),
    }

    @property
    @abstractmethod
    def vocab_size(self) -> int:
        """Number of distinct ids (the model's embedding rows)."""

    @property
    def special_tokens(self) -> dict[str, int]:
        """Special token text -> id (empty when the tokenizer has none)."""
        return {}

    @abstractmethod
    def encode(self, text: str) -> list[int]:
        """Token ids of `text` (no special tokens added).

        Raises:
            UnknownCharactersError: when `text` holds characters the tokenizer cannot represent.
        """

    def encode_array(self, text: str) -> np.ndarray:
        """Token ids of `text` as a compact (N,) array of dtype `token_dtype(vocab_size)`.

        The default goes through `encode`; tokenizers that can, override it (or
        `encode_chunks`) to skip the Python list of ints.
        Raises:
            UnknownCharactersError: as `encode`.
        """
        return np.asarray(self.encode(text), dtype=token_dtype(self.vocab_size))

    def encode_chunks(self, text: str) -> Iterator[np.ndarray]:
        """The ids of `text` as consecutive compact arrays whose concatenation is `encode_array(text)`.

        Lets a caller write the ids of a large corpus to a file without holding them all;
        the default yields one array.
        """
        yield self.encode_array(text)

    @abstractmethod
    def decode(self, ids: Iterable[int]) -> str:
        """Text of the ids (special tokens are written out as their text)."""

    @abstractmethod
    def to_dict(self) -> dict[str, Any]:
        """JSON-ready description, enough for `from_dict` to rebuild the tokenizer."""

    @classmethod
    @abstractmethod
    def from_dict(cls, data: dict[str, Any], folder: Path) -> Tokenizer:
        """Rebuild from `to_dict()` output; `folder` holds any side files."""

    def token_strings(self, ids: Sequence[int]) -> list[str]:
        """One display string per id (for attention-map labels)."""
        return [self.decode([int(i)]) for i in ids]

    def _role(self, role: str) -> int | None:
        specials = self.special_tokens
        for name in self._ROLE_NAMES[role]:
            if name in specials:
                return specials[name]
        return None

    @property
    def pad_id(self) -> int | None:
        return self._role("pad")

    @property
    def unk_id(self) -> int | None:
        return self._role("unk")

    @property
    def bos_id(self) -> int | None:
        return self._role("bos")

    @property
    def eos_id(self) -> int | None:
        return self._role("eos")

    @property
    def cls_id(self) -> int | None:
        return self._role("cls")

    @property
    def sep_id(self) -> int | None:
        return self._role("sep")

    @property
    def mask_id(self) -> int | None:
        return self._role("mask")

    def save_side_files(self, folder: Path) -> None:  # noqa: B027 (a hook: most tokenizers have no side files)
        """Write extra files next to `attnlab_tokenizer.json` (HF's tokenizer.json)."""

    def save(self, folder: str | Path) -> None:
        """Write the tokenizer into `folder` (created if needed)."""
        folder = Path(folder)
        folder.mkdir(parents=True, exist_ok=True)
        self.save_side_files(folder)
        write_json_atomic(folder / TOKENIZER_FILE, {"type": self.kind, **self.to_dict()})

    def __repr__(self) -> str:
        return f"{type(self).__name__}(vocab_size={self.vocab_size})"


def load_tokenizer(folder: str | Path) -> Tokenizer:
    """Load the tokenizer saved in `folder` (a checkpoint folder).

    Raises:
        TokenizerError: no tokenizer file, unreadable JSON or an unknown type.
    """
    # Importing the package registers every built-in tokenizer class.
    import attnlab.tokenizers  # noqa: F401

    folder = Path(folder)
    path = folder / TOKENIZER_FILE
    if not path.is_file():
        raise TokenizerError(f"no tokenizer in {str(folder)!r}: {TOKENIZER_FILE} is missing")
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (json.JSONDecodeError, UnicodeDecodeError) as e:
        raise TokenizerError(f"{str(path)!r} is not valid JSON: {e}") from None
    kind = data.get("type") if isinstance(data, dict) else None
    cls = tokenizer_class(kind) if isinstance(kind, str) else None
    if cls is None:
        raise TokenizerError(
            f"{str(path)!r} names an unknown tokenizer type {kind!r}; known types: {', '.join(registered_kinds())}"
        )
    try:
        return cls.from_dict(data, folder)
    except (KeyError, TypeError, ValueError) as e:
        if isinstance(e, TokenizerError):
            raise
        raise TokenizerError(f"{str(path)!r} is corrupt ({type(e).__name__}: {e})") from None


def registered_kinds() -> list[str]:
    """Names of all tokenizer types: the registered ones and those in `LAZY_KINDS` (not imported)."""
    import attnlab.tokenizers  # noqa: F401

    return sorted(set(_REGISTRY) | set(LAZY_KINDS))


def tokenizer_class(kind: str) -> type[Tokenizer] | None:
    """The class registered under `kind`, importing its module first for a `LAZY_KINDS` entry.

    Returns:
        The class, or None when no tokenizer type has that name.
    Raises:
        TokenizerError: a `LAZY_KINDS` entry whose module does not define the class.
    """
    import attnlab.tokenizers  # noqa: F401  (registers the built-in kinds)

    if kind not in _REGISTRY and kind in LAZY_KINDS:
        module_name, _, class_name = LAZY_KINDS[kind].partition(":")
        module = importlib.import_module(module_name)  # its classes register themselves
        cls = getattr(module, class_name, None)
        if cls is None or _REGISTRY.get(kind) is not cls:
            raise TokenizerError(f"{LAZY_KINDS[kind]} does not define the {kind!r} tokenizer")
    return _REGISTRY.get(kind)

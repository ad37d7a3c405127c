"""Hugging Face `tokenizers` based tokenizers: byte-level BPE trained locally, and a
wrapper for any `tokenizer.json` (GPT-2's BPE, BERT's WordPiece, ...).

Byte-level BPE (Sennrich et al. 2016; the GPT-2 variant, Radford et al. 2019) starts
from the 256 byte values, so any UTF-8 text can be encoded and decodes back exactly,
then learns merges of frequent pairs up to the requested vocabulary size.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from pathlib import Path
from typing import Any

from attnlab.errors import TokenizerError
from attnlab.tokenizers.base import Tokenizer, register_tokenizer

HF_TOKENIZER_FILE = "tokenizer.json"
END_OF_TEXT = "<|endoftext|>"


@register_tokenizer("hf")
class HFTokenizer(Tokenizer):
    """Wraps a `tokenizers.Tokenizer` (loaded from a Hugging Face `tokenizer.json`).

    Args:
        tokenizer: the `tokenizers.Tokenizer` object.
        add_special_tokens: whether `encode_with_specials` adds the post-processor's
            tokens (BERT's `[CLS] ... [SEP]`). `encode` never adds them.
    """

    def __init__(self, tokenizer: Any, add_special_tokens: bool = True):
        self.tok = tokenizer
        self.add_special_tokens = add_special_tokens

    @classmethod
    def from_file(cls, path: str | Path, **kwargs: Any) -> HFTokenizer:
        """Load a Hugging Face `tokenizer.json` file."""
        from tokenizers import Tokenizer as _HFTok

        path = Path(path)
        if not path.is_file():
            raise TokenizerError(f"tokenizer file {str(path)!r} does not exist")
        try:
            return cls(_HFTok.from_file(str(path)), **kwargs)
        except Exception as e:  # the Rust side raises plain Exceptions
            raise TokenizerError(f"{str(path)!r} is not a valid Hugging Face tokenizer file: {e}") from None

    @property
    def vocab_size(self) -> int:
        return self.tok.get_vocab_size(with_added_tokens=True)

    @property
    def special_tokens(self) -> dict[str, int]:
        return {t.content: i for i, t in self.tok.get_added_tokens_decoder().items() if t.special}

    def encode(self, text: str) -> list[int]:
        return list(self.tok.encode(text, add_special_tokens=False).ids)

    def encode_with_specials(self, text: str) -> list[int]:
        """Ids with the tokenizer's own special tokens added (BERT: `[CLS] text [SEP]`)."""
        return list(self.tok.encode(text, add_special_tokens=self.add_special_tokens).ids)

    def decode(self, ids: Iterable[int]) -> str:
        ids = [int(i) for i in ids]
        n = self.vocab_size
        bad = [i for i in ids if not 0 <= i < n]
        if bad:
            raise TokenizerError(f"token id {bad[0]} is outside the vocabulary (size {n})")
        return self.tok.decode(ids, skip_special_tokens=False)

    def token_strings(self, ids: Sequence[int]) -> list[str]:
        out = []
        for i in ids:
            piece = self.tok.id_to_token(int(i))
            if piece is None:
                piece = "?"
            # Byte-level BPE marks a leading space with "Ġ" and a newline with "Ċ".
            out.append(piece.replace("Ġ", " ").replace("Ċ", "\n").replace("##", ""))
        return out

    def save_side_files(self, folder: Path) -> None:
        from attnlab.utils import atomic_path

        with atomic_path(folder / HF_TOKENIZER_FILE) as tmp:
            self.tok.save(str(tmp))

    def to_dict(self) -> dict[str, Any]:
        return {"file": HF_TOKENIZER_FILE, "add_special_tokens": self.add_special_tokens}

    @classmethod
    def from_dict(cls, data: dict[str, Any], folder: Path) -> HFTokenizer:
        return cls.from_file(
            folder / data.get("file", HF_TOKENIZER_FILE), add_special_tokens=data.get("add_special_tokens", True)
        )


@register_tokenizer("bpe")
class BPETokenizer(HFTokenizer):
    """Byte-level BPE trained on your own text with the `tokenizers` library."""

    @classmethod
    def train(
        cls,
        texts: str | Sequence[str],
        vocab_size: int = 1024,
        min_frequency: int = 2,
        specials: Sequence[str] = (END_OF_TEXT,),
    ) -> BPETokenizer:
        """Learn a byte-level BPE vocabulary of `vocab_size` ids from `texts`.

        Args:
            texts: the training text (one string, or several documents).
            vocab_size: total ids: 256 byte symbols + merges + special tokens.
            min_frequency: a pair must occur this often to be merged.
            specials: special tokens added first (ids 0..).
        """
        from tokenizers import Tokenizer as _HFTok
        from tokenizers import decoders, models, pre_tokenizers, trainers

        if isinstance(texts, str):
            texts = [texts]
        if not any(texts):
            raise TokenizerError("cannot train a BPE tokenizer on empty text")
        if vocab_size < 256 + len(specials):
            raise TokenizerError(
                f"a byte-level BPE vocabulary needs at least {256 + len(specials)} ids, got {vocab_size}"
            )
        tok = _HFTok(models.BPE())
        tok.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
        tok.decoder = decoders.ByteLevel()
        trainer = trainers.BpeTrainer(
            vocab_size=vocab_size,
            min_frequency=min_frequency,
            special_tokens=list(specials),
            initial_alphabet=pre_tokenizers.ByteLevel.alphabet(),
            show_progress=False,
        )

        # Feed the text in chunks: the trainer counts words per chunk, and one huge
        # string would be held several times over in memory.
        def chunks() -> Iterable[str]:
            for t in texts:
                for start in range(0, len(t), 1 << 16):
                    yield t[start : start + (1 << 16)]

        tok.train_from_iterator(chunks(), trainer=trainer)
        return cls(tok)

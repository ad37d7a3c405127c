"""What a language model trains on: `DataConfig` (the `data` section and `--data.*` flags). Torch-free.

Used by the causal-LM and masked-LM recipes (`attnlab.train.recipes`, `attnlab.train.mlm`)
and by the command line that builds it from flags; `attnlab.train.recipes` re-exports it.
"""

from __future__ import annotations

from dataclasses import dataclass

from attnlab.errors import ConfigError


@dataclass(frozen=True)
class DataConfig:
    """What to train on and how to tokenize it."""

    source: str = "pydoc"  # a corpus name (pydoc, shakespeare) or a path to a UTF-8 text file
    tokenizer: str = "char"  # char, word or bpe (protein and dna from the bio lab)
    vocab_size: int | None = None  # target vocabulary for word/bpe (default 2000 / 1024)

    def __post_init__(self) -> None:
        if self.vocab_size is not None and self.vocab_size < 8:
            raise ConfigError(f"data.vocab_size must be at least 8, got {self.vocab_size}")

"""Text corpora for language modelling, and the batches a language model trains on.

Corpora:
  * `pydoc` (the embedded default, alias `python-docs`): the documentation topics that
    CPython itself ships (`pydoc_data.topics`, about 465 KB of English prose and code).
    It comes with every Python install, so the demo works offline.
  * `shakespeare`: tiny Shakespeare (Karpathy's char-rnn, 1.1 MB), downloaded on demand
    into the user cache and verified by sha256.
  * any UTF-8 text file, by path.

`LMData` splits the token ids into train (first 90%) and validation (last 10%) as
nanoGPT does, samples random windows for training, and provides fixed evaluation
batches (the same windows at every evaluation, so val-loss curves are not noisy).

Notation: B batch, T context length.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from pathlib import Path
from typing import Callable, Iterator

import numpy as np

from attnlab.errors import DataError

logger = logging.getLogger(__name__)


@dataclass(frozen=True)
class Corpus:
    """A named corpus: either embedded (a loader) or downloadable (url + sha256)."""

    name: str
    description: str
    loader: Callable[[], str] | None = None
    url: str | None = None
    sha256: str | None = None
    filename: str | None = None


def _pydoc_text() -> str:
    from pydoc_data import topics

    # Sorted by topic name so the corpus is the same on every run of a given Python.
    return "\n\n".join(topics.topics[k].strip("\n") for k in sorted(topics.topics)) + "\n"


CORPORA: dict[str, Corpus] = {
    "pydoc": Corpus(
        "pydoc",
        "CPython's documentation topics (pydoc_data.topics), shipped with Python; offline",
        loader=_pydoc_text,
    ),
    "shakespeare": Corpus(
        "shakespeare",
        "tiny Shakespeare (40,000 lines, 1.1 MB) from Karpathy's char-rnn; downloaded once",
        url="https://raw.githubusercontent.com/karpathy/char-rnn/6f9487a6fe5b420b7ca9afb0d7c078e37c1d1b4e/data/tinyshakespeare/input.txt",
        sha256="86c4e6aa9db7c042ec79f339dcb96d42b0075e16b8fc2e86bf0ca57e2dc565ed",
        filename="tinyshakespeare.txt",
    ),
}
ALIASES = {"python-docs": "pydoc", "tinyshakespeare": "shakespeare"}
DEFAULT_CORPUS = "pydoc"


@dataclass(frozen=True)
class TextSource:
    """A loaded text and where it came from."""

    text: str
    name: str  # corpus name or file name
    origin: str  # human-readable description (path, URL, package)


def read_text_file(path: str | Path) -> str:
    """Read a UTF-8 text file with clear errors for every way it can be wrong."""
    path = Path(path)
    if not path.exists():
        raise DataError(
            f"data {str(path)!r} is neither a file nor a known corpus; known corpora: {', '.join(CORPORA)}"
        )
    if path.is_dir():
        raise DataError(f"data {str(path)!r} is a folder; pass a UTF-8 text file")
    raw = path.read_bytes()
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError as e:
        line = raw[: e.start].count(b"\n") + 1
        raise DataError(
            f"{str(path)!r} is not UTF-8 text: invalid byte 0x{raw[e.start]:02x} at byte {e.start} (line {line}); "
            "convert it, e.g. `iconv -f latin1 -t utf-8`"
        ) from None
    if text.startswith("\ufeff"):  # a UTF-8 byte-order mark is not content
        text = text[1:]
    text = text.replace("\r\n", "\n")
    if not text.strip():
        raise DataError(f"{str(path)!r} is empty; pass a file with some text in it")
    return text


def load_text(name_or_path: str | Path | None = None) -> TextSource:
    """Load a named corpus or a UTF-8 text file.

    Args:
        name_or_path: `pydoc` (default), `shakespeare`, or a path to a text file.
    Raises:
        DataError / DownloadError: unknown name, unreadable file, failed download.
    """
    if name_or_path is None:
        name_or_path = DEFAULT_CORPUS
    key = str(name_or_path)
    key = ALIASES.get(key, key)
    if key in CORPORA and not Path(key).exists():
        corpus = CORPORA[key]
        if corpus.loader is not None:
            return TextSource(corpus.loader(), corpus.name, corpus.description)
        from attnlab.data.download import fetch

        path = fetch(corpus.url, corpus.sha256, corpus.filename, subdir="corpora")
        return TextSource(read_text_file(path), corpus.name, f"{corpus.url} (cached at {path})")
    path = Path(name_or_path).expanduser()
    return TextSource(read_text_file(path), path.name, str(path.resolve()))


class LMData:
    """Token ids of one text, split 90/10, served as (input, next-token target) windows.

    Args:
        ids: (N,) token ids of the whole text.
        seq_len: context length T of each window.
        val_fraction: share of the text (at its end) held out for validation.
    """

    def __init__(self, ids: np.ndarray, seq_len: int, val_fraction: float = 0.1):
        ids = np.asarray(ids, dtype=np.int64)
        if not 0.0 < val_fraction < 1.0:
            raise DataError(f"val_fraction must be between 0 and 1, got {val_fraction}")
        self.seq_len = seq_len
        split = int(len(ids) * (1.0 - val_fraction))
        self.splits = {"train": ids[:split], "val": ids[split:]}
        for name, part in self.splits.items():
            if len(part) < seq_len + 1:
                raise DataError(
                    f"the text is too short: its {name} split has {len(part)} tokens but a context of "
                    f"{seq_len} needs at least {seq_len + 1}; use more text or a smaller --model.max_seq_len "
                    f"(the {name} split is the {'first' if name == 'train' else 'last'} "
                    f"{(1 - val_fraction if name == 'train' else val_fraction):.0%} of the text)"
                )

    @property
    def tokens_per_sample(self) -> int:
        return self.seq_len

    def _windows(self, split: str, starts: np.ndarray) -> dict[str, np.ndarray]:
        data = self.splits[split]
        offsets = starts[:, None] + np.arange(self.seq_len + 1)[None, :]  # (B, T+1)
        chunk = data[offsets]
        return {"input_ids": chunk[:, :-1], "targets": chunk[:, 1:]}  # (B, T) each

    def train_batch(self, batch_size: int, rng: np.random.Generator, split: str = "train") -> dict[str, np.ndarray]:
        """Random windows: {"input_ids": (B, T), "targets": (B, T)} as int64 arrays."""
        high = len(self.splits[split]) - self.seq_len
        return self._windows(split, rng.integers(0, high, size=batch_size))

    def eval_batches(self, batch_size: int, num_batches: int, split: str = "val", seed: int = 0) -> list[dict[str, np.ndarray]]:
        """The same `num_batches` random windows every time (fixed by `seed`)."""
        rng = np.random.default_rng(10_000 + seed)
        return [self.train_batch(batch_size, rng, split) for _ in range(num_batches)]

    def sweep(self, split: str = "val", batch_size: int = 32) -> Iterator[dict[str, np.ndarray]]:
        """Non-overlapping windows covering the whole split once (for `attnlab eval`)."""
        data = self.splits[split]
        starts = np.arange(0, len(data) - self.seq_len, self.seq_len)
        for i in range(0, len(starts), batch_size):
            yield self._windows(split, starts[i : i + batch_size])

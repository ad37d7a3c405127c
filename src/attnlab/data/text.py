"""Text corpora for language modelling, and the batches a language model trains on.

Corpora:
  * `pydoc` (the embedded default, alias `python-docs`): the documentation topics that
    CPython itself ships (`pydoc_data.topics`, about 465 KB of English prose and code).
    It comes with every Python install, so the demo works offline.
  * `shakespeare`: tiny Shakespeare (Karpathy's char-rnn, 1.1 MB), downloaded on demand
    into the user cache and verified by sha256.
  * any UTF-8 text file, by path.

`encode_text` turns a corpus into token ids held compactly (uint8/uint16/uint32, the
smallest dtype that fits the vocabulary: 1-4 bytes a token instead of the 8 of int64),
without a Python list of ints on the way for the char tokenizer. A text of `TOKEN_CACHE_MIN_CHARS` characters or more is encoded
once into a token cache file (`cache_dir() / "tokens"`, a `.npy` file with a JSON
sidecar) keyed by the SHA-256 of the text and of the tokenizer, and read back
memory-mapped: the ids then cost no memory beyond the pages the batches touch. A cache
file that does not match its sidecar (truncated, damaged, other dtype) is rebuilt.

`LMData` splits the token ids into train (first 90%) and validation (last 10%) as
nanoGPT does (views of the ids, so a memory map stays one), samples random windows for
training, and provides fixed evaluation batches (the same windows at every evaluation,
so val-loss curves are not noisy). Only the sampled (B, T+1) windows become int64.

Notation: B batch, T context length.
"""

from __future__ import annotations

import codecs
import hashlib
import json
import logging
import os
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from attnlab.errors import DataError

logger = logging.getLogger(__name__)

# Texts of at least this many characters go through the memory-mapped token cache.
TOKEN_CACHE_MIN_CHARS = 64 * 1024 * 1024
TOKEN_CACHE_FORMAT = 1  # bump when the cache layout changes: old entries then miss instead of misreading
_HASH_CHUNK_CHARS = 1 << 20


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
    """Read a UTF-8 text file with clear errors for every way it can be wrong.

    A byte-order mark is dropped and CRLF line ends become LF. The file's bytes are
    freed as soon as they are decoded, so the peak is the bytes plus one copy of the text.
    """
    path = Path(path)
    if not path.exists():
        raise DataError(f"data {str(path)!r} is neither a file nor a known corpus; known corpora: {', '.join(CORPORA)}")
    if path.is_dir():
        raise DataError(f"data {str(path)!r} is a folder; pass a UTF-8 text file")
    if not path.is_file():  # a FIFO, socket or device would block or never end
        raise DataError(f"data {str(path)!r} is not a regular file (a pipe, socket or device); pass a UTF-8 text file")
    try:
        raw = path.read_bytes()
    except OSError as e:
        from attnlab.errors import describe_os_error

        raise DataError(f"cannot read data {describe_os_error(e)}") from None
    start = len(codecs.BOM_UTF8) if raw.startswith(codecs.BOM_UTF8) else 0  # a byte-order mark is not content
    try:
        with memoryview(raw) as view:  # decoding a view skips the BOM without copying the bytes
            text = str(view[start:], "utf-8")
    except UnicodeDecodeError as e:
        at = start + e.start
        line = raw.count(b"\n", 0, at) + 1
        raise DataError(
            f"{str(path)!r} is not UTF-8 text: invalid byte 0x{raw[at]:02x} at byte {at} (line {line}); "
            "convert it, e.g. `iconv -f latin1 -t utf-8`"
        ) from None
    del raw
    if "\r\n" in text:
        text = text.replace("\r\n", "\n")
    if not text or text.isspace():  # `not text.strip()` without a copy of the text
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


def token_cache_dir() -> Path:
    """The token cache folder: `attnlab.utils.cache_dir() / "tokens"` (set `ATTNLAB_CACHE` to move it)."""
    from attnlab.utils import cache_dir

    return cache_dir() / "tokens"


def encode_text(tokenizer: Any, text: str, name: str = "text") -> np.ndarray:
    """Token ids of a whole corpus, held compactly; memory-mapped from the token cache when large.

    Args:
        tokenizer: an attnlab tokenizer.
        text: the corpus.
        name: what the text is called (its file name) in log messages and in the cache sidecar.
    Returns:
        (N,) ids of dtype `token_dtype(tokenizer.vocab_size)`: an in-memory array, or a
        read-only `np.memmap` of the token cache file when `text` has at least
        `TOKEN_CACHE_MIN_CHARS` characters (encoded on the first call, read on later ones).
    Raises:
        UnknownCharactersError: `text` holds characters the tokenizer cannot represent.
    """
    if len(text) < TOKEN_CACHE_MIN_CHARS:
        return tokenizer.encode_array(text)
    from attnlab.tokenizers.base import token_dtype

    dtype = token_dtype(tokenizer.vocab_size)
    tokenizer_sha = _tokenizer_sha256(tokenizer)
    text_sha = _text_sha256(text)
    key_data = {"format": TOKEN_CACHE_FORMAT, "tokenizer": tokenizer_sha, "text": text_sha, "dtype": dtype.str}
    key = hashlib.sha256(json.dumps(key_data, sort_keys=True).encode("utf-8")).hexdigest()[:40]
    root = token_cache_dir()
    npy, sidecar = root / f"{key}.npy", root / f"{key}.json"
    ids = _open_token_cache(npy, sidecar, key, dtype)
    if ids is not None:
        logger.info("token ids of %s: read from the token cache %s (memory-mapped)", name, npy)
        return ids
    logger.info("encoding %s (%s characters) into the token cache %s", name, f"{len(text):,}", npy)
    meta = {**key_data, "key": key, "source": name, "tokenizer_type": getattr(tokenizer, "kind", "?")}
    try:
        _write_token_cache(npy, sidecar, tokenizer, text, dtype, meta)
    except OSError as e:  # no space, read-only cache folder: train all the same, from memory
        logger.warning("could not write the token cache %s (%s); keeping the token ids of %s in memory", npy, e, name)
        return tokenizer.encode_array(text)
    _prune_token_cache(root, keep=key, source=name, tokenizer_type=meta["tokenizer_type"])
    try:
        return np.load(npy, mmap_mode="r")
    except (OSError, ValueError) as e:  # removed meanwhile, e.g. by a process that found it mid-write
        logger.warning("could not open the token cache %s (%s); keeping the token ids of %s in memory", npy, e, name)
        return tokenizer.encode_array(text)


def _text_sha256(text: str) -> str:
    h = hashlib.sha256()
    for start in range(0, len(text), _HASH_CHUNK_CHARS):
        h.update(text[start : start + _HASH_CHUNK_CHARS].encode("utf-8", "surrogatepass"))
    return h.hexdigest()


def _tokenizer_sha256(tokenizer: Any) -> str:
    """SHA-256 of the files `tokenizer.save` writes (its JSON and any side files, e.g. BPE merges)."""
    import tempfile

    h = hashlib.sha256()
    with tempfile.TemporaryDirectory(prefix="attnlab-tokenizer-") as tmp:
        tokenizer.save(tmp)
        for path in sorted(Path(tmp).rglob("*")):
            if path.is_file():
                h.update(path.relative_to(tmp).as_posix().encode("utf-8") + b"\0")
                h.update(path.read_bytes())
    return h.hexdigest()


def _write_token_cache(npy: Path, sidecar: Path, tokenizer: Any, text: str, dtype: np.dtype, meta: dict) -> None:
    """Stream the ids of `text` into `npy` (atomically), then write its sidecar with their count and SHA-256."""
    from tqdm.auto import tqdm

    from attnlab.utils import atomic_path, write_json_atomic

    header = {"descr": np.lib.format.dtype_to_descr(dtype), "fortran_order": False, "shape": (0,)}
    digest = hashlib.sha256()
    count = 0
    with (
        atomic_path(npy) as tmp,
        open(tmp, "wb") as f,
        tqdm(
            total=len(text), unit="char", unit_scale=True, desc=f"encoding {meta['source']}", leave=False, disable=None
        ) as bar,
    ):
        # The count is known at the end: write the header for 0 ids now and again after the ids.
        # NumPy pads a header so that its length does not depend on the length of the array.
        np.lib.format.write_array_header_1_0(f, header)
        data_start = f.tell()
        for part in tokenizer.encode_chunks(text):
            part = np.ascontiguousarray(part, dtype=dtype)
            f.write(part.data)
            digest.update(part.data)
            count += len(part)
            bar.update(min(len(part), bar.total - bar.n))
        f.seek(0)
        np.lib.format.write_array_header_1_0(f, {**header, "shape": (count,)})
        if f.tell() != data_start:  # pragma: no cover - would need another NumPy header layout
            raise OSError(f"the .npy header of {count} ids did not fit the space written for it")
    write_json_atomic(sidecar, {**meta, "tokens": count, "sha256": digest.hexdigest()})


def _token_cache_problem(npy: Path, sidecar: Path, key: str, dtype: np.dtype) -> str | None:
    """Why the cache entry cannot be used (missing sidecar, truncated, damaged), or None when it can."""
    try:
        meta = json.loads(sidecar.read_text(encoding="utf-8"))
        tokens, expected = int(meta["tokens"]), str(meta["sha256"])
        if meta.get("key") != key or meta.get("format") != TOKEN_CACHE_FORMAT or meta.get("dtype") != dtype.str:
            return "described by a sidecar for another entry"
    except FileNotFoundError:
        return "missing its sidecar (an interrupted write)"
    except (OSError, ValueError, KeyError, TypeError) as e:
        return f"described by an unreadable sidecar ({type(e).__name__})"
    try:
        with open(npy, "rb") as f:
            fmt = np.lib.format
            read_header = fmt.read_array_header_1_0 if fmt.read_magic(f) == (1, 0) else fmt.read_array_header_2_0
            shape, fortran_order, file_dtype = read_header(f)
            if shape != (tokens,) or fortran_order or file_dtype != dtype:
                return f"not the array its sidecar describes (shape {shape}, dtype {file_dtype})"
            size = os.fstat(f.fileno()).st_size
            if size != f.tell() + tokens * dtype.itemsize:
                return f"{size:,} bytes long instead of {f.tell() + tokens * dtype.itemsize:,} (truncated or padded)"
            digest = hashlib.sha256()
            while block := f.read(1 << 24):  # plain reads: the page cache, not this process's memory
                digest.update(block)
    except FileNotFoundError:
        return "missing its .npy file"
    except (OSError, ValueError, EOFError) as e:
        return f"unreadable ({e})"
    if digest.hexdigest() != expected:
        return "damaged (its SHA-256 does not match the sidecar's)"
    return None


def _open_token_cache(npy: Path, sidecar: Path, key: str, dtype: np.dtype) -> np.ndarray | None:
    """The cached ids memory-mapped, or None when there are none; an entry that fails its checks is removed."""
    if not npy.exists() and not sidecar.exists():
        return None
    problem = _token_cache_problem(npy, sidecar, key, dtype)
    if problem is None:
        try:
            return np.load(npy, mmap_mode="r")
        except (OSError, ValueError) as e:
            problem = f"unreadable ({e})"
    logger.warning("the token cache %s is %s; rebuilding it", npy, problem)
    for path in (sidecar, npy):
        try:
            path.unlink(missing_ok=True)
        except OSError:  # pragma: no cover - e.g. still mapped by another process on Windows
            pass
    return None


def _prune_token_cache(root: Path, keep: str, source: str, tokenizer_type: str) -> None:
    """Remove older entries of the same source name and tokenizer type (the file before it changed)."""
    for sidecar in root.glob("*.json"):
        if sidecar.stem == keep:
            continue
        try:
            meta = json.loads(sidecar.read_text(encoding="utf-8"))
            if meta.get("source") != source or meta.get("tokenizer_type") != tokenizer_type:
                continue
            sidecar.with_suffix(".npy").unlink(missing_ok=True)
            sidecar.unlink(missing_ok=True)
            logger.info("removed the stale token cache %s of %s", sidecar.with_suffix(".npy"), source)
        except (OSError, ValueError, AttributeError):
            continue


class LMData:
    """Token ids of one text, split 90/10, served as (input, next-token target) windows.

    Args:
        ids: (N,) token ids of the whole text: any integer array (kept as it is, so a
            compact or memory-mapped one is not copied; batches are int64 all the same),
            or a sequence of ints.
        seq_len: context length T of each window.
        val_fraction: share of the text (at its end) held out for validation.
    """

    def __init__(self, ids: np.ndarray, seq_len: int, val_fraction: float = 0.1):
        if not (isinstance(ids, np.ndarray) and ids.ndim == 1 and ids.dtype.kind in "ui"):
            ids = np.asarray(ids, dtype=np.int64)
        # Integer arrays (compact or memory-mapped) are kept as they are: the splits are views.
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

    def tokens_per_sample(self) -> int:
        return self.seq_len

    def _windows(self, split: str, starts: np.ndarray) -> dict[str, np.ndarray]:
        data = self.splits[split]
        offsets = starts[:, None] + np.arange(self.seq_len + 1)[None, :]  # (B, T+1)
        chunk = data[offsets].astype(np.int64, copy=False)  # (B, T+1); only the windows become int64
        return {"input_ids": chunk[:, :-1], "targets": chunk[:, 1:]}  # (B, T) each

    def train_batch(self, batch_size: int, rng: np.random.Generator, split: str = "train") -> dict[str, np.ndarray]:
        """Random windows: {"input_ids": (B, T), "targets": (B, T)} as int64 arrays."""
        high = len(self.splits[split]) - self.seq_len
        return self._windows(split, rng.integers(0, high, size=batch_size))

    def eval_batches(
        self, batch_size: int, num_batches: int, split: str = "val", seed: int = 0
    ) -> list[dict[str, np.ndarray]]:
        """The same `num_batches` random windows every time (fixed by `seed`)."""
        rng = np.random.default_rng(10_000 + seed)
        return [self.train_batch(batch_size, rng, split) for _ in range(num_batches)]

    def sweep(self, split: str = "val", batch_size: int = 32) -> Iterator[dict[str, np.ndarray]]:
        """Non-overlapping windows covering the whole split once (for `attnlab eval`)."""
        data = self.splits[split]
        starts = np.arange(0, len(data) - self.seq_len, self.seq_len)
        for i in range(0, len(starts), batch_size):
            yield self._windows(split, starts[i : i + batch_size])

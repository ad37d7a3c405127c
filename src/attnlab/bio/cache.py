"""An on-disk cache for sequence embeddings (safetensors files, never pickle).

Embedding a data set with a protein language model is the slow step of a probing
experiment; probes, seeds and controls reuse the same embeddings. `EmbeddingCache`
stores one file per (embedder identity, pooling, data) under
`attnlab.utils.cache_dir() / "embeddings"` (set `ATTNLAB_CACHE` to move it). The key is a
SHA-256 of those three things, where "data" is the ordered list of sequences, so any
change of model, weights, layer, pooling, or of the sequences or their order is a
different entry and a stale file is never read.

File layout (`<key>.safetensors`):
    pooled embeddings     "embeddings": (N, C) float32
    per-residue ("none")  "values": (sum_i L_i, C) float32 and "offsets": (N + 1,) int64;
                          sequence i is values[offsets[i]:offsets[i + 1]]
    metadata (header)     embedder identity, pooling, N, C and the data hash, checked on read.
"""

from __future__ import annotations

import hashlib
import json
import logging
from collections.abc import Callable, Sequence
from pathlib import Path

import numpy as np

from attnlab.utils import atomic_path, cache_dir

logger = logging.getLogger(__name__)

CACHE_FORMAT = 1  # bump when the file layout changes: old entries then miss instead of misreading
# Pooled (N, C) array, or one (L_i, C) array per sequence for pooling "none".
Embeddings = np.ndarray | list[np.ndarray]


def data_hash(sequences: Sequence[str]) -> str:
    """SHA-256 of the ordered sequences (one per line)."""
    h = hashlib.sha256()
    for seq in sequences:
        h.update(seq.encode("utf-8"))
        h.update(b"\n")
    return h.hexdigest()


def cache_key(identity: str, pooling: str, sequences: Sequence[str]) -> str:
    """The cache key (40 hex characters) of (embedder identity, pooling, data)."""
    payload = json.dumps(
        {
            "format": CACHE_FORMAT,
            "embedder": identity,
            "pooling": pooling,
            "data": data_hash(sequences),
            "n": len(sequences),
        },
        sort_keys=True,
    )
    return hashlib.sha256(payload.encode("utf-8")).hexdigest()[:40]


class EmbeddingCache:
    """Embeddings on disk, keyed by `cache_key`.

    Args:
        root: folder for the files; None = `cache_dir() / "embeddings"`.
    Attributes:
        hits, misses: counters of `get_or_compute` calls (handy in tests and logs).
    """

    def __init__(self, root: str | Path | None = None):
        self.root = Path(root) if root is not None else cache_dir() / "embeddings"
        self.hits = 0
        self.misses = 0

    def path(self, key: str) -> Path:
        """The file of `key`."""
        return self.root / f"{key}.safetensors"

    def load(self, identity: str, pooling: str, sequences: Sequence[str]) -> Embeddings | None:
        """The cached embeddings, or None when absent (or unreadable / not matching, then removed)."""
        from safetensors import SafetensorError
        from safetensors.numpy import load_file

        key = cache_key(identity, pooling, sequences)
        path = self.path(key)
        if not path.is_file():
            return None
        try:
            from safetensors import safe_open

            with safe_open(str(path), framework="numpy") as f:
                meta = f.metadata() or {}
            arrays = load_file(str(path))
        except (SafetensorError, OSError, ValueError) as e:
            logger.warning("embedding cache file %s is unreadable (%s); recomputing", path, e)
            path.unlink(missing_ok=True)
            return None
        expected = {"embedder": identity, "pooling": pooling, "n": str(len(sequences)), "data": data_hash(sequences)}
        if any(meta.get(k) != v for k, v in expected.items()):
            logger.warning("embedding cache file %s does not match its key; recomputing", path)
            path.unlink(missing_ok=True)
            return None
        if "embeddings" in arrays:
            return arrays["embeddings"]
        values, offsets = arrays["values"], arrays["offsets"]
        return [values[offsets[i] : offsets[i + 1]] for i in range(len(offsets) - 1)]

    def save(self, identity: str, pooling: str, sequences: Sequence[str], embeddings: Embeddings) -> Path:
        """Write `embeddings` for (identity, pooling, sequences) atomically; returns the file."""
        from safetensors.numpy import save_file

        n = len(sequences)
        if isinstance(embeddings, np.ndarray):
            if embeddings.ndim != 2 or embeddings.shape[0] != n:
                raise ValueError(f"pooled embeddings must be (N={n}, C), got {embeddings.shape}")
            arrays = {"embeddings": np.ascontiguousarray(embeddings, dtype=np.float32)}
            dim = embeddings.shape[1]
        else:
            if len(embeddings) != n:
                raise ValueError(f"{len(embeddings)} per-residue arrays for {n} sequences")
            lengths = [len(e) for e in embeddings]
            offsets = np.zeros(n + 1, dtype=np.int64)
            offsets[1:] = np.cumsum(lengths)
            dim = embeddings[0].shape[1] if n else 0
            values = np.concatenate(embeddings).astype(np.float32) if n else np.zeros((0, 0), np.float32)
            arrays = {"values": np.ascontiguousarray(values), "offsets": offsets}
        metadata = {
            "embedder": identity,
            "pooling": pooling,
            "n": str(n),
            "dim": str(dim),
            "data": data_hash(sequences),
            "format": str(CACHE_FORMAT),
        }
        path = self.path(cache_key(identity, pooling, sequences))
        with atomic_path(path) as tmp:
            save_file(arrays, str(tmp), metadata=metadata)
        return path

    def get_or_compute(
        self, identity: str, pooling: str, sequences: Sequence[str], compute: Callable[[], Embeddings]
    ) -> Embeddings:
        """Cached embeddings if present, else `compute()` (then stored)."""
        cached = self.load(identity, pooling, sequences)
        if cached is not None:
            self.hits += 1
            logger.info("embeddings for %d sequences read from the cache (%s, %s)", len(sequences), identity, pooling)
            return cached
        self.misses += 1
        result = compute()
        self.save(identity, pooling, sequences, result)
        return result

    def clear(self) -> int:
        """Delete every cached file; returns how many were removed."""
        if not self.root.is_dir():
            return 0
        files = list(self.root.glob("*.safetensors"))
        for f in files:
            f.unlink(missing_ok=True)
        return len(files)

    def __repr__(self) -> str:
        return f"EmbeddingCache(root={str(self.root)!r})"

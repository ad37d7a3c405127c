"""The embedding cache: hits avoid recomputation, keys separate embedder / pooling / data."""

from __future__ import annotations

import logging

import numpy as np

from attnlab.bio.cache import EmbeddingCache, cache_key
from attnlab.bio.embedder_base import ResidueEmbedder, compute_embeddings
from attnlab.utils import cache_dir


class CountingEmbedder(ResidueEmbedder):
    """Deterministic fake embedder that counts how often it runs."""

    def __init__(self, name: str = "counting"):
        self.name = name
        self.calls = 0

    @property
    def identity(self) -> str:
        return f"test:{self.name}"

    @property
    def embedding_dim(self) -> int:
        return 3

    def embed_residues(self, sequences):
        self.calls += 1
        return [np.stack([np.arange(3, dtype=np.float32) + ord(c) for c in s]) for s in sequences]


SEQS = ["MKT", "AAWY", "G"]


def test_cache_hit_avoids_recomputation(tmp_path, monkeypatch):
    monkeypatch.setenv("ATTNLAB_CACHE", str(tmp_path))  # an empty cache of our own
    embedder = CountingEmbedder()
    cache = EmbeddingCache()
    assert cache.root == cache_dir() / "embeddings" == tmp_path / "embeddings"
    first = compute_embeddings(embedder, SEQS, "mean", cache=cache)
    second = compute_embeddings(embedder, SEQS, "mean", cache=cache)
    assert embedder.calls == 1 and (cache.hits, cache.misses) == (1, 1)
    np.testing.assert_array_equal(first, second)
    assert first.shape == (3, 3) and first.dtype == np.float32
    # A fresh cache object (a new process) reads the same file.
    assert compute_embeddings(embedder, SEQS, "mean", cache=True) is not None
    assert embedder.calls == 1


def test_keys_separate_pooling_data_and_embedder(tmp_path):
    embedder = CountingEmbedder()
    cache = EmbeddingCache(tmp_path)
    compute_embeddings(embedder, SEQS, "mean", cache=cache)
    compute_embeddings(embedder, SEQS, "max", cache=cache)
    compute_embeddings(embedder, SEQS[::-1], "mean", cache=cache)
    compute_embeddings(CountingEmbedder("other"), SEQS, "mean", cache=cache)
    assert embedder.calls == 3 and cache.misses == 4
    keys = {
        cache_key(i, p, s)
        for i, p, s in [("a", "mean", SEQS), ("a", "max", SEQS), ("b", "mean", SEQS), ("a", "mean", SEQS[:2])]
    }
    assert len(keys) == 4


def test_per_residue_round_trip_and_no_cache(tmp_path):
    embedder = CountingEmbedder()
    cache = EmbeddingCache(tmp_path)
    fresh = compute_embeddings(embedder, SEQS, "none", cache=cache)
    cached = compute_embeddings(embedder, SEQS, "none", cache=cache)
    assert embedder.calls == 1
    assert [c.shape for c in cached] == [(3, 3), (4, 3), (1, 3)]
    for a, b in zip(fresh, cached):
        np.testing.assert_array_equal(a, b)
    compute_embeddings(embedder, SEQS, "none", cache=False)
    assert embedder.calls == 2
    assert cache.clear() == 1


def test_corrupt_file_is_recomputed(tmp_path, caplog):
    embedder = CountingEmbedder()
    cache = EmbeddingCache(tmp_path)
    compute_embeddings(embedder, SEQS, "mean", cache=cache)
    cache.path(cache_key(embedder.identity, "mean", SEQS)).write_bytes(b"not a safetensors file")
    with caplog.at_level(logging.WARNING):
        out = compute_embeddings(embedder, SEQS, "mean", cache=cache)
    assert embedder.calls == 2 and "unreadable" in caplog.text
    assert out.shape == (3, 3)

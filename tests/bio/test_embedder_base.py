"""ModelEmbedder (token ids -> hidden states -> pooled / per-residue vectors) and weight fingerprints."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from torch import nn

from attnlab.bio.cache import EmbeddingCache
from attnlab.bio.embedder_base import ModelEmbedder, compute_embeddings, module_fingerprint
from attnlab.bio.tokenizers import ProteinTokenizer
from attnlab.errors import ConfigError

SEQS = ["MKTAYW", "G", "LLAGCC", "MK"]


@pytest.fixture
def table():
    torch.manual_seed(0)
    return nn.Embedding(33, 4)


def embedder(table, **kw):
    return ModelEmbedder(
        lambda ids, mask: table(ids), ProteinTokenizer(), f"table:{module_fingerprint(table)}", 4, progress=False, **kw
    )


def test_pooled_and_per_residue_vectors_by_hand(table):
    tok = ProteinTokenizer()
    emb = embedder(table, batch_size=3)  # batches of 3 sorted by length: the order must come back
    weight = table.weight.detach().numpy()
    residues = emb.embed(SEQS, "none")
    for seq, got in zip(SEQS, residues):
        np.testing.assert_allclose(got, weight[tok.encode(seq)], rtol=1e-6)
    np.testing.assert_allclose(
        emb.embed(SEQS, "mean"), np.stack([weight[tok.encode(s)].mean(0) for s in SEQS]), rtol=1e-5
    )
    np.testing.assert_allclose(
        emb.embed(SEQS, "max"), np.stack([weight[tok.encode(s)].max(0) for s in SEQS]), rtol=1e-6
    )
    np.testing.assert_allclose(emb.embed(SEQS, "cls"), np.repeat(weight[[tok.cls_id]], len(SEQS), 0), rtol=1e-6)


def test_fingerprint_and_identity_follow_the_weights(table, tmp_path):
    before = module_fingerprint(table)
    assert before == module_fingerprint(table)
    emb = embedder(table)
    first = compute_embeddings(emb, SEQS, "mean", cache=EmbeddingCache(tmp_path))
    with torch.no_grad():
        table.weight.add_(1.0)
    assert module_fingerprint(table) != before
    changed = embedder(table)
    assert changed.identity != emb.identity
    second = compute_embeddings(changed, SEQS, "mean", cache=EmbeddingCache(tmp_path))
    np.testing.assert_allclose(second, first + 1.0, rtol=1e-5)


def test_shape_errors(table):
    bad = ModelEmbedder(lambda ids, mask: table(ids), ProteinTokenizer(), "x", embedding_dim=7, progress=False)
    with pytest.raises(ConfigError, match="hidden states of shape"):
        bad.embed(SEQS)
    with pytest.raises(ConfigError, match="pooling"):
        embedder(table).embed(SEQS, "median")

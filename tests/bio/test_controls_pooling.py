"""Control features (one-hot, composition) and the pooling functions."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from attnlab.bio.controls import CompositionEmbedder, OneHotEmbedder, composition, feature_names, one_hot
from attnlab.bio.pooling import AttentionPooling, cls_pool, max_pool, mean_pool, pool
from attnlab.errors import ConfigError


def test_one_hot_by_hand():
    names = feature_names("protein")
    assert names[:3] == ["A", "C", "D"] and names[-1] == "other" and len(names) == 21
    x = one_hot("ACX", "protein")
    assert x.shape == (3, 21)
    expected = np.zeros((3, 21), np.float32)
    expected[0, 0] = expected[1, 1] = expected[2, 20] = 1  # A, C, X -> "other"
    np.testing.assert_array_equal(x, expected)
    np.testing.assert_array_equal(one_hot("ACGTN", "dna"), np.eye(5, dtype=np.float32))


def test_composition_by_hand_and_equals_mean_one_hot():
    comp = composition(["AAC", "W"], include_length=True)
    names = feature_names("protein", include_length=True)
    assert comp.shape == (2, 22) and names[-1] == "length"
    assert comp[0, names.index("A")] == pytest.approx(2 / 3)
    assert comp[0, names.index("C")] == pytest.approx(1 / 3)
    assert comp[0, -1] == 3 and comp[1, -1] == 1
    np.testing.assert_allclose(comp[:, :-1].sum(1), 1.0)
    seqs = ["MKTAYIAKQRQ", "GLWSKIKEVGKEAAKAAAKAAGKAALGAVSEAV"]
    pooled = OneHotEmbedder().embed(seqs, "mean")
    np.testing.assert_allclose(pooled, composition(seqs, include_length=False), rtol=1e-6)


def test_embedders_poolings():
    seqs = ["MKT", "AAAAW"]
    residues = OneHotEmbedder().embed(seqs, "none")
    assert [r.shape for r in residues] == [(3, 21), (5, 21)]
    maxed = OneHotEmbedder().embed(seqs, "max")
    np.testing.assert_array_equal(maxed[1], np.maximum.reduce(residues[1]))
    comp = CompositionEmbedder()
    assert comp.embed(seqs).shape == (2, comp.embedding_dim)
    with pytest.raises(ConfigError, match="pooling 'none'"):
        comp.embed(seqs, "none")
    assert OneHotEmbedder().identity != OneHotEmbedder("dna").identity


@pytest.fixture
def batch():
    g = torch.Generator().manual_seed(0)
    x = torch.randn(3, 5, 4, generator=g)
    mask = torch.tensor([[1, 1, 1, 0, 0], [1, 1, 1, 1, 1], [1, 0, 0, 0, 0]], dtype=torch.bool)
    return x, mask


def test_mean_and_max_pool_match_a_loop(batch):
    x, mask = batch
    lengths = mask.sum(1)
    mean = torch.stack([x[b, : lengths[b]].mean(0) for b in range(3)])
    maxed = torch.stack([x[b, : lengths[b]].amax(0) for b in range(3)])
    torch.testing.assert_close(mean_pool(x, mask), mean)
    torch.testing.assert_close(max_pool(x, mask), maxed)
    torch.testing.assert_close(pool(x, mask, "cls"), x[:, 0])
    torch.testing.assert_close(cls_pool(x), x[:, 0])


def test_padding_never_changes_pooled_values(batch):
    x, mask = batch
    noisy = x.masked_fill(~mask.unsqueeze(-1), 1e6)
    attention = AttentionPooling(4)
    with torch.no_grad():
        attention.query.normal_()
    for fn in (mean_pool, max_pool, attention):
        torch.testing.assert_close(fn(noisy, mask), fn(x, mask))


def test_empty_rows_give_zeros(batch):
    x, mask = batch
    mask = mask.clone()
    mask[2] = False
    for fn in (mean_pool, max_pool, AttentionPooling(4)):
        torch.testing.assert_close(fn(x, mask)[2], torch.zeros(4))


def test_attention_pooling_starts_as_mean_and_learns(batch):
    x, mask = batch
    attention = AttentionPooling(4)
    torch.testing.assert_close(attention(x, mask), mean_pool(x, mask))
    weights = attention.last_weights
    torch.testing.assert_close(weights.sum(1), torch.ones(3))
    assert (weights[~mask] == 0).all()
    attention(x, mask)[:, 0].sum().backward()
    assert attention.query.grad is not None and attention.query.grad.abs().sum() > 0


def test_pool_errors(batch):
    x, mask = batch
    with pytest.raises(ConfigError, match="AttentionPooling"):
        pool(x, mask, "attention")
    with pytest.raises(ConfigError, match="unknown pooling"):
        pool(x, mask, "median")
    with pytest.raises(ValueError, match="boolean"):
        mean_pool(x, mask.long())

"""Vectors: hand-computed values, parity with torch / scikit-learn / SciPy, brute-force neighbours."""

from __future__ import annotations

import math
import warnings

import numpy as np
import pytest
import torch
from scipy.spatial.distance import cdist
from sklearn.metrics.pairwise import cosine_similarity as sk_cosine

from attnlab.errors import ConfigError, DataError
from attnlab.foundations import vectors as V


def test_hand_computed_values():
    assert V.dot([1, 2, 3], [4, 5, 6]) == 32.0
    assert V.norm([3.0, 4.0]) == 5.0
    assert V.euclidean_distance([0.0, 0.0], [3.0, 4.0]) == 5.0
    assert V.cosine_similarity([1.0, 0.0], [1.0, 1.0]) == pytest.approx(1 / math.sqrt(2), abs=1e-15)
    assert V.cosine_similarity([3.0, 4.0], [4.0, 3.0]) == pytest.approx(24 / 25, abs=1e-15)  # 12+12 over 5*5
    assert V.cosine_similarity([1.0, 2.0], [-2.0, 1.0]) == 0.0  # perpendicular
    assert V.cosine_similarity([1.0, 2.0], [-1.0, -2.0]) == pytest.approx(-1.0)
    assert V.cosine_similarity([1.0, 2.0], [10.0, 20.0]) == pytest.approx(1.0)  # length does not matter


def test_zero_vector_is_safe():
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # no divide-by-zero RuntimeWarning either
        assert V.cosine_similarity([0.0, 0.0], [1.0, 2.0]) == 0.0
        sim = V.pairwise_cosine_similarity([[0.0, 0.0], [1.0, 0.0]], [[0.0, 0.0], [2.0, 0.0], [0.0, 3.0]])
    np.testing.assert_array_equal(sim, [[0.0, 0.0, 0.0], [0.0, 1.0, 0.0]])
    ref = torch.nn.functional.cosine_similarity(torch.zeros(1, 2), torch.tensor([[1.0, 2.0]]), dim=-1)
    assert float(ref) == 0.0  # torch's convention, which we follow


def test_broadcasting_shapes():
    rng = np.random.default_rng(0)
    a, b = rng.normal(size=(5, 3)), rng.normal(size=3)
    assert V.cosine_similarity(a, b).shape == (5,)
    assert V.dot(a, b).shape == (5,)
    assert V.euclidean_distance(a[:, None, :], a[None, :, :]).shape == (5, 5)


def test_pairwise_match_references():
    rng = np.random.default_rng(1)
    q, k = rng.normal(size=(7, 4)), rng.normal(size=(9, 4)) * 3.0
    np.testing.assert_allclose(V.pairwise_dot(q, k), np.einsum("nd,md->nm", q, k), rtol=1e-12)
    np.testing.assert_allclose(V.pairwise_cosine_similarity(q, k), sk_cosine(q, k), rtol=1e-12, atol=1e-14)
    torch_cos = torch.nn.functional.cosine_similarity(torch.tensor(q)[:, None, :], torch.tensor(k)[None, :, :], dim=-1)
    np.testing.assert_allclose(V.pairwise_cosine_similarity(q, k), torch_cos.numpy(), rtol=1e-12, atol=1e-14)
    np.testing.assert_allclose(V.pairwise_euclidean_distance(q, k), cdist(q, k), rtol=1e-10, atol=1e-12)
    np.testing.assert_allclose(
        V.pairwise_euclidean_distance(q, k, squared=True), cdist(q, k, "sqeuclidean"), rtol=1e-10
    )
    # the one-pair functions broadcast to the same matrices
    np.testing.assert_allclose(V.euclidean_distance(q[:, None], k[None]), cdist(q, k), rtol=1e-12)
    np.testing.assert_allclose(V.cosine_similarity(q[:, None], k[None]), sk_cosine(q, k), rtol=1e-12, atol=1e-14)


def test_pairwise_distance_of_a_set_to_itself_is_clean():
    x = np.random.default_rng(2).normal(size=(6, 5)) * 1e3
    d = V.pairwise_euclidean_distance(x, x)
    assert np.all(d >= 0)  # rounding clipped, never NaN from sqrt of a negative
    assert np.all(np.isfinite(d))
    np.testing.assert_allclose(np.diag(d), 0.0, atol=1e-4)  # ~1e-16 relative to |x|^2 ~ 1e6


def _brute_force_scores(queries, keys, metric):
    """Reference: every pair with plain Python maths; higher = nearer for both metrics."""
    table = np.zeros((len(queries), len(keys)))
    for i, q in enumerate(queries):
        for j, key in enumerate(keys):
            if metric == "cosine":
                nq, nk = math.sqrt(sum(x * x for x in q)), math.sqrt(sum(x * x for x in key))
                table[i, j] = sum(a * b for a, b in zip(q, key)) / (max(nq, 1e-8) * max(nk, 1e-8))
            else:
                table[i, j] = -math.sqrt(sum((a - b) ** 2 for a, b in zip(q, key)))
    return table


@pytest.mark.parametrize("metric", ["cosine", "euclidean"])
@pytest.mark.parametrize("exclude_self", [False, True])
def test_nearest_neighbors_match_brute_force(metric, exclude_self):
    rng = np.random.default_rng(3)
    keys = rng.integers(-3, 4, size=(25, 3)).astype(float)  # small integers: plenty of exact ties
    keys[5] = keys[11]  # a duplicate
    queries = keys if exclude_self else rng.integers(-3, 4, size=(8, 3)).astype(float)
    k = 4
    result = V.nearest_neighbors(queries, keys, k=k, metric=metric, exclude_self=exclude_self)
    assert result.indices.shape == result.scores.shape == (len(queries), k)
    ref = _brute_force_scores(queries.tolist(), keys.tolist(), metric)  # (N, M), higher = nearer
    if exclude_self:
        np.fill_diagonal(ref, -np.inf)
    sign = 1.0 if metric == "cosine" else -1.0
    for i in range(len(queries)):
        chosen = result.indices[i]
        assert len(set(chosen.tolist())) == k
        # the reported scores are the true scores of the chosen keys, best first
        np.testing.assert_allclose(sign * result.scores[i], ref[i, chosen], rtol=1e-9, atol=1e-12)
        np.testing.assert_allclose(ref[i, chosen], np.sort(ref[i])[::-1][:k], rtol=1e-9, atol=1e-12)
        # exactly equal scores come in index order
        for a in range(k - 1):
            assert result.scores[i, a] != result.scores[i, a + 1] or chosen[a] < chosen[a + 1]
        # nothing left out is nearer than the last one chosen
        rest = np.setdiff1d(np.arange(len(keys)), chosen)
        assert np.all(ref[i, rest] <= ref[i, chosen[-1]] + 1e-9)
        if exclude_self:
            assert i not in chosen


@pytest.mark.parametrize("metric", ["cosine", "euclidean"])
def test_exact_ties_are_broken_by_lower_index(metric):
    keys = np.array([[0.0, 5.0], [1.0, 1.0], [-1.0, 0.0], [1.0, 1.0], [2.0, 2.0]])
    result = V.nearest_neighbors([1.0, 1.0], keys, k=3, metric=metric)
    np.testing.assert_array_equal(result.indices[0], [1, 3, 4])  # the duplicates 1 and 3 first, in index order


def test_nearest_neighbors_cosine_and_euclidean_disagree():
    keys = np.array([[10.0, 0.1], [0.0, 1.1]])  # far but same direction / close but other direction
    query = np.array([1.0, 0.0])
    assert V.nearest_neighbors(query, keys, k=1, metric="cosine").indices[0, 0] == 0
    assert V.nearest_neighbors(query, keys, k=1, metric="euclidean").indices[0, 0] == 1


@pytest.mark.parametrize(
    "call, error",
    [
        (lambda: V.dot([1.0, 2.0], [1.0, 2.0, 3.0]), DataError),
        (lambda: V.cosine_similarity([1.0, np.nan], [1.0, 2.0]), DataError),
        (lambda: V.euclidean_distance(3.0, 4.0), DataError),
        (lambda: V.pairwise_dot(np.ones((2, 2, 2)), np.ones((2, 2))), DataError),
        (lambda: V.pairwise_cosine_similarity([["a", "b"]], [[1.0, 2.0]]), DataError),
        (lambda: V.nearest_neighbors(np.ones((2, 3)), np.ones((4, 3)), k=0), ConfigError),
        (lambda: V.nearest_neighbors(np.ones((2, 3)), np.ones((4, 3)), k=5), ConfigError),
        (lambda: V.nearest_neighbors(np.ones((4, 3)), np.ones((4, 3)), k=4, exclude_self=True), ConfigError),
        (lambda: V.nearest_neighbors(np.ones((2, 3)), np.ones((4, 3)), k=1, exclude_self=True), DataError),
        (lambda: V.nearest_neighbors(np.ones((2, 3)), np.ones((4, 3)), metric="manhattan"), ConfigError),
    ],
)
def test_bad_inputs_raise_clear_errors(call, error):
    with pytest.raises(error) as info:
        call()
    assert len(str(info.value)) > 20  # a sentence, not a bare value

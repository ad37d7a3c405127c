"""NumPy metrics against scikit-learn and SciPy, edge cases, and aggregation over seeds."""

from __future__ import annotations

import math

import numpy as np
import pytest

from attnlab.bio import metrics as M
from attnlab.errors import DataError

sklearn_metrics = pytest.importorskip("sklearn.metrics")
stats = pytest.importorskip("scipy.stats")


@pytest.fixture
def rng():
    return np.random.default_rng(0)


def test_classification_metrics_match_sklearn(rng):
    for k in (2, 3, 5):
        y = rng.integers(0, k, 300)
        p = np.where(rng.random(300) < 0.6, y, rng.integers(0, k, 300))
        assert M.accuracy(y, p) == pytest.approx(sklearn_metrics.accuracy_score(y, p))
        assert M.macro_f1(y, p) == pytest.approx(sklearn_metrics.f1_score(y, p, average="macro"))
        assert M.matthews_corrcoef(y, p) == pytest.approx(sklearn_metrics.matthews_corrcoef(y, p))


def test_edge_cases_match_sklearn():
    y = np.array([0, 1, 1, 0, 1])
    constant = np.ones(5, dtype=int)
    assert M.matthews_corrcoef(y, constant) == 0.0 == sklearn_metrics.matthews_corrcoef(y, constant)
    # Class 2 is predicted but never true: its F1 is 0 and it counts in the macro mean.
    p = np.array([0, 1, 2, 0, 1])
    expected = sklearn_metrics.f1_score(y, p, average="macro", zero_division=0)
    assert M.macro_f1(y, p) == pytest.approx(expected)
    # Perfect prediction.
    assert M.matthews_corrcoef(y, y) == pytest.approx(1.0)


def test_roc_auc_binary_with_ties_matches_sklearn(rng):
    y = rng.integers(0, 2, 200)
    scores = np.round(rng.random(200) + 0.3 * y, 1)  # rounding makes many ties
    assert M.roc_auc(y, scores) == pytest.approx(sklearn_metrics.roc_auc_score(y, scores))
    proba = np.stack([1 - scores, scores], axis=1)
    assert M.roc_auc(y, proba) == pytest.approx(sklearn_metrics.roc_auc_score(y, scores))
    # By hand: positives 0.8, 0.4; negatives 0.4, 0.1 -> pairs (0.8>0.4, 0.8>0.1, 0.4=0.4, 0.4>0.1) = 3.5 / 4.
    assert M.roc_auc([1, 1, 0, 0], [0.8, 0.4, 0.4, 0.1]) == pytest.approx(3.5 / 4)
    assert math.isnan(M.roc_auc([1, 1, 1], [0.2, 0.3, 0.4]))


def test_roc_auc_multiclass_and_multilabel_match_sklearn(rng):
    y = rng.integers(0, 4, 300)
    logits = rng.normal(size=(300, 4)) + 1.5 * np.eye(4)[y]
    proba = np.exp(logits) / np.exp(logits).sum(1, keepdims=True)
    expected = sklearn_metrics.roc_auc_score(y, proba, multi_class="ovr", average="macro")
    assert M.roc_auc(y, proba) == pytest.approx(expected)
    Y = (rng.random((200, 3)) < 0.4).astype(int)
    S = rng.random((200, 3)) + 0.5 * Y
    assert M.roc_auc(Y, S) == pytest.approx(sklearn_metrics.roc_auc_score(Y, S, average="macro"))
    P = (S > 0.7).astype(int)
    assert M.macro_f1(Y, P) == pytest.approx(sklearn_metrics.f1_score(Y, P, average="macro"))
    assert M.accuracy(Y, P) == pytest.approx(sklearn_metrics.accuracy_score(Y, P))


def test_rankdata_and_spearman_with_ties_match_scipy(rng):
    x = rng.integers(0, 10, 100).astype(float)  # many ties
    y = x + rng.integers(0, 5, 100)
    np.testing.assert_allclose(M.rankdata(x), stats.rankdata(x))
    assert M.spearman(x, y) == pytest.approx(stats.spearmanr(x, y).statistic)
    assert M.pearson(x, y) == pytest.approx(stats.pearsonr(x, y).statistic)
    assert math.isnan(M.pearson(np.ones(5), np.arange(5)))


def test_regression_metrics_match_sklearn(rng):
    y = rng.normal(size=100)
    p = y + 0.5 * rng.normal(size=100)
    assert M.r2_score(y, p) == pytest.approx(sklearn_metrics.r2_score(y, p))
    assert M.rmse(y, p) == pytest.approx(math.sqrt(sklearn_metrics.mean_squared_error(y, p)))
    const = np.full(4, 2.0)
    assert M.r2_score(const, const) == sklearn_metrics.r2_score(const, const) == 1.0
    assert M.r2_score(const, const + 1) == sklearn_metrics.r2_score(const, const + 1) == 0.0


def test_masked_per_residue_accuracy_by_hand():
    y = [np.array([0, 1, 2]), np.array([1, 1])]
    p = [np.array([0, 2, 2]), np.array([0, 1])]
    mask = [np.array([True, True, False]), np.array([False, True])]
    # Scored: (0,0) right, (1,2) wrong, (1,1) right -> 2/3.
    assert M.masked_accuracy(y, p, mask) == pytest.approx(2 / 3)
    assert M.masked_accuracy(y, p) == pytest.approx(3 / 5)
    padded_y = np.array([[0, 1, 2], [1, 1, 0]])
    padded_p = np.array([[0, 2, 2], [0, 1, 1]])
    padded_mask = np.array([[True, True, False], [False, True, False]])
    assert M.masked_accuracy(padded_y, padded_p, padded_mask) == pytest.approx(2 / 3)
    out = M.compute_metrics("residue", y, p, mask=mask)
    assert set(out) == {"accuracy", "macro_f1", "mcc"} and out["accuracy"] == pytest.approx(2 / 3)


def test_compute_metrics_keys():
    y, p = np.array([0, 1, 1, 0]), np.array([0, 1, 0, 0])
    assert set(M.compute_metrics("binary", y, p, scores=[0.1, 0.9, 0.4, 0.3])) == {"accuracy", "macro_f1", "mcc", "roc_auc"}
    assert set(M.compute_metrics("regression", [1.0, 2.0, 3.0], [1.0, 2.5, 2.0])) == {"spearman", "pearson", "r2", "rmse"}
    with pytest.raises(DataError, match="shape"):
        M.accuracy([0, 1], [0, 1, 1])
    with pytest.raises(DataError, match="unknown task"):
        M.compute_metrics("ranking", y, p)


def test_aggregate_over_seeds():
    runs = [{"mcc": 0.5, "accuracy": 0.8}, {"mcc": 0.7, "accuracy": 0.9}, {"mcc": 0.6, "accuracy": 0.85}]
    summary = M.aggregate_over_seeds(runs)
    assert summary["mcc"].mean == pytest.approx(0.6)
    assert summary["mcc"].std == pytest.approx(np.std([0.5, 0.7, 0.6], ddof=1))
    assert summary["mcc"].n == 3
    assert str(summary["mcc"]) == "0.600 ± 0.100"
    assert M.aggregate_over_seeds([{"mcc": 0.4}])["mcc"].std == 0.0
    with pytest.raises(DataError, match="must match"):
        M.aggregate_over_seeds([{"mcc": 0.1}, {"f1": 0.2}])

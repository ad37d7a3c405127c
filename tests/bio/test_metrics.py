"""Metrics: values by hand, the documented undefined cases (no warnings), the residue metrics, aggregation over seeds.

The numbers themselves come from scikit-learn and SciPy; these tests pin what attnlab adds:
how inputs are read, and what undefined values become.
"""

from __future__ import annotations

import math
import warnings

import numpy as np
import pytest

from attnlab.bio import metrics as M
from attnlab.errors import DataError


@pytest.fixture(autouse=True)
def warnings_are_errors():
    """Undefined cases give their documented value without a warning."""
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        yield


def test_classification_metrics_by_hand():
    y = [0, 0, 1, 1, 2, 2]
    p = [0, 1, 1, 1, 2, 0]
    assert M.accuracy(y, p) == pytest.approx(4 / 6)
    matrix, labels = M.confusion_matrix(y, p)
    np.testing.assert_array_equal(matrix, [[1, 1, 0], [0, 2, 0], [1, 0, 1]])
    assert labels == [0, 1, 2] and matrix.dtype == np.int64
    # F1 = 2TP / (2TP + FP + FN): class 0 2/4, class 1 4/5, class 2 2/3.
    assert M.macro_f1(y, p) == pytest.approx((2 / 4 + 4 / 5 + 2 / 3) / 3)
    # Gorodkin: t = (2, 2, 2), p = (2, 3, 1), c = 4, s = 6 -> (24 - 12) / sqrt((36 - 14)(36 - 12)).
    assert M.matthews_corrcoef(y, p) == pytest.approx(12 / math.sqrt(22 * 24))
    assert M.matthews_corrcoef(y, y) == pytest.approx(1.0)
    assert M.accuracy(["a", "b"], ["a", "a"]) == 0.5


def test_confusion_matrix_class_order():
    # labels= gives a row and a column to every class, seen or not, in that order.
    matrix, labels = M.confusion_matrix([0, 0, 3], [0, 2, 3], labels=range(4))
    assert labels == [0, 1, 2, 3]
    np.testing.assert_array_equal(matrix, [[1, 0, 1, 0], [0, 0, 0, 0], [0, 0, 0, 0], [0, 0, 0, 1]])
    # Default: the sorted union of the true and predicted values.
    matrix, labels = M.confusion_matrix(["b", "a"], ["c", "a"])
    assert labels == ["a", "b", "c"]
    np.testing.assert_array_equal(matrix, [[1, 0, 0], [0, 0, 1], [0, 0, 0]])
    matrix, labels = M.confusion_matrix([1, 1], [1, 1])  # one class only: no warning
    np.testing.assert_array_equal(matrix, [[2]])


def test_undefined_classification_values():
    y = np.array([0, 1, 1, 0, 1])
    constant = np.ones(5, dtype=int)
    assert M.matthews_corrcoef(y, constant) == 0.0
    assert M.matthews_corrcoef(constant, constant) == 0.0
    # Class 2 is predicted but never true: its F1 is 0 and it counts in the macro mean
    # (class 0: 1; class 1: TP 2, FN 1 -> 4/5).
    assert M.macro_f1(y, [0, 1, 2, 0, 1]) == pytest.approx((1 + 4 / 5 + 0) / 3)
    # A class given in labels= but absent everywhere counts as 0 as well.
    assert M.macro_f1(y, y, labels=[0, 1, 2]) == pytest.approx(2 / 3)
    # Multi-label: label 1 is never true nor predicted -> 0 in the mean.
    Y = np.array([[1, 0], [0, 0], [1, 0]])
    assert M.macro_f1(Y, Y) == pytest.approx(0.5)
    assert M.accuracy(Y, np.array([[1, 0], [0, 1], [1, 0]])) == pytest.approx(2 / 3)  # exact rows


def test_roc_auc_by_hand_with_ties():
    # Positives 0.8, 0.4; negatives 0.4, 0.1 -> pairs (0.8>0.4, 0.8>0.1, 0.4=0.4, 0.4>0.1) = 3.5 / 4.
    assert M.roc_auc([1, 1, 0, 0], [0.8, 0.4, 0.4, 0.1]) == pytest.approx(3.5 / 4)
    # (N, 2) probabilities: column 1 is the score.
    proba = np.array([[0.2, 0.8], [0.6, 0.4], [0.6, 0.4], [0.9, 0.1]])
    assert M.roc_auc([1, 1, 0, 0], proba) == pytest.approx(3.5 / 4)
    assert M.roc_auc([0, 1], [0.9, 0.1]) == 0.0


def test_roc_auc_undefined_classes_are_left_out():
    assert math.isnan(M.roc_auc([1, 1, 1], [0.2, 0.3, 0.4]))  # one class: NaN, not an error
    # Multi-class, one-vs-rest: class 0 ranks perfectly (1.0), class 1 inversely (0.0), class 2 has no
    # positives and is left out of the macro mean.
    y = np.array([0, 0, 1, 1])
    scores = np.array([[0.9, 0.6, 0.1], [0.8, 0.7, 0.2], [0.1, 0.1, 0.3], [0.2, 0.2, 0.4]])
    assert M.roc_auc(y, scores) == pytest.approx(0.5)
    # Multi-label: label 1 is positive everywhere (left out); label 0 ranks perfectly.
    Y = np.array([[1, 1], [0, 1], [0, 1]])
    assert M.roc_auc(Y, np.array([[0.9, 0.1], [0.2, 0.5], [0.1, 0.3]])) == 1.0
    assert math.isnan(M.roc_auc(np.ones((3, 2), dtype=int), np.zeros((3, 2))))
    with pytest.raises(DataError, match="0/1 labels"):
        M.roc_auc([0, 1, 2], [0.1, 0.2, 0.3])
    with pytest.raises(DataError, match="disagree"):
        M.roc_auc(Y, np.zeros((3, 3)))


def test_correlations_by_hand_and_undefined():
    x = [1.0, 2.0, 2.0, 3.0]
    y = [1.0, 3.0, 2.0, 4.0]
    # Spearman is Pearson of the average ranks (ties share theirs): x -> 1, 2.5, 2.5, 4.
    ranks_x, ranks_y = np.array([1, 2.5, 2.5, 4]), np.array([1, 3, 2, 4])
    assert M.spearman(x, y) == pytest.approx(np.corrcoef(ranks_x, ranks_y)[0, 1])
    assert M.pearson(x, y) == pytest.approx(np.corrcoef(x, y)[0, 1])
    assert M.pearson([1, 2, 3], [3, 2, 1]) == pytest.approx(-1.0)
    assert M.spearman([1, 2, 3], [1, 10, 100]) == pytest.approx(1.0)
    for correlation in (M.pearson, M.spearman):
        assert math.isnan(correlation(np.ones(5), np.arange(5)))  # constant input
        assert math.isnan(correlation(np.arange(5), np.full(5, 2.0)))
        assert math.isnan(correlation([1.0], [2.0]))  # fewer than two values


def test_regression_metrics_by_hand():
    y, p = [1.0, 2.0, 3.0, 4.0], [1.0, 2.0, 4.0, 5.0]
    # SS_res = 0 + 0 + 1 + 1 = 2; mean 2.5, SS_tot = 2.25 + 0.25 + 0.25 + 2.25 = 5.
    assert M.r2_score(y, p) == pytest.approx(1 - 2 / 5)
    assert M.rmse(y, p) == pytest.approx(math.sqrt(2 / 4))
    const = np.full(4, 2.0)
    assert M.r2_score(const, const) == 1.0
    assert M.r2_score(const, const + 1) == 0.0
    assert M.rmse([1, 2], [1, 2]) == 0.0  # integers are read as numbers
    with pytest.raises(DataError, match="zero items"):
        M.rmse([], [])


def test_per_residue_accuracy_by_hand():
    y = [np.array([0, 1, 2]), np.array([1, 1])]
    p = [np.array([0, 2, 2]), np.array([0, 1])]
    mask = [np.array([True, True, False]), np.array([False, True])]
    # Scored: (0,0) right, (1,2) wrong, (1,1) right -> 2/3.
    assert M.residue_accuracy(y, p, mask) == pytest.approx(2 / 3)
    assert M.residue_accuracy(y, p) == pytest.approx(3 / 5)
    padded_y = np.array([[0, 1, 2], [1, 1, 0]])
    padded_p = np.array([[0, 2, 2], [0, 1, 1]])
    padded_mask = np.array([[True, True, False], [False, True, False]])
    assert M.residue_accuracy(padded_y, padded_p, padded_mask) == pytest.approx(2 / 3)
    out = M.compute_metrics("residue", y, p, mask=mask)
    assert set(out) == {"accuracy", "macro_f1", "mcc"} and out["accuracy"] == pytest.approx(2 / 3)


def test_compute_metrics_keys():
    y, p = np.array([0, 1, 1, 0]), np.array([0, 1, 0, 0])
    assert set(M.compute_metrics("binary", y, p, scores=[0.1, 0.9, 0.4, 0.3])) == {
        "accuracy",
        "macro_f1",
        "mcc",
        "roc_auc",
    }
    assert set(M.compute_metrics("regression", [1.0, 2.0, 3.0], [1.0, 2.5, 2.0])) == {
        "spearman",
        "pearson",
        "r2",
        "rmse",
    }
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

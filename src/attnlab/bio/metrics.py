"""Evaluation metrics for sequence probes, written out in NumPy, and their aggregation over seeds.

Classification: accuracy, macro-F1, Matthews correlation coefficient (the multi-class
form of Gorodkin 2004, "Comparing two K-category assignments by a K-category
correlation coefficient"), ROC-AUC (binary, via the Mann-Whitney rank statistic; macro
one-vs-rest for multi-class and multi-label). Regression: Spearman (Pearson of
average ranks), Pearson, R^2, RMSE. Per-residue: accuracy under a mask.

Every function takes NumPy arrays (or lists) and returns a Python float; the tests
compare each against scikit-learn and SciPy. Undefined values follow scikit-learn where it
returns a number (MCC = 0 for a constant prediction, F1 = 0 for a class never predicted
nor present, R^2 = 0 for constant targets that are not predicted exactly) and are NaN
where scikit-learn raises (ROC-AUC with a single class; Pearson/Spearman of a constant).
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any, Mapping, Sequence

import numpy as np

from attnlab.errors import DataError

# The metric used to rank runs (and to pick a headline number) for each task.
PRIMARY_METRIC = {
    "binary": "mcc",
    "multiclass": "mcc",
    "multilabel": "macro_f1",
    "regression": "spearman",
    "residue": "accuracy",
}
# Metrics where smaller is better (all others: larger is better).
LOWER_IS_BETTER = frozenset({"rmse"})


def _pair(y_true: Any, y_pred: Any) -> tuple[np.ndarray, np.ndarray]:
    a, b = np.asarray(y_true), np.asarray(y_pred)
    if a.shape != b.shape:
        raise DataError(f"metric inputs disagree in shape: y_true {a.shape} vs y_pred {b.shape}")
    if a.size == 0:
        raise DataError("cannot compute a metric on zero items")
    return a, b


# ----------------------------------------------------------------------------- classification


def accuracy(y_true: Any, y_pred: Any) -> float:
    """Fraction of exact matches; for (N, K) multi-label arrays, rows that match entirely."""
    a, b = _pair(y_true, y_pred)
    if a.ndim == 2:
        return float(np.all(a == b, axis=1).mean())
    return float((a == b).mean())


def confusion_matrix(y_true: Any, y_pred: Any, labels: Sequence[Any] | None = None) -> tuple[np.ndarray, list[Any]]:
    """(K, K) counts, row = true class, column = predicted class.

    Args:
        labels: class order; None = sorted union of the true and predicted values.
    Returns:
        (matrix, labels).
    """
    a, b = _pair(y_true, y_pred)
    classes = list(labels) if labels is not None else sorted(set(a.tolist()) | set(b.tolist()))
    index = {c: i for i, c in enumerate(classes)}
    matrix = np.zeros((len(classes), len(classes)), dtype=np.int64)
    rows = np.array([index[v] for v in a.tolist()])
    cols = np.array([index[v] for v in b.tolist()])
    np.add.at(matrix, (rows, cols), 1)
    return matrix, classes


def macro_f1(y_true: Any, y_pred: Any, labels: Sequence[Any] | None = None) -> float:
    """Unweighted mean over classes of F1 = 2TP / (2TP + FP + FN) (0 when a class is absent everywhere).

    For (N, K) multi-label 0/1 arrays, the mean of the K per-label binary F1 scores.
    """
    a, b = _pair(y_true, y_pred)
    if a.ndim == 2:
        return float(np.mean([_binary_f1(a[:, k], b[:, k]) for k in range(a.shape[1])]))
    matrix, _ = confusion_matrix(a, b, labels)
    tp = np.diag(matrix).astype(np.float64)
    fp = matrix.sum(axis=0) - tp  # predicted as k, true class was another
    fn = matrix.sum(axis=1) - tp  # true k, predicted as another
    denom = 2 * tp + fp + fn
    f1 = np.divide(2 * tp, denom, out=np.zeros_like(tp), where=denom > 0)
    return float(f1.mean())


def _binary_f1(a: np.ndarray, b: np.ndarray) -> float:
    tp = float(np.sum((a == 1) & (b == 1)))
    fp = float(np.sum((a != 1) & (b == 1)))
    fn = float(np.sum((a == 1) & (b != 1)))
    return 2 * tp / (2 * tp + fp + fn) if tp + fp + fn > 0 else 0.0


def matthews_corrcoef(y_true: Any, y_pred: Any) -> float:
    """Matthews correlation coefficient, binary or multi-class (Gorodkin's R_K).

    With confusion matrix C (true x predicted), t_k = row sums, p_k = column sums,
    c = trace, s = total:  MCC = (c s - sum_k t_k p_k) / sqrt((s^2 - sum p_k^2)(s^2 - sum t_k^2)).
    0 when the denominator is 0 (e.g. a constant prediction).
    """
    matrix, _ = confusion_matrix(y_true, y_pred)
    m = matrix.astype(np.float64)
    t = m.sum(axis=1)
    p = m.sum(axis=0)
    c = np.trace(m)
    s = m.sum()
    numerator = c * s - t @ p
    denominator = math.sqrt((s * s - p @ p) * (s * s - t @ t))
    return float(numerator / denominator) if denominator > 0 else 0.0


def rankdata(values: Any) -> np.ndarray:
    """1-based ranks with ties given their average rank (SciPy's `rankdata(method="average")`)."""
    x = np.asarray(values, dtype=np.float64).ravel()
    order = np.argsort(x, kind="mergesort")
    sorted_x = x[order]
    # Start index of each run of equal values in sorted order.
    starts = np.flatnonzero(np.r_[True, sorted_x[1:] != sorted_x[:-1]])
    ends = np.r_[starts[1:], len(x)]
    average = (starts + ends + 1) / 2.0  # mean of the 1-based ranks starts+1 .. ends
    ranks = np.empty(len(x))
    ranks[order] = np.repeat(average, ends - starts)
    return ranks


def _binary_auc(y: np.ndarray, score: np.ndarray) -> float:
    positive = y == 1
    n_pos = int(positive.sum())
    n_neg = len(y) - n_pos
    if n_pos == 0 or n_neg == 0:
        return float("nan")
    ranks = rankdata(score)
    # Mann-Whitney U of the positives = the number of (positive, negative) pairs ranked correctly
    # (ties count one half); AUC = U / (n_pos n_neg).
    u = ranks[positive].sum() - n_pos * (n_pos + 1) / 2.0
    return float(u / (n_pos * n_neg))


def roc_auc(y_true: Any, scores: Any) -> float:
    """Area under the ROC curve.

    Args:
        y_true: (N,) 0/1 labels (binary), (N,) class indices 0..K-1 (multi-class) or an
            (N, K) 0/1 matrix (multi-label).
        scores: (N,) scores of class 1, or (N, 2) (column 1 is used) for binary; (N, K)
            class scores for multi-class / multi-label (probabilities or logits: only
            their order matters).
    Returns:
        Binary: the AUC. Multi-class: macro average of the one-vs-rest AUCs; multi-label:
        macro average over labels. Classes without both positives and negatives are left
        out of the average; NaN if none is left.
    """
    y = np.asarray(y_true)
    s = np.asarray(scores, dtype=np.float64)
    if y.ndim == 1 and s.ndim == 2 and s.shape[1] == 2 and set(np.unique(y).tolist()) <= {0, 1}:
        s = s[:, 1]
    if s.ndim == 1:
        if y.shape != s.shape:
            raise DataError(f"roc_auc: {y.shape[0]} labels but {s.shape[0]} scores")
        values = set(np.unique(y).tolist())
        if not values <= {0, 1}:
            raise DataError(f"roc_auc with one score per item needs 0/1 labels, got {sorted(values)[:5]}")
        return _binary_auc(y, s)
    if y.ndim == 1:  # multi-class: one-vs-rest per class index
        if s.shape[0] != y.shape[0]:
            raise DataError(f"roc_auc: {y.shape[0]} labels but {s.shape[0]} score rows")
        y = (y[:, None] == np.arange(s.shape[1])[None, :]).astype(np.int64)  # (N, K) one-hot
    if y.shape != s.shape:
        raise DataError(f"roc_auc: labels {y.shape} and scores {s.shape} disagree")
    aucs = [_binary_auc(y[:, k], s[:, k]) for k in range(s.shape[1])]
    defined = [a for a in aucs if not math.isnan(a)]
    return float(np.mean(defined)) if defined else float("nan")


# ----------------------------------------------------------------------------- regression


def pearson(y_true: Any, y_pred: Any) -> float:
    """Pearson correlation; NaN when either input is constant."""
    a, b = _pair(y_true, y_pred)
    a = a.astype(np.float64).ravel() - a.mean()
    b = b.astype(np.float64).ravel() - b.mean()
    denom = math.sqrt(float(a @ a) * float(b @ b))
    if denom == 0:
        return float("nan")
    return float(np.clip(a @ b / denom, -1.0, 1.0))


def spearman(y_true: Any, y_pred: Any) -> float:
    """Spearman rank correlation: Pearson of the average ranks (ties share their mean rank)."""
    a, b = _pair(y_true, y_pred)
    return pearson(rankdata(a), rankdata(b))


def r2_score(y_true: Any, y_pred: Any) -> float:
    """Coefficient of determination 1 - SS_res / SS_tot (1 or 0 when the targets are constant)."""
    a, b = _pair(y_true, y_pred)
    a, b = a.astype(np.float64), b.astype(np.float64)
    ss_res = float(((a - b) ** 2).sum())
    ss_tot = float(((a - a.mean()) ** 2).sum())
    if ss_tot == 0:
        return 1.0 if ss_res == 0 else 0.0
    return 1.0 - ss_res / ss_tot


def rmse(y_true: Any, y_pred: Any) -> float:
    """Root mean squared error."""
    a, b = _pair(y_true, y_pred)
    return float(np.sqrt(np.mean((a.astype(np.float64) - b.astype(np.float64)) ** 2)))


# ----------------------------------------------------------------------------- per residue


def flatten_residues(
    values: Sequence[np.ndarray] | np.ndarray, mask: Sequence[np.ndarray] | np.ndarray | None = None
) -> np.ndarray:
    """Concatenate per-sequence arrays ((L_i,) or (L_i, K)), keeping positions where mask is True.

    `values` may also be a padded (B, T[, K]) array with a (B, T) mask.
    """
    if isinstance(values, np.ndarray) and values.dtype != object:
        if mask is None:
            return values.reshape(-1, *values.shape[2:])
        return values[np.asarray(mask, dtype=bool)]
    parts = []
    for i, v in enumerate(values):
        v = np.asarray(v)
        parts.append(v if mask is None else v[np.asarray(mask[i], dtype=bool)])
    return np.concatenate(parts) if parts else np.zeros(0)


def masked_accuracy(y_true: Any, y_pred: Any, mask: Any = None) -> float:
    """Per-residue accuracy over the positions where `mask` is True (all when None).

    Args:
        y_true, y_pred: lists of (L_i,) class arrays, or padded (B, T) arrays.
        mask: matching bool arrays, True = scored residue.
    """
    return accuracy(flatten_residues(y_true, mask), flatten_residues(y_pred, mask))


# ----------------------------------------------------------------------------- per task


def compute_metrics(task: str, y_true: Any, y_pred: Any, scores: Any = None, mask: Any = None) -> dict[str, float]:
    """The standard metrics of a task.

    Args:
        task: binary, multiclass, multilabel, regression or residue.
        y_true, y_pred: encoded labels and predictions (see `LabelEncoder`): (N,) class
            indices, (N, K) multi-hot, (N,) values, or lists of (L_i,) residue classes.
        scores: optional class probabilities/scores for ROC-AUC: (N,) or (N, 2) binary,
            (N, K) multi-class / multi-label. Not used for regression and residue tasks.
        mask: residue task only: per-sequence bool arrays, True = scored.
    Returns:
        binary / multiclass: accuracy, macro_f1, mcc (+ roc_auc with scores);
        multilabel: accuracy (exact match), macro_f1 (+ roc_auc);
        regression: spearman, pearson, r2, rmse;
        residue: accuracy, macro_f1, mcc over the scored residues.
    """
    if task in ("binary", "multiclass"):
        out = {"accuracy": accuracy(y_true, y_pred), "macro_f1": macro_f1(y_true, y_pred), "mcc": matthews_corrcoef(y_true, y_pred)}
        if scores is not None:
            out["roc_auc"] = roc_auc(y_true, scores)
        return out
    if task == "multilabel":
        out = {"accuracy": accuracy(y_true, y_pred), "macro_f1": macro_f1(y_true, y_pred)}
        if scores is not None:
            out["roc_auc"] = roc_auc(y_true, scores)
        return out
    if task == "regression":
        return {"spearman": spearman(y_true, y_pred), "pearson": pearson(y_true, y_pred),
                "r2": r2_score(y_true, y_pred), "rmse": rmse(y_true, y_pred)}  # fmt: skip
    if task == "residue":
        t, p = flatten_residues(y_true, mask), flatten_residues(y_pred, mask)
        return {"accuracy": accuracy(t, p), "macro_f1": macro_f1(t, p), "mcc": matthews_corrcoef(t, p)}
    raise DataError(f"unknown task {task!r}; choose binary, multiclass, multilabel, regression or residue")


# ----------------------------------------------------------------------------- over seeds


@dataclass(frozen=True)
class MetricSummary:
    """Mean and sample standard deviation (ddof=1; 0 for a single run) of one metric over seeds."""

    mean: float
    std: float
    values: tuple[float, ...]  # one per seed, in run order

    @property
    def n(self) -> int:
        return len(self.values)

    def format(self, digits: int = 3) -> str:
        """`"0.812 ± 0.013"`."""
        return f"{self.mean:.{digits}f} ± {self.std:.{digits}f}"

    def __str__(self) -> str:
        return self.format()

    def to_dict(self) -> dict[str, Any]:
        return {"mean": self.mean, "std": self.std, "n": self.n, "values": list(self.values)}


def aggregate_over_seeds(runs: Sequence[Mapping[str, float]]) -> dict[str, MetricSummary]:
    """Mean ± std of every metric over runs (one dict of metrics per seed).

    Raises:
        DataError: no runs, or runs that report different metrics.
    """
    if not runs:
        raise DataError("no runs to aggregate; run at least one seed")
    names = list(runs[0])
    for i, run in enumerate(runs[1:], start=2):
        if set(run) != set(names):
            raise DataError(f"run {i} reports metrics {sorted(run)}, run 1 reports {sorted(names)}; they must match")
    out = {}
    for name in names:
        values = np.array([float(run[name]) for run in runs])
        std = float(values.std(ddof=1)) if len(values) > 1 else 0.0
        out[name] = MetricSummary(float(values.mean()), std, tuple(float(v) for v in values))
    return out

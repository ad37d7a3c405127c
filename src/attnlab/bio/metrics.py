"""Evaluation metrics for sequence probes, computed by scikit-learn and SciPy, and their aggregation over seeds.

Classification: accuracy, macro-F1, Matthews correlation coefficient (binary or the
multi-class form of Gorodkin 2004, "Comparing two K-category assignments by a K-category
correlation coefficient"), ROC-AUC (binary; macro one-vs-rest for multi-class and
multi-label), the confusion matrix. Regression: Spearman, Pearson, R^2, RMSE. Per residue:
accuracy under a mask.

Every function takes NumPy arrays (or lists) and returns a Python float. The numbers are
scikit-learn's (`sklearn.metrics`) and SciPy's (`scipy.stats`); what attnlab adds is how
undefined values come out, the same for every metric and without warnings:
    * MCC = 0 for a constant prediction, F1 = 0 for a class never predicted nor present
      (counted in the macro mean), R^2 = 1 or 0 for constant targets (predicted exactly or not);
    * NaN where the libraries raise or warn: ROC-AUC with a single class (a class without
      both positives and negatives is left out of a macro average), Pearson / Spearman of a
      constant or of fewer than two values;
    * a `DataError` for inputs of different shapes or no items at all.
scikit-learn is imported the first time a metric needs it (it comes with `attnlab[labs]`).
"""

from __future__ import annotations

import warnings
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

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


def _sklearn(metric: str, *args: Any, **kwargs: Any) -> Any:
    """`sklearn.metrics.<metric>(*args, **kwargs)`, quietly: the undefined cases are documented above."""
    try:
        from sklearn import metrics
    except ImportError:
        raise DataError("the probe metrics need scikit-learn; pip install scikit-learn (or attnlab[labs])") from None
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # e.g. "a single label was found", undefined MCC or F1
        return getattr(metrics, metric)(*args, **kwargs)


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
    return float(_sklearn("accuracy_score", a, b))


def confusion_matrix(y_true: Any, y_pred: Any, labels: Sequence[Any] | None = None) -> tuple[np.ndarray, list[Any]]:
    """(K, K) int64 counts, row = true class, column = predicted class.

    Args:
        labels: class order (e.g. `range(K)` to get a row and column for every class, seen
            or not); None = sorted union of the true and predicted values.
    Returns:
        (matrix, labels).
    """
    a, b = _pair(y_true, y_pred)
    classes = list(labels) if labels is not None else sorted(set(a.tolist()) | set(b.tolist()))
    matrix = _sklearn("confusion_matrix", a, b, labels=classes)
    return matrix.astype(np.int64), classes


def macro_f1(y_true: Any, y_pred: Any, labels: Sequence[Any] | None = None) -> float:
    """Unweighted mean over classes of F1 = 2TP / (2TP + FP + FN) (0 when a class is absent everywhere).

    For (N, K) multi-label 0/1 arrays, the mean of the K per-label binary F1 scores.
    """
    a, b = _pair(y_true, y_pred)
    labels = None if a.ndim == 2 or labels is None else list(labels)
    return float(_sklearn("f1_score", a, b, labels=labels, average="macro", zero_division=0))


def matthews_corrcoef(y_true: Any, y_pred: Any) -> float:
    """Matthews correlation coefficient, binary or multi-class (Gorodkin's R_K).

    With confusion matrix C (true x predicted), t_k = row sums, p_k = column sums,
    c = trace, s = total:  MCC = (c s - sum_k t_k p_k) / sqrt((s^2 - sum p_k^2)(s^2 - sum t_k^2)).
    0 when the denominator is 0 (e.g. a constant prediction).
    """
    a, b = _pair(y_true, y_pred)
    return float(_sklearn("matthews_corrcoef", a, b))


def _binary_auc(y: np.ndarray, score: np.ndarray) -> float:
    """ROC-AUC of 0/1 labels; NaN unless both classes are present (where scikit-learn raises)."""
    if len(np.unique(y)) < 2:
        return float("nan")
    return float(_sklearn("roc_auc_score", y, score))


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
    aucs = np.array([_binary_auc(y[:, k], s[:, k]) for k in range(s.shape[1])])
    defined = aucs[~np.isnan(aucs)]
    return float(defined.mean()) if defined.size else float("nan")


# ----------------------------------------------------------------------------- regression


def _correlation_inputs(y_true: Any, y_pred: Any) -> tuple[np.ndarray, np.ndarray] | None:
    """Both inputs flattened to float64, or None where a correlation is undefined (constant, < 2 values)."""
    a, b = _pair(y_true, y_pred)
    a, b = a.astype(np.float64).ravel(), b.astype(np.float64).ravel()
    if a.size < 2 or np.all(a == a[0]) or np.all(b == b[0]):
        return None
    return a, b


def pearson(y_true: Any, y_pred: Any) -> float:
    """Pearson correlation (`scipy.stats.pearsonr`); NaN when either input is constant."""
    from scipy import stats

    pair = _correlation_inputs(y_true, y_pred)
    return float("nan") if pair is None else float(stats.pearsonr(*pair).statistic)


def spearman(y_true: Any, y_pred: Any) -> float:
    """Spearman rank correlation (`scipy.stats.spearmanr`: ties share their mean rank); NaN for a constant."""
    from scipy import stats

    pair = _correlation_inputs(y_true, y_pred)
    return float("nan") if pair is None else float(stats.spearmanr(*pair).statistic)


def r2_score(y_true: Any, y_pred: Any) -> float:
    """Coefficient of determination 1 - SS_res / SS_tot (1 or 0 when the targets are constant)."""
    a, b = _pair(y_true, y_pred)
    return float(_sklearn("r2_score", a.astype(np.float64).ravel(), b.astype(np.float64).ravel()))


def rmse(y_true: Any, y_pred: Any) -> float:
    """Root mean squared error."""
    a, b = _pair(y_true, y_pred)
    mse = _sklearn("mean_squared_error", a.astype(np.float64).ravel(), b.astype(np.float64).ravel())
    return float(np.sqrt(mse))


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


def residue_accuracy(y_true: Any, y_pred: Any, mask: Any = None) -> float:
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
        out = {
            "accuracy": accuracy(y_true, y_pred),
            "macro_f1": macro_f1(y_true, y_pred),
            "mcc": matthews_corrcoef(y_true, y_pred),
        }
        if scores is not None:
            out["roc_auc"] = roc_auc(y_true, scores)
        return out
    if task == "multilabel":
        out = {"accuracy": accuracy(y_true, y_pred), "macro_f1": macro_f1(y_true, y_pred)}
        if scores is not None:
            out["roc_auc"] = roc_auc(y_true, scores)
        return out
    if task == "regression":
        return {
            "spearman": spearman(y_true, y_pred),
            "pearson": pearson(y_true, y_pred),
            "r2": r2_score(y_true, y_pred),
            "rmse": rmse(y_true, y_pred),
        }
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

"""Vectors: dot product, cosine similarity, Euclidean distance and nearest neighbours.

The first step of the workshop: an embedding is just a vector, and "similar" means
either *pointing the same way* (cosine similarity, what attention's dot products and
sentence embeddings use) or *lying close by* (Euclidean distance). Everything here is
plain NumPy and works on batches.

Notation: N rows of the first set (queries), M rows of the second set (keys),
D vector size, K neighbours returned.

Zero vectors have no direction. Like `torch.nn.functional.cosine_similarity`, each
norm is clamped to at least `eps` before dividing, so a zero vector has cosine
similarity 0 with everything instead of NaN.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from attnlab.errors import ConfigError, DataError
from attnlab.utils import cosine_similarity_matrix

DEFAULT_EPS = 1e-8  # smallest norm divided by; same default as torch's cosine_similarity
METRICS = ("cosine", "euclidean")


def _as_float_array(x, name: str) -> np.ndarray:
    """`x` as a floating-point array; integers become float64. Rejects NaN/inf."""
    try:
        arr = np.asarray(x)
    except Exception as e:  # ragged lists and other things NumPy cannot hold
        raise DataError(
            f"{name} cannot be read as an array ({e}); pass a NumPy array or a list of equal-length lists"
        ) from e
    if arr.dtype.kind in "biu":
        arr = arr.astype(np.float64)
    elif arr.dtype.kind != "f":
        raise DataError(
            f"{name} must hold numbers, got dtype {arr.dtype}; convert it with np.asarray(..., dtype=float)"
        )
    if not np.all(np.isfinite(arr)):
        raise DataError(f"{name} contains NaN or infinite values; remove or impute them first")
    return arr


def _check_same_size(a: np.ndarray, b: np.ndarray, names: tuple[str, str]) -> None:
    if a.ndim == 0 or b.ndim == 0:
        raise DataError(f"{names[0]} and {names[1]} must be vectors (at least 1-D), got shapes {a.shape} and {b.shape}")
    if a.shape[-1] != b.shape[-1]:
        raise DataError(
            f"{names[0]} has vectors of size {a.shape[-1]} but {names[1]} of size {b.shape[-1]}; "
            "both must have the same last dimension D"
        )


def _as_matrix(x, name: str) -> np.ndarray:
    arr = _as_float_array(x, name)
    if arr.ndim == 1:
        arr = arr[None, :]  # one vector -> a set of one
    if arr.ndim != 2:
        raise DataError(f"{name} must be a (rows, D) matrix of vectors, got shape {arr.shape}")
    return arr


# --- one pair at a time (broadcast over leading dimensions) --------------------------


def dot(a, b) -> np.ndarray:
    """Dot product along the last axis: sum_i a_i * b_i.

    Args:
        a: vectors, shape (..., D).
        b: vectors, shape (..., D), broadcastable against `a`.
    Returns:
        Shape (...) (a float for two 1-D vectors).
    """
    a = _as_float_array(a, "a")
    b = _as_float_array(b, "b")
    _check_same_size(a, b, ("a", "b"))
    return np.sum(a * b, axis=-1)


def norm(a) -> np.ndarray:
    """Euclidean length sqrt(a . a) along the last axis.

    Args:
        a: vectors, shape (..., D).
    Returns:
        Shape (...).
    """
    a = _as_float_array(a, "a")
    if a.ndim == 0:
        raise DataError(f"a must be a vector (at least 1-D), got shape {a.shape}")
    return np.sqrt(np.sum(a * a, axis=-1))


def cosine_similarity(a, b, eps: float = DEFAULT_EPS) -> np.ndarray:
    """Cosine of the angle between vectors: a . b / (|a| |b|), in [-1, 1].

    Each norm is clamped to at least `eps`, so a zero vector gives 0, never NaN.

    Args:
        a: vectors, shape (..., D).
        b: vectors, shape (..., D), broadcastable against `a`.
        eps: smallest norm divided by.
    Returns:
        Shape (...).
    """
    a = _as_float_array(a, "a")
    b = _as_float_array(b, "b")
    _check_same_size(a, b, ("a", "b"))
    denom = np.maximum(norm(a), eps) * np.maximum(norm(b), eps)
    return np.sum(a * b, axis=-1) / denom


def euclidean_distance(a, b) -> np.ndarray:
    """Straight-line distance |a - b| along the last axis.

    Args:
        a: vectors, shape (..., D).
        b: vectors, shape (..., D), broadcastable against `a`.
    Returns:
        Shape (...), all >= 0.
    """
    a = _as_float_array(a, "a")
    b = _as_float_array(b, "b")
    _check_same_size(a, b, ("a", "b"))
    diff = a - b
    return np.sqrt(np.sum(diff * diff, axis=-1))


# --- every pair between two sets --------------------------------------------------------


def pairwise_dot(queries, keys) -> np.ndarray:
    """All dot products between two sets of vectors (the Q K^T of attention).

    Args:
        queries: shape (N, D) (or (D,) for one vector).
        keys: shape (M, D) (or (D,)).
    Returns:
        Shape (N, M): entry [i, j] = queries[i] . keys[j].
    """
    q = _as_matrix(queries, "queries")
    k = _as_matrix(keys, "keys")
    _check_same_size(q, k, ("queries", "keys"))
    return q @ k.T


def pairwise_cosine_similarity(queries, keys, eps: float = DEFAULT_EPS) -> np.ndarray:
    """Cosine similarity between every query and every key.

    Zero vectors are safe: their row/column is 0.

    Args:
        queries: shape (N, D) (or (D,)).
        keys: shape (M, D) (or (D,)).
        eps: smallest norm divided by.
    Returns:
        Shape (N, M), values in [-1, 1].
    """
    q = _as_matrix(queries, "queries")
    k = _as_matrix(keys, "keys")
    _check_same_size(q, k, ("queries", "keys"))
    # q k^T / (|q| |k|) with each norm clamped to at least eps, clipped to [-1, 1] against
    # rounding: the library's one cosine-similarity matrix (`attnlab.utils`).
    return cosine_similarity_matrix(q, k, eps)


def pairwise_euclidean_distance(queries, keys, squared: bool = False) -> np.ndarray:
    """Euclidean distance between every query and every key.

    Uses |q - k|^2 = |q|^2 + |k|^2 - 2 q.k, which needs one matrix product instead of
    an (N, M, D) array of differences. Rounding can make that a tiny negative number
    for (nearly) equal vectors, so it is clipped at 0.

    Args:
        queries: shape (N, D) (or (D,)).
        keys: shape (M, D) (or (D,)).
        squared: return squared distances (skips the square root).
    Returns:
        Shape (N, M), all >= 0.
    """
    q = _as_matrix(queries, "queries")
    k = _as_matrix(keys, "keys")
    _check_same_size(q, k, ("queries", "keys"))
    sq = np.sum(q * q, axis=1)[:, None] + np.sum(k * k, axis=1)[None, :] - 2.0 * (q @ k.T)  # (N, M)
    sq = np.maximum(sq, 0.0)
    return sq if squared else np.sqrt(sq)


# --- nearest neighbours ------------------------------------------------------------------


@dataclass(frozen=True)
class Neighbors:
    """The top-k keys for each query, best first.

    Attributes:
        indices: shape (N, K), row numbers into `keys`.
        scores: shape (N, K), cosine similarity (higher is nearer) or Euclidean
            distance (lower is nearer), depending on `metric`.
        metric: "cosine" or "euclidean".
    """

    indices: np.ndarray
    scores: np.ndarray
    metric: str


def nearest_neighbors(queries, keys, k: int = 5, metric: str = "cosine", exclude_self: bool = False) -> Neighbors:
    """Top-k nearest keys for each query, by cosine similarity or Euclidean distance.

    Exactly equal scores are broken by the lower key index, so the result is deterministic.

    Args:
        queries: shape (N, D) (or (D,) for one query).
        keys: shape (M, D).
        k: neighbours per query, 1 <= k <= M (M - 1 with `exclude_self`).
        metric: "cosine" (largest similarity first) or "euclidean" (smallest distance first).
        exclude_self: queries and keys are the same set; skip each row's own index
            (needs N == M).
    Returns:
        `Neighbors` with `indices` and `scores` of shape (N, K).
    Raises:
        ConfigError: unknown metric, or k out of range.
        DataError: bad shapes or values.
    """
    if metric not in METRICS:
        raise ConfigError(f"unknown metric {metric!r}; choose one of {', '.join(METRICS)}")
    q = _as_matrix(queries, "queries")
    keys_ = _as_matrix(keys, "keys")
    _check_same_size(q, keys_, ("queries", "keys"))
    n, m = q.shape[0], keys_.shape[0]
    if exclude_self and n != m:
        raise DataError(f"exclude_self needs queries and keys to be the same set, got {n} queries and {m} keys")
    available = m - 1 if exclude_self else m
    if not isinstance(k, (int, np.integer)) or isinstance(k, bool) or not 1 <= k <= available:
        raise ConfigError(f"k must be an integer between 1 and {available} (the number of candidate keys), got {k!r}")

    if metric == "cosine":
        scores = pairwise_cosine_similarity(q, keys_)  # (N, M), higher is nearer
        order_key = -scores
    else:
        scores = pairwise_euclidean_distance(q, keys_)  # (N, M), lower is nearer
        order_key = scores.copy()
    if exclude_self:
        order_key[np.arange(n), np.arange(n)] = np.inf  # never pick yourself
    # A stable sort keeps equal scores in index order (the documented tie-break).
    # For big M, np.argpartition would be faster; clarity wins at workshop sizes.
    indices = np.argsort(order_key, axis=1, kind="stable")[:, :k]  # (N, K)
    return Neighbors(indices=indices, scores=np.take_along_axis(scores, indices, axis=1), metric=metric)

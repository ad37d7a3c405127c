"""Checks of lab 0's exercises: a stable softmax and cosine similarity.

Each check is `attnlab.exercises.check.<name>`; the shared machinery is in `_core`.
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np

from attnlab.exercises import solutions
from attnlab.exercises._core import Case, CheckResult, Exercise, Mistake, message_has, rng, run_check, stable_softmax

# ---------------------------------------------------------------------------
# softmax
# ---------------------------------------------------------------------------


def _softmax_cases() -> list[Case]:
    r = rng(1)
    return [
        Case("three numbers [1, 2, 3]", (np.array([1.0, 2.0, 3.0]),)),
        Case("a (3, 5) batch of rows", (r.normal(size=(3, 5)) * 2,)),
        Case("a square (4, 4) batch", (r.normal(size=(4, 4)) * 2,)),
        Case(
            "huge scores [[1000, 1001, 1002], [-1000, -999, -998]]",
            (np.array([[1000.0, 1001, 1002], [-1000, -999, -998]]),),
        ),
        Case("a (2, 3, 4) batch", (r.normal(size=(2, 3, 4)),)),
    ]


def _softmax_naive(x):
    e = np.exp(x)
    return e / e.sum(axis=-1, keepdims=True)


def _softmax_no_keepdims(x):
    e = np.exp(x - x.max(axis=-1, keepdims=True))
    s = e.sum(axis=-1)
    if e.ndim > 1:
        s = np.expand_dims(s, -2)  # how NumPy broadcasts e / e.sum(-1) on a square matrix
        if s.shape[-1] != e.shape[-1]:
            raise ValueError("not broadcastable")
    return e / s


def _softmax_exception(e: BaseException, case: Case, earlier_ok: bool) -> tuple[str, str] | None:
    if message_has(e, "broadcast", "must match the size", "size of tensor a"):
        return (
            "no_keepdims",
            "the row sums (and maxima) must keep their axis to broadcast back: use "
            "x.sum(axis=-1, keepdims=True) in NumPy, x.sum(dim=-1, keepdim=True) in PyTorch.",
        )
    return None


SOFTMAX = Exercise(
    name="softmax",
    reference=solutions.softmax,
    cases=_softmax_cases,
    mistakes=[
        Mistake(
            "no_max_subtraction",
            _softmax_naive,
            "exp overflows for large scores (exp(1000) = inf, and inf/inf = NaN). Subtract each row's maximum "
            "before exponentiating: softmax(x) = softmax(x - max(x)), so the result is unchanged.",
        ),
        Mistake(
            "wrong_axis",
            lambda x: stable_softmax(x, axis=0),
            "you normalised over the wrong axis: softmax runs over the last axis (axis=-1 / dim=-1), "
            "so that every row sums to 1.",
        ),
        Mistake(
            "whole_array",
            lambda x: np.exp(x - x.max()) / np.exp(x - x.max()).sum(),
            "you divided by the sum over the whole array; divide each row by its own sum "
            "(sum over axis=-1 with keepdims=True).",
        ),
        Mistake(
            "no_keepdims",
            _softmax_no_keepdims,
            "e / e.sum(axis=-1) divides column j by the sum of row j on a square matrix; keep the summed "
            "axis (keepdims=True / keepdim=True) so each row is divided by its own sum.",
        ),
        Mistake(
            "no_exp",
            lambda x: x / x.sum(axis=-1, keepdims=True),
            "softmax exponentiates first: exp(x) / sum(exp(x)). Dividing the raw scores by their sum is not a "
            "probability (negative scores give negative 'probabilities').",
        ),
        Mistake(
            "no_normalisation",
            lambda x: np.exp(x - x.max(axis=-1, keepdims=True)),
            "after exponentiating, divide by the sum over the last axis so that each row sums to 1.",
        ),
        Mistake(
            "no_normalisation_raw",
            np.exp,
            "after exponentiating, divide by the sum over the last axis so that each row sums to 1.",
        ),
        Mistake(
            "log_softmax",
            lambda x: np.log(stable_softmax(x)),
            "you returned log-probabilities (log_softmax); softmax returns the probabilities themselves.",
        ),
    ],
    general_hint="softmax(x) = exp(x - max) / sum(exp(x - max)), with max and sum over the last axis (keepdims=True).",
    exception_hint=_softmax_exception,
)


def softmax(fn: Callable, *, strict: bool = False, verbose: bool = True, framework: str = "auto") -> CheckResult:
    """Check `fn(x)` = softmax over the last axis (any shape; stable for large scores).

    Args:
        fn: the learner's function (NumPy or PyTorch).
        strict: raise AssertionError when wrong (for tests).
        verbose: print the message.
        framework: "auto", "numpy" or "torch": what to call `fn` with.
    Returns:
        A `CheckResult` (truthy when correct).
    """
    return run_check(SOFTMAX, fn, strict=strict, verbose=verbose, framework=framework)


# ---------------------------------------------------------------------------
# cosine similarity
# ---------------------------------------------------------------------------


def _cosine_cases() -> list[Case]:
    r = rng(2)
    return [
        Case("a = [1, 0], b = [0, 1]", (np.array([1.0, 0.0]), np.array([0.0, 1.0]))),
        Case("a = [1, 2, 3], b = [2, 4, 6]", (np.array([1.0, 2.0, 3.0]), np.array([2.0, 4.0, 6.0]))),
        Case("two random 8-d vectors", (r.normal(size=8), r.normal(size=8) * 3)),
        Case("opposite vectors [1, 1] and [-2, -2]", (np.array([1.0, 1.0]), np.array([-2.0, -2.0]))),
        Case("two long random 16-d vectors", (r.normal(size=16) * 10 + 1, r.normal(size=16) * 0.5 + 0.3)),
    ]


def _norm(x):
    return np.linalg.norm(x)


COSINE = Exercise(
    name="cosine_similarity",
    reference=solutions.cosine_similarity,
    cases=_cosine_cases,
    mistakes=[
        Mistake(
            "dot_only",
            lambda a, b: a @ b,
            "that is the plain dot product, which grows with the vectors' lengths; divide by |a| |b|.",
        ),
        Mistake("one_norm", lambda a, b: a @ b / _norm(a), "divide by the product of BOTH lengths, |a| * |b|."),
        Mistake("one_norm_b", lambda a, b: a @ b / _norm(b), "divide by the product of BOTH lengths, |a| * |b|."),
        Mistake(
            "squared_norms",
            lambda a, b: a @ b / (a @ a * (b @ b)),
            "the lengths are square roots: |a| = sqrt(a . a). You divided by the squared lengths.",
        ),
        Mistake(
            "sum_of_norms", lambda a, b: a @ b / (_norm(a) + _norm(b)), "divide by the product |a| * |b|, not the sum."
        ),
        Mistake(
            "euclidean_distance",
            lambda a, b: _norm(a - b),
            "that is the Euclidean distance |a - b|; cosine similarity compares directions: a . b / (|a| |b|).",
        ),
        Mistake(
            "cosine_distance",
            lambda a, b: 1 - a @ b / (_norm(a) * _norm(b)),
            "that is the cosine distance 1 - cos; return the similarity a . b / (|a| |b|) itself.",
        ),
        Mistake(
            "absolute_value",
            lambda a, b: abs(a @ b) / (_norm(a) * _norm(b)),
            "keep the sign: opposite vectors have similarity -1, not 1.",
        ),
    ],
    general_hint="cosine_similarity(a, b) = a . b / (|a| |b|) with |a| = sqrt(a . a).",
)


def cosine_similarity(
    fn: Callable, *, strict: bool = False, verbose: bool = True, framework: str = "auto"
) -> CheckResult:
    """Check `fn(a, b)` = cosine similarity of two vectors (a number). Args and return as `softmax`."""
    return run_check(COSINE, fn, strict=strict, verbose=verbose, framework=framework)


__all__ = ["softmax", "cosine_similarity"]

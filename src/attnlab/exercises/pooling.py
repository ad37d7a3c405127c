"""Check of the mean-pooling exercise (labs 4 and 6): average the real tokens (Reimers & Gurevych 2019).

Each check is `attnlab.exercises.check.<name>`; the shared machinery is in `_core`.
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np

from attnlab.exercises import solutions
from attnlab.exercises._core import Case, CheckResult, Exercise, Mistake, rng, run_check

# ---------------------------------------------------------------------------
# mean pooling
# ---------------------------------------------------------------------------


def _pool_cases() -> list[Case]:
    r = rng(9)
    m1 = np.array([[1, 1, 1, 1], [1, 1, 0, 0]])
    m2 = np.array([[1, 1, 1, 0, 0], [1, 0, 0, 0, 0], [1, 1, 1, 1, 1]])
    return [
        Case("a batch of 2 with padding in the second row", (r.normal(size=(2, 4, 3)), m1)),
        Case("a batch of 3 of lengths 3, 1 and 5", (r.normal(size=(3, 5, 4)) + 1, m2)),
        Case("no padding", (r.normal(size=(1, 3, 2)), np.ones((1, 3), dtype=np.int64))),
    ]


def _mask3(m):
    return np.asarray(m, dtype=np.float64)[..., None]


MEAN_POOLING = Exercise(
    name="mean_pooling",
    reference=solutions.mean_pooling,
    cases=_pool_cases,
    mistakes=[
        Mistake(
            "includes_padding",
            lambda h, m: h.mean(axis=1),
            "padding is not part of the text: average only the real tokens: (hidden * mask).sum(1) / mask.sum(1).",
        ),
        Mistake(
            "divides_by_length",
            lambda h, m: (h * _mask3(m)).sum(axis=1) / h.shape[1],
            "divide by the number of REAL tokens of each row (mask.sum(1)), not by the padded length T.",
        ),
        Mistake(
            "sum_only",
            lambda h, m: (h * _mask3(m)).sum(axis=1),
            "after summing the real tokens, divide by how many there are (mask.sum(axis=1, keepdims=True)).",
        ),
        Mistake(
            "cls_token",
            lambda h, m: h[:, 0],
            "that is CLS pooling (the first token's vector); mean pooling averages all real tokens.",
        ),
        Mistake(
            "max_pooling",
            lambda h, m: np.where(_mask3(m) > 0, h, -np.inf).max(axis=1),
            "that is max pooling; mean pooling averages the real tokens.",
        ),
    ],
    general_hint="(hidden * mask[..., None]).sum(axis=1) / mask.sum(axis=1)[..., None]",
    shape_hint=lambda got, want, case: (
        ("kept_time_axis", "pool over the time axis (axis=1): the result is (B, C).") if len(got) == 3 else None
    ),
)


def mean_pooling(fn: Callable, *, strict: bool = False, verbose: bool = True, framework: str = "auto") -> CheckResult:
    """Check `fn(hidden, attention_mask)`: (B, T, C), (B, T) 0/1 -> (B, C) mean over real tokens.

    Args and return as `softmax`.
    """
    return run_check(MEAN_POOLING, fn, strict=strict, verbose=verbose, framework=framework)


__all__ = ["mean_pooling"]

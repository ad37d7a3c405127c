"""Check of the cross-entropy exercise (labs 3 and 5): the mean negative log-likelihood of the targets.

Each check is `attnlab.exercises.check.<name>`; the shared machinery is in `_core`.
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np

from attnlab.exercises import solutions
from attnlab.exercises._core import Case, CheckResult, Exercise, Mistake, rng, run_check, stable_softmax

# ---------------------------------------------------------------------------
# cross-entropy
# ---------------------------------------------------------------------------


def _ce_cases() -> list[Case]:
    r = rng(8)
    return [
        Case("one example, logits [2, 1, 0.1], target 0", (np.array([[2.0, 1.0, 0.1]]), np.array([0]))),
        Case("5 examples, 7 classes", (r.normal(size=(5, 7)) * 2, r.integers(0, 7, size=5))),
        Case("3 examples, 3 classes", (r.normal(size=(3, 3)) * 3, np.array([2, 0, 1]))),
        Case("huge logits (hundreds)", (r.normal(size=(4, 3)) * 500, np.array([0, 1, 2, 1]))),
    ]


def _log_softmax(x, axis=-1):
    x = np.asarray(x, dtype=np.float64)
    s = x - x.max(axis=axis, keepdims=True)
    return s - np.log(np.exp(s).sum(axis=axis, keepdims=True))


def _pick(m, t):
    return m[np.arange(len(t)), t]


def _ce_shape(got: tuple, want: tuple, case: Case) -> tuple[str, str] | None:
    n = case.args[0].shape[0]
    if got == (n,) and n > 1:
        return ("no_mean", "return one number: the MEAN of the per-example losses (.mean()).")
    return None


CROSS_ENTROPY = Exercise(
    name="cross_entropy",
    reference=solutions.cross_entropy,
    cases=_ce_cases,
    mistakes=[
        Mistake(
            "unstable_logsumexp",
            lambda x, t: -np.mean(_pick(x - np.log(np.exp(x).sum(-1, keepdims=True)), t)),
            "exp of large logits overflows to inf. Use the log-sum-exp trick: subtract each row's max before "
            "exponentiating (or np.logaddexp / torch.logsumexp / F.log_softmax).",
        ),
        Mistake(
            "raw_logits",
            lambda x, t: -np.mean(_pick(x, t)),
            "turn logits into log-probabilities first: log_softmax(x) = x - logsumexp(x) over the last axis.",
        ),
        Mistake(
            "probabilities_not_log",
            lambda x, t: -np.mean(_pick(stable_softmax(x), t)),
            "take the LOG of the target's probability: loss = -log p[target].",
        ),
        Mistake(
            "sum_not_mean",
            lambda x, t: -np.sum(_pick(_log_softmax(x), t)),
            "average over the examples (mean), do not sum: the loss should not grow with the batch size.",
        ),
        Mistake(
            "missing_minus",
            lambda x, t: np.mean(_pick(_log_softmax(x), t)),
            "cross-entropy is MINUS the mean log-probability of the targets (a loss is >= 0).",
        ),
        Mistake(
            "wrong_axis",
            lambda x, t: -np.mean(_pick(_log_softmax(x, axis=0), t)),
            "normalise over the classes, the last axis (axis=-1 / dim=-1), not over the examples.",
        ),
    ],
    general_hint="loss = -mean_n log_softmax(logits)[n, target_n], with log_softmax over the last axis.",
    shape_hint=_ce_shape,
)


def cross_entropy(fn: Callable, *, strict: bool = False, verbose: bool = True, framework: str = "auto") -> CheckResult:
    """Check `fn(logits, targets)` = mean cross-entropy; logits (N, V), targets (N,) ints.

    Args and return as `softmax`.
    """
    return run_check(CROSS_ENTROPY, fn, strict=strict, verbose=verbose, framework=framework)


__all__ = ["cross_entropy"]

"""Exercise checks: test a learner's function against the reference and give a targeted hint.

In a lab notebook the learner writes a function, then runs its check:

    def attention(q, k, v, mask=None):
        ...
    from attnlab.exercises import check
    check.attention(attention)

The check calls the function on a few small inputs (a hand-sized one, a batched one,
an edge case such as huge scores or a constant row), compares each output with the
reference solution (`attnlab.exercises.solutions`), and prints one friendly paragraph: correct,
or what went wrong with a hint. Typical mistakes are recognised by also running
deliberately wrong variants of the reference (no scaling, softmax over the wrong axis,
mask applied after the softmax, mask with the wrong polarity ...): when the learner's
outputs equal a variant's on every input, the hint names that mistake. Exceptions and
wrong shapes get their own hints (a missing transpose, k.T on a batch, keepdims).

Learners may write NumPy or PyTorch: the inputs are NumPy arrays, and when the
function fails on them (or visibly uses torch) it is called with float64 torch
tensors instead. A wrong answer never raises: every check returns a `CheckResult`
(truthy when passed) and prints its message; `strict=True` raises AssertionError
instead, for tests.

Exercises: softmax, cosine_similarity, causal_mask, attention, layer_norm,
multi_head_split, multi_head_merge, positional_encoding, cross_entropy, mean_pooling,
farthest_point_sample, previous_token_scores; and one prediction, ablation_prediction
(in `PREDICTIONS`: it checks a statement made before an experiment against what the
experiment measured, so it takes the measurements too, see `attnlab.exercises.interp`); and the
measurement checks of lab 7, fit_power_law, predict_loss and gain_slope (`attnlab.exercises.scaling`),
whose truth is the notebook's own runs.

Each exercise group has its module in this package (`basics`, `self_attention`,
`encoder_block`, `losses`, `pooling`, `points`, `interp`, `scaling`, on the shared machinery of `_core`); this module
gathers their checks under the one name the notebooks use.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from attnlab.exercises._core import CheckResult, Exercise
from attnlab.exercises.basics import COSINE, SOFTMAX, cosine_similarity, softmax
from attnlab.exercises.encoder_block import (
    LAYER_NORM,
    MULTI_HEAD_MERGE,
    MULTI_HEAD_SPLIT,
    POSITIONAL_ENCODING,
    layer_norm,
    multi_head_merge,
    multi_head_split,
    positional_encoding,
)
from attnlab.exercises.interp import PREVIOUS_TOKEN_SCORES, ablation_prediction, previous_token_scores
from attnlab.exercises.losses import CROSS_ENTROPY, cross_entropy
from attnlab.exercises.points import FARTHEST_POINT_SAMPLE, farthest_point_sample
from attnlab.exercises.pooling import MEAN_POOLING, mean_pooling
from attnlab.exercises.scaling import fit_power_law, gain_slope, predict_loss
from attnlab.exercises.self_attention import ATTENTION, CAUSAL_MASK, attention, causal_mask

EXERCISES: dict[str, Callable[..., CheckResult]] = {
    "softmax": softmax,
    "cosine_similarity": cosine_similarity,
    "causal_mask": causal_mask,
    "attention": attention,
    "layer_norm": layer_norm,
    "multi_head_split": multi_head_split,
    "multi_head_merge": multi_head_merge,
    "positional_encoding": positional_encoding,
    "cross_entropy": cross_entropy,
    "mean_pooling": mean_pooling,
    "farthest_point_sample": farthest_point_sample,
    "previous_token_scores": previous_token_scores,
}

# prediction checks: check(prediction, measurements, ...), the truth is an experiment's result
PREDICTIONS: dict[str, Callable[..., CheckResult]] = {
    "ablation_prediction": ablation_prediction,
    "fit_power_law": fit_power_law,
    "predict_loss": predict_loss,
    "gain_slope": gain_slope,
}

_DEFINITIONS: dict[str, Exercise] = {
    e.name: e
    for e in (
        SOFTMAX,
        COSINE,
        CAUSAL_MASK,
        ATTENTION,
        LAYER_NORM,
        MULTI_HEAD_SPLIT,
        MULTI_HEAD_MERGE,
        POSITIONAL_ENCODING,
        CROSS_ENTROPY,
        MEAN_POOLING,
        FARTHEST_POINT_SAMPLE,
        PREVIOUS_TOKEN_SCORES,
    )
}


def mistakes(exercise: str) -> dict[str, str]:
    """The typical mistakes an exercise recognises: id -> hint (for instructors and tests)."""
    if exercise not in _DEFINITIONS:
        raise KeyError(f"unknown exercise {exercise!r}; known: {', '.join(EXERCISES)}")
    return {m.name: m.hint for m in _DEFINITIONS[exercise].mistakes}


def mistake_function(exercise: str, name: str) -> Callable[..., Any]:
    """The deliberately wrong NumPy variant `name` of `exercise` (for tests and demonstrations)."""
    for m in _DEFINITIONS[exercise].mistakes:
        if m.name == name:
            return m.function
    raise KeyError(f"exercise {exercise!r} has no mistake {name!r}; known: {', '.join(mistakes(exercise))}")


__all__ = ["CheckResult", "EXERCISES", "PREDICTIONS", "mistake_function", "mistakes", *EXERCISES, *PREDICTIONS]

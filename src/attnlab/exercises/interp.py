"""Checks of the interpretability exercises (lab 8): find the previous-token head, predict an ablation.

* `previous_token_scores`: every head's previous-token score from attention patterns, the
  statistic `attnlab.interp.heads.pattern_scores` computes (Elhage et al. 2021; Olsson et al.
  2022). An ordinary exercise: test inputs, the reference, typical mistakes (`_core`).
* `ablation_prediction`: a *prediction* check. The learner states which head ablations will
  break in-context copying in the induction-head lab's model *before* the experiment; the
  check compares that statement with the losses the experiment measured. There are no
  fixed test inputs and no reference output: the truth is the measurement, so a model that
  learned another circuit (or none) gives another right answer. It is gathered in
  `check.PREDICTIONS`, not `check.EXERCISES` (whose checks take only the learner's function).

Each check is `attnlab.exercises.check.<name>`; the shared machinery is in `_core`.
"""

from __future__ import annotations

import difflib
from collections.abc import Callable, Iterable, Mapping
from typing import Any

import numpy as np

from attnlab.exercises import solutions
from attnlab.exercises._core import Case, CheckResult, Exercise, Mistake, rng, run_check

# ---------------------------------------------------------------------------
# previous-token scores
# ---------------------------------------------------------------------------


def _causal_patterns(r: np.random.Generator, L: int, B: int, H: int, T: int, sharp: float = 2.0) -> np.ndarray:
    """Random causal attention patterns (L, B, H, T, T): rows sum to 1, nothing above the diagonal."""
    scores = r.normal(size=(L, B, H, T, T)) * sharp
    scores = np.where(np.tril(np.ones((T, T), dtype=bool)), scores, -np.inf)
    e = np.exp(scores - scores.max(axis=-1, keepdims=True))
    return e / e.sum(axis=-1, keepdims=True)


def _hand_patterns() -> np.ndarray:
    """One layer, one sequence, two heads, T = 3: head 0 looks at the previous token, head 1 at itself."""
    previous = np.array([[1.0, 0.0, 0.0], [1.0, 0.0, 0.0], [0.0, 1.0, 0.0]])
    itself = np.eye(3)
    return np.stack([previous, itself])[None, None]  # (1, 1, 2, 3, 3)


def _prev_cases() -> list[Case]:
    r = rng(11)
    mixed = _causal_patterns(r, 3, 2, 2, 5)
    mixed[1, 0, 1] = np.eye(5, k=-1)  # one sequence where layer 1's head 1 is a perfect previous-token head
    mixed[1, 0, 1, 0, 0] = 1.0  # query 0 can only look at itself
    return [
        Case(
            "1 layer, 1 sequence, 2 heads, T = 3 (head 0 looks back one token, head 1 at itself)", (_hand_patterns(),)
        ),
        Case("random causal patterns, 2 layers x 3 sequences x 4 heads, T = 6", (_causal_patterns(r, 2, 3, 4, 6),)),
        Case("3 layers x 2 sequences x 2 heads, T = 5, the two sequences differ", (mixed,)),
        Case("the shortest sequence, T = 2", (_causal_patterns(r, 2, 1, 3, 2),)),
    ]


def _offdiagonal(p: np.ndarray, offset: int) -> np.ndarray:
    return np.diagonal(np.asarray(p, dtype=np.float64), offset=offset, axis1=-2, axis2=-1)  # (L, B, H, T - |offset|)


def _prev_shape(got: tuple, want: tuple, case: Case) -> tuple[str, str] | None:
    L, B, H, T, _ = case.args[0].shape
    if got == (L, B, H):
        return ("no_batch_mean", "average over the batch too (axis 1): the score is one number per (layer, head).")
    if got in ((L, H, T - 1), (L, B, H, T - 1), (L, H, T), (L, B, H, T)):
        return (
            "no_query_mean",
            "average over the queries as well (the last axis of what you have): one number per (layer, head).",
        )
    if got == (2,) or got == (2, 1):
        return (
            "returns_argmax",
            "return the (L, H) array of scores, one per head; finding the top head with argmax comes next.",
        )
    if len(got) == 4:  # np.diagonal(patterns, -1) without axes: the diagonal of axes 0 and 1 (layers, batch)
        return (
            "diagonal_axes",
            "np.diagonal takes the diagonal of the FIRST two axes unless told otherwise: "
            "np.diagonal(patterns, offset=-1, axis1=-2, axis2=-1) (torch: dim1=-2, dim2=-1).",
        )
    return None


PREVIOUS_TOKEN_SCORES = Exercise(
    name="previous_token_scores",
    reference=solutions.previous_token_scores,
    cases=_prev_cases,
    mistakes=[
        Mistake(
            "diagonal",
            lambda p: _offdiagonal(p, 0).mean(axis=(1, 3)),
            "that is the weight each token puts on ITSELF (the main diagonal, patterns[..., t, t]). The previous "
            "token of query t is key t - 1: the entries just below the diagonal (offset=-1).",
        ),
        Mistake(
            "above_diagonal",
            lambda p: _offdiagonal(p, 1).mean(axis=(1, 3)),
            "patterns[..., query, key]: above the diagonal are FUTURE keys, which a causal model never attends to "
            "(all zeros). The previous token is key t - 1, the diagonal below: offset=-1.",
        ),
        Mistake(
            "first_token",
            lambda p: np.asarray(p, dtype=np.float64)[..., 1:, 0].mean(axis=(1, 3)),
            "that is the first-token (attention sink) score, the weight on key 0. The previous-token score reads "
            "patterns[..., t, t - 1] for every query t >= 1.",
        ),
        Mistake(
            "counts_query_zero",
            lambda p: _offdiagonal(p, -1).sum(axis=-1).mean(axis=1) / np.shape(p)[-1],
            "query 0 has no previous token: average over the T - 1 queries 1 .. T-1 only (you divide by T, "
            "as if query 0 scored 0).",
        ),
        Mistake(
            "sum_over_queries",
            lambda p: _offdiagonal(p, -1).sum(axis=-1).mean(axis=1),
            "AVERAGE over the queries instead of summing: the score is a mean attention weight in [0, 1], "
            "comparable between sequences of different lengths.",
        ),
        Mistake(
            "sum_over_batch",
            lambda p: _offdiagonal(p, -1).mean(axis=-1).sum(axis=1),
            "average over the sequences of the batch (mean over axis 1), do not add them up.",
        ),
        Mistake(
            "first_sequence_only",
            lambda p: _offdiagonal(p, -1)[:, 0].mean(axis=-1),
            "average over EVERY sequence of the batch (axis 1), not only the first one.",
        ),
    ],
    general_hint=(
        "patterns[l, b, h, t, s] is how much query t attends to key s. Take the entries with s = t - 1 "
        "(np.diagonal(patterns, offset=-1, axis1=-2, axis2=-1), shape (L, B, H, T-1)) and average them over "
        "the batch (axis 1) and the queries (the last axis)."
    ),
    shape_hint=_prev_shape,
)


def previous_token_scores(
    fn: Callable, *, strict: bool = False, verbose: bool = True, framework: str = "auto"
) -> CheckResult:
    """Check `fn(patterns)` = every head's previous-token score; (L, B, H, T, T) -> (L, H).

    Args and return as `softmax`.
    """
    return run_check(PREVIOUS_TOKEN_SCORES, fn, strict=strict, verbose=verbose, framework=framework)


# ---------------------------------------------------------------------------
# predicting an ablation
# ---------------------------------------------------------------------------

# An ablation "breaks in-context copying" when it gives back at least this fraction of what
# copying gained: (ablated - clean) >= BREAK_FRACTION * (first_half - clean), all repeated-half
# losses except first_half. In lab 8's model (InductionConfig(), seeds 0, 1, 3 and 4, mean
# ablation) the previous-token head gives back 0.6-0.8 of the gap, the layer-1 induction heads
# together about 0.9, the other layer-0 head 0.03-0.14.
BREAK_FRACTION = 0.25

# why a learner's prediction about one of the lab's heads is off, by the names the lab uses
_MISSED = {
    "previous_token_head": (
        "missed_previous_token_head",
        "the induction heads cannot work alone. Their KEYS are built from what layer 0's previous-token head "
        "wrote into each position ('the token before me was A'); that is how they find the position after the "
        "earlier A (K-composition, Elhage et al. 2021). Remove the previous-token head and the induction heads "
        "have nothing to match.",
    ),
    "induction_heads": (
        "missed_induction_heads",
        "the previous-token head only writes 'the token before me was A' into each position; the heads in "
        "layer 1 that read it, attend to the token after the earlier A and copy it, are the induction heads. "
        "Without them nothing copies.",
    ),
}
_BYSTANDER = (
    "bystander",
    "not every head is part of the circuit: with a head that does something else removed (mean ablation "
    "keeps its average output) the previous-token head and the induction head still copy.",
)


def _names(value: Any) -> set[str] | None:
    """A prediction as a set of names (a set, list or tuple of names, or one name), or None."""
    if isinstance(value, str):
        return {value}
    if isinstance(value, Mapping):
        return None
    if isinstance(value, Iterable):
        items = list(value)
        if all(isinstance(x, str) for x in items):
            return set(items)
    return None


def _prediction_result(
    passed: bool, body: str, mistake: str | None = None, hint: str | None = None, *, verbose: bool, strict: bool
) -> CheckResult:
    name = "ablation_prediction"
    body = body[:1].upper() + body[1:]
    message = f"✅ {name}: correct! {body}" if passed else f"❌ {name}: not yet. {body}"
    if hint and not passed:
        message += f"\nHint: {hint}"
    result = CheckResult(name, passed, message, mistake, None if passed else hint, "numpy")
    if verbose:
        print(message)
        result._shown = True
    if strict and not passed:
        raise AssertionError(message)
    return result


def ablation_prediction(
    prediction: Any,
    ablated: Mapping[str, float],
    *,
    clean: float,
    first_half: float,
    strict: bool = False,
    verbose: bool = True,
) -> CheckResult:
    """Check a prediction of which ablations break in-context copying against the measured losses.

    An ablation breaks copying when it gives back at least `BREAK_FRACTION` of what copying
    gained: `ablated[name] - clean >= BREAK_FRACTION * (first_half - clean)`.

    Args:
        prediction: the learner's function (no arguments) returning the names it predicts
            break copying (a set or list of names, or one name), or that value itself.
        ablated: the experiment, {name: repeated-half loss with that head (or those heads)
            ablated}; its names are the ones a prediction may use.
        clean: the repeated-half loss with nothing ablated.
        first_half: the first-half loss (nothing to copy there: the level without copying).
        strict: raise AssertionError when wrong (for tests).
        verbose: print the message.
    Returns:
        A `CheckResult` (truthy when the prediction matches the experiment).
    """
    known = list(ablated)
    quiet = dict(verbose=verbose, strict=strict)
    if callable(prediction):
        try:
            value = prediction()
        except NotImplementedError:
            return _prediction_result(
                False,
                "your function raises NotImplementedError.",
                "not_implemented",
                "replace the `raise NotImplementedError` placeholder with your prediction: "
                f"return a set of names from: {', '.join(known)}.",
                **quiet,
            )
        except Exception as e:  # the learner's bug: report it, never raise
            return _prediction_result(
                False,
                f"your function raised {type(e).__name__}: {e}",
                "error",
                "the function takes no arguments and returns a set of names.",
                **quiet,
            )
    else:
        value = prediction
    if value is None:
        return _prediction_result(
            False, "your prediction is None.", "returns_none", "did you forget the `return` statement?", **quiet
        )
    names = _names(value)
    if names is None:
        return _prediction_result(
            False,
            f"your prediction is {type(value).__name__} {value!r}, not a set of names.",
            "not_names",
            f"return a set of names (strings) from: {', '.join(known)}.",
            **quiet,
        )
    unknown = sorted(names - set(known))
    if unknown:
        close = [m for n in unknown for m in difflib.get_close_matches(n, known, n=1, cutoff=0.6)]
        hint = f"did you mean {', '.join(repr(c) for c in close)}? " if close else ""
        return _prediction_result(
            False,
            f"{', '.join(repr(n) for n in unknown)} {'is' if len(unknown) == 1 else 'are'} not among the "
            "ablations that were run.",
            "unknown_name",
            hint + f"the names are: {', '.join(known)}.",
            **quiet,
        )
    gain = first_half - clean
    if not gain > 0:
        return _prediction_result(
            False,
            f"this model does not copy yet: its repeated-half loss ({clean:.2f}) is not below the first half's "
            f"({first_half:.2f}), so no ablation can break copying.",
            "no_copying",
            "train the model until the phase change (the repeated-half loss drops), then ablate.",
            **quiet,
        )
    breaks = {n for n in known if ablated[n] - clean >= BREAK_FRACTION * gain}
    width = max(len(n) for n in [*known, "ablated"])
    lines = [
        f"The experiment: the repeated-half loss is {clean:.2f} with nothing ablated and {first_half:.2f} in the "
        f"first half (nothing to copy there); an ablation breaks copying when it gives back at least "
        f"{BREAK_FRACTION:.0%} of that gap.",
        f"  {'ablated':<{width}}  loss  gap given back  measured  you said",
    ]
    for n in known:
        back = (ablated[n] - clean) / gain
        lines.append(
            f"  {n:<{width}}  {ablated[n]:4.2f}  {back:14.0%}  {'breaks' if n in breaks else 'harmless':8s}"
            f"  {'breaks' if n in names else 'harmless'}"
        )
    table = "\n".join(lines)
    said = " and ".join(n for n in known if n in names)
    if names == breaks:
        said = f"removing {said} breaks copying, and it does" if names else "no ablation breaks copying, and none does"
        return _prediction_result(True, f"You predicted that {said}.\n{table}", **quiet)
    missed = [n for n in known if n in breaks and n not in names]
    extra = [n for n in known if n in names and n not in breaks]
    differ = " and ".join(n for n in known if n in missed or n in extra)
    body = f"Your prediction differs from the measurement on {differ}.\n{table}"
    if missed:
        mistake, hint = _MISSED.get(
            missed[0],
            ("missed_head", f"removing {missed[0]} pushed the loss back up: that head takes part in copying."),
        )
    else:
        mistake, hint = _BYSTANDER
        if extra[0] not in ("other_layer0_heads", "other_layer1_heads"):
            hint = f"removing {extra[0]} barely changed the repeated-half loss: this model copies without it."
    return _prediction_result(False, body, mistake, hint, **quiet)


__all__ = ["ablation_prediction", "previous_token_scores"]

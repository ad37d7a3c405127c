"""Checks of the scale-and-transfer exercises (lab 7): fit a scaling law, predict a bigger model, read a trend.

All three are *measurement* checks (gathered in `check.PREDICTIONS`, like lab 8's
`ablation_prediction`): their truth comes from the runs the notebook trained, not from fixed
test inputs, so another machine's (slightly different) runs give another right answer.

* `fit_power_law`: the learner fits L(N, D) = E + A / N^alpha + B / D^beta (Hoffmann et al.
  2022, "approach 3") to a scaling study's runs. A and alpha (and B and beta) trade off
  against each other on a small grid, so the check compares what the fit *predicts*, not its
  five numbers: at every run, the learner's law and the library's fit
  (`attnlab.train.scaling_law.fit_scaling_law`, passed in by the notebook: this package may
  not import `attnlab.train`) must agree within `FIT_TOLERANCE` or twice the library fit's
  own scatter around the runs, whichever is larger.
* `predict_loss`: the learner predicts the loss of a model larger than any in the grid
  before it is trained; the check compares the prediction with what it measured. The
  tolerance is the measured spread: the new model's seeds' range, widened at each end by
  twice the RMS relative residual of the law on the runs it was fitted on, or by the error of
  the study's own held-out check when that is larger (a prediction cannot be expected to be
  closer than seeds agree with each other, than the law fits its own runs, or than the same
  kind of extrapolation did on the grid).
* `gain_slope`: the least-squares slope of the transfer gain against log10 of the target
  size (nats per tenfold more target data), `attnlab.train.transfer.gain_trend`'s
  statistic, on the notebook's transfer study and on two hand-made tables.

Each check is `attnlab.exercises.check.<name>`; the results are `_core.CheckResult`s.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from typing import Any

import numpy as np

from attnlab.exercises import solutions
from attnlab.exercises._core import CheckResult

FIT_TOLERANCE = 0.02  # relative: two fits of the same runs agree at least this well at every run
RESIDUAL_WIDTH = 2.0  # the prediction's band: the seeds' range widened by this many RMS relative residuals
MIN_BAND = 0.01  # and never narrower than 1% at each end
SLOPE_ATOL = 1e-6
PARAMETER_NAMES = ("E", "A", "B", "alpha", "beta")


def _result(
    name: str,
    passed: bool,
    body: str,
    mistake: str | None = None,
    hint: str | None = None,
    *,
    verbose: bool,
    strict: bool,
) -> CheckResult:
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


def _call(name: str, fn: Any, args: tuple, signature: str, quiet: dict) -> tuple[Any, CheckResult | None]:
    """The learner's value (fn(*args), or fn itself when it is not callable), or a finished "not yet"."""
    if not callable(fn):
        return fn, None
    try:
        return fn(*args), None
    except NotImplementedError:
        return None, _result(
            name,
            False,
            "your function raises NotImplementedError.",
            "not_implemented",
            f"replace the `raise NotImplementedError` placeholder with your code: {signature}.",
            **quiet,
        )
    except Exception as e:  # the learner's bug: report it, never raise
        text = " ".join(str(e).split())[:160]
        return None, _result(
            name, False, f"your function raised {type(e).__name__}: {text}", "error", signature + ".", **quiet
        )


def _law_values(value: Any) -> np.ndarray | None:
    """(E, A, B, alpha, beta) from a tuple/list/array of five, a mapping or an object with those attributes."""
    if isinstance(value, Mapping):
        if not all(k in value for k in PARAMETER_NAMES):
            return None
        value = [value[k] for k in PARAMETER_NAMES]
    elif all(hasattr(value, k) for k in PARAMETER_NAMES):
        value = [getattr(value, k) for k in PARAMETER_NAMES]
    try:
        arr = np.asarray(value, dtype=np.float64).ravel()
    except (TypeError, ValueError):
        return None
    return arr if arr.shape == (5,) else None


def _predict(law: np.ndarray, n: Any, d: Any) -> np.ndarray:
    E, A, B, alpha, beta = law
    with np.errstate(all="ignore"):
        return E + A / np.asarray(n, dtype=np.float64) ** alpha + B / np.asarray(d, dtype=np.float64) ** beta


def _rms_relative(pred: np.ndarray, losses: np.ndarray) -> float:
    return float(np.sqrt(np.mean(((pred - losses) / losses) ** 2)))


# ---------------------------------------------------------------------------
# fit the scaling law yourself
# ---------------------------------------------------------------------------


def fit_power_law(
    fn: Any,
    params: Sequence[float],
    tokens: Sequence[float],
    losses: Sequence[float],
    *,
    reference: Any,
    strict: bool = False,
    verbose: bool = True,
) -> CheckResult:
    """Check a learner's fit `fn(params, tokens, losses) -> (E, A, B, alpha, beta)` against the library's fit.

    Args:
        fn: the learner's function (or its returned value): five numbers (tuple, list, array),
            a mapping with keys E, A, B, alpha, beta, or an object with those attributes.
        params: (R,) non-embedding parameters N of the study's runs.
        tokens: (R,) their training tokens D.
        losses: (R,) their final validation losses.
        reference: the library's fit of the same runs (`attnlab.train.scaling_law.ScalingLaw`,
            e.g. `run_scaling_study(...)["analysis"]["fit"]`), or its five numbers.
        strict: raise AssertionError when wrong (for tests).
        verbose: print the message.
    Returns:
        A `CheckResult`: passed when the two laws' predictions agree at every run within
        max(FIT_TOLERANCE, 2 x the library fit's RMS relative residual).
    """
    name = "fit_power_law"
    quiet = dict(verbose=verbose, strict=strict)
    n, d, loss = (np.asarray(x, dtype=np.float64).ravel() for x in (params, tokens, losses))
    ref = _law_values(reference)
    if ref is None:
        raise ValueError("reference must be the library's ScalingLaw (or its E, A, B, alpha, beta)")
    value, failed = _call(
        name,
        fn,
        (n.copy(), d.copy(), loss.copy()),
        "fit_power_law(params, tokens, losses) returns (E, A, B, alpha, beta)",
        quiet,
    )
    if failed is not None:
        return failed
    if value is None:
        return _result(name, False, "your fit returned None.", "returns_none", "did you forget the `return`?", **quiet)
    law = _law_values(value)
    if law is None:
        return _result(
            name,
            False,
            f"your fit returned {type(value).__name__}, not the five numbers E, A, B, alpha, beta.",
            "not_five_numbers",
            "return a tuple (E, A, B, alpha, beta); scipy.optimize.curve_fit's first result `popt` is one, "
            "in the order of your model function's parameters.",
            **quiet,
        )
    if not np.all(np.isfinite(law)):
        return _result(
            name,
            False,
            "your fit contains NaN or infinity.",
            "not_finite",
            "the fit diverged: start curve_fit from p0=(1, 10, 10, 0.3, 0.3) and keep every parameter "
            "non-negative with bounds=(0, np.inf).",
            **quiet,
        )
    ours, theirs = _predict(law, n, d), _predict(ref, n, d)
    scatter = _rms_relative(theirs, loss)
    tolerance = max(FIT_TOLERANCE, 2 * scatter)
    gap = np.abs(ours - theirs) / theirs
    worst = int(np.nanargmax(gap)) if np.any(np.isfinite(gap)) else 0
    table = "\n".join(
        [
            f"  {'':9s} {'E':>8s} {'A':>10s} {'B':>10s} {'alpha':>7s} {'beta':>7s}   RMS error on the runs",
            f"  {'yours':9s} {law[0]:8.3f} {law[1]:10.4g} {law[2]:10.4g} {law[3]:7.3f} {law[4]:7.3f}   "
            f"{_rms_relative(ours, loss):.2%}",
            f"  {'library':9s} {ref[0]:8.3f} {ref[1]:10.4g} {ref[2]:10.4g} {ref[3]:7.3f} {ref[4]:7.3f}   {scatter:.2%}",
        ]
    )
    summary = (
        f"At the {len(n)} runs your law and the library's differ by at most {np.nanmax(gap):.2%} "
        f"(tolerance {tolerance:.2%}: the larger of {FIT_TOLERANCE:.0%} and twice the library fit's scatter "
        f"around the runs).\n{table}"
    )
    if np.all(gap <= tolerance):
        return _result(
            name,
            True,
            summary + "\nThe five numbers may differ more than the predictions: A and alpha (B and beta) trade off "
            "against each other on a small grid.",
            **quiet,
        )
    if np.any(law < 0):
        mistake, hint = "negative", "a negative E, A, B or exponent is no scaling law: pass bounds=(0, np.inf)."
    elif _rms_relative(ours, loss) > 2 * max(scatter, 1e-3):
        mistake, hint = (
            "bad_fit",
            "your law misses the runs themselves: check that the model function is E + A / N**alpha + B / D**beta "
            "with N = params and D = tokens (not swapped), and start from p0=(1, 10, 10, 0.3, 0.3).",
        )
    else:
        mistake, hint = (
            "other_optimum",
            "your law fits the runs but predicts differently from the library's: a different local optimum. "
            "Try other starting points (p0) and keep the one with the smallest error.",
        )
    return _result(
        name,
        False,
        summary + f"\nThe largest difference is at N = {n[worst]:,.0f}, D = {d[worst]:,.0f}.",
        mistake,
        hint,
        **quiet,
    )


# ---------------------------------------------------------------------------
# predict a bigger model's loss
# ---------------------------------------------------------------------------


def prediction_widening(residual: float, held_out_error: float | None = None) -> float:
    """How far (relative) the seeds' range is widened at each end: max(MIN_BAND, RESIDUAL_WIDTH x residual, |held-out error|)."""
    return max(MIN_BAND, RESIDUAL_WIDTH * float(residual), abs(float(held_out_error or 0.0)))


def prediction_band(
    measured: Sequence[float], residual: float, held_out_error: float | None = None
) -> tuple[float, float]:
    """The band a prediction must fall in: the seeds' range, widened at each end by `prediction_widening`."""
    m = np.asarray(measured, dtype=np.float64).ravel()
    widen = prediction_widening(residual, held_out_error)
    return float(m.min() * (1 - widen)), float(m.max() * (1 + widen))


def predict_loss(
    fn: Any,
    params: Sequence[float],
    tokens: Sequence[float],
    losses: Sequence[float],
    *,
    new_params: float,
    new_tokens: float,
    measured: Sequence[float],
    residual: float,
    held_out_error: float | None = None,
    strict: bool = False,
    verbose: bool = True,
) -> CheckResult:
    """Check a prediction `fn(params, tokens, losses, new_params, new_tokens) -> loss` against the measurement.

    Args:
        fn: the learner's function (or the predicted number itself).
        params, tokens, losses: the runs the prediction may use (the scaling study's grid).
        new_params: N of the model to predict (larger than any in the grid).
        new_tokens: its training tokens D.
        measured: its measured final validation loss, one per seed.
        residual: the RMS relative residual of a law fitted on the grid (its scatter around its own runs).
        held_out_error: the relative error of the study's held-out check (the same kind of
            extrapolation, measured on the grid), or None.
        strict: raise AssertionError when wrong (for tests).
        verbose: print the message.
    Returns:
        A `CheckResult`: passed when the prediction lies in `prediction_band(measured, residual, held_out_error)`.
    """
    name = "predict_loss"
    quiet = dict(verbose=verbose, strict=strict)
    n, d, loss = (np.asarray(x, dtype=np.float64).ravel() for x in (params, tokens, losses))
    value, failed = _call(
        name,
        fn,
        (n.copy(), d.copy(), loss.copy(), float(new_params), float(new_tokens)),
        "predict_loss(params, tokens, losses, new_params, new_tokens) returns one number, the predicted loss",
        quiet,
    )
    if failed is not None:
        return failed
    try:
        predicted = float(np.asarray(value, dtype=np.float64).reshape(()))
    except (TypeError, ValueError):
        return _result(
            name,
            False,
            f"your prediction is {type(value).__name__} {value!r}, not one number.",
            "not_a_number",
            "return the predicted loss, a single float: E + A / new_params**alpha + B / new_tokens**beta.",
            **quiet,
        )
    m = np.asarray(measured, dtype=np.float64).ravel()
    mean = float(m.mean())
    low, high = prediction_band(m, residual, held_out_error)
    widen = prediction_widening(residual, held_out_error)
    if widen == MIN_BAND:
        why = f"the {MIN_BAND:.0%} floor"
    elif held_out_error is not None and widen == abs(float(held_out_error)):
        why = f"the {widen:.1%} error of the study's own held-out check (larger than {RESIDUAL_WIDTH:g} x the law's {residual:.1%} scatter)"
    else:
        why = f"{RESIDUAL_WIDTH:g} x the law's {residual:.1%} scatter around the runs it was fitted on"
    seeds = ", ".join(f"{x:.4f}" for x in m)
    body = (
        f"You predicted {predicted:.4f} for N = {new_params:,.0f}, D = {new_tokens:,.0f}; training it measured "
        f"{mean:.4f} (seeds: {seeds}), so the prediction is {(predicted - mean) / mean:+.1%} off. It passes within "
        f"{low:.4f} to {high:.4f}: the seeds' range widened at each end by {why}."
    )
    if low <= predicted <= high:
        return _result(name, True, body, **quiet)
    if not np.isfinite(predicted):
        mistake, hint = "not_finite", "your prediction is NaN or infinite: did the fit diverge?"
    elif predicted < loss.min() * 0.5 or predicted > loss.max() * 1.5:
        mistake, hint = (
            "far_off",
            "that is far from every loss of the grid: evaluate the fitted law E + A / N**alpha + B / D**beta at "
            "N = new_params and D = new_tokens (not at the grid's largest run, and N, D not swapped).",
        )
    elif predicted > high:
        mistake, hint = (
            "too_pessimistic",
            "the bigger model did better than predicted: does your prediction use the fitted law (the size term "
            "shrinks with N), or the loss of the grid's largest model?",
        )
    else:
        mistake, hint = (
            "too_optimistic",
            "the bigger model did worse than predicted: an extrapolation in N trusts alpha, which a small grid "
            "pins down poorly. Does a fit with the irreducible loss E (not forced to 0) predict better?",
        )
    return _result(name, False, body, mistake, hint, **quiet)


# ---------------------------------------------------------------------------
# the transfer gain's slope
# ---------------------------------------------------------------------------

_SLOPE_CASES = (
    ("a gain that halves at each fourfold step", [1_000, 4_000, 16_000], [0.4, 0.2, 0.1]),
    ("a gain that grows, uneven sizes", [5_000, 20_000, 80_000, 320_000], [0.05, 0.12, 0.1, 0.2]),
)


def _slope_mistakes(sizes: np.ndarray, gains: np.ndarray) -> dict[str, tuple[float, str]]:
    return {
        "natural_log": (
            float(np.polyfit(np.log(sizes), gains, 1)[0]),
            "per TENFOLD more data: take log10 of the sizes (np.log10), not the natural log.",
        ),
        "linear_sizes": (
            float(np.polyfit(sizes, gains, 1)[0]),
            "fit the gain against log10(size): the sizes grow by factors, so the trend is per decade.",
        ),
        "intercept": (
            float(np.polyfit(np.log10(sizes), gains, 1)[1]),
            "np.polyfit(x, y, 1) returns [slope, intercept]: take element 0.",
        ),
        "swapped": (
            float(np.polyfit(gains, np.log10(sizes), 1)[0]),
            "np.polyfit(x, y, 1) fits y against x: x = log10(sizes), y = gains.",
        ),
        "end_points": (
            float((gains[-1] - gains[0]) / (np.log10(sizes[-1]) - np.log10(sizes[0]))),
            "that is the slope between the first and the last size only: fit a least-squares line through every "
            "size (np.polyfit(np.log10(sizes), gains, 1)).",
        ),
    }


def gain_slope(
    fn: Callable, sizes: Sequence[float], gains: Sequence[float], *, strict: bool = False, verbose: bool = True
) -> CheckResult:
    """Check `fn(sizes, gains)` = the least-squares slope of the gain against log10(size), nats per decade.

    Args:
        fn: the learner's function.
        sizes: (S,) target sizes of the notebook's transfer study (characters), small to large.
        gains: (S,) its mean gains (scratch minus fine-tuned best loss).
        strict: raise AssertionError when wrong (for tests).
        verbose: print the message.
    Returns:
        A `CheckResult`: passed when `fn` matches `solutions.gain_slope` on the study and on two
        hand-made tables.
    """
    name = "gain_slope"
    quiet = dict(verbose=verbose, strict=strict)
    cases = [("your transfer study", list(sizes), list(gains)), *_SLOPE_CASES]
    wrong: list[tuple[str, float, float, str | None]] = []
    for description, s, g in cases:
        s_arr, g_arr = np.asarray(s, dtype=np.float64), np.asarray(g, dtype=np.float64)
        value, failed = _call(
            name, fn, (s_arr.copy(), g_arr.copy()), "gain_slope(sizes, gains) returns one number", quiet
        )
        if failed is not None:
            return failed
        want = float(solutions.gain_slope(s_arr, g_arr))
        try:
            got = float(np.asarray(value, dtype=np.float64).reshape(()))
        except (TypeError, ValueError):
            return _result(
                name,
                False,
                f"on {description} your function returned {type(value).__name__} {value!r}, not one number.",
                "not_a_number",
                "np.polyfit(x, y, 1) returns [slope, intercept]: return element 0, a single number.",
                **quiet,
            )
        if not np.isclose(got, want, rtol=1e-4, atol=SLOPE_ATOL):
            found = next(
                (m for m, (v, _) in _slope_mistakes(s_arr, g_arr).items() if np.isclose(got, v, rtol=1e-4, atol=1e-9)),
                None,
            )
            wrong.append((description, got, want, found))
    if not wrong:
        return _result(name, True, f"It matches the reference on all {len(cases)} tables of gains.", **quiet)
    description, got, want, found = wrong[0]
    body = f"On {description} your slope is {got:+.4f}, the least-squares slope is {want:+.4f} nats per decade."
    if found is not None:
        hint = _slope_mistakes(np.asarray(cases[0][1], float), np.asarray(cases[0][2], float))[found][1]
        return _result(name, False, body, found, hint, **quiet)
    return _result(
        name,
        False,
        body,
        None,
        "fit a straight line gain = slope x log10(size) + intercept by least squares: "
        "np.polyfit(np.log10(sizes), gains, 1)[0].",
        **quiet,
    )


__all__ = ["fit_power_law", "gain_slope", "predict_loss"]

"""The machinery every exercise check shares: test cases, mistake variants, the diagnosis, the result.

An exercise is an `Exercise`: the reference solution (`attnlab.exercises.solutions`), a few
small test inputs (`Case`), deliberately wrong variants of the reference (`Mistake`), and
optional hints for exceptions, wrong shapes and wrong kinds of output. `run_check` calls a
learner's function on every case (NumPy first, or float64 torch tensors when it fails on
NumPy or visibly uses torch), compares with the reference, and when it is wrong looks for the
mistake variant whose outputs it reproduces. It never raises on a wrong answer: it returns a
`CheckResult` and prints its message (`strict=True` raises AssertionError instead).
"""

from __future__ import annotations

import warnings
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np

RTOL = 1e-4  # loose enough for a float32 implementation, far tighter than any mistake
ATOL = 1e-6


# ---------------------------------------------------------------------------
# Result
# ---------------------------------------------------------------------------


@dataclass
class CheckResult:
    """What a check found. Truthy when the function is correct.

    Attributes:
        exercise: the exercise name (e.g. "attention").
        passed: the outputs matched the reference on every test input.
        message: the paragraph shown to the learner.
        mistake: id of the recognised typical mistake (e.g. "no_scale"), or None.
        hint: the targeted hint, or None when passed.
        framework: "numpy" or "torch": what the function was called with.
    """

    exercise: str
    passed: bool
    message: str
    mistake: str | None = None
    hint: str | None = None
    framework: str = "numpy"
    _shown: bool = field(default=False, repr=False, compare=False)

    def __bool__(self) -> bool:
        return self.passed

    def __str__(self) -> str:
        return self.message

    def __repr__(self) -> str:
        return f"CheckResult(exercise={self.exercise!r}, passed={self.passed}, mistake={self.mistake!r})"

    def _ipython_display_(self) -> None:
        # a notebook cell ending in `check.x(f)` shows the message once, not twice
        if not self._shown:
            print(self.message)


# ---------------------------------------------------------------------------
# Exercise machinery
# ---------------------------------------------------------------------------


@dataclass
class Case:
    """One test input of an exercise."""

    description: str  # shown to the learner: "a 2-D input with a mask"
    args: tuple  # positional arguments (NumPy arrays, ints)
    kwargs: dict = field(default_factory=dict)


@dataclass
class Mistake:
    """A deliberately wrong variant of the reference, and the hint it earns."""

    name: str  # id reported in CheckResult.mistake
    function: Callable[..., Any]  # same signature as the reference (NumPy)
    hint: str


@dataclass
class Exercise:
    """One exercise: its reference, test inputs, typical mistakes and hints (a group module defines it)."""

    name: str
    reference: Callable[..., Any]
    cases: Callable[[], list[Case]]
    mistakes: list[Mistake]
    general_hint: str
    # (exception, case, earlier cases all ran) -> (mistake, hint) or None
    exception_hint: Callable[[BaseException, Case, bool], tuple[str, str] | None] | None = None
    # (output shape, expected shape, case) -> (mistake, hint) or None
    shape_hint: Callable[[tuple, tuple, Case], tuple[str, str] | None] | None = None
    # raw output -> (mistake, hint) or None, looked at before comparing values
    output_hint: Callable[[Any], tuple[str, str] | None] | None = None
    call: Callable[[Callable, Case, Callable[[Any], Any]], Any] | None = None
    pick_output: Callable[[Any], Any] | None = None
    exact: bool = False  # compare as booleans (masks)


class _Failure(Exception):
    """Stops a check with a finished result."""

    def __init__(self, result: CheckResult):
        self.result = result


def _uses_torch(fn: Callable) -> bool:
    code = getattr(fn, "__code__", None)
    names = set(code.co_names) if code is not None else set()
    return bool(names & {"torch", "F", "nn"})


def _to_torch(x: Any) -> Any:
    import torch

    if isinstance(x, np.ndarray):
        if x.dtype == bool:
            return torch.from_numpy(x.copy())
        if x.dtype.kind in "iu":
            return torch.from_numpy(x.astype(np.int64))
        return torch.from_numpy(x.astype(np.float64))
    return x


def to_numpy(out: Any) -> np.ndarray:
    """A learner's output (array, tensor, number, list) as a NumPy array."""
    if hasattr(out, "detach"):  # torch tensor
        out = out.detach().cpu()
        out = out.double().numpy() if out.dtype.is_floating_point else out.numpy()
    arr = np.asarray(out)
    if arr.dtype.kind not in "biuf":
        raise TypeError("the output is not a numeric array")
    if arr.dtype.kind in "iuf" and arr.dtype != bool:
        arr = arr.astype(np.float64)
    return arr


def _call(ex: Exercise, fn: Callable, case: Case, convert: Callable[[Any], Any]) -> Any:
    if ex.call is not None:
        return ex.call(fn, case, convert)
    args = tuple(convert(a) for a in case.args)
    kwargs = {k: convert(v) for k, v in case.kwargs.items()}
    return fn(*args, **kwargs)


def _variant_output(function: Callable, case: Case) -> np.ndarray:
    """A mistake variant's output on a case (overflow warnings are expected there)."""
    with np.errstate(all="ignore"), warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return to_numpy(function(*case.args, **case.kwargs))


def _close(a: np.ndarray, b: np.ndarray, *, exact: bool = False, allow_nonfinite: bool = False) -> bool:
    """Same shape and values; masks compare as booleans.

    With `allow_nonfinite` (matching a mistake variant), NaN/inf entries match when the
    other output is also NaN or inf there: an overflow can give either.
    """
    if a.shape != b.shape:
        return False
    if exact:
        return bool(np.array_equal(a.astype(bool), b.astype(bool)))
    if allow_nonfinite:
        finite = np.isfinite(b)
        if not np.array_equal(finite, np.isfinite(a)):
            return False
        return bool(np.allclose(a[finite], b[finite], rtol=RTOL, atol=ATOL))
    return bool(np.allclose(a, b, rtol=RTOL, atol=ATOL, equal_nan=False))


def _copy(x: Any) -> Any:
    return x.copy() if isinstance(x, np.ndarray) else x


def _run_case(ex: Exercise, fn: Callable, case: Case, framework: str) -> Any:
    # fresh copies: a function that changes its inputs in place must not change the test data
    convert = _to_torch if framework == "torch" else _copy
    with np.errstate(all="ignore"), warnings.catch_warnings():
        warnings.simplefilter("ignore")  # overflow warnings are part of what the check diagnoses
        out = _call(ex, fn, case, convert)
    if ex.pick_output is not None:
        out = ex.pick_output(out)
    return out


def _framework_name(framework: str) -> str:
    return "PyTorch" if framework == "torch" else "NumPy"


def _result(
    ex: Exercise, passed: bool, body: str, framework: str, mistake: str | None = None, hint: str | None = None
) -> CheckResult:
    body = body[:1].upper() + body[1:]
    if passed:
        message = f"✅ {ex.name}: correct! {body}"
    else:
        message = f"❌ {ex.name}: not yet. {body}"
        if hint:
            message += f"\nHint: {hint}"
    return CheckResult(ex.name, passed, message, mistake, hint, framework)


_NOT_RUN = object()


def _choose_framework(ex: Exercise, fn: Callable, first: Case, framework: str) -> tuple[str, Any]:
    """The framework to call `fn` with, and its output on `first` when that already ran."""
    if framework in ("numpy", "torch"):
        return framework, _NOT_RUN
    order = ["torch", "numpy"] if _uses_torch(fn) else ["numpy", "torch"]
    try:
        return order[0], _run_case(ex, fn, first, order[0])
    except Exception:
        pass
    try:
        import torch  # noqa: F401
    except ImportError:
        return "numpy", _NOT_RUN
    try:
        return order[1], _run_case(ex, fn, first, order[1])
    except Exception:
        return order[0], _NOT_RUN  # report the error of the framework the function looks written for


def run_check(
    ex: Exercise, fn: Any, *, strict: bool = False, verbose: bool = True, framework: str = "auto"
) -> CheckResult:
    """Check a learner's function `fn` against exercise `ex` (what every `check.<name>` calls).

    Args:
        ex: the exercise.
        fn: the learner's function (NumPy or PyTorch).
        strict: raise AssertionError when wrong (for tests).
        verbose: print the message.
        framework: "auto", "numpy" or "torch": what to call `fn` with.
    Returns:
        A `CheckResult` (truthy when correct).
    Raises:
        ValueError: an unknown `framework`.
    """
    if framework not in ("auto", "numpy", "torch"):
        raise ValueError(f"framework must be auto, numpy or torch, got {framework!r}")
    try:
        result = _diagnose(ex, fn, framework)
    except _Failure as f:
        result = f.result
    if verbose:
        print(result.message)
        result._shown = True
    if strict and not result.passed:
        raise AssertionError(result.message)
    return result


def _diagnose(ex: Exercise, fn: Any, framework: str) -> CheckResult:
    if not callable(fn):
        raise _Failure(
            _result(
                ex,
                False,
                f"check.{ex.name} needs your function itself, not {type(fn).__name__}.",
                "numpy",
                "not_callable",
                f"write check.{ex.name}(my_function), without calling it: no parentheses after its name.",
            )
        )
    cases = ex.cases()
    framework, first_output = _choose_framework(ex, fn, cases[0], framework)
    outputs: list[np.ndarray] = []
    expected: list[np.ndarray] = []
    for index, case in enumerate(cases):
        ref = np.asarray(ex.reference(*case.args, **case.kwargs))
        try:
            raw = first_output if index == 0 and first_output is not _NOT_RUN else _run_case(ex, fn, case, framework)
        except NotImplementedError:
            raise _Failure(
                _result(
                    ex,
                    False,
                    "your function raises NotImplementedError.",
                    framework,
                    "not_implemented",
                    "replace the `raise NotImplementedError` placeholder with your code.",
                )
            ) from None
        except Exception as e:  # the learner's bug: report it, never raise
            found = ex.exception_hint(e, case, index > 0) if ex.exception_hint else None
            mistake, hint = found if found else ("error", ex.general_hint)
            raise _Failure(
                _result(
                    ex,
                    False,
                    f"on {case.description}, your function raised {type(e).__name__}: {_short(e)}",
                    framework,
                    mistake,
                    hint,
                )
            ) from None
        if raw is None:
            raise _Failure(
                _result(
                    ex,
                    False,
                    f"your function returned None on {case.description}.",
                    framework,
                    "returns_none",
                    "did you forget the `return` statement at the end?",
                )
            )
        if ex.output_hint is not None:
            found = ex.output_hint(raw)
            if found:
                raise _Failure(
                    _result(
                        ex, False, f"on {case.description} the output has the wrong kind of values.", framework, *found
                    )
                )
        try:
            out = to_numpy(raw)
        except Exception:
            raise _Failure(
                _result(
                    ex,
                    False,
                    f"on {case.description} your function returned {type(raw).__name__}, not an array or number.",
                    framework,
                    "not_array",
                    ex.general_hint,
                )
            ) from None
        if out.size == 1 and ref.size == 1:  # a number: 0-d, (1,) and Python floats all count
            out, ref = out.reshape(()), ref.reshape(())
        if out.shape != ref.shape:
            found = ex.shape_hint(out.shape, ref.shape, case) if ex.shape_hint else None
            mistake, hint = found if found else ("wrong_shape", ex.general_hint)
            raise _Failure(
                _result(
                    ex,
                    False,
                    f"on {case.description} your output has shape {out.shape}, expected {ref.shape}.",
                    framework,
                    mistake,
                    hint,
                )
            )
        outputs.append(out)
        expected.append(ref)
    good = [_close(o, r, exact=ex.exact) for o, r in zip(outputs, expected)]
    if all(good):
        return _result(
            ex,
            True,
            f"It matches the reference on all {len(cases)} test inputs ({_framework_name(framework)}).",
            framework,
        )
    # a typical mistake? the learner's outputs equal a wrong variant's on every input
    for mistake in ex.mistakes:
        try:
            variants = [_variant_output(mistake.function, case) for case in cases]
        except Exception:  # a variant that cannot run on some input (e.g. a shape error) cannot match
            continue
        if all(
            _close(o, v.reshape(o.shape) if v.size == o.size == 1 else v, exact=ex.exact, allow_nonfinite=True)
            for o, v in zip(outputs, variants)
        ):
            wrong = [c.description for c, g in zip(cases, good) if not g]
            return _result(ex, False, f"Wrong on {_join(wrong)}.", framework, mistake.name, mistake.hint)
    first = good.index(False)
    diff = outputs[first].astype(np.float64) - expected[first].astype(np.float64)
    finite = np.isfinite(diff)
    if not np.isfinite(outputs[first]).all():
        detail = "your output contains NaN or infinity"
    else:
        detail = f"largest difference {np.abs(diff[finite]).max():.3g}"
    right = [c.description for c, g in zip(cases, good) if g]
    wrong = [c.description for c, g in zip(cases, good) if not g]
    body = f"Wrong on {_join(wrong)} ({detail} on the first)."
    if right:
        body += f" Right on {_join(right)}: compare what differs between those inputs."
    return _result(ex, False, body, framework, None, ex.general_hint)


def _join(items: Sequence[str]) -> str:
    items = list(items)
    if len(items) <= 1:
        return "".join(items)
    separator = "; " if any("," in i for i in items) else ", "  # descriptions may hold commas themselves
    return separator.join(items[:-1]) + " and " + items[-1]


def _short(e: BaseException) -> str:
    text = " ".join(str(e).split())
    return text if len(text) <= 160 else text[:157] + "..."


def rng(seed: int = 0) -> np.random.Generator:
    """The generator of an exercise's test inputs (a fixed seed per exercise: the same inputs every run)."""
    return np.random.default_rng(seed)


def stable_softmax(x: np.ndarray, axis: int = -1) -> np.ndarray:
    """Softmax over `axis` in float64, max subtracted (for the mistake variants, which need other axes)."""
    x = np.asarray(x, dtype=np.float64)
    e = np.exp(x - np.max(x, axis=axis, keepdims=True))
    return e / e.sum(axis=axis, keepdims=True)


def message_has(e: BaseException, *words: str) -> bool:
    """True when the exception's message contains one of `words` (lower case): NumPy's and PyTorch's wording."""
    text = str(e).lower()
    return any(w in text for w in words)

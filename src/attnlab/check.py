"""Exercise checks: test a learner's function against the reference and give a targeted hint.

In a lab notebook the learner writes a function, then runs its check:

    def attention(q, k, v, mask=None):
        ...
    from attnlab import check
    check.attention(attention)

The check calls the function on a few small inputs (a hand-sized one, a batched one,
an edge case such as huge scores or a constant row), compares each output with the
reference solution (`attnlab.solutions`), and prints one friendly paragraph: correct,
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
multi_head_split, multi_head_merge, positional_encoding, cross_entropy, mean_pooling.
"""

from __future__ import annotations

import math
import warnings
from dataclasses import dataclass, field
from typing import Any, Callable, Sequence

import numpy as np

from attnlab import solutions

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
class _Exercise:
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


def _to_numpy(out: Any) -> np.ndarray:
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


def _call(ex: _Exercise, fn: Callable, case: Case, convert: Callable[[Any], Any]) -> Any:
    if ex.call is not None:
        return ex.call(fn, case, convert)
    args = tuple(convert(a) for a in case.args)
    kwargs = {k: convert(v) for k, v in case.kwargs.items()}
    return fn(*args, **kwargs)


def _variant_output(function: Callable, case: Case) -> np.ndarray:
    """A mistake variant's output on a case (overflow warnings are expected there)."""
    with np.errstate(all="ignore"), warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return _to_numpy(function(*case.args, **case.kwargs))


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


def _run_case(ex: _Exercise, fn: Callable, case: Case, framework: str) -> Any:
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


def _result(ex: _Exercise, passed: bool, body: str, framework: str, mistake: str | None = None, hint: str | None = None) -> CheckResult:
    body = body[:1].upper() + body[1:]
    if passed:
        message = f"✅ {ex.name}: correct! {body}"
    else:
        message = f"❌ {ex.name}: not yet. {body}"
        if hint:
            message += f"\nHint: {hint}"
    return CheckResult(ex.name, passed, message, mistake, hint, framework)


_NOT_RUN = object()


def _choose_framework(ex: _Exercise, fn: Callable, first: Case, framework: str) -> tuple[str, Any]:
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


def _check(ex: _Exercise, fn: Any, *, strict: bool = False, verbose: bool = True, framework: str = "auto") -> CheckResult:
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


def _diagnose(ex: _Exercise, fn: Any, framework: str) -> CheckResult:
    if not callable(fn):
        raise _Failure(_result(ex, False, f"check.{ex.name} needs your function itself, not {type(fn).__name__}.", "numpy",
                               "not_callable", f"write check.{ex.name}(my_function), without calling it: no parentheses after its name."))
    cases = ex.cases()
    framework, first_output = _choose_framework(ex, fn, cases[0], framework)
    outputs: list[np.ndarray] = []
    expected: list[np.ndarray] = []
    for index, case in enumerate(cases):
        ref = np.asarray(ex.reference(*case.args, **case.kwargs))
        try:
            raw = first_output if index == 0 and first_output is not _NOT_RUN else _run_case(ex, fn, case, framework)
        except NotImplementedError:
            raise _Failure(_result(ex, False, "your function raises NotImplementedError.", framework, "not_implemented",
                                   "replace the `raise NotImplementedError` placeholder with your code.")) from None
        except Exception as e:  # the learner's bug: report it, never raise
            found = ex.exception_hint(e, case, index > 0) if ex.exception_hint else None
            mistake, hint = found if found else ("error", ex.general_hint)
            raise _Failure(_result(ex, False, f"on {case.description}, your function raised {type(e).__name__}: {_short(e)}",
                                   framework, mistake, hint)) from None
        if raw is None:
            raise _Failure(_result(ex, False, f"your function returned None on {case.description}.", framework, "returns_none",
                                   "did you forget the `return` statement at the end?"))
        if ex.output_hint is not None:
            found = ex.output_hint(raw)
            if found:
                raise _Failure(_result(ex, False, f"on {case.description} the output has the wrong kind of values.", framework, *found))
        try:
            out = _to_numpy(raw)
        except Exception:
            raise _Failure(_result(ex, False, f"on {case.description} your function returned {type(raw).__name__}, not an array or number.",
                                   framework, "not_array", ex.general_hint)) from None
        if out.size == 1 and ref.size == 1:  # a number: 0-d, (1,) and Python floats all count
            out, ref = out.reshape(()), ref.reshape(())
        if out.shape != ref.shape:
            found = ex.shape_hint(out.shape, ref.shape, case) if ex.shape_hint else None
            mistake, hint = found if found else ("wrong_shape", ex.general_hint)
            raise _Failure(_result(ex, False, f"on {case.description} your output has shape {out.shape}, expected {ref.shape}.",
                                   framework, mistake, hint))
        outputs.append(out)
        expected.append(ref)
    good = [_close(o, r, exact=ex.exact) for o, r in zip(outputs, expected)]
    if all(good):
        return _result(ex, True, f"It matches the reference on all {len(cases)} test inputs ({_framework_name(framework)}).", framework)
    # a typical mistake? the learner's outputs equal a wrong variant's on every input
    for mistake in ex.mistakes:
        try:
            variants = [_variant_output(mistake.function, case) for case in cases]
        except Exception:  # a variant that cannot run on some input (e.g. a shape error) cannot match
            continue
        if all(_close(o, v.reshape(o.shape) if v.size == o.size == 1 else v, exact=ex.exact, allow_nonfinite=True)
               for o, v in zip(outputs, variants)):
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


def _rng(seed: int = 0) -> np.random.Generator:
    return np.random.default_rng(seed)


def _softmax(x: np.ndarray, axis: int = -1) -> np.ndarray:
    x = np.asarray(x, dtype=np.float64)
    e = np.exp(x - np.max(x, axis=axis, keepdims=True))
    return e / e.sum(axis=axis, keepdims=True)


def _message_has(e: BaseException, *words: str) -> bool:
    text = str(e).lower()
    return any(w in text for w in words)


# ---------------------------------------------------------------------------
# 1. softmax
# ---------------------------------------------------------------------------


def _softmax_cases() -> list[Case]:
    r = _rng(1)
    return [
        Case("three numbers [1, 2, 3]", (np.array([1.0, 2.0, 3.0]),)),
        Case("a (3, 5) batch of rows", (r.normal(size=(3, 5)) * 2,)),
        Case("a square (4, 4) batch", (r.normal(size=(4, 4)) * 2,)),
        Case("huge scores [[1000, 1001, 1002], [-1000, -999, -998]]", (np.array([[1000.0, 1001, 1002], [-1000, -999, -998]]),)),
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
    if _message_has(e, "broadcast", "must match the size", "size of tensor a"):
        return ("no_keepdims", "the row sums (and maxima) must keep their axis to broadcast back: use "
                "x.sum(axis=-1, keepdims=True) in NumPy, x.sum(dim=-1, keepdim=True) in PyTorch.")
    return None


SOFTMAX = _Exercise(
    name="softmax",
    reference=solutions.softmax,
    cases=_softmax_cases,
    mistakes=[
        Mistake("no_max_subtraction", _softmax_naive,
                "exp overflows for large scores (exp(1000) = inf, and inf/inf = NaN). Subtract each row's maximum "
                "before exponentiating: softmax(x) = softmax(x - max(x)), so the result is unchanged."),
        Mistake("wrong_axis", lambda x: _softmax(x, axis=0),
                "you normalised over the wrong axis: softmax runs over the last axis (axis=-1 / dim=-1), "
                "so that every row sums to 1."),
        Mistake("whole_array", lambda x: np.exp(x - x.max()) / np.exp(x - x.max()).sum(),
                "you divided by the sum over the whole array; divide each row by its own sum "
                "(sum over axis=-1 with keepdims=True)."),
        Mistake("no_keepdims", _softmax_no_keepdims,
                "e / e.sum(axis=-1) divides column j by the sum of row j on a square matrix; keep the summed "
                "axis (keepdims=True / keepdim=True) so each row is divided by its own sum."),
        Mistake("no_exp", lambda x: x / x.sum(axis=-1, keepdims=True),
                "softmax exponentiates first: exp(x) / sum(exp(x)). Dividing the raw scores by their sum is not a "
                "probability (negative scores give negative 'probabilities')."),
        Mistake("no_normalisation", lambda x: np.exp(x - x.max(axis=-1, keepdims=True)),
                "after exponentiating, divide by the sum over the last axis so that each row sums to 1."),
        Mistake("no_normalisation_raw", np.exp,
                "after exponentiating, divide by the sum over the last axis so that each row sums to 1."),
        Mistake("log_softmax", lambda x: np.log(_softmax(x)),
                "you returned log-probabilities (log_softmax); softmax returns the probabilities themselves."),
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
    return _check(SOFTMAX, fn, strict=strict, verbose=verbose, framework=framework)


# ---------------------------------------------------------------------------
# 2. cosine similarity
# ---------------------------------------------------------------------------


def _cosine_cases() -> list[Case]:
    r = _rng(2)
    return [
        Case("a = [1, 0], b = [0, 1]", (np.array([1.0, 0.0]), np.array([0.0, 1.0]))),
        Case("a = [1, 2, 3], b = [2, 4, 6]", (np.array([1.0, 2.0, 3.0]), np.array([2.0, 4.0, 6.0]))),
        Case("two random 8-d vectors", (r.normal(size=8), r.normal(size=8) * 3)),
        Case("opposite vectors [1, 1] and [-2, -2]", (np.array([1.0, 1.0]), np.array([-2.0, -2.0]))),
        Case("two long random 16-d vectors", (r.normal(size=16) * 10 + 1, r.normal(size=16) * 0.5 + 0.3)),
    ]


def _norm(x):
    return np.linalg.norm(x)


COSINE = _Exercise(
    name="cosine_similarity",
    reference=solutions.cosine_similarity,
    cases=_cosine_cases,
    mistakes=[
        Mistake("dot_only", lambda a, b: a @ b,
                "that is the plain dot product, which grows with the vectors' lengths; divide by |a| |b|."),
        Mistake("one_norm", lambda a, b: a @ b / _norm(a),
                "divide by the product of BOTH lengths, |a| * |b|."),
        Mistake("one_norm_b", lambda a, b: a @ b / _norm(b),
                "divide by the product of BOTH lengths, |a| * |b|."),
        Mistake("squared_norms", lambda a, b: a @ b / (a @ a * (b @ b)),
                "the lengths are square roots: |a| = sqrt(a . a). You divided by the squared lengths."),
        Mistake("sum_of_norms", lambda a, b: a @ b / (_norm(a) + _norm(b)),
                "divide by the product |a| * |b|, not the sum."),
        Mistake("euclidean_distance", lambda a, b: _norm(a - b),
                "that is the Euclidean distance |a - b|; cosine similarity compares directions: a . b / (|a| |b|)."),
        Mistake("cosine_distance", lambda a, b: 1 - a @ b / (_norm(a) * _norm(b)),
                "that is the cosine distance 1 - cos; return the similarity a . b / (|a| |b|) itself."),
        Mistake("absolute_value", lambda a, b: abs(a @ b) / (_norm(a) * _norm(b)),
                "keep the sign: opposite vectors have similarity -1, not 1."),
    ],
    general_hint="cosine_similarity(a, b) = a . b / (|a| |b|) with |a| = sqrt(a . a).",
)


def cosine_similarity(fn: Callable, *, strict: bool = False, verbose: bool = True, framework: str = "auto") -> CheckResult:
    """Check `fn(a, b)` = cosine similarity of two vectors (a number). Args and return as `softmax`."""
    return _check(COSINE, fn, strict=strict, verbose=verbose, framework=framework)


# ---------------------------------------------------------------------------
# 3. causal mask
# ---------------------------------------------------------------------------


def _mask_cases() -> list[Case]:
    return [Case(f"size {n}", (n,)) for n in (1, 3, 6)]


def _mask_output_hint(out: Any) -> tuple[str, str] | None:
    try:
        arr = _to_numpy(out)
    except Exception:
        return None
    if arr.dtype != bool and np.isinf(arr).any():
        return ("additive_mask", "attnlab masks are boolean with True = may attend; you returned an additive mask "
                "(0 and -inf). Return the booleans, e.g. np.tril(np.ones((T, T), dtype=bool)).")
    if arr.dtype != bool and not np.isin(arr, (0, 1)).all():
        return ("not_boolean", "return a boolean (True/False) mask: True where the query may attend.")
    return None


CAUSAL_MASK = _Exercise(
    name="causal_mask",
    reference=solutions.causal_mask,
    cases=_mask_cases,
    mistakes=[
        Mistake("inverted", lambda n: ~np.tril(np.ones((n, n), dtype=bool)),
                "the polarity is reversed: in attnlab True means MAY attend. Query i may see keys 0..i, "
                "so True belongs on and below the diagonal (np.tril / torch.tril)."),
        Mistake("excludes_diagonal", lambda n: np.tril(np.ones((n, n), dtype=bool), k=-1),
                "a token may attend to itself: keep the diagonal (np.tril(..., k=0), not k=-1)."),
        Mistake("upper_triangle", lambda n: np.triu(np.ones((n, n), dtype=bool)),
                "rows are queries and columns keys: query i sees keys j <= i, the LOWER triangle (np.tril), "
                "not the upper one."),
        Mistake("all_true", lambda n: np.ones((n, n), dtype=bool),
                "nothing is blocked: a causal mask hides the future, so entries above the diagonal must be False."),
    ],
    general_hint="causal_mask(T)[i, j] is True when j <= i: np.tril(np.ones((T, T), dtype=bool)).",
    output_hint=_mask_output_hint,
    exact=True,
)


def causal_mask(fn: Callable, *, strict: bool = False, verbose: bool = True, framework: str = "auto") -> CheckResult:
    """Check `fn(T)` = the (T, T) boolean causal mask, True = may attend. Args and return as `softmax`."""
    return _check(CAUSAL_MASK, fn, strict=strict, verbose=verbose, framework=framework)


# ---------------------------------------------------------------------------
# 4. scaled dot-product attention
# ---------------------------------------------------------------------------


def _attention_cases() -> list[Case]:
    r = _rng(4)
    q, k, v = r.normal(size=(3, 4)), r.normal(size=(5, 4)), r.normal(size=(5, 6))
    # every row keeps at least one visible and one blocked key, either way round
    mask = np.array([[1, 0, 1, 0, 0], [0, 1, 1, 0, 1], [1, 1, 0, 1, 0]], dtype=bool)
    qb, kb, vb = r.normal(size=(2, 2, 4, 4)), r.normal(size=(2, 2, 4, 4)), r.normal(size=(2, 2, 4, 4))
    causal = np.tril(np.ones((4, 4), dtype=bool))
    causal_alt = causal.copy()
    causal_alt[0, 1] = True  # first row must keep a blocked key and a visible one in both polarities
    return [
        Case("2-D inputs without a mask (q 3x4, k 5x4, v 5x6)", (q * 2, k * 2, v)),
        Case("2-D inputs with a mask", (q * 2, k * 2, v, mask)),
        Case("a batch of shape (2, 2, 4, 4) with a causal-style mask", (qb * 2, kb * 2, vb, causal_alt)),
    ]


def _attn(q, k, v, mask=None, *, scale=None, axis=-1, mask_mode="before", transpose=True):
    d = q.shape[-1]
    kt = np.swapaxes(k, -1, -2) if transpose else k
    s = q @ kt
    s = s / (math.sqrt(d) if scale is None else scale(q, k, v))
    if mask is not None and mask_mode == "before":
        s = np.where(mask, s, -np.inf)
    elif mask is not None and mask_mode == "inverted":
        s = np.where(mask, -np.inf, s)
    elif mask is not None and mask_mode == "multiplied":
        s = s * mask
    w = _softmax(s, axis=axis)
    if mask is not None and mask_mode == "after":
        w = w * mask
    return w @ v


def _attention_exception(e: BaseException, case: Case, earlier_ok: bool) -> tuple[str, str] | None:
    if _message_has(e, "matmul", "mismatch in its core dimension", "cannot be multiplied", "size of tensor a",
                    "shapes", "dimension"):
        if earlier_ok and "batch" in case.description:
            return ("batch_transpose", "k.T reverses EVERY axis of a batched array; transpose only the last two: "
                    "np.swapaxes(k, -1, -2) in NumPy or k.transpose(-2, -1) in PyTorch.")
        return ("missing_transpose", "the scores are q @ k^T: (T, D) @ (D, S) -> (T, S). Transpose the last two axes of k "
                "(np.swapaxes(k, -1, -2) / k.transpose(-2, -1)).")
    if _message_has(e, "broadcast") and "mask" in case.description:
        return ("mask_shape", "apply the mask to the (..., T, S) scores, e.g. np.where(mask, scores, -np.inf) or "
                "scores.masked_fill(~mask, float('-inf')).")
    return None


def _attention_shape(got: tuple, want: tuple, case: Case) -> tuple[str, str] | None:
    q, k, v = case.args[:3]
    if got == want[:-1] + (k.shape[-2],):
        return ("returns_weights", "you returned the attention weights (T, S); the output is weights @ v, of shape (T, Dv).")
    return None


ATTENTION = _Exercise(
    name="attention",
    reference=solutions.attention,
    cases=_attention_cases,
    mistakes=[
        Mistake("no_scale", lambda q, k, v, mask=None: _attn(q, k, v, mask, scale=lambda *a: 1.0),
                "the scores must be divided by sqrt(d), d = q.shape[-1]: without it their variance grows with d and "
                "the softmax saturates."),
        Mistake("scale_by_d", lambda q, k, v, mask=None: _attn(q, k, v, mask, scale=lambda q, k, v: q.shape[-1]),
                "divide by the SQUARE ROOT of d (np.sqrt(d) / math.sqrt(d)), not by d itself."),
        Mistake("scale_by_value_dim", lambda q, k, v, mask=None: _attn(q, k, v, mask, scale=lambda q, k, v: math.sqrt(v.shape[-1])),
                "scale by sqrt of the query/key size d = q.shape[-1], not of the value size v.shape[-1]."),
        Mistake("softmax_wrong_axis", lambda q, k, v, mask=None: _attn(q, k, v, mask, axis=-2),
                "the softmax runs over the keys, the LAST axis of the (T, S) scores (axis=-1 / dim=-1): each query's "
                "weights sum to 1."),
        Mistake("mask_after_softmax", lambda q, k, v, mask=None: _attn(q, k, v, mask, mask_mode="after"),
                "apply the mask BEFORE the softmax (blocked scores -> -inf): zeroing weights after the softmax leaves "
                "rows that no longer sum to 1."),
        Mistake("mask_inverted", lambda q, k, v, mask=None: _attn(q, k, v, mask, mask_mode="inverted"),
                "the mask's polarity is reversed: True means MAY attend, so block where the mask is False: "
                "np.where(mask, scores, -np.inf) / scores.masked_fill(~mask, float('-inf'))."),
        Mistake("mask_multiplied", lambda q, k, v, mask=None: _attn(q, k, v, mask, mask_mode="multiplied"),
                "multiplying the scores by the mask sets blocked scores to 0, and exp(0) = 1 still gives them weight; "
                "set them to -inf before the softmax."),
        Mistake("missing_transpose", lambda q, k, v, mask=None: _attn(q, k, v, mask, transpose=False),
                "the scores are q @ k^T: transpose the last two axes of k (np.swapaxes(k, -1, -2) / k.transpose(-2, -1))."),
    ],
    general_hint="step by step: scores = q @ k^T / sqrt(d); blocked scores -> -inf; weights = softmax over the "
    "last axis; output = weights @ v.",
    exception_hint=_attention_exception,
    shape_hint=_attention_shape,
    call=lambda fn, case, convert: fn(*(convert(a) for a in case.args)),
    pick_output=lambda out: out[0] if isinstance(out, (tuple, list)) and len(out) == 2 else out,
)


def attention(fn: Callable, *, strict: bool = False, verbose: bool = True, framework: str = "auto") -> CheckResult:
    """Check `fn(q, k, v, mask=None)` = softmax(q k^T / sqrt(d)) v with a boolean mask (True = may attend).

    Inputs are 2-D (T, D) and batched (B, H, T, D); the function may return the output or
    (output, weights). Args and return as `softmax`.
    """
    return _check(ATTENTION, fn, strict=strict, verbose=verbose, framework=framework)


# ---------------------------------------------------------------------------
# 5. layer norm
# ---------------------------------------------------------------------------


def _ln_cases() -> list[Case]:
    r = _rng(5)
    ones, zeros = np.ones(6), np.zeros(6)
    constant = r.normal(size=(2, 4))
    constant[1] = 3.0  # a row with zero variance: only eps keeps it finite
    return [
        Case("a (2, 6) input with gamma = 1, beta = 0", (r.normal(size=(2, 6)) * 3 + 1, ones, zeros)),
        Case("a (2, 3, 8) batch with random gamma and beta", (r.normal(size=(2, 3, 8)) * 2 - 1, r.normal(size=8), r.normal(size=8))),
        Case("rows with a tiny variance (eps matters)", (1 + 1e-3 * r.normal(size=(3, 8)), r.normal(size=8), r.normal(size=8))),
        Case("a constant row", (constant, np.ones(4) * 2, np.ones(4) * 0.5)),
    ]


def _ln(x, g, b, eps=1e-5, *, axis=-1, ddof=0, eps_outside=False, use_eps=True, sqrt=True, center=True, affine=True, swap=False):
    mean = x.mean(axis=axis, keepdims=True) if center else 0.0
    var = x.var(axis=axis, keepdims=True, ddof=ddof) if center else (x**2).mean(axis=axis, keepdims=True)
    e = eps if use_eps else 0.0
    if eps_outside:
        denom = np.sqrt(var) + e
    else:
        denom = np.sqrt(var + e) if sqrt else var + e
    y = (x - mean) / denom
    if not affine:
        return y
    return y * b + g if swap else y * g + b


def _ln_call(fn: Callable, case: Case, convert: Callable[[Any], Any]) -> Any:
    x, g, b = (convert(a) for a in case.args)
    try:
        return fn(x, g, b, eps=1e-5)
    except TypeError as e:
        if "eps" not in str(e) and "argument" not in str(e):
            raise
        return fn(x, g, b)  # a function without an eps parameter (its own default is then used)


LAYER_NORM = _Exercise(
    name="layer_norm",
    reference=solutions.layer_norm,
    cases=_ln_cases,
    mistakes=[
        Mistake("unbiased_variance", lambda x, g, b, eps=1e-5: _ln(x, g, b, eps, ddof=1),
                "LayerNorm uses the biased variance (divide by C): np.var(x, axis=-1) or torch.var(x, dim=-1, "
                "unbiased=False) / x.var(-1, correction=0). torch.var is unbiased by default."),
        Mistake("wrong_axis", lambda x, g, b, eps=1e-5: _ln(x, g, b, eps, axis=0),
                "normalise each vector over its features, the LAST axis (axis=-1, keepdims=True); over axis 0 you "
                "normalise across the batch (that is batch norm)."),
        Mistake("eps_outside_sqrt", lambda x, g, b, eps=1e-5: _ln(x, g, b, eps, eps_outside=True),
                "eps goes inside the square root: (x - mean) / sqrt(var + eps)."),
        Mistake("no_eps", lambda x, g, b, eps=1e-5: _ln(x, g, b, eps, use_eps=False),
                "add eps to the variance, (x - mean) / sqrt(var + eps): a constant row has variance 0 and "
                "divides by zero without it."),
        Mistake("no_sqrt", lambda x, g, b, eps=1e-5: _ln(x, g, b, eps, sqrt=False),
                "divide by the standard deviation sqrt(var + eps), not by the variance."),
        Mistake("no_affine", lambda x, g, b, eps=1e-5: _ln(x, g, b, eps, affine=False),
                "after normalising, scale and shift: y = x_hat * gamma + beta."),
        Mistake("gamma_beta_swapped", lambda x, g, b, eps=1e-5: _ln(x, g, b, eps, swap=True),
                "gamma scales and beta shifts: y = x_hat * gamma + beta (you swapped them)."),
        Mistake("rms_norm", lambda x, g, b, eps=1e-5: _ln(x, g, b, eps, center=False),
                "you did not subtract the mean: that is RMSNorm. LayerNorm centres first: (x - mean) / sqrt(var + eps)."),
    ],
    general_hint="over the last axis: mean, biased variance, x_hat = (x - mean) / sqrt(var + eps), then x_hat * gamma + beta.",
    call=_ln_call,
)


def layer_norm(fn: Callable, *, strict: bool = False, verbose: bool = True, framework: str = "auto") -> CheckResult:
    """Check `fn(x, gamma, beta, eps=1e-5)` = layer normalisation over the last axis. Args and return as `softmax`."""
    return _check(LAYER_NORM, fn, strict=strict, verbose=verbose, framework=framework)


# ---------------------------------------------------------------------------
# 6. multi-head split and merge
# ---------------------------------------------------------------------------


def _split_cases() -> list[Case]:
    r = _rng(6)
    return [
        Case("x of shape (2, 3, 8) into 2 heads", (r.normal(size=(2, 3, 8)), 2)),
        Case("x of shape (1, 5, 12) into 3 heads", (r.normal(size=(1, 5, 12)), 3)),
        Case("x of shape (2, 3, 8) into 4 heads", (r.normal(size=(2, 3, 8)), 4)),
    ]


def _split_shape(got: tuple, want: tuple, case: Case) -> tuple[str, str] | None:
    B, H, T, D = want
    if got == (B, T, H, D):
        return ("no_transpose", "you have (B, T, H, D); swap the T and H axes to get (B, H, T, D): "
                ".transpose(0, 2, 1, 3) in NumPy, .transpose(1, 2) in PyTorch.")
    if got == (B, T, H * D):
        return ("not_split", f"split the last axis into {H} heads: reshape to (B, T, H, D), then swap T and H.")
    return None


MULTI_HEAD_SPLIT = _Exercise(
    name="multi_head_split",
    reference=solutions.multi_head_split,
    cases=_split_cases,
    mistakes=[
        Mistake("reshape_without_transpose",
                lambda x, h: x.reshape(x.shape[0], h, x.shape[1], x.shape[2] // h),
                "reshaping straight to (B, H, T, D) mixes different tokens into one head. Reshape to (B, T, H, D) "
                "first, then swap axes 1 and 2 (.transpose(0, 2, 1, 3) / .transpose(1, 2))."),
        Mistake("interleaved_channels",
                lambda x, h: x.reshape(x.shape[0], x.shape[1], x.shape[2] // h, h).transpose(0, 3, 1, 2),
                "each head takes a contiguous block of D channels (head h gets channels h*D ... (h+1)*D - 1): "
                "reshape to (B, T, H, D), not (B, T, D, H)."),
    ],
    general_hint="x.reshape(B, T, H, D).transpose(0, 2, 1, 3) (PyTorch: x.view(B, T, H, D).transpose(1, 2)).",
    shape_hint=_split_shape,
)


def multi_head_split(fn: Callable, *, strict: bool = False, verbose: bool = True, framework: str = "auto") -> CheckResult:
    """Check `fn(x, num_heads)`: (B, T, C) -> (B, H, T, D). Args and return as `softmax`."""
    return _check(MULTI_HEAD_SPLIT, fn, strict=strict, verbose=verbose, framework=framework)


def _merge_cases() -> list[Case]:
    r = _rng(7)
    return [
        Case("x of shape (2, 2, 3, 4)", (r.normal(size=(2, 2, 3, 4)),)),
        Case("x of shape (1, 3, 5, 2)", (r.normal(size=(1, 3, 5, 2)),)),
    ]


def _merge_shape(got: tuple, want: tuple, case: Case) -> tuple[str, str] | None:
    B, T, C = want
    H = case.args[0].shape[1]
    if got == (B, T, H, C // H):
        return ("not_merged", "merge the last two axes: after swapping to (B, T, H, D), reshape to (B, T, H * D).")
    if got == (B, H * T, C // H):
        return ("merged_wrong_axes", "merge heads and channels, not heads and time: swap to (B, T, H, D) first, "
                "then reshape to (B, T, H * D).")
    return None


MULTI_HEAD_MERGE = _Exercise(
    name="multi_head_merge",
    reference=solutions.multi_head_merge,
    cases=_merge_cases,
    mistakes=[
        Mistake("reshape_without_transpose", lambda x: x.reshape(x.shape[0], x.shape[2], x.shape[1] * x.shape[3]),
                "swap H and T back first (.transpose(0, 2, 1, 3) / .transpose(1, 2)), then reshape to (B, T, C); "
                "reshaping directly mixes tokens. In PyTorch use .reshape (or .contiguous().view) after the transpose."),
        Mistake("interleaved_channels",
                lambda x: x.transpose(0, 2, 3, 1).reshape(x.shape[0], x.shape[2], x.shape[1] * x.shape[3]),
                "head h's D channels must end up side by side (channels h*D ... (h+1)*D - 1): go through (B, T, H, D), "
                "not (B, T, D, H)."),
    ],
    general_hint="x.transpose(0, 2, 1, 3).reshape(B, T, H * D) (PyTorch: x.transpose(1, 2).reshape(B, T, C)).",
    shape_hint=_merge_shape,
)


def multi_head_merge(fn: Callable, *, strict: bool = False, verbose: bool = True, framework: str = "auto") -> CheckResult:
    """Check `fn(x)`: (B, H, T, D) -> (B, T, H * D), the inverse of the split. Args and return as `softmax`."""
    return _check(MULTI_HEAD_MERGE, fn, strict=strict, verbose=verbose, framework=framework)


# ---------------------------------------------------------------------------
# 7. sinusoidal positional encoding
# ---------------------------------------------------------------------------


def _pe_cases() -> list[Case]:
    return [Case("10 positions, dim 16", (10, 16)), Case("6 positions, dim 8", (6, 8)), Case("50 positions, dim 4", (50, 4))]


def _pe(T, C, *, swap=False, halves=False, exponent=lambda i, C: 2 * i / C, start=0, invert=True):
    p = np.arange(start, start + T)[:, None]
    i = np.arange(C // 2)[None, :]
    freq = 10000.0 ** exponent(i, C)
    angle = p / freq if invert else p * freq
    s, c = np.sin(angle), np.cos(angle)
    if swap:
        s, c = c, s
    if halves:
        return np.concatenate([s, c], axis=1)
    out = np.zeros((T, C))
    out[:, 0::2], out[:, 1::2] = s, c
    return out


def _pe_shape(got: tuple, want: tuple, case: Case) -> tuple[str, str] | None:
    if got == want[::-1]:
        return ("transposed", "return (positions, dim): one row per position, one column per channel.")
    return None


POSITIONAL_ENCODING = _Exercise(
    name="positional_encoding",
    reference=solutions.positional_encoding,
    cases=_pe_cases,
    mistakes=[
        Mistake("sin_cos_swapped", lambda T, C: _pe(T, C, swap=True),
                "sin goes in the even channels (0, 2, 4, ...) and cos in the odd ones; you swapped them."),
        Mistake("halves_not_interleaved", lambda T, C: _pe(T, C, halves=True),
                "interleave: channel 2i is sin and channel 2i+1 is cos of the same angle. You put all sines first and "
                "all cosines after (the layout some libraries use, but not the paper's)."),
        Mistake("exponent_without_2", lambda T, C: _pe(T, C, exponent=lambda i, C: i / C),
                "the exponent is 2i/d where i counts the sin/cos PAIRS (0 .. d/2 - 1): angle = p / 10000^(2i/d)."),
        Mistake("exponent_doubled", lambda T, C: _pe(T, C, exponent=lambda i, C: 4 * i / C),
                "if your loop runs over even channels j = 0, 2, 4, ..., that j already is 2i: use 10000^(j/d), "
                "not 10000^(2j/d)."),
        Mistake("positions_from_one", lambda T, C: _pe(T, C, start=1),
                "positions start at 0: np.arange(num_positions) / torch.arange(num_positions)."),
        Mistake("frequency_not_inverted", lambda T, C: _pe(T, C, invert=False),
                "divide the position by 10000^(2i/d) (the frequencies fall with i); you multiplied."),
    ],
    general_hint="PE[p, 2i] = sin(p / 10000^(2i/d)) and PE[p, 2i+1] = cos(p / 10000^(2i/d)), p = 0 .. T-1, i = 0 .. d/2-1.",
    shape_hint=_pe_shape,
)


def positional_encoding(fn: Callable, *, strict: bool = False, verbose: bool = True, framework: str = "auto") -> CheckResult:
    """Check `fn(num_positions, dim)` = the (T, C) sinusoidal table of Vaswani et al. Args and return as `softmax`."""
    return _check(POSITIONAL_ENCODING, fn, strict=strict, verbose=verbose, framework=framework)


# ---------------------------------------------------------------------------
# 8. cross-entropy
# ---------------------------------------------------------------------------


def _ce_cases() -> list[Case]:
    r = _rng(8)
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


CROSS_ENTROPY = _Exercise(
    name="cross_entropy",
    reference=solutions.cross_entropy,
    cases=_ce_cases,
    mistakes=[
        Mistake("unstable_logsumexp", lambda x, t: -np.mean(_pick(x - np.log(np.exp(x).sum(-1, keepdims=True)), t)),
                "exp of large logits overflows to inf. Use the log-sum-exp trick: subtract each row's max before "
                "exponentiating (or np.logaddexp / torch.logsumexp / F.log_softmax)."),
        Mistake("raw_logits", lambda x, t: -np.mean(_pick(x, t)),
                "turn logits into log-probabilities first: log_softmax(x) = x - logsumexp(x) over the last axis."),
        Mistake("probabilities_not_log", lambda x, t: -np.mean(_pick(_softmax(x), t)),
                "take the LOG of the target's probability: loss = -log p[target]."),
        Mistake("sum_not_mean", lambda x, t: -np.sum(_pick(_log_softmax(x), t)),
                "average over the examples (mean), do not sum: the loss should not grow with the batch size."),
        Mistake("missing_minus", lambda x, t: np.mean(_pick(_log_softmax(x), t)),
                "cross-entropy is MINUS the mean log-probability of the targets (a loss is >= 0)."),
        Mistake("wrong_axis", lambda x, t: -np.mean(_pick(_log_softmax(x, axis=0), t)),
                "normalise over the classes, the last axis (axis=-1 / dim=-1), not over the examples."),
    ],
    general_hint="loss = -mean_n log_softmax(logits)[n, target_n], with log_softmax over the last axis.",
    shape_hint=_ce_shape,
)


def cross_entropy(fn: Callable, *, strict: bool = False, verbose: bool = True, framework: str = "auto") -> CheckResult:
    """Check `fn(logits, targets)` = mean cross-entropy; logits (N, V), targets (N,) ints. Args and return as `softmax`."""
    return _check(CROSS_ENTROPY, fn, strict=strict, verbose=verbose, framework=framework)


# ---------------------------------------------------------------------------
# 9. mean pooling
# ---------------------------------------------------------------------------


def _pool_cases() -> list[Case]:
    r = _rng(9)
    m1 = np.array([[1, 1, 1, 1], [1, 1, 0, 0]])
    m2 = np.array([[1, 1, 1, 0, 0], [1, 0, 0, 0, 0], [1, 1, 1, 1, 1]])
    return [
        Case("a batch of 2 with padding in the second row", (r.normal(size=(2, 4, 3)), m1)),
        Case("a batch of 3 of lengths 3, 1 and 5", (r.normal(size=(3, 5, 4)) + 1, m2)),
        Case("no padding", (r.normal(size=(1, 3, 2)), np.ones((1, 3), dtype=np.int64))),
    ]


def _mask3(m):
    return np.asarray(m, dtype=np.float64)[..., None]


MEAN_POOLING = _Exercise(
    name="mean_pooling",
    reference=solutions.mean_pooling,
    cases=_pool_cases,
    mistakes=[
        Mistake("includes_padding", lambda h, m: h.mean(axis=1),
                "padding is not part of the text: average only the real tokens: (hidden * mask).sum(1) / mask.sum(1)."),
        Mistake("divides_by_length", lambda h, m: (h * _mask3(m)).sum(axis=1) / h.shape[1],
                "divide by the number of REAL tokens of each row (mask.sum(1)), not by the padded length T."),
        Mistake("sum_only", lambda h, m: (h * _mask3(m)).sum(axis=1),
                "after summing the real tokens, divide by how many there are (mask.sum(axis=1, keepdims=True))."),
        Mistake("cls_token", lambda h, m: h[:, 0],
                "that is CLS pooling (the first token's vector); mean pooling averages all real tokens."),
        Mistake("max_pooling", lambda h, m: np.where(_mask3(m) > 0, h, -np.inf).max(axis=1),
                "that is max pooling; mean pooling averages the real tokens."),
    ],
    general_hint="(hidden * mask[..., None]).sum(axis=1) / mask.sum(axis=1)[..., None]",
    shape_hint=lambda got, want, case: ("kept_time_axis", "pool over the time axis (axis=1): the result is (B, C).")
    if len(got) == 3 else None,
)


def mean_pooling(fn: Callable, *, strict: bool = False, verbose: bool = True, framework: str = "auto") -> CheckResult:
    """Check `fn(hidden, attention_mask)`: (B, T, C), (B, T) 0/1 -> (B, C) mean over real tokens. Args and return as `softmax`."""
    return _check(MEAN_POOLING, fn, strict=strict, verbose=verbose, framework=framework)


# ---------------------------------------------------------------------------

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
}

_DEFINITIONS: dict[str, _Exercise] = {
    e.name: e
    for e in (SOFTMAX, COSINE, CAUSAL_MASK, ATTENTION, LAYER_NORM, MULTI_HEAD_SPLIT, MULTI_HEAD_MERGE,
              POSITIONAL_ENCODING, CROSS_ENTROPY, MEAN_POOLING)
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


__all__ = ["CheckResult", "EXERCISES", "mistake_function", "mistakes", *EXERCISES]

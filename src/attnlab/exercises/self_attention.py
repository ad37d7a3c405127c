"""Checks of lab 1's exercises: the causal mask and scaled dot-product attention (Vaswani et al. 2017).

Each check is `attnlab.exercises.check.<name>`; the shared machinery is in `_core`.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from typing import Any

import numpy as np

from attnlab.exercises import solutions
from attnlab.exercises._core import (
    Case,
    CheckResult,
    Exercise,
    Mistake,
    message_has,
    rng,
    run_check,
    stable_softmax,
    to_numpy,
)

# ---------------------------------------------------------------------------
# causal mask
# ---------------------------------------------------------------------------


def _mask_cases() -> list[Case]:
    return [Case(f"size {n}", (n,)) for n in (1, 3, 6)]


def _mask_output_hint(out: Any) -> tuple[str, str] | None:
    try:
        arr = to_numpy(out)
    except Exception:
        return None
    if arr.dtype != bool and np.isinf(arr).any():
        return (
            "additive_mask",
            "attnlab masks are boolean with True = may attend; you returned an additive mask "
            "(0 and -inf). Return the booleans, e.g. np.tril(np.ones((T, T), dtype=bool)).",
        )
    if arr.dtype != bool and not np.isin(arr, (0, 1)).all():
        return ("not_boolean", "return a boolean (True/False) mask: True where the query may attend.")
    return None


CAUSAL_MASK = Exercise(
    name="causal_mask",
    reference=solutions.causal_mask,
    cases=_mask_cases,
    mistakes=[
        Mistake(
            "inverted",
            lambda n: ~np.tril(np.ones((n, n), dtype=bool)),
            "the polarity is reversed: in attnlab True means MAY attend. Query i may see keys 0..i, "
            "so True belongs on and below the diagonal (np.tril / torch.tril).",
        ),
        Mistake(
            "excludes_diagonal",
            lambda n: np.tril(np.ones((n, n), dtype=bool), k=-1),
            "a token may attend to itself: keep the diagonal (np.tril(..., k=0), not k=-1).",
        ),
        Mistake(
            "upper_triangle",
            lambda n: np.triu(np.ones((n, n), dtype=bool)),
            "rows are queries and columns keys: query i sees keys j <= i, the LOWER triangle (np.tril), "
            "not the upper one.",
        ),
        Mistake(
            "all_true",
            lambda n: np.ones((n, n), dtype=bool),
            "nothing is blocked: a causal mask hides the future, so entries above the diagonal must be False.",
        ),
    ],
    general_hint="causal_mask(T)[i, j] is True when j <= i: np.tril(np.ones((T, T), dtype=bool)).",
    output_hint=_mask_output_hint,
    exact=True,
)


def causal_mask(fn: Callable, *, strict: bool = False, verbose: bool = True, framework: str = "auto") -> CheckResult:
    """Check `fn(T)` = the (T, T) boolean causal mask, True = may attend. Args and return as `softmax`."""
    return run_check(CAUSAL_MASK, fn, strict=strict, verbose=verbose, framework=framework)


# ---------------------------------------------------------------------------
# scaled dot-product attention
# ---------------------------------------------------------------------------


def _attention_cases() -> list[Case]:
    r = rng(4)
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
    w = stable_softmax(s, axis=axis)
    if mask is not None and mask_mode == "after":
        w = w * mask
    return w @ v


def _attention_exception(e: BaseException, case: Case, earlier_ok: bool) -> tuple[str, str] | None:
    if message_has(
        e, "matmul", "mismatch in its core dimension", "cannot be multiplied", "size of tensor a", "shapes", "dimension"
    ):
        if earlier_ok and "batch" in case.description:
            return (
                "batch_transpose",
                "k.T reverses EVERY axis of a batched array; transpose only the last two: "
                "np.swapaxes(k, -1, -2) in NumPy or k.transpose(-2, -1) in PyTorch.",
            )
        return (
            "missing_transpose",
            "the scores are q @ k^T: (T, D) @ (D, S) -> (T, S). Transpose the last two axes of k "
            "(np.swapaxes(k, -1, -2) / k.transpose(-2, -1)).",
        )
    if message_has(e, "broadcast") and "mask" in case.description:
        return (
            "mask_shape",
            "apply the mask to the (..., T, S) scores, e.g. np.where(mask, scores, -np.inf) or "
            "scores.masked_fill(~mask, float('-inf')).",
        )
    return None


def _attention_shape(got: tuple, want: tuple, case: Case) -> tuple[str, str] | None:
    q, k, v = case.args[:3]
    if got == want[:-1] + (k.shape[-2],):
        return (
            "returns_weights",
            "you returned the attention weights (T, S); the output is weights @ v, of shape (T, Dv).",
        )
    return None


ATTENTION = Exercise(
    name="attention",
    reference=solutions.attention,
    cases=_attention_cases,
    mistakes=[
        Mistake(
            "no_scale",
            lambda q, k, v, mask=None: _attn(q, k, v, mask, scale=lambda *a: 1.0),
            "the scores must be divided by sqrt(d), d = q.shape[-1]: without it their variance grows with d and "
            "the softmax saturates.",
        ),
        Mistake(
            "scale_by_d",
            lambda q, k, v, mask=None: _attn(q, k, v, mask, scale=lambda q, k, v: q.shape[-1]),
            "divide by the SQUARE ROOT of d (np.sqrt(d) / math.sqrt(d)), not by d itself.",
        ),
        Mistake(
            "scale_by_value_dim",
            lambda q, k, v, mask=None: _attn(q, k, v, mask, scale=lambda q, k, v: math.sqrt(v.shape[-1])),
            "scale by sqrt of the query/key size d = q.shape[-1], not of the value size v.shape[-1].",
        ),
        Mistake(
            "softmax_wrong_axis",
            lambda q, k, v, mask=None: _attn(q, k, v, mask, axis=-2),
            "the softmax runs over the keys, the LAST axis of the (T, S) scores (axis=-1 / dim=-1): each query's "
            "weights sum to 1.",
        ),
        Mistake(
            "mask_after_softmax",
            lambda q, k, v, mask=None: _attn(q, k, v, mask, mask_mode="after"),
            "apply the mask BEFORE the softmax (blocked scores -> -inf): zeroing weights after the softmax leaves "
            "rows that no longer sum to 1.",
        ),
        Mistake(
            "mask_inverted",
            lambda q, k, v, mask=None: _attn(q, k, v, mask, mask_mode="inverted"),
            "the mask's polarity is reversed: True means MAY attend, so block where the mask is False: "
            "np.where(mask, scores, -np.inf) / scores.masked_fill(~mask, float('-inf')).",
        ),
        Mistake(
            "mask_multiplied",
            lambda q, k, v, mask=None: _attn(q, k, v, mask, mask_mode="multiplied"),
            "multiplying the scores by the mask sets blocked scores to 0, and exp(0) = 1 still gives them weight; "
            "set them to -inf before the softmax.",
        ),
        Mistake(
            "missing_transpose",
            lambda q, k, v, mask=None: _attn(q, k, v, mask, transpose=False),
            "the scores are q @ k^T: transpose the last two axes of k (np.swapaxes(k, -1, -2) / k.transpose(-2, -1)).",
        ),
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
    return run_check(ATTENTION, fn, strict=strict, verbose=verbose, framework=framework)


__all__ = ["causal_mask", "attention"]

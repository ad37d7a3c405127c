"""Checks of lab 2's exercises: layer norm (Ba et al. 2016), the multi-head split and merge, and
the sinusoidal positional encoding (Vaswani et al. 2017).

Each check is `attnlab.exercises.check.<name>`; the shared machinery is in `_core`.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import numpy as np

from attnlab.exercises import solutions
from attnlab.exercises._core import Case, CheckResult, Exercise, Mistake, rng, run_check

# ---------------------------------------------------------------------------
# layer norm
# ---------------------------------------------------------------------------


def _ln_cases() -> list[Case]:
    r = rng(5)
    ones, zeros = np.ones(6), np.zeros(6)
    constant = r.normal(size=(2, 4))
    constant[1] = 3.0  # a row with zero variance: only eps keeps it finite
    return [
        Case("a (2, 6) input with gamma = 1, beta = 0", (r.normal(size=(2, 6)) * 3 + 1, ones, zeros)),
        Case(
            "a (2, 3, 8) batch with random gamma and beta",
            (r.normal(size=(2, 3, 8)) * 2 - 1, r.normal(size=8), r.normal(size=8)),
        ),
        Case(
            "rows with a tiny variance (eps matters)",
            (1 + 1e-3 * r.normal(size=(3, 8)), r.normal(size=8), r.normal(size=8)),
        ),
        Case("a constant row", (constant, np.ones(4) * 2, np.ones(4) * 0.5)),
    ]


def _ln(
    x,
    g,
    b,
    eps=1e-5,
    *,
    axis=-1,
    ddof=0,
    eps_outside=False,
    use_eps=True,
    sqrt=True,
    center=True,
    affine=True,
    swap=False,
):
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


LAYER_NORM = Exercise(
    name="layer_norm",
    reference=solutions.layer_norm,
    cases=_ln_cases,
    mistakes=[
        Mistake(
            "unbiased_variance",
            lambda x, g, b, eps=1e-5: _ln(x, g, b, eps, ddof=1),
            "LayerNorm uses the biased variance (divide by C): np.var(x, axis=-1) or torch.var(x, dim=-1, "
            "unbiased=False) / x.var(-1, correction=0). torch.var is unbiased by default.",
        ),
        Mistake(
            "wrong_axis",
            lambda x, g, b, eps=1e-5: _ln(x, g, b, eps, axis=0),
            "normalise each vector over its features, the LAST axis (axis=-1, keepdims=True); over axis 0 you "
            "normalise across the batch (that is batch norm).",
        ),
        Mistake(
            "eps_outside_sqrt",
            lambda x, g, b, eps=1e-5: _ln(x, g, b, eps, eps_outside=True),
            "eps goes inside the square root: (x - mean) / sqrt(var + eps).",
        ),
        Mistake(
            "no_eps",
            lambda x, g, b, eps=1e-5: _ln(x, g, b, eps, use_eps=False),
            "add eps to the variance, (x - mean) / sqrt(var + eps): a constant row has variance 0 and "
            "divides by zero without it.",
        ),
        Mistake(
            "no_sqrt",
            lambda x, g, b, eps=1e-5: _ln(x, g, b, eps, sqrt=False),
            "divide by the standard deviation sqrt(var + eps), not by the variance.",
        ),
        Mistake(
            "no_affine",
            lambda x, g, b, eps=1e-5: _ln(x, g, b, eps, affine=False),
            "after normalising, scale and shift: y = x_hat * gamma + beta.",
        ),
        Mistake(
            "gamma_beta_swapped",
            lambda x, g, b, eps=1e-5: _ln(x, g, b, eps, swap=True),
            "gamma scales and beta shifts: y = x_hat * gamma + beta (you swapped them).",
        ),
        Mistake(
            "rms_norm",
            lambda x, g, b, eps=1e-5: _ln(x, g, b, eps, center=False),
            "you did not subtract the mean: that is RMSNorm. LayerNorm centres first: (x - mean) / sqrt(var + eps).",
        ),
    ],
    general_hint="over the last axis: mean, biased variance, x_hat = (x - mean) / sqrt(var + eps), "
    "then x_hat * gamma + beta.",
    call=_ln_call,
)


def layer_norm(fn: Callable, *, strict: bool = False, verbose: bool = True, framework: str = "auto") -> CheckResult:
    """Check `fn(x, gamma, beta, eps=1e-5)` = layer normalisation over the last axis. Args and return as `softmax`."""
    return run_check(LAYER_NORM, fn, strict=strict, verbose=verbose, framework=framework)


# ---------------------------------------------------------------------------
# multi-head split and merge
# ---------------------------------------------------------------------------


def _split_cases() -> list[Case]:
    r = rng(6)
    return [
        Case("x of shape (2, 3, 8) into 2 heads", (r.normal(size=(2, 3, 8)), 2)),
        Case("x of shape (1, 5, 12) into 3 heads", (r.normal(size=(1, 5, 12)), 3)),
        Case("x of shape (2, 3, 8) into 4 heads", (r.normal(size=(2, 3, 8)), 4)),
    ]


def _split_shape(got: tuple, want: tuple, case: Case) -> tuple[str, str] | None:
    B, H, T, D = want
    if got == (B, T, H, D):
        return (
            "no_transpose",
            "you have (B, T, H, D); swap the T and H axes to get (B, H, T, D): "
            ".transpose(0, 2, 1, 3) in NumPy, .transpose(1, 2) in PyTorch.",
        )
    if got == (B, T, H * D):
        return ("not_split", f"split the last axis into {H} heads: reshape to (B, T, H, D), then swap T and H.")
    return None


MULTI_HEAD_SPLIT = Exercise(
    name="multi_head_split",
    reference=solutions.multi_head_split,
    cases=_split_cases,
    mistakes=[
        Mistake(
            "reshape_without_transpose",
            lambda x, h: x.reshape(x.shape[0], h, x.shape[1], x.shape[2] // h),
            "reshaping straight to (B, H, T, D) mixes different tokens into one head. Reshape to (B, T, H, D) "
            "first, then swap axes 1 and 2 (.transpose(0, 2, 1, 3) / .transpose(1, 2)).",
        ),
        Mistake(
            "interleaved_channels",
            lambda x, h: x.reshape(x.shape[0], x.shape[1], x.shape[2] // h, h).transpose(0, 3, 1, 2),
            "each head takes a contiguous block of D channels (head h gets channels h*D ... (h+1)*D - 1): "
            "reshape to (B, T, H, D), not (B, T, D, H).",
        ),
    ],
    general_hint="x.reshape(B, T, H, D).transpose(0, 2, 1, 3) (PyTorch: x.view(B, T, H, D).transpose(1, 2)).",
    shape_hint=_split_shape,
)


def multi_head_split(
    fn: Callable, *, strict: bool = False, verbose: bool = True, framework: str = "auto"
) -> CheckResult:
    """Check `fn(x, num_heads)`: (B, T, C) -> (B, H, T, D). Args and return as `softmax`."""
    return run_check(MULTI_HEAD_SPLIT, fn, strict=strict, verbose=verbose, framework=framework)


def _merge_cases() -> list[Case]:
    r = rng(7)
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
        return (
            "merged_wrong_axes",
            "merge heads and channels, not heads and time: swap to (B, T, H, D) first, then reshape to (B, T, H * D).",
        )
    return None


MULTI_HEAD_MERGE = Exercise(
    name="multi_head_merge",
    reference=solutions.multi_head_merge,
    cases=_merge_cases,
    mistakes=[
        Mistake(
            "reshape_without_transpose",
            lambda x: x.reshape(x.shape[0], x.shape[2], x.shape[1] * x.shape[3]),
            "swap H and T back first (.transpose(0, 2, 1, 3) / .transpose(1, 2)), then reshape to (B, T, C); "
            "reshaping directly mixes tokens. In PyTorch use .reshape (or .contiguous().view) after the transpose.",
        ),
        Mistake(
            "interleaved_channels",
            lambda x: x.transpose(0, 2, 3, 1).reshape(x.shape[0], x.shape[2], x.shape[1] * x.shape[3]),
            "head h's D channels must end up side by side (channels h*D ... (h+1)*D - 1): go through (B, T, H, D), "
            "not (B, T, D, H).",
        ),
    ],
    general_hint="x.transpose(0, 2, 1, 3).reshape(B, T, H * D) (PyTorch: x.transpose(1, 2).reshape(B, T, C)).",
    shape_hint=_merge_shape,
)


def multi_head_merge(
    fn: Callable, *, strict: bool = False, verbose: bool = True, framework: str = "auto"
) -> CheckResult:
    """Check `fn(x)`: (B, H, T, D) -> (B, T, H * D), the inverse of the split. Args and return as `softmax`."""
    return run_check(MULTI_HEAD_MERGE, fn, strict=strict, verbose=verbose, framework=framework)


# ---------------------------------------------------------------------------
# sinusoidal positional encoding
# ---------------------------------------------------------------------------


def _pe_cases() -> list[Case]:
    return [
        Case("10 positions, dim 16", (10, 16)),
        Case("6 positions, dim 8", (6, 8)),
        Case("50 positions, dim 4", (50, 4)),
    ]


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


POSITIONAL_ENCODING = Exercise(
    name="positional_encoding",
    reference=solutions.positional_encoding,
    cases=_pe_cases,
    mistakes=[
        Mistake(
            "sin_cos_swapped",
            lambda T, C: _pe(T, C, swap=True),
            "sin goes in the even channels (0, 2, 4, ...) and cos in the odd ones; you swapped them.",
        ),
        Mistake(
            "halves_not_interleaved",
            lambda T, C: _pe(T, C, halves=True),
            "interleave: channel 2i is sin and channel 2i+1 is cos of the same angle. You put all sines first and "
            "all cosines after (the layout some libraries use, but not the paper's).",
        ),
        Mistake(
            "exponent_without_2",
            lambda T, C: _pe(T, C, exponent=lambda i, C: i / C),
            "the exponent is 2i/d where i counts the sin/cos PAIRS (0 .. d/2 - 1): angle = p / 10000^(2i/d).",
        ),
        Mistake(
            "exponent_doubled",
            lambda T, C: _pe(T, C, exponent=lambda i, C: 4 * i / C),
            "if your loop runs over even channels j = 0, 2, 4, ..., that j already is 2i: use 10000^(j/d), "
            "not 10000^(2j/d).",
        ),
        Mistake(
            "positions_from_one",
            lambda T, C: _pe(T, C, start=1),
            "positions start at 0: np.arange(num_positions) / torch.arange(num_positions).",
        ),
        Mistake(
            "frequency_not_inverted",
            lambda T, C: _pe(T, C, invert=False),
            "divide the position by 10000^(2i/d) (the frequencies fall with i); you multiplied.",
        ),
    ],
    general_hint="PE[p, 2i] = sin(p / 10000^(2i/d)) and PE[p, 2i+1] = cos(p / 10000^(2i/d)), "
    "p = 0 .. T-1, i = 0 .. d/2-1.",
    shape_hint=_pe_shape,
)


def positional_encoding(
    fn: Callable, *, strict: bool = False, verbose: bool = True, framework: str = "auto"
) -> CheckResult:
    """Check `fn(num_positions, dim)` = the (T, C) sinusoidal table of Vaswani et al. Args and return as `softmax`."""
    return run_check(POSITIONAL_ENCODING, fn, strict=strict, verbose=verbose, framework=framework)


__all__ = ["layer_norm", "multi_head_split", "multi_head_merge", "positional_encoding"]

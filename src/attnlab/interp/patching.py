"""Activation patching: which activations carry the information that changes the answer?

Run the model on a clean input (e.g. "When Mary and John went to the store, John gave
a drink to" -> " Mary") and on a corrupted input of the same token length that changes
the answer (Mary -> Anne). Then rerun the corrupted input with one activation replaced
by its value on the clean run, and measure how much of the clean behaviour comes back
(Wang et al. 2022, "Interpretability in the Wild"; Heimersheim & Nanda 2024, "How to
use and interpret activation patching"; this is "denoising", clean -> corrupted).

The metric is the normalised logit difference at the last position,

    logit_diff(x)  = logit[answer] - logit[wrong]          (mean over the batch)
    metric(patched) = (LD_patched - LD_corrupted) / (LD_clean - LD_corrupted)

so 1 means the patch restores the clean performance and 0 means it does nothing.

Where is patched (hook names of `attnlab.interp.hooks`):

* `patch_residual`: `blocks.{l}.hook_resid_pre` at one position, for every layer, plus a
  last row `blocks.{L-1}.hook_resid_post` ("final"), the stream the unembedding reads:
  (L + 1) x T. Patching the final row at the last position restores the metric exactly.
* `patch_attn_out` / `patch_mlp_out`: a block's `hook_attn_out` / `hook_mlp_out`
  (what attention / the feed-forward adds), at all positions (L x 1) or one at a time (L x T).
* `patch_heads`: one head's slice of `blocks.{l}.attn.hook_z` (B, T, H, D) at all
  positions (or one): L x H.

Notation: B batch, T time, L layers, H heads, D head size.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import torch
from torch import Tensor, nn

from attnlab.errors import ConfigError
from attnlab.interp.ablation import model_heads
from attnlab.interp.hooks import HookFn, run_with_cache, run_with_hooks

__all__ = [
    "PatchingResult",
    "logit_diff",
    "normalised_metric",
    "patch_attn_out",
    "patch_heads",
    "patch_mlp_out",
    "patch_residual",
]

Token = int | Sequence[int] | Tensor


@dataclass
class PatchingResult:
    """The normalised metric of each patched run.

    Attributes:
        kind: what was patched ("residual", "attn_out", "mlp_out", "heads").
        values: (rows, cols) the metric; 1 = clean performance, 0 = corrupted.
        row_name / col_name: what rows and columns index ("layer", "position", "head").
        row_labels / col_labels: their display labels (e.g. tokens for positions).
        clean_logit_diff / corrupted_logit_diff: the two reference logit differences.
        hook_names: (rows, cols) the hook point each cell patched (for the tidy form).
    """

    kind: str
    values: np.ndarray
    row_name: str
    col_name: str
    row_labels: list[str]
    col_labels: list[str]
    clean_logit_diff: float
    corrupted_logit_diff: float
    hook_names: list[list[str]] = field(default_factory=list)

    def to_rows(self) -> list[dict[str, Any]]:
        """Tidy rows, one per cell: kind, row and column index and label, hook point, metric."""
        rows = []
        for i, row_label in enumerate(self.row_labels):
            for j, col_label in enumerate(self.col_labels):
                rows.append(
                    {
                        "kind": self.kind,
                        self.row_name: i,
                        f"{self.row_name}_label": row_label,
                        self.col_name: j,
                        f"{self.col_name}_label": col_label,
                        "hook": self.hook_names[i][j] if self.hook_names else "",
                        "metric": float(self.values[i, j]),
                    }
                )
        return rows

    def best(self) -> tuple[int, int, float]:
        """(row, column, value) of the cell with the highest metric."""
        flat = int(np.nanargmax(self.values))
        i, j = divmod(flat, self.values.shape[1])
        return i, j, float(self.values[i, j])


# ---------------------------------------------------------------------------
# The metric
# ---------------------------------------------------------------------------


def _token_column(token: Token, batch: int, what: str) -> Tensor:
    t = torch.as_tensor(token, dtype=torch.long).reshape(-1)
    if t.numel() == 1:
        return t.expand(batch)
    if t.numel() != batch:
        raise ConfigError(f"{what} must be one token id or one per input ({batch}), got {t.numel()}")
    return t


def logit_diff(logits: Tensor, answer: Token, wrong: Token, position: int = -1) -> Tensor:
    """logit[answer] - logit[wrong] at `position`, per input.

    Args:
        logits: (B, T, V).
        answer / wrong: a token id, or one per input (B,).
        position: the position read (default the last).
    Returns:
        (B,) logit differences.
    """
    B = logits.size(0)
    at = logits[:, position]  # (B, V)
    rows = torch.arange(B, device=at.device)
    a = _token_column(answer, B, "answer").to(at.device)
    w = _token_column(wrong, B, "wrong").to(at.device)
    return at[rows, a] - at[rows, w]


def normalised_metric(patched: float | Tensor, clean: float, corrupted: float) -> float | Tensor:
    """(patched - corrupted) / (clean - corrupted): 1 = clean performance, 0 = corrupted.

    Raises:
        ConfigError: clean and corrupted runs give the same logit difference (nothing to restore).
    """
    span = clean - corrupted
    if abs(float(span)) <= 1e-6 * max(1.0, abs(float(clean)), abs(float(corrupted))):
        raise ConfigError(
            f"the clean and corrupted inputs give the same logit difference ({float(clean):.4g}); "
            "choose a corruption that changes the answer"
        )
    return (patched - corrupted) / span


# ---------------------------------------------------------------------------
# The runs
# ---------------------------------------------------------------------------


class _Setup:
    """Clean cache, reference logit differences and a `metric(hooks)` runner shared by the patchers."""

    def __init__(
        self,
        model: nn.Module,
        clean: Tensor,
        corrupted: Tensor,
        answer: Token,
        wrong: Token,
        names: list[str],
        position: int,
        forward_kwargs: dict[str, Any],
    ):
        clean, corrupted = _as_batch(clean, "clean"), _as_batch(corrupted, "corrupted")
        if clean.shape != corrupted.shape:
            raise ConfigError(
                f"clean and corrupted inputs must have the same token length (and batch): got {tuple(clean.shape)} "
                f"and {tuple(corrupted.shape)}; reword one of them so both have {clean.shape[-1]} tokens"
            )
        self.model = model
        self.L, self.H = model_heads(model)
        device = next(model.parameters()).device
        self.clean, self.corrupted = clean.to(device), corrupted.to(device)
        self.T = int(clean.size(1))
        self.answer, self.wrong, self.position = answer, wrong, position
        self.kwargs = forward_kwargs
        with torch.no_grad():
            clean_logits, self.cache = run_with_cache(model, self.clean, names=names, **forward_kwargs)
            # the hooked path, as in the patched runs: a patch that changes nothing scores exactly 0
            corrupted_logits = run_with_hooks(model, self.corrupted, **forward_kwargs)
        self.clean_ld = float(logit_diff(clean_logits, answer, wrong, position).mean())
        self.corrupted_ld = float(logit_diff(corrupted_logits, answer, wrong, position).mean())
        normalised_metric(self.clean_ld, self.clean_ld, self.corrupted_ld)  # fails now if they are equal

    def metric(self, fwd_hooks: list[tuple[str, HookFn]]) -> float:
        with torch.no_grad():
            logits = run_with_hooks(self.model, self.corrupted, fwd_hooks=fwd_hooks, **self.kwargs)
        ld = float(logit_diff(logits, self.answer, self.wrong, self.position).mean())
        return float(normalised_metric(ld, self.clean_ld, self.corrupted_ld))

    def result(self, kind: str, values: np.ndarray, row_name: str, col_name: str, rows, cols, names) -> PatchingResult:
        return PatchingResult(
            kind, values, row_name, col_name, list(rows), list(cols), self.clean_ld, self.corrupted_ld, names
        )


def model_logits(model: nn.Module, ids: Tensor, **forward_kwargs: Any) -> Tensor:
    """The (B, T, V) logits of a plain forward."""
    out = model(ids, **forward_kwargs)
    return getattr(out, "logits", out)


def _as_batch(ids: Any, what: str) -> Tensor:
    ids = torch.as_tensor(ids, dtype=torch.long)
    if ids.dim() == 1:
        ids = ids[None]
    if ids.dim() != 2 or ids.size(1) == 0:
        raise ConfigError(f"{what} token ids must be (T,) or (B, T) with T >= 1, got shape {tuple(ids.shape)}")
    return ids


def _replace_at(clean: Tensor, position: int | None) -> HookFn:
    """A hook that puts the clean activation (at one position, or all) into the corrupted run."""

    def patch(act: Tensor, name: str) -> Tensor:
        if position is None:
            return clean.to(act.dtype)
        act = act.clone()
        act[:, position] = clean[:, position].to(act.dtype)
        return act

    return patch


def _position_labels(T: int, labels: Sequence[str] | None) -> list[str]:
    if labels is None:
        return [str(t) for t in range(T)]
    if len(labels) != T:
        raise ConfigError(f"got {len(labels)} position labels for {T} positions")
    return [str(x) for x in labels]


def patch_residual(
    model: nn.Module,
    clean: Tensor,
    corrupted: Tensor,
    answer: Token,
    wrong: Token,
    *,
    position: int = -1,
    labels: Sequence[str] | None = None,
    **forward_kwargs: Any,
) -> PatchingResult:
    """Patch the clean residual stream into the corrupted run, one (layer, position) at a time.

    Args:
        model: an attnlab causal LM with a `blocks` stack (GPT, LLaMA-style).
        clean / corrupted: (T,) or (B, T) token ids of the same shape.
        answer / wrong: the token ids whose logit difference is measured (one, or one per input).
        position: where the logit difference is read (default the last position).
        labels: T display labels of the positions (e.g. the clean tokens).
    Returns:
        `PatchingResult` of shape (L + 1, T): row l patches `blocks.{l}.hook_resid_pre`,
        the last row ("final") `blocks.{L-1}.hook_resid_post`.
    """
    L = model_heads(model)[0]
    names = [f"blocks.{layer}.hook_resid_pre" for layer in range(L)] + [f"blocks.{L - 1}.hook_resid_post"]
    s = _Setup(model, clean, corrupted, answer, wrong, names, position, forward_kwargs)
    values = np.zeros((L + 1, s.T))
    for i, name in enumerate(names):
        for t in range(s.T):
            values[i, t] = s.metric([(name, _replace_at(s.cache[name], t))])
    rows = [f"L{layer}" for layer in range(L)] + ["final"]
    return s.result(
        "residual", values, "layer", "position", rows, _position_labels(s.T, labels), [[n] * s.T for n in names]
    )


def _patch_sublayer(
    kind: str,
    suffix: str,
    model: nn.Module,
    clean: Tensor,
    corrupted: Tensor,
    answer: Token,
    wrong: Token,
    per_position: bool,
    position: int,
    labels: Sequence[str] | None,
    layers: list[int],
    forward_kwargs: dict[str, Any],
) -> PatchingResult:
    names = [f"blocks.{layer}.{suffix}" for layer in layers]
    s = _Setup(model, clean, corrupted, answer, wrong, names, position, forward_kwargs)
    cols: list[int | None] = list(range(s.T)) if per_position else [None]
    values = np.zeros((len(names), len(cols)))
    for i, name in enumerate(names):
        for j, t in enumerate(cols):
            values[i, j] = s.metric([(name, _replace_at(s.cache[name], t))])
    col_labels = _position_labels(s.T, labels) if per_position else ["all positions"]
    return s.result(
        kind,
        values,
        "layer",
        "position",
        [f"L{layer}" for layer in layers],
        col_labels,
        [[n] * len(cols) for n in names],
    )


def patch_attn_out(
    model: nn.Module,
    clean: Tensor,
    corrupted: Tensor,
    answer: Token,
    wrong: Token,
    *,
    per_position: bool = False,
    position: int = -1,
    labels: Sequence[str] | None = None,
    **forward_kwargs: Any,
) -> PatchingResult:
    """Patch each block's attention output (`hook_attn_out`) from the clean run.

    Returns:
        `PatchingResult` (L, 1) patching all positions at once, or (L, T) with `per_position`.
    """
    L = model_heads(model)[0]
    return _patch_sublayer(
        "attn_out",
        "hook_attn_out",
        model,
        clean,
        corrupted,
        answer,
        wrong,
        per_position,
        position,
        labels,
        list(range(L)),
        forward_kwargs,
    )


def patch_mlp_out(
    model: nn.Module,
    clean: Tensor,
    corrupted: Tensor,
    answer: Token,
    wrong: Token,
    *,
    per_position: bool = False,
    position: int = -1,
    labels: Sequence[str] | None = None,
    **forward_kwargs: Any,
) -> PatchingResult:
    """Patch each block's feed-forward output (`hook_mlp_out`) from the clean run.

    Returns:
        `PatchingResult` (L', 1) or (L', T) over the L' blocks that have a feed-forward layer.
    Raises:
        ConfigError: an attention-only model (no feed-forward layers).
    """
    L = model_heads(model)[0]
    layers = [layer for layer in range(L) if getattr(model.blocks[layer], "ff", None) is not None]
    if not layers:
        raise ConfigError(f"this {type(model).__name__} is attention-only: it has no feed-forward outputs to patch")
    return _patch_sublayer(
        "mlp_out",
        "hook_mlp_out",
        model,
        clean,
        corrupted,
        answer,
        wrong,
        per_position,
        position,
        labels,
        layers,
        forward_kwargs,
    )


def _replace_head(clean_z: Tensor, head: int, position: int | None) -> HookFn:
    def patch(z: Tensor, name: str) -> Tensor:  # (B, T, H, D)
        z = z.clone()
        if position is None:
            z[:, :, head] = clean_z[:, :, head].to(z.dtype)
        else:
            z[:, position, head] = clean_z[:, position, head].to(z.dtype)
        return z

    return patch


def patch_heads(
    model: nn.Module,
    clean: Tensor,
    corrupted: Tensor,
    answer: Token,
    wrong: Token,
    *,
    patch_position: int | None = None,
    position: int = -1,
    **forward_kwargs: Any,
) -> PatchingResult:
    """Patch each head's output (its slice of `blocks.{l}.attn.hook_z`) from the clean run.

    Args:
        patch_position: patch only this position (None: every position).
        position: where the logit difference is read.
    Returns:
        `PatchingResult` (L, H).
    """
    L, H = model_heads(model)
    names = [f"blocks.{layer}.attn.hook_z" for layer in range(L)]
    s = _Setup(model, clean, corrupted, answer, wrong, names, position, forward_kwargs)
    values = np.zeros((L, H))
    for layer, name in enumerate(names):
        for head in range(H):
            values[layer, head] = s.metric([(name, _replace_head(s.cache[name], head, patch_position))])
    return s.result(
        "heads",
        values,
        "layer",
        "head",
        [f"L{layer}" for layer in range(L)],
        [f"H{h}" for h in range(H)],
        [[n] * H for n in names],
    )


PATCHERS: dict[str, Callable[..., PatchingResult]] = {
    "residual": patch_residual,
    "attn_out": patch_attn_out,
    "mlp_out": patch_mlp_out,
    "heads": patch_heads,
}

"""Direct logit attribution, and the loss change when a head is ablated.

Direct logit attribution (Elhage et al. 2021, "A Mathematical Framework for Transformer
Circuits"): in a pre-norm transformer the final residual stream is a sum of what each
component wrote into it,

    x = embed + pos_embed + sum_l [ sum_h z_lh W_O,h^T + b_O,l  +  mlp_l + b_mlp,l ]

and the logit of token v is `norm(x) . W_U[v]`. Freezing the final norm's scale at its
value on this run (LayerNorm: centre, divide by sqrt(var + eps), times the gain, plus
the bias; RMSNorm: divide by sqrt(mean(x^2) + eps), times the weight) makes the logit
linear in x, so it splits exactly into one term per component (plus the norm's bias).
The terms sum to the logit; they measure only the *direct* path to the logits, not
what a component does through later layers.

`loss_change_per_head` is the causal counterpart: the change of the mean next-token loss
when one head's output is removed (`attnlab.interp.ablation`).

Notation: B batch, T time, C channels, L layers, H heads, D head size, V vocabulary.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F
from torch import Tensor, nn

from attnlab.errors import ConfigError
from attnlab.interp.ablation import ABLATIONS, head_ablation_hooks, model_heads
from attnlab.interp.hooks import run_with_cache, run_with_hooks
from attnlab.nn.layers import RMSNorm

__all__ = [
    "HeadLossChange",
    "LogitAttribution",
    "direct_logit_attribution",
    "lm_loss",
    "loss_change_per_head",
]


@dataclass
class LogitAttribution:
    """Each component's direct contribution to one logit (or logit difference); they sum to `logit`.

    Attributes:
        labels: component names: "embed", "pos_embed", "L{l}H{h}", "L{l} attn bias",
            "L{l} MLP", "L{l} MLP bias", "final norm bias" (those the model has).
        values: (K,) contributions, in the order of `labels`.
        kinds / layers / heads: per component its kind ("embed", "head", "attn_bias", "mlp",
            "mlp_bias", "norm_bias"), its layer (-1 if none) and head (-1 if none).
        logit: the actual logit (or logit difference) of the run.
        token / wrong: the token id attributed (and the one subtracted, or None).
        position: the position read.
    """

    labels: list[str]
    values: np.ndarray
    kinds: list[str]
    layers: list[int]
    heads: list[int]
    logit: float
    token: int
    position: int
    wrong: int | None = None

    @property
    def total(self) -> float:
        """The sum of the contributions (equals `logit`)."""
        return float(self.values.sum())

    def head_matrix(self) -> np.ndarray:
        """(L, H) the heads' contributions."""
        L = max(self.layers) + 1
        H = max(self.heads) + 1
        out = np.zeros((L, H))
        for kind, layer, head, value in zip(self.kinds, self.layers, self.heads, self.values):
            if kind == "head":
                out[layer, head] = value
        return out

    def to_rows(self) -> list[dict[str, Any]]:
        """Tidy rows, one per component."""
        return [
            {
                "component": label,
                "kind": kind,
                "layer": layer,
                "head": head,
                "token": self.token,
                "wrong": "" if self.wrong is None else self.wrong,
                "position": self.position,
                "contribution": float(value),
            }
            for label, kind, layer, head, value in zip(self.labels, self.kinds, self.layers, self.heads, self.values)
        ]


def _final_norm(model: nn.Module) -> nn.Module:
    norm = getattr(model, "norm", None)
    blocks = getattr(model, "blocks", None)
    pre_norm = blocks is not None and len(blocks) > 0 and all(getattr(b, "norm_first", False) for b in blocks)
    if not pre_norm or not isinstance(norm, (nn.LayerNorm, RMSNorm)) or getattr(model, "lm_head", None) is None:
        raise ConfigError(
            f"direct logit attribution needs a pre-norm language model with a final LayerNorm or RMSNorm "
            f"(GPT, LLaMA-style); this {type(model).__name__} is not one (a post-norm stream is not a sum)"
        )
    return norm


@torch.no_grad()
def direct_logit_attribution(
    model: nn.Module,
    ids: Tensor,
    token: int | None = None,
    *,
    position: int = -1,
    wrong: int | None = None,
    **forward_kwargs: Any,
) -> LogitAttribution:
    """Split the logit of `token` at `position` into each component's direct contribution.

    Args:
        model: a pre-norm attnlab causal LM (GPT, LLaMA-style), in eval mode (no dropout).
        ids: (T,) or (1, T) token ids of one sequence.
        token: the token whose logit is attributed (None: the model's top prediction there).
        position: the position (default the last).
        wrong: attribute the logit difference token - wrong instead.
    Returns:
        `LogitAttribution` whose values sum to the logit (to float rounding).
    Raises:
        ConfigError: not a pre-norm LM, more than one sequence, or a token outside the vocabulary.
    """
    norm = _final_norm(model)
    ids = torch.as_tensor(ids, dtype=torch.long)
    if ids.dim() == 1:
        ids = ids[None]
    if ids.dim() != 2 or ids.size(0) != 1:
        raise ConfigError(f"direct logit attribution takes one sequence, (T,) or (1, T) ids; got {tuple(ids.shape)}")
    if model.training:
        raise ConfigError("put the model in eval mode (model.eval()) first: dropout breaks the sum of contributions")
    device = next(model.parameters()).device
    ids = ids.to(device)
    L, H = model_heads(model)
    names = ["hook_embed", "blocks.*.attn.hook_z", f"blocks.{L - 1}.hook_resid_post"]
    if any(getattr(block, "ff", None) is not None for block in model.blocks):
        names.append("blocks.*.hook_mlp_out")
    if hasattr(model, "hook_pos_embed"):
        names.append("hook_pos_embed")
    with torch.no_grad():
        logits, cache = run_with_cache(model, ids, names=names, **forward_kwargs)
    V = logits.size(-1)
    pos = position % ids.size(1)
    if token is None:
        token = int(logits[0, pos].argmax())
    for what, t in (("token", token), ("wrong", wrong)):
        if t is not None and not 0 <= int(t) < V:
            raise ConfigError(f"{what} id {t} is outside the vocabulary of {V} tokens")
    W_U = model.lm_head.weight  # (V, C)
    direction = W_U[token] - (W_U[wrong] if wrong is not None else 0.0)  # (C,)
    actual = logits[0, pos, token] - (logits[0, pos, wrong] if wrong is not None else 0.0)

    # the stream's components at `pos`, each (C,), in float64 for an exact sum
    labels: list[str] = []
    kinds: list[str] = []
    layers: list[int] = []
    heads: list[int] = []
    parts: list[Tensor] = []

    def add(label: str, kind: str, layer: int, head: int, vec: Tensor) -> None:
        labels.append(label)
        kinds.append(kind)
        layers.append(layer)
        heads.append(head)
        parts.append(vec.to(torch.float64))

    add("embed", "embed", -1, -1, cache["hook_embed"][0, pos])
    if "hook_pos_embed" in cache:
        add("pos_embed", "embed", -1, -1, cache["hook_pos_embed"][0, pos])
    for layer, block in enumerate(model.blocks):
        attn = block.attn
        z = cache[f"blocks.{layer}.attn.hook_z"][0, pos]  # (H, D)
        D = z.size(-1)
        W_O = attn.out.weight  # (C, H*D)
        for head in range(H):
            add(f"L{layer}H{head}", "head", layer, head, W_O[:, head * D : (head + 1) * D] @ z[head])
        if attn.out.bias is not None:
            add(f"L{layer} attn bias", "attn_bias", layer, -1, attn.out.bias)
        ff = getattr(block, "ff", None)
        if ff is not None:
            out = cache[f"blocks.{layer}.hook_mlp_out"][0, pos]
            last = ff.residual_projections()[-1]  # fc2 / w_down: the layer that writes to the stream
            if last.bias is not None:
                add(f"L{layer} MLP", "mlp", layer, -1, out - last.bias)
                add(f"L{layer} MLP bias", "mlp_bias", layer, -1, last.bias)
            else:
                add(f"L{layer} MLP", "mlp", layer, -1, out)
    stacked = torch.stack(parts)  # (K, C)
    final = cache[f"blocks.{L - 1}.hook_resid_post"][0, pos].to(torch.float64)  # (C,)
    weight = norm.weight.to(torch.float64)
    if isinstance(norm, nn.LayerNorm):
        scale = torch.sqrt(final.var(unbiased=False) + norm.eps)  # frozen at this run's value
        normed = (stacked - stacked.mean(-1, keepdim=True)) / scale * weight
    else:
        scale = torch.sqrt(final.pow(2).mean() + norm.eps)
        normed = stacked / scale * weight
    values = normed @ direction.to(torch.float64)  # (K,)
    bias = getattr(norm, "bias", None)
    if bias is not None:
        labels.append("final norm bias")
        kinds.append("norm_bias")
        layers.append(-1)
        heads.append(-1)
        values = torch.cat([values, (bias.to(torch.float64) @ direction.to(torch.float64))[None]])
    return LogitAttribution(
        labels,
        values.cpu().numpy(),
        kinds,
        layers,
        heads,
        float(actual),
        int(token),
        int(pos),
        None if wrong is None else int(wrong),
    )


# ---------------------------------------------------------------------------
# Loss change per ablated head
# ---------------------------------------------------------------------------


@dataclass
class HeadLossChange:
    """Change of the mean next-token loss when each head alone is ablated.

    Attributes:
        values: (L, H) ablated loss - base loss (positive: the head helps).
        base_loss: the loss with every head on.
        kind: the ablation (zero, mean, resample).
    """

    values: np.ndarray
    base_loss: float
    kind: str

    def to_rows(self) -> list[dict[str, Any]]:
        """Tidy rows, one per head."""
        L, H = self.values.shape
        return [
            {
                "layer": layer,
                "head": head,
                "kind": self.kind,
                "base_loss": self.base_loss,
                "ablated_loss": self.base_loss + float(self.values[layer, head]),
                "loss_change": float(self.values[layer, head]),
            }
            for layer in range(L)
            for head in range(H)
        ]


def lm_loss(logits: Tensor, ids: Tensor) -> Tensor:
    """Mean next-token cross-entropy of (B, T, V) logits on (B, T) ids (positions 0..T-2 predict 1..T-1)."""
    return F.cross_entropy(logits[:, :-1].reshape(-1, logits.size(-1)).float(), ids[:, 1:].reshape(-1))


def loss_change_per_head(
    model: nn.Module,
    ids: Tensor,
    kind: str = "mean",
    *,
    reference: Tensor | None = None,
    heads: Sequence[tuple[int, int]] | None = None,
    seed: int = 0,
    **forward_kwargs: Any,
) -> HeadLossChange:
    """Ablate each head alone and measure the change of the mean language-modelling loss on `ids`.

    Args:
        model: an attnlab causal LM.
        ids: (T,) or (B, T) token ids, T >= 2.
        kind: "zero", "mean" or "resample" (`attnlab.interp.ablation`).
        reference: (B', T') ids the mean / resampled values come from (default `ids`;
            resample then needs B >= 2, so that there is another input to take values from).
        heads: only these (layer, head) pairs (the others get NaN); None = every head.
        seed: the resampling's random choice.
    Returns:
        `HeadLossChange` with (L, H) values.
    """
    if kind not in ABLATIONS:
        raise ConfigError(f"unknown ablation {kind!r}; choose one of: {', '.join(ABLATIONS)}")
    ids = torch.as_tensor(ids, dtype=torch.long)
    if ids.dim() == 1:
        ids = ids[None]
    if ids.dim() != 2 or ids.size(1) < 2:
        raise ConfigError(f"the loss needs at least 2 tokens per input, got ids of shape {tuple(ids.shape)}")
    device = next(model.parameters()).device
    ids = ids.to(device)
    if reference is None:
        if kind == "resample" and ids.size(0) < 2:
            raise ConfigError("resample ablation needs a reference batch of other inputs (or at least 2 inputs)")
        reference = ids
    reference = torch.as_tensor(reference, dtype=torch.long).to(device)
    L, H = model_heads(model)
    chosen = [(layer, head) for layer in range(L) for head in range(H)] if heads is None else list(heads)
    values = np.full((L, H), np.nan)
    with torch.no_grad():
        base = float(lm_loss(run_with_hooks(model, ids, **forward_kwargs), ids))
        for layer, head in chosen:
            fwd = head_ablation_hooks(
                model, [(layer, head)], kind=kind, reference=reference, seed=seed, **forward_kwargs
            )
            logits = run_with_hooks(model, ids, fwd_hooks=fwd, **forward_kwargs)
            values[layer, head] = float(lm_loss(logits, ids)) - base
    return HeadLossChange(values, base, kind)

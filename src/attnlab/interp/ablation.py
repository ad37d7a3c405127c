"""Ablation: knock out attention heads or feed-forward layers and see what breaks.

Three ways to remove a component's output (Wang et al. 2022, sec. 3; Chan et al. 2022):

* zero: replace it with zeros. Simple, but the model never saw a zero there in training.
* mean: replace it with its mean over a reference batch (and positions): removes what is
  specific to this input, keeps the average signal.
* resample: replace it with its value on another input of the reference batch (same
  position): the component now carries information about the wrong input.

A head's output is its slice of `blocks.{l}.attn.hook_z` (B, T, H, D) (the output projection
is linear, so removing z's slice removes exactly that head's write to the stream); a
feed-forward layer's output is `blocks.{l}.hook_mlp_out` (B, T, C).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any, Literal

import torch
from torch import Tensor, nn

from attnlab.errors import ConfigError
from attnlab.interp.hooks import HookFn, run_with_cache

__all__ = ["ABLATIONS", "Ablation", "head_ablation_hooks", "mlp_ablation_hooks", "model_heads"]

Ablation = Literal["zero", "mean", "resample"]
ABLATIONS = ("zero", "mean", "resample")


def model_heads(model: nn.Module) -> tuple[int, int]:
    """(layers, heads per layer) of a model with a `blocks` stack."""
    blocks = getattr(model, "blocks", None)
    if blocks is None or len(blocks) == 0:
        raise ConfigError(f"{type(model).__name__} has no `blocks` stack of attention layers to ablate")
    return len(blocks), blocks[0].attn.num_heads


def _check(model: nn.Module, heads: Sequence[tuple[int, int]], kind: str) -> None:
    if kind not in ABLATIONS:
        raise ConfigError(f"unknown ablation {kind!r}; choose one of: {', '.join(ABLATIONS)}")
    L, H = model_heads(model)
    for layer, head in heads:
        if not (0 <= layer < L and 0 <= head < H):
            raise ConfigError(f"head L{layer}H{head} does not exist: this model has {L} layers x {H} heads")


def _reference(model: nn.Module, names: list[str], reference: Any, kind: str, **forward_kwargs: Any) -> dict:
    if kind == "zero":
        return {}
    if reference is None:
        raise ConfigError(f"{kind} ablation needs a reference batch of inputs (reference=token ids)")
    with torch.no_grad():
        _, cache = run_with_cache(model, reference, names=names, **forward_kwargs)
    return dict(cache)


def _replacement(kind: str, ref: Tensor | None, like: Tensor, generator: torch.Generator) -> Tensor:
    """What replaces activation `like` (B, T, ...) under `kind`, from the reference activation (B', T', ...)."""
    if kind == "zero":
        return torch.zeros_like(like)
    assert ref is not None
    if kind == "mean":
        return ref.mean(dim=(0, 1)).expand_as(like)  # mean over reference inputs and positions
    # resample: each input gets another reference input's value at the same position
    if ref.size(1) < like.size(1):
        raise ConfigError(
            f"resample ablation needs reference inputs at least as long as the input ({like.size(1)} tokens), "
            f"got {ref.size(1)}"
        )
    rows = torch.randint(0, ref.size(0), (like.size(0),), generator=generator)
    return ref[rows, : like.size(1)].to(like.dtype)


def head_ablation_hooks(
    model: nn.Module,
    heads: Sequence[tuple[int, int]],
    *,
    kind: Ablation = "zero",
    reference: Tensor | None = None,
    seed: int = 0,
    **forward_kwargs: Any,
) -> list[tuple[str, HookFn]]:
    """Hooks (for `run_with_hooks` / `hooks`) that remove the output of the given heads.

    Args:
        model: an attnlab model with a `blocks` stack.
        heads: (layer, head) pairs.
        kind: zero, mean or resample.
        reference: (B', T') token ids the mean / resampled values come from.
        seed: the resampling's random choice of reference inputs.
        **forward_kwargs: passed to the model's forward on the reference batch.
    """
    _check(model, heads, kind)
    by_layer: dict[int, list[int]] = {}
    for layer, head in heads:
        by_layer.setdefault(layer, []).append(head)
    names = [f"blocks.{layer}.attn.hook_z" for layer in sorted(by_layer)]
    refs = _reference(model, names, reference, kind, **forward_kwargs)
    generator = torch.Generator().manual_seed(seed)

    def make(layer: int) -> HookFn:
        chosen = by_layer[layer]

        def ablate(z: Tensor, name: str) -> Tensor:  # (B, T, H, D)
            z = z.clone()
            new = _replacement(kind, refs.get(name), z, generator)
            z[:, :, chosen] = new[:, :, chosen]
            return z

        return ablate

    return [(f"blocks.{layer}.attn.hook_z", make(layer)) for layer in sorted(by_layer)]


def mlp_ablation_hooks(
    model: nn.Module,
    layers: Sequence[int],
    *,
    kind: Ablation = "zero",
    reference: Tensor | None = None,
    seed: int = 0,
    **forward_kwargs: Any,
) -> list[tuple[str, HookFn]]:
    """Hooks that remove what the given blocks' feed-forward layers add to the stream (`hook_mlp_out`)."""
    if kind not in ABLATIONS:
        raise ConfigError(f"unknown ablation {kind!r}; choose one of: {', '.join(ABLATIONS)}")
    L, _ = model_heads(model)
    for layer in layers:
        if not 0 <= layer < L:
            raise ConfigError(f"layer {layer} does not exist: this model has {L} layers")
        if model.blocks[layer].ff is None:
            raise ConfigError(f"block {layer} is attention-only: it has no feed-forward layer to ablate")
    names = [f"blocks.{layer}.hook_mlp_out" for layer in sorted(set(layers))]
    refs = _reference(model, names, reference, kind, **forward_kwargs)
    generator = torch.Generator().manual_seed(seed)

    def ablate(out: Tensor, name: str) -> Tensor:
        return _replacement(kind, refs.get(name), out, generator)

    return [(name, ablate) for name in names]

"""Hook points: named places in a model where an activation can be read or replaced.

Every transformer module of attnlab (model, block, attention, feed-forward) owns
`HookPoint`s, identity modules whose names (their module paths, e.g.
`blocks.1.attn.hook_pattern`) are the names of `attnlab.interp`. The names follow
TransformerLens (Elhage et al. 2021's notation) wherever the computation is the same;
docs/interpretability.md lists them and their mapping.

Zero cost when unused: a module calls its hook points only while its `hooked` flag is
set, and `attnlab.interp.hooks` sets the flag on every module of a model for the
duration of a hooked run (and clears it afterwards). So a plain forward pays one
attribute test per module, and attention keeps its fused kernel; a hooked forward takes
the step-by-step attention path, which materialises the scores and the pattern.
A torch forward hook registered on a `HookPoint` directly fires only while the model
is hooked (`attnlab.interp.enable_hooks(model)` keeps it so).
"""

from __future__ import annotations

from collections.abc import Iterator

from torch import Tensor, nn

__all__ = ["HookPoint", "HookedMixin", "hook_points", "set_hooked"]


class HookPoint(nn.Module):
    """The identity, with a name: `register_forward_hook` on it reads or replaces the tensor."""

    def forward(self, x: Tensor) -> Tensor:
        return x


class HookedMixin:
    """A module with hook points: `hooked` (False by default) says whether to call them."""

    hooked: bool = False  # a class attribute: instances read it without nn.Module.__getattr__


def hook_points(model: nn.Module) -> Iterator[tuple[str, HookPoint]]:
    """(name, hook point) of every hook point in `model`, in forward order within each module."""
    for name, module in model.named_modules():
        if isinstance(module, HookPoint):
            yield name, module


def set_hooked(model: nn.Module, on: bool) -> None:
    """Turn the hook points of every module of `model` on or off."""
    for module in model.modules():
        if isinstance(module, HookedMixin):
            if on:
                module.hooked = True
            else:
                module.__dict__.pop("hooked", None)  # back to the class default (False)

"""Read or replace any named activation of a model: `run_with_cache`, `run_with_hooks`, `hooks`.

The names are the module paths of the model's `HookPoint`s (`attnlab.nn.hooks`), e.g.

    hook_embed                      token embedding (B, T, C)
    hook_pos_embed                  position embedding (B, T, C), models with a position table
    blocks.{i}.hook_resid_pre       the residual stream entering block i (B, T, C)
    blocks.{i}.hook_attn_in         attention's input (norm1's output in a pre-norm block)
    blocks.{i}.attn.hook_q/_k/_v    queries, keys, values (B, T, H, D) (keys/values: G heads)
    blocks.{i}.attn.hook_attn_scores  scaled, masked scores (B, H, T, S)
    blocks.{i}.attn.hook_pattern    attention weights (B, H, T, S)
    blocks.{i}.attn.hook_z          each head's weighted values (B, T, H, D)
    blocks.{i}.hook_attn_out        what attention adds to the stream (B, T, C)
    blocks.{i}.hook_resid_mid       the stream before the feed-forward
    blocks.{i}.hook_mlp_in / ff.hook_pre / ff.hook_post / hook_mlp_out
    blocks.{i}.hook_resid_post      the stream leaving block i
    hook_final_norm                 the final norm's output (the head's input)

`hook_names(model)` lists a model's names in forward order. A hook is a function
`fn(tensor, name) -> tensor or None`: returning a tensor replaces the activation (same
shape), returning None leaves it. Hooks run only inside `hooks(...)` / `run_with_*`, which
turn the model's hook points on and off again (`attnlab.nn.hooks`): outside them a forward
costs what it did before hook points existed.
"""

from __future__ import annotations

import difflib
import fnmatch
from collections.abc import Callable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from typing import Any

import torch
from torch import Tensor, nn

from attnlab.errors import ConfigError
from attnlab.nn.hooks import HookedMixin, HookPoint, hook_points, set_hooked

__all__ = [
    "ActivationCache",
    "HookFn",
    "enable_hooks",
    "hook_names",
    "hooks",
    "resolve_names",
    "run_with_cache",
    "run_with_hooks",
]

HookFn = Callable[[Tensor, str], "Tensor | None"]
NameFilter = "str | Sequence[str] | Callable[[str], bool] | None"


# forward order of the hook points inside a block, and of the model-level ones around the blocks
_BLOCK_ORDER = [
    "hook_resid_pre",
    "hook_attn_in",
    "attn.hook_q",
    "attn.hook_k",
    "attn.hook_v",
    "attn.hook_attn_scores",
    "attn.hook_pattern",
    "attn.hook_z",
    "hook_attn_out",
    "hook_resid_mid_cross",
    "cross_attn.hook_q",
    "cross_attn.hook_k",
    "cross_attn.hook_v",
    "cross_attn.hook_attn_scores",
    "cross_attn.hook_pattern",
    "cross_attn.hook_z",
    "hook_cross_out",
    "hook_resid_mid",
    "hook_mlp_in",
    "ff.hook_pre",
    "ff.hook_pre_linear",
    "ff.hook_post",
    "hook_mlp_out",
    "hook_resid_post",
]
# model-level hook points that are not after every stack: (slot, order); stack k of blocks has
# slot 2k + 1, so slot 0 is before the first stack and slot 2 between the first and the second
# (an encoder-decoder: the encoder's output and the decoder's embedding)
_MODEL_LEVEL = {
    "hook_embed": (0, 0),
    "hook_encoder_embed": (0, 0),
    "hook_pos_embed": (0, 1),
    "hook_embed_out": (0, 2),
    "hook_encoder_out": (2, 0),
    "hook_decoder_embed": (2, 1),
}
_AFTER_ALL = 10**6  # the slot of the other model-level points (hook_final_norm)


def _forward_key(stack: dict[str, int], index: int, name: str) -> tuple:
    parts = name.split(".")
    for i, part in enumerate(parts[:-1]):
        if part.isdigit():  # <stack>.<i>.<rest>: a block's hook point
            rest = ".".join(parts[i + 1 :])
            rank = _BLOCK_ORDER.index(rest) if rest in _BLOCK_ORDER else len(_BLOCK_ORDER)
            return (2 * stack[".".join(parts[:i])] + 1, int(part), rank, index)
    if name in _MODEL_LEVEL:
        return (*_MODEL_LEVEL[name], 0, index)
    return (_AFTER_ALL, 0, 0, index)


def hook_names(model: nn.Module) -> list[str]:
    """Every hook point name of `model`, in forward order (embeddings, each block in turn, final norm)."""
    found = [name for name, _ in hook_points(model)]
    # stacks of blocks (`blocks`, `encoder_blocks`, `decoder_blocks`) run in the order they were built
    stack: dict[str, int] = {}
    for name in found:
        parts = name.split(".")
        for i, part in enumerate(parts[:-1]):
            if part.isdigit():
                stack.setdefault(".".join(parts[:i]), len(stack))
                break
    names = [n for _, n in sorted((_forward_key(stack, i, n), n) for i, n in enumerate(found))]
    if not names:
        raise ConfigError(
            f"{type(model).__name__} has no hook points: attnlab.interp works on attnlab's transformers "
            "(GPT, LLaMA, encoder, seq2seq, ViT, point and sequence transformers)"
        )
    return names


def resolve_names(model: nn.Module, names: Any) -> list[str]:
    """The hook point names a filter selects, in module order.

    Args:
        model: an attnlab model.
        names: None (every hook point), a name, a glob pattern (`blocks.*.attn.hook_pattern`),
            a list of names/patterns, or a predicate on the name.
    Raises:
        ConfigError: a name or pattern that matches no hook point (with the closest names).
    """
    every = hook_names(model)
    if names is None:
        return every
    if callable(names):
        return [n for n in every if names(n)]
    wanted = [names] if isinstance(names, str) else list(names)
    chosen: set[str] = set()
    for pattern in wanted:
        if not isinstance(pattern, str):
            raise ConfigError(f"hook names are strings, got {pattern!r}")
        matches = [n for n in every if fnmatch.fnmatchcase(n, pattern)]
        if not matches:
            what = "matches" if _is_glob(pattern) else "is called"
            # close spellings help with a mistyped name; for a pattern they are noise
            close = [] if _is_glob(pattern) else difflib.get_close_matches(pattern, every, n=3, cutoff=0.5)
            hint = f"; did you mean {', '.join(close)}?" if close else f"; hook_names(model) lists all {len(every)}"
            raise ConfigError(f"no hook point {what} {pattern!r} in this {type(model).__name__}{hint}")
        chosen.update(matches)
    return [n for n in every if n in chosen]


def _is_glob(pattern: str) -> bool:
    return any(c in pattern for c in "*?[")


def _points(model: nn.Module) -> dict[str, HookPoint]:
    return dict(hook_points(model))


@contextmanager
def _hooked(model: nn.Module) -> Iterator[None]:
    """Hook points on for the block, and afterwards as they were (so `hooks(...)` blocks can nest)."""
    was_on = [m for m in model.modules() if isinstance(m, HookedMixin) and m.hooked]
    set_hooked(model, True)
    try:
        yield
    finally:
        set_hooked(model, False)
        for module in was_on:
            module.hooked = True


@contextmanager
def enable_hooks(model: nn.Module) -> Iterator[nn.Module]:
    """Turn `model`'s hook points on for the block (torch hooks registered on them then fire)."""
    with _hooked(model):
        yield model


@contextmanager
def hooks(model: nn.Module, fwd_hooks: Sequence[tuple[Any, HookFn]]) -> Iterator[nn.Module]:
    """Attach hooks for the duration of the block; every forward inside runs them.

    Blocks may nest: an inner block's hooks run after the outer block's on the same point,
    and leaving the inner block removes only its own hooks.

    Args:
        model: an attnlab model.
        fwd_hooks: (names, fn) pairs; names as in `resolve_names`, fn(tensor, name) -> tensor or None.
    """
    points = _points(model)
    handles = []
    try:
        for names, fn in fwd_hooks:
            if not callable(fn):
                raise ConfigError(f"a hook must be a function fn(tensor, name), got {fn!r}")
            for name in resolve_names(model, names):
                handles.append(points[name].register_forward_hook(_torch_hook(fn, name)))
        with _hooked(model):
            yield model
    finally:
        for handle in handles:
            handle.remove()


def _torch_hook(fn: HookFn, name: str) -> Callable[..., Tensor | None]:
    def hook(module: nn.Module, inputs: tuple[Tensor, ...], output: Tensor) -> Tensor | None:
        new = fn(output, name)
        if new is None:
            return None
        if not isinstance(new, Tensor) or new.shape != output.shape:
            got = tuple(new.shape) if isinstance(new, Tensor) else type(new).__name__
            raise ValueError(f"hook on {name} must return None or a tensor of shape {tuple(output.shape)}, got {got}")
        return new

    return hook


def _logits(output: Any) -> Any:
    return getattr(output, "logits", output)


def run_with_hooks(model: nn.Module, *args: Any, fwd_hooks: Sequence[tuple[Any, HookFn]] = (), **kwargs: Any) -> Any:
    """`model(*args, **kwargs)` with `fwd_hooks` attached; returns the logits (or the output without them)."""
    with hooks(model, fwd_hooks):
        return _logits(model(*args, **kwargs))


class ActivationCache(Mapping):
    """The activations of one forward, by hook point name (a read-only mapping of tensors).

    `cache["blocks.0.attn.hook_pattern"]` is one tensor; `cache.stack("attn.hook_pattern")`
    stacks that point of every block into (L, ...); `cache.layers` is the block count.
    """

    def __init__(self, activations: dict[str, Tensor], model_name: str = "model"):
        self._activations = activations
        self.model_name = model_name

    def __getitem__(self, name: str) -> Tensor:
        try:
            return self._activations[name]
        except KeyError:
            close = difflib.get_close_matches(name, list(self._activations), n=3, cutoff=0.5)
            hint = f"; did you mean {', '.join(close)}?" if close else ""
            raise KeyError(f"{name!r} is not in this cache ({len(self)} activations){hint}") from None

    def __iter__(self) -> Iterator[str]:
        return iter(self._activations)

    def __len__(self) -> int:
        return len(self._activations)

    def __repr__(self) -> str:
        return f"ActivationCache({self.model_name}, {len(self)} activations)"

    @property
    def layers(self) -> int:
        """Number of blocks whose activations are cached."""
        found = {int(k.split(".")[1]) for k in self._activations if k.startswith("blocks.")}
        return max(found) + 1 if found else 0

    def stack(self, suffix: str) -> Tensor:
        """`blocks.{i}.<suffix>` of every block, stacked into (L, ...)."""
        if self.layers == 0:
            raise KeyError("this cache holds no block activations")
        return torch.stack([self[f"blocks.{i}.{suffix}"] for i in range(self.layers)])


def run_with_cache(
    model: nn.Module, *args: Any, names: Any = None, detach: bool = True, **kwargs: Any
) -> tuple[Any, ActivationCache]:
    """Run `model(*args, **kwargs)` and keep the activations at the chosen hook points.

    Args:
        model: an attnlab model.
        names: which hook points (see `resolve_names`; None = all).
        detach: store detached tensors (False keeps the graph, for gradients through the cache).
    Returns:
        (logits, `ActivationCache`); the model's full output if it has no `logits`.
    """
    store: dict[str, Tensor] = {}

    def keep(tensor: Tensor, name: str) -> None:
        store[name] = tensor.detach() if detach else tensor

    with hooks(model, [(resolve_names(model, names), keep)]):
        output = model(*args, **kwargs)
    return _logits(output), ActivationCache(store, type(model).__name__)

"""A stack of transformer blocks built from a config, and the GPT-2 weight initialisation.

`block_stack(config)` is the `num_layers x TransformerBlock` of every model file: the
blocks' arguments come from `config.block_kwargs()` (`attnlab.configs.base.BlockShape`),
so a config that adds keys there (LLaMA: RMSNorm, SwiGLU, grouped-query attention) gets
its blocks without the model file saying so.

`run_blocks(blocks, x, ...)` runs such a stack the way every model's forward does (KV cache
per layer, hidden states, attention weights, per-block traces), so a forward reads
embed -> run_blocks -> norm -> head.

`init_weights(model, std, residual=...)` is the GPT-2 initialisation (Radford et al. 2019,
sec. 2.3; nanoGPT): N(0, std) weights of every linear layer and embedding, zero biases,
unit norm gains with zero biases, and then the layers that write into the residual
stream (attention output, feed-forward output, cross-attention output) drawn again with
std / sqrt(2 * num_layers), so that the stream's variance does not grow with depth.
Modules are visited in `model.modules()` order and each block's writers as attention,
feed-forward, cross-attention, so a given seed gives the same weights as the loops this
replaced.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from typing import Any

from torch import Tensor, nn

from attnlab.nn.attention import KVCache, padding_mask
from attnlab.nn.block import TransformerBlock
from attnlab.nn.layers import RMSNorm

__all__ = [
    "StackOutput",
    "block_stack",
    "init_weights",
    "key_padding_mask",
    "residual_projections",
    "run_blocks",
    "xavier_linear",
]


def block_stack(
    config: Any,
    *,
    rotary: nn.Module | None = None,
    cross_attention: bool = False,
    num_layers: int | None = None,
    **overrides: Any,
) -> nn.ModuleList:
    """`num_layers` transformer blocks with the config's shape.

    Args:
        config: a config with `num_layers` and `block_kwargs()` (e.g. `GPTConfig`).
        rotary: a `RotaryEmbedding` shared by the blocks' self-attention, or None.
        cross_attention: decoder blocks of an encoder-decoder (self- and cross-attention).
        num_layers: how many blocks; None = `config.num_layers` (an encoder-decoder has two counts).
        **overrides: other `TransformerBlock` keyword arguments, replacing the config's.
    Returns:
        `nn.ModuleList` of `TransformerBlock`s.
    """
    count = config.num_layers if num_layers is None else num_layers
    kwargs = {**config.block_kwargs(), "rotary": rotary, "cross_attention": cross_attention, **overrides}
    return nn.ModuleList(TransformerBlock(**kwargs) for _ in range(count))


@dataclass
class StackOutput:
    """What `run_blocks` returns."""

    hidden: Tensor  # (B, T, C) the stream after the last block
    hidden_states: list[Tensor] = field(default_factory=list)  # asked for: before each block, then after the last
    attentions: list[Tensor] = field(default_factory=list)  # asked for: (B, H, T, S) per block


def run_blocks(
    blocks: Iterable[nn.Module],
    x: Tensor,
    *,
    cache: KVCache | None = None,
    output_attentions: bool = False,
    output_hidden_states: bool = False,
    trace: list[dict[str, Tensor]] | None = None,
    **block_args: Any,
) -> StackOutput:
    """Run `x` through the blocks in order.

    Args:
        blocks: the stack (`block_stack(...)`).
        x: (B, T, C) the embedded input.
        cache: a `KVCache` with one layer cache per block, or None.
        output_attentions: collect each block's attention weights.
        output_hidden_states: collect the stream before each block and after the last
            (num_layers + 1 tensors; Hugging Face's layout once the caller puts the final
            norm's output in the last place).
        trace: a list to receive one dict of intermediate tensors per block.
        **block_args: the same for every block: mask, is_causal, positions, context, context_mask.
    Returns:
        `StackOutput`.
    """
    out = StackOutput(x)
    for i, block in enumerate(blocks):
        if output_hidden_states:
            out.hidden_states.append(x)
        block_trace = {} if trace is not None else None
        step = block(
            x,
            cache=cache.layers[i] if cache is not None else None,
            need_weights=output_attentions,
            trace=block_trace,
            **block_args,
        )
        x = step.hidden
        if output_attentions:
            out.attentions.append(step.attention)
        if trace is not None:
            trace.append(block_trace)
    if output_hidden_states:
        out.hidden_states.append(x)
    out.hidden = x
    return out


def key_padding_mask(attention_mask: Tensor | None, cache: KVCache | None = None, new_tokens: int = 0) -> Tensor | None:
    """The (B, 1, 1, S) self-attention mask of an HF-style (B, S) attention_mask (1 real, 0 padding), or None.

    With a cache, the mask must cover the cached tokens and the `new_tokens` being added.
    """
    if attention_mask is None:
        return None
    if cache is not None and attention_mask.size(1) != cache.length + new_tokens:
        raise ValueError("with a cache, attention_mask must cover cached and new tokens")
    return padding_mask(attention_mask)


def residual_projections(block: nn.Module) -> list[nn.Linear]:
    """The linear layers of a block that write into the residual stream: attention, feed-forward, cross-attention."""
    parts = (getattr(block, "attn", None), getattr(block, "ff", None), getattr(block, "cross_attn", None))
    return [linear for part in parts if part is not None for linear in part.residual_projections()]


def init_weights(
    model: nn.Module,
    std: float,
    residual: Iterable[tuple[Iterable[nn.Module], int]] = (),
    *,
    linear: Callable[[nn.Linear], None] | None = None,
) -> None:
    """GPT-2 initialisation of `model` in place (or another rule for its linear layers).

    Args:
        model: the model; every `nn.Linear` / `nn.Embedding` weight is drawn from N(0, std),
            biases are zeroed, LayerNorm / RMSNorm gains set to one (biases zero).
        std: the weights' standard deviation (`config.init_std`).
        residual: (blocks, num_layers) pairs; the residual projections of those blocks are
            drawn again from N(0, std / sqrt(2 * num_layers)). Empty: no rescaling (BERT).
        linear: initialises one `nn.Linear` (weight and bias) instead of N(0, std) and zero,
            e.g. `xavier_linear` (the ViT) or `nn.Linear.reset_parameters` (PyTorch's default).
    """
    for module in model.modules():
        if isinstance(module, nn.Linear) and linear is not None:
            linear(module)
        elif isinstance(module, (nn.Linear, nn.Embedding)):
            nn.init.normal_(module.weight, mean=0.0, std=std)
            if getattr(module, "bias", None) is not None:
                nn.init.zeros_(module.bias)
        elif isinstance(module, (nn.LayerNorm, RMSNorm)):
            nn.init.ones_(module.weight)
            if getattr(module, "bias", None) is not None:
                nn.init.zeros_(module.bias)
    for blocks, num_layers in residual:
        residual_std = std / math.sqrt(2 * num_layers)
        for block in blocks:
            for linear in residual_projections(block):
                nn.init.normal_(linear.weight, mean=0.0, std=residual_std)


def xavier_linear(module: nn.Linear) -> None:
    """Glorot-uniform weight and zero bias (Glorot & Bengio 2010): the ViT's linear layers."""
    nn.init.xavier_uniform_(module.weight)
    if module.bias is not None:
        nn.init.zeros_(module.bias)

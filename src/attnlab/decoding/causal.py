"""Text generation from a causal language model: greedy, temperature, top-k, top-p, KV cache.

The sampling rules are those of `attnlab.configs.sampling` (shared with the NumPy GPT,
`attnlab.scratch.gpt`, whose `filter_logits` is tested equal to the one here):
  1. logits of the next token, divided by the temperature (T < 1 sharpens, T > 1 flattens);
     a temperature <= 0 means greedy decoding (always the most likely token);
  2. top-k keeps the k most likely tokens; top-p keeps the smallest set whose
     probabilities add up to at least p (the most likely token is always kept);
  3. sample from the softmax of what is left.
With the KV cache (default) each step feeds only the newest token and reuses the keys
and values of earlier positions; it produces the same tokens as recomputing the whole
context every step (`use_cache=False`). A context longer than the model's window
keeps its last `max_seq_len` tokens.

The model is anything meeting `attnlab.decoding.protocol.CausalLM` (GPT, Llama, ...).

Notation: B batch, T time, V vocabulary.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from typing import Any

import torch
from torch import Tensor

from attnlab.configs.sampling import SamplingConfig
from attnlab.decoding.protocol import CausalLM, DecodingCache
from attnlab.errors import TokenizerError


def filter_logits(logits: Tensor, top_k: int | None = None, top_p: float | None = None) -> Tensor:
    """Set the logits of tokens outside top-k / top-p to -inf.

    Ties: top-k keeps every token tied with the k-th largest; top-p ranks tied tokens by
    id (the lower first), as the NumPy twin `attnlab.scratch.gpt.filter_logits` does.

    Args:
        logits: (B, V).
        top_k: keep the k largest logits per row (k >= V keeps all).
        top_p: keep the smallest prefix (by probability) whose mass is >= top_p.
    Returns:
        (B, V) filtered logits (the most likely token always survives).
    """
    if top_k is not None and top_k < logits.size(-1):
        kth = torch.topk(logits, top_k, dim=-1).values[..., -1:]  # (B, 1)
        logits = logits.masked_fill(logits < kth, float("-inf"))
    if top_p is not None and top_p < 1.0:
        sorted_logits, order = torch.sort(logits, descending=True, stable=True, dim=-1)
        probs = torch.softmax(sorted_logits, dim=-1)
        # mass *before* each token: a token is dropped once the mass before it reaches top_p
        mass_before = probs.cumsum(dim=-1) - probs
        drop_sorted = mass_before >= top_p
        # The most likely token always survives, even for a top_p below float32's smallest
        # number (5e-324 rounds to 0.0, and 0.0 >= 0.0 would drop every token: NaN sampling).
        drop_sorted[..., 0] = False
        drop = torch.zeros_like(drop_sorted).scatter(-1, order, drop_sorted)
        logits = logits.masked_fill(drop, float("-inf"))
    return logits


def next_token_distribution(logits: Tensor, sampling: SamplingConfig) -> Tensor:
    """(B, V) logits -> (B, V) probabilities after temperature, top-k and top-p."""
    if sampling.greedy:
        return torch.nn.functional.one_hot(logits.argmax(-1), logits.size(-1)).to(logits.dtype)
    # Shift by the maximum first: the same softmax, and a tiny temperature gives -inf and 0
    # (never inf - inf = NaN) even where logits / temperature would overflow.
    logits = (logits - logits.max(dim=-1, keepdim=True).values) / sampling.temperature
    logits = filter_logits(logits, sampling.top_k, sampling.top_p)
    return torch.softmax(logits, dim=-1)


@dataclass
class Step:
    """One generation step, for step-by-step displays."""

    token_id: int  # the chosen token (batch row 0)
    probs: Tensor  # (V,) the distribution it was drawn from (after temperature/top-k/top-p)
    raw_probs: Tensor  # (V,) softmax of the raw logits (temperature 1, no filtering)
    position: int  # index of the new token in the full sequence
    extras: dict[str, Any] = field(default_factory=dict)


def _forward_last(model: CausalLM, ids: Tensor, cache: DecodingCache | None) -> Tensor:
    return model(ids, cache=cache, last_only=True).logits[:, -1, :].float()  # (B, V)


@torch.no_grad()
def iter_generate(
    model: CausalLM, input_ids: Tensor, sampling: SamplingConfig, eos_id: int | None = None
) -> Iterator[tuple[Tensor, Step]]:
    """Generate token by token, yielding (new tokens (B, 1), step info) each step.

    Args:
        model: a causal LM (`attnlab.decoding.protocol.CausalLM`, e.g. `attnlab.models.gpt.GPT`) in eval mode.
        input_ids: (B, T) prompt ids (T >= 1).
        sampling: how to choose tokens.
        eos_id: stop after this token when `sampling.stop_at_eos`.
    """
    if input_ids.dim() != 2 or input_ids.size(1) < 1:
        raise ValueError("input_ids must be (batch, time) with at least one token")
    max_len = model.config.max_seq_len
    generator = None
    if sampling.seed is not None:
        generator = torch.Generator(device=input_ids.device).manual_seed(sampling.seed)
    ids = input_ids
    cache = None
    for _ in range(sampling.max_new_tokens):
        if sampling.use_cache:
            if cache is None or cache.length + 1 > max_len:
                # (re)fill the cache from the last max_len tokens: at the start, and
                # whenever the window slides (positions shift, so old keys are stale)
                cache = model.new_cache()
                logits = _forward_last(model, ids[:, -max_len:], cache)
            else:
                logits = _forward_last(model, ids[:, -1:], cache)
        else:
            logits = _forward_last(model, ids[:, -max_len:], None)
        probs = next_token_distribution(logits, sampling)  # (B, V)
        if sampling.greedy:
            nxt = probs.argmax(-1, keepdim=True)
        else:
            nxt = torch.multinomial(probs, 1, generator=generator)  # (B, 1)
        ids = torch.cat([ids, nxt], dim=1)
        step = Step(int(nxt[0, 0]), probs[0], torch.softmax(logits[0], -1), ids.size(1) - 1)
        yield nxt, step
        if sampling.stop_at_eos and eos_id is not None and bool((nxt == eos_id).all()):
            break


@torch.no_grad()
def generate(
    model: CausalLM,
    input_ids: Tensor,
    sampling: SamplingConfig | None = None,
    eos_id: int | None = None,
    **kwargs: Any,
) -> Tensor:
    """Prompt (B, T) -> prompt + generated tokens (B, T + new).

    `kwargs` are `SamplingConfig` fields (max_new_tokens=..., temperature=...).
    """
    sampling = sampling or SamplingConfig(**kwargs)
    out = [input_ids]
    for nxt, _ in iter_generate(model, input_ids, sampling, eos_id):
        out.append(nxt)
    return torch.cat(out, dim=1)


def prompt_ids(tokenizer: Any, prompt: str) -> list[int]:
    """Encode a prompt; an empty prompt starts from the tokenizer's start token.

    The start token is `<bos>`-like when the tokenizer has one, else a newline (how a
    character-level model trained on plain text naturally begins a paragraph), else id 0.

    Raises:
        UnknownCharactersError: the prompt has characters the tokenizer does not know.
    """
    if prompt:
        ids = tokenizer.encode(prompt)
        if ids:
            return ids
    if tokenizer.bos_id is not None:
        return [tokenizer.bos_id]
    try:
        ids = tokenizer.encode("\n")
        if ids:
            return ids[:1]
    except TokenizerError:
        pass
    return [0]


def generate_text(
    model: CausalLM,
    tokenizer: Any,
    prompt: str = "",
    sampling: SamplingConfig | None = None,
    on_step: Callable[[Step, str], None] | None = None,
    **kwargs: Any,
) -> str:
    """Generate a continuation of `prompt` and return prompt + continuation as text.

    Args:
        model: a causal LM in eval mode.
        tokenizer: the model's tokenizer.
        prompt: text to continue ("" starts from the start token).
        sampling: a `SamplingConfig` (or its fields as kwargs).
        on_step: called with (step, token text) after every token (streaming output).
    """
    sampling = sampling or SamplingConfig(**kwargs)
    device = next(model.parameters()).device
    ids = prompt_ids(tokenizer, prompt)
    x = torch.tensor([ids], dtype=torch.long, device=device)
    new: list[int] = []
    for _, step in iter_generate(model, x, sampling, tokenizer.eos_id):
        new.append(step.token_id)
        if on_step is not None:
            on_step(step, tokenizer.decode([step.token_id]))
    return prompt + tokenizer.decode(new)


__all__ = [
    "SamplingConfig",
    "Step",
    "filter_logits",
    "generate",
    "generate_text",
    "iter_generate",
    "next_token_distribution",
    "prompt_ids",
]

"""What the Generate page computes: step-by-step generation and the attention of the last step.

`generate_steps` runs `attnlab.decoding.causal.iter_generate` and keeps the top-k tokens
of every step; `last_step_attention` shows what the model looked at when it chose the
last token. The token helpers (`display_token`, `token_labels`, `text_ids`) serve the
other text pages too. No Streamlit import, so it is unit-tested.

Notation: L layers, H heads, T tokens, S keys, V vocabulary.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from attnlab.configs.sampling import DEFAULT_TEMPERATURE, SamplingConfig
from attnlab.errors import ConfigError, DataError

MAX_NEW_TOKENS = 300  # upper bound of the "tokens to generate" slider
MAX_TEMPERATURE = 3.0  # upper bound of the temperature slider (its start: DEFAULT_TEMPERATURE, the library's)


def sampling_from_controls(
    *, temperature: float, top_k: int, top_p: float, max_new_tokens: int, seed: int | None
) -> SamplingConfig:
    """A `SamplingConfig` from the page's sliders, validated again (the widgets bound them too).

    Args:
        temperature: 0 = greedy, up to MAX_TEMPERATURE.
        top_k: 0 = no limit.
        top_p: 1.0 = no limit.
        max_new_tokens: 1..MAX_NEW_TOKENS.
        seed: sampling seed (None = random).
    Raises:
        ConfigError: a value out of range, with the range.
    """
    values = {"temperature": temperature, "top_p": top_p}
    for name, v in values.items():
        if not isinstance(v, (int, float)) or isinstance(v, bool) or not math.isfinite(v):
            raise ConfigError(f"{name} must be a number, got {v!r}")
    if not 0.0 <= temperature <= MAX_TEMPERATURE:
        raise ConfigError(f"temperature must be between 0 (greedy) and {MAX_TEMPERATURE}, got {temperature}")
    if not 0.0 < top_p <= 1.0:
        raise ConfigError(f"top-p must be in (0, 1], got {top_p}")
    if int(top_k) != top_k or top_k < 0:
        raise ConfigError(f"top-k must be a whole number >= 0 (0 = no limit), got {top_k}")
    if int(max_new_tokens) != max_new_tokens or not 1 <= max_new_tokens <= MAX_NEW_TOKENS:
        raise ConfigError(
            f"the number of tokens to generate must be between 1 and {MAX_NEW_TOKENS}, got {max_new_tokens}"
        )
    if seed is not None and (int(seed) != seed or not 0 <= seed < 2**63):
        raise ConfigError(f"the seed must be a whole number >= 0, got {seed}")
    return SamplingConfig(
        max_new_tokens=int(max_new_tokens),
        temperature=float(temperature),
        top_k=int(top_k) or None,
        top_p=None if top_p >= 1.0 else float(top_p),
        seed=None if seed is None else int(seed),
    )


def encode_prompt(tokenizer: Any, prompt: str) -> list[int]:
    """Token ids of a prompt.

    Raises:
        DataError: the prompt is empty.
        UnknownCharactersError: characters the model's tokenizer does not know (the
            message names them).
    """
    if not prompt:
        raise DataError("the prompt is empty: type a few words for the model to continue")
    ids = list(tokenizer.encode(prompt))
    if not ids:
        raise DataError(f"the prompt {prompt!r} gives no tokens: type some text the model knows")
    return ids


def display_token(text: str) -> str:
    """A token as a table cell: spaces as ␣, newlines and tabs escaped."""
    from attnlab.viz._mpl import token_label

    return token_label(text)


@dataclass
class TokenChoice:
    """One candidate next token."""

    token_id: int
    token: str  # display form (␣ for a space)
    prob: float


@dataclass
class GenerationStep:
    """One step of generation, ready to display."""

    index: int  # 0-based step number
    token_id: int  # the chosen token
    token: str  # its display form
    prob: float  # its probability under the distribution it was drawn from
    raw_prob: float  # its probability under the raw model (temperature 1, no top-k/top-p)
    top: list[TokenChoice]  # the k most likely tokens of the sampling distribution (raw for greedy)
    raw_top: list[TokenChoice]  # the k most likely tokens of the raw model


@dataclass
class GenerationResult:
    """A whole step-by-step generation."""

    prompt: str
    prompt_ids: list[int]
    new_ids: list[int]
    continuation: str  # decoded new tokens
    steps: list[GenerationStep]
    greedy: bool
    context: int  # the model's max_seq_len (older tokens are dropped when longer)

    @property
    def text(self) -> str:
        """Prompt + continuation."""
        return self.prompt + self.continuation

    @property
    def all_ids(self) -> list[int]:
        return self.prompt_ids + self.new_ids


def _top(probs: Any, tokenizer: Any, k: int) -> list[TokenChoice]:
    import torch

    k = min(k, probs.numel())
    values, ids = torch.topk(probs.float(), k)
    return [TokenChoice(int(i), display_token(tokenizer.decode([int(i)])), float(v)) for v, i in zip(values, ids)]


def generate_steps(model: Any, tokenizer: Any, prompt: str, sampling: SamplingConfig, k: int = 5) -> GenerationResult:
    """Generate token by token and keep, for every step, the top-k next-token probabilities.

    Args:
        model: a GPT in eval mode.
        tokenizer: its tokenizer.
        prompt: the text to continue (not empty).
        sampling: a `SamplingConfig` (see `sampling_from_controls`).
        k: how many candidates to keep per step.
    """
    import torch

    from attnlab.decoding.causal import iter_generate

    ids = encode_prompt(tokenizer, prompt)
    device = next(model.parameters()).device
    x = torch.tensor([ids], dtype=torch.long, device=device)
    steps: list[GenerationStep] = []
    new: list[int] = []
    for i, (_, step) in enumerate(iter_generate(model, x, sampling, tokenizer.eos_id)):
        tid = step.token_id
        raw_top = _top(step.raw_probs, tokenizer, k)
        top = raw_top if sampling.greedy else _top(step.probs, tokenizer, k)
        steps.append(
            GenerationStep(
                i,
                tid,
                display_token(tokenizer.decode([tid])),
                float(step.probs[tid]),
                float(step.raw_probs[tid]),
                top,
                raw_top,
            )
        )
        new.append(tid)
    return GenerationResult(
        prompt, ids, new, tokenizer.decode(new), steps, sampling.greedy, int(model.config.max_seq_len)
    )


@dataclass
class LastStepAttention:
    """What the model looked at when it chose the last token."""

    tokens: list[str]  # S key labels (the context the model read)
    weights: np.ndarray  # (L, H, S): the last query's attention row, per layer and head
    full: np.ndarray  # (L, H, S, S): every query of that forward (for the full grid)
    chosen: str  # the token that was chosen from it


def last_step_attention(model: Any, tokenizer: Any, result: GenerationResult) -> LastStepAttention:
    """One forward with attention weights over the context of the last generation step.

    The last generated token was chosen by the last query of the sequence before it
    (cropped to the model's context), so that forward's last attention row shows which
    earlier tokens the model looked at.
    """
    import torch

    ids = result.all_ids
    if not result.new_ids:
        raise DataError("nothing was generated yet")
    context = ids[:-1][-result.context :]
    device = next(model.parameters()).device
    with torch.no_grad():
        out = model(torch.tensor([context], device=device), output_attentions=True)
    full = torch.stack([a[0] for a in out.attentions]).float().cpu().numpy()  # (L, H, S, S)
    labels = [display_token(tokenizer.decode([i])) for i in context]
    return LastStepAttention(labels, full[:, :, -1, :], full, result.steps[-1].token)


def token_labels(tokenizer: Any, ids: Sequence[int]) -> list[str]:
    """Display labels of token ids (␣ for spaces)."""
    return [display_token(tokenizer.decode([int(i)])) for i in ids]


def text_ids(model: Any, tokenizer: Any, text: str, *, truncate: bool = True) -> tuple[list[int], bool]:
    """Token ids of `text` for a GPT, cut to its last `max_seq_len` tokens when `truncate`.

    Returns:
        (ids, whether the text was cut).
    Raises:
        DataError / UnknownCharactersError as `encode_prompt`, or a too-long text without `truncate`.
    """
    ids = encode_prompt(tokenizer, text)
    limit = int(model.config.max_seq_len)
    if len(ids) <= limit:
        return ids, False
    if not truncate:
        raise DataError(f"the text is {len(ids)} tokens long but the model's context is {limit}; shorten it")
    return ids[-limit:], True


__all__ = [
    "DEFAULT_TEMPERATURE",
    "GenerationResult",
    "GenerationStep",
    "LastStepAttention",
    "MAX_NEW_TOKENS",
    "MAX_TEMPERATURE",
    "TokenChoice",
    "display_token",
    "encode_prompt",
    "generate_steps",
    "last_step_attention",
    "sampling_from_controls",
    "text_ids",
    "token_labels",
]

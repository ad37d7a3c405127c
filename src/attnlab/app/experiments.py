"""What the Experiments page computes: activation patching and head ablation on a causal LM.

* `run_patching`: the clean and corrupted prompts (same token count), the answer and the
  wrong token (default: the model's top prediction on each prompt), and the normalised
  logit-difference heatmaps of `attnlab.interp.patching` for the residual stream
  (layers x positions) and for each head (layers x heads).
* `run_ablation`: greedy continuations and the prompt's loss with every head on and with
  the chosen heads switched off (`attnlab.interp.ablation`, zero or mean), plus the loss
  change when each head alone is switched off (`attnlab.interp.attribution`).
* `reference_batch`: the inputs a mean ablation averages over: windows of the text the
  checkpoint was trained on when that text ships with attnlab, else random tokens.

Resample ablation is not offered: during KV-cache generation each step sees one new
position, so there is no reference input of the same length to take a head's value from.
No Streamlit import, so it is unit-tested.

Notation: L layers, H heads, T tokens.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from attnlab.errors import AttnlabError, DataError

ABLATION_KINDS = ("zero", "mean")  # the kinds the page offers (resample needs same-length inputs)
REFERENCE_SIZE = 16  # inputs in the mean-ablation reference batch
MAX_NEW_TOKENS = 100  # upper bound of the page's "tokens to generate" slider


def prompt_ids(model: Any, tokenizer: Any, text: str, what: str = "prompt") -> list[int]:
    """Token ids of `text`, which must fit the model's context.

    Raises:
        DataError: empty, no tokens, or longer than the context (the message names `what`).
        UnknownCharactersError: characters the tokenizer does not know.
    """
    if not text:
        raise DataError(f"the {what} is empty: type a few words")
    ids = [int(i) for i in tokenizer.encode(text)]
    if not ids:
        raise DataError(f"the {what} {text!r} gives no tokens: type some text the model knows")
    limit = int(model.config.max_seq_len)
    if len(ids) > limit:
        raise DataError(f"the {what} is {len(ids)} tokens long but the model's context is {limit}; shorten it")
    return ids


def single_token(tokenizer: Any, text: str, what: str) -> int:
    """The id of `text`, which must be exactly one token.

    Raises:
        DataError: empty or more than one token (the message shows the pieces).
    """
    if not text:
        raise DataError(f"the {what} is empty: type one token")
    ids = [int(i) for i in tokenizer.encode(text)]
    if len(ids) != 1:
        from attnlab.app.generation import token_labels

        pieces = " | ".join(token_labels(tokenizer, ids[:8])) + (" | ..." if len(ids) > 8 else "")
        raise DataError(
            f"the {what} {text!r} is {len(ids)} tokens with this model's tokenizer ({pieces}); type a single token"
        )
    return ids[0]


def top_prediction(model: Any, ids: Sequence[int]) -> int:
    """The model's most likely next token after `ids`."""
    import torch

    from attnlab.interp.patching import model_logits

    device = next(model.parameters()).device
    with torch.no_grad():
        logits = model_logits(model, torch.tensor([list(ids)], device=device))
    return int(logits[0, -1].argmax())


def default_answers(model: Any, clean_ids: Sequence[int], corrupted_ids: Sequence[int]) -> tuple[int, int, bool]:
    """The default answer and wrong token: the top predictions on the clean and on the corrupted prompt.

    When both are the same token (a barely trained model predicts a space everywhere), the
    wrong token is the corrupted prompt's most likely token other than the answer instead.

    Returns:
        (answer, wrong, whether the wrong token is that runner-up).
    """
    import torch

    from attnlab.interp.patching import model_logits

    device = next(model.parameters()).device
    with torch.no_grad():
        clean = model_logits(model, torch.tensor([list(clean_ids)], device=device))[0, -1]
        corrupted = model_logits(model, torch.tensor([list(corrupted_ids)], device=device))[0, -1]
    answer, wrong = int(clean.argmax()), int(corrupted.argmax())
    if wrong != answer:
        return answer, wrong, False
    return answer, int(corrupted.topk(2).indices[1]), True


def head_label(layer: int, head: int) -> str:
    return f"L{layer}H{head}"


# --- patching --------------------------------------------------------------------------------------------


@dataclass
class PatchingRun:
    """Both patching experiments of one clean / corrupted pair."""

    clean_ids: list[int]
    corrupted_ids: list[int]
    answer: int  # token id whose logit should win on the clean prompt
    wrong: int  # token id it competes with (the corrupted prompt's answer)
    residual: Any  # PatchingResult (L + 1, T): the residual stream at each layer and position
    heads: Any  # PatchingResult (L, H): each head's output at every position

    @property
    def clean_logit_diff(self) -> float:
        return float(self.residual.clean_logit_diff)

    @property
    def corrupted_logit_diff(self) -> float:
        return float(self.residual.corrupted_logit_diff)


def check_same_length(clean_ids: Sequence[int], corrupted_ids: Sequence[int]) -> None:
    """Raises DataError when the two prompts have different token counts (patching swaps position by position)."""
    if len(clean_ids) != len(corrupted_ids):
        raise DataError(
            f"the clean prompt has {len(clean_ids)} tokens and the corrupted prompt {len(corrupted_ids)}: patching "
            "copies activations position by position, so both need the same number of tokens; reword one of them"
        )


def run_patching(
    model: Any, tokenizer: Any, clean_ids: Sequence[int], corrupted_ids: Sequence[int], answer: int, wrong: int
) -> PatchingRun:
    """Residual-stream and per-head activation patching (clean -> corrupted) with the normalised logit difference.

    Raises:
        DataError: different token counts, or answer == wrong.
        ConfigError: both prompts give the same logit difference (nothing to restore).
    """
    import torch

    from attnlab.interp.patching import patch_heads, patch_residual

    check_same_length(clean_ids, corrupted_ids)
    if answer == wrong:
        raise DataError(
            "the answer and the wrong token are the same token, so their logit difference is always 0: "
            "pick a corruption that changes the model's prediction, or type two different tokens"
        )
    clean = torch.tensor([list(clean_ids)], dtype=torch.long)
    corrupted = torch.tensor([list(corrupted_ids)], dtype=torch.long)
    labels = [tokenizer.decode([int(i)]) for i in clean_ids]
    residual = patch_residual(model, clean, corrupted, answer, wrong, labels=labels)
    heads = patch_heads(model, clean, corrupted, answer, wrong)
    return PatchingRun(list(clean_ids), list(corrupted_ids), int(answer), int(wrong), residual, heads)


# --- ablation --------------------------------------------------------------------------------------------


@dataclass
class Reference:
    """The inputs a mean ablation averages over, and where they come from (one sentence for the page)."""

    ids: np.ndarray  # (B, T) token ids
    source: str


def reference_batch(
    model: Any, tokenizer: Any, data_source: Any, *, size: int = REFERENCE_SIZE, seed: int = 0
) -> Reference:
    """`size` windows of the model's context length for mean ablation.

    From the checkpoint's own training text when it is a corpus embedded in attnlab (read
    offline, evenly spaced windows); otherwise (a downloaded corpus, a file, unknown) random
    tokens of the vocabulary, seeded, because the app reads nothing outside the runs folder.
    """
    T = int(model.config.max_seq_len)
    vocab = int(model.config.vocab_size)
    name = str(data_source) if data_source else ""
    try:
        from attnlab.data import text as corpora

        corpus = corpora.CORPORA.get(corpora.ALIASES.get(name, name))
        if corpus is not None and corpus.loader is not None:
            text = corpus.loader()
            span = max(1, len(text) - 8 * T)
            rows = []
            for k in range(size):
                start = (k * span) // size
                ids = [int(i) for i in tokenizer.encode(text[start : start + 8 * T])]  # >= T tokens for any tokenizer
                if len(ids) >= T:
                    rows.append(ids[:T])
            if len(rows) == size:
                return Reference(
                    np.array(rows, dtype=np.int64),
                    f"{size} windows of {T} tokens of `{corpus.name}`, the text this checkpoint was trained on",
                )
    except (AttnlabError, OSError):
        pass  # the tokenizer cannot read it (or it is gone): fall back to random tokens
    rng = np.random.default_rng(seed)
    why = f"its training text `{name}` does not ship with attnlab" if name else "it does not say what it was trained on"
    return Reference(
        rng.integers(0, vocab, size=(size, T), dtype=np.int64),
        f"{size} sequences of {T} random tokens ({why})",
    )


@dataclass
class AblationRun:
    """The prompt with every head on and with the chosen heads off."""

    heads_off: list[tuple[int, int]]
    kind: str
    loss_on: float  # mean next-token loss on the prompt, every head on
    loss_off: float  # ... with `heads_off` ablated
    continuation_on: str  # greedy continuation, every head on
    continuation_off: str  # ... with `heads_off` ablated
    per_head: Any  # HeadLossChange: (L, H) loss change when each head alone is ablated


def _greedy(model: Any, ids: Sequence[int], max_new_tokens: int) -> list[int]:
    import torch

    from attnlab.configs.sampling import SamplingConfig
    from attnlab.decoding.causal import iter_generate

    device = next(model.parameters()).device
    x = torch.tensor([list(ids)], dtype=torch.long, device=device)
    sampling = SamplingConfig(max_new_tokens=int(max_new_tokens), temperature=0.0)
    return [step.token_id for _, step in iter_generate(model, x, sampling)]


def run_ablation(
    model: Any,
    tokenizer: Any,
    ids: Sequence[int],
    heads_off: Sequence[tuple[int, int]],
    kind: str,
    reference: np.ndarray | None,
    max_new_tokens: int,
) -> AblationRun:
    """Loss on `ids` and a greedy continuation, with every head on and with `heads_off` ablated.

    Args:
        ids: the prompt (T >= 2 tokens, T <= the context).
        heads_off: (layer, head) pairs to switch off (may be empty: both sides then agree).
        kind: "zero" or "mean" (`ABLATION_KINDS`).
        reference: (B, T') ids the mean is taken over (needed for "mean").
        max_new_tokens: length of both greedy continuations.
    Raises:
        DataError: a prompt of one token, or an unsupported kind.
    """
    import torch

    from attnlab.interp.ablation import head_ablation_hooks
    from attnlab.interp.attribution import lm_loss, loss_change_per_head
    from attnlab.interp.hooks import hooks, run_with_hooks

    if kind not in ABLATION_KINDS:
        raise DataError(f"ablation {kind!r} is not offered here; choose one of: {', '.join(ABLATION_KINDS)}")
    if len(ids) < 2:
        raise DataError("the prompt is 1 token long: the loss scores each next token, so type at least 2 tokens")
    device = next(model.parameters()).device
    x = torch.tensor([list(ids)], dtype=torch.long, device=device)
    ref = None if reference is None else torch.as_tensor(reference, dtype=torch.long, device=device)
    heads_off = [(int(layer), int(head)) for layer, head in heads_off]
    with torch.no_grad():
        loss_on = float(lm_loss(run_with_hooks(model, x), x))
        new_on = _greedy(model, ids, max_new_tokens)
        if heads_off:
            fwd = head_ablation_hooks(model, heads_off, kind=kind, reference=ref)
            with hooks(model, fwd):
                loss_off = float(lm_loss(run_with_hooks(model, x), x))
                new_off = _greedy(model, ids, max_new_tokens)
        else:
            loss_off, new_off = loss_on, new_on
        per_head = loss_change_per_head(model, x, kind, reference=ref)
    return AblationRun(
        heads_off, kind, loss_on, loss_off, tokenizer.decode(new_on), tokenizer.decode(new_off), per_head
    )


__all__ = [
    "ABLATION_KINDS",
    "AblationRun",
    "MAX_NEW_TOKENS",
    "PatchingRun",
    "REFERENCE_SIZE",
    "Reference",
    "check_same_length",
    "default_answers",
    "head_label",
    "prompt_ids",
    "reference_batch",
    "run_ablation",
    "run_patching",
    "single_token",
    "top_prediction",
]

"""Decoding an encoder-decoder: greedy decoding and beam search.

Both run the encoder once, then feed the decoder its own tokens back one at a time from
`<bos>`, reusing a KV cache (`use_cache=False` recomputes the whole prefix every step and
gives the same tokens): the self-attention keys/values grow a step at a time, the
cross-attention ones are computed once from the encoder output.

  * greedy: the most likely token at every step;
  * beam search (the classic form, e.g. Sutskever et al. 2014, Wu et al. 2016 for the
    length penalty): keep the `beam_width` best hypotheses; at each step every
    unfinished one is extended by every token, a finished one (it produced `<eos>`)
    competes as it is, and the `beam_width` best of all these survive; stop when all
    survivors are finished. Hypotheses are ranked by log P(y | x) / length**alpha
    (`length_penalty` alpha; 0 = plain log-probability; > 0 favours longer outputs).
    With `beam_width=1` it is exactly greedy decoding. A wider beam usually finds a
    more likely sequence than greedy decoding, but not always: it is a search
    heuristic, not an exact maximiser.

The model is anything meeting `attnlab.decoding.protocol.Seq2SeqLM`, e.g.
`attnlab.models.seq2seq.Seq2Seq` or the recurrent `attnlab.models.rnn_seq2seq.RNNSeq2Seq`
(whose `generate` methods call `generate` here).

Notation: B batch, S source length, V vocabulary, K beam width, N = B * K rows.
"""

from __future__ import annotations

import dataclasses
import math
from dataclasses import dataclass
from typing import Any

import torch
from torch import Tensor

from attnlab.decoding.protocol import DecodingCache, Seq2SeqLM
from attnlab.errors import ConfigError


@dataclass
class Generation:
    """Decoded outputs. Sequences hold the generated tokens only (no `<bos>`), up to and
    including `<eos>`, then `pad_id`."""

    sequences: Tensor  # (B, L) the chosen output of each source
    scores: Tensor  # (B,) its log-probability log P(y | x), `<eos>` included
    lengths: Tensor  # (B,) generated tokens, `<eos>` included
    finished: Tensor  # (B,) bool: produced `<eos>` within max_new_tokens
    beams: Tensor | None = None  # (B, K, L) every final hypothesis, best first (beam search)
    beam_scores: Tensor | None = None  # (B, K) their log-probabilities
    beam_ranking: Tensor | None = None  # (B, K) the ranking key: log-prob / length**length_penalty


def _check_decoding_args(model: Seq2SeqLM, input_ids: Tensor, max_new_tokens: int | None) -> int:
    if input_ids.dim() != 2 or input_ids.size(1) < 1:
        raise ValueError("input_ids must be (batch, source_len) with at least one token")
    limit = model.config.max_target_len
    if model.config.positional not in ("learned", "sinusoidal", "fourier"):
        limit = max(limit, max_new_tokens or 0)
    if max_new_tokens is None:
        return limit
    if max_new_tokens < 1:
        raise ConfigError(f"max_new_tokens must be at least 1, got {max_new_tokens}")
    if max_new_tokens > limit:
        raise ConfigError(
            f"max_new_tokens ({max_new_tokens}) exceeds what the decoder can hold (model.max_target_len = {limit})"
        )
    return max_new_tokens


def _step_logits(model: Seq2SeqLM, tokens: Tensor, encoder_output: Any, cache: DecodingCache | None) -> Tensor:
    """(N, t) tokens so far -> (N, V) float log-probabilities of the next token."""
    if cache is not None:
        inp = tokens if cache.length == 0 else tokens[:, -1:]  # feed only what the cache lacks
    else:
        inp = tokens  # recompute the whole prefix
    logits = model.decode(inp, encoder_output, cache=cache, last_only=True).logits[:, -1, :]
    return torch.log_softmax(logits.float(), dim=-1)


def _select_rows(encoder_output: Any, index: Tensor) -> Any:
    """The rows `index` of an encoder output (the same dataclass), without its optional internals.

    Every tensor field is batch-first and is selected (`last_hidden_state`, `attention_mask`,
    and e.g. a recurrent encoder's final state); `hidden_states` / `attentions` are dropped.
    """
    changes: dict[str, Any] = {}
    for f in dataclasses.fields(encoder_output):
        value = getattr(encoder_output, f.name)
        if f.name in ("hidden_states", "attentions"):
            changes[f.name] = None  # not needed to decode
        elif isinstance(value, Tensor):
            changes[f.name] = value.index_select(0, index)
    return dataclasses.replace(encoder_output, **changes)


@torch.no_grad()
def greedy_decode(
    model: Seq2SeqLM,
    input_ids: Tensor,
    attention_mask: Tensor | None = None,
    *,
    max_new_tokens: int | None = None,
    use_cache: bool = True,
) -> Generation:
    """Pick the most likely next token until every row has produced `<eos>`.

    Args:
        model: a `Seq2Seq` (any `Seq2SeqLM`) in eval mode.
        input_ids: (B, S) source ids (padded with `pad_id`).
        attention_mask: (B, S) source mask (default `input_ids != pad_id`).
        max_new_tokens: most tokens to generate (default: the decoder's max_target_len).
        use_cache: reuse keys/values of earlier steps (same tokens as recomputing).
    Returns:
        `Generation` with (B, L) sequences and their log-probabilities.
    """
    c = model.config
    max_new = _check_decoding_args(model, input_ids, max_new_tokens)
    B = input_ids.size(0)
    enc = model.encode(input_ids, attention_mask)
    cache = model.new_cache() if use_cache else None
    tokens = input_ids.new_full((B, 1), c.bos_id)  # (B, 1) the decoder starts from <bos>
    scores = torch.zeros(B, device=input_ids.device)
    lengths = torch.zeros(B, dtype=torch.long, device=input_ids.device)
    finished = torch.zeros(B, dtype=torch.bool, device=input_ids.device)
    for _ in range(max_new):
        logp = _step_logits(model, tokens, enc, cache)  # (B, V)
        best_logp, nxt = logp.max(dim=-1)  # (B,), (B,)
        nxt = nxt.masked_fill(finished, c.pad_id)  # finished rows only pad
        scores += best_logp.masked_fill(finished, 0.0)
        lengths += (~finished).long()
        finished |= nxt == c.eos_id
        tokens = torch.cat([tokens, nxt[:, None]], dim=1)
        if bool(finished.all()):
            break
    return Generation(tokens[:, 1:], scores, lengths, finished)


@torch.no_grad()
def beam_search(
    model: Seq2SeqLM,
    input_ids: Tensor,
    attention_mask: Tensor | None = None,
    *,
    beam_width: int = 4,
    max_new_tokens: int | None = None,
    length_penalty: float = 1.0,
    use_cache: bool = True,
) -> Generation:
    """Beam search: keep the `beam_width` best hypotheses per source (see the module doc).

    Args:
        model: a `Seq2Seq` (any `Seq2SeqLM`) in eval mode.
        input_ids: (B, S) source ids.
        attention_mask: (B, S) source mask (default `input_ids != pad_id`).
        beam_width: K, hypotheses kept per source (1 = greedy).
        max_new_tokens: most tokens to generate (default: the decoder's max_target_len).
        length_penalty: alpha in the ranking key log P / length**alpha (0 = plain
            log-probability; > 0 favours longer outputs).
        use_cache: reuse keys/values of earlier steps; the cache rows follow their beams.
    Returns:
        `Generation`: the best hypothesis per source, and all K in `beams`.
    """
    c = model.config
    if beam_width < 1:
        raise ConfigError(f"beam_width must be at least 1, got {beam_width}")
    if not math.isfinite(length_penalty):
        raise ConfigError(f"length_penalty must be a finite number, got {length_penalty}")
    max_new = _check_decoding_args(model, input_ids, max_new_tokens)
    B, K, V = input_ids.size(0), beam_width, c.vocab_size
    device = input_ids.device
    enc = model.encode(input_ids, attention_mask)
    enc = _select_rows(enc, torch.arange(B, device=device).repeat_interleave(K))  # (B*K, S, C): K copies per source
    cache = model.new_cache() if use_cache else None

    tokens = input_ids.new_full((B * K, 1), c.bos_id)  # (B*K, 1), row b*K + k is beam k of source b
    scores = torch.zeros(B, K, device=device)
    scores[:, 1:] = float("-inf")  # all beams start identical: let only beam 0 expand at first
    lengths = torch.zeros(B, K, dtype=torch.long, device=device)
    finished = torch.zeros(B, K, dtype=torch.bool, device=device)
    finished[:, 1:] = True  # the -inf duplicates are dead (finished with score -inf)
    alpha = length_penalty

    def ranking(score: Tensor, length: Tensor) -> Tensor:
        return score / length.clamp(min=1).to(score.dtype) ** alpha

    for _ in range(max_new):
        logp = _step_logits(model, tokens, enc, cache).view(B, K, V)
        # candidates: every unfinished beam extended by every token ...
        cand = scores[:, :, None] + logp  # (B, K, V)
        cand_len = (lengths + 1)[:, :, None].expand(B, K, V)
        # ... and every finished beam as it is (it "extends" with padding, at no cost)
        frozen = torch.full_like(cand, float("-inf"))
        frozen[:, :, c.pad_id] = scores
        cand = torch.where(finished[:, :, None], frozen, cand)
        cand_len = torch.where(finished[:, :, None], lengths[:, :, None].expand(B, K, V), cand_len)
        key = ranking(cand, cand_len).view(B, K * V)
        key = key.nan_to_num(float("-inf"))  # -inf / len**alpha stays -inf
        _, flat = key.topk(K, dim=-1)  # (B, K) best K candidates per source
        beam, token = flat // V, flat % V  # which parent beam, which new token
        scores = cand.view(B, K * V).gather(1, flat)
        lengths = cand_len.reshape(B, K * V).gather(1, flat)
        finished = finished.gather(1, beam) | (token == c.eos_id) | torch.isinf(scores)
        rows = (torch.arange(B, device=device)[:, None] * K + beam).view(-1)  # (B*K,) parent rows
        tokens = torch.cat([tokens.index_select(0, rows), token.view(-1, 1)], dim=1)
        if cache is not None:
            cache.reorder(rows)  # each surviving beam continues from its parent's keys/values
        if bool(finished.all()):
            break

    # the best hypothesis first; unfinished ones (max_new_tokens reached) compete as they are
    key = ranking(scores, lengths).nan_to_num(float("-inf"))
    order = key.argsort(dim=-1, descending=True)  # (B, K)
    beams = tokens[:, 1:].view(B, K, -1)
    beams = beams.gather(1, order[:, :, None].expand_as(beams))
    scores, lengths, key = scores.gather(1, order), lengths.gather(1, order), key.gather(1, order)
    done = (beams == c.eos_id).any(dim=-1)  # (B, K) produced <eos> (dead -inf beams count as not)
    return Generation(
        sequences=beams[:, 0],
        scores=scores[:, 0],
        lengths=lengths[:, 0],
        finished=done[:, 0],
        beams=beams,
        beam_scores=scores,
        beam_ranking=key,
    )


@torch.no_grad()
def generate(
    model: Seq2SeqLM,
    input_ids: Tensor,
    attention_mask: Tensor | None = None,
    *,
    beam_width: int = 1,
    max_new_tokens: int | None = None,
    length_penalty: float = 1.0,
    use_cache: bool = True,
) -> Generation:
    """Greedy (`beam_width=1`) or beam-search decoding; see `greedy_decode` / `beam_search`."""
    if beam_width == 1:
        return greedy_decode(model, input_ids, attention_mask, max_new_tokens=max_new_tokens, use_cache=use_cache)
    return beam_search(
        model,
        input_ids,
        attention_mask,
        beam_width=beam_width,
        max_new_tokens=max_new_tokens,
        length_penalty=length_penalty,
        use_cache=use_cache,
    )


__all__ = ["Generation", "beam_search", "generate", "greedy_decode"]

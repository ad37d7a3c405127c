"""Looking inside a GPT's blocks: the logit lens and the effect of each sub-layer.

* Logit lens (nostalgebraist 2020, "interpreting GPT: the logit lens"; Belrose et al.
  2023 "Eliciting Latent Predictions from Transformers with the Tuned Lens"): the
  residual stream after every block is pushed through the model's own final LayerNorm
  and output head, as if the network stopped there. Row 0 reads the embeddings, row L
  the last block's output, where the lens gives exactly the model's prediction. How
  early the final answer appears shows how the prediction is built up layer by layer.
* Sub-layer effects: one forward with `trace=[...]` (see `attnlab.nn.block`) gives, per
  block, the attention branch output `a`, the stream after it, the feed-forward branch
  output `f` and the block output. From them: the size (L2 norm, mean over tokens) of
  the stream entering the block, of what attention adds, of the residual sum, of the
  LayerNorm output that feeds each branch, of what the feed-forward adds, and of the
  block output; the relative update ||branch|| / ||stream|| and the cosine between the
  stream before and after each sub-layer (near 1: the sub-layer only nudges it).
  Pre-norm (GPT-2): x -> x + attn(LN1(x)) -> h + ff(LN2(h)). Post-norm (original
  transformer): x -> LN1(x + attn(x)) -> LN2(h + ff(h)); the same quantities apply,
  with each LayerNorm reading the residual sum instead of the branch input.

Both work on any causal LM of the registry (`attnlab.models.gpt.GPT`, the LLaMA-style model,
...) in eval mode; the numbers are plain NumPy.

Notation: L layers (blocks), T tokens, C channels, V vocabulary, k top tokens.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from attnlab.errors import ConfigError, DataError


def _ids_tensor(model: Any, input_ids: Any):
    import torch

    ids = torch.as_tensor(input_ids, dtype=torch.long, device=next(model.parameters()).device)
    if ids.dim() == 1:
        ids = ids[None]
    if ids.dim() != 2 or ids.size(0) != 1 or ids.size(1) < 1:
        raise DataError("give one sequence of at least one token ids, shaped (T,) or (1, T)")
    if ids.size(1) > model.config.max_seq_len:
        raise DataError(
            f"the text is {ids.size(1)} tokens long but the model's context is {model.config.max_seq_len}; shorten it"
        )
    return ids


def _check_gpt(model: Any) -> None:
    from attnlab.models import registry

    if not registry.has_capability(model, "causal_lm") or not hasattr(model, "lm_head"):
        raise ConfigError(
            f"the logit lens and sub-layer effects need a GPT (a causal language model: "
            f"{', '.join(registry.model_types('causal_lm'))}), got a "
            f"{getattr(model, 'model_type', type(model).__name__)} model"
        )


# ---------------------------------------------------------------------------
# Logit lens
# ---------------------------------------------------------------------------


@dataclass
class LogitLens:
    """What each layer would predict at each position (row 0 = embeddings, row L = output)."""

    top_ids: np.ndarray  # (L + 1, T, k) most likely next-token ids per layer and position
    top_probs: np.ndarray  # (L + 1, T, k) their probabilities
    final_prob: np.ndarray  # (L + 1, T) probability each layer gives to the model's final top-1 token
    entropy: np.ndarray  # (L + 1, T) entropy (nats) of each layer's next-token distribution
    layer_names: list[str]  # L + 1 row names: "embeddings", "block 0", ...

    @property
    def num_rows(self) -> int:
        """L + 1."""
        return self.top_ids.shape[0]


def logit_lens(model: Any, input_ids: Any, *, k: int = 5) -> LogitLens:
    """Apply the final norm and output head to the residual stream after every block.

    Args:
        model: an attnlab GPT in eval mode.
        input_ids: (T,) or (1, T) token ids (T <= max_seq_len).
        k: how many top tokens to keep per layer and position.
    Returns:
        `LogitLens`; its last row equals the model's own softmax(logits).
    """
    import torch

    _check_gpt(model)
    if not 1 <= k <= model.config.vocab_size:
        raise ConfigError(f"k must be between 1 and the vocabulary size {model.config.vocab_size}, got {k}")
    ids = _ids_tensor(model, input_ids)
    trace: list[dict[str, Any]] = []
    with torch.no_grad():
        out = model(ids, output_hidden_states=True, trace=trace)
        # hidden_states[i] (i < L) is the input of block i: row 0 the embeddings, then
        # each block's output; the last block's raw output is in its trace (the model's
        # last hidden state is already normalised).
        streams = [*out.hidden_states[:-1], trace[-1]["after_ff"]]  # L + 1 x (1, T, C)
        logits = torch.stack([model.lm_head(model.norm(s))[0] for s in streams]).float()  # (L + 1, T, V)
        probs = torch.softmax(logits, dim=-1)
        top = torch.topk(probs, k, dim=-1)
        final_top1 = probs[-1].argmax(-1)  # (T,)
        final_prob = probs.gather(-1, final_top1[None, :, None].expand(probs.size(0), -1, 1))[..., 0]  # (L + 1, T)
        entropy = -(probs * torch.log(probs.clamp_min(1e-30))).sum(-1)
    names = ["embeddings"] + [f"block {i}" for i in range(len(streams) - 1)]
    return LogitLens(
        top_ids=top.indices.cpu().numpy(),
        top_probs=top.values.cpu().numpy(),
        final_prob=final_prob.cpu().numpy(),
        entropy=entropy.cpu().numpy(),
        layer_names=names,
    )


# ---------------------------------------------------------------------------
# Sub-layer effects
# ---------------------------------------------------------------------------

SUBLAYER_QUANTITIES = (
    ("stream_in", "stream entering the block"),
    ("norm1", "LayerNorm before / after attention"),
    ("attn_out", "attention output (what it adds)"),
    ("residual_attn", "stream + attention"),
    ("norm2", "LayerNorm before / after feed-forward"),
    ("ff_out", "feed-forward output (what it adds)"),
    ("residual_ff", "stream + feed-forward"),
    ("stream_out", "stream leaving the block"),
)


@dataclass
class SublayerEffects:
    """Per block (L entries each), mean over tokens of L2 norms and of update measures."""

    norms: dict[str, np.ndarray]  # quantity (SUBLAYER_QUANTITIES keys) -> (L,) mean L2 norm over tokens
    attn_update: np.ndarray  # (L,) mean ||attention output|| / ||stream entering the block||
    ff_update: np.ndarray  # (L,) mean ||feed-forward output|| / ||stream after attention||
    attn_cosine: np.ndarray  # (L,) mean cosine(stream before, stream after the attention sub-layer)
    ff_cosine: np.ndarray  # (L,) mean cosine(stream before, stream after the feed-forward sub-layer)
    norm_first: bool  # pre-norm (True) or post-norm blocks

    @property
    def num_layers(self) -> int:
        """L."""
        return len(self.attn_update)

    def rows(self) -> list[dict[str, float]]:
        """One JSON-ready dict per block (for tables)."""
        out = []
        for i in range(self.num_layers):
            row: dict[str, float] = {"block": i}
            row.update({name: float(v[i]) for name, v in self.norms.items()})
            row.update(
                attn_update=float(self.attn_update[i]),
                ff_update=float(self.ff_update[i]),
                attn_cosine=float(self.attn_cosine[i]),
                ff_cosine=float(self.ff_cosine[i]),
            )
            out.append(row)
        return out


def _norm(x: Any) -> np.ndarray:
    return x[0].double().norm(dim=-1).cpu().numpy()  # (T,)


def _cos(a: Any, b: Any) -> np.ndarray:
    import torch

    return torch.nn.functional.cosine_similarity(a[0].double(), b[0].double(), dim=-1).cpu().numpy()  # (T,)


def sublayer_effects(model: Any, input_ids: Any) -> SublayerEffects:
    """How much each sub-layer (attention, feed-forward, residual, LayerNorm) changes the stream.

    Args:
        model: an attnlab GPT in eval mode.
        input_ids: (T,) or (1, T) token ids.
    Returns:
        `SublayerEffects` with per-block means over the T tokens.
    """
    import torch

    _check_gpt(model)
    ids = _ids_tensor(model, input_ids)
    trace: list[dict[str, Any]] = []
    with torch.no_grad():
        out = model(ids, output_hidden_states=True, trace=trace)
        per: dict[str, list[float]] = {name: [] for name, _ in SUBLAYER_QUANTITIES}
        attn_update, ff_update, attn_cos, ff_cos = [], [], [], []
        for i, (block, t) in enumerate(zip(model.blocks, trace)):
            x = out.hidden_states[i]  # (1, T, C) stream entering block i
            a, h, f, y = t["attn_out"], t["after_attn"], t["ff_out"], t["after_ff"]
            residual_attn = x + a
            if block.norm_first:
                residual_ff = h + f  # == y
                norm1, norm2 = block.norm1(x), block.norm2(h)  # what the branches read
            else:
                residual_ff = h + f  # y = norm2(h + f)
                norm1, norm2 = h, y  # the norms read the residual sums
            values = dict(
                stream_in=x,
                norm1=norm1,
                attn_out=a,
                residual_attn=residual_attn,
                norm2=norm2,
                ff_out=f,
                residual_ff=residual_ff,
                stream_out=y,
            )
            for name, v in values.items():
                per[name].append(float(_norm(v).mean()))
            attn_update.append(float((_norm(a) / np.maximum(_norm(x), 1e-12)).mean()))
            ff_update.append(float((_norm(f) / np.maximum(_norm(h), 1e-12)).mean()))
            attn_cos.append(float(_cos(x, h).mean()))
            ff_cos.append(float(_cos(h, y).mean()))
    return SublayerEffects(
        norms={k: np.asarray(v) for k, v in per.items()},
        attn_update=np.asarray(attn_update),
        ff_update=np.asarray(ff_update),
        attn_cosine=np.asarray(attn_cos),
        ff_cosine=np.asarray(ff_cos),
        norm_first=bool(model.config.norm_first),
    )


def stream_norms(model: Any, input_ids: Any) -> np.ndarray:
    """(L + 1, T) L2 norm of every token's residual stream: embeddings, then after each block
    (the raw stream, before the final LayerNorm)."""
    import torch

    _check_gpt(model)
    ids = _ids_tensor(model, input_ids)
    trace: list[dict[str, Any]] = []
    with torch.no_grad():
        out = model(ids, output_hidden_states=True, trace=trace)
    streams: Sequence[Any] = [*out.hidden_states[:-1], trace[-1]["after_ff"]]
    return np.stack([_norm(s) for s in streams])


__all__ = ["LogitLens", "SUBLAYER_QUANTITIES", "SublayerEffects", "logit_lens", "stream_norms", "sublayer_effects"]

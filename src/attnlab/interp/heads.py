"""Attention-pattern statistics per head: what kind of head is it?

Each score is the mean, over the batch and the scored query positions, of how much
attention a head puts on one kind of key (Elhage et al. 2021; Olsson et al. 2022):

* previous-token: weight on position t-1 (queries t >= 1).
* first-token (sink): weight on position 0 (queries t >= 1; query 0 can only look at 0).
* duplicate-token: total weight on earlier positions holding the same token as the query
  (queries that have at least one earlier duplicate; 0 when no query has one).
* induction (prefix matching): on `ids` made of a sequence repeated twice, `[x, x]`
  with halves of length N, the weight from a query at t in the second half (t >= N)
  on the position t - N + 1, the token after the query token's first occurrence.
  Only meaningful for such ids (`repeated_random_tokens`); the other scores work on
  any ids.
* entropy: the entropy of each query's pattern in nats, averaged over queries.

Notation: B batch, T time (queries), S keys, L layers, H heads, N half length.
"""

from __future__ import annotations

from dataclasses import dataclass, fields
from typing import Any

import numpy as np
import torch
from torch import Tensor, nn

from attnlab.errors import ConfigError
from attnlab.interp.hooks import ActivationCache, run_with_cache

__all__ = [
    "HEAD_SCORES",
    "HeadScores",
    "head_scores",
    "pattern_scores",
    "repeated_random_tokens",
]

HEAD_SCORES = ("previous_token", "first_token", "duplicate_token", "induction", "entropy")


@dataclass
class HeadScores:
    """Per-head attention statistics, each an (L, H) numpy array (see the module docstring)."""

    previous_token: np.ndarray
    first_token: np.ndarray
    duplicate_token: np.ndarray
    induction: np.ndarray
    entropy: np.ndarray

    @property
    def layers(self) -> int:
        return int(self.previous_token.shape[0])

    @property
    def heads(self) -> int:
        return int(self.previous_token.shape[1])

    def as_dict(self) -> dict[str, np.ndarray]:
        """{score name: (L, H) array}."""
        return {f.name: getattr(self, f.name) for f in fields(self)}

    def to_rows(self) -> list[dict[str, Any]]:
        """Tidy rows, one per head: layer, head, and one column per score."""
        rows = []
        for layer in range(self.layers):
            for head in range(self.heads):
                row: dict[str, Any] = {"layer": layer, "head": head}
                row.update({name: float(arr[layer, head]) for name, arr in self.as_dict().items()})
                rows.append(row)
        return rows

    def top(self, score: str, k: int = 1) -> list[tuple[int, int, float]]:
        """The k heads with the highest `score`, as (layer, head, value), highest first."""
        if score not in HEAD_SCORES:
            raise ConfigError(f"unknown head score {score!r}; choose one of: {', '.join(HEAD_SCORES)}")
        arr = getattr(self, score)
        order = np.argsort(-arr, axis=None)[:k]
        return [(int(i // arr.shape[1]), int(i % arr.shape[1]), float(arr.flat[i])) for i in order]


def repeated_random_tokens(
    vocab_size: int, half_len: int, batch: int, seed: int = 0, *, generator: torch.Generator | None = None
) -> torch.LongTensor:
    """The standard induction probe: `batch` random sequences of `half_len` tokens, each repeated twice.

    Args:
        vocab_size: tokens are drawn uniformly from [0, vocab_size).
        half_len: N, the length of each half.
        batch: B.
        seed: seeds a fresh generator (ignored when `generator` is given).
        generator: a torch.Generator to draw from instead.
    Returns:
        (B, 2N) int64 ids with ids[:, N:] == ids[:, :N].
    """
    if vocab_size < 1 or half_len < 1 or batch < 1:
        raise ConfigError(
            f"repeated_random_tokens needs vocab_size, half_len and batch >= 1, got {vocab_size}, {half_len}, {batch}"
        )
    if generator is None:
        generator = torch.Generator().manual_seed(seed)
    half = torch.randint(0, vocab_size, (batch, half_len), generator=generator, dtype=torch.long)
    return torch.cat([half, half], dim=1)  # (B, 2N)


def pattern_scores(patterns: Tensor, ids: Tensor) -> HeadScores:
    """Head scores from attention patterns.

    Args:
        patterns: (L, B, H, T, T) attention weights (e.g. `cache.stack("attn.hook_pattern")`).
        ids: (B, T) the token ids they were computed on (for the induction score: [x, x]).
    Returns:
        `HeadScores` of (L, H) arrays.
    """
    if patterns.dim() != 5:
        raise ConfigError(f"patterns must be (L, B, H, T, S), got shape {tuple(patterns.shape)}")
    L, B, H, T, S = patterns.shape
    if ids.shape != (B, T) or S != T:
        raise ConfigError(f"ids {tuple(ids.shape)} do not match self-attention patterns {tuple(patterns.shape)}")
    p = patterns.detach().to(torch.float64).cpu()
    ids = ids.cpu()
    nan = np.full((L, H), np.nan)

    def over(values: Tensor) -> np.ndarray:  # (L, B, H, Q) -> mean over batch and queries -> (L, H)
        return values.mean(dim=(1, 3)).numpy() if values.numel() else nan.copy()

    t = torch.arange(T)
    previous = over(p[..., t[1:], t[:-1]]) if T > 1 else nan.copy()
    first = over(p[..., 1:, 0]) if T > 1 else nan.copy()

    # duplicate tokens: keys s < t with ids[s] == ids[t]
    same = (ids[:, :, None] == ids[:, None, :]) & (t[None, :] < t[:, None])[None]  # (B, T, S)
    on_dupes = (p * same[None, :, None].to(p.dtype)).sum(-1)  # (L, B, H, T)
    has = same.any(-1)  # (B, T) queries with an earlier duplicate
    if has.any():
        w = has[None, :, None].to(p.dtype)  # (1, B, 1, T)
        duplicate = ((on_dupes * w).sum(dim=(1, 3)) / w.sum(dim=(1, 3))).numpy()
    else:
        duplicate = np.zeros((L, H))

    # induction on [x, x]: from t in the second half to t - N + 1
    N = T // 2
    if T >= 2 and T % 2 == 0:
        q = torch.arange(N, T)
        induction = over(p[..., q, q - N + 1])
    else:
        induction = nan.copy()

    ent = -(p * torch.log(p.clamp_min(1e-30))).sum(-1)  # (L, B, H, T) nats
    entropy = ent.mean(dim=(1, 3)).numpy()
    return HeadScores(previous, first, duplicate, induction, entropy)


def head_scores(model: nn.Module | ActivationCache, ids: Tensor, **forward_kwargs: Any) -> HeadScores:
    """Every head's attention statistics on `ids`.

    Args:
        model: an attnlab model with self-attention blocks (`blocks.{l}.attn.hook_pattern`),
            or an `ActivationCache` holding those patterns for `ids`.
        ids: (B, T) or (T,) token ids. The induction score assumes `ids` is a sequence
            repeated twice, `[x, x]` (see `repeated_random_tokens`); the other scores do not.
        **forward_kwargs: passed to the model's forward.
    Returns:
        `HeadScores` with (L, H) arrays previous_token, first_token, duplicate_token, induction, entropy.
    """
    ids = torch.as_tensor(ids)
    if ids.dim() == 1:
        ids = ids[None]
    if isinstance(model, ActivationCache):
        cache = model
    else:
        device = next(model.parameters()).device
        with torch.no_grad():
            _, cache = run_with_cache(model, ids.to(device), names="blocks.*.attn.hook_pattern", **forward_kwargs)
    patterns = cache.stack("attn.hook_pattern")  # (L, B, H, T, T)
    return pattern_scores(patterns, ids)

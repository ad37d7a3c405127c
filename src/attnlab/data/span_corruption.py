"""Span corruption: T5's denoising objective (Raffel et al. 2020, sec. 3.1.4 and 3.3).

A share of each sequence's tokens (the *noise density*, 15%) is dropped in contiguous
spans whose mean length is `mean_span_length` (3). Every dropped span is replaced in the
input by one sentinel token (`<extra_id_0>`, `<extra_id_1>`, ... in order); the target
lists each sentinel followed by the tokens of the span it stands for:

    original  T h e _ c a t _ s a t _ o n
    input     T h e <s0> a t _ s <s1> o n          (the noise spans "_ c" and "a t _")
    target    <s0> _ c <s1> a t _

As in T5's `random_spans_noise_mask`, the number of noise tokens is exactly
round(length * noise_density) (at least 1 and at most length - 1), the number of spans
is round(noise tokens / mean_span_length) (at least 1), and the noise and the kept tokens
are each cut into that many non-empty runs at uniformly random places, then interleaved
(kept run, noise run, kept run, ...). So for a given length every sequence has the same
input and target length: batches need no padding.

`reconstruct` puts input and target back together (the test of the invariant).

Notation: T sequence length, N noise tokens, K spans.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from attnlab.errors import ConfigError

NOISE_DENSITY = 0.15  # T5's default share of dropped tokens
MEAN_SPAN_LENGTH = 3.0  # T5's default mean length of a dropped span


def span_counts(length: int, noise_density: float = NOISE_DENSITY, mean_span_length: float = MEAN_SPAN_LENGTH):
    """(noise tokens N, spans K) of a sequence of `length` tokens.

    Raises:
        ConfigError: a length below 2, a density outside (0, 1) or a mean span length below 1.
    """
    if isinstance(length, bool) or not isinstance(length, (int, np.integer)) or length < 2:
        raise ConfigError(f"span corruption needs sequences of at least 2 tokens, got {length!r}")
    if not 0.0 < float(noise_density) < 1.0:
        raise ConfigError(f"noise_density must be between 0 and 1 (T5: 0.15), got {noise_density!r}")
    if not float(mean_span_length) >= 1.0:
        raise ConfigError(f"mean_span_length must be at least 1 (T5: 3), got {mean_span_length!r}")
    noise = min(max(int(round(length * noise_density)), 1), length - 1)
    spans = max(1, int(round(noise / mean_span_length)))
    spans = min(spans, noise, length - noise)  # every noise and every kept run is non-empty
    return noise, spans


def _segment(total: int, parts: int, rng: np.random.Generator) -> np.ndarray:
    """`total` items cut into `parts` non-empty runs at uniformly random places: the run lengths."""
    cuts = np.sort(rng.choice(np.arange(1, total), size=parts - 1, replace=False)) if parts > 1 else np.array([], int)
    edges = np.concatenate([[0], cuts, [total]])
    return np.diff(edges)


def noise_mask(
    length: int,
    rng: np.random.Generator,
    noise_density: float = NOISE_DENSITY,
    mean_span_length: float = MEAN_SPAN_LENGTH,
) -> np.ndarray:
    """A (T,) boolean mask, True on the dropped tokens (T5's `random_spans_noise_mask`).

    The sequence starts with a kept run, so a noise span never starts at position 0.
    """
    noise, spans = span_counts(length, noise_density, mean_span_length)
    noise_runs = _segment(noise, spans, rng)  # (K,)
    kept_runs = _segment(length - noise, spans, rng)  # (K,)
    mask = np.zeros(length, dtype=bool)
    position = 0
    for kept, dropped in zip(kept_runs, noise_runs):
        position += int(kept)
        mask[position : position + int(dropped)] = True
        position += int(dropped)
    return mask


def corrupt_spans(
    ids: Sequence[int] | np.ndarray,
    rng: np.random.Generator,
    sentinel_ids: Sequence[int],
    *,
    noise_density: float = NOISE_DENSITY,
    mean_span_length: float = MEAN_SPAN_LENGTH,
    eos_id: int | None = None,
) -> tuple[np.ndarray, np.ndarray]:
    """Span-corrupt one sequence.

    Args:
        ids: (T,) token ids.
        rng: the generator the spans are drawn from (deterministic given its state).
        sentinel_ids: the sentinel tokens, used in order (at least K of them).
        noise_density: share of tokens dropped.
        mean_span_length: mean length of a dropped span.
        eos_id: appended to both input and target when given.
    Returns:
        (input ids (T - N + K [+1],), target ids (N + K [+1],)).
    Raises:
        ConfigError: fewer sentinels than spans.
    """
    ids = np.asarray(ids, dtype=np.int64)
    mask = noise_mask(len(ids), rng, noise_density, mean_span_length)
    starts = np.flatnonzero(mask & ~np.concatenate([[False], mask[:-1]]))  # (K,) first token of each span
    if len(starts) > len(sentinel_ids):
        raise ConfigError(f"span corruption drew {len(starts)} spans but only {len(sentinel_ids)} sentinel ids exist")
    sentinels = np.asarray(list(sentinel_ids)[: len(starts)], dtype=np.int64)
    span_index = np.cumsum(np.isin(np.arange(len(ids)), starts)) - 1  # (T,) which span a position belongs to
    inputs: list[int] = []
    targets: list[int] = []
    for t, token in enumerate(ids):
        if not mask[t]:
            inputs.append(int(token))
        elif t in starts:
            inputs.append(int(sentinels[span_index[t]]))
            targets += [int(sentinels[span_index[t]]), int(token)]
        else:
            targets.append(int(token))
    if eos_id is not None:
        inputs.append(eos_id)
        targets.append(eos_id)
    return np.asarray(inputs, dtype=np.int64), np.asarray(targets, dtype=np.int64)


def corrupt_batch(
    ids: np.ndarray,
    rng: np.random.Generator,
    sentinel_ids: Sequence[int],
    *,
    noise_density: float = NOISE_DENSITY,
    mean_span_length: float = MEAN_SPAN_LENGTH,
    eos_id: int | None = None,
) -> tuple[np.ndarray, np.ndarray]:
    """`corrupt_spans` of each row of a (B, T) batch: (inputs (B, S), targets (B, L)) (no padding needed)."""
    rows = [
        corrupt_spans(
            row, rng, sentinel_ids, noise_density=noise_density, mean_span_length=mean_span_length, eos_id=eos_id
        )
        for row in np.asarray(ids)
    ]
    return np.stack([r[0] for r in rows]), np.stack([r[1] for r in rows])


def reconstruct(
    inputs: Sequence[int] | np.ndarray,
    targets: Sequence[int] | np.ndarray,
    sentinel_ids: Sequence[int],
    eos_id: int | None = None,
) -> np.ndarray:
    """The original sequence from a corrupted input and its target (each sentinel -> its span).

    Raises:
        ValueError: a sentinel of the input that the target does not fill.
    """
    sentinels = {int(s) for s in sentinel_ids}
    inputs = [int(t) for t in inputs if eos_id is None or int(t) != eos_id]
    targets = [int(t) for t in targets if eos_id is None or int(t) != eos_id]
    spans: dict[int, list[int]] = {}
    current: int | None = None
    for token in targets:
        if token in sentinels:
            current = token
            spans[current] = []
        elif current is not None:
            spans[current].append(token)
    out: list[int] = []
    for token in inputs:
        if token in sentinels:
            if token not in spans:
                raise ValueError(f"sentinel {token} of the input has no span in the target")
            out += spans[token]
        else:
            out.append(token)
    return np.asarray(out, dtype=np.int64)


__all__ = [
    "MEAN_SPAN_LENGTH",
    "NOISE_DENSITY",
    "corrupt_batch",
    "corrupt_spans",
    "noise_mask",
    "reconstruct",
    "span_counts",
]

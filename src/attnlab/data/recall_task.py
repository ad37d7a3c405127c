"""A long-range recall task: remember one marked token across k steps of distractors.

Why it is here: it shows *why transformers replaced recurrent networks*. A recurrent
network must carry the marked token in its hidden state through every step until the
question comes, and the training signal must flow back through the same k steps
(Bengio, Simard & Frasconi 1994; Hochreiter & Schmidhuber 1997), so accuracy falls as
k grows - fast for a plain RNN, more slowly for LSTM/GRU. Self-attention looks at the
marked position directly, one step away whatever k is (Vaswani et al. 2017).
The task is a cousin of the "copy memory" and "adding" problems of Hochreiter &
Schmidhuber (1997) and Arjovsky et al. (2016), with the distance chosen per example so
that one trained model gives an accuracy-versus-distance curve.

One example (num_symbols S = 4, seq_len T = 8, distance k = 5):

    position   0  1  2  3  4  5  6  7
    tokens     2  0  6  3  1  0  2  8      6 = marked 2 (2 + S), 8 = QUERY (2 S)
    scored                           ^     target at position 7: 2
                     |<--- k = 5 --->|

Token ids: plain symbols 0..S-1 (distractors), marked symbols S..2S-1 (symbol + S;
exactly one per sequence, at position T-1-k), QUERY = 2S at the last position.
vocab_size = 2S + 1; the answer is a plain symbol, so a model needs S output classes
(or any larger head: target ids are < S). Only the last position is scored: `targets`
holds -100 (PyTorch's ignore_index) elsewhere and `mask` is True only there. Chance
accuracy is 1/S.

Sampling uses NumPy's `default_rng(seed)` (PCG64): the same seed gives the same
batches on every platform for a given NumPy version.

Notation: B batch, T time (seq_len), S num_symbols, k distance.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from typing import Any

import numpy as np

from attnlab.configs.base import IGNORE_INDEX  # target value that is not scored
from attnlab.errors import ConfigError, DataError

__all__ = ["IGNORE_INDEX", "RecallTaskConfig", "RecallTask", "SequenceBatch", "accuracy_by_distance"]


@dataclass(frozen=True)
class RecallTaskConfig:
    """Settings of the marked-token recall task."""

    num_symbols: int = 8  # alphabet size S for distractors and answers; chance accuracy is 1/S
    seq_len: int = 32  # tokens per sequence T, the final QUERY token included
    min_distance: int = 1  # smallest distance k from the marked token to the QUERY
    max_distance: int | None = None  # largest k; None = seq_len - 1 (marked token at position 0)

    def __post_init__(self) -> None:
        if self.num_symbols < 2:
            raise ConfigError(f"task.num_symbols must be at least 2, got {self.num_symbols}")
        if self.seq_len < 2:
            raise ConfigError(f"task.seq_len must be at least 2 (a marked token and the query), got {self.seq_len}")
        if not 1 <= self.min_distance <= self.seq_len - 1:
            raise ConfigError(
                f"task.min_distance must be between 1 and seq_len - 1 = {self.seq_len - 1}, got {self.min_distance}"
            )
        if self.max_distance is not None and not self.min_distance <= self.max_distance <= self.seq_len - 1:
            raise ConfigError(
                f"task.max_distance must be between min_distance ({self.min_distance}) and seq_len - 1 "
                f"({self.seq_len - 1}), got {self.max_distance}; raise seq_len for longer distances"
            )

    @property
    def longest_distance(self) -> int:
        """The largest distance sampled (`max_distance`, or seq_len - 1 when None)."""
        return self.max_distance if self.max_distance is not None else self.seq_len - 1


@dataclass(frozen=True, eq=False)
class SequenceBatch:
    """A batch of task sequences, as NumPy arrays (or torch tensors after `to_torch`)."""

    input_ids: Any  # (B, T) int64 token ids
    targets: Any  # (B, T) int64: the answer where scored, IGNORE_INDEX (-100) elsewhere
    mask: Any  # (B, T) bool: True at the scored positions (here: the last one)
    distances: Any  # (B,) int64: distance k between the marked token and the query

    def __len__(self) -> int:
        return len(self.input_ids)

    @property
    def answers(self) -> Any:
        """(B,) the answer of each example (the target at its query position)."""
        return self.targets[:, -1]

    def to_torch(self, device: Any = "cpu") -> SequenceBatch:
        """The same batch with torch tensors on `device` (int64 ids and targets, bool mask)."""
        import torch

        return SequenceBatch(
            *(torch.as_tensor(np.asarray(getattr(self, f.name))).to(device) for f in dataclasses.fields(self))
        )

    def model_inputs(self) -> dict[str, Any]:
        """Keyword arguments for a model's forward: `input_ids` and `targets`."""
        return {"input_ids": self.input_ids, "targets": self.targets}


class RecallTask:
    """Generator of marked-token recall sequences (see the module docstring).

    Args:
        config: a `RecallTaskConfig`; keyword overrides build or modify one.

    Example:
        >>> task = RecallTask(num_symbols=8, seq_len=32)
        >>> batch = task.sample(64, seed=0)                 # distances uniform in [1, 31]
        >>> probe = task.evaluation_set(per_distance=100)   # 100 examples at every distance
    """

    def __init__(self, config: RecallTaskConfig | None = None, **overrides: Any):
        config = config or RecallTaskConfig()
        self.config = dataclasses.replace(config, **overrides) if overrides else config

    @property
    def num_symbols(self) -> int:
        """Alphabet size S."""
        return self.config.num_symbols

    @property
    def vocab_size(self) -> int:
        """Number of input token ids: S plain + S marked + 1 QUERY."""
        return 2 * self.num_symbols + 1

    @property
    def num_classes(self) -> int:
        """Number of possible answers (S)."""
        return self.num_symbols

    @property
    def query_token(self) -> int:
        """Id of the QUERY token (2S)."""
        return 2 * self.num_symbols

    @property
    def distances(self) -> np.ndarray:
        """All distances the task samples from, ascending."""
        return np.arange(self.config.min_distance, self.config.longest_distance + 1)

    @property
    def chance_accuracy(self) -> float:
        """Accuracy of guessing (1/S)."""
        return 1.0 / self.num_symbols

    def sample(
        self,
        batch_size: int,
        seed: int | np.random.Generator = 0,
        *,
        distances: int | Iterable[int] | None = None,
    ) -> SequenceBatch:
        """Draw a batch.

        Args:
            batch_size: number of sequences B.
            seed: an int seed or a NumPy Generator (pass one Generator to draw many batches).
            distances: the distance k of every example: one int for all, B ints, or None
                for uniform in [min_distance, longest_distance].
        Returns:
            A `SequenceBatch` of NumPy arrays: input_ids (B, T), targets (B, T), mask (B, T), distances (B,).
        """
        if batch_size < 1:
            raise ConfigError(f"batch_size must be at least 1, got {batch_size}")
        rng = seed if isinstance(seed, np.random.Generator) else np.random.default_rng(seed)
        S, T = self.num_symbols, self.config.seq_len
        tokens = rng.integers(0, S, size=(batch_size, T), dtype=np.int64)  # distractors
        if distances is None:
            k = rng.integers(
                self.config.min_distance, self.config.longest_distance + 1, size=batch_size, dtype=np.int64
            )
        else:
            k = np.broadcast_to(np.asarray(distances, dtype=np.int64), (batch_size,)).copy()
            bad = k[(k < 1) | (k > T - 1)]
            if bad.size:
                raise DataError(
                    f"distance {int(bad[0])} is impossible in sequences of {T} tokens; use 1 to {T - 1} "
                    "(or a longer task.seq_len)"
                )
        rows = np.arange(batch_size)
        marked_position = T - 1 - k  # (B,)
        answers = tokens[rows, marked_position].copy()
        tokens[rows, marked_position] += S  # the marked copy of the symbol
        tokens[:, -1] = self.query_token
        targets = np.full((batch_size, T), IGNORE_INDEX, dtype=np.int64)
        targets[:, -1] = answers
        return SequenceBatch(input_ids=tokens, targets=targets, mask=targets != IGNORE_INDEX, distances=k)

    def batches(self, batch_size: int, seed: int = 0) -> Iterator[SequenceBatch]:
        """An endless stream of training batches from one seeded generator."""
        rng = np.random.default_rng(seed)
        while True:
            yield self.sample(batch_size, rng)

    def evaluation_set(
        self, per_distance: int, distances: Iterable[int] | None = None, seed: int = 12345
    ) -> SequenceBatch:
        """A fixed probe set with `per_distance` examples at each distance (for accuracy vs k).

        Args:
            per_distance: examples at each distance.
            distances: which distances; default all of `self.distances`.
            seed: kept apart from the default training seed (0).
        Returns:
            A `SequenceBatch` of len(distances) * per_distance examples, grouped by distance.
        """
        ks = np.asarray(list(distances) if distances is not None else self.distances, dtype=np.int64)
        if per_distance < 1 or ks.size == 0:
            raise ConfigError("evaluation_set needs per_distance >= 1 and at least one distance")
        return self.sample(len(ks) * per_distance, seed, distances=np.repeat(ks, per_distance))

    def decode(self, input_ids: Iterable[int]) -> str:
        """Readable form of one sequence: plain symbols as digits/letters, the marked one
        in brackets, the query as `?`; e.g. `2 0 [2] 3 1 0 2 ?`."""
        S = self.num_symbols
        out = []
        for t in (int(x) for x in input_ids):
            if t == self.query_token:
                out.append("?")
            elif S <= t < 2 * S:
                out.append(f"[{t - S}]")
            elif 0 <= t < S:
                out.append(str(t))
            else:
                raise DataError(f"token id {t} is not in this task's vocabulary of {self.vocab_size}")
        return " ".join(out)


def accuracy_by_distance(predictions: Any, batch: SequenceBatch) -> dict[int, float]:
    """Accuracy at the scored positions, grouped by distance k.

    Args:
        predictions: (B, T) predicted class ids, or (B, T, K) scores/logits (argmax is
            taken); NumPy arrays or torch tensors.
        batch: the batch the predictions are for.
    Returns:
        {k: accuracy in [0, 1]} for every distance present in the batch, ascending.
    """
    predicted = _to_numpy(predictions)
    if predicted.ndim == 3:
        predicted = predicted.argmax(-1)
    targets, mask, distances = (_to_numpy(x) for x in (batch.targets, batch.mask, batch.distances))
    if predicted.shape != targets.shape:
        raise DataError(f"predictions of shape {predicted.shape} do not match targets of shape {targets.shape}")
    correct = (predicted == targets) & mask  # (B, T)
    per_example = correct.sum(1) / np.maximum(mask.sum(1), 1)  # (B,)
    return {int(k): float(per_example[distances == k].mean()) for k in np.unique(distances)}


def _to_numpy(x: Any) -> np.ndarray:
    if hasattr(x, "detach"):  # torch tensor
        return x.detach().cpu().numpy()
    return np.asarray(x)

"""Tests for attnlab.data.recall_task: the marked-token recall task."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from attnlab.data.recall_task import IGNORE_INDEX, RecallTask, RecallTaskConfig, SequenceBatch, accuracy_by_distance
from attnlab.errors import ConfigError, DataError


def test_vocabulary_layout():
    task = RecallTask(num_symbols=5, seq_len=10)
    assert (task.vocab_size, task.num_classes, task.query_token) == (11, 5, 10)
    assert task.chance_accuracy == pytest.approx(0.2)
    np.testing.assert_array_equal(task.distances, np.arange(1, 10))


def test_same_seed_same_batch_and_different_seed_differs():
    task = RecallTask(num_symbols=6, seq_len=20)
    a, b, c = task.sample(32, seed=7), task.sample(32, seed=7), task.sample(32, seed=8)
    for name in ("input_ids", "targets", "mask", "distances"):
        np.testing.assert_array_equal(getattr(a, name), getattr(b, name))
    assert not np.array_equal(a.input_ids, c.input_ids)
    stream1, stream2 = task.batches(8, seed=3), task.batches(8, seed=3)
    for _ in range(3):
        np.testing.assert_array_equal(next(stream1).input_ids, next(stream2).input_ids)
    first, second = task.batches(8, seed=3), task.batches(8, seed=3)
    next(second)
    assert not np.array_equal(next(first).input_ids, next(second).input_ids)  # a stream moves on


def test_the_answer_is_exactly_k_steps_before_the_query():
    S, T = 7, 25
    task = RecallTask(num_symbols=S, seq_len=T, min_distance=3, max_distance=20)
    batch = task.sample(500, seed=0)
    ids, targets, mask, k = batch.input_ids, batch.targets, batch.mask, batch.distances
    assert ids.shape == targets.shape == mask.shape == (500, T) and k.shape == (500,)
    assert ids.dtype == targets.dtype == k.dtype == np.int64 and mask.dtype == bool
    assert k.min() >= 3 and k.max() <= 20 and len(np.unique(k)) > 10
    assert np.all(ids[:, -1] == task.query_token)
    marked = (ids >= S) & (ids < 2 * S)
    assert np.all(marked.sum(1) == 1)  # exactly one marked token a sequence
    marked_position = marked.argmax(1)
    np.testing.assert_array_equal(T - 1 - marked_position, k)  # ... k steps before the query
    rows = np.arange(500)
    np.testing.assert_array_equal(ids[rows, marked_position] - S, targets[:, -1])  # it is the answer
    np.testing.assert_array_equal(batch.answers, targets[:, -1])
    # Only the query is scored; everything else is ignored.
    assert np.all(mask[:, -1]) and not mask[:, :-1].any()
    assert np.all(targets[:, :-1] == IGNORE_INDEX)
    assert np.all((targets[:, -1] >= 0) & (targets[:, -1] < S))
    # Distractors are plain symbols.
    distractors = ids[:, :-1][~marked[:, :-1]]
    assert distractors.min() >= 0 and distractors.max() < S


def test_fixed_distances_and_evaluation_set():
    task = RecallTask(num_symbols=4, seq_len=12)
    batch = task.sample(6, seed=1, distances=11)  # the marked token is the very first token
    assert np.all(batch.input_ids[:, 0] >= 4) and np.all(batch.distances == 11)
    batch = task.sample(3, seed=1, distances=[1, 5, 9])
    np.testing.assert_array_equal(batch.distances, [1, 5, 9])
    assert np.all(batch.input_ids[[0, 1, 2], [10, 6, 2]] >= 4)
    probe = task.evaluation_set(per_distance=4, distances=[2, 6])
    np.testing.assert_array_equal(probe.distances, [2, 2, 2, 2, 6, 6, 6, 6])
    full = task.evaluation_set(per_distance=2)
    assert len(full) == 2 * 11
    for bad in (0, 12):
        with pytest.raises(DataError, match=f"distance {bad}"):
            task.sample(2, distances=bad)


def test_config_validation():
    for kwargs in (
        dict(num_symbols=1),
        dict(seq_len=1),
        dict(seq_len=10, min_distance=0),
        dict(seq_len=10, min_distance=10),
        dict(seq_len=10, min_distance=5, max_distance=4),
        dict(seq_len=10, max_distance=10),
    ):
        with pytest.raises(ConfigError):
            RecallTaskConfig(**kwargs)
    assert RecallTaskConfig(seq_len=10).longest_distance == 9
    with pytest.raises(ConfigError):
        RecallTask().sample(0)


def test_accuracy_by_distance_by_hand():
    # Sequences of length 6: three examples at k=1 (two right) and one at k=4 (right).
    targets = np.full((4, 6), IGNORE_INDEX)
    targets[:, -1] = [1, 2, 3, 0]
    batch = SequenceBatch(
        input_ids=np.zeros((4, 6), np.int64),
        targets=targets,
        mask=targets != IGNORE_INDEX,
        distances=np.array([1, 1, 1, 4]),
    )
    predictions = np.zeros((4, 6), np.int64)
    predictions[:, -1] = [1, 2, 0, 0]
    assert accuracy_by_distance(predictions, batch) == {1: pytest.approx(2 / 3), 4: 1.0}
    # Logits (B, T, K) as torch tensors give the same answer through argmax.
    logits = torch.nn.functional.one_hot(torch.as_tensor(predictions), 4).float()
    assert accuracy_by_distance(logits, batch.to_torch()) == accuracy_by_distance(predictions, batch)
    with pytest.raises(DataError, match="do not match"):
        accuracy_by_distance(predictions[:, :3], batch)


def test_to_torch_and_model_inputs():
    batch = RecallTask(num_symbols=3, seq_len=6).sample(2, seed=0).to_torch()
    assert batch.input_ids.dtype == torch.int64 and batch.mask.dtype == torch.bool
    inputs = batch.model_inputs()
    assert set(inputs) == {"input_ids", "targets"} and inputs["targets"] is batch.targets


def test_decode_example():
    task = RecallTask(num_symbols=4, seq_len=8)
    # The module docstring's example: k = 5, the marked 2 (id 6) at position 2.
    assert task.decode([2, 0, 6, 3, 1, 0, 2, 8]) == "2 0 [2] 3 1 0 2 ?"
    with pytest.raises(DataError, match="token id 9"):
        task.decode([9])


def test_ignore_index_is_the_shared_definition():
    from attnlab.configs.base import IGNORE_INDEX as SHARED
    from attnlab.data import seq2seq_tasks

    assert IGNORE_INDEX == seq2seq_tasks.IGNORE_INDEX == SHARED == -100  # importable from each data module
    logits, targets = torch.zeros(2, 3), torch.tensor([IGNORE_INDEX, 1])
    assert torch.nn.functional.cross_entropy(logits, targets).item() == pytest.approx(np.log(3))  # only one scored

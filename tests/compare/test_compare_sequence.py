"""Tests for the sequence transformer (attnlab.models.sequence_transformer) and the sequence
comparison (attnlab.compare.sequence)."""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from torch import nn

from attnlab.compare.sequence import (
    SequenceCompareConfig,
    TaskBatchSource,
    build_sequence_model,
    compare_sequence,
    evaluate_by_distance,
    first_distance_below,
    format_sequence_table,
    parse_sequence_model_names,
    time_training_steps,
)
from attnlab.data.recall_task import RecallTask
from attnlab.errors import ConfigError
from attnlab.models.outputs import ModelOutput
from attnlab.models.sequence_transformer import SequenceTransformer, SequenceTransformerConfig

# ---------------------------------------------------------------------------
# The sequence transformer
# ---------------------------------------------------------------------------


def small(**overrides) -> SequenceTransformer:
    torch.manual_seed(0)
    return SequenceTransformer(
        SequenceTransformerConfig.from_name("tiny", vocab_size=9, num_classes=4, max_seq_len=12, **overrides)
    )


def test_shapes_and_parameter_count_by_formula():
    c = SequenceTransformerConfig.from_name("small", vocab_size=17, num_classes=8, max_seq_len=64)
    model = SequenceTransformer(c)
    E, F_ = c.embed_dim, c.hidden_dim
    per_block = (3 * E * E + 3 * E) + (E * E + E) + (E * F_ + F_) + (F_ * E + E) + 4 * E
    assert model.num_parameters() == 17 * E + 64 * E + c.num_layers * per_block + 2 * E + E * 8 + 8
    ids = torch.randint(0, 17, (3, 20))
    targets = torch.full((3, 20), -100)
    targets[:, -1] = torch.tensor([1, 2, 3])
    out = model(ids, targets, output_attentions=True, output_hidden_states=True)
    assert isinstance(out, ModelOutput) and out.logits.shape == (3, 20, 8)
    torch.testing.assert_close(out.loss, F.cross_entropy(out.logits[:, -1], targets[:, -1]))
    assert len(out.attentions) == 2 and out.attentions[0].shape == (3, 2, 20, 20)
    assert len(out.hidden_states) == 3


def test_causal_model_never_looks_ahead_and_bidirectional_does():
    ids = torch.randint(0, 9, (2, 10), generator=torch.Generator().manual_seed(1))
    changed = ids.clone()
    changed[:, 6:] = (changed[:, 6:] + 1) % 9
    causal = small(causal=True).eval()
    torch.testing.assert_close(causal(changed).logits[:, :6], causal(ids).logits[:, :6])
    weights = causal(ids, output_attentions=True).attentions[0]
    assert torch.all(weights.triu(diagonal=1) == 0)
    both = small(causal=False).eval()
    assert not torch.allclose(both(changed).logits[:, :6], both(ids).logits[:, :6])


def test_sinusoidal_positions_and_bad_configs():
    model = small(positional="sinusoidal")
    assert model(torch.randint(0, 9, (1, 12))).logits.shape == (1, 12, 4)
    assert not any("pos_emb" in name for name, _ in model.named_parameters())  # a fixed table
    with pytest.raises(ConfigError, match="max_seq_len"):
        small()(torch.randint(0, 9, (1, 13)))
    for bad, message in [
        (dict(embed_dim=10, num_heads=4), "divisible"),
        (dict(positional="rotary"), "positional"),
        (dict(dropout=1.0), "dropout"),
        (dict(num_layers=0), "num_layers"),
    ]:
        with pytest.raises(ConfigError, match=message):
            SequenceTransformerConfig(**bad)
    with pytest.raises(ConfigError, match="tiny, small"):
        SequenceTransformerConfig.from_name("large")
    with pytest.raises(ConfigError, match="width"):
        SequenceTransformerConfig.from_name("tiny", width=3)


def test_overfits_a_tiny_batch():
    model = small()
    ids = torch.randint(0, 9, (8, 12), generator=torch.Generator().manual_seed(2))
    targets = torch.randint(0, 4, (8, 12), generator=torch.Generator().manual_seed(3))
    optimizer = torch.optim.AdamW(model.parameters(), lr=1e-2, weight_decay=0.0)
    for _ in range(150):
        loss = model(ids, targets).loss
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
    assert model.eval()(ids, targets).loss.item() < 0.05


def test_checkpoint_round_trip(tmp_path):
    from attnlab.models.registry import load_model, save_model

    model = small().eval()
    save_model(model, tmp_path / "m")
    loaded, _ = load_model(tmp_path / "m", expect="sequence_transformer")
    ids = torch.randint(0, 9, (2, 12))
    torch.testing.assert_close(loaded(ids).logits, model(ids).logits)


# ---------------------------------------------------------------------------
# Comparison helpers
# ---------------------------------------------------------------------------


class Oracle(nn.Module):
    """Reads the marked token (ids S..2S-1) and answers it: a perfect recall model."""

    def __init__(self, num_symbols: int):
        super().__init__()
        self.num_symbols = num_symbols
        self.dummy = nn.Parameter(torch.zeros(()))

    def forward(self, input_ids, targets=None):
        S = self.num_symbols
        marked = ((input_ids >= S) & (input_ids < 2 * S)).long().argmax(1)  # (B,)
        answer = input_ids[torch.arange(len(input_ids)), marked] - S
        logits = F.one_hot(answer, S).float()[:, None, :].expand(-1, input_ids.size(1), -1)
        return ModelOutput(logits=logits + self.dummy)


def test_evaluate_by_distance_with_a_perfect_and_a_constant_model():
    task = RecallTask(num_symbols=4, seq_len=10)
    probe = task.evaluation_set(per_distance=30)
    assert evaluate_by_distance(Oracle(4), probe, "cpu", chunk=50) == {k: 1.0 for k in range(1, 10)}

    class Constant(Oracle):
        def forward(self, input_ids, targets=None):
            return ModelOutput(logits=F.one_hot(torch.zeros_like(input_ids), 4).float())

    by_k = evaluate_by_distance(Constant(4), probe, "cpu")
    answers = probe.answers
    for k in range(1, 10):  # a model that always says 0 is right exactly when the answer is 0
        assert by_k[k] == pytest.approx(float(np.mean(answers[probe.distances == k] == 0)))


def test_first_distance_below():
    assert first_distance_below({1: 1.0, 2: 0.95, 3: 0.89, 4: 0.95}) == 3
    assert first_distance_below({1: 0.5, 2: 1.0}) == 1
    assert first_distance_below({1: 0.99, 2: 0.9}) is None  # 0.9 is not below 0.9
    assert first_distance_below({3: 0.7, 1: 0.95, 2: 0.6}, threshold=0.8) == 2  # sorted by distance


def test_task_batch_source():
    task = RecallTask(num_symbols=4, seq_len=8)
    source = TaskBatchSource(task)
    batch = source.train_batch(5, np.random.default_rng(0))
    assert set(batch) == {"input_ids", "targets"} and batch["input_ids"].shape == (5, 8)
    first, again = source.eval_batches(4, 3, seed=1), source.eval_batches(4, 3, seed=1)
    assert len(first) == 3 and all(np.array_equal(a["input_ids"], b["input_ids"]) for a, b in zip(first, again))


def test_time_training_steps_reports_every_length():
    task = RecallTask(num_symbols=4, seq_len=8)
    times = time_training_steps(
        lambda T: build_sequence_model("gru", task, quick=True),
        [4, 8],
        batch_size=4,
        vocab_size=task.vocab_size,
        steps=2,
        warmup=1,
    )
    assert sorted(times) == [4, 8] and all(v > 0 for v in times.values())


def test_model_names_and_config_validation():
    assert parse_sequence_model_names("LSTM, gpt") == ["lstm", "transformer"]
    with pytest.raises(ConfigError, match="valid models: rnn, lstm, gru, transformer"):
        parse_sequence_model_names("lstm,mamba")
    for bad, message in [
        (dict(task="copy"), "valid tasks: recall"),
        (dict(seq_len=2), "seq_len"),
        (dict(epochs=0), "epochs"),
        (dict(lr=-1.0), "lr"),
        (dict(num_symbols=1), "num_symbols"),
        (dict(timing_lengths=(1,)), "timing_lengths"),
        (dict(batch_size=0), "batch_size"),
    ]:
        with pytest.raises(ConfigError, match=message):
            SequenceCompareConfig(**bad)
    config = SequenceCompareConfig(quick=True)
    assert (config.num_epochs, config.epoch_steps, config.sweep_lengths) == (2, 15, (16, 32))
    assert SequenceCompareConfig(timing_lengths=()).sweep_lengths == ()
    assert SequenceCompareConfig(lr=0.01).recipe("transformer").lr == 0.01


def test_sequence_table():
    r = {
        "parameters": 26152,
        "seconds_per_epoch": 1.234,
        "mean_accuracy": 0.5,
        "accuracy_by_distance": {"1": 1.0, "2": 0.5, "3": 0.0},
        "first_distance_below_90": 2,
    }
    assert "| lstm | 26,152 | 1.23 | 50.0% | 100.0% | 0.0% | 2 |" in format_sequence_table({"lstm": r})


# ---------------------------------------------------------------------------
# The comparison end to end
# ---------------------------------------------------------------------------


def test_transformer_solves_short_distances_in_a_quick_run(tmp_path):
    result = compare_sequence(
        SequenceCompareConfig(
            models=("transformer",),
            seq_len=8,
            num_symbols=4,
            epochs=4,
            steps_per_epoch=25,
            batch_size=32,
            timing_lengths=(),
            save_models=False,
            progress=False,
        ),
        tmp_path,
    )
    by_k = {int(k): v for k, v in result["models"]["transformer"]["accuracy_by_distance"].items()}
    assert all(by_k[k] >= 0.9 for k in (1, 2, 3)), by_k


def test_compare_sequence_end_to_end(tmp_path):
    from attnlab.models.registry import load_model

    done = []
    result = compare_sequence(
        SequenceCompareConfig(seq_len=12, quick=True, progress=False),
        tmp_path,
        on_model_done=lambda n, r: done.append(n),
    )
    assert done == ["rnn", "lstm", "gru", "transformer"]
    saved = json.loads((tmp_path / "results.json").read_text())
    assert saved["task"]["seq_len"] == 12 and saved["task"]["chance_accuracy"] == 0.125
    for name, r in saved["models"].items():
        assert sorted(int(k) for k in r["accuracy_by_distance"]) == list(range(1, 12))
        assert len(r["gradient_norms"]["init"]) == len(r["gradient_norms"]["trained"]) == 12
        assert all(g >= 0 for g in r["gradient_norms"]["init"]) and r["gradient_norms"]["init"][-1] > 0
        assert set(r["step_ms_by_length"]) == {"16", "32"} and r["seconds_per_epoch"] > 0
        assert r["steps"] == 30 and len(r["curve"]) == 3
        model, _ = load_model(tmp_path / "models" / name)
        probe = RecallTask(num_symbols=8, seq_len=12).evaluation_set(per_distance=20)
        by_k = evaluate_by_distance(model, probe, "cpu")
        assert by_k == {int(k): v for k, v in r["accuracy_by_distance"].items()}
    for figure in ("accuracy_by_distance.png", "gradient_norms.png", "training_time.png", "learning_curves.png"):
        assert (tmp_path / figure).stat().st_size > 1000
    assert result["table"] in (tmp_path / "results.md").read_text()

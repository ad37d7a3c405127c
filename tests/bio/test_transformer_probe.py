"""The transformer probe: it uses context, overfits tiny sets, ignores padding, saves and loads; crops."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from attnlab.bio.controls import one_hot
from attnlab.bio.probe_data import _Split
from attnlab.bio.probes import Probe, ProbeConfig, _Batcher, fit_probe
from attnlab.bio.transformer_probe import TransformerProbe
from attnlab.errors import ConfigError

from .conftest import random_sequences

FAST = ProbeConfig(
    max_epochs=120,
    patience=120,
    dropout=0.0,
    weight_decay=0.0,
    batch_size=8,
    learning_rate=3e-3,
    transformer_dim=32,
    transformer_layers=1,
    transformer_heads=2,
)


def previous_is_k(sequences):
    """Residue labels that need context: 1 where the previous residue is K."""
    return [np.array([int(j > 0 and s[j - 1] == "K") for j in range(len(s))]) for s in sequences]


def test_transformer_probe_reads_context_that_a_per_residue_probe_cannot():
    seqs = [s.translate(str.maketrans("ACDEFGH", "KKKKKKK")) for s in random_sequences(24, 8, 16, seed=11)]  # ~40% K
    X = [one_hot(s) for s in seqs]
    y = previous_is_k(seqs)
    transformer = fit_probe("transformer", X, y, X, y, "residue", seed=0, config=FAST)
    linear = fit_probe("linear", X, y, X, y, "residue", seed=0, config=FAST)
    assert transformer.evaluate(X, y)["mcc"] >= 0.95
    assert linear.evaluate(X, y)["mcc"] < 0.3  # one residue's one-hot says (almost) nothing about its neighbour


@pytest.mark.parametrize("pool", ["cls", "attn", "mean", "max"])
def test_sequence_task_overfits_random_labels(pool):
    seqs = random_sequences(16, 6, 14, seed=12)
    X = [one_hot(s) for s in seqs]
    y = np.arange(16) % 2
    config = ProbeConfig(**{**FAST.__dict__, "transformer_pool": pool, "max_epochs": 200, "patience": 200})
    probe = fit_probe("transformer", X, y, X, y, "binary", seed=0, config=config)
    assert probe.evaluate(X, y)["accuracy"] == 1.0


def test_padding_does_not_change_outputs():
    torch.manual_seed(0)
    for per_residue, pool in ((True, "cls"), (False, "cls"), (False, "attn"), (False, "mean")):
        model = TransformerProbe(5, 3, per_residue, width=8, num_layers=2, num_heads=2, dropout=0.0, pool=pool).eval()
        short = torch.randn(1, 4, 5)
        padded = torch.cat([short, torch.randn(1, 3, 5)], dim=1)  # (1, 7, 5): junk after the end
        mask = torch.tensor([[True] * 4 + [False] * 3])
        a = model(short, torch.ones(1, 4, dtype=torch.bool))
        b = model(padded, mask)
        torch.testing.assert_close(b[:, :4] if per_residue else b, a, atol=1e-5, rtol=1e-5)


def test_save_load_same_predictions(tmp_path):
    seqs = random_sequences(10, 5, 12, seed=13)
    X, y = [one_hot(s) for s in seqs], previous_is_k(seqs)
    probe = fit_probe(
        "transformer",
        X,
        y,
        X,
        y,
        "residue",
        seed=1,
        config=ProbeConfig(max_epochs=3, transformer_dim=16, transformer_layers=1, transformer_heads=2),
        num_classes=2,
    )
    probe.save(tmp_path)
    loaded = Probe.load(tmp_path)
    for a, b in zip(probe.predict_proba(X), loaded.predict_proba(X)):
        np.testing.assert_allclose(a, b, rtol=1e-5, atol=1e-6)


def test_crop_windows_keep_labels_aligned():
    probe = Probe(
        "transformer",
        "residue",
        torch.nn.Linear(1, 2),
        ProbeConfig(),
        1,
        2,
        np.zeros(1, np.float32),
        np.ones(1, np.float32),
    )
    values = [np.arange(20, dtype=np.float32)[:, None], np.arange(5, dtype=np.float32)[:, None]]
    split = _Split(
        residues=values, targets=[np.arange(20) % 2, np.arange(5) % 2], masks=[np.arange(20) % 3 > 0, np.ones(5, bool)]
    )
    batcher = _Batcher(probe, split, crop_length=8, rng=np.random.default_rng(0))
    (x, mask), y, score = batcher.batch(np.array([0, 1]))
    assert x.shape == (2, 8, 1) and mask[1].sum() == 5
    start = int(x[0, 0, 0])  # the window's first value is its start
    np.testing.assert_array_equal(x[0, :, 0].numpy(), np.arange(start, start + 8))
    np.testing.assert_array_equal(y[0].numpy(), np.arange(start, start + 8) % 2)
    np.testing.assert_array_equal(score[0].numpy(), np.arange(start, start + 8) % 3 > 0)


def test_config_checks():
    with pytest.raises(ConfigError, match="even head size"):
        ProbeConfig(transformer_dim=12, transformer_heads=4)
    with pytest.raises(ConfigError, match="transformer_pool"):
        ProbeConfig(transformer_pool="median")
    with pytest.raises(ConfigError, match="attention pooling makes one vector"):
        fit_probe("attention-mlp", [np.ones((3, 2))], [np.zeros(3)], None, None, "residue")

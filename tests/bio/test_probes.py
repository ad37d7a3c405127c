"""Probes: they fit tiny sets, ridge matches scikit-learn, seeds, early stopping, masks, save/load."""

from __future__ import annotations

import subprocess
import sys

import numpy as np
import pytest
import torch
from torch import nn

from attnlab.bio import probe_kinds as K
from attnlab.bio.pooling import mean_pool
from attnlab.bio.probe_kinds import ProbeConfig, probe_kinds, probe_spec, register_probe
from attnlab.bio.probes import Probe, fit_probe
from attnlab.errors import ConfigError, DataError

OVERFIT = ProbeConfig(max_epochs=300, patience=300, weight_decay=0.0, dropout=0.0, batch_size=16)


def blobs(n: int, k: int, dim: int = 6, seed: int = 0):
    rng = np.random.default_rng(seed)
    centers = rng.normal(scale=4.0, size=(k, dim))
    y = np.arange(n) % k
    return (centers[y] + rng.normal(size=(n, dim))).astype(np.float32), y


def test_kinds_registered():
    assert {"linear", "mlp", "attention"} <= set(probe_kinds())


def test_kinds_are_named_without_importing_their_modules():
    """The kinds table names its modules; a kind's module is imported when the kind is first asked for."""
    code = (
        "import sys\n"
        "from attnlab.bio.probe_kinds import probe_kinds, probe_spec\n"
        "print(probe_kinds())\n"
        "print('torch' in sys.modules, 'attnlab.bio.transformer_probe' in sys.modules)\n"
        "spec = probe_spec('transformer')\n"
        "print(spec.kind, spec.takes_residues, 'attnlab.bio.transformer_probe' in sys.modules)\n"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120, check=True).stdout
    assert out.splitlines() == [
        "['linear', 'mlp', 'attention', 'transformer', 'attention-mlp']",
        "False False",
        "transformer True True",
    ]


def test_transformer_probe_imports_first_without_a_cycle():
    """Importing the transformer probe on its own (before probes) works: no module imports it back."""
    code = (
        "import attnlab.bio.transformer_probe as T; import attnlab.bio.probes as P; print(T.TransformerProbe.__name__)"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120, check=True).stdout
    assert out.strip() == "TransformerProbe"


def test_unknown_kind_names_every_kind():
    with pytest.raises(ConfigError, match="choose one of: linear, mlp, attention, transformer, attention-mlp$"):
        probe_spec("svm")


@pytest.mark.parametrize("kind, task, k", [("linear", "binary", 2), ("mlp", "multiclass", 3)])
def test_probes_overfit_a_tiny_set(kind, task, k):
    X, y = blobs(48, k)
    probe = fit_probe(kind, X, y, X, y, task, seed=0, config=OVERFIT)
    assert probe.evaluate(X, y)["accuracy"] == 1.0
    proba = probe.predict_proba(X)
    assert proba.shape == (48, k)
    np.testing.assert_allclose(proba.sum(1), 1.0, rtol=1e-5)


def test_multilabel_probe():
    X, y = blobs(60, 3)
    Y = np.stack([y == 0, y != 1], axis=1).astype(np.float32)  # two overlapping labels
    probe = fit_probe("mlp", X, Y, X, Y, "multilabel", seed=0, config=OVERFIT)
    assert probe.predict(X).shape == (60, 2)
    assert probe.evaluate(X, Y)["accuracy"] == 1.0


def test_ridge_probe_matches_sklearn():
    pytest.importorskip("sklearn")
    from sklearn.linear_model import Ridge
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import StandardScaler

    rng = np.random.default_rng(1)
    X = rng.normal(size=(80, 5)).astype(np.float32) * [1, 2, 3, 4, 5]
    y = (X @ rng.normal(size=5) + rng.normal(size=80) + 3).astype(np.float32)
    raw = fit_probe(
        "linear",
        X[:60],
        y[:60],
        X[60:],
        y[60:],
        "regression",
        config=ProbeConfig(standardize=False, ridge_alphas=(0.5,)),
    )
    reference = Ridge(alpha=0.5).fit(X[:60].astype(np.float64), y[:60])
    np.testing.assert_allclose(raw.model.weight.detach().numpy()[0], reference.coef_, rtol=1e-4, atol=1e-5)
    np.testing.assert_allclose(raw.predict(X[60:]), reference.predict(X[60:]), rtol=1e-4, atol=1e-4)
    # With standardisation the predictions equal scikit-learn's scaler + ridge (ridge is linear in y).
    scaled = fit_probe("linear", X[:60], y[:60], X[60:], y[60:], "regression", config=ProbeConfig(ridge_alphas=(2.0,)))
    pipeline = make_pipeline(StandardScaler(), Ridge(alpha=2.0)).fit(X[:60].astype(np.float64), y[:60])
    np.testing.assert_allclose(scaled.predict(X[60:]), pipeline.predict(X[60:]), rtol=1e-4, atol=1e-4)
    # The penalty is chosen on the validation split.
    chosen = fit_probe("linear", X[:60], y[:60], X[60:], y[60:], "regression")
    losses = [h["valid_loss"] for h in chosen.history]
    assert chosen.best_epoch == int(np.argmin(losses))


def test_seeded_and_leaves_global_rng_alone():
    X, y = blobs(40, 2, seed=3)
    config = ProbeConfig(max_epochs=5)
    state = torch.random.get_rng_state()
    a = fit_probe("mlp", X, y, None, None, "binary", seed=7, config=config).predict_proba(X)
    assert torch.equal(state, torch.random.get_rng_state())
    b = fit_probe("mlp", X, y, None, None, "binary", seed=7, config=config).predict_proba(X)
    c = fit_probe("mlp", X, y, None, None, "binary", seed=8, config=config).predict_proba(X)
    np.testing.assert_array_equal(a, b)
    assert not np.allclose(a, c)


def test_early_stopping_keeps_the_best_epoch():
    rng = np.random.default_rng(0)
    X = rng.normal(size=(60, 20)).astype(np.float32)
    y = rng.integers(0, 2, 60)  # pure noise: the validation loss soon rises
    probe = fit_probe(
        "mlp", X[:40], y[:40], X[40:], y[40:], "binary", seed=0, config=ProbeConfig(patience=3, max_epochs=100)
    )
    losses = [h["valid_loss"] for h in probe.history]
    assert len(losses) < 100
    assert probe.best_epoch == 1 + int(np.argmin(losses))
    assert len(losses) == probe.best_epoch + 3


def residue_data(n: int, seed: int):
    """Label = (feature 0 > 0) on scored residues; masked residues carry the opposite label."""
    rng = np.random.default_rng(seed)
    X, y, m = [], [], []
    for _ in range(n):
        length = int(rng.integers(4, 12))
        x = rng.normal(size=(length, 4)).astype(np.float32)
        mask = rng.random(length) < 0.6
        truth = (x[:, 0] > 0).astype(np.int64)
        X.append(x)
        y.append(np.where(mask, truth, 1 - truth))
        m.append(mask)
    return X, y, m


def test_residue_probe_trains_only_on_masked_residues():
    X, y, m = residue_data(60, 0)
    Xv, yv, mv = residue_data(20, 1)
    probe = fit_probe("linear", X, y, Xv, yv, "residue", seed=0, train_mask=m, valid_mask=mv)
    pred = probe.predict(Xv)
    assert [len(p) for p in pred] == [len(x) for x in Xv]
    assert probe.evaluate(Xv, yv, mask=mv)["accuracy"] > 0.95
    sub = fit_probe(
        "mlp",
        X,
        y,
        Xv,
        yv,
        "residue",
        seed=0,
        train_mask=m,
        valid_mask=mv,
        config=ProbeConfig(max_train_residues=50, max_epochs=20),
    )
    assert len(sub.predict_proba(Xv)) == 20


def motif_data(n: int, seed: int):
    """Class 1 sequences hide one residue with a large channel 0 at a random position."""
    rng = np.random.default_rng(seed)
    X, y = [], np.arange(n) % 2
    for label in y:
        x = rng.normal(size=(10, 4)).astype(np.float32)
        if label:
            x[rng.integers(10), 0] = 6.0
        X.append(x)
    return X, y


def test_attention_probe_finds_a_motif_and_round_trips(tmp_path):
    X, y = motif_data(120, 0)
    Xt, yt = motif_data(40, 1)
    probe = fit_probe(
        "attention", X, y, None, None, "binary", seed=0, config=ProbeConfig(learning_rate=1e-2, max_epochs=60)
    )
    assert probe.takes_residues
    assert probe.evaluate(Xt, yt)["accuracy"] >= 0.9
    probe.save(tmp_path / "probe")
    loaded = Probe.load(tmp_path / "probe")
    np.testing.assert_allclose(loaded.predict_proba(Xt), probe.predict_proba(Xt), rtol=1e-6)
    assert loaded.history == probe.history and loaded.best_epoch == probe.best_epoch


def test_save_load_regression_probe(tmp_path):
    X, _ = blobs(30, 2)
    y = X[:, 0] * 2.0 + 1.0
    probe = fit_probe("mlp", X, y, None, None, "regression", seed=0, config=ProbeConfig(max_epochs=5))
    probe.save(tmp_path)
    np.testing.assert_allclose(Probe.load(tmp_path).predict(X), probe.predict(X), rtol=1e-6)
    with pytest.raises(ConfigError, match="no class probabilities"):
        probe.predict_proba(X)


def test_probe_input_errors(tmp_path):
    X, y = blobs(20, 2)
    with pytest.raises(ConfigError, match="unknown probe kind"):
        fit_probe("svm", X, y, None, None, "binary")
    with pytest.raises(ConfigError, match="linear or mlp"):
        fit_probe("attention", [X], [y], None, None, "residue")
    with pytest.raises(DataError, match="per-residue arrays"):
        fit_probe("attention", X, y, None, None, "binary")
    with pytest.raises(DataError, match="19 labels for 20"):
        fit_probe("linear", X, y[:19], None, None, "binary")
    with pytest.raises(DataError, match="give both"):
        fit_probe("linear", X, y, X, None, "binary")
    with pytest.raises(DataError, match="multiclass"):
        fit_probe("linear", X, np.arange(20) % 3, None, None, "binary")
    with pytest.raises(ConfigError, match="patience"):
        ProbeConfig(patience=0)
    probe = fit_probe("linear", X, y, None, None, "binary", config=ProbeConfig(max_epochs=2))
    with pytest.raises(DataError, match="6-dimensional"):
        probe.predict(X[:, :3])
    from attnlab.errors import CheckpointError

    with pytest.raises(CheckpointError, match="no probe"):
        Probe.load(tmp_path)


def test_register_a_residue_input_probe_kind():
    class MeanThenLinear(nn.Module):
        def __init__(self, dim: int, outputs: int):
            super().__init__()
            self.head = nn.Linear(dim, outputs)

        def forward(self, x, mask):
            return self.head(mean_pool(x, mask))

    register_probe("test-mean-linear", takes_residues=True)(lambda dim, k, task, cfg: MeanThenLinear(dim, k))
    try:
        X, y = motif_data(40, 2)
        probe = fit_probe("test-mean-linear", X, y, None, None, "binary", seed=0, config=ProbeConfig(max_epochs=3))
        assert probe.predict(X).shape == (40,)
    finally:
        K._PROBES.pop("test-mean-linear")

"""Full fine-tuning: a smoke test per task kind, the original model is untouched, save/load, checks."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from attnlab.bio.embedders import make_embedder
from attnlab.bio.finetune import FineTuneConfig, finetune
from attnlab.bio.probes import Probe
from attnlab.errors import ConfigError
from attnlab.models.encoder import Encoder

from .conftest import random_sequences

QUICK = FineTuneConfig(max_epochs=2, batch_size=4, progress=False, encoder_learning_rate=1e-3)


def test_sequence_task_trains_encoder_and_head(tiny_protein_checkpoint, tmp_path):
    emb = make_embedder(tiny_protein_checkpoint, progress=False)
    before = {k: v.clone() for k, v in emb.model.state_dict().items()}
    seqs = random_sequences(16, 6, 30, seed=21)  # some longer than the 14-residue context: cropped in training
    y = np.array([int(s.count("K") + s.count("R") > 2) for s in seqs])
    tuned = finetune(emb, seqs[:12], y[:12], seqs[12:], y[12:], "binary", seed=0, config=QUICK)
    assert len(tuned.history) == 2 and 1 <= tuned.best_epoch <= 2
    for name, value in emb.model.state_dict().items():  # the starting model is copied, never changed
        torch.testing.assert_close(value, before[name])
    assert tuned.embedder.fingerprint != emb.fingerprint  # the tuned weights are new (and so is the cache key)
    metrics = tuned.evaluate(seqs, y)
    assert set(metrics) == {"accuracy", "macro_f1", "mcc", "roc_auc"}
    tuned.save(tmp_path)
    reloaded = Encoder.from_checkpoint(tmp_path / "encoder")
    head = Probe.load(tmp_path)
    again = make_embedder(tmp_path / "encoder", progress=False)
    assert again.fingerprint == tuned.embedder.fingerprint
    np.testing.assert_allclose(
        head.predict_proba(again.embed(seqs, "mean")),
        tuned.probe.predict_proba(tuned.embed(seqs)),
        rtol=1e-5,
        atol=1e-6,
    )
    assert reloaded.config == emb.model.config


@pytest.mark.parametrize("pool", ["cls", "attn", "max"])
def test_sequence_pools(tiny_protein_checkpoint, pool):
    emb = make_embedder(tiny_protein_checkpoint, progress=False)
    seqs = random_sequences(8, 5, 12, seed=22)
    y = np.arange(8) % 2
    config = FineTuneConfig(max_epochs=1, batch_size=4, progress=False, pool=pool)
    tuned = finetune(emb, seqs, y, seqs, y, "binary", config=config)
    assert tuned.pooling == ("none" if pool == "attn" else pool)
    assert np.isfinite(tuned.history[0]["valid_loss"])


def test_residue_and_regression_tasks(tiny_protein_checkpoint):
    emb = make_embedder(tiny_protein_checkpoint, progress=False)
    seqs = random_sequences(8, 10, 30, seed=23)
    y = [np.array([int(c in "KR") for c in s]) for s in seqs]
    masks = [np.arange(len(s)) > 0 for s in seqs]
    tuned = finetune(emb, seqs, y, seqs, y, "residue", config=QUICK, train_mask=masks, valid_mask=masks)
    predictions = tuned.probe.predict(tuned.embed(seqs))
    assert [len(p) for p in predictions] == [len(s) for s in seqs]  # windows stitched: one label per residue
    values = np.array([len(s) / 10.0 for s in seqs], dtype=np.float32)
    tuned = finetune(emb, seqs, values, seqs, values, "regression", config=QUICK)
    assert set(tuned.evaluate(seqs, values)) == {"spearman", "pearson", "r2", "rmse"}


def test_config_checks():
    with pytest.raises(ConfigError, match="finetune.pool"):
        FineTuneConfig(pool="median")
    with pytest.raises(ConfigError, match="finetune.max_epochs"):
        FineTuneConfig(max_epochs=0)

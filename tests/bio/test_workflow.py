"""The probing workflow: data checks and splits, results files, seeds, cache reuse, probe folders the app reads."""

from __future__ import annotations

import dataclasses
import json

import numpy as np
import pytest

from attnlab.bio.data import load_dataset
from attnlab.bio.probes import Probe, ProbeConfig
from attnlab.bio.workflow import (
    ProbeRunConfig,
    comparison_table,
    input_pooling,
    prepare_dataset,
    probe_kind,
    run_probe_experiment,
)
from attnlab.errors import ConfigError, DataError

QUICK = ProbeConfig(max_epochs=15, patience=5)


def config(tmp_path, data, **overrides) -> ProbeRunConfig:
    base = dict(
        data=str(data),
        task="seq-class",
        embedder="onehot",
        out=str(tmp_path / "out"),
        seeds=2,
        progress=False,
        probe_config=QUICK,
        cache_dir=str(tmp_path / "cache"),
    )
    base.update(overrides)
    return ProbeRunConfig(**base)


def test_task_must_fit_the_data(class_csv, residue_csv):
    with pytest.raises(
        DataError, match="--task residue-class does not fit .* binary class labels .* use --task seq-class"
    ):
        prepare_dataset(str(class_csv), "residue-class")
    with pytest.raises(DataError, match="it has per-residue labels .* use --task residue-class"):
        prepare_dataset(str(residue_csv), "seq-class")


def test_splits_drawn_or_carved(class_csv, residue_csv):
    drawn = prepare_dataset(str(class_csv), "seq-class")
    assert drawn.summary()["splits"] == {"train": 48, "valid": 6, "test": 6}  # stratified 80/10/10 of 60
    carved = prepare_dataset(str(residue_csv), "residue-class")  # the file has train/test: valid comes out of train
    raw = load_dataset(residue_csv)
    assert carved.split("test").ids == raw.split("test").ids
    assert len(carved.split("valid")) + len(carved.split("train")) == len(raw.split("train"))
    assert len(carved.split("valid")) >= 1
    subset = prepare_dataset(str(class_csv), "seq-class", max_sequences=20)
    assert len(subset) == 20 and subset.split_names == ["train", "valid", "test"]


def test_probe_kind_and_input_pooling():
    assert probe_kind("linear", "attn", "seq-class") == "attention"
    assert probe_kind("mlp", "attn", "seq-class") == "attention-mlp"
    assert probe_kind("mlp", "mean", "seq-class") == "mlp"
    assert probe_kind("transformer", "mean", "seq-class") == "transformer"
    assert input_pooling("linear", "max", "seq-class") == "max"
    assert input_pooling("transformer", "mean", "seq-class") == "none"
    assert input_pooling("mlp", "none", "residue-class") == "none"


def test_results_files_seeds_and_probe_folders(class_csv, tmp_path):
    results = run_probe_experiment(config(tmp_path, class_csv, probe="mlp", pool="max"))
    out = tmp_path / "out"
    for name in ("results.json", "results.md", "confusion_matrix.png", "pca.png"):
        assert (out / name).is_file(), name
    saved = json.loads((out / "results.json").read_text())
    assert saved["task"] == "binary" and saved["classes"] == ["poor", "rich"] and saved["probe"]["kind"] == "mlp"
    mcc = [run["metrics"]["mcc"] for run in saved["runs"]]
    assert len(mcc) == 2
    np.testing.assert_allclose(saved["summary"]["mcc"]["mean"], np.mean(mcc))
    np.testing.assert_allclose(saved["summary"]["mcc"]["std"], np.std(mcc, ddof=1))
    table = (out / "results.md").read_text()
    assert f"{np.mean(mcc):.3f} ± {np.std(mcc, ddof=1):.3f}" in table
    folder = out / "probes" / "seed1"
    meta = json.loads((folder / "probe.json").read_text())
    assert meta["classes"] == ["poor", "rich"] and meta["seed"] == 1
    sidecar = json.loads((folder / "embedder.json").read_text())
    assert sidecar["identity"].startswith("control:onehot:protein") and sidecar["pooling"] == "max"
    assert json.loads((folder / "labels.json").read_text())["classes"] == ["poor", "rich"]
    assert Probe.load(folder).kind == "mlp"
    assert results["summary_text"]["mcc"] in comparison_table([results])


def test_the_app_reads_the_probe_folders(class_csv, tmp_path):
    from attnlab.app import protein_probes
    from attnlab.bio.controls import one_hot

    run_probe_experiment(config(tmp_path, class_csv, out=str(tmp_path / "runs" / "kr"), pool="max", seeds=1))
    run_probe_experiment(
        config(tmp_path, class_csv, out=str(tmp_path / "runs" / "comp"), embedder="composition", seeds=1)
    )
    entries = {e.relative: e for e in protein_probes.find_probes(tmp_path / "runs")}
    assert set(entries) == {"kr/probes/seed0", "comp/probes/seed0"}
    onehot, comp = entries["kr/probes/seed0"], entries["comp/probes/seed0"]
    assert (onehot.features, onehot.pooling, onehot.classes) == ("onehot", "max", ["poor", "rich"])
    assert comp.features == "composition"
    sequence = "KKAKRKLLKK"
    shown = protein_probes.probe_predict(tmp_path / "runs", onehot, sequence)
    probe = Probe.load(tmp_path / "runs" / "kr" / "probes" / "seed0")
    np.testing.assert_allclose(shown.probs, probe.predict_proba(one_hot(sequence).max(0, keepdims=True))[0], rtol=1e-6)
    assert shown.class_names == ["poor", "rich"]


def test_embedding_cache_is_shared_by_probes(class_csv, tmp_path, tiny_protein_checkpoint):
    first = run_probe_experiment(config(tmp_path, class_csv, embedder=str(tiny_protein_checkpoint), probe="linear"))
    second = run_probe_experiment(
        config(tmp_path, class_csv, embedder=str(tiny_protein_checkpoint), probe="mlp", out=str(tmp_path / "out2"))
    )
    assert (first["cache"]["hits"], first["cache"]["misses"]) == (0, 3)  # train, valid, test
    assert (second["cache"]["hits"], second["cache"]["misses"]) == (3, 0)
    assert first["embedder"]["kind"] == "model" and first["embedder"]["embedding_dim"] == 16


def test_residue_task_with_windows_and_the_transformer_probe(residue_csv, tmp_path, tiny_protein_checkpoint):
    probe_config = dataclasses.replace(
        QUICK, transformer_dim=16, transformer_layers=1, transformer_heads=2, crop_length=12
    )
    results = run_probe_experiment(
        config(
            tmp_path,
            residue_csv,
            task="residue-class",
            embedder=f"random:{tiny_protein_checkpoint}",
            probe="transformer",
            probe_config=probe_config,
        )
    )
    assert results["task"] == "residue" and results["embedder"]["kind"] == "random"
    assert set(results["summary"]) == {"accuracy", "macro_f1", "mcc"}
    assert results["classes"] == ["A", "B"]
    assert (tmp_path / "out" / "confusion_matrix.png").is_file() and (tmp_path / "out" / "pca.png").is_file()


def test_finetune_through_the_workflow(class_csv, tmp_path, tiny_protein_checkpoint):
    from attnlab.bio.finetune import FineTuneConfig

    results = run_probe_experiment(
        config(
            tmp_path,
            class_csv,
            embedder=str(tiny_protein_checkpoint),
            finetune=True,
            seeds=1,
            finetune_config=FineTuneConfig(max_epochs=1, batch_size=8),
        )
    )
    assert results["probe"]["label"].startswith("fine-tuned") and results["runs"][0]["epochs"] == 1
    assert (tmp_path / "out" / "finetuned" / "seed0" / "encoder" / "model.safetensors").is_file()
    assert (tmp_path / "out" / "finetuned" / "seed0" / "embedder.json").is_file()


@pytest.mark.parametrize(
    "overrides, error, words",
    [
        (dict(seeds=0), ConfigError, "--seeds must be a whole number from 1 to 100"),
        (dict(task="residue-class", pool="mean"), ConfigError, "--pool does not apply to residue-class"),
        (dict(embedder="composition", probe="transformer"), ConfigError, "need per-residue embeddings"),
        (dict(embedder="composition", pool="attn"), ConfigError, "need per-residue embeddings"),
        (dict(embedder="onehot", finetune=True), ConfigError, "no model to tune"),
        (dict(probe="svm"), ConfigError, "unknown probe 'svm'"),
        (dict(max_sequences=3), ConfigError, "--max-sequences must be at least 10"),
    ],
)
def test_bad_settings(class_csv, tmp_path, overrides, error, words):
    with pytest.raises(error, match=words):
        run_probe_experiment(config(tmp_path, class_csv, **overrides))


def test_regression_task(tmp_path):
    from .conftest import random_sequences

    seqs = random_sequences(60, 5, 40, seed=4)
    rows = ["id,sequence,target"] + [f"s{i},{s},{len(s) / 3 + 0.01 * s.count('K'):.4f}" for i, s in enumerate(seqs)]
    path = tmp_path / "values.csv"
    path.write_text("\n".join(rows) + "\n")
    with pytest.raises(DataError, match="it has numeric labels .* use --task seq-reg"):
        prepare_dataset(str(path), "seq-class")
    results = run_probe_experiment(config(tmp_path, path, task="seq-reg", embedder="composition", probe="linear"))
    assert results["task"] == "regression" and set(results["summary"]) == {"spearman", "pearson", "r2", "rmse"}
    assert (
        results["summary"]["spearman"]["mean"] > 0.9
    )  # the composition's length column makes it easy for ridge regression
    assert (tmp_path / "out" / "pca.png").is_file() and not (tmp_path / "out" / "confusion_matrix.png").exists()


def test_multilabel_data_is_refused_with_a_reason(tmp_path):
    path = tmp_path / "multi.csv"
    path.write_text("id,sequence,label\n" + "".join(f"m{i},MKTAYW{'A' * i},a;b\n" for i in range(12)))
    with pytest.raises(DataError, match="multi-label sets .* attnlab probe handles one class or number per sequence"):
        prepare_dataset(str(path), "seq-class")

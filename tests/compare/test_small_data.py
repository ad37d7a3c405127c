"""Tests for attnlab.compare.small_data: nested stratified subsets, the pool's batches, the
crossover, and quick studies end to end (run folders, skip, resume, refusals, tables, figure)."""

from __future__ import annotations

import csv
import json
import math

import numpy as np
import pytest

from attnlab.compare import small_data as sd
from attnlab.compare.small_data import (
    PoolBatchSource,
    SmallDataConfig,
    balanced_distances,
    crossover,
    format_report,
    nested_stratified_order,
    plan_lines,
    run_small_data_study,
    run_steps,
    summarise,
)
from attnlab.errors import ConfigError, DataError


def _rows(path):
    with open(path, encoding="utf-8") as f:
        first = f.readline()
        assert first.startswith("# attnlab-output")
        return list(csv.DictReader(f))


# ---------------------------------------------------------------------------
# Subsets and batches
# ---------------------------------------------------------------------------


def test_subsets_are_nested_stratified_and_seeded():
    labels = np.repeat([0, 1, 2], [500, 300, 200])  # unbalanced classes, in file order
    np.random.default_rng(1).shuffle(labels)
    order = nested_stratified_order(labels, seed=0)
    assert sorted(order) == list(range(len(labels)))  # every image once
    share = np.bincount(labels) / len(labels)
    previous: set[int] = set()
    for n in (10, 25, 50, 100, 250, 500, 1000):
        subset = set(order[:n].tolist())
        assert previous <= subset  # the 500 set contains the 250 set
        counts = np.bincount(labels[order[:n]], minlength=3)
        assert np.all(np.abs(counts - n * share) <= 1.0), (n, counts)
        previous = subset
    assert np.array_equal(order, nested_stratified_order(labels, seed=0))
    assert not np.array_equal(order[:100], nested_stratified_order(labels, seed=1)[:100])


def test_balanced_distances_every_prefix():
    ks = np.arange(1, 8)
    d = balanced_distances(100, ks, seed=3)
    for n in (7, 20, 50, 100):
        counts = np.bincount(d[:n], minlength=8)[1:]
        assert counts.max() - counts.min() <= 1
    assert np.array_equal(d[:30], balanced_distances(30, ks, seed=3))


def test_pool_batches_are_a_function_of_the_step_and_cover_each_epoch():
    pool = {"x": np.arange(12) * 10, "targets": np.arange(12)}
    source = PoolBatchSource(pool, {"x": pool["x"][:2], "targets": pool["targets"][:2]}, seed=5)
    steps = []
    for step in range(6):  # 2 epochs of 3 batches of 4
        source.step_of = lambda step=step: step
        steps.append(source.train_batch(4, np.random.default_rng(0))["targets"])
    assert sorted(np.concatenate(steps[:3])) == list(range(12))
    assert sorted(np.concatenate(steps[3:])) == list(range(12))
    assert not np.array_equal(np.concatenate(steps[:3]), np.concatenate(steps[3:]))  # a new order each epoch
    fresh = PoolBatchSource(pool, {"x": pool["x"][:2], "targets": pool["targets"][:2]}, seed=5)
    fresh.step_of = lambda: 4  # a resumed run asks for step 4 first
    assert np.array_equal(fresh.train_batch(4, np.random.default_rng(9))["targets"], steps[4])
    assert source.steps_per_epoch(5) == 3


def test_run_steps():
    assert run_steps(250, 6, 150, 64) == 150  # a small set: the minimum
    assert run_steps(8000, 6, 150, 64) == 750  # a large set: 6 passes


# ---------------------------------------------------------------------------
# Summary and crossover on hand-made numbers
# ---------------------------------------------------------------------------


def _summary(curves: dict[str, dict[int, float]]) -> list[dict]:
    return [
        {"line": line, "train_size": n, "mean_accuracy": a, "std_accuracy": 0.01, "seeds": 3}
        for line, curve in curves.items()
        for n, a in curve.items()
    ]


def test_summarise_mean_and_sample_std():
    rows = [{"line": "vit", "train_size": 100, "test_accuracy": a} for a in (0.5, 0.6, 0.7)]
    rows += [{"line": "vit", "train_size": 200, "test_accuracy": 0.9}]
    (a, b) = summarise(rows)
    assert a["mean_accuracy"] == pytest.approx(0.6) and a["std_accuracy"] == pytest.approx(0.1)  # ddof = 1
    assert (a["seeds"], a["min_accuracy"], a["max_accuracy"]) == (3, 0.5, 0.7)
    assert b["std_accuracy"] == 0.0 and b["seeds"] == 1


def test_crossover_where_the_vit_reaches_the_convnet():
    s = _summary(
        {"vit": {250: 0.70, 500: 0.80, 1000: 0.90, 2000: 0.95}, "cnn": {250: 0.90, 500: 0.93, 1000: 0.90, 2000: 0.95}}
    )
    c = crossover(s, "vit", "cnn")
    assert c["crossover_size"] == 1000 and c["behind_again"] == []
    assert c["gaps"] == {k: pytest.approx(v) for k, v in {"250": 20.0, "500": 13.0, "1000": 0.0, "2000": 0.0}.items()}
    slope = np.polyfit([8, 9, 10, 11], [20.0, 13.0, 0.0, 0.0], 1)[0]  # log2 of the sizes
    assert c["gap_per_doubling"] == pytest.approx(slope) and c["gap_shrinks"]
    assert c["gap_spread"]["250"] == pytest.approx(100 * math.hypot(0.01, 0.01))
    assert "reaches cnn at 1,000 images" in c["text"] and "the gap closes" in c["text"]


def test_no_crossover_and_a_gap_that_grows():
    s = _summary({"vit": {250: 0.80, 4000: 0.85}, "cnn": {250: 0.85, 4000: 0.95}})
    c = crossover(s, "vit", "cnn")
    assert c["crossover_size"] is None and c["largest_size"] == 4000
    assert c["gap_first"] == pytest.approx(5.0) and c["gap_last"] == pytest.approx(10.0) and not c["gap_shrinks"]
    assert "no crossover up to 4,000 images" in c["text"] and "does not shrink" in c["text"]
    ahead = crossover(_summary({"t": {10: 0.9, 20: 0.8, 40: 0.95}, "r": {10: 0.8, 20: 0.85, 40: 0.9}}), "t", "r")
    assert ahead["crossover_size"] == 10 and ahead["behind_again"] == [20]
    with pytest.raises(DataError, match="share no training size"):
        crossover(_summary({"a": {10: 0.5}, "b": {20: 0.5}}), "a", "b")


def test_report_table_has_mean_and_std_per_line():
    s = _summary({"vit": {250: 0.70, 500: 0.80}, "cnn": {250: 0.90, 500: 0.93}})
    text = format_report(s, [crossover(s, "vit", "cnn")])
    assert "| images | vit | cnn |" in text
    assert "| 250 | 70.0 ± 1.0 | 90.0 ± 1.0 |" in text
    assert "no crossover up to 500 images" in text


# ---------------------------------------------------------------------------
# Settings
# ---------------------------------------------------------------------------


def test_lines_and_bad_settings():
    config = SmallDataConfig(models=("vit", "cnn"), vit_remedies="augment, patch4,conv-stem")
    assert [line.name for line in plan_lines(config)] == ["vit", "cnn", "vit+augment", "vit-patch4", "vit+conv-stem"]
    assert SmallDataConfig(train_sizes=(500, 250)).train_sizes == (250, 500)
    for kwargs, message in [
        ({"vit_remedies": "dropout"}, "unknown ViT remedy"),
        ({"vit_remedies": "patch4,patch2"}, "one patch size"),
        ({"vit_remedies": "augment", "models": ("cnn",)}, "add vit"),
        ({"task": "sequence", "vit_remedies": "augment"}, "image task"),
        ({"train_sizes": (250, 250)}, "given twice"),
        ({"train_sizes": (1,)}, "training size"),
        ({"task": "points"}, "unknown task"),
        ({"models": ("vit", "gpt")}, "unknown model"),
    ]:
        with pytest.raises(ConfigError, match=message):
            SmallDataConfig(**kwargs)


def test_a_size_beyond_the_data_is_refused_before_training(idx_folder, tmp_path):
    config = SmallDataConfig(data=str(idx_folder), train_sizes=(40, 500), quick=True, device="cpu", progress=False)
    with pytest.raises(DataError, match=r"500 is more than the 240 training images.*--data"):
        run_small_data_study(tmp_path / "study", config)
    assert not (tmp_path / "study").exists()  # nothing left behind


# ---------------------------------------------------------------------------
# A quick study end to end
# ---------------------------------------------------------------------------


def _config(idx_folder, **overrides) -> SmallDataConfig:
    settings = dict(
        data=str(idx_folder),
        models=("vit", "cnn"),
        vit_remedies=("augment", "conv-stem"),
        train_sizes=(40, 80),
        seeds=(0, 1),
        num_test=50,
        quick=True,
        device="cpu",
        progress=False,
    )
    return SmallDataConfig(**{**settings, **overrides})


@pytest.fixture(scope="module")
def study(idx_folder, tmp_path_factory):
    folder = tmp_path_factory.mktemp("small") / "study"
    return folder, run_small_data_study(folder, _config(idx_folder))


def test_study_writes_tidy_tables_report_and_figure(study):
    folder, out = study
    rows = _rows(folder / "runs.csv")
    assert len(rows) == 4 * 2 * 2  # lines x sizes x seeds
    for column in ("line", "model", "remedy", "train_size", "seed", "parameters", "steps", "test_accuracy", "status"):
        assert column in rows[0]
    assert {r["line"] for r in rows} == {"vit", "cnn", "vit+augment", "vit+conv-stem"}
    assert {r["status"] for r in rows} == {"trained"}
    assert {r["test_examples"] for r in rows} == {"50"}  # the same test images for every size and seed
    assert all(0.0 <= float(r["test_accuracy"]) <= 1.0 for r in rows)
    stem = [int(r["parameters"]) for r in rows if r["line"] == "vit+conv-stem"]
    assert min(stem) > max(int(r["parameters"]) for r in rows if r["line"] == "vit")
    summary = _rows(folder / "summary.csv")
    assert len(summary) == 4 * 2 and {r["seeds"] for r in summary} == {"2"}
    vit40 = [float(r["test_accuracy"]) for r in rows if r["line"] == "vit" and r["train_size"] == "40"]
    row = next(r for r in summary if r["line"] == "vit" and r["train_size"] == "40")
    assert float(row["mean_accuracy"]) == pytest.approx(np.mean(vit40))
    assert float(row["std_accuracy"]) == pytest.approx(np.std(vit40, ddof=1))
    results = json.loads((folder / "results.json").read_text())
    assert [c["attention"] for c in results["crossovers"]] == ["vit", "vit+augment", "vit+conv-stem"]
    assert {c["reference"] for c in results["crossovers"]} == {"cnn"}
    assert "Crossover" in (folder / "report.md").read_text() and out["report"] in (folder / "report.md").read_text()
    figure = folder / sd.FIGURE
    assert figure.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n" and b"attnlab-output" in figure.read_bytes()
    assert sorted(p.name for p in (folder / "runs").iterdir())[0] == "cnn-n40-seed0"


def test_rerun_skips_finished_runs_and_refuses_other_settings(study, idx_folder):
    folder, out = study
    again = run_small_data_study(folder, _config(idx_folder))
    assert {r["status"] for r in again["rows"]} == {"skipped (finished before)"}
    assert [r["test_accuracy"] for r in again["rows"]] == [r["test_accuracy"] for r in out["rows"]]
    with pytest.raises(ConfigError, match=r"other settings \(.*train\.max_iters 4 \(now 6\).*--force"):
        run_small_data_study(folder, _config(idx_folder, min_steps=6, models=("cnn",), vit_remedies=()))


def test_force_trains_a_changed_run_again(idx_folder, tmp_path):
    config = _config(idx_folder, models=("mlp",), vit_remedies=(), train_sizes=(40,), seeds=(0,))
    run_small_data_study(tmp_path / "s", config)
    changed = _config(idx_folder, models=("mlp",), vit_remedies=(), train_sizes=(40,), seeds=(0,), min_steps=6)
    out = run_small_data_study(tmp_path / "s", changed, force=True)
    assert [r["status"] for r in out["rows"]] == ["trained again (settings changed, --force)"]
    assert out["rows"][0]["steps"] == 6


def test_an_interrupted_run_resumes_where_it_stopped(idx_folder, tmp_path, monkeypatch):
    """Stopped by a signal mid-run (it checkpoints at the next step), the run resumes and ends exactly as an unbroken one."""
    from attnlab.train.trainer import Trainer

    config = _config(idx_folder, models=("vit",), vit_remedies=(), train_sizes=(40,), seeds=(0,), min_steps=8)
    unbroken = run_small_data_study(tmp_path / "unbroken", config)["rows"][0]

    save = Trainer.save_checkpoint

    def stop_after_first(self):
        save(self)
        if 0 < self.step < self.config.max_iters:
            self._stop_signal = "SIGINT"  # what Ctrl-C does

    monkeypatch.setattr(Trainer, "save_checkpoint", stop_after_first)
    with pytest.raises(sd.SmallDataInterrupted, match="step 5 of 8.*run the same command again"):
        run_small_data_study(tmp_path / "broken", config)
    monkeypatch.setattr(Trainer, "save_checkpoint", save)
    resumed = run_small_data_study(tmp_path / "broken", config)["rows"][0]
    assert resumed["status"] == "resumed" and resumed["steps"] == 8
    assert resumed["test_accuracy"] == unbroken["test_accuracy"]
    import torch

    from attnlab.models.registry import load_model

    a, _ = load_model(tmp_path / "unbroken" / "runs" / "vit-n40-seed0")
    b, _ = load_model(tmp_path / "broken" / "runs" / "vit-n40-seed0")
    for (name, p), q in zip(a.state_dict().items(), b.state_dict().values()):
        torch.testing.assert_close(p, q, msg=name)


def test_sequence_study_on_fixed_pools(tmp_path):
    config = SmallDataConfig(
        task="sequence",
        models=("lstm", "transformer"),
        seq_len=8,
        train_sizes=(30, 60),
        seeds=(0,),
        quick=True,
        device="cpu",
        progress=False,
    )
    out = run_small_data_study(tmp_path / "seq", config)
    assert [(r["line"], r["train_size"]) for r in out["rows"]] == [
        ("lstm", 30),
        ("lstm", 60),
        ("transformer", 30),
        ("transformer", 60),
    ]
    assert {r["test_examples"] for r in out["rows"]} == {7 * 10}  # 10 probe sequences at each distance 1..7
    assert [(c["attention"], c["reference"]) for c in out["crossovers"]] == [("transformer", "lstm")]
    task = sd._sequence_task(config)
    small, _ = task.pool(30, 0)
    large, _ = task.pool(60, 0)
    assert np.array_equal(small["input_ids"], large["input_ids"][:30])  # nested pools
    assert len({row.tobytes() for row in large["input_ids"]}) == 60  # distinct sequences


def test_cli_runs_the_study_and_refuses_flags_it_does_not_take(idx_folder, tmp_path, capsys):
    from attnlab.cli import main

    base = ["compare", "mnist", "--data", str(idx_folder), "--quick", "--no-progress", "--device", "cpu"]
    argv = base + ["--models", "mlp", "--train-sizes", "40", "--seeds", "0", "--num-test", "20"]
    assert main(argv + ["--out", str(tmp_path / "a")]) == 0
    printed = capsys.readouterr().out
    assert "small-data study of mlp" in printed and "| images | mlp |" in printed and "runs.csv" in printed
    assert main(argv + ["--num-train", "40", "--out", str(tmp_path / "b")]) == 2
    assert "--num-train does not apply to the small-data study" in capsys.readouterr().err
    assert main(argv + ["--seeds", "0,0", "--out", str(tmp_path / "c")]) == 2

"""The transfer study: pretrain, fine-tune at several target sizes, scratch baselines, tables, figures, the CLI.

Every study here is a tiny one (a 1x16 GPT, a few optimizer steps, texts of a few thousand
characters), so a whole study takes a second or two; one finished study is shared by the
tests that only read or extend it (copied first when a test changes it).
"""

from __future__ import annotations

import csv
import json
import math
import shutil
import signal

import numpy as np
import pytest

from attnlab.cli import main
from attnlab.errors import ConfigError, DataError
from attnlab.runs import is_our_file, read_marker
from attnlab.train import transfer as tr
from attnlab.train.transfer import TransferConfig, gain_rows, gain_trend, run_transfer_study

SOURCE = "".join(
    f"line {i}: the quick brown fox jumps over {i % 7} lazy dogs, and the cat watches.\n" for i in range(120)
)
TARGET = "".join(
    f"Shall I compare thee to a summer's day {i}? Thou art more lovely and more temperate;\n" for i in range(40)
)
SIZES = (300, 1200)


@pytest.fixture(scope="module")
def texts(tmp_path_factory):
    root = tmp_path_factory.mktemp("texts")
    (root / "source.txt").write_text(SOURCE, encoding="utf-8")
    (root / "target.txt").write_text(TARGET, encoding="utf-8")
    return {"source": str(root / "source.txt"), "target": str(root / "target.txt")}


def tiny(texts, **kw) -> TransferConfig:
    settings = dict(
        source=texts["source"],
        target=texts["target"],
        target_sizes=SIZES,
        seeds=(0,),
        size="1x16",
        pretrain_tokens=2048,  # 8 steps of 8 x 32
        finetune_steps=6,
        quick=True,
        eval_iters=2,
        evaluations=3,
        device="cpu",
        progress=False,
    )
    settings.update(kw)
    return TransferConfig(**settings)


@pytest.fixture(scope="module")
def study(tmp_path_factory, texts):
    out = tmp_path_factory.mktemp("study") / "transfer"
    return out, run_transfer_study(out, tiny(texts))


def read_csv(path):
    lines = path.read_text(encoding="utf-8").splitlines()
    assert lines[0].startswith("# attnlab-output")
    return list(csv.DictReader(lines[1:]))


# --------------------------------------------------------------------------- the study and its tables


def test_the_study_writes_runs_curves_gains_and_figures(study):
    out, result = study
    rows = read_csv(out / "runs.csv")
    names = [r["run"] for r in rows]
    assert names == [
        "pretrain-seed0",
        "finetune-300-seed0",
        "scratch-300-seed0",
        "finetune-1200-seed0",
        "scratch-1200-seed0",
    ]
    for column in ("kind", "target_chars", "seed", "steps", "first_val_loss", "best_val_loss", "val_loss", "status"):
        assert column in rows[0], column
    assert [r["status"] for r in rows] == ["trained"] * 5
    assert rows[0]["steps"] == "8" and all(r["steps"] == "6" for r in rows[1:])
    for r in rows:
        run = out / "runs" / r["run"]
        assert json.loads((run / "results.json").read_text())["step"] == int(r["steps"])
        marker = read_marker(run)  # an ordinary run folder, with the study's record of what it is
        assert marker["model"]["embed_dim"] == 16 and marker["transfer"]["kind"] == r["kind"]
        assert float(r["best_val_loss"]) <= min(float(r["first_val_loss"]), float(r["val_loss"]))
    # curves.csv: one row a (run, evaluation): step 0, then every 2 steps (6 steps, 3 evaluations)
    curves = read_csv(out / "curves.csv")
    assert {c["run"] for c in curves} == set(names)
    steps = [int(c["step"]) for c in curves if c["run"] == "finetune-300-seed0"]
    assert steps == [0, 2, 4, 6]
    assert {"kind", "target_chars", "seed", "step", "tokens", "val_loss"} <= set(curves[0])
    last = [c for c in curves if c["run"] == "scratch-1200-seed0"][-1]
    assert float(last["val_loss"]) == pytest.approx(float(rows[-1]["val_loss"]))
    # gains.csv: one row a size, the gain = scratch - fine-tuned of the same seed
    gains = read_csv(out / "gains.csv")
    assert [int(g["target_chars"]) for g in gains] == list(SIZES)
    by = {r["run"]: r for r in rows}
    for g in gains:
        label = g["target_chars"]
        expect = float(by[f"scratch-{label}-seed0"]["best_val_loss"]) - float(
            by[f"finetune-{label}-seed0"]["best_val_loss"]
        )
        assert float(g["gain_best_mean"]) == pytest.approx(expect)
    for name in ("transfer_curves.png", "transfer_gain.png"):
        assert is_our_file(out / name)
    summary = json.loads((out / "results.json").read_text())
    assert summary["runs"] == 5 and summary["settings"]["target_sizes"] == list(SIZES)
    assert summary["conclusion"] in result["report"] and (out / "report.md").is_file()
    assert read_marker(out)["created_by"] == "transfer"
    assert [r["run"] for r in tr.read_study(out)] == names


def test_fine_tuning_starts_from_the_pretrained_weights(study, texts):
    """The fine-tuned run's first evaluation is the pretrained model's loss on the target's validation set."""
    import torch
    import torch.nn.functional as F

    from attnlab.checkpoint import read_model
    from attnlab.models.registry import load_model

    out, _ = study
    config = tiny(texts)
    pretrained = out / "runs" / "pretrain-seed0"
    model, _ = load_model(pretrained)
    tokenizer = read_model(pretrained).tokenizer
    ids = np.asarray(tokenizer.encode(TARGET))
    val = ids[int(len(ids) * 0.9) :]  # the target's last 10%
    windows = tr._SplitData(ids[:300], val, config.context).eval_batches(config.batch, config.eval_batches)
    losses = []
    with torch.no_grad():
        for b in windows:
            logits = model(torch.as_tensor(b["input_ids"])).logits
            losses.append(float(F.cross_entropy(logits.flatten(0, 1), torch.as_tensor(b["targets"]).flatten())))
    expected = float(np.mean(losses))
    for size in ("300", "1200"):
        curve = tr.run_curve(out / "runs" / f"finetune-{size}-seed0")
        assert curve[0]["step"] == 0 and curve[0]["val_loss"] == pytest.approx(expected, abs=1e-5)
    scratch = tr.run_curve(out / "runs" / "scratch-300-seed0")[0]["val_loss"]
    assert abs(scratch - expected) > 0.01  # a fresh model starts elsewhere (only 8 pretraining steps here)


def test_every_run_shares_one_vocabulary_of_both_texts(study):
    out, _ = study
    from attnlab.checkpoint import read_model

    vocabularies = {tuple(read_model(p).tokenizer.chars) for p in sorted((out / "runs").iterdir())}
    assert len(vocabularies) == 1
    (chars,) = vocabularies
    assert set(chars) == set(SOURCE) | set(TARGET)


def test_running_again_skips_finished_runs_and_new_sizes_train_only_what_is_new(study, texts, tmp_path, monkeypatch):
    src, first = study
    out = tmp_path / "again"
    shutil.copytree(src, out)

    def no_training(*args, **kwargs):
        raise AssertionError("a finished run was trained again")

    monkeypatch.setattr(tr, "_fit", no_training)
    second = run_transfer_study(out, tiny(texts, figures=False))
    assert [r["status"] for r in second["rows"]] == ["skipped (finished before)"] * 5
    assert [r["val_loss"] for r in second["rows"]] == [r["val_loss"] for r in first["rows"]]
    monkeypatch.undo()
    third = run_transfer_study(out, tiny(texts, figures=False, target_sizes=(300, 600, 1200)))
    trained = [r["run"] for r in third["rows"] if r["status"] == "trained"]
    assert trained == ["finetune-600-seed0", "scratch-600-seed0"]


def test_an_interrupted_run_resumes_where_it_stopped(study, texts, tmp_path, monkeypatch):
    from attnlab.train.engine import TorchEngine
    from attnlab.train.trainer import TrainingInterrupted

    src, first = study
    out = tmp_path / "interrupted"
    out.mkdir()
    shutil.copytree(src / "runs" / "pretrain-seed0", out / "runs" / "pretrain-seed0")
    (out / "run.json").write_text((src / "run.json").read_text())
    step = TorchEngine.train_step
    calls = {"n": 0}

    def interrupting(self, micro, lr):
        calls["n"] += 1
        if calls["n"] == 3:  # the third step of the first fine-tuning run
            signal.raise_signal(signal.SIGINT)  # Ctrl-C: the Trainer finishes the step and checkpoints
        return step(self, micro, lr)

    monkeypatch.setattr(TorchEngine, "train_step", interrupting)
    with pytest.raises(TrainingInterrupted):
        run_transfer_study(out, tiny(texts, figures=False))
    monkeypatch.undo()
    resumed = run_transfer_study(out, tiny(texts, figures=False))
    statuses = {r["run"]: r["status"] for r in resumed["rows"]}
    assert statuses["pretrain-seed0"] == "skipped (finished before)"
    assert statuses["finetune-300-seed0"] == "resumed"
    expected = {r["run"]: r["val_loss"] for r in first["rows"]}
    for r in resumed["rows"]:  # exactly where an uninterrupted study ends, on CPU
        assert r["val_loss"] == pytest.approx(expected[r["run"]], abs=1e-5), r["run"]
    assert json.loads((out / "runs" / "finetune-300-seed0" / "transfer_point.json").read_text())["sessions"] == 2


def test_a_run_of_other_settings_is_refused_unless_forced(study, texts, tmp_path):
    src, first = study
    out = tmp_path / "other"
    shutil.copytree(src, out)
    with pytest.raises(ConfigError, match=r"other settings.*train\.lr.*--force"):
        run_transfer_study(out, tiny(texts, figures=False, finetune_lr=2e-3))
    forced = run_transfer_study(out, tiny(texts, figures=False, finetune_lr=2e-3), force=True)
    statuses = {r["run"]: r["status"] for r in forced["rows"]}
    assert statuses["finetune-300-seed0"].startswith("trained (replaced")
    assert statuses["scratch-300-seed0"] == statuses["pretrain-seed0"] == "skipped (finished before)"
    assert (out / "runs" / "finetune-300-seed0.replaced" / "results.json").is_file()  # the old run is kept
    assert read_marker(out / "runs" / "finetune-300-seed0")["train"]["lr"] == 2e-3


# --------------------------------------------------------------------------- sizes, texts and the trend


def test_sizes_are_checked_against_the_target_text(texts):
    loaded = tr.load_texts(tiny(texts))
    assert loaded.pool_chars == int(len(TARGET) * 0.9) and loaded.val_chars == len(TARGET) - loaded.pool_chars
    with pytest.raises(ConfigError, match="more than the target"):
        tr.target_sizes(tiny(texts, target_sizes=(300, 10_000)), loaded)
    with pytest.raises(ConfigError, match="too small for a context of 32"):
        tr.target_sizes(tiny(texts, target_sizes=(20,)), loaded)
    # without sizes: the defaults that fit, else the whole training text
    assert tr.target_sizes(tiny(texts, target_sizes=None), loaded) == (1000,)
    assert tr.parse_target_size("5k") == 5000 and tr.parse_target_size("1.5M") == 1_500_000
    for bad in ("0", "lots", "-3", "2.5"):
        with pytest.raises(ConfigError, match="target size"):
            tr.parse_target_size(bad)


def test_the_licenses_text_is_real_prose_without_repeated_paragraphs():
    text = tr.license_text()
    assert len(text) > 20_000 and text == tr.license_text()  # the same text every time
    paragraphs = [" ".join(p.split()) for p in text.split("\n\n") if p.strip()]
    assert len(paragraphs) == len(set(paragraphs))
    words = text.lower().split()
    assert {"permission", "software", "copyright", "redistribution"} <= set(words)
    assert tr.load_target("licenses").name == "licenses"


def test_the_trend_of_the_gain_is_computed():
    def rows(gains):
        out = []
        for chars, per_seed in gains.items():
            for seed, gain in enumerate(per_seed):
                for kind, loss in (("finetune", 2.0), ("scratch", 2.0 + gain)):
                    out.append(
                        dict(
                            kind=kind,
                            target_chars=chars,
                            seed=seed,
                            first_val_loss=3.0,
                            best_val_loss=loss,
                            val_loss=loss,
                        )
                    )
        return out

    shrinking = gain_rows(rows({1000: [0.5, 0.7], 10_000: [0.3, 0.35], 100_000: [0.05, 0.1]}))
    assert [g["gain_best_mean"] for g in shrinking] == pytest.approx([0.6, 0.325, 0.075])
    assert shrinking[0]["gain_best_min"] == pytest.approx(0.5) and shrinking[0]["gain_best_max"] == pytest.approx(0.7)
    trend = gain_trend(shrinking)
    assert trend["shrinks"] and trend["monotone"] and trend["beyond_spread"]
    assert trend["slope_per_decade"] == pytest.approx(np.polyfit([3, 4, 5], [0.6, 0.325, 0.075], 1)[0])
    assert "shrinks as target data grows:" in tr._trend_sentence(trend)
    growing = gain_trend(gain_rows(rows({1000: [0.1], 10_000: [0.3]})))
    assert growing["shrinks"] is False and growing["beyond_spread"] is None
    assert "does not shrink" in tr._trend_sentence(growing)
    assert gain_trend(gain_rows(rows({1000: [0.1]})))["shrinks"] is None


# --------------------------------------------------------------------------- the command line


def error_line(capsys) -> str:
    err = capsys.readouterr().err.strip().splitlines()
    assert err
    return err[-1]


@pytest.mark.parametrize(
    "flags, message",
    [
        (["--target-sizes", "300,10k"], "more than the target"),
        (["--target-sizes", "0"], "target size"),
        (["--target-sizes", "lots"], "target size"),
        (["--target-sizes", "300,300"], "once"),
        (["--size", "2y32"], "LAYERSxWIDTH"),
        (["--seeds", "-1"], "seed"),
        (["--pretrain-tokens", "100"], "less than one optimizer step"),
        (["--device", "tpu"], "unknown device"),
        (["--target", "/no/such/file.txt"], "--target: data '/no/such/file.txt' is neither a file nor"),
    ],
)
def test_bad_flags_are_one_line_and_exit_2(tmp_path, capsys, texts, flags, message):
    out = tmp_path / "study"
    argv = ["transfer", "--out", str(out), "--quick", "--no-progress", "--source", texts["source"]]
    if "--target" not in flags:
        argv += ["--target", texts["target"]]
    assert main(argv + flags) == 2
    line = error_line(capsys)
    assert line.startswith("attnlab") and message in line, line
    assert not out.exists()  # nothing left behind


def test_an_unreadable_target_is_a_clear_error(tmp_path, capsys, texts):
    latin1 = tmp_path / "latin1.txt"
    latin1.write_bytes("caf\xe9 au lait\n".encode("latin-1") * 50)
    for target, message in ((tmp_path, "is a folder"), (latin1, "is not UTF-8 text")):
        with pytest.raises(DataError, match=f"--target: .*{message}"):
            tr.load_texts(tiny(texts, target=str(target)))
        assert main(["transfer", "--out", str(tmp_path / "s"), "--target", str(target), "--quick"]) == 2
        assert message in error_line(capsys)


def test_the_command_runs_a_tiny_study(tmp_path, capsys, texts):
    out = tmp_path / "study"
    argv = ["transfer", "--out", str(out), "--quick", "--source", texts["source"], "--target", texts["target"]]
    argv += ["--target-sizes", "300,1200", "--size", "1x16", "--pretrain-tokens", "2k", "--finetune-steps", "4"]
    argv += ["--device", "cpu", "--no-progress", "--no-figures"]
    assert main(argv) == 0
    printed = capsys.readouterr().out
    assert "| target chars |" in printed and "transfer gain" in printed and str(out / "gains.csv") in printed
    rows = read_csv(out / "runs.csv")
    assert len(rows) == 5 and all(math.isfinite(float(r["val_loss"])) for r in rows)
    assert not (out / "transfer_curves.png").exists()

"""`attnlab compare mnist | sequence` end to end in-process, and every kind of bad input."""

from __future__ import annotations

import json

import pytest

from attnlab.cli import main


def error_line(capsys) -> str:
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1, err  # one line, never a traceback
    assert err[0].startswith("attnlab")
    return err[0]


def test_compare_mnist_cli(idx_folder, tmp_path, capsys):
    out = tmp_path / "run"
    rc = main(
        [
            "compare",
            "mnist",
            "--models",
            "mlp",
            "--data",
            str(idx_folder),
            "--quick",
            "--epochs",
            "2",
            "--no-progress",
            "--out",
            str(out),
        ]
    )
    assert rc == 0
    printed = capsys.readouterr().out
    assert "| model | parameters |" in printed and "| mlp |" in printed
    assert f"wrote {out / 'results.json'}" in printed and f"model mlp: {out / 'models' / 'mlp'}" in printed
    results = json.loads((out / "results.json").read_text())
    assert list(results["models"]) == ["mlp"] and results["models"]["mlp"]["epochs"] == 2
    assert results["settings"]["quick"] is True and results["data"]["num_train"] == 240


def test_compare_sequence_cli(tmp_path, capsys):
    out = tmp_path / "seq"
    rc = main(
        [
            "compare",
            "sequence",
            "--models",
            "gru,transformer",
            "--seq-len",
            "8",
            "--quick",
            "--timing-lengths",
            "none",
            "--no-progress",
            "--no-save-models",
            "--out",
            str(out),
        ]
    )
    assert rc == 0
    printed = capsys.readouterr().out
    assert "| gru |" in printed and "| transformer |" in printed and "first k below 90%" in printed
    results = json.loads((out / "results.json").read_text())
    assert list(results["models"]) == ["gru", "transformer"] and results["task"]["seq_len"] == 8
    assert not (out / "models").exists() and (out / "accuracy_by_distance.png").is_file()


@pytest.mark.parametrize(
    "args, message",
    [
        (["mnist", "--models", "vit,resnet"], "valid models: vit, cnn, mlp"),
        (["mnist", "--epochs", "0"], "--epochs: the value must be from 1 to 100,000, got 0"),
        (["mnist", "--epochs", "three"], "--epochs: the value expects a whole number, got 'three'"),
        (["mnist", "--epochs", "1000000"], "--epochs: the value must be from 1 to 100,000, got 1,000,000"),
        (["mnist", "--lr", "-0.1"], "--lr: the value must be greater than 0 and at most 100, got -0.1"),
        (["mnist", "--lr", "nan"], "--lr: the value must be a finite number"),
        (["mnist", "--batch-size", "0"], "--batch-size: the value must be from 1 to 65,536, got 0"),
        (["mnist", "--num-train", "5"], "--num-train: the value must be from 10 to 10,000,000, got 5"),
        (["mnist", "--seed", "-1"], "--seed: the seed must be from 0 to 4,294,967,295, got -1"),
        (["mnist", "--data", "/no/such/folder"], "neither one of mnist5k, mnist, fashion, digits"),
        (["mnist", "--device", "tpu"], "unknown device"),
        (["mnist", "--frobnicate"], "unrecognized arguments"),
        (["sequence", "--models", "lstm,mamba"], "valid models: rnn, lstm, gru, transformer"),
        (["sequence", "--task", "copy"], "valid tasks: recall"),
        (["sequence", "--seq-len", "2"], "--seq-len: the value must be from 3 to 4,096, got 2"),
        (["sequence", "--seq-len", "100000"], "--seq-len: the value must be from 3 to 4,096, got 100,000"),
        (["sequence", "--epochs", "-1"], "--epochs: the value must be from 1 to 100,000, got -1"),
        (["sequence", "--timing-lengths", "16,100000"], "each length must be from 2 to 4,096, got 100,000"),
        (["sequence", "--timing-lengths", "16,x"], "comma-separated whole numbers"),
        (["sequence", "--models", "rnn,rnn"], "listed twice"),
    ],
)
def test_bad_input_is_one_line_and_exit_code_2(tmp_path, capsys, args, message):
    out = tmp_path / "out"
    rc = main(["compare", *args, "--out", str(out)])
    assert rc == 2
    assert message in error_line(capsys)
    assert not out.exists()  # nothing written for a run that never started


def test_data_folder_problems(tmp_path, capsys):
    empty = tmp_path / "empty"
    empty.mkdir()
    assert main(["compare", "mnist", "--data", str(empty), "--out", str(tmp_path / "o")]) == 2
    assert "no IDX files found" in error_line(capsys)
    bad = tmp_path / "bad"
    bad.mkdir()
    (bad / "t10k-images-idx3-ubyte").write_bytes(b"\x00\x00\x08\x03" + b"\x00" * 5)
    (bad / "t10k-labels-idx1-ubyte").write_bytes(b"\x00\x00\x08\x01\x00\x00\x00\x01\x07")
    assert main(["compare", "mnist", "--data", str(bad), "--out", str(tmp_path / "o")]) == 2
    assert "truncated" in error_line(capsys)
    afile = tmp_path / "file.txt"
    afile.write_text("x")
    assert main(["compare", "mnist", "--data", "digits", "--quick", "--out", str(afile)]) == 2
    assert "is a file" in error_line(capsys)


def test_missing_out_and_missing_comparison(capsys):
    assert main(["compare", "mnist"]) == 2
    assert "--out" in error_line(capsys)
    assert main(["compare"]) == 2
    assert "choose a comparison" in error_line(capsys)


def test_help_lists_the_options(capsys):
    assert main(["compare", "mnist", "--help"]) == 0
    text = capsys.readouterr().out
    assert "--models" in text and "--epochs" in text and "mnist5k" in text
    assert main(["compare", "sequence", "--help"]) == 0
    assert "--seq-len" in capsys.readouterr().out


def test_a_stopped_comparison_says_what_was_saved(idx_folder, tmp_path, capsys, monkeypatch):
    """Ctrl-C while the second model trains: the first model's folder is named, exit code 130."""
    from attnlab.train import trainer as trainer_module

    fit, calls = trainer_module.Trainer.fit, []

    def stop_second(self):
        calls.append(1)
        if len(calls) == 2:  # what the Trainer raises after a signal, having finished its step
            raise trainer_module.TrainingInterrupted(3, None, "SIGINT")
        return fit(self)

    monkeypatch.setattr(trainer_module.Trainer, "fit", stop_second)
    out = tmp_path / "run"
    argv = ["compare", "mnist", "--models", "mlp,cnn", "--data", str(idx_folder), "--quick", "--epochs", "1"]
    rc = main([*argv, "--no-progress", "--out", str(out)])
    assert rc == 130
    line = capsys.readouterr().err.strip().splitlines()[-1]
    assert line.startswith("attnlab: comparison stopped by SIGINT while training cnn (step 3 of ")
    assert str(out / "models" / "mlp") in line and "tables and figures were not written" in line
    assert (out / "models" / "mlp" / "config.json").is_file() and not (out / "results.json").exists()


def test_a_stop_before_any_model_finished(idx_folder, tmp_path, capsys, monkeypatch):
    from attnlab.train import trainer as trainer_module

    def stop(self):
        raise trainer_module.TrainingInterrupted(1, None, "SIGTERM")

    monkeypatch.setattr(trainer_module.Trainer, "fit", stop)
    argv = ["compare", "mnist", "--models", "mlp", "--data", str(idx_folder), "--quick", "--no-progress"]
    assert main([*argv, "--out", str(tmp_path / "run")]) == 130
    line = capsys.readouterr().err.strip().splitlines()[-1]
    assert "stopped by SIGTERM while training mlp" in line and "nothing was saved" in line

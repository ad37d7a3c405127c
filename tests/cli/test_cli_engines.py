"""One model, two engines, from the command line: train, eval and generate with --engine numpy|torch."""

import json

import pytest

from attnlab.cli import main

TEXT = ("the quick brown fox jumps over the lazy dog. " * 40 + "pack my box with five dozen liquor jugs.\n") * 12


@pytest.fixture(scope="module")
def runs(tmp_path_factory):
    d = tmp_path_factory.mktemp("engines")
    corpus = d / "corpus.txt"
    corpus.write_text(TEXT, encoding="utf-8")
    common = [
        "--data",
        str(corpus),
        "--preset",
        "nano",
        "--max-iters",
        "25",
        "--train.eval_interval=0",
        "--train.progress=false",
        "--seed",
        "4",
    ]
    assert main(["train", "--engine", "numpy", "--out", str(d / "numpy")] + common) == 0
    assert main(["train", "--engine", "torch", "--out", str(d / "torch")] + common) == 0
    return corpus, d / "numpy", d / "torch"


def test_numpy_run_has_the_same_files_as_a_torch_run(runs):
    _, numpy_run, torch_run = runs
    for name in (
        "config.json",
        "model.safetensors",
        "attnlab_tokenizer.json",
        "training_state.json",
        "metrics.jsonl",
        "results.json",
    ):
        assert (numpy_run / name).is_file(), name
    a = json.loads((numpy_run / "results.json").read_text())
    b = json.loads((torch_run / "results.json").read_text())
    assert a["engine"] == "numpy" and b["engine"] == "torch"
    assert a["step"] == b["step"] == 25
    # same batches and schedule (each engine draws its own initial weights): nearly the same loss
    assert a["val_loss"] == pytest.approx(b["val_loss"], rel=0.02)


@pytest.mark.parametrize("run_index", [1, 2])
def test_each_engine_evaluates_either_checkpoint_alike(runs, capsys, run_index):
    corpus, checkpoint = runs[0], runs[run_index]
    losses = {}
    for engine in ("numpy", "torch"):
        assert main(["eval", "--engine", engine, "--checkpoint", str(checkpoint), "--data", str(corpus), "--json"]) == 0
        losses[engine] = json.loads(capsys.readouterr().out)["loss"]
    assert losses["numpy"] == pytest.approx(losses["torch"], rel=1e-5)


@pytest.mark.parametrize("run_index", [1, 2])
def test_greedy_generation_is_the_same_through_both_engines(runs, capsys, run_index):
    checkpoint = runs[run_index]
    texts = {}
    for engine in ("numpy", "torch"):
        assert (
            main(
                [
                    "generate",
                    "--engine",
                    engine,
                    "--checkpoint",
                    str(checkpoint),
                    "--prompt",
                    "the quick",
                    "--max-new-tokens",
                    "40",
                    "--temperature",
                    "0",
                ]
            )
            == 0
        )
        texts[engine] = capsys.readouterr().out
    assert texts["numpy"] == texts["torch"]
    assert texts["numpy"].startswith("the quick") and len(texts["numpy"].rstrip("\n")) == len("the quick") + 40


def test_resume_with_the_other_engine_is_refused(runs, capsys):
    corpus, numpy_run, _ = runs
    assert (
        main(
            [
                "train",
                "--engine",
                "torch",
                "--data",
                str(corpus),
                "--out",
                str(numpy_run),
                "--resume",
                "--max-iters",
                "30",
                "--train.progress=false",
            ]
        )
        == 2
    )
    assert "--engine numpy" in capsys.readouterr().err


def test_numpy_resume_continues(runs):
    corpus, numpy_run, _ = runs
    assert (
        main(
            [
                "train",
                "--engine",
                "numpy",
                "--data",
                str(corpus),
                "--out",
                str(numpy_run),
                "--resume",
                "--max-iters",
                "28",
                "--train.progress=false",
            ]
        )
        == 0
    )
    assert json.loads((numpy_run / "results.json").read_text())["step"] == 28

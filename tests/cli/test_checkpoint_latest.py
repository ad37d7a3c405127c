"""`--checkpoint latest`: the newest checkpoint of the runs folder, for docs and lab sheets.

`attnlab demo` writes runs/demo-TIMESTAMP, so a documented `--checkpoint runs/demo` cannot
be pasted; `--checkpoint latest` can. These tests train two tiny GPTs into a runs folder
and check which one each command reads, and the one-line errors when there is none.
"""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from attnlab.app import RUNS_ENV
from attnlab.cli import main

TINY = [
    "--preset",
    "nano",
    "--max-iters",
    "2",
    "--train.device=cpu",
    "--train.eval_iters=1",
    "--train.progress=false",
    "--train.batch_size=2",
    "--train.eval_interval=0",
    "--model.embed_dim=16",
    "--model.num_layers=1",
]


@pytest.fixture(scope="module")
def runs(tmp_path_factory) -> Path:
    root = tmp_path_factory.mktemp("latest") / "runs"
    for name in ("older", "newer"):
        assert main(["train", "--out", str(root / name), *TINY, "--seed", "1" if name == "older" else "2"]) == 0
    os.utime(root / "older" / "config.json", (1_000_000_000, 1_000_000_000))  # clearly the older one
    return root


@pytest.fixture
def in_runs(runs, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv(RUNS_ENV, str(runs))
    return runs


def test_latest_is_the_newest_checkpoint(in_runs, capsys):
    assert main(["generate", "--checkpoint", "latest", "--prompt", "The", "--max-new-tokens", "3"]) == 0
    err = capsys.readouterr().err
    assert "--checkpoint latest: newer" in err and str(in_runs) in err


def test_latest_reads_the_same_model_as_its_folder(in_runs, capsys):
    argv = ["generate", "--prompt", "The ", "--max-new-tokens", "8", "--temperature", "0"]
    assert main([*argv, "--checkpoint", "latest"]) == 0
    via_latest = capsys.readouterr().out
    assert main([*argv, "--checkpoint", str(in_runs / "newer")]) == 0
    assert capsys.readouterr().out == via_latest
    assert main([*argv, "--checkpoint", str(in_runs / "older")]) == 0
    assert capsys.readouterr().out != via_latest  # a different seed: the choice matters


def test_a_folder_named_latest_wins(in_runs, capsys, tmp_path):
    (tmp_path / "latest").mkdir()  # the user's own folder (no checkpoint in it)
    assert main(["generate", "--checkpoint", "latest", "--prompt", "The"]) == 2
    err = capsys.readouterr().err
    assert "--checkpoint latest:" not in err and "latest" in err


@pytest.mark.parametrize("state", ["missing", "empty"])
def test_no_checkpoint_is_one_line(state, tmp_path, monkeypatch, capsys):
    monkeypatch.chdir(tmp_path)
    root = tmp_path / "runs"
    if state == "empty":
        root.mkdir()
    monkeypatch.setenv(RUNS_ENV, str(root))
    assert main(["viz", "attention", "--checkpoint", "latest", "--text", "x", "--out", "a.png"]) == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1
    assert "--checkpoint latest" in err and "attnlab demo" in err
    assert ("does not exist" if state == "missing" else "holds no checkpoint") in err
    assert not (tmp_path / "a.png").exists()

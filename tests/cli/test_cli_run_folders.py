"""Every command that writes a folder refuses the user's folder, locks its run, and resumes as typed."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time

import pytest

from attnlab import runs
from attnlab.cli import main

TEXT = ("the quick brown fox jumps over the lazy dog. " * 40 + "pack my box with five dozen liquor jugs.\n") * 12


def error_line(capsys) -> str:
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1, err  # one line, never a traceback
    return err[0]


@pytest.fixture
def corpus(tmp_path):
    path = tmp_path / "corpus.txt"
    path.write_text(TEXT, encoding="utf-8")
    return path


def _users_folder(tmp_path):
    folder = tmp_path / "mine"
    folder.mkdir()
    (folder / "config.json").write_text('{"my": "experiment"}')
    (folder / "results.json").write_text('{"accuracy": 0.99}')
    (folder / "notes.md").write_text("do not lose me")
    return folder


def _train(corpus, out, *extra):
    return [
        "train",
        "--data",
        str(corpus),
        "--out",
        str(out),
        "--preset",
        "nano",
        "--max-iters",
        "2",
        "--train.eval_interval=0",
        "--train.progress=false",
        *extra,
    ]


def test_train_refuses_a_folder_of_the_users(tmp_path, corpus, capsys):
    folder = _users_folder(tmp_path)
    before = {p.name: p.read_text() for p in folder.iterdir()}
    assert main(_train(corpus, folder)) == 2
    line = error_line(capsys)
    assert "attnlab did not write" in line and "--force" in line
    assert {p.name: p.read_text() for p in folder.iterdir()} == before


def test_train_force_keeps_the_users_files(tmp_path, corpus, capsys):
    folder = _users_folder(tmp_path)
    assert main(_train(corpus, folder, "--force")) == 0
    assert json.loads((folder / "config.json.orig").read_text()) == {"my": "experiment"}
    assert json.loads((folder / "results.json.orig").read_text()) == {"accuracy": 0.99}
    assert (folder / "notes.md").read_text() == "do not lose me"
    assert json.loads((folder / "config.json").read_text())["format"] == "attnlab-checkpoint"
    marker = runs.read_marker(folder)
    assert set(marker["set_aside"]) == {"config.json", "results.json"} and marker["foreign_files"] == ["notes.md"]
    # the same command again, resumed: the folder is attnlab's now
    assert main(_train(corpus, folder, "--resume", "--max-iters", "3")) == 0


@pytest.mark.parametrize(
    "argv",
    [
        ["demo", "--seconds", "1", "--out", "{out}"],
        ["compare", "sequence", "--models", "gru", "--quick", "--out", "{out}"],
        ["figures", "foundations", "--only", "activations", "--out", "{out}"],
        ["train", "--task", "reverse", "--max-iters", "1", "--out", "{out}"],
        ["train", "--objective", "mlm", "--preset", "mini", "--max-iters", "1", "--out", "{out}"],
        [
            "probe",
            "--data",
            "amp",
            "--task",
            "seq-class",
            "--embedder",
            "onehot",
            "--probe",
            "linear",
            "--out",
            "{out}",
        ],
    ],
    ids=["demo", "compare", "figures", "seq2seq", "mlm", "probe"],
)
def test_every_folder_writer_refuses_the_users_folder(tmp_path, capsys, argv):
    folder = _users_folder(tmp_path)
    before = {p.name: p.read_text() for p in folder.iterdir()}
    assert main([a.replace("{out}", str(folder)) for a in argv]) == 2
    assert "attnlab did not write" in error_line(capsys)
    assert {p.name: p.read_text() for p in folder.iterdir()} == before


def test_viz_refuses_to_replace_the_users_file_but_replaces_its_own(tmp_path, capsys):
    mine = tmp_path / "pos.png"
    mine.write_bytes(b"my own picture")
    assert main(["viz", "positions", "--out", str(mine)]) == 2
    assert "attnlab did not write it" in error_line(capsys)
    assert mine.read_bytes() == b"my own picture"
    assert main(["viz", "positions", "--out", str(mine), "--force"]) == 0
    assert (tmp_path / "pos.png.orig").read_bytes() == b"my own picture"
    assert runs.is_our_file(mine)
    capsys.readouterr()
    for suffix in ("png", "svg", "pdf"):
        out = tmp_path / f"again.{suffix}"
        assert main(["viz", "positions", "--out", str(out)]) == 0
        assert runs.is_our_file(out), suffix
        assert main(["viz", "positions", "--out", str(out)]) == 0  # ours: written again without --force


def test_convert_refuses_the_users_folder(tmp_path, capsys):
    pytest.importorskip("transformers")
    from transformers import GPT2Config, GPT2LMHeadModel

    hf = tmp_path / "hf"
    GPT2LMHeadModel(
        GPT2Config(n_layer=1, n_head=2, n_embd=8, n_positions=16, vocab_size=50, bos_token_id=0, eos_token_id=0)
    ).save_pretrained(hf)
    capsys.readouterr()
    folder = _users_folder(tmp_path)
    assert main(["convert", "--from-hf", str(hf), "--out", str(folder)]) == 2
    assert "attnlab did not write" in error_line(capsys)
    assert main(["convert", "--from-hf", str(hf), "--out", str(tmp_path / "new")]) == 0


HOLD_TRAINING = """
import sys
from attnlab.cli import main
sys.exit(main(sys.argv[1:]))
"""


def test_two_trainings_on_one_folder(tmp_path, corpus, capsys):
    out = tmp_path / "run"
    first = subprocess.Popen(
        [
            sys.executable,
            "-c",
            HOLD_TRAINING,
            *_train(corpus, out)[:-4],
            "--max-iters",
            "100000",
            "--train.eval_interval=0",
            "--train.progress=false",
            "--train.max_time=120",
        ],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        env={**os.environ, "OMP_NUM_THREADS": "1"},
    )
    try:
        deadline = time.monotonic() + 60
        while runs.lock_holder(out) is None:
            assert first.poll() is None and time.monotonic() < deadline, "the first training did not start"
            time.sleep(0.1)
        assert main(_train(corpus, out, "--force")) == 2
        line = error_line(capsys)
        assert f"PID {first.pid}" in line and "being written" in line
        metrics = (out / "metrics.jsonl").read_text() if (out / "metrics.jsonl").exists() else ""
        assert all(json.loads(rec) for rec in metrics.splitlines())  # one writer: no interleaved lines
    finally:
        first.kill()
        first.wait()
    # SIGKILL left the lock file behind; it is stale, and the next run takes the folder
    assert runs.lock_holder(out) is None


def test_resume_accepts_the_same_command_and_names_a_real_difference(tmp_path, corpus, capsys):
    out = tmp_path / "run"
    assert main(_train(corpus, out)) == 0
    assert main(_train(corpus, out, "--resume", "--max-iters", "3")) == 0  # --preset nano, as first typed
    capsys.readouterr()
    assert main(_train(corpus, out, "--resume", "--max-iters", "4", "--model.num_heads=1")) == 2
    line = error_line(capsys)
    assert "model.num_heads is 1 now but" in line and "in the checkpoint" in line
    assert main(_train(corpus, out, "--resume", "--max-iters", "4", "--preset", "baby")) == 2
    line = error_line(capsys)
    assert "model.embed_dim is 128 now but" in line  # baby vs nano, named field by field

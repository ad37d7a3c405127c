"""Real processes: Ctrl-C / SIGTERM save a checkpoint, and torchrun data-parallel training."""

import json
import os
import signal
import subprocess
import sys
import time

import pytest

TEXT = ("the quick brown fox jumps over the lazy dog. " * 40 + "pack my box with five dozen liquor jugs.\n") * 12


def _env():
    env = dict(os.environ)
    env["PYTHONUNBUFFERED"] = "1"
    env["OMP_NUM_THREADS"] = "1"
    return env


@pytest.mark.parametrize("sig", [signal.SIGINT, signal.SIGTERM])
def test_signal_saves_checkpoint_and_run_resumes(tmp_path, sig):
    corpus = tmp_path / "c.txt"
    corpus.write_text(TEXT)
    out = tmp_path / "run"
    cmd = [
        sys.executable,
        "-m",
        "attnlab",
        "train",
        "--data",
        str(corpus),
        "--out",
        str(out),
        "--preset",
        "nano",
        "--max-iters",
        "100000",
        "--train.eval_interval=0",
        "--train.log_interval=1",
        "--train.progress=false",
    ]
    proc = subprocess.Popen(cmd, env=_env(), stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    metrics = out / "metrics.jsonl"
    deadline = time.time() + 60
    while time.time() < deadline:
        if metrics.is_file() and len(metrics.read_text().splitlines()) >= 3:
            break
        time.sleep(0.1)
    proc.send_signal(sig)
    stdout, stderr = proc.communicate(timeout=60)
    assert proc.returncode == 130, stderr
    assert "checkpoint saved" in stderr and "--resume" in stderr
    results = json.loads((out / "results.json").read_text())
    assert results["stopped_early"] == "signal"
    step = results["step"]
    assert step >= 3
    state = json.loads((out / "training_state.json").read_text())
    assert state["format"] == "attnlab-checkpoint"
    # resume for two more steps
    resumed = subprocess.run(
        [
            sys.executable,
            "-m",
            "attnlab",
            "train",
            "--data",
            str(corpus),
            "--out",
            str(out),
            "--resume",
            "--max-iters",
            str(step + 2),
            "--train.progress=false",
        ],
        env=_env(),
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert resumed.returncode == 0, resumed.stderr
    assert json.loads((out / "results.json").read_text())["step"] == step + 2


@pytest.mark.slow
def test_torchrun_two_cpu_processes(tmp_path):
    corpus = tmp_path / "c.txt"
    corpus.write_text(TEXT)
    out = tmp_path / "ddp"
    cmd = [
        sys.executable,
        "-m",
        "torch.distributed.run",
        "--standalone",
        "--nproc_per_node=2",
        "-m",
        "attnlab",
        "train",
        "--data",
        str(corpus),
        "--out",
        str(out),
        "--preset",
        "nano",
        "--max-iters",
        "6",
        "--train.eval_interval=3",
        "--train.batch_size=4",
        "--train.progress=false",
    ]
    done = subprocess.run(cmd, env=_env(), capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr[-3000:]
    results = json.loads((out / "results.json").read_text())
    assert results["world_size"] == 2
    assert results["ranks_in_sync"] is True
    assert results["tokens_seen"] == 6 * 2 * 4 * 32  # steps x processes x batch x context
    lines = [json.loads(rec) for rec in (out / "metrics.jsonl").read_text().splitlines()]
    assert [rec["step"] for rec in lines if "val_loss" in rec] == [0, 3, 6]  # rank 0 alone writes
    assert done.stdout.count("done:") == 1

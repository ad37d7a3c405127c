"""SIGKILL a training run at random moments: its folder is always one whole checkpoint.

A helper process imports torch and attnlab once and forks one training process per life
(`attnlab.train.recipes.train_language_model`, a nano GPT that checkpoints every step).
The test kills each life with SIGKILL after a random delay (seeded), so the kill lands
anywhere: building the model, training, or in the middle of writing or publishing a
checkpoint. After every kill the folder must load as one step (config.json, training
state and manifest agree) whose weights and optimizer state are exactly those an
uninterrupted run saved at that step; the next life resumes from it. For a few kill points
two more resumed steps must give the losses of the uninterrupted run, exactly (CPU).
"""

from __future__ import annotations

import json
import os
import random
import select
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from attnlab import checkpoint as ckpt
from attnlab.errors import CheckpointError
from attnlab.models.registry import load_model

pytestmark = [
    pytest.mark.slow,
    pytest.mark.skipif(not hasattr(os, "fork") or sys.platform == "win32", reason="needs fork and SIGKILL (POSIX)"),
]

TOTAL_STEPS = 60  # steps of one run (a run that finishes is followed by a fresh one)
KILLS = 40  # SIGKILLs in total (at least 25)
RESUME_CHECKS = 3  # kill points resumed for two more steps and compared with the straight run
SEED = 20261206

# Forks one training process per job line on stdin; reports {"pid"} then {"pid", "signal", "code"}.
HELPER = r"""
import json, os, sys, traceback
import torch  # imported before forking, never used here: no thread pool exists yet
import torch._dynamo, torch.optim  # noqa: the optimizer imports dynamo lazily (1 s a life otherwise)
from attnlab import checkpoint as ckpt
from attnlab.models.gpt_config import GPTConfig
from attnlab.train import trainer as trainer_module
from attnlab.train.recipes import DataConfig, train_language_model
from attnlab.train.trainer import TrainConfig
import attnlab.data.text, attnlab.models.gpt, attnlab.models.registry, attnlab.tokenizers, attnlab.train.engine  # noqa
import safetensors.numpy, tqdm.auto  # noqa

def record_checkpoints(out, record):
    save = trainer_module.Trainer.save_checkpoint
    def recording(self):
        save(self)
        manifest = ckpt.read_manifest(out)
        files = {k: v["sha256"] for k, v in manifest["files"].items() if k.endswith(".safetensors")}
        with open(record, "a", encoding="utf-8") as f:
            f.write(json.dumps({"step": manifest["step"], "sha256": files}) + "\n")
    trainer_module.Trainer.save_checkpoint = recording

def run(job):
    torch.set_num_threads(1)
    if job.get("record"):
        record_checkpoints(job["out"], job["record"])
    train = TrainConfig(batch_size=4, max_iters=job["max_iters"], lr=3e-3, min_lr=3e-4, warmup_iters=3,
                        lr_decay_iters=job["decay_iters"], eval_interval=1, eval_iters=1, log_interval=1,
                        device="cpu", seed=7, progress=False)
    train_language_model(job["out"], data=DataConfig(source=job["text"]), model=GPTConfig.from_name("nano"),
                         train=train, engine="torch", resume=ckpt.is_checkpoint(job["out"]), write_plots=False)

for line in sys.stdin:
    job = json.loads(line)
    pid = os.fork()
    if pid == 0:
        code = 0
        try:
            os.dup2(os.open(os.devnull, os.O_WRONLY), 1)  # keep the report channel clean
            run(job)
        except BaseException:
            traceback.print_exc()
            code = 1
        finally:
            sys.stderr.flush()
            os._exit(code)
    print(json.dumps({"pid": pid}), flush=True)
    _, status = os.waitpid(pid, 0)
    print(json.dumps({"pid": pid, "signal": os.WTERMSIG(status) if os.WIFSIGNALED(status) else None,
                      "code": os.WEXITSTATUS(status) if os.WIFEXITED(status) else None}), flush=True)
"""


class _Helper:
    """The forking helper process and its line-by-line reports (read unbuffered, so select is exact)."""

    def __init__(self, log: Path):
        env = {**os.environ, "OMP_NUM_THREADS": "1", "MKL_NUM_THREADS": "1", "PYTHONUNBUFFERED": "1"}
        self.log = log
        self.proc = subprocess.Popen(
            [sys.executable, "-c", HELPER],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=open(log, "wb"),
            env=env,
        )
        self.buffer = b""

    def report(self, timeout: float) -> dict | None:
        deadline = time.monotonic() + timeout
        while b"\n" not in self.buffer:
            left = deadline - time.monotonic()
            if left <= 0 or not select.select([self.proc.stdout], [], [], left)[0]:
                return None
            chunk = os.read(self.proc.stdout.fileno(), 4096)
            if not chunk:
                raise AssertionError(f"the helper process died:\n{self.log.read_text()[-3000:]}")
            self.buffer += chunk
        line, self.buffer = self.buffer.split(b"\n", 1)
        return json.loads(line)

    def start(self, **job) -> int:
        self.proc.stdin.write((json.dumps(job) + "\n").encode())
        self.proc.stdin.flush()
        started = self.report(timeout=120)
        assert started is not None, "the helper did not start a training process"
        return started["pid"]

    def finish(self, pid: int, timeout: float = 120) -> dict:
        done = self.report(timeout)
        assert done is not None and done["pid"] == pid, f"training process {pid} did not end"
        return done

    def close(self) -> None:
        self.proc.stdin.close()
        try:
            self.proc.wait(timeout=30)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()


def _metrics(folder: Path) -> dict[int, float]:
    records = [json.loads(line) for line in (folder / "metrics.jsonl").read_text().splitlines() if line.strip()]
    return {r["step"]: r["train_loss"] for r in records if r.get("train_loss") is not None}


def _whole_step(folder: Path, reference: dict[int, dict[str, str]]) -> tuple[int, bool]:
    """(step of the checkpoint in `folder`, whether it is one consistent step of the straight run)."""
    info = ckpt.verify_checkpoint(folder)  # every listed file matches its size and sha256
    meta = ckpt.read_metadata(folder)
    state = ckpt.load_training_state(folder)
    model, tokenizer = load_model(folder)
    assert model is not None and tokenizer is not None
    manifest = ckpt.read_manifest(folder)
    step = manifest["step"]
    steps = {info["step"], meta["step"], state["step"], step}
    files = {k: v["sha256"] for k, v in manifest["files"].items() if k.endswith(".safetensors")}
    return step, len(steps) == 1 and files == reference.get(step)


def test_sigkill_at_random_moments_leaves_one_whole_checkpoint(tmp_path):
    text = tmp_path / "corpus.txt"
    text.write_text("the quick brown fox jumps over the lazy dog. pack my box with five dozen liquor jugs!\n" * 40)
    problems: list[str] = []
    helper = _Helper(tmp_path / "helper.log")
    job = {"text": str(text), "decay_iters": TOTAL_STEPS}
    counts = {
        "kills": 0,
        "lives_finished": 0,
        "checkpoints_verified": 0,
        "mixed_states": 0,
        "no_checkpoint_yet": 0,
        "kills_leaving_ckpt_ready": 0,
        "kills_leaving_staging": 0,
        "resumes_compared": 0,
    }
    try:
        # the straight run: what every step's checkpoint and loss must be
        straight = tmp_path / "straight"
        record = tmp_path / "straight.jsonl"
        pid = helper.start(out=str(straight), max_iters=TOTAL_STEPS, record=str(record), **job)
        assert helper.finish(pid)["code"] == 0, helper.log.read_text()[-3000:]
        reference = {r["step"]: r["sha256"] for r in map(json.loads, record.read_text().splitlines())}
        losses = _metrics(straight)
        assert sorted(reference) == list(range(1, TOTAL_STEPS + 1))

        rng = random.Random(SEED)
        run_index, resume_points = 0, []
        folder = tmp_path / f"run{run_index}"
        while counts["kills"] < KILLS:
            pid = helper.start(out=str(folder), max_iters=TOTAL_STEPS, **job)
            done = helper.report(timeout=rng.uniform(0.02, 0.6))
            if done is None:
                os.kill(pid, signal.SIGKILL)
                done = helper.finish(pid)
            assert done["pid"] == pid
            if done["signal"] == signal.SIGKILL:
                counts["kills"] += 1
            else:
                assert done["code"] == 0, helper.log.read_text()[-3000:]
                counts["lives_finished"] += 1
            counts["kills_leaving_ckpt_ready"] += (folder / ckpt.READY_DIR).exists()
            counts["kills_leaving_staging"] += any(folder.glob(ckpt.STAGING_PREFIX + "*"))
            if not ckpt.is_checkpoint(folder):  # killed before its first checkpoint was published
                counts["no_checkpoint_yet"] += 1
                assert not (folder / ckpt.MANIFEST_FILE).exists()
                continue
            try:
                step, whole = _whole_step(folder, reference)
            except CheckpointError as e:  # torn or mixed: exactly what must never happen
                problems.append(str(e))
                counts["mixed_states"] += 1
                continue
            counts["checkpoints_verified"] += 1
            counts["mixed_states"] += not whole
            if done["signal"] == signal.SIGKILL and step <= TOTAL_STEPS - 2 and len(resume_points) < RESUME_CHECKS:
                copy = tmp_path / f"resume{len(resume_points)}"
                shutil.copytree(folder, copy)  # as the kill left it, .ckpt-ready/ or staging included
                resume_points.append((copy, step))
            if step >= TOTAL_STEPS:  # this run is over: the next lives start a fresh one
                run_index += 1
                folder = tmp_path / f"run{run_index}"

        # --resume from a killed folder continues exactly like the straight run
        for copy, step in resume_points:
            pid = helper.start(out=str(copy), max_iters=step + 2, **job)
            assert helper.finish(pid)["code"] == 0, helper.log.read_text()[-3000:]
            resumed = _metrics(copy)
            assert [resumed[step + 1], resumed[step + 2]] == [losses[step + 1], losses[step + 2]]
            assert _whole_step(copy, reference) == (step + 2, True)
            counts["resumes_compared"] += 1
    finally:
        helper.close()
    print("crash consistency:", json.dumps(counts))
    assert counts["mixed_states"] == 0, (counts, problems[:3])
    assert counts["kills"] >= 25 and counts["checkpoints_verified"] >= 20, counts
    assert counts["resumes_compared"] == RESUME_CHECKS, counts

"""Training a tiny GPT from the Generate page (`attnlab.app.training`)."""

from __future__ import annotations

import json
import time

import pytest

from attnlab.app import training
from attnlab.errors import ConfigError, DataError

# --- training from the page ---------------------------------------------------------------------------------


def test_training_job_validates_its_settings(tmp_path):
    with pytest.raises(ConfigError, match="preset"):
        training.TrainingJob(tmp_path, preset="huge")
    with pytest.raises(ConfigError, match="seconds"):
        training.TrainingJob(tmp_path, seconds=10_000)
    with pytest.raises(ConfigError, match="unknown architecture 'encoder'; choose one of gpt, llama"):
        training.TrainingJob(tmp_path, arch="encoder")
    assert training.TrainingJob(tmp_path, arch="llama").folder.name.startswith("app-llama-nano-")
    (tmp_path / "file").write_text("x")
    with pytest.raises(DataError, match="is a file"):
        training.TrainingJob(tmp_path / "file")


def test_training_job_progress_reads_the_metrics_file(tmp_path):
    job = training.TrainingJob(tmp_path, preset="nano", seconds=20)
    assert job.progress() == (0.0, "measuring the speed of this machine ...")
    job.max_iters = 100
    job.folder.mkdir(parents=True)
    lines = [json.dumps({"step": 10, "train_loss": 3.5}), json.dumps({"step": 40, "train_loss": 2.25}), '{"step": 5']
    (job.folder / "metrics.jsonl").write_text("\n".join(lines))  # the last line is still being written
    job.started = time.monotonic()  # no time has passed: the steps decide
    fraction, text = job.progress()
    assert fraction == pytest.approx(0.4, abs=0.01) and text == "step 40 of 100, training loss 2.25"
    job.results = {"step": 100, "val_loss": 1.5}
    assert job.progress() == (1.0, "done: 100 steps, validation loss 1.50")


def test_new_run_folder_never_reuses_a_name(tmp_path):
    first = training.new_run_folder(tmp_path, "app")
    first.mkdir()
    second = training.new_run_folder(tmp_path, "app")
    assert second != first and second.parent == tmp_path and second.name.startswith("app-")

"""The app's runs folder (`attnlab.app.runs_folder`): finding checkpoints, refusing paths out of it."""

from __future__ import annotations

import os
import shutil
import time

import pytest

from attnlab.app import RUNS_ENV, runs_folder
from attnlab.errors import CheckpointError, DataError

# --- the runs folder ------------------------------------------------------------------------------


def test_runs_root_from_argument_environment_or_default(monkeypatch, tmp_path):
    monkeypatch.delenv(RUNS_ENV, raising=False)
    monkeypatch.chdir(tmp_path)
    assert runs_folder.runs_root() == tmp_path / "runs"
    monkeypatch.setenv(RUNS_ENV, str(tmp_path / "elsewhere"))
    assert runs_folder.runs_root() == tmp_path / "elsewhere"
    assert runs_folder.runs_root(tmp_path / "given") == tmp_path / "given"


def test_check_runs_root(tmp_path):
    with pytest.raises(DataError, match="does not exist yet"):
        runs_folder.check_runs_root(tmp_path / "missing")
    (tmp_path / "file").write_text("x")
    with pytest.raises(DataError, match="is a file"):
        runs_folder.check_runs_root(tmp_path / "file")
    runs_folder.check_runs_root(tmp_path)


def test_find_checkpoints_nested_filtered_and_newest_first(full_runs, tmp_path, trained_gpt):
    entries = runs_folder.find_checkpoints(full_runs)
    assert {e.relative: e.model_type for e in entries} == {"nano-gpt": "gpt", "compare-mnist/models/vit": "vit"}
    assert [e.relative for e in runs_folder.find_checkpoints(full_runs, ("vit",))] == ["compare-mnist/models/vit"]
    assert "test accuracy 10.0%" in runs_folder.find_checkpoints(full_runs, ("vit",))[0].label()
    gpt_label = runs_folder.find_checkpoints(full_runs, ("gpt",))[0].label()
    assert "2 layers x 32 wide" in gpt_label and "step 60" in gpt_label
    # newest first
    root = tmp_path / "runs"
    shutil.copytree(trained_gpt, root / "old")
    shutil.copytree(trained_gpt, root / "new")
    past = time.time() - 3600
    os.utime(root / "old" / "config.json", (past, past))
    assert [e.relative for e in runs_folder.find_checkpoints(root)] == ["new", "old"]
    assert runs_folder.find_checkpoints(tmp_path / "missing") == []


def test_a_run_being_trained_is_marked_and_offered_only_as_its_last_whole_checkpoint(tmp_path, trained_gpt):
    import subprocess
    import sys

    from attnlab import runs

    root = tmp_path / "runs"
    shutil.copytree(trained_gpt, root / "busy")
    hold = (
        "import sys, time; from attnlab import runs\n"
        "with runs.run_lock(sys.argv[1], command='train'):\n print('locked', flush=True); time.sleep(60)"
    )
    holder = subprocess.Popen([sys.executable, "-c", hold, str(root / "busy")], stdout=subprocess.PIPE, text=True)
    try:
        assert holder.stdout.readline().strip() == "locked"
        (entry,) = runs_folder.find_checkpoints(root)
        assert entry.writer["pid"] == holder.pid and "training now" in entry.label()
        model, _ = runs_folder.load_checkpoint_in_runs(root, "busy", "gpt")  # the published checkpoint is whole
        assert model.config.num_layers == 2
    finally:
        holder.kill()
        holder.wait()
    (entry,) = runs_folder.find_checkpoints(root)
    assert entry.writer is None and "training now" not in entry.label()
    assert runs.lock_holder(root / "busy") is None


def test_find_checkpoints_never_follows_links_out(tmp_path, trained_gpt):
    root = tmp_path / "runs"
    root.mkdir()
    (root / "linked-folder").symlink_to(trained_gpt, target_is_directory=True)
    inner = root / "linked-weights"
    shutil.copytree(trained_gpt, inner)
    (inner / "model.safetensors").unlink()
    (inner / "model.safetensors").symlink_to(trained_gpt / "model.safetensors")
    config_only = root / "linked-config"
    config_only.mkdir()
    (config_only / "config.json").symlink_to(trained_gpt / "config.json")
    assert runs_folder.find_checkpoints(root) == []


def test_resolve_in_runs_refuses_paths_out_of_the_folder(tmp_path, trained_gpt):
    root = tmp_path / "runs"
    shutil.copytree(trained_gpt, root / "gpt")
    assert runs_folder.resolve_in_runs(root, "gpt") == (root / "gpt").resolve()
    for bad in ("../outside", str(trained_gpt), "gpt/../../x"):
        with pytest.raises(CheckpointError, match="not a folder inside the runs folder"):
            runs_folder.resolve_in_runs(root, bad)
    (root / "link").symlink_to(trained_gpt, target_is_directory=True)
    with pytest.raises(CheckpointError, match="links outside the runs folder"):
        runs_folder.resolve_in_runs(root, "link")
    (root / "gpt" / "extra.json").symlink_to(tmp_path / "secret.json")
    with pytest.raises(CheckpointError, match="links outside the runs folder"):
        runs_folder.resolve_in_runs(root, "gpt")
    with pytest.raises(CheckpointError, match="links outside"):
        runs_folder.load_checkpoint_in_runs(root, "link", "gpt")


def test_load_checkpoint_in_runs_checks_type_and_existence(full_runs):
    model, tokenizer = runs_folder.load_checkpoint_in_runs(full_runs, "nano-gpt", ("gpt",))
    assert model.model_type == "gpt" and tokenizer is not None
    with pytest.raises(CheckpointError, match="needs gpt"):
        runs_folder.load_checkpoint_in_runs(full_runs, "compare-mnist/models/vit", ("gpt",))
    with pytest.raises(CheckpointError, match="no longer a checkpoint"):
        runs_folder.load_checkpoint_in_runs(full_runs, "compare-mnist", ("gpt",))

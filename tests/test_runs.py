"""Run folders: ownership (never overwrite the user's files) and one writer per run."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap
import time

import pytest

from attnlab import runs
from attnlab.errors import AttnlabError


def test_missing_and_empty_folders_are_claimed_and_marked(tmp_path):
    for folder in (tmp_path / "new" / "deeper", tmp_path / "empty"):
        if folder.name == "empty":
            folder.mkdir()
        with runs.open_run(folder, command="train") as path:
            assert path == folder
        marker = runs.read_marker(folder)
        assert marker["format"] == runs.RUN_FORMAT and marker["format_version"] == runs.RUN_FORMAT_VERSION
        assert marker["created_by"] == "train" and marker["foreign_files"] == []
        assert runs.is_ours(folder)


def test_a_folder_with_the_users_files_is_refused_and_left_alone(tmp_path):
    folder = tmp_path / "mine"
    folder.mkdir()
    (folder / "config.json").write_text('{"my": "settings"}')
    (folder / "notes.txt").write_text("my notes")
    with pytest.raises(runs.OutputFolderError) as e:
        with runs.open_run(folder, command="train"):
            pass
    message = str(e.value)
    assert "attnlab did not write" in message and "config.json" in message and "--force" in message
    assert sorted(os.listdir(folder)) == ["config.json", "notes.txt"]  # not even a lock file


def test_force_keeps_every_file_of_the_user(tmp_path):
    folder = tmp_path / "mine"
    folder.mkdir()
    (folder / "config.json").write_text('{"my": "settings"}')
    (folder / "notes.txt").write_text("my notes")
    (folder / "run.json").write_text('{"mine": true}')
    with runs.open_run(folder, command="train", force=True):
        from attnlab.utils import write_json_atomic

        write_json_atomic(folder / "config.json", {"format": "attnlab-checkpoint"})  # attnlab's own file
        runs.remove_own(folder / "notes.txt")  # attnlab never deletes the user's file ...
    assert json.loads((folder / "config.json.orig").read_text()) == {"my": "settings"}
    assert (folder / "notes.txt.orig").read_text() == "my notes"  # ... it renames it
    assert json.loads((folder / "run.json.orig").read_text()) == {"mine": True}
    marker = runs.read_marker(folder)
    assert marker["set_aside"]["config.json"] == "config.json.orig"
    # written once more: now the file is attnlab's and is simply replaced
    from attnlab.utils import write_json_atomic

    write_json_atomic(folder / "config.json", {"format": "attnlab-checkpoint", "v": 2})
    assert not (folder / "config.json.orig.1").exists()


def test_our_folder_is_reused_and_keeps_its_history(tmp_path):
    folder = tmp_path / "run"
    with runs.open_run(folder, command="train", info={"train": {"max_iters": 3}}):
        (folder / "results.json").write_text("{}")
    with runs.open_run(folder, command="eval"):
        pass
    marker = runs.read_marker(folder)
    assert marker["created_by"] == "train" and marker["last_command"] == "eval" and marker["train"] == {"max_iters": 3}


def test_a_run_folder_from_before_markers_counts_as_ours(tmp_path):
    folder = tmp_path / "old"
    folder.mkdir()
    (folder / "config.json").write_text(json.dumps({"format": "attnlab-checkpoint", "model_type": "gpt", "config": {}}))
    (folder / "run.json").write_text(json.dumps({"command": "train", "train": {"seed": 3}}))
    with runs.open_run(folder, command="train"):
        pass
    assert runs.read_marker(folder)["train"] == {"seed": 3}  # the old run.json's content is kept


def test_a_file_as_output_folder(tmp_path):
    (tmp_path / "f").write_text("x")
    with pytest.raises(runs.OutputFolderError, match="is a file, not a folder"):
        with runs.open_run(tmp_path / "f", command="train"):
            pass


def test_an_unwritable_folder_is_one_clear_error(tmp_path, monkeypatch):
    import errno

    def read_only(*args, **kwargs):
        raise OSError(errno.EROFS, "Read-only file system")

    monkeypatch.setattr(runs, "write_marker", read_only)
    with pytest.raises(runs.OutputFolderError, match="Read-only file system"):
        with runs.open_run(tmp_path / "ro", command="train"):
            pass


def test_single_output_files(tmp_path):
    mine = tmp_path / "figure.png"
    mine.write_bytes(b"\x89PNG my own picture")
    with pytest.raises(runs.OutputFolderError, match="attnlab did not write it"):
        runs.check_output_file(mine)
    runs.check_output_file(mine, force=True)
    assert (tmp_path / "figure.png.orig").read_bytes() == b"\x89PNG my own picture" and not mine.exists()
    ours = tmp_path / "ours.png"
    ours.write_bytes(b"\x89PNG ... Software " + runs.OUTPUT_MARK.encode() + b" ...")
    runs.check_output_file(ours)  # ours: replaced without asking
    with pytest.raises(runs.OutputFolderError, match="is a folder"):
        runs.check_output_file(tmp_path)


HOLDER = textwrap.dedent(
    """
    import sys, time
    from attnlab import runs
    with runs.open_run(sys.argv[1], command="train"):
        print("locked", flush=True)
        time.sleep(float(sys.argv[2]))
    """
)


def _hold(folder, seconds: float):
    p = subprocess.Popen([sys.executable, "-c", HOLDER, str(folder), str(seconds)], stdout=subprocess.PIPE, text=True)
    assert p.stdout.readline().strip() == "locked"
    return p


def test_a_second_writer_is_refused_with_the_holders_pid(tmp_path):
    folder = tmp_path / "run"
    holder = _hold(folder, 60)
    try:
        info = runs.lock_holder(folder)
        assert info["pid"] == holder.pid and info["command"] == "train"
        with pytest.raises(runs.RunLockedError) as e:
            with runs.open_run(folder, command="train"):
                pass
        assert f"PID {holder.pid}" in str(e.value) and isinstance(e.value, AttnlabError)
    finally:
        holder.kill()
        holder.wait()


def test_a_lock_left_by_a_killed_process_is_stale(tmp_path):
    folder = tmp_path / "run"
    holder = _hold(folder, 60)
    holder.kill()  # SIGKILL: no clean-up ran; the lock info file is still there
    holder.wait()
    assert (folder / runs.LOCK_INFO_FILE).exists()
    assert runs.lock_holder(folder) is None
    with runs.open_run(folder, command="train"):
        assert runs.lock_holder(folder)["pid"] == os.getpid()
    assert runs.lock_holder(folder) is None


def test_the_lock_is_reentrant_within_a_process_and_released_after(tmp_path):
    folder = tmp_path / "run"
    with runs.open_run(folder, command="demo"):
        with runs.open_run(folder, command="train"):  # the demo calls the training recipe
            pass
        assert runs.lock_holder(folder)["command"] == "demo"
    holder = _hold(folder, 0.1)  # another process can take it now
    assert holder.wait(timeout=30) == 0


def test_lock_holder_creates_nothing(tmp_path):
    assert runs.lock_holder(tmp_path) is None
    assert os.listdir(tmp_path) == []


def test_lock_released_when_the_block_raises(tmp_path):
    folder = tmp_path / "run"
    with pytest.raises(RuntimeError):
        with runs.open_run(folder, command="train"):
            raise RuntimeError("boom")
    assert runs.lock_holder(folder) is None
    start = time.monotonic()
    with runs.open_run(folder, command="train"):
        pass
    assert time.monotonic() - start < 5


def test_a_run_that_fails_before_writing_leaves_no_folder(tmp_path):
    folder = tmp_path / "run"
    with pytest.raises(ValueError):
        with runs.open_run(folder, command="train"):
            raise ValueError("bad data file")
    assert not folder.exists()
    existing = tmp_path / "empty"
    existing.mkdir()
    with pytest.raises(ValueError):
        with runs.open_run(existing, command="train"):
            raise ValueError("bad data file")
    assert existing.is_dir() and os.listdir(existing) == []
    with runs.open_run(folder, command="train"):
        (folder / "results.json").write_text("{}")
    with pytest.raises(ValueError):  # a run that already had results keeps its folder as it was
        with runs.open_run(folder, command="train"):
            raise ValueError("later failure")
    assert runs.read_marker(folder) is not None and (folder / "results.json").exists()

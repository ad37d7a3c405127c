"""A checkpoint is whole or it is the previous one (attnlab.checkpoint's transaction and checks).

Covers the manifest a save writes, folders written before manifests, torn and edited
folders, an interrupted publish (`.ckpt-ready/`) as readers and the next writer see it,
leftover staging folders, mixed steps, a full disk, and a tokenizer that does not fit the
embedding table. The SIGKILL test is tests/train/test_crash_consistency.py.
"""

from __future__ import annotations

import errno
import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch
from torch.testing import assert_close

from attnlab import checkpoint as ckpt
from attnlab.errors import CheckpointError
from attnlab.models.gpt import GPT
from attnlab.models.gpt_config import GPTConfig
from attnlab.models.registry import load_model
from attnlab.scratch.gpt import NumpyGPT
from attnlab.tokenizers.char import CharTokenizer

TOKENIZER = CharTokenizer(list("abcdefghij"))
X = torch.tensor([[1, 2, 3, 4, 5]])


def _model(seed: int, **overrides) -> GPT:
    torch.manual_seed(seed)
    return GPT(GPTConfig.from_name("nano", vocab_size=TOKENIZER.vocab_size, **overrides)).eval()


def _save_step(folder: Path, step: int) -> GPT:
    """What the Trainer writes at `step`: model, tokenizer and training state in one transaction."""
    model = _model(seed=step)
    expect = ckpt.expected_files(tokenizer=True, training_state=True)
    with ckpt.CheckpointWriter(folder, step=step, expect=expect) as staging:
        ckpt.save_training_state(staging, {"step": step, "moment": torch.full((3,), float(step))})
        model.save(staging, tokenizer=TOKENIZER, metadata={"step": step})
    return model


def _listing(folder: Path) -> dict[str, bytes]:
    return {str(p.relative_to(folder)): p.read_bytes() for p in sorted(folder.rglob("*")) if p.is_file()}


def _make_legacy(folder: Path) -> None:
    """Turn a folder into what attnlab wrote before manifests: no checkpoint.json, no integrity record."""
    (folder / ckpt.MANIFEST_FILE).unlink()
    meta = json.loads((folder / ckpt.CONFIG_FILE).read_text())
    del meta["integrity"]
    (folder / ckpt.CONFIG_FILE).write_text(json.dumps(meta))
    if (folder / ckpt.STATE_FILE).exists():
        state = json.loads((folder / ckpt.STATE_FILE).read_text())
        del state["step"]
        (folder / ckpt.STATE_FILE).write_text(json.dumps(state))


def _write_manifest(folder: Path, manifest: dict) -> None:
    (folder / ckpt.MANIFEST_FILE).write_text(json.dumps(manifest))


def test_round_trip_writes_a_manifest(tmp_path):
    model = _save_step(tmp_path / "run", 3)
    folder = tmp_path / "run"
    assert sorted(p.name for p in folder.iterdir()) == sorted(
        [
            "attnlab_tokenizer.json",
            "checkpoint.json",
            "config.json",
            "model.safetensors",
            "training_state.json",
            "training_state.safetensors",
        ]
    )  # no staging or ready folder is left behind
    manifest = json.loads((folder / "checkpoint.json").read_text())
    assert manifest["format"] == "attnlab-checkpoint-manifest" and manifest["version"] == 1 and manifest["step"] == 3
    assert manifest["model_type"] == "gpt" and manifest["config"]["num_heads"] == model.config.num_heads
    assert sorted(manifest["files"]) == sorted(n for n in os.listdir(folder) if n != "checkpoint.json")
    for name, entry in manifest["files"].items():
        assert entry["size"] == (folder / name).stat().st_size
        assert entry["sha256"] == ckpt.sha256_file(folder / name)
    loaded, tokenizer = load_model(folder)
    assert_close(loaded(X).logits, model(X).logits)
    assert tokenizer.encode("abc") == TOKENIZER.encode("abc")
    assert ckpt.load_training_state(folder)["step"] == 3
    assert ckpt.verify_checkpoint(folder)["step"] == 3
    # a lone save (convert, compare, probe outputs) is a transaction of its own, with a manifest
    model.save(tmp_path / "alone")
    assert ckpt.read_manifest(tmp_path / "alone")["files"].keys() == {"config.json", "model.safetensors"}


def test_lone_saves_of_one_step_combine_and_of_another_step_replace(tmp_path):
    folder = tmp_path / "ck"
    model = _model(seed=1)
    model.save(folder, tokenizer=TOKENIZER, metadata={"step": 5})
    ckpt.save_training_state(folder, {"step": 5, "moment": torch.zeros(2)})
    assert ckpt.load_training_state(folder)["step"] == 5 and load_model(folder)[1] is not None
    _model(seed=2).save(folder, metadata={"step": 6})  # a model of another step: the old state is not its own
    assert not ckpt.has_training_state(folder) and not (folder / ckpt.STATE_FILE).exists()
    assert not (folder / "attnlab_tokenizer.json").exists()
    assert_close(load_model(folder)[0](X).logits, _model(seed=2)(X).logits)


def test_a_folder_without_manifest_still_loads(tmp_path):
    folder = tmp_path / "old"
    model = _save_step(folder, 4)
    _make_legacy(folder)
    loaded, tokenizer = load_model(folder)
    assert_close(loaded(X).logits, model(X).logits)
    assert tokenizer is not None and ckpt.load_training_state(folder)["step"] == 4
    assert ckpt.read_metadata(folder)["step"] == 4 and ckpt.read_manifest(folder) is None
    # the original bug: state of step 5 beside weights of step 4 (an old save killed half-way)
    shutil.copytree(folder, tmp_path / "mixed")
    _save_step(tmp_path / "newer", 5)
    _make_legacy(tmp_path / "newer")
    for name in (ckpt.STATE_FILE, ckpt.STATE_TENSORS_FILE):
        shutil.copy(tmp_path / "newer" / name, tmp_path / "mixed" / name)
    with pytest.raises(
        CheckpointError, match=r"mixed: its training state is from step 5 but the model \(config.json\) from step 4"
    ):
        ckpt.load_training_state(tmp_path / "mixed")


def test_torn_folder_is_refused_naming_the_file(tmp_path):
    _save_step(tmp_path / "a", 1)
    _save_step(tmp_path / "b", 2)
    shutil.copy(tmp_path / "b" / "model.safetensors", tmp_path / "a" / "model.safetensors")  # new weights, old manifest
    with pytest.raises(CheckpointError, match="model.safetensors in .* does not match the checkpoint manifest") as info:
        load_model(tmp_path / "a")
    assert "\n" not in str(info.value)
    with pytest.raises(CheckpointError, match="model.safetensors"):
        ckpt.verify_checkpoint(tmp_path / "a")
    # mixed state files from another save are refused the same way
    shutil.copy(tmp_path / "b" / ckpt.STATE_TENSORS_FILE, tmp_path / "a" / ckpt.STATE_TENSORS_FILE)
    with pytest.raises(CheckpointError, match="training_state.safetensors in .* does not match"):
        ckpt.load_training_state(tmp_path / "a")
    (tmp_path / "b" / "attnlab_tokenizer.json").unlink()
    with pytest.raises(CheckpointError, match="attnlab_tokenizer.json is missing"):
        load_model(tmp_path / "b")


def test_mixed_steps_are_refused(tmp_path):
    # a manifest whose files match but whose training state names another step
    _save_step(tmp_path / "a", 1)
    _save_step(tmp_path / "b", 2)
    manifest = json.loads((tmp_path / "a" / "checkpoint.json").read_text())
    other = json.loads((tmp_path / "b" / "checkpoint.json").read_text())
    for name in (ckpt.STATE_FILE, ckpt.STATE_TENSORS_FILE):
        shutil.copy(tmp_path / "b" / name, tmp_path / "a" / name)
        manifest["files"][name] = other["files"][name]
    _write_manifest(tmp_path / "a", manifest)
    with pytest.raises(CheckpointError, match="mixed: its training state is from step 2 but its manifest from step 1"):
        ckpt.load_training_state(tmp_path / "a")
    with pytest.raises(CheckpointError, match="mixed"):
        ckpt.verify_checkpoint(tmp_path / "a")
    # state files the manifest does not list (an older layout) are never mixed in
    folder = tmp_path / "c"
    _save_step(folder, 7)
    _make_legacy(folder)
    _model(seed=8).save(folder, metadata={"step": 8})  # a lone model save into the old folder
    assert (folder / ckpt.STATE_FILE).exists()
    with pytest.raises(CheckpointError, match="not part of its checkpoint .step 8.: checkpoint.json does not list"):
        ckpt.load_training_state(folder)


def test_an_edited_config_is_refused_naming_the_field(tmp_path):
    folder = tmp_path / "ck"
    _save_step(folder, 2)
    path = folder / "config.json"
    meta = json.loads(path.read_text())
    heads = meta["config"]["num_heads"]
    meta["config"]["num_heads"] = heads * 2  # 32 wide: 2 or 4 heads give the same weight shapes
    path.write_text(json.dumps(meta))
    message = f"config.num_heads is {heads * 2} there but the checkpoint was saved with {heads}"
    with pytest.raises(CheckpointError, match=message):
        load_model(folder)
    with pytest.raises(CheckpointError, match=message):
        NumpyGPT.from_checkpoint(folder)
    with pytest.raises(CheckpointError, match="--model.FIELD=V"):
        ckpt.read_metadata(folder)
    # without its manifest, config.json's own integrity record still refuses the edit
    (folder / "checkpoint.json").unlink()
    with pytest.raises(CheckpointError, match="config.json in .* was edited after saving"):
        load_model(folder)


@pytest.mark.parametrize("moved", [0, 2, "all-but-manifest", "all"])
def test_an_interrupted_publish_is_read_whole_and_rolled_forward(tmp_path, moved):
    folder = tmp_path / "run"
    _save_step(folder, 1)
    new = tmp_path / "new"
    newer = _save_step(new, 2)
    # the moment after `rename(staging, .ckpt-ready)`, with `moved` files already in place
    ready = folder / ckpt.READY_DIR
    shutil.copytree(new, ready)
    names = sorted(n for n in os.listdir(ready) if n != ckpt.MANIFEST_FILE)
    count = {"all-but-manifest": len(names), "all": len(names)}.get(moved, moved)
    for name in names[:count]:
        os.replace(ready / name, folder / name)
    if moved == "all":
        os.replace(ready / ckpt.MANIFEST_FILE, folder / ckpt.MANIFEST_FILE)
    before = _listing(folder)
    loaded, tokenizer = load_model(folder)
    assert_close(loaded(X).logits, newer(X).logits)
    assert ckpt.read_metadata(folder)["step"] == 2 and ckpt.load_training_state(folder)["step"] == 2
    assert ckpt.is_checkpoint(folder) and ckpt.verify_checkpoint(folder)["step"] == 2
    assert _listing(folder) == before  # readers never change the folder
    # the next writer finishes the publish before anything else
    ckpt.recover(folder)
    assert not ready.exists()
    assert _listing(folder) == {k: v for k, v in _listing(new).items()}
    assert ckpt.verify_checkpoint(folder)["step"] == 2


def test_a_first_checkpoint_still_in_ready_is_a_checkpoint(tmp_path):
    _save_step(tmp_path / "new", 1)
    folder = tmp_path / "run"
    folder.mkdir()
    shutil.copytree(tmp_path / "new", folder / ckpt.READY_DIR)
    assert ckpt.is_checkpoint(folder) and load_model(folder)[1] is not None
    _save_step(folder, 2)  # a writer rolls it forward, then publishes its own
    assert not (folder / ckpt.READY_DIR).exists() and ckpt.verify_checkpoint(folder)["step"] == 2


def test_stale_staging_folders_are_ignored_and_removed(tmp_path):
    folder = tmp_path / "run"
    _save_step(folder, 1)
    dead = subprocess.run(
        [sys.executable, "-c", "import os; print(os.getpid())"], capture_output=True, text=True, check=True
    )
    for pid in (int(dead.stdout), os.getpid()):
        stale = folder / f"{ckpt.STAGING_PREFIX}{pid}-0badc0de"
        stale.mkdir()
        (stale / "model.safetensors").write_bytes(b"half a file")
    assert ckpt.verify_checkpoint(folder)["step"] == 1 and load_model(folder)[0] is not None
    assert len(list(folder.glob(ckpt.STAGING_PREFIX + "*"))) == 2  # readers leave them alone
    _save_step(folder, 2)
    assert list(folder.glob(ckpt.STAGING_PREFIX + "*")) == []
    assert ckpt.verify_checkpoint(folder)["step"] == 2


def _fail_saving(monkeypatch, which: str, error: BaseException) -> None:
    import safetensors.numpy

    real = safetensors.numpy.save_file

    def save_file(tensors, filename, metadata=None):
        if which in os.path.basename(filename):
            raise error
        return real(tensors, filename, metadata=metadata)

    monkeypatch.setattr(safetensors.numpy, "save_file", save_file)


@pytest.mark.parametrize("which", ["model.safetensors", "training_state.safetensors"])
def test_a_full_disk_names_the_unwritten_files_and_keeps_the_previous_checkpoint(tmp_path, monkeypatch, which):
    folder = tmp_path / "run"
    model = _save_step(folder, 1)
    before = _listing(folder)
    _fail_saving(monkeypatch, which, OSError(errno.ENOSPC, "No space left on device"))
    with pytest.raises(CheckpointError) as info:
        _save_step(folder, 2)
    message = str(info.value)
    assert "\n" not in message and "No space left on device" in message and "step 2" in message
    assert "the previous checkpoint (step 1) is intact" in message
    not_written = message.split("(No space left on device, ENOSPC): ")[1].split(" were not written")[0]
    expected = ["model.safetensors", "attnlab_tokenizer.json", "config.json"]
    if which == "training_state.safetensors":
        expected = ["training_state.safetensors", "training_state.json", *expected]
    assert not_written.split(", ") == expected
    assert _listing(folder) == before  # nothing published, no staging folder left
    monkeypatch.undo()
    assert_close(load_model(folder)[0](X).logits, model(X).logits)
    assert ckpt.load_training_state(folder)["step"] == 1


def test_a_full_disk_reported_by_safetensors_is_a_checkpoint_error(tmp_path, monkeypatch):
    from safetensors import SafetensorError

    error = SafetensorError(
        'Error while serializing: IoError(Os { code: 28, kind: StorageFull, message: "No space left on device" })'
    )
    _fail_saving(monkeypatch, "model.safetensors", error)
    with pytest.raises(
        CheckpointError,
        match=r"No space left on device\): model.safetensors, config.json were not written.*no earlier checkpoint",
    ):
        _model(seed=0).save(tmp_path / "fresh")
    assert list((tmp_path / "fresh").iterdir()) == []


def test_a_tokenizer_that_does_not_fit_the_embedding_table_is_refused(tmp_path):
    small = CharTokenizer(list("abcdefgh"))
    _model(seed=0).save(tmp_path / "ck", tokenizer=small)  # 8 ids, 10 embedding rows
    message = "the tokenizer in .* has 8 ids but the model's embedding table has 10 rows"
    with pytest.raises(CheckpointError, match=message):
        load_model(tmp_path / "ck")
    with pytest.raises(CheckpointError, match=message):
        NumpyGPT.from_checkpoint(tmp_path / "ck")
    # the same mix in a folder without a manifest (a tokenizer copied in by hand)
    _model(seed=0).save(tmp_path / "hand", tokenizer=TOKENIZER)
    (tmp_path / "hand" / "checkpoint.json").unlink()
    big = CharTokenizer(list("abcdefghijkl"))
    big.save(tmp_path / "hand")
    with pytest.raises(CheckpointError, match="has 12 ids but the model's embedding table has 10 rows"):
        load_model(tmp_path / "hand")


def test_the_cli_reports_a_torn_checkpoint_in_one_line(tmp_path, capsys):
    from attnlab.cli import main

    _save_step(tmp_path / "a", 1)
    _save_step(tmp_path / "b", 2)
    shutil.copy(tmp_path / "b" / "config.json", tmp_path / "a" / "config.json")
    assert main(["generate", "--checkpoint", str(tmp_path / "a"), "--prompt", "abc", "--max-new-tokens", "3"]) == 2
    err = capsys.readouterr().err.strip()
    assert err.count("\n") == 0 and "config.json" in err and "step 2" in err and "step 1" in err


def test_numpy_arrays_round_trip_without_torch_types(tmp_path):
    ckpt.save_training_state(tmp_path / "s", {"step": 1, "a": np.arange(3.0)})
    state = ckpt.load_training_state(tmp_path / "s", as_torch=False)
    assert isinstance(state["a"], np.ndarray) and state["step"] == 1
    assert ckpt.read_manifest(tmp_path / "s")["step"] == 1

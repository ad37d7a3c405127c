"""The checkpoint format shared by both engines (NumPy and PyTorch), and how it is written and read.

A checkpoint is a folder:

    config.json           {"format": "attnlab-checkpoint", "model_type": "gpt", "config": {...}, "step": ..., "integrity": {...}}
    model.safetensors     the weights, float32 by default (never pickle)
    attnlab_tokenizer.json (+ tokenizer.json)   the tokenizer, when the model has one
    training_state.json   only for resumable training: step, schedule, data position ...
    training_state.safetensors   ... and its tensors (optimizer moments, RNG states)
    checkpoint.json       the manifest: the step, and the size and sha256 of every file above

**Whole or previous.** A checkpoint is one transaction (`CheckpointWriter`). Every file is
written into a fresh staging folder `.ckpt-staging-<pid>-<random>/`, fsynced and listed in
the manifest; the staging folder is then renamed to `.ckpt-ready/` in one atomic step (from
that moment the new checkpoint is complete), its files are moved to the top level one by
one with `os.replace`, files the previous manifest listed and the new one does not are
deleted, and the manifest moves last. A crash, even SIGKILL, before the rename leaves the
previous checkpoint untouched and a staging folder that the next writer deletes; a crash
after it leaves `.ckpt-ready/`, whose publishing the next writer (or `--resume`) finishes
(`recover`). A full disk or a read-only folder is one `CheckpointError` naming the files that
were not written and saying that the previous checkpoint is intact.

**Verified reads.** Readers never modify the folder. They take the manifest from
`.ckpt-ready/` when it is there, else from the top level, and read each listed file from
`.ckpt-ready/` while it is still there, else from the top level: right at every moment of
an interrupted publish. Each file's size and sha256 must match the manifest; a mismatch
while a writer is publishing is read again, any other is refused with one line naming the
file. config.json, the training state and the manifest must name the same step; the
training state is read only when the manifest lists it; config.json must hold the model
config the manifest recorded (an edited `num_heads` is refused, naming the field and both
values), and it records the sha256 of its config and of the weights (`integrity`), so even
a folder whose manifest was lost cannot pair weights with another config. A tokenizer must
have as many ids as the model's embedding table has rows. Folders written before manifests
existed load as before, with the checks their files allow.

Tensors travel as NumPy arrays, so the NumPy engine reads and writes exactly what the
PyTorch engine does. This module does not import torch.
"""

from __future__ import annotations

import errno
import hashlib
import json
import os
import re
import secrets
import shutil
import tempfile
import time
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from pathlib import Path, PurePosixPath
from typing import Any

import numpy as np

from attnlab import __version__
from attnlab.errors import CheckpointError
from attnlab.utils import atomic_path, sha256_file, write_json_atomic

FORMAT = "attnlab-checkpoint"
CONFIG_FILE = "config.json"
WEIGHTS_FILE = "model.safetensors"
STATE_FILE = "training_state.json"
STATE_TENSORS_FILE = "training_state.safetensors"
MANIFEST_FILE = "checkpoint.json"
MANIFEST_FORMAT = "attnlab-checkpoint-manifest"
MANIFEST_VERSION = 1
STAGING_PREFIX = ".ckpt-staging-"  # + "<pid>-<random>": a save in progress (or one a crash cut short)
READY_DIR = ".ckpt-ready"  # a complete new checkpoint whose files are being moved into place
_STATE_FILES = (STATE_FILE, STATE_TENSORS_FILE)
_NOT_TOKENIZER = {CONFIG_FILE, WEIGHTS_FILE, STATE_FILE, STATE_TENSORS_FILE, MANIFEST_FILE}
_READ_ATTEMPTS = 8  # reads of a folder a writer is publishing right now


@dataclass
class SavedModel:
    """What `read_model` returns."""

    model_type: str  # e.g. "gpt", "encoder", "seq2seq", "vit"
    config: dict[str, Any]  # the model config dataclass as a dict
    tensors: dict[str, np.ndarray]  # parameter name -> array
    tokenizer: Any | None  # an attnlab Tokenizer, or None
    metadata: dict[str, Any] = field(default_factory=dict)  # the rest of config.json
    path: Path | None = None


def _to_numpy(value: Any) -> np.ndarray:
    if isinstance(value, np.ndarray):
        return value
    try:  # torch tensors, without importing torch for NumPy-only users
        return value.detach().cpu().contiguous().numpy()
    except AttributeError:
        return np.asarray(value)


def is_checkpoint(folder: str | Path) -> bool:
    """True when `folder` holds an attnlab checkpoint (a config.json of our format).

    A first checkpoint whose publishing was interrupted (its config.json still in
    `.ckpt-ready/`) counts too: the readers read it from there.
    """
    folder = Path(folder)
    for path in (folder / CONFIG_FILE, folder / READY_DIR / CONFIG_FILE):
        try:
            if json.loads(path.read_text(encoding="utf-8")).get("format") == FORMAT:
                return True
        except (OSError, json.JSONDecodeError, UnicodeDecodeError, AttributeError):
            continue
    return False


def _config_digest(model_type: str, config: Mapping[str, Any]) -> str:
    """sha256 of the model type and config as canonical JSON (what config.json records in `integrity`)."""
    text = json.dumps({"model_type": model_type, "config": dict(config)}, sort_keys=True, separators=(",", ":"))
    return hashlib.sha256(text.encode("utf-8")).hexdigest()


def save_model(
    folder: str | Path,
    *,
    model_type: str,
    config: Mapping[str, Any],
    tensors: Mapping[str, Any],
    tokenizer: Any | None = None,
    metadata: Mapping[str, Any] | None = None,
) -> Path:
    """Write a model checkpoint folder (weights, config, tokenizer) as one transaction.

    Called with the staging folder of an open `CheckpointWriter`, it only writes its files
    there (the writer publishes them with the rest of the checkpoint); called with any
    other folder, it is a transaction of its own (see `CheckpointWriter`).

    Args:
        folder: the checkpoint folder (created if needed), or a writer's staging folder.
        model_type: registry name of the model class.
        config: the model config as a JSON-ready dict.
        tensors: parameter name -> torch tensor or NumPy array.
        tokenizer: an attnlab `Tokenizer` to save beside the weights, or None.
        metadata: extra JSON-ready fields for config.json (engine, dtype, tied weights, step ...).
    Returns:
        The folder path.
    Raises:
        CheckpointError: `folder` is a file, or the disk is full / the folder is not writable
            (the previous checkpoint is then intact).
    """
    folder = Path(folder)
    if _writer_of(folder) is not None or folder.name.startswith(STAGING_PREFIX):
        _write_model(folder, model_type, config, tensors, tokenizer, metadata)
        return folder
    step = (metadata or {}).get("step")
    expect = expected_files(tokenizer=tokenizer is not None)
    with CheckpointWriter(folder, step=step if _is_int(step) else None, expect=expect, carry_over=True) as staging:
        _write_model(staging, model_type, config, tensors, tokenizer, metadata)
    return folder


def _write_model(
    folder: Path,
    model_type: str,
    config: Mapping[str, Any],
    tensors: Mapping[str, Any],
    tokenizer: Any | None,
    metadata: Mapping[str, Any] | None,
) -> None:
    from safetensors.numpy import save_file

    from attnlab.tokenizers.base import TOKENIZER_FILE

    writer = _writer_of(folder)
    if writer is not None:
        writer.plan(WEIGHTS_FILE, *([TOKENIZER_FILE] if tokenizer is not None else []), CONFIG_FILE)
    folder.mkdir(parents=True, exist_ok=True)
    arrays = {}
    for name, t in tensors.items():
        a = _to_numpy(t)
        arrays[name] = np.ascontiguousarray(a).reshape(a.shape)  # keep 0-d arrays 0-d
    with atomic_path(folder / WEIGHTS_FILE) as tmp:
        save_file(arrays, str(tmp), metadata={"format": "np"})
    if tokenizer is not None:
        tokenizer.save(folder)
    meta = {
        "format": FORMAT,
        "attnlab_version": __version__,
        "model_type": model_type,
        "config": dict(config),
        "saved_at": time.strftime("%Y-%m-%dT%H:%M:%S%z"),
        **(dict(metadata) if metadata else {}),
        # what these weights were saved with: an edited config or swapped weights are refused on load
        "integrity": {
            "config_sha256": _config_digest(model_type, config),
            "weights_sha256": sha256_file(folder / WEIGHTS_FILE),
        },
    }
    write_json_atomic(folder / CONFIG_FILE, meta)


def _check_folder(folder: Path) -> None:
    if not folder.exists():
        raise CheckpointError(f"checkpoint {str(folder)!r} does not exist")
    if not folder.is_dir():
        raise CheckpointError(f"checkpoint {str(folder)!r} is a file; pass the checkpoint folder")


def read_metadata(folder: str | Path) -> dict[str, Any]:
    """config.json of a checkpoint folder, validated (against the manifest when there is one).

    Raises:
        CheckpointError: the folder or file is missing, unreadable, edited, torn, or not an
            attnlab checkpoint.
    """
    folder = Path(folder)
    _check_folder(folder)
    return _consistent_read(folder, _read_meta)


def _read_meta(view: _View) -> dict[str, Any]:
    folder = view.folder
    path = folder / CONFIG_FILE
    if view.manifest is not None:
        if CONFIG_FILE not in view.files:
            raise CheckpointError(
                f"{str(folder)!r} holds no model: its checkpoint{_step_words(view.step)} has only "
                f"{', '.join(sorted(view.files))}; save a model into it, or pass the folder of a trained model"
            )
        data = view.read_bytes(CONFIG_FILE, explain=_explain_config)
    else:
        if not path.is_file():
            raise CheckpointError(
                f"{str(folder)!r} is not an attnlab checkpoint: it has no {CONFIG_FILE} "
                "(train one with `attnlab train`, or convert a Hugging Face model with `attnlab convert --from-hf`)"
            )
        try:
            data = path.read_bytes()
        except OSError as e:
            raise CheckpointError(f"cannot read {str(path)!r} ({e.strerror or e})") from None
    try:
        meta = json.loads(data.decode("utf-8"))
    except (json.JSONDecodeError, UnicodeDecodeError) as e:
        raise CheckpointError(f"{str(path)!r} is corrupt (not valid JSON: {e})") from None
    if not isinstance(meta, dict) or meta.get("format") != FORMAT:
        hint = ""
        if isinstance(meta, dict) and "architectures" in meta:
            hint = "; it looks like a Hugging Face model folder: convert it with `attnlab convert --from-hf`"
        raise CheckpointError(f"{str(folder)!r} is not an attnlab checkpoint{hint}")
    if not isinstance(meta.get("config"), dict) or not isinstance(meta.get("model_type"), str):
        raise CheckpointError(f"{str(path)!r} is corrupt: it lacks model_type or config")
    integrity = meta.get("integrity")
    recorded = integrity.get("config_sha256") if isinstance(integrity, dict) else None
    if recorded is not None and recorded != _config_digest(meta["model_type"], meta["config"]):
        raise CheckpointError(
            f"{CONFIG_FILE} in {str(folder)!r} was edited after saving: its model config no longer matches the "
            "sha256 recorded when the weights were saved; undo the edit, or change settings with --model.FIELD=V when training"
        )
    step = meta.get("step")
    if view.manifest is not None and _is_int(step) and _is_int(view.step) and step != view.step:
        raise CheckpointError(
            _mixed(folder, f"{CONFIG_FILE} is from step {step}", f"its manifest from step {view.step}")
        )
    return meta


def _explain_config(view: _View, data: bytes) -> str | None:
    """Why a config.json differs from its manifest, when it was edited (None: it is torn or corrupt)."""
    try:
        meta = json.loads(data.decode("utf-8"))
    except (json.JSONDecodeError, UnicodeDecodeError):
        return None
    manifest = view.manifest or {}
    if (
        not isinstance(meta, dict)
        or not isinstance(meta.get("config"), dict)
        or not isinstance(manifest.get("config"), dict)
    ):
        return None
    diffs = []
    if meta.get("model_type") != manifest.get("model_type"):
        diffs.append(
            f"model_type is {meta.get('model_type')!r} there but the checkpoint was saved with {manifest.get('model_type')!r}"
        )
    missing = object()
    now, saved = meta["config"], manifest["config"]
    for key in sorted(set(now) | set(saved)):
        a, b = now.get(key, missing), saved.get(key, missing)
        if a != b:
            shown = [("missing" if v is missing else json.dumps(v)) for v in (a, b)]
            diffs.append(f"config.{key} is {shown[0]} there but the checkpoint was saved with {shown[1]}")
    if diffs:
        more = f" (and {len(diffs) - 4} more)" if len(diffs) > 4 else ""
        return (
            f"{CONFIG_FILE} in {str(view.folder)!r} was edited after saving: {'; '.join(diffs[:4])}{more}; "
            "undo the edit, or change settings with --model.FIELD=V when training"
        )
    step = meta.get("step")
    if _is_int(step) and _is_int(view.step) and step != view.step:
        return _mixed(view.folder, f"{CONFIG_FILE} is from step {step}", f"its manifest from step {view.step}")
    return None


def read_model(folder: str | Path, *, load_tokenizer: bool = True) -> SavedModel:
    """Read a checkpoint folder written by `save_model` (by either engine), verified.

    Raises:
        CheckpointError: missing, corrupt, torn or edited files; a tokenizer whose vocabulary
            does not match the model's embedding table.
    """
    folder = Path(folder)
    _check_folder(folder)
    saved = _consistent_read(folder, lambda view: _read_model(view, load_tokenizer))
    _check_vocabulary(saved)
    return saved


def _read_model(view: _View, load_tokenizer: bool) -> SavedModel:
    from safetensors import SafetensorError
    from safetensors.numpy import load_file

    from attnlab.tokenizers.base import TOKENIZER_FILE
    from attnlab.tokenizers.base import load_tokenizer as _load_tok

    folder = view.folder
    meta = _read_meta(view)
    weights = folder / WEIGHTS_FILE
    if view.manifest is not None:
        if WEIGHTS_FILE not in view.files:
            raise CheckpointError(f"checkpoint {str(folder)!r} has no {WEIGHTS_FILE}")
        weights, ident = view.verified_file(WEIGHTS_FILE)
        weights_sha = view.files[WEIGHTS_FILE]["sha256"]
    elif not weights.is_file():
        raise CheckpointError(f"checkpoint {str(folder)!r} has no {WEIGHTS_FILE}")
    try:
        tensors = load_file(str(weights))
    except FileNotFoundError:
        raise _Torn(f"{WEIGHTS_FILE} in {str(folder)!r} disappeared while it was read") from None
    except (SafetensorError, OSError, ValueError) as e:
        raise CheckpointError(f"{str(weights)!r} is corrupt or truncated ({e})") from None
    integrity = meta.get("integrity")
    recorded = integrity.get("weights_sha256") if isinstance(integrity, dict) else None
    if view.manifest is not None:
        view.unchanged(WEIGHTS_FILE, ident)
    elif recorded is not None:
        weights_sha = sha256_file(weights)
    if recorded is not None and recorded != weights_sha:
        raise CheckpointError(
            f"{WEIGHTS_FILE} in {str(folder)!r} is not the one its {CONFIG_FILE} was saved with (sha256 differs): "
            "the weights were replaced or the checkpoint is torn; restore both files from one save, or save the model again"
        )
    tokenizer = None
    if load_tokenizer and view.manifest is not None:
        names = [n for n in view.files if n not in _NOT_TOKENIZER]
        if TOKENIZER_FILE in names:
            # Load from verified copies: the files may sit half in .ckpt-ready/ right now.
            with tempfile.TemporaryDirectory(prefix="attnlab-tokenizer-") as tmp:
                for name in names:
                    target = Path(tmp, name)
                    target.parent.mkdir(parents=True, exist_ok=True)
                    target.write_bytes(view.read_bytes(name))
                tokenizer = _load_tok(tmp)
    elif load_tokenizer and (folder / TOKENIZER_FILE).is_file():
        tokenizer = _load_tok(folder)
    rest = {k: v for k, v in meta.items() if k not in ("model_type", "config")}
    return SavedModel(meta["model_type"], meta["config"], tensors, tokenizer, rest, folder)


def _check_vocabulary(saved: SavedModel) -> None:
    """A tokenizer must have exactly as many ids as the embedding table has rows."""
    rows = saved.config.get("vocab_size")
    if saved.tokenizer is None or not _is_int(rows):
        return
    ids = int(saved.tokenizer.vocab_size)
    if ids == rows or (ids < rows and saved.metadata.get("converted_from")):  # imported models may pad their table
        return
    raise CheckpointError(
        f"the tokenizer in {str(saved.path)!r} has {ids} ids but the model's embedding table has {rows} rows "
        "(config.vocab_size): they come from different models; save the model together with the tokenizer it was trained with"
    )


# ---------------------------------------------------------------------------
# Training state: nested dicts/lists of tensors and plain values, without pickle.
# Tensors go to a safetensors file under dotted keys; the JSON keeps the structure
# with {"__tensor__": key} placeholders.
# ---------------------------------------------------------------------------


def _flatten(obj: Any, prefix: str, out: dict[str, np.ndarray]) -> Any:
    if isinstance(obj, Mapping):
        return {
            "__dict__": [
                [_flatten(k, f"{prefix}.k{i}", out), _flatten(v, f"{prefix}.{i}", out)]
                for i, (k, v) in enumerate(obj.items())
            ]
        }
    if isinstance(obj, (list, tuple)):
        items = [_flatten(v, f"{prefix}.{i}", out) for i, v in enumerate(obj)]
        return {"__tuple__": items} if isinstance(obj, tuple) else items
    if obj is None or isinstance(obj, (bool, int, float, str)):
        return obj
    if isinstance(obj, np.generic):
        return obj.item()
    arr = _to_numpy(obj)
    kind = "numpy" if isinstance(obj, np.ndarray) else "torch"
    out[prefix] = np.ascontiguousarray(arr).reshape(arr.shape)
    return {"__tensor__": prefix, "kind": kind}


def _unflatten(obj: Any, tensors: Mapping[str, np.ndarray], as_torch: bool) -> Any:
    if isinstance(obj, list):
        return [_unflatten(v, tensors, as_torch) for v in obj]
    if isinstance(obj, dict):
        if "__tensor__" in obj:
            arr = tensors[obj["__tensor__"]]
            if as_torch and obj.get("kind") == "torch":
                import torch

                return torch.from_numpy(arr.copy())
            return arr.copy()
        if "__tuple__" in obj:
            return tuple(_unflatten(v, tensors, as_torch) for v in obj["__tuple__"])
        if "__dict__" in obj:
            return {_unflatten(k, tensors, as_torch): _unflatten(v, tensors, as_torch) for k, v in obj["__dict__"]}
    return obj


def save_training_state(folder: str | Path, state: Mapping[str, Any]) -> None:
    """Write resumable training state (optimizer, step, RNG states ...) next to the model.

    Like `save_model`: into a `CheckpointWriter`'s staging folder it only writes; into any
    other folder it is a transaction of its own.

    Args:
        folder: the checkpoint folder, or a writer's staging folder.
        state: nested dicts/lists/tuples of plain values, torch tensors and NumPy arrays.
    Raises:
        CheckpointError: the disk is full or the folder is not writable (the previous
            checkpoint is then intact).
    """
    folder = Path(folder)
    if _writer_of(folder) is not None or folder.name.startswith(STAGING_PREFIX):
        _write_state(folder, state)
        return
    step = state.get("step")
    expect = expected_files(model=False, training_state=True)
    with CheckpointWriter(folder, step=step if _is_int(step) else None, expect=expect, carry_over=True) as staging:
        _write_state(staging, state)


def _write_state(folder: Path, state: Mapping[str, Any]) -> None:
    from safetensors.numpy import save_file

    writer = _writer_of(folder)
    if writer is not None:
        writer.plan(STATE_TENSORS_FILE, STATE_FILE)
    folder.mkdir(parents=True, exist_ok=True)
    tensors: dict[str, np.ndarray] = {}
    skeleton = _flatten(dict(state), "s", tensors)
    with atomic_path(folder / STATE_TENSORS_FILE) as tmp:
        save_file(tensors, str(tmp))
    step = state.get("step")
    write_json_atomic(
        folder / STATE_FILE, {"format": FORMAT, "step": step if _is_int(step) else None, "state": skeleton}
    )


def has_training_state(folder: str | Path) -> bool:
    """True when `folder` holds training-state files.

    Files its manifest does not list count too (an older save left them): `load_training_state`
    refuses those, saying so, rather than mixing them with the model.
    """
    folder = Path(folder)
    try:
        found = _manifest_now(folder)
    except CheckpointError:  # a corrupt manifest: let load_training_state say so
        return True
    if found is not None and all(n in found[1]["files"] for n in _STATE_FILES):
        return True
    return (folder / STATE_FILE).is_file() and (folder / STATE_TENSORS_FILE).is_file()


def load_training_state(folder: str | Path, *, as_torch: bool = True) -> dict[str, Any]:
    """Read what `save_training_state` wrote (torch tensors come back as torch tensors), verified.

    Raises:
        CheckpointError: missing, corrupt or torn state files; state that its checkpoint's
            manifest does not list; state of another step than the model beside it.
    """
    folder = Path(folder)
    _check_folder(folder)
    return _consistent_read(folder, lambda view: _read_state(view, as_torch))


def _read_state(view: _View, as_torch: bool) -> dict[str, Any]:
    from safetensors import SafetensorError
    from safetensors.numpy import load_file

    folder = view.folder
    no_state = (
        f"{str(folder)!r} holds no training state ({STATE_FILE}); it cannot be resumed "
        "(it may have been exported without optimizer state)"
    )
    if view.manifest is not None:
        unlisted = [n for n in _STATE_FILES if n not in view.files]
        if unlisted:
            if any((folder / n).is_file() for n in unlisted):
                raise CheckpointError(
                    f"the training state in {str(folder)!r} is not part of its checkpoint{_step_words(view.step)}: "
                    f"{MANIFEST_FILE} does not list {', '.join(unlisted)}, which an older save left behind; "
                    "it cannot be resumed: start without --resume, or resume from the folder that saved that state"
                )
            raise CheckpointError(no_state)
        raw = view.read_bytes(STATE_FILE)
        path, ident = view.verified_file(STATE_TENSORS_FILE)
        model_step = view.step
    else:
        if not ((folder / STATE_FILE).is_file() and (folder / STATE_TENSORS_FILE).is_file()):
            raise CheckpointError(no_state)
        raw, path, ident = None, folder / STATE_TENSORS_FILE, None
        model_step = _legacy_model_step(folder)
    try:
        data = json.loads((raw if raw is not None else (folder / STATE_FILE).read_bytes()).decode("utf-8"))
        tensors = load_file(str(path))
        if ident is not None:
            view.unchanged(STATE_TENSORS_FILE, ident)
        state = _unflatten(data["state"], tensors, as_torch)
    except FileNotFoundError:
        raise _Torn(f"the training state in {str(folder)!r} disappeared while it was read") from None
    except (json.JSONDecodeError, UnicodeDecodeError, KeyError, TypeError, SafetensorError, OSError, ValueError) as e:
        raise CheckpointError(f"training state in {str(folder)!r} is corrupt ({e})") from None
    step = state.get("step") if isinstance(state, dict) else None
    if _is_int(step) and _is_int(model_step) and step != model_step:
        where = "its manifest" if view.manifest is not None else f"the model ({CONFIG_FILE})"
        raise CheckpointError(
            _mixed(folder, f"its training state is from step {step}", f"{where} from step {model_step}")
        )
    return state


def _legacy_model_step(folder: Path) -> int | None:
    """The step config.json names in a folder without a manifest (None when it names none)."""
    try:
        step = json.loads((folder / CONFIG_FILE).read_text(encoding="utf-8")).get("step")
    except (OSError, ValueError, AttributeError):
        return None
    return step if _is_int(step) else None


def _is_int(value: Any) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


def _step_words(step: Any) -> str:
    return f" (step {step})" if _is_int(step) else ""


def _mixed(folder: Path, one: str, other: str) -> str:
    return (
        f"checkpoint {str(folder)!r} is mixed: {one} but {other} (a save was interrupted, or files were copied "
        "from another save); it cannot be resumed: train again, or restore the whole folder from one save"
    )


# ---------------------------------------------------------------------------
# Writing: one checkpoint, one transaction.
# ---------------------------------------------------------------------------

_ACTIVE: dict[str, CheckpointWriter] = {}  # staging folder -> its open writer, in this process


def _writer_of(folder: Path) -> CheckpointWriter | None:
    return _ACTIVE.get(os.path.abspath(folder))


def expected_files(*, model: bool = True, tokenizer: bool = False, training_state: bool = False) -> list[str]:
    """Names of the files a checkpoint holds (for `CheckpointWriter(expect=...)`)."""
    from attnlab.tokenizers.base import TOKENIZER_FILE

    names = [STATE_TENSORS_FILE, STATE_FILE] if training_state else []  # in the order they are written
    if model:
        names += [WEIGHTS_FILE, *([TOKENIZER_FILE] if tokenizer else []), CONFIG_FILE]
    return names


class CheckpointWriter:
    """One checkpoint as one transaction: ``with CheckpointWriter(folder, step=N) as staging:``.

    The block writes every file of the checkpoint into `staging` (a fresh folder
    `folder/.ckpt-staging-<pid>-<random>/`) with the usual writers: `save_model`,
    `save_training_state`, a tokenizer's `save`, an engine's `save_model`. When the block
    ends normally the files are fsynced, listed in the manifest and published together (see
    the module docstring); when it raises, the staging folder is removed and the previous
    checkpoint stays as it was. Entering first finishes a publish a crash interrupted and
    deletes staging folders that crashed saves left.

    Args:
        folder: the checkpoint folder (created if needed).
        step: the training step the checkpoint holds (None outside training).
        expect: names of the files the block will write, for the message when it fails.
        carry_over: keep the previous checkpoint's model files (or its training state) when
            the block writes only the other part and both parts name the same step (what a
            lone `save_model` or `save_training_state` into a checkpoint folder means).
    Raises:
        CheckpointError: on entering or leaving, an OSError (full disk, read-only folder, no
            permission): the message names the files that were not written and says that
            the previous checkpoint is intact.
    """

    def __init__(
        self, folder: str | Path, *, step: int | None = None, expect: Iterable[str] = (), carry_over: bool = False
    ):
        self.folder = Path(folder)
        self.step = step
        self.carry_over = carry_over
        self.staging: Path | None = None
        self._planned: list[str] = list(dict.fromkeys(expect))
        self._previous: tuple[bool, int | None] = (False, None)

    def plan(self, *names: str) -> None:
        """Record that the block is about to write `names` (the writers call this)."""
        for name in names:
            if name not in self._planned:
                self._planned.append(name)

    def __enter__(self) -> Path:
        folder = self.folder
        if folder.exists() and not folder.is_dir():
            raise CheckpointError(f"cannot write a checkpoint to {str(folder)!r}: it is a file, not a folder")
        try:
            folder.mkdir(parents=True, exist_ok=True)
            recover(folder)
            self._previous = _previous_checkpoint(folder)
            staging = folder / f"{STAGING_PREFIX}{os.getpid()}-{secrets.token_hex(4)}"
            staging.mkdir()
        except OSError as e:
            raise CheckpointError(
                f"cannot write a checkpoint{_step_words(self.step)} to {str(folder)!r} ({_os_reason(e)}); "
                f"{self._previous_words()}; choose a folder you can write to, or free some disk space"
            ) from None
        self.staging = staging
        _ACTIVE[os.path.abspath(staging)] = self
        return staging

    def __exit__(self, exc_type: Any, exc: BaseException | None, tb: Any) -> bool:
        assert self.staging is not None
        _ACTIVE.pop(os.path.abspath(self.staging), None)
        if exc is None:
            try:
                sealed = self._seal()
            except BaseException as e:  # incl. Ctrl-C while fsyncing: nothing was published
                message = self._failure(e) if _is_os_error(e) else None
                self._discard()
                if message is None:
                    raise
                raise CheckpointError(message) from None
            if not sealed:  # the block wrote nothing: there is nothing to publish
                return False
            try:
                _roll_forward(self.folder)
            except OSError as e:
                raise CheckpointError(
                    f"checkpoint{_step_words(self.step)} in {str(self.folder)!r} is complete but could not be moved into "
                    f"place ({_os_reason(e)}); readers already read it from {READY_DIR}/, and the next save or --resume "
                    "finishes moving it: fix the folder (disk space, permissions) and run again"
                ) from None
            return False
        message = self._failure(exc) if _is_os_error(exc) else None
        self._discard()
        if message is not None:
            raise CheckpointError(message) from None
        return False

    # -- inside the transaction ---------------------------------------------------

    def _seal(self) -> bool:
        """List, fsync and hash the staged files, write the manifest, rename to .ckpt-ready/."""
        assert self.staging is not None
        staging, folder = self.staging, self.folder
        names = _staged_names(staging)
        if not names:
            self._discard()
            return False
        if self.carry_over:
            names = self._carry_over(names)
        files = {}
        for name in names:
            path = staging / name
            _fsync_file(path)
            files[name] = {"size": path.stat().st_size, "sha256": sha256_file(path)}
        meta = _read_json(staging / CONFIG_FILE) if CONFIG_FILE in files else None
        state_step = (_read_json(staging / STATE_FILE) or {}).get("step") if STATE_FILE in files else None
        steps = {s for s in (self.step, (meta or {}).get("step"), state_step) if _is_int(s)}
        if len(steps) > 1:  # a caller's bug, not the user's: never publish it
            raise ValueError(f"checkpoint parts name different steps {sorted(steps)} in one transaction")
        manifest: dict[str, Any] = {
            "format": MANIFEST_FORMAT,
            "version": MANIFEST_VERSION,
            "step": next(iter(steps)) if steps else None,
            "attnlab_version": __version__,
            "saved_at": time.strftime("%Y-%m-%dT%H:%M:%S%z"),
        }
        if meta is not None:
            manifest["model_type"] = meta.get("model_type")
            manifest["config"] = meta.get("config")
        manifest["files"] = files
        with open(staging / MANIFEST_FILE, "w", encoding="utf-8") as f:
            f.write(json.dumps(manifest, indent=2) + "\n")
            f.flush()
            os.fsync(f.fileno())
        _fsync_dir(staging)
        if (folder / READY_DIR).exists():  # another writer's publish, cut short since we entered
            _roll_forward(folder)
        os.rename(staging, folder / READY_DIR)  # the commit point: the new checkpoint is complete
        _fsync_dir(folder)
        return True

    def _carry_over(self, names: list[str]) -> list[str]:
        """Link the previous checkpoint's other part into staging when it is of the same step."""
        assert self.staging is not None
        found = _manifest_now(self.folder)
        if found is None:
            return names
        previous = found[1]
        writes_model, writes_state = CONFIG_FILE in names, STATE_FILE in names
        meta = _read_json(self.staging / CONFIG_FILE) if writes_model else None
        state_step = (_read_json(self.staging / STATE_FILE) or {}).get("step") if writes_state else None
        step = next((s for s in (self.step, (meta or {}).get("step"), state_step) if _is_int(s)), None)
        if step != previous.get("step"):
            return names
        for name in previous["files"]:
            is_state = name in _STATE_FILES
            if name in names or (is_state and writes_state) or (not is_state and writes_model):
                continue
            source, target = self.folder / name, self.staging / name
            target.parent.mkdir(parents=True, exist_ok=True)
            try:
                os.link(source, target)  # published files are never changed in place: sharing the inode is safe
            except OSError:
                shutil.copy2(source, target)
        return _staged_names(self.staging)

    def _discard(self) -> None:
        if self.staging is not None:
            shutil.rmtree(self.staging, ignore_errors=True)

    def _previous_words(self) -> str:
        had, step = self._previous
        if not had:
            return "the folder holds no earlier checkpoint, and nothing in it was changed"
        return f"the previous checkpoint{_step_words(step)} is intact"

    def _failure(self, error: BaseException) -> str:
        present = set(_staged_names(self.staging)) if self.staging is not None and self.staging.is_dir() else set()
        missing = [n for n in self._planned if n not in present] or [MANIFEST_FILE]
        return (
            f"could not save checkpoint{_step_words(self.step)} to {str(self.folder)!r} ({_os_reason(error)}): "
            f"{', '.join(missing)} {'was' if len(missing) == 1 else 'were'} not written and nothing of this save was "
            f"published; {self._previous_words()}; free some disk space (or fix the folder's permissions) and save again"
        )


def recover(folder: str | Path) -> None:
    """Finish a publish a crash interrupted, and delete staging folders crashed saves left.

    Writers call this before anything else (`CheckpointWriter` on entering, the Trainer before
    resuming); readers never do, they read an interrupted publish as it is.
    """
    folder = Path(folder)
    if not folder.is_dir():
        return
    _roll_forward(folder)
    for entry in folder.iterdir():
        if entry.name.startswith(STAGING_PREFIX) and entry.is_dir() and not _staging_in_use(entry):
            shutil.rmtree(entry, ignore_errors=True)


def _roll_forward(folder: Path) -> None:
    """Move a complete `.ckpt-ready/` checkpoint into place (idempotent: safe to repeat after a crash)."""
    ready = folder / READY_DIR
    if not ready.is_dir():
        return
    source_manifest = ready / MANIFEST_FILE
    if not source_manifest.is_file():  # the manifest, moved last, is already in place
        shutil.rmtree(ready, ignore_errors=True)
        _fsync_dir(folder)
        return
    try:
        new = _parse_manifest(source_manifest.read_bytes(), source_manifest)
    except CheckpointError as e:  # only a disk that lost fsynced data gets here
        raise CheckpointError(
            f"{e} (delete the folder {READY_DIR} in {str(folder)!r} to go back to the previous checkpoint)"
        ) from None
    old_found = None
    try:
        old_found = _manifest_now(folder, include_ready=False)
    except CheckpointError:  # an unreadable old manifest: there is nothing of it to clean up
        pass
    for name in new["files"]:
        source = ready / name
        if os.path.lexists(source):
            target = folder / name
            target.parent.mkdir(parents=True, exist_ok=True)
            _keep_users_file(target)
            os.replace(source, target)
    if old_found is not None:  # files of the previous checkpoint that the new one does not have
        for name in set(old_found[1]["files"]) - set(new["files"]):
            _keep_users_file(folder / name)
            with _suppress_missing():
                (folder / name).unlink()
    _fsync_dir(folder)
    _keep_users_file(folder / MANIFEST_FILE)
    os.replace(source_manifest, folder / MANIFEST_FILE)
    _fsync_dir(folder)
    shutil.rmtree(ready, ignore_errors=True)
    _fsync_dir(folder)


class _suppress_missing:
    def __enter__(self) -> None:
        return None

    def __exit__(self, exc_type: Any, exc: Any, tb: Any) -> bool:
        return exc_type is not None and issubclass(exc_type, (FileNotFoundError, IsADirectoryError))


def _keep_users_file(path: Path) -> None:
    """A file of the user's in a folder taken over with --force is set aside, never replaced."""
    try:
        from attnlab.runs import set_aside_if_foreign
    except ImportError:  # pragma: no cover - an install without run markers
        return
    set_aside_if_foreign(path)


def _previous_checkpoint(folder: Path) -> tuple[bool, int | None]:
    """(whether `folder` holds a checkpoint, its step)."""
    try:
        found = _manifest_now(folder)
    except CheckpointError:
        found = None
    if found is not None:
        step = found[1].get("step")
        return True, step if _is_int(step) else None
    meta = _read_json(folder / CONFIG_FILE)
    if meta is not None and meta.get("format") == FORMAT:
        return True, _legacy_model_step(folder)
    return False, None


def _staging_in_use(path: Path) -> bool:
    if _ACTIVE.get(os.path.abspath(path)) is not None:
        return True
    match = re.fullmatch(re.escape(STAGING_PREFIX) + r"(\d+)-[0-9a-f]+", path.name)
    if match is None or int(match.group(1)) == os.getpid() or os.name == "nt":
        return False
    try:
        os.kill(int(match.group(1)), 0)  # signal 0: only asks whether the process exists
    except ProcessLookupError:
        return False
    except OSError:  # it exists, but belongs to someone else
        return True
    return True


def _staged_names(staging: Path) -> list[str]:
    """Relative names of the finished files in a staging folder (writers' temporaries left out)."""
    names = []
    for root, _dirs, files in os.walk(staging):
        for name in files:
            if name.startswith(".") and name.endswith(".tmp"):
                continue
            rel = Path(root, name).relative_to(staging).as_posix()
            if rel != MANIFEST_FILE:
                names.append(rel)
    return sorted(names)


def _read_json(path: Path) -> dict[str, Any] | None:
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None
    return data if isinstance(data, dict) else None


def _fsync_file(path: Path) -> None:
    with open(path, "rb") as f:
        os.fsync(f.fileno())


def _fsync_dir(path: Path) -> None:
    """Make renames in `path` durable (not possible, nor needed, on Windows)."""
    try:
        fd = os.open(path, os.O_RDONLY)
    except OSError:
        return
    try:
        os.fsync(fd)
    except OSError:
        pass
    finally:
        os.close(fd)


def _is_os_error(error: BaseException) -> bool:
    """An OSError, or safetensors' wrapper of one (it reports a full disk as `IoError(Os {...})`)."""
    if isinstance(error, OSError):
        return True
    return type(error).__name__ == "SafetensorError" and "IoError" in str(error)


def _os_reason(error: BaseException) -> str:
    if isinstance(error, OSError):
        text = error.strerror or str(error)
        code = errno.errorcode.get(error.errno or 0)
        return f"{text}, {code}" if code else text
    message = re.search(r'message: "([^"]+)"', str(error))
    return message.group(1) if message else str(error)


# ---------------------------------------------------------------------------
# Reading: the manifest in effect, and each listed file verified.
# ---------------------------------------------------------------------------


class _Torn(Exception):
    """A listed file is missing or differs from the manifest: maybe a writer is publishing right now."""


def _safe_name(name: Any) -> bool:
    if not isinstance(name, str) or not name or "\\" in name:
        return False
    parts = PurePosixPath(name).parts
    return not PurePosixPath(name).is_absolute() and ".." not in parts and not name.startswith(READY_DIR)


def _parse_manifest(data: bytes, where: Path) -> dict[str, Any]:
    try:
        manifest = json.loads(data.decode("utf-8"))
    except (json.JSONDecodeError, UnicodeDecodeError) as e:
        raise CheckpointError(
            f"{str(where)!r} is corrupt (not valid JSON: {e}); restore the folder from one save, or save it again"
        ) from None
    if not isinstance(manifest, dict) or manifest.get("format") != MANIFEST_FORMAT:
        raise CheckpointError(
            f"{str(where)!r} is not an attnlab checkpoint manifest; remove it, or restore the folder from one save"
        )
    version = manifest.get("version")
    if not _is_int(version) or version > MANIFEST_VERSION:
        raise CheckpointError(
            f"{str(where)!r} has manifest version {version!r}, newer than this attnlab reads ({MANIFEST_VERSION}); upgrade attnlab"
        )
    files = manifest.get("files")
    ok = isinstance(files, dict) and all(
        _safe_name(name)
        and isinstance(entry, dict)
        and _is_int(entry.get("size"))
        and isinstance(entry.get("sha256"), str)
        for name, entry in files.items()
    )
    if not ok:
        raise CheckpointError(
            f"{str(where)!r} is corrupt (its file list is malformed); restore the folder from one save, or save it again"
        )
    return manifest


def _manifest_now(folder: Path, *, include_ready: bool = True) -> tuple[bytes, dict[str, Any]] | None:
    """The manifest in effect: `.ckpt-ready/`'s while a publish is under way, else the top level's."""
    places = ([folder / READY_DIR / MANIFEST_FILE] if include_ready else []) + [folder / MANIFEST_FILE]
    for where in places:
        try:
            data = where.read_bytes()
        except (FileNotFoundError, NotADirectoryError):
            continue  # (the ready manifest may have just moved to the top level)
        except OSError as e:
            raise CheckpointError(f"cannot read {str(where)!r} ({e.strerror or e})") from None
        return data, _parse_manifest(data, where)
    return None


def read_manifest(folder: str | Path) -> dict[str, Any] | None:
    """The manifest (`checkpoint.json`) in effect in `folder`, or None for a folder written without one.

    Raises:
        CheckpointError: the manifest is corrupt or newer than this attnlab.
    """
    found = _manifest_now(Path(folder))
    return found[1] if found else None


class _View:
    """One reading of a checkpoint folder: the manifest in effect and where its files are."""

    def __init__(self, folder: Path):
        self.folder = folder
        found = _manifest_now(folder)
        self.raw, self.manifest = found if found is not None else (None, None)
        self.files: dict[str, dict[str, Any]] = self.manifest["files"] if self.manifest else {}
        self.step = self.manifest.get("step") if self.manifest else None

    def _open(self, name: str) -> Any:
        for base in (self.folder / READY_DIR, self.folder):
            try:
                return open(base / name, "rb")
            except (FileNotFoundError, NotADirectoryError):
                continue
        raise _Torn(
            f"{name} is missing from checkpoint {str(self.folder)!r} ({MANIFEST_FILE} lists it): the checkpoint is "
            "incomplete or was modified; restore the file, or save the checkpoint again"
        )

    def _check(
        self,
        name: str,
        size: int,
        digest: str,
        explain: Callable[[_View, bytes], str | None] | None = None,
        data: bytes | None = None,
    ) -> None:
        entry = self.files[name]
        if size == entry["size"] and digest == entry["sha256"]:
            return
        special = explain(self, data) if explain is not None and data is not None else None
        what = "size" if size != entry["size"] else "sha256"
        raise _Torn(
            special
            or (
                f"{name} in {str(self.folder)!r} does not match the checkpoint manifest ({what} differs): the checkpoint is "
                f"corrupt, torn or was modified after saving; restore the file, or save the checkpoint again"
            )
        )

    def read_bytes(self, name: str, explain: Callable[[_View, bytes], str | None] | None = None) -> bytes:
        """The content of listed file `name`, verified."""
        with self._open(name) as f:
            data = f.read()
        self._check(name, len(data), hashlib.sha256(data).hexdigest(), explain, data)
        return data

    def verified_file(self, name: str) -> tuple[Path, tuple[int, ...]]:
        """Where listed file `name` is, once its content is verified (hashed in chunks, not kept in memory)."""
        with self._open(name) as f:
            h, size = hashlib.sha256(), 0
            while chunk := f.read(1 << 20):
                h.update(chunk)
                size += len(chunk)
            ident = _identity(os.fstat(f.fileno()))
            path = Path(f.name)
        self._check(name, size, h.hexdigest())
        return path, ident

    def unchanged(self, name: str, ident: tuple[int, ...]) -> None:
        """Raise `_Torn` unless `name` is still the file `verified_file` hashed (files are replaced, never rewritten)."""
        for base in (self.folder / READY_DIR, self.folder):
            try:
                if _identity(os.stat(base / name)) == ident:
                    return
            except OSError:
                continue
        raise _Torn(f"{name} in {str(self.folder)!r} was replaced while it was read")


def _identity(st: os.stat_result) -> tuple[int, ...]:
    return (st.st_dev, st.st_ino, st.st_size, st.st_mtime_ns)


def _consistent_read(folder: Path, read: Callable[[_View], Any]) -> Any:
    """Run `read` on the folder; read again while a writer publishing right now explains a mismatch."""
    message = ""
    for attempt in range(_READ_ATTEMPTS):
        view = _View(folder)
        try:
            return read(view)
        except _Torn as e:
            message = str(e)
            if view.manifest is None:
                break
            now = _manifest_now(folder)
            if now is None or now[0] == view.raw:  # the same manifest: the mismatch is not a publish in progress
                break
            time.sleep(0.005 * (attempt + 1))
    raise CheckpointError(message)


def verify_checkpoint(folder: str | Path) -> dict[str, Any]:
    """Check every file of a checkpoint against its manifest, and that its parts name one step.

    Returns:
        {"step": int or None, "files": [names], "manifest": bool}.
    Raises:
        CheckpointError: naming the first file or step that does not match.
    """
    folder = Path(folder)
    _check_folder(folder)

    def read(view: _View) -> dict[str, Any]:
        if view.manifest is None:
            meta = _read_meta(view)
            step = meta.get("step")
            if has_training_state(folder):
                _read_state(view, as_torch=False)
            return {"step": step if _is_int(step) else None, "files": [], "manifest": False}
        for name in view.files:
            if name == CONFIG_FILE:
                _read_meta(view)
            elif name.endswith(".safetensors"):
                view.unchanged(name, view.verified_file(name)[1])
            else:
                view.read_bytes(name)
        if STATE_FILE in view.files:
            state_step = json.loads(view.read_bytes(STATE_FILE).decode("utf-8")).get("step")
            if _is_int(state_step) and _is_int(view.step) and state_step != view.step:
                raise CheckpointError(
                    _mixed(
                        folder, f"its training state is from step {state_step}", f"its manifest from step {view.step}"
                    )
                )
        return {"step": view.step, "files": sorted(view.files), "manifest": True}

    return _consistent_read(folder, read)

"""The checkpoint format shared by both engines (NumPy and PyTorch).

A checkpoint is a folder:

    config.json           {"format": "attnlab-checkpoint", "model_type": "gpt", "config": {...}, ...}
    model.safetensors     the weights, float32 by default (never pickle)
    attnlab_tokenizer.json (+ tokenizer.json)   the tokenizer, when the model has one
    training_state.json   only for resumable training: step, schedule, data position ...
    training_state.safetensors   ... and its tensors (optimizer moments, RNG states)

Every file is written to a temporary name and renamed into place, and `config.json`
is written last, so an interrupted save leaves either the previous checkpoint or
the new one, never a mixture that loads. Tensors travel as NumPy arrays, so the
NumPy engine reads and writes exactly what the PyTorch engine does.
"""

from __future__ import annotations

import json
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Mapping

import numpy as np

from attnlab import __version__
from attnlab.errors import CheckpointError
from attnlab.utils import atomic_path, write_json_atomic

FORMAT = "attnlab-checkpoint"
CONFIG_FILE = "config.json"
WEIGHTS_FILE = "model.safetensors"
STATE_FILE = "training_state.json"
STATE_TENSORS_FILE = "training_state.safetensors"


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
    """True when `folder` holds an attnlab checkpoint (a config.json of our format)."""
    path = Path(folder) / CONFIG_FILE
    if not path.is_file():
        return False
    try:
        return json.loads(path.read_text(encoding="utf-8")).get("format") == FORMAT
    except (json.JSONDecodeError, UnicodeDecodeError, AttributeError):
        return False


def save_model(
    folder: str | Path,
    *,
    model_type: str,
    config: Mapping[str, Any],
    tensors: Mapping[str, Any],
    tokenizer: Any | None = None,
    metadata: Mapping[str, Any] | None = None,
) -> Path:
    """Write a model checkpoint folder (weights, config, tokenizer) atomically.

    Args:
        folder: the checkpoint folder (created if needed).
        model_type: registry name of the model class.
        config: the model config as a JSON-ready dict.
        tensors: parameter name -> torch tensor or NumPy array.
        tokenizer: an attnlab `Tokenizer` to save beside the weights, or None.
        metadata: extra JSON-ready fields for config.json (engine, dtype, tied weights ...).
    Returns:
        The folder path.
    """
    from safetensors.numpy import save_file

    folder = Path(folder)
    if folder.exists() and not folder.is_dir():
        raise CheckpointError(f"cannot write a checkpoint to {str(folder)!r}: it is a file, not a folder")
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
    }
    write_json_atomic(folder / CONFIG_FILE, meta)  # last: marks the checkpoint complete
    return folder


def read_metadata(folder: str | Path) -> dict[str, Any]:
    """config.json of a checkpoint folder, validated.

    Raises:
        CheckpointError: the folder or file is missing, unreadable, or not an attnlab checkpoint.
    """
    folder = Path(folder)
    if not folder.exists():
        raise CheckpointError(f"checkpoint {str(folder)!r} does not exist")
    if not folder.is_dir():
        raise CheckpointError(f"checkpoint {str(folder)!r} is a file; pass the checkpoint folder")
    path = folder / CONFIG_FILE
    if not path.is_file():
        raise CheckpointError(
            f"{str(folder)!r} is not an attnlab checkpoint: it has no {CONFIG_FILE} "
            "(train one with `attnlab train`, or convert a Hugging Face model with `attnlab convert --from-hf`)"
        )
    try:
        meta = json.loads(path.read_text(encoding="utf-8"))
    except (json.JSONDecodeError, UnicodeDecodeError) as e:
        raise CheckpointError(f"{str(path)!r} is corrupt (not valid JSON: {e})") from None
    if not isinstance(meta, dict) or meta.get("format") != FORMAT:
        hint = ""
        if isinstance(meta, dict) and "architectures" in meta:
            hint = "; it looks like a Hugging Face model folder: convert it with `attnlab convert --from-hf`"
        raise CheckpointError(f"{str(folder)!r} is not an attnlab checkpoint{hint}")
    if not isinstance(meta.get("config"), dict) or not isinstance(meta.get("model_type"), str):
        raise CheckpointError(f"{str(path)!r} is corrupt: it lacks model_type or config")
    return meta


def read_model(folder: str | Path, *, load_tokenizer: bool = True) -> SavedModel:
    """Read a checkpoint folder written by `save_model` (by either engine).

    Raises:
        CheckpointError: missing or corrupt files.
    """
    from safetensors import SafetensorError
    from safetensors.numpy import load_file

    folder = Path(folder)
    meta = read_metadata(folder)
    weights = folder / WEIGHTS_FILE
    if not weights.is_file():
        raise CheckpointError(f"checkpoint {str(folder)!r} has no {WEIGHTS_FILE}")
    try:
        tensors = load_file(str(weights))
    except (SafetensorError, OSError, ValueError) as e:
        raise CheckpointError(f"{str(weights)!r} is corrupt or truncated ({e})") from None
    tokenizer = None
    if load_tokenizer:
        from attnlab.tokenizers.base import TOKENIZER_FILE, load_tokenizer as _load_tok

        if (folder / TOKENIZER_FILE).is_file():
            tokenizer = _load_tok(folder)
    rest = {k: v for k, v in meta.items() if k not in ("model_type", "config")}
    return SavedModel(meta["model_type"], meta["config"], tensors, tokenizer, rest, folder)


# ---------------------------------------------------------------------------
# Training state: nested dicts/lists of tensors and plain values, without pickle.
# Tensors go to a safetensors file under dotted keys; the JSON keeps the structure
# with {"__tensor__": key} placeholders.
# ---------------------------------------------------------------------------


def _flatten(obj: Any, prefix: str, out: dict[str, np.ndarray]) -> Any:
    if isinstance(obj, Mapping):
        return {"__dict__": [[_flatten(k, f"{prefix}.k{i}", out), _flatten(v, f"{prefix}.{i}", out)] for i, (k, v) in enumerate(obj.items())]}
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

    Args:
        folder: the checkpoint folder.
        state: nested dicts/lists/tuples of plain values, torch tensors and NumPy arrays.
    """
    from safetensors.numpy import save_file

    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    tensors: dict[str, np.ndarray] = {}
    skeleton = _flatten(dict(state), "s", tensors)
    with atomic_path(folder / STATE_TENSORS_FILE) as tmp:
        save_file(tensors, str(tmp))
    write_json_atomic(folder / STATE_FILE, {"format": FORMAT, "state": skeleton})


def has_training_state(folder: str | Path) -> bool:
    folder = Path(folder)
    return (folder / STATE_FILE).is_file() and (folder / STATE_TENSORS_FILE).is_file()


def load_training_state(folder: str | Path, *, as_torch: bool = True) -> dict[str, Any]:
    """Read what `save_training_state` wrote (torch tensors come back as torch tensors).

    Raises:
        CheckpointError: missing or corrupt state files.
    """
    from safetensors import SafetensorError
    from safetensors.numpy import load_file

    folder = Path(folder)
    if not has_training_state(folder):
        raise CheckpointError(
            f"{str(folder)!r} holds no training state ({STATE_FILE}); it cannot be resumed "
            "(it may have been exported without optimizer state)"
        )
    try:
        data = json.loads((folder / STATE_FILE).read_text(encoding="utf-8"))
        tensors = load_file(str(folder / STATE_TENSORS_FILE))
        return _unflatten(data["state"], tensors, as_torch)
    except (json.JSONDecodeError, KeyError, SafetensorError, OSError, ValueError) as e:
        raise CheckpointError(f"training state in {str(folder)!r} is corrupt ({e})") from None

"""Pre-trained lab models: where the notebooks and the app look before training their own.

`attnlab room build` trains every model the labs use and `attnlab room install` copies
them into `models_dir()` (`$ATTNLAB_MODELS`, else `<cache>/models`), one folder per name
of `CATALOGUE`. A model folder is an ordinary attnlab checkpoint (`attnlab.checkpoint`;
the AMP probe is a `Probe.save` folder) plus `room.json`:

    {"format": "attnlab-room-model", "name": ..., "description": ..., "kind": "checkpoint" | "probe",
     "train_seconds": ..., "steps": ..., "metric": {"name": ..., "value": ...},
     "settings": {...}, "extra": {...}, "files": {NAME: {"size": ..., "sha256": ...}}, ...}

`room.json` is written last, so a folder without it is a build that was cut short. `find(name)`
returns a folder only when its `room.json` and its files (sizes, and the checkpoint's own
config) are in order, so a caller can say "using the pre-trained model" or train its own;
`check_model` verifies every file's sha256 (what `room install` does before copying).

Setting `ATTNLAB_TRAIN=1` makes `use(name)` answer None: the notebooks then train their own.
"""

from __future__ import annotations

import json
import os
import shutil
from pathlib import Path
from typing import Any

from attnlab import checkpoint as ckpt
from attnlab.errors import CheckpointError
from attnlab.utils import cache_dir, sha256_file

MODELS_ENV = "ATTNLAB_MODELS"
TRAIN_ENV = "ATTNLAB_TRAIN"  # 1: notebooks train their own models even when pre-trained ones are installed
ROOM_FILE = "room.json"
ROOM_FORMAT = "attnlab-room-model"

# name -> one line: what it is and who uses it. `attnlab room build` trains these, in this order.
CATALOGUE: dict[str, str] = {
    "demo-gpt": "the baby GPT of `attnlab demo` on the pydoc corpus (the app's Generate, Attention, Inside pages)",
    "gpt-05": "notebook 05's baby GPT (2,000 steps on pydoc, character tokens)",
    "encoder-mlm": "the small encoder of `attnlab train --objective mlm` (masked-LM on pydoc; the Attention page)",
    "seq2seq-reverse": "the transformer encoder-decoder of `attnlab train --task reverse`",
    "seq2seq-sort": "the transformer encoder-decoder of `attnlab train --task sort`",
    "seq2seq-numbers": "the transformer encoder-decoder of `attnlab train --task numbers`",
    "mnist-vit": "notebook 03's / `attnlab compare mnist`'s ViT on mnist5k (the app's Vision page)",
    "mnist-cnn": "notebook 03's / `attnlab compare mnist`'s ConvNet on mnist5k",
    "mnist-mlp": "notebook 03's / `attnlab compare mnist`'s MLP on mnist5k",
    "plm": "notebook 04's protein language model, pretrained longer (masked-LM on the AMP train+valid split)",
    "amp-probe": "an MLP probe on amino-acid composition for AMP vs UniProt (the app's proteins view)",
    "induction": "notebook 08's / `attnlab interp induction`'s 2-layer attention-only induction model",
}


def models_dir() -> Path:
    """The folder of installed pre-trained models: `$ATTNLAB_MODELS`, else `<cache>/models`."""
    env = os.environ.get(MODELS_ENV)
    return Path(env).expanduser() if env else cache_dir() / "models"


def read_room(folder: str | os.PathLike) -> dict[str, Any] | None:
    """The `room.json` of a model folder, or None when it has none (or an unreadable one)."""
    try:
        data = json.loads((Path(folder) / ROOM_FILE).read_text(encoding="utf-8"))
    except (OSError, ValueError, UnicodeDecodeError):
        return None
    if not isinstance(data, dict) or data.get("format") != ROOM_FORMAT or not isinstance(data.get("files"), dict):
        return None
    return data


def file_table(folder: str | os.PathLike) -> dict[str, dict[str, Any]]:
    """{relative name: {"size", "sha256"}} of every file under `folder` (room.json excluded)."""
    folder = Path(folder)
    table = {}
    for path in sorted(folder.rglob("*")):
        rel = path.relative_to(folder)
        if path.is_file() and rel.as_posix() != ROOM_FILE and not any(part.startswith(".") for part in rel.parts):
            table[rel.as_posix()] = {"size": path.stat().st_size, "sha256": sha256_file(path)}
    return table


def check_model(folder: str | os.PathLike, *, full: bool = True) -> dict[str, Any]:
    """Check a pre-trained model folder; return its room.json.

    Args:
        folder: a model folder (of a build folder, a kit or `models_dir()`).
        full: also compare every file's sha256 with room.json and verify the checkpoint's
            manifest (`attnlab.checkpoint.verify_checkpoint`); False checks presence and sizes only.
    Raises:
        CheckpointError: naming what is missing or does not match.
    """
    folder = Path(folder)
    room = read_room(folder)
    if room is None:
        why = "has no room.json" if not (folder / ROOM_FILE).exists() else "has an unreadable room.json"
        raise CheckpointError(
            f"{str(folder)!r} {why}, so it is not a finished pre-trained model (an interrupted "
            "`attnlab room build` leaves such folders; run it again to retrain it)"
        )
    for name, info in room["files"].items():
        path = folder / name
        if not path.is_file():
            raise CheckpointError(
                f"{str(folder)!r}: the file {name} that room.json lists is missing; rebuild or re-copy it"
            )
        if path.stat().st_size != info.get("size"):
            raise CheckpointError(
                f"{str(folder)!r}: {name} has {path.stat().st_size} bytes, room.json says {info.get('size')}; "
                "it is truncated or was changed: rebuild or re-copy the model"
            )
        if full and sha256_file(path) != info.get("sha256"):
            raise CheckpointError(
                f"{str(folder)!r}: {name} does not match its sha256 in room.json; it is damaged: rebuild or re-copy it"
            )
    if room.get("kind", "checkpoint") == "checkpoint":
        if not ckpt.is_checkpoint(folder):
            raise CheckpointError(f"{str(folder)!r} has a room.json but no attnlab checkpoint (config.json)")
        if full:
            ckpt.verify_checkpoint(folder)
    return room


def find(name: str) -> Path | None:
    """The installed pre-trained model `name` (its folder), or None when there is none or it is broken."""
    path = models_dir() / name
    if not path.is_dir():
        return None
    try:
        check_model(path, full=False)
    except CheckpointError:
        return None
    return path


def train_own() -> bool:
    """True when `$ATTNLAB_TRAIN` is 1 (or true/yes/on): the notebooks ignore the pre-trained models."""
    return os.environ.get(TRAIN_ENV, "").strip().lower() in ("1", "true", "yes", "on")


def use(name: str) -> Path | None:
    """What a notebook should load: `find(name)`, unless `$ATTNLAB_TRAIN` asks to train one's own."""
    return None if train_own() else find(name)


def copy_to(name: str, folder: str | os.PathLike) -> dict[str, Any]:
    """Copy the installed model `name` into `folder` (a notebook's run folder), so its cells read it there.

    Returns:
        Its room.json, with "results": the run's results.json (the training recipe's return value), or {}.
    Raises:
        CheckpointError: `name` is not installed (or is broken).
    """
    source = find(name)
    if source is None:
        raise CheckpointError(
            f"no pre-trained {name!r} in {str(models_dir())!r}; install a kit with `attnlab room install`"
        )
    folder = Path(folder)
    shutil.copytree(source, folder, dirs_exist_ok=True)
    room = read_room(folder) or {}
    try:
        results = json.loads((folder / "results.json").read_text(encoding="utf-8"))
    except (OSError, ValueError):
        results = {}
    return {**room, "results": results if isinstance(results, dict) else {}}


def installed() -> list[str]:
    """The names of `CATALOGUE` (then any others) that `find` finds, in catalogue order."""
    root = models_dir()
    others = sorted(p.name for p in root.iterdir() if p.is_dir() and p.name not in CATALOGUE) if root.is_dir() else []
    return [n for n in [*CATALOGUE, *others] if find(n) is not None]


def describe(name: str, what: str | None = None) -> str:
    """One sentence for a notebook that uses the installed model `name` (or says there is none)."""
    folder = find(name)
    what = what or name
    if folder is None:
        return f"No pre-trained {what} is installed (`attnlab room install KIT`), so this notebook trains its own."
    room = read_room(folder) or {}
    parts = []
    if room.get("steps") is not None:
        parts.append(f"{room['steps']:,} steps")
    if room.get("train_seconds") is not None:
        parts.append(f"{room['train_seconds']:.0f} s")
    trained = f" (trained {' in '.join(parts)})" if parts else ""
    metric = room.get("metric") or {}
    value = metric.get("value")
    if isinstance(value, (int, float)) and not isinstance(value, bool):
        shown = f"{value:,}" if isinstance(value, int) else f"{value:.3g}"
        trained += f", {metric.get('name', 'metric')} {shown}"
    return (
        f"Using the pre-trained {what} from `attnlab room install`{trained}; set {TRAIN_ENV}=1 "
        f"or delete {folder} to train your own."
    )


__all__ = [
    "CATALOGUE",
    "MODELS_ENV",
    "ROOM_FILE",
    "ROOM_FORMAT",
    "TRAIN_ENV",
    "check_model",
    "copy_to",
    "describe",
    "file_table",
    "find",
    "installed",
    "models_dir",
    "read_room",
    "train_own",
    "use",
]

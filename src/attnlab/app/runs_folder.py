"""The app's runs folder: finding checkpoints in it and refusing any path that leads outside it.

Pages never take a free-text path: they list what `find_checkpoints` finds and pass its
relative path back, and `resolve_in_runs` refuses `..`, absolute paths and symlinks out
of the runs folder. With `pretrained=True`, `find_checkpoints` also lists the pre-trained
models of `attnlab room install` (`attnlab.pretrained.models_dir()`), after the runs
folder's own, as `.pre-trained/NAME`: a dot-folder name the runs folder's walk never
lists, which `resolve_in_runs` resolves (with the same checks) inside the models folder. Every user mistake raises an `AttnlabError` subclass with a message
meant to be shown as is (the pages print it with `st.warning`).
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from attnlab import checkpoint as ckpt
from attnlab import pretrained as pretrained_models
from attnlab.app import DEFAULT_RUNS_DIR, RUNS_ENV
from attnlab.errors import CheckpointError, DataError
from attnlab.runs import lock_holder

MAX_SEARCH_DEPTH = 4  # runs/compare/models/vit is depth 3
PRETRAINED = ".pre-trained"  # `.pre-trained/NAME`: an installed pre-trained model (never a runs-folder path)


def is_pretrained(relative: str | os.PathLike) -> bool:
    """True for the relative path of an installed pre-trained model (`.pre-trained/NAME`)."""
    parts = Path(relative).parts
    return len(parts) == 2 and parts[0] == PRETRAINED


def runs_root(value: str | os.PathLike | None = None) -> Path:
    """The runs folder: `value`, else $ATTNLAB_APP_RUNS_DIR, else ./runs (absolute, not required to exist)."""
    raw = value if value is not None else os.environ.get(RUNS_ENV) or DEFAULT_RUNS_DIR
    return Path(raw).expanduser().absolute()


def check_runs_root(root: Path) -> None:
    """Raise a friendly `DataError` when the runs folder is missing or not a folder."""
    if not root.exists():
        raise DataError(
            f"the runs folder {str(root)!r} does not exist yet: train a model (the Generate page can train a "
            "tiny GPT, or run `attnlab demo` in a terminal) or start the app with `attnlab app --runs-dir DIR`"
        )
    if not root.is_dir():
        raise DataError(f"the runs folder {str(root)!r} is a file; start the app with `attnlab app --runs-dir FOLDER`")


def _inside(path: Path, root: Path) -> bool:
    try:
        path.relative_to(root)
        return True
    except ValueError:
        return False


def resolve_in_runs(root: Path, relative: str | os.PathLike) -> Path:
    """The folder `relative` inside the runs folder, with every symlink resolved and checked.

    Args:
        root: the runs folder.
        relative: a path relative to it (as listed by `find_checkpoints`).
    Returns:
        The resolved folder.
    Raises:
        CheckpointError: the path is absolute, leaves the runs folder (`..` or a symlink
            pointing outside), or holds a file that links outside it.
    """
    rel = Path(relative)
    if is_pretrained(rel):  # an installed pre-trained model: the same checks, inside the models folder
        root, rel = pretrained_models.models_dir(), Path(rel.parts[1])
    real_root = root.resolve()
    if rel.is_absolute() or ".." in rel.parts:
        raise CheckpointError(f"{str(relative)!r} is not a folder inside the runs folder; pick one from the list")
    folder = (real_root / rel).resolve()
    if not _inside(folder, real_root):
        raise CheckpointError(
            f"{str(relative)!r} links outside the runs folder {str(real_root)!r}; the app only reads the runs folder"
        )
    if folder.is_dir():
        for item in folder.iterdir():
            if item.is_symlink() and not _inside(item.resolve(), real_root):
                raise CheckpointError(
                    f"{str(rel / item.name)!r} links outside the runs folder; the app only reads files inside it"
                )
    return folder


@dataclass
class CheckpointEntry:
    """A checkpoint found in the runs folder."""

    relative: str  # path relative to the runs folder (what the pickers show and pass back)
    model_type: str  # gpt, encoder, vit, ...
    config: dict[str, Any]  # the model config
    metadata: dict[str, Any]  # the rest of config.json (step, val_loss, class_names ...)
    modified: float  # modification time of config.json (newest first in lists)
    writer: dict[str, Any] | None = None  # who is training it right now (attnlab.runs.lock_holder), if anyone

    @property
    def pretrained(self) -> bool:
        """True for an installed pre-trained model (`attnlab room install`), not a run of the runs folder."""
        return is_pretrained(self.relative)

    @property
    def name(self) -> str:
        """What figures and captions call it: the folder, or "NAME (pre-trained)"."""
        return f"{Path(self.relative).name} (pre-trained)" if self.pretrained else self.relative

    def label(self) -> str:
        """One line for a picker: folder, model size, training progress."""
        c = self.config
        parts = [f"{Path(self.relative).name} · pre-trained" if self.pretrained else self.relative, self.model_type]
        if "num_layers" in c and "embed_dim" in c:
            parts.append(f"{c['num_layers']} layers x {c['embed_dim']} wide")
        if self.metadata.get("step") is not None:
            parts.append(f"step {self.metadata['step']}")
        if isinstance(self.metadata.get("val_loss"), (int, float)):
            parts.append(f"val loss {self.metadata['val_loss']:.2f}")
        if isinstance(self.metadata.get("test_accuracy"), (int, float)):
            parts.append(f"test accuracy {100 * self.metadata['test_accuracy']:.1f}%")
        if self.writer is not None:  # its last whole checkpoint is offered; a newer one is on the way
            parts.append("training now")
        return " · ".join(parts)


def walk_runs(root: Path, max_depth: int):
    """Folders under `root` (itself included) down to `max_depth`, never through symlinks."""
    real_root = root.resolve()
    stack = [(real_root, 0)]
    while stack:
        folder, depth = stack.pop()
        yield folder
        if depth >= max_depth:
            continue
        try:
            children = sorted(folder.iterdir())
        except OSError:
            continue
        for child in children:
            if child.is_symlink() or not child.is_dir() or child.name.startswith("."):
                continue  # symlinked folders are never followed (they could lead outside)
            stack.append((child, depth + 1))


def find_pretrained(model_types: Sequence[str] | None = None) -> list[CheckpointEntry]:
    """The installed pre-trained checkpoints (`attnlab room install`), in catalogue order."""
    found = []
    for name in pretrained_models.installed():
        folder = pretrained_models.models_dir() / name
        try:
            resolve_in_runs(folder.parent, name)
            if not ckpt.is_checkpoint(folder):
                continue  # a probe, listed by attnlab.app.protein_probes
            meta = ckpt.read_metadata(folder)
        except CheckpointError:
            continue
        if model_types is not None and meta["model_type"] not in model_types:
            continue
        rest = {k: v for k, v in meta.items() if k not in ("model_type", "config")}
        found.append(
            CheckpointEntry(
                f"{PRETRAINED}/{name}",
                meta["model_type"],
                meta["config"],
                rest,
                (folder / ckpt.CONFIG_FILE).stat().st_mtime,
            )
        )
    return found


def find_checkpoints(
    root: Path, model_types: Sequence[str] | None = None, max_depth: int = MAX_SEARCH_DEPTH, *, pretrained: bool = False
) -> list[CheckpointEntry]:
    """Checkpoint folders inside the runs folder, newest first (then, with `pretrained`, the installed ones).

    Args:
        root: the runs folder (a missing folder gives an empty list of runs).
        model_types: keep only these model types (None = all).
        max_depth: how deep to look.
        pretrained: also list the installed pre-trained models (`find_pretrained`), after the runs.
    """
    extra = find_pretrained(model_types) if pretrained else []
    if not root.is_dir():
        return extra
    real_root = root.resolve()
    found = []
    for folder in walk_runs(root, max_depth):
        if not (folder / ckpt.CONFIG_FILE).is_file():
            continue
        try:
            resolve_in_runs(real_root, folder.relative_to(real_root))  # before reading any of its files
            if not ckpt.is_checkpoint(folder):
                continue
            meta = ckpt.read_metadata(folder)
        except CheckpointError:
            continue
        if model_types is not None and meta["model_type"] not in model_types:
            continue
        rest = {k: v for k, v in meta.items() if k not in ("model_type", "config")}
        rel = folder.relative_to(real_root).as_posix() or "."
        found.append(
            CheckpointEntry(
                rel,
                meta["model_type"],
                meta["config"],
                rest,
                (folder / ckpt.CONFIG_FILE).stat().st_mtime,
                writer=lock_holder(folder),
            )
        )
    return sorted(found, key=lambda e: (-e.modified, e.relative)) + extra


def folder_stamp(folder: Path) -> tuple[float, ...]:
    """Modification times of a folder's files (a cache key: a retrained model reloads)."""
    try:
        return tuple(sorted(p.stat().st_mtime for p in folder.iterdir() if p.is_file()))
    except OSError:
        return ()


def load_checkpoint_in_runs(root: Path, relative: str, expect: str | tuple[str, ...]) -> tuple[Any, Any]:
    """Load a checkpoint of the runs folder (checked with `resolve_in_runs`), uncached.

    The pages load through `attnlab.app.ui.load_checkpoint`, which caches this.

    Returns:
        (model in eval mode, tokenizer or None).
    """
    from attnlab.models.registry import load_model

    folder = resolve_in_runs(root, relative)
    if not ckpt.is_checkpoint(folder):
        raise CheckpointError(f"{relative!r} is no longer a checkpoint (was it deleted?); pick another one")
    return load_model(folder, expect=expect)


__all__ = [
    "CheckpointEntry",
    "MAX_SEARCH_DEPTH",
    "check_runs_root",
    "PRETRAINED",
    "find_checkpoints",
    "find_pretrained",
    "is_pretrained",
    "folder_stamp",
    "load_checkpoint_in_runs",
    "resolve_in_runs",
    "runs_root",
    "walk_runs",
]

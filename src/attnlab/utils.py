"""Small shared helpers: seeding, device choice, atomic file writes, hashing, a cosine-similarity matrix."""

from __future__ import annotations

import contextlib
import hashlib
import json
import logging
import os
import random
import tempfile
from collections.abc import Iterator
from pathlib import Path
from typing import Any

logger = logging.getLogger("attnlab")


def seed_everything(seed: int) -> None:
    """Seed Python, NumPy and PyTorch (all devices) for reproducible runs."""
    import numpy as np

    random.seed(seed)
    np.random.seed(seed % (2**32))
    try:
        import torch
    except ImportError:  # NumPy-only use
        return
    torch.manual_seed(seed)


def select_device(requested: str = "auto") -> str:
    """Return the device to run on: `cuda`, then `mps`, then `cpu` when `auto`.

    Args:
        requested: `auto`, `cpu`, `cuda`, `cuda:N` or `mps`.
    """
    import torch

    from attnlab.errors import ConfigError

    if requested == "auto":
        if torch.cuda.is_available():
            return "cuda"
        if getattr(torch.backends, "mps", None) is not None and torch.backends.mps.is_available():
            return "mps"
        return "cpu"
    if requested.startswith("cuda") and not torch.cuda.is_available():
        raise ConfigError(
            f"device {requested!r} was requested but CUDA is not available; use --train.device=cpu or auto"
        )
    if requested == "mps" and not (getattr(torch.backends, "mps", None) and torch.backends.mps.is_available()):
        raise ConfigError("device 'mps' was requested but MPS is not available; use --train.device=cpu or auto")
    if requested not in ("cpu", "mps") and not requested.startswith("cuda"):
        raise ConfigError(f"unknown device {requested!r}; choose auto, cpu, cuda, cuda:N or mps")
    return requested


@contextlib.contextmanager
def atomic_path(path: str | os.PathLike) -> Iterator[Path]:
    """Yield a temporary path next to `path`; rename it onto `path` on success.

    A crash or Ctrl-C while writing leaves the old file intact, never a half-written one.
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    os.close(fd)
    tmp_path = Path(tmp)
    try:
        yield tmp_path
        # mkstemp makes the file private (0600); give it the usual permissions
        os.chmod(tmp_path, 0o666 & ~_current_umask())
        if path.exists():  # never replace a file of the user's in a folder taken over with --force
            from attnlab.runs import set_aside_if_foreign

            set_aside_if_foreign(path)
        os.replace(tmp_path, path)
    finally:
        if tmp_path.exists():
            tmp_path.unlink()


def _current_umask() -> int:
    mask = os.umask(0)
    os.umask(mask)
    return mask


def write_text_atomic(path: str | os.PathLike, text: str) -> None:
    """Write `text` to `path` atomically (UTF-8)."""
    with atomic_path(path) as tmp:
        tmp.write_text(text, encoding="utf-8")


def write_json_atomic(path: str | os.PathLike, obj: Any) -> None:
    """Write `obj` as indented JSON to `path` atomically."""
    write_text_atomic(path, json.dumps(obj, indent=2, sort_keys=False) + "\n")


def sha256_file(path: str | os.PathLike, chunk_size: int = 1 << 20) -> str:
    """Return the hex sha256 of a file, read in chunks."""
    h = hashlib.sha256()
    with open(path, "rb") as f:
        while chunk := f.read(chunk_size):
            h.update(chunk)
    return h.hexdigest()


def cache_dir() -> Path:
    """The user cache for downloads and embeddings: `$ATTNLAB_CACHE`, else `~/.cache/attnlab`."""
    env = os.environ.get("ATTNLAB_CACHE")
    if env:
        return Path(env).expanduser()
    xdg = os.environ.get("XDG_CACHE_HOME")
    base = Path(xdg).expanduser() if xdg else Path.home() / ".cache"
    return base / "attnlab"


def count_parameters(module: Any, trainable_only: bool = False) -> int:
    """Number of parameters of a torch module (shared tensors counted once)."""
    seen: set[int] = set()
    total = 0
    for p in module.parameters():
        if trainable_only and not p.requires_grad:
            continue
        if id(p) in seen:
            continue
        seen.add(id(p))
        total += p.numel()
    return total


def cosine_similarity_matrix(vectors: Any, other: Any | None = None, eps: float = 1e-8) -> Any:
    """Cosine similarity between every row of `vectors` and every row of `other` (NumPy).

    The one implementation behind `attnlab.foundations.vectors.pairwise_cosine_similarity`
    (which checks its inputs first), `attnlab.viz.embeddings.cosine_matrix` and
    `attnlab.analysis.hidden_states.cosine_similarity_matrix`.

    Args:
        vectors: (N, D) array; integers are read as float64, floats keep their dtype.
        other: (M, D) array; None = `vectors` itself.
        eps: smallest norm divided by (like `torch.nn.functional.cosine_similarity`), so a
            zero vector has similarity 0 with everything instead of NaN.
    Returns:
        (N, M) array, entry [i, j] = cos(vectors[i], other[j]), clipped to [-1, 1].
    """
    import numpy as np

    def as_float(x: Any) -> np.ndarray:
        x = np.asarray(x)
        return x if x.dtype.kind == "f" else x.astype(np.float64)

    a = as_float(vectors)
    b = a if other is None else as_float(other)
    a_norm = np.maximum(np.sqrt(np.sum(a * a, axis=-1)), eps)  # (N,)
    b_norm = np.maximum(np.sqrt(np.sum(b * b, axis=-1)), eps)  # (M,)
    sim = (a @ b.T) / (a_norm[:, None] * b_norm[None, :])
    return np.clip(sim, -1.0, 1.0)  # rounding can step a hair outside [-1, 1]

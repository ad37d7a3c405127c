"""Matplotlib set-up shared by the figure modules: projector style, new figures, saving.

Figures are built with `matplotlib.figure.Figure` directly, never through pyplot:
no GUI backend is touched and no global state changes, so importing attnlab.viz
inside a notebook leaves its inline backend alone, and a returned figure shows once.
Saving goes through the Agg (PNG) or SVG renderer picked from the file suffix.

The style is the foundations lab's projector style (large type, thick lines,
Okabe-Ito colours), reused from `attnlab.foundations.figures`.
"""

from __future__ import annotations

import functools
import os
from collections.abc import Callable
from pathlib import Path
from typing import Any

from attnlab.errors import ConfigError
from attnlab.foundations.figures import (  # one style for every lab
    BLACK,
    BLUE,
    GREEN,
    ORANGE,
    PINK,
    PROJECTOR_STYLE,
    SKY,
    VERMILION,
    YELLOW,
    projector_style,
)
from attnlab.runs import output_metadata
from attnlab.utils import atomic_path

DEFAULT_DPI = 150  # sharp on a projector, small enough to e-mail
SAVE_FORMATS = ("png", "svg", "pdf")  # what --out may end in
PALETTE = (BLUE, VERMILION, GREEN, ORANGE, PINK, SKY, BLACK, YELLOW)  # Okabe & Ito, in plotting order


def new_figure(width: float, height: float, **kwargs: Any):
    """A pyplot-free `Figure` of `width` x `height` inches with constrained layout."""
    from matplotlib.figure import Figure

    kwargs.setdefault("layout", "constrained")
    return Figure(figsize=(width, height), **kwargs)


def styled(build: Callable) -> Callable:
    """Decorator: build the figure inside `projector_style` (rc values are read when artists are made)."""

    @functools.wraps(build)
    def wrapper(*args: Any, **kwargs: Any):
        with projector_style():
            return build(*args, **kwargs)

    return wrapper


def output_format(path: str | os.PathLike) -> str:
    """The image format named by `path`'s suffix (png when there is none).

    Raises:
        ConfigError: the suffix is not one of `SAVE_FORMATS`.
    """
    suffix = Path(path).suffix.lower().lstrip(".")
    if not suffix:
        return "png"
    if suffix not in SAVE_FORMATS:
        raise ConfigError(
            f"cannot write a figure as {Path(path).name!r}: the file must end in "
            + ", ".join("." + f for f in SAVE_FORMATS)
        )
    return suffix


def save_figure(fig: Any, path: str | os.PathLike, dpi: int = DEFAULT_DPI) -> Path:
    """Write `fig` atomically; the format comes from the suffix (.png, .svg, .pdf; none = .png).

    Args:
        fig: a matplotlib `Figure` (also works for pyplot figures, which are then closed).
        path: destination file; its folder is created if missing.
        dpi: resolution for PNG.
    Returns:
        The path written (with `.png` appended when `path` had no suffix).
    Raises:
        ConfigError: unsupported suffix, bad dpi, or a destination that cannot be written.
    """
    if isinstance(dpi, bool) or not isinstance(dpi, int) or not 20 <= dpi <= 1200:
        raise ConfigError(f"dpi must be an integer between 20 and 1200, got {dpi!r}")
    path = Path(path)
    if path.is_dir():
        raise ConfigError(f"{path} is a folder; give a file name such as {path / 'figure.png'}")
    fmt = output_format(path)
    if not path.suffix:
        path = path.with_suffix(".png")
    try:
        with projector_style(), atomic_path(path) as tmp:
            # the temporary name ends in .tmp, so the format is passed explicitly
            fig.savefig(tmp, format=fmt, dpi=dpi, facecolor="white", metadata=output_metadata(fmt))
    except OSError as e:
        raise ConfigError(f"cannot write {path} ({e.strerror or e}); choose a writable path for --out") from e
    _close_if_pyplot(fig)
    return path


def _close_if_pyplot(fig: Any) -> None:
    """Release a figure that pyplot tracks (ours are plain Figures and need nothing)."""
    import sys

    plt = sys.modules.get("matplotlib.pyplot")
    if plt is not None and getattr(fig.canvas, "manager", None) is not None:  # only pyplot figures have a manager
        plt.close(fig)


def finish(fig: Any, out: str | os.PathLike | None, dpi: int = DEFAULT_DPI):
    """Return `fig` when `out` is None, else save it and return the path."""
    if out is None:
        return fig
    return save_figure(fig, out, dpi=dpi)


def token_label(token: str) -> str:
    """Printable label of a token: spaces as ␣, newlines and tabs escaped."""
    if token == "":
        return "∅"
    if token.strip() == "" or "\n" in token or "\t" in token:
        return token.replace("\n", "\\n").replace("\t", "\\t").replace(" ", "␣")
    return token


def tick_fontsize(count: int) -> float:
    """Tick-label font size that keeps `count` labels on an axis legible."""
    if count <= 12:
        return 13.0
    if count <= 24:
        return 11.0
    if count <= 40:
        return 9.0
    return 7.0


__all__ = [
    "DEFAULT_DPI",
    "PALETTE",
    "PROJECTOR_STYLE",
    "SAVE_FORMATS",
    "finish",
    "new_figure",
    "output_format",
    "save_figure",
    "styled",
    "tick_fontsize",
    "token_label",
]

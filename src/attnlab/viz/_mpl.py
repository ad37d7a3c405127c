"""Matplotlib set-up shared by the figure modules (headless Agg backend, saving)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import matplotlib

matplotlib.use("Agg")  # no display needed; must precede pyplot
import matplotlib.pyplot as plt  # noqa: E402

from attnlab.utils import atomic_path  # noqa: E402


def save_figure(fig: Any, path: str | Path, dpi: int = 120) -> Path:
    """Save `fig` atomically (format from the suffix: .png, .svg, .pdf) and close it."""
    path = Path(path)
    suffix = path.suffix.lower().lstrip(".") or "png"
    with atomic_path(path.with_suffix("." + suffix) if path.suffix else path.with_suffix(".png")) as tmp:
        fig.savefig(tmp, dpi=dpi, bbox_inches="tight", format=suffix)
    plt.close(fig)
    return path if path.suffix else path.with_suffix(".png")


__all__ = ["plt", "save_figure"]

"""Training curves: train and validation loss against step, for one run or several."""

from __future__ import annotations

from pathlib import Path
from typing import Any, Mapping, Sequence

from attnlab.viz._mpl import plt, save_figure


def plot_loss_curves(
    runs: Mapping[str, Sequence[Mapping[str, Any]]],
    out: str | Path | None = None,
    *,
    title: str = "Training and validation loss",
    log_y: bool = False,
):
    """Plot train (thin) and validation (markers) loss of one or several runs.

    Args:
        runs: run label -> metrics records (the lines of metrics.jsonl).
        out: file to write (PNG/SVG); None returns the figure instead.
        title: figure title.
        log_y: logarithmic loss axis.
    """
    fig, ax = plt.subplots(figsize=(7, 4.2))
    colors = plt.rcParams["axes.prop_cycle"].by_key()["color"]
    for i, (label, records) in enumerate(runs.items()):
        color = colors[i % len(colors)]
        train = [(r["step"], r["train_loss"]) for r in records if r.get("train_loss") is not None]
        val = [(r["step"], r["val_loss"]) for r in records if r.get("val_loss") is not None]
        prefix = f"{label}: " if len(runs) > 1 else ""
        if train:
            ax.plot(*zip(*train), color=color, alpha=0.55, lw=1.2, label=f"{prefix}train")
        if val:
            ax.plot(*zip(*val), color=color, marker="o", ms=4, lw=2, label=f"{prefix}validation")
    ax.set_xlabel("optimizer step")
    ax.set_ylabel("cross-entropy loss (nats/token)")
    if log_y:
        ax.set_yscale("log")
    ax.set_title(title)
    ax.grid(alpha=0.3)
    ax.legend(frameon=False)
    if out is None:
        return fig
    return save_figure(fig, out)

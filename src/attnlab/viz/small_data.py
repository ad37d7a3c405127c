"""Small-data figure: test accuracy against training-set size, one line a model, seeds as error bars.

The rows are those of a small-data study's summary.csv (`attnlab.compare.small_data`):
each with `line`, `train_size`, `mean_accuracy` and `std_accuracy` (over seeds). The size
axis is logarithmic (the sizes double), and each point carries a bar of +- one standard
deviation over the seeds, as in the data-scaling figures of Dosovitskiy et al. 2021 (fig. 3).
"""

from __future__ import annotations

import os
from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np

from attnlab.errors import DataError
from attnlab.viz._mpl import BLACK, DEFAULT_DPI, PALETTE, finish, new_figure, styled

__all__ = ["plot_accuracy_vs_train_size"]

_MARKERS = ("o", "s", "^", "D", "v", "P", "X", "*")
_DASHES = ("-", "--", "-.", ":")


@styled
def plot_accuracy_vs_train_size(
    summary: Sequence[Mapping[str, Any]],
    out: str | os.PathLike | None = None,
    *,
    chance: float | None = None,
    unit: str = "images",
    title: str = "Accuracy vs training-set size",
    dpi: int = DEFAULT_DPI,
):
    """Mean test accuracy (%) +- std over seeds against the training-set size (log axis).

    Args:
        summary: rows with line, train_size, mean_accuracy, std_accuracy (fractions in [0, 1]).
        out: where to write the figure (.png, .svg or .pdf); None returns the figure.
        chance: accuracy of guessing, drawn as a dotted line (None: not drawn).
        unit: what one training example is ("images", "sequences"), for the axis label.
        title: the figure's title.
        dpi: resolution of a PNG.
    Returns:
        The figure when `out` is None, else the written path.
    Raises:
        DataError: no rows.
    """
    if not summary:
        raise DataError("no runs to draw: the small-data study has no finished runs yet")
    lines = list(dict.fromkeys(str(r["line"]) for r in summary))
    fig = new_figure(10, 6.5)
    ax = fig.subplots()
    sizes: set[int] = set()
    for i, line in enumerate(lines):
        points = sorted(
            (int(r["train_size"]), float(r["mean_accuracy"]), float(r["std_accuracy"]))
            for r in summary
            if r["line"] == line
        )
        x, y, e = (np.asarray(c) for c in zip(*points))
        sizes.update(int(v) for v in x)
        ax.errorbar(
            x,
            100 * y,
            yerr=100 * e,
            color=PALETTE[i % len(PALETTE)],
            marker=_MARKERS[i % len(_MARKERS)],
            ls=_DASHES[(i // len(PALETTE)) % len(_DASHES)] if i >= len(PALETTE) else "-",
            ms=7,
            lw=2.4,
            capsize=4,
            label=line,
        )
    if chance is not None:
        ax.axhline(100 * chance, color=BLACK, ls=":", lw=1.4, label=f"chance ({100 * chance:.3g}%)")
    ax.set_xscale("log")
    ticks = sorted(sizes)
    ax.set_xticks(ticks)
    ax.set_xticklabels([f"{t:,}" for t in ticks])
    ax.minorticks_off()
    ax.set_xlabel(f"training-set size ({unit}, log scale)")
    ax.set_ylabel("test accuracy (%), mean ± std over seeds")
    ax.set_title(title)
    ax.grid(True, alpha=0.3)
    ax.legend(fontsize=11, loc="best")
    return finish(fig, out, dpi)

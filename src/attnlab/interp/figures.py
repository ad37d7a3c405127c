"""Figures of the causal experiments: patching heatmaps, per-head heatmaps, logit attribution bars.

Built with the house helpers of `attnlab.viz._mpl` (pyplot-free figures in the projector
style). Each function returns the figure when `out` is None, else writes it and returns the path.

* `plot_patching`: a `PatchingResult` (layers x positions with token labels, or layers x heads).
* `plot_head_matrix`: any (L, H) array (loss change per head, a head score).
* `plot_head_scores`: every score of a `HeadScores`, one panel each.
* `plot_logit_attribution`: a `LogitAttribution` as a bar chart.
"""

from __future__ import annotations

import os
from collections.abc import Sequence

import numpy as np

from attnlab.viz._mpl import (
    BLUE,
    DEFAULT_DPI,
    VERMILION,
    finish,
    new_figure,
    styled,
    tick_fontsize,
    token_label,
)

__all__ = ["plot_head_matrix", "plot_head_scores", "plot_logit_attribution", "plot_patching"]

Out = str | os.PathLike | None


def _symmetric_limit(values: np.ndarray) -> float:
    finite = values[np.isfinite(values)]
    return float(max(np.abs(finite).max(), 1e-6)) if finite.size else 1.0


def cell_format(values: np.ndarray) -> str:
    """The format of the numbers written in heatmap cells: two decimals, or enough significant
    digits for the largest magnitude when the values are all small (loss changes of 0.003 do
    not all read 0.00)."""
    finite = np.abs(values[np.isfinite(values)])
    top = float(finite.max()) if finite.size else 0.0
    if top == 0.0 or top >= 0.1:
        return ".2f"
    if top >= 1e-3:
        return f".{int(np.ceil(-np.log10(top))) + 1}f"
    return ".1e"


def _heatmap(
    ax,
    values: np.ndarray,
    row_labels: Sequence[str],
    col_labels: Sequence[str],
    *,
    diverging: bool,
    vmin: float | None = None,
    vmax: float | None = None,
    annotate: bool | None = None,
):
    if diverging:
        lim = _symmetric_limit(values)
        vmin, vmax, cmap = -lim, lim, "RdBu_r"
    else:
        cmap = "viridis"
    im = ax.imshow(values, cmap=cmap, vmin=vmin, vmax=vmax, aspect="auto", interpolation="nearest")
    ax.set_xticks(range(len(col_labels)))
    ax.set_xticklabels(col_labels, rotation=90 if len(col_labels) > 6 else 0, fontsize=tick_fontsize(len(col_labels)))
    ax.set_yticks(range(len(row_labels)))
    ax.set_yticklabels(row_labels, fontsize=tick_fontsize(len(row_labels)))
    ax.grid(False)
    if annotate is None:
        annotate = values.size <= 64
    if annotate:
        fmt = cell_format(values)
        span = max(abs(vmin if vmin is not None else 0.0), abs(vmax if vmax is not None else 1.0), 1e-6)
        for (i, j), v in np.ndenumerate(values):
            if np.isfinite(v):
                dark = abs(v) > 0.6 * span if diverging else v < 0.5 * span  # white text on dark cells
                ax.text(j, i, format(v, fmt), ha="center", va="center", fontsize=9, color="white" if dark else "black")
    return im


@styled
def plot_patching(result, out: Out = None, *, title: str | None = None, dpi: int = DEFAULT_DPI):
    """Heatmap of a `PatchingResult`: rows are layers, columns positions (token labels) or heads.

    Args:
        result: an `attnlab.interp.patching.PatchingResult`.
        out: file to write (.png, .svg, .pdf) or None to return the figure.
    """
    values = np.asarray(result.values, dtype=float)
    cols = [token_label(c) for c in result.col_labels] if result.col_name == "position" else result.col_labels
    fig = new_figure(max(4.5, 0.45 * len(cols) + 3), max(3.0, 0.45 * len(result.row_labels) + 2))
    ax = fig.add_subplot()
    im = _heatmap(ax, values, result.row_labels, cols, diverging=True)
    ax.set_xlabel(result.col_name)
    ax.set_ylabel(result.row_name)
    ax.set_title(title or f"activation patching: {result.kind}")
    fig.colorbar(im, ax=ax, shrink=0.8, label="normalised logit difference")
    return finish(fig, out, dpi)


@styled
def plot_head_matrix(
    values: np.ndarray,
    out: Out = None,
    *,
    title: str = "",
    label: str = "",
    diverging: bool = True,
    vmin: float | None = None,
    vmax: float | None = None,
    dpi: int = DEFAULT_DPI,
):
    """Heatmap of an (L, H) per-head array (e.g. the loss change when each head is ablated).

    Args:
        values: (L, H).
        label: the colour bar's label.
        diverging: a red-blue scale centred on 0 (else viridis from vmin to vmax).
    """
    values = np.asarray(values, dtype=float)
    L, H = values.shape
    fig = new_figure(max(4.0, 0.7 * H + 3), max(3.0, 0.6 * L + 2))
    ax = fig.add_subplot()
    im = _heatmap(
        ax, values, [f"L{i}" for i in range(L)], [f"H{h}" for h in range(H)], diverging=diverging, vmin=vmin, vmax=vmax
    )
    ax.set_xlabel("head")
    ax.set_ylabel("layer")
    if title:
        ax.set_title(title)
    fig.colorbar(im, ax=ax, shrink=0.8, label=label)
    return finish(fig, out, dpi)


@styled
def plot_head_scores(scores, out: Out = None, *, title: str = "attention-pattern scores", dpi: int = DEFAULT_DPI):
    """One (L, H) heatmap per score of a `HeadScores` (scores in [0, 1]; entropy in nats)."""
    named = scores.as_dict()
    L, H = scores.layers, scores.heads
    fig = new_figure(max(10.0, 2.6 * len(named)), max(3.2, 0.55 * L + 2.2))
    axes = fig.subplots(1, len(named), squeeze=False)[0]
    for ax, (name, values) in zip(axes, named.items()):
        entropy = name == "entropy"
        vmax = float(np.nanmax(values)) if entropy and np.isfinite(values).any() else 1.0
        im = _heatmap(
            ax,
            np.asarray(values, dtype=float),
            [f"L{i}" for i in range(L)],
            [f"H{h}" for h in range(H)],
            diverging=False,
            vmin=0.0,
            vmax=max(vmax, 1e-6),
        )
        ax.set_title(name.replace("_", " ") + (" (nats)" if entropy else ""))
        ax.set_xlabel("head")
        fig.colorbar(im, ax=ax, shrink=0.7)
    axes[0].set_ylabel("layer")
    fig.suptitle(title)
    return finish(fig, out, dpi)


@styled
def plot_logit_attribution(
    attribution, out: Out = None, *, title: str | None = None, token_text: str | None = None, dpi: int = DEFAULT_DPI
):
    """Bar chart of a `LogitAttribution`: one bar per component, the actual logit in the title."""
    values = np.asarray(attribution.values, dtype=float)
    labels = list(attribution.labels)
    fig = new_figure(max(6.0, 0.42 * len(labels) + 2.5), 4.5)
    ax = fig.add_subplot()
    colors = [BLUE if v >= 0 else VERMILION for v in values]
    ax.bar(range(len(values)), values, color=colors)
    ax.axhline(0.0, color="black", linewidth=1)
    ax.set_xticks(range(len(labels)))
    ax.set_xticklabels(labels, rotation=90, fontsize=tick_fontsize(len(labels)))
    ax.set_ylabel("direct contribution to the logit")
    what = token_label(token_text) if token_text is not None else f"token {attribution.token}"
    ax.set_title(
        title
        or f"direct logit attribution of {what!r} at position {attribution.position}: logit {attribution.logit:.3f}"
    )
    return finish(fig, out, dpi)

"""Figures for the hidden-state analysis (`attnlab.analysis.hidden_states`).

* `plot_hidden_state_stats`: four panels against depth (0 = embeddings): token norms
  (mean ± std), activation mean and variance, mean cosine similarity between tokens,
  effective rank. Several models can be overlaid (e.g. trained vs randomly initialised).
* `plot_token_similarity`: token-by-token cosine-similarity heatmaps at chosen layers.

Figures are built without pyplot (`matplotlib.figure.Figure`, rendered by Agg when saved).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np

from attnlab.analysis.hidden_states import HiddenStateStats, cosine_similarity_matrix

# Okabe-Ito colours (colour-blind safe), in plotting order.
COLOURS = ("#0072B2", "#D55E00", "#009E73", "#E69F00", "#CC79A7", "#56B4E9", "#000000")


def _figure(width: float, height: float) -> Any:
    # A pyplot-free Figure: no GUI backend is touched; saving renders with Agg (or SVG/PDF).
    from matplotlib.figure import Figure

    return Figure(figsize=(width, height), layout="constrained")


def _save(fig: Any, out: str | Path) -> Path:
    from attnlab.viz._mpl import save_figure

    return save_figure(fig, out)


def plot_hidden_state_stats(
    stats: HiddenStateStats | Mapping[str, HiddenStateStats], out: str | Path | None = None, *, title: str = ""
) -> Any:
    """Per-layer statistics of hidden states in four panels.

    Args:
        stats: one `HiddenStateStats`, or {label: stats} to overlay several models.
        out: file to write (.png, .svg, .pdf); None returns the figure.
        title: figure title.
    Returns:
        The written path, or the `Figure` when `out` is None.
    """
    series = {"": stats} if isinstance(stats, HiddenStateStats) else dict(stats)
    if not series:
        raise ValueError("no statistics to plot")
    fig = _figure(10, 7)
    axes = fig.subplots(2, 2)
    (ax_norm, ax_moments), (ax_cos, ax_rank) = axes
    for k, (label, s) in enumerate(series.items()):
        colour = COLOURS[k % len(COLOURS)]
        layers = np.arange(len(s.norm_mean))
        name = label or None
        ax_norm.plot(layers, s.norm_mean, "o-", color=colour, label=name)
        ax_norm.fill_between(layers, s.norm_mean - s.norm_std, s.norm_mean + s.norm_std, color=colour, alpha=0.2)
        ax_moments.plot(layers, s.variance, "o-", color=colour, label=f"{label} variance".strip())
        ax_moments.plot(layers, s.mean, "s--", color=colour, label=f"{label} mean".strip())
        ax_cos.plot(layers, s.mean_cosine, "o-", color=colour, label=name)
        ax_rank.plot(layers, s.effective_rank, "o-", color=colour, label=name)
    ax_norm.set_title("token norm (mean ± std)")
    ax_moments.set_title("activation mean and variance")
    ax_cos.set_title("cosine similarity between tokens")
    ax_cos.set_ylim(min(-0.05, float(min(np.nanmin(s.mean_cosine) for s in series.values())) - 0.05), 1.05)
    ax_rank.set_title("effective rank")
    ax_rank.set_ylim(bottom=0)
    for ax in (ax_norm, ax_moments, ax_cos, ax_rank):
        ax.set_xlabel("layer (0 = embeddings)")
        ax.grid(alpha=0.3)
        ax.set_xticks(np.arange(max(len(s.norm_mean) for s in series.values())))
    ax_moments.legend(fontsize=8)
    if len(series) > 1:
        ax_norm.legend(fontsize=8)
    fig.suptitle(title or "hidden states layer by layer")
    return fig if out is None else _save(fig, out)


def plot_token_similarity(
    hidden_states: Sequence[Any],
    tokens: Sequence[str],
    out: str | Path | None = None,
    *,
    layers: Sequence[int] | None = None,
    batch_index: int = 0,
    title: str = "",
) -> Any:
    """Token-by-token cosine similarity of the hidden states at a few layers.

    Args:
        hidden_states: L + 1 tensors/arrays (B, T, C) (a model's `output.hidden_states`).
        tokens: T labels (padding excluded: only the first len(tokens) positions are shown).
        out: file to write; None returns the figure.
        layers: which hidden states to show (default: embeddings, middle, last).
        batch_index: which sequence of the batch.
        title: figure title.
    """
    n = len(hidden_states)
    if layers is None:
        layers = sorted({0, n // 2, n - 1})
    bad = [i for i in layers if not -n <= i < n]
    if bad:
        raise ValueError(f"layer(s) {bad} out of range: there are {n} hidden states (0 = embeddings)")
    T = len(tokens)
    fig = _figure(3.6 * len(layers) + 0.8, 3.8)
    axes = np.atleast_1d(fig.subplots(1, len(layers)))
    image = None
    for ax, layer in zip(axes, layers):
        h = hidden_states[layer]
        try:
            h = h.detach().to("cpu").double().numpy()
        except AttributeError:
            h = np.asarray(h, dtype=np.float64)
        states = h[batch_index, :T] if h.ndim == 3 else h[:T]
        image = ax.imshow(cosine_similarity_matrix(states), vmin=-1, vmax=1, cmap="RdBu_r")
        ax.set_title(f"layer {layer % n}" if layer % n else "embeddings")
        if T <= 40:
            ax.set_xticks(range(T), [t.replace("\n", "\\n") for t in tokens], rotation=90, fontsize=7)
            ax.set_yticks(range(T), [t.replace("\n", "\\n") for t in tokens], fontsize=7)
    fig.colorbar(image, ax=list(axes), shrink=0.8, label="cosine similarity")
    fig.suptitle(title or "cosine similarity between token states")
    return fig if out is None else _save(fig, out)

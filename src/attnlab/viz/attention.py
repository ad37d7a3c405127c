"""Attention maps: one head with token labels, and a layers x heads grid.

Input weights follow the Hugging Face layout: per layer a (B, H, T, S) array of
softmax weights (rows are queries, columns the keys they attend to).
"""

from __future__ import annotations

from pathlib import Path
from typing import Sequence

import numpy as np
from matplotlib.colors import PowerNorm

from attnlab.viz._mpl import plt, save_figure


def _np(x) -> np.ndarray:
    try:
        return x.detach().float().cpu().numpy()
    except AttributeError:
        return np.asarray(x, dtype=np.float32)


def _label(tok: str) -> str:
    return tok.replace("\n", "\\n").replace("\t", "\\t").replace(" ", "␣") if tok.strip() == "" or "\n" in tok else tok


def plot_attention_head(
    weights, tokens: Sequence[str], out: str | Path | None = None, *, key_tokens: Sequence[str] | None = None, title: str = ""
):
    """Heatmap of one head's (T, S) attention weights with token labels.

    Args:
        weights: (T, S) weights (rows = queries).
        tokens: T query labels (and key labels unless `key_tokens`).
        out: file to write; None returns the figure.
        key_tokens: S key labels for cross-attention.
        title: figure title.
    """
    w = _np(weights)
    keys = list(key_tokens) if key_tokens is not None else list(tokens)
    size = max(3.5, 0.28 * max(w.shape) + 1.5)
    fig, ax = plt.subplots(figsize=(size + 1, size))
    im = ax.imshow(w, cmap="viridis", vmin=0.0, vmax=max(float(w.max()), 1e-6), aspect="auto")
    ax.set_xticks(range(len(keys)), [_label(t) for t in keys], rotation=90, fontsize=8)
    ax.set_yticks(range(len(tokens)), [_label(t) for t in tokens], fontsize=8)
    ax.set_xlabel("key (attended to)")
    ax.set_ylabel("query (attending)")
    ax.set_title(title or "attention weights")
    fig.colorbar(im, ax=ax, fraction=0.046, pad=0.04)
    if out is None:
        return fig
    return save_figure(fig, out)


def plot_attention_grid(attentions, tokens: Sequence[str] | None = None, out: str | Path | None = None, *, title: str = "", batch_index: int = 0):
    """A layers x heads grid of attention maps (plus nothing else: small multiples).

    Args:
        attentions: sequence over layers of (B, H, T, S) weights.
        tokens: T labels (shown on the first column/last row when short enough).
        out: file to write; None returns the figure.
        title: figure title.
        batch_index: which batch row to draw.
    """
    layers = [_np(a)[batch_index] for a in attentions]  # each (H, T, S)
    L, H = len(layers), layers[0].shape[0]
    fig, axes = plt.subplots(L, H, figsize=(1.9 * H + 0.6, 1.9 * L + 0.6), squeeze=False)
    show_labels = tokens is not None and len(tokens) <= 24
    for i, layer in enumerate(layers):
        for h in range(H):
            ax = axes[i][h]
            # a square-root colour scale keeps weak but real attention visible
            ax.imshow(layer[h], cmap="viridis", norm=PowerNorm(0.5, vmin=0.0, vmax=1.0))
            ax.set_xticks([])
            ax.set_yticks([])
            if i == 0:
                ax.set_title(f"head {h}", fontsize=9)
            if h == 0:
                ax.set_ylabel(f"layer {i}", fontsize=9)
            if show_labels and i == L - 1:
                ax.set_xticks(range(len(tokens)), [_label(t) for t in tokens], rotation=90, fontsize=6)
            if show_labels and h == 0:
                ax.set_yticks(range(len(tokens)), [_label(t) for t in tokens], fontsize=6)
    fig.suptitle(title or "attention per layer and head (rows: queries, columns: keys)", fontsize=11)
    fig.tight_layout()
    if out is None:
        return fig
    return save_figure(fig, out)

"""Attention maps: one head with token labels, a layers x heads grid, the mean over heads,
and the alignment of an encoder-decoder (decoder step x source position).

Input weights follow the Hugging Face layout (`output_attentions=True`): per layer a
(B, H, T, S) array of softmax weights; rows are queries, columns the keys they
attend to, and each row sums to 1. Torch tensors and NumPy arrays are both accepted.
The interactive version of these maps is `attnlab.viz.headview`.

Notation: L layers, B batch, H heads, T queries, S keys.
"""

from __future__ import annotations

import math
import os
from collections.abc import Sequence
from typing import Any

import numpy as np

from attnlab.errors import ConfigError
from attnlab.viz._mpl import DEFAULT_DPI, finish, new_figure, styled, tick_fontsize, token_label

CMAP = "viridis"  # perceptually uniform, readable in grey scale and for colour-blind viewers


def to_numpy(x: Any) -> np.ndarray:
    """A torch tensor or array-like as a float32 NumPy array."""
    try:
        return x.detach().float().cpu().numpy()
    except AttributeError:
        return np.asarray(x, dtype=np.float32)


def attention_array(attentions: Any, batch_index: int = 0) -> np.ndarray:
    """Stack per-layer attention weights into one (L, H, T, S) array for one batch row.

    Args:
        attentions: a sequence over layers of (B, H, T, S) weights (HF layout), or an
            array already shaped (L, H, T, S).
        batch_index: which batch row to take from (B, H, T, S) inputs.
    Returns:
        (L, H, T, S) float32 array.
    """
    if isinstance(attentions, np.ndarray) and attentions.ndim == 4:
        return attentions.astype(np.float32, copy=False)
    layers = [to_numpy(a) for a in attentions]
    if not layers:
        raise ConfigError("no attention weights given: the model returned no layers")
    if layers[0].ndim == 4:
        if not -layers[0].shape[0] <= batch_index < layers[0].shape[0]:
            raise ConfigError(f"batch_index {batch_index} is out of range for a batch of {layers[0].shape[0]}")
        layers = [a[batch_index] for a in layers]
    if any(a.ndim != 3 for a in layers):
        raise ConfigError(
            f"attention weights must be (B, H, T, S) or (H, T, S) per layer, got {[a.shape for a in layers][:2]}"
        )
    return np.stack(layers)  # (L, H, T, S)


def mean_over_heads(attentions: Any, batch_index: int = 0) -> np.ndarray:
    """(L, T, S): each layer's attention averaged over its heads (rows still sum to 1)."""
    return attention_array(attentions, batch_index).mean(axis=1)


def _check_labels(labels: Sequence[str] | None, size: int, what: str) -> list[str] | None:
    if labels is None:
        return None
    labels = [token_label(str(t)) for t in labels]
    if len(labels) != size:
        raise ConfigError(f"got {len(labels)} {what} labels for {size} {what}s; pass one label per token")
    return labels


def _rotation(labels: Sequence[str]) -> int:
    """Upright x labels for characters, vertical ones for words."""
    return 0 if max((len(t) for t in labels), default=0) <= 2 else 90


def _heatmap(
    ax, w: np.ndarray, queries: list[str] | None, keys: list[str] | None, *, annotate: bool, vmax: float | None
):
    """Draw one (T, S) map with labelled axes on `ax`; returns the image."""
    vmax = max(float(w.max()), 1e-6) if vmax is None else vmax
    im = ax.imshow(w, cmap=CMAP, vmin=0.0, vmax=vmax, aspect="equal", interpolation="nearest")
    ax.grid(False)
    T, S = w.shape
    if keys is not None:
        ax.set_xticks(range(S), keys, rotation=_rotation(keys), fontsize=tick_fontsize(S))
    if queries is not None:
        ax.set_yticks(range(T), queries, fontsize=tick_fontsize(T))
    if annotate:
        for i in range(T):
            for j in range(S):
                if w[i, j] >= 0.005:
                    dark = w[i, j] > 0.6 * vmax  # viridis is light at the top: dark text there
                    ax.text(
                        j,
                        i,
                        f"{w[i, j]:.2f}".lstrip("0") if w[i, j] < 1 else "1",
                        ha="center",
                        va="center",
                        fontsize=11 if max(T, S) <= 8 else 9,
                        color="black" if dark else "white",
                    )
    ax.set_xlabel("key: the token attended to")
    ax.set_ylabel("query: the token attending")
    return im


@styled
def plot_attention_head(
    weights: Any,
    tokens: Sequence[str],
    out: str | os.PathLike | None = None,
    *,
    key_tokens: Sequence[str] | None = None,
    title: str = "",
    annotate: bool | None = None,
    dpi: int = DEFAULT_DPI,
):
    """Heatmap of one head's (T, S) attention weights with token labels.

    Args:
        weights: (T, S) weights, rows = queries (a torch tensor or array).
        tokens: T query labels (and key labels unless `key_tokens`).
        out: file to write (.png, .svg, .pdf); None returns the figure.
        key_tokens: S key labels, for cross-attention.
        title: figure title.
        annotate: write each weight in its cell (default: when T, S <= 16).
        dpi: PNG resolution.
    Returns:
        The figure when `out` is None, else the written path.
    """
    w = to_numpy(weights)
    if w.ndim != 2:
        raise ConfigError(f"one head's weights must be (T, S), got shape {w.shape}")
    queries = _check_labels(tokens, w.shape[0], "query")
    keys = _check_labels(key_tokens if key_tokens is not None else tokens, w.shape[1], "key")
    annotate = max(w.shape) <= 16 if annotate is None else annotate
    side = min(max(5.0, 0.42 * max(w.shape) + 2.5), 22.0)
    fig = new_figure(side + 1.4, side)
    ax = fig.subplots()
    im = _heatmap(ax, w, queries, keys, annotate=annotate, vmax=None)
    ax.set_title(title or "Attention weights (each row sums to 1)")
    fig.colorbar(im, ax=ax, shrink=0.8, label="attention weight")
    return finish(fig, out, dpi)


@styled
def plot_attention_grid(
    attentions: Any,
    tokens: Sequence[str] | None = None,
    out: str | os.PathLike | None = None,
    *,
    title: str = "",
    batch_index: int = 0,
    dpi: int = DEFAULT_DPI,
):
    """A layers x heads grid of attention maps (small multiples on one colour scale).

    Args:
        attentions: sequence over layers of (B, H, T, S) weights (or an (L, H, T, S) array).
        tokens: T labels, drawn on the outer panels when there are at most 24.
        out: file to write; None returns the figure.
        title: figure title.
        batch_index: which batch row to draw.
        dpi: PNG resolution.
    Returns:
        The figure when `out` is None, else the written path.
    """
    from matplotlib.colors import PowerNorm

    A = attention_array(attentions, batch_index)  # (L, H, T, S)
    L, H, T, S = A.shape
    labels = _check_labels(tokens, T, "query") if tokens is not None else None
    show = labels is not None and T <= 24 and S == T
    cell = 2.1 if not show else max(2.1, 0.16 * T + 0.6)
    fig = new_figure(cell * H + 1.2, cell * L + 1.0)
    axes = fig.subplots(L, H, squeeze=False)
    norm = PowerNorm(0.5, vmin=0.0, vmax=1.0)  # square-root scale: weak but real attention stays visible
    small = max(6.0, min(9.0, 130 / max(T, 1)))
    for i in range(L):
        for h in range(H):
            ax = axes[i][h]
            im = ax.imshow(A[i, h], cmap=CMAP, norm=norm, interpolation="nearest")
            ax.grid(False)
            ax.set_xticks([])
            ax.set_yticks([])
            if i == 0:
                ax.set_title(f"head {h}", fontsize=13)
            if h == 0:
                ax.set_ylabel(f"layer {i}", fontsize=13)
            if show and i == L - 1:
                ax.set_xticks(range(T), labels, rotation=_rotation(labels), fontsize=small)
            if show and h == 0:
                ax.set_yticks(range(T), labels, fontsize=small)
    fig.colorbar(im, ax=axes, shrink=0.6, label="weight (square-root scale)")
    fig.suptitle(title or f"Attention in every layer and head ({L} x {H}); rows: queries, columns: keys")
    return finish(fig, out, dpi)


@styled
def plot_attention_mean(
    attentions: Any,
    tokens: Sequence[str],
    out: str | os.PathLike | None = None,
    *,
    layers: Sequence[int] | None = None,
    key_tokens: Sequence[str] | None = None,
    title: str = "",
    batch_index: int = 0,
    dpi: int = DEFAULT_DPI,
):
    """Each layer's attention averaged over its heads, one labelled panel a layer.

    Args:
        attentions: sequence over layers of (B, H, T, S) weights (or an (L, H, T, S) array).
        tokens: T query labels (and key labels unless `key_tokens`).
        out: file to write; None returns the figure.
        layers: which layers to draw (default all).
        key_tokens: S key labels, for cross-attention.
        title: figure title.
        batch_index: which batch row to draw.
        dpi: PNG resolution.
    Returns:
        The figure when `out` is None, else the written path.
    """
    A = attention_array(attentions, batch_index)  # (L, H, T, S)
    M = A.mean(axis=1)  # (L, T, S)
    L, T, S = M.shape
    layers = list(range(L)) if layers is None else [check_index(i, L, "layer") for i in layers]
    queries = _check_labels(tokens, T, "query")
    keys = _check_labels(key_tokens if key_tokens is not None else tokens, S, "key")
    cols = len(layers) if len(layers) <= 3 else math.ceil(math.sqrt(len(layers)))
    rows = math.ceil(len(layers) / cols)
    side = min(max(4.2, 0.3 * max(T, S) + 2.2), 14.0)
    fig = new_figure(side * cols + 1.2, side * rows + 0.8)
    axes = np.atleast_1d(fig.subplots(rows, cols, squeeze=False)).ravel()
    annotate = max(T, S) <= 14 and len(layers) == 1
    for ax, layer in zip(axes, layers):
        im = _heatmap(ax, M[layer], queries, keys, annotate=annotate, vmax=1.0)
        ax.set_title(f"layer {layer}: mean of {A.shape[1]} heads")
        if len(layers) > 1:
            ax.set_xlabel("key")
            ax.set_ylabel("query")
    for ax in axes[len(layers) :]:
        ax.set_visible(False)
    fig.colorbar(im, ax=list(axes[: len(layers)]), shrink=0.7, label="mean attention weight")
    fig.suptitle(title or "Attention averaged over heads")
    return finish(fig, out, dpi)


@styled
def plot_alignment(
    weights: Any,
    source_labels: Sequence[str],
    output_labels: Sequence[str],
    out: str | os.PathLike | None = None,
    *,
    title: str | None = None,
    annotate: bool | None = None,
    dpi: int = DEFAULT_DPI,
):
    """Alignment heatmap of an encoder-decoder: decoder step x source position (Bahdanau et al. 2015, fig. 3).

    Row t is the decoder step that produced `output_labels[t]`, column j the source token
    `source_labels[j]`; each row (the attention of one step over the source) sums to 1.
    The weights come from `attnlab.train.seq2seq.alignment` (one map of its (L, H, T, S)
    `weights`, or their mean over heads).

    Args:
        weights: (T, S) weights, rows = decoder steps (a torch tensor or array).
        source_labels: S source tokens (`<eos>` included).
        output_labels: T output tokens, one per decoder step.
        out: file to write (.png, .svg, .pdf); None returns the figure.
        title: figure title (default: "Alignment: decoder step x source position").
        annotate: write each weight in its cell (default: when T, S <= 16).
        dpi: PNG resolution.
    Returns:
        The figure when `out` is None, else the written path.
    """
    w = to_numpy(weights)
    if w.ndim != 2:
        raise ConfigError(f"an alignment must be (T, S) = (decoder steps, source positions), got shape {w.shape}")
    outputs = _check_labels(output_labels, w.shape[0], "output")
    sources = _check_labels(source_labels, w.shape[1], "source")
    T, S = w.shape
    annotate = max(T, S) <= 16 if annotate is None else annotate
    cell = 0.42 if max(T, S) <= 24 else 0.28  # inches a cell
    width = min(max(5.0, cell * S + 3.6), 24.0)
    height = min(max(4.0, cell * T + 2.4), 24.0)
    fig = new_figure(width, height)
    ax = fig.subplots()
    im = _heatmap(ax, w, outputs, sources, annotate=annotate, vmax=1.0)
    for label in ax.get_xticklabels():  # characters upright, `<eos>` and words vertical
        label.set_rotation(0 if len(label.get_text()) <= 2 else 90)
    ax.set_xlabel("source position (its token)")
    ax.set_ylabel("decoder step (its output token)")
    ax.set_title(title or "Alignment: decoder step x source position (each row sums to 1)")
    fig.colorbar(im, ax=ax, shrink=0.8, label="attention weight")
    return finish(fig, out, dpi)


def check_index(index: int, size: int, what: str) -> int:
    """Validate a layer/head index (negative counts from the end) and return it as 0..size-1.

    Raises:
        ConfigError: naming the valid range.
    """
    if not -size <= index < size:
        raise ConfigError(
            f"{what} {index} does not exist: this model has {size} {what}s, valid values are 0..{size - 1}"
        )
    return index % size


__all__ = [
    "attention_array",
    "check_index",
    "mean_over_heads",
    "plot_alignment",
    "plot_attention_grid",
    "plot_attention_head",
    "plot_attention_mean",
    "to_numpy",
]

"""Figures of the probing lab: a 2-D PCA projection of embeddings and the confusion matrix.

PCA (Pearson 1901) here is the plain one on standardised features: z-score every column
(the probes see standardised features too), take the two leading right singular
vectors, project. The axes say how much of the variance each component keeps,
so a reader sees whether two classes separate along the directions in which the
embedding varies most (they need not: a probe can use directions of little variance).

Every function takes plain arrays and writes a PNG (or returns the figure when `out` is
None). Figures are built without pyplot (`attnlab.viz._mpl`), so nothing global changes.

Notation: N points, C channels, K classes.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

from attnlab.viz._mpl import DEFAULT_DPI, PALETTE, finish, new_figure, styled

__all__ = ["pca_2d", "plot_pca", "plot_confusion"]


def pca_2d(X: np.ndarray, standardize: bool = True) -> tuple[np.ndarray, np.ndarray]:
    """Project (N, C) vectors on their two leading principal components.

    Args:
        X: (N, C) vectors, N >= 2.
        standardize: z-score every column first (as the probes do), so that one column
            on a large scale (e.g. the length in the composition control) does not fill PC 1.
    Returns:
        ((N, 2) coordinates, (2,) share of the total variance of each component). A
        component's sign is fixed so that its largest coefficient is positive
        (deterministic pictures).
    """
    X = np.asarray(X, dtype=np.float64)
    centred = X - X.mean(axis=0, keepdims=True)
    if standardize:
        std = centred.std(axis=0, keepdims=True)
        centred = centred / np.where(std < 1e-12, 1.0, std)  # constant columns stay zero
    _, s, vt = np.linalg.svd(centred, full_matrices=False)
    k = min(2, vt.shape[0])
    components = vt[:k]  # (k, C)
    signs = np.sign(components[np.arange(k), np.abs(components).argmax(axis=1)])
    components = components * np.where(signs == 0, 1.0, signs)[:, None]
    coords = centred @ components.T  # (N, k)
    total = float((s**2).sum())
    share = (s[:k] ** 2) / total if total > 0 else np.zeros(k)
    if k < 2:  # a single point or a single channel: pad with zeros
        coords = np.concatenate([coords, np.zeros((len(X), 2 - k))], axis=1)
        share = np.concatenate([share, np.zeros(2 - k)])
    return coords, share


@styled
def plot_pca(
    X: np.ndarray,
    labels: Sequence[Any],
    out: str | Path | None = None,
    *,
    class_names: Sequence[str] | None = None,
    regression: bool = False,
    title: str = "",
    dpi: int = DEFAULT_DPI,
):
    """A scatter of the 2-D PCA projection of `X`, coloured by label.

    Args:
        X: (N, C) vectors.
        labels: (N,) class indices (or values when `regression`).
        out: PNG path; None returns the figure.
        class_names: display name of each class index.
        regression: colour by value with a colour bar instead of one colour per class.
        title: figure title.
        dpi: PNG resolution.
    """
    coords, share = pca_2d(X)
    y = np.asarray(labels)
    fig = new_figure(7.5, 6.0)
    ax = fig.subplots()
    if regression:
        points = ax.scatter(
            coords[:, 0], coords[:, 1], c=y.astype(float), cmap="viridis", s=10, alpha=0.8, linewidths=0
        )
        fig.colorbar(points, ax=ax, label="label")
    else:
        for k, value in enumerate(sorted(set(y.tolist()))):
            chosen = y == value
            name = class_names[int(value)] if class_names is not None and int(value) < len(class_names) else str(value)
            ax.scatter(
                coords[chosen, 0],
                coords[chosen, 1],
                s=10,
                alpha=0.6,
                linewidths=0,
                color=PALETTE[k % len(PALETTE)],
                label=f"{name} ({int(chosen.sum())})",
            )
        ax.legend(frameon=False, markerscale=2.5, loc="best")
    ax.set_xlabel(f"PC 1 ({share[0]:.0%} of the variance)")
    ax.set_ylabel(f"PC 2 ({share[1]:.0%} of the variance)")
    ax.set_title(title or "Embeddings (standardised), first two principal components")
    ax.grid(alpha=0.3)
    return finish(fig, out, dpi)


def plot_confusion(matrix: np.ndarray, class_names: Sequence[str], out: str | Path | None = None, *, title: str = ""):
    """The confusion matrix figure of `attnlab.viz.vision` (rows true, columns predicted)."""
    from attnlab.viz.vision import plot_confusion_matrix

    return plot_confusion_matrix(matrix, class_names, out, title=title)

"""Figures of the vision and sequence comparison labs.

Image models: learning curves, a confusion matrix, a grid of misclassified images,
attention maps laid over images, an image cut into ViT patches.
Sequence models: accuracy against distance, the gradient that reaches each earlier
time step (the vanishing-gradient picture), training time per epoch and per step.

Every function takes plain data (NumPy arrays, dicts of numbers) and writes a PNG
(or returns the figure when `out` is None); nothing here trains or loads models.
Fonts are large enough to read on a projector.

Notation: N images, H height, W width, G patch-grid size, K classes, T time.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np

from attnlab.viz._mpl import DEFAULT_DPI, PALETTE, finish, new_figure, styled, tick_fontsize

__all__ = [
    "plot_learning_curves",
    "plot_confusion_matrix",
    "plot_misclassified",
    "plot_attention_overlay",
    "plot_patches",
    "plot_accuracy_by_distance",
    "plot_gradient_norms",
    "plot_training_time",
]

_BASE_FONT = 13  # points (the projector style's base size); titles and labels scale from it
_BLUE, _VERMILION, _GREEN, _ORANGE, _PINK, _SKY, _BLACK, _YELLOW = PALETTE
# One colour per model across all figures: the transformer is always vermilion.
_MODEL_COLORS = {
    "vit": _VERMILION,
    "transformer": _VERMILION,
    "cnn": _BLUE,
    "lstm": _BLUE,
    "mlp": _GREEN,
    "gru": _GREEN,
    "rnn": _BLACK,
}


_DISTANCE_STYLES = (("o", "-"), ("s", "--"), ("^", "-."), ("D", ":"), ("v", (0, (5, 1, 1, 1))))  # marker, dashes


def _color(name: str, i: int) -> str:
    return _MODEL_COLORS.get(name, PALETTE[i % len(PALETTE)])


def _image_axes(ax: Any, frame: bool = False) -> None:
    """No ticks or grid: the axes only hold a picture; `frame` draws a thin grey border."""
    ax.set_xticks([])
    ax.set_yticks([])
    ax.grid(False)
    for spine in ax.spines.values():
        spine.set_visible(frame)
        spine.set_color("#999999")
        spine.set_linewidth(0.8)


# ---------------------------------------------------------------------------
# Image classifiers
# ---------------------------------------------------------------------------


@styled
def plot_learning_curves(
    curves: Mapping[str, Sequence[Mapping[str, Any]]],
    out: str | Path | None = None,
    *,
    accuracy_label: str = "test accuracy",
    title: str = "",
    dpi: int = DEFAULT_DPI,
):
    """Training loss and test accuracy after every epoch, one line per model.

    Args:
        curves: model name -> records with "epoch", "train_loss", "test_accuracy" (0-1).
        out: PNG path; None returns the figure.
        accuracy_label: what the accuracy was measured on (axis label and panel title).
        title: figure title.
        dpi: PNG resolution.
    """
    fig = new_figure(13, 5.2)
    ax_loss, ax_acc = fig.subplots(1, 2)
    for i, (name, records) in enumerate(curves.items()):
        color = _color(name, i)
        loss = [(r["epoch"], r["train_loss"]) for r in records if r.get("train_loss") is not None]
        acc = [(r["epoch"], 100 * r["test_accuracy"]) for r in records if r.get("test_accuracy") is not None]
        if loss:
            ax_loss.plot(*zip(*loss), color=color, marker="o", ms=4, lw=2.2, label=name)
        if acc:
            ax_acc.plot(*zip(*acc), color=color, marker="o", ms=4, lw=2.2, label=f"{name} ({acc[-1][1]:.1f}%)")
    losses = [r["train_loss"] for recs in curves.values() for r in recs if r.get("train_loss")]
    if losses and max(losses) / max(min(losses), 1e-12) > 10:
        ax_loss.set_yscale("log")  # a loss that falls by orders of magnitude
    ax_loss.set_xlabel("epoch")
    ax_loss.set_ylabel("training loss (cross-entropy)")
    ax_loss.set_title("Training loss")
    ax_acc.set_xlabel("epoch")
    ax_acc.set_ylabel(f"{accuracy_label} (%)")
    ax_acc.set_title(accuracy_label[:1].upper() + accuracy_label[1:])
    finals = [
        100 * r["test_accuracy"] for recs in curves.values() for r in recs[-1:] if r.get("test_accuracy") is not None
    ]
    if finals and min(finals) > 80:
        ax_acc.set_ylim(max(80.0, min(finals) - 5), 100.0)  # zoom in where the models differ
    for ax in (ax_loss, ax_acc):
        ax.grid(alpha=0.3)
        ax.legend(frameon=False)
    if title:
        fig.suptitle(title, fontsize=_BASE_FONT + 4)
    return finish(fig, out, dpi)


@styled
def plot_confusion_matrix(
    matrix: np.ndarray,
    class_names: Sequence[str],
    out: str | Path | None = None,
    *,
    title: str = "",
    dpi: int = DEFAULT_DPI,
):
    """A (K, K) confusion matrix with the counts written in the cells.

    Args:
        matrix: (K, K) counts, rows = true class, columns = predicted class.
        class_names: K labels.
        out: PNG path; None returns the figure.
        title: figure title.
        dpi: PNG resolution.
    """
    m = np.asarray(matrix)
    K = len(m)
    size = max(6.0, 0.62 * K + 2.5)
    fig = new_figure(size + 1.2, size)
    ax = fig.subplots()
    # colour by share of the row, so a class with few examples is as visible as a big one
    share = m / np.maximum(m.sum(axis=1, keepdims=True), 1)
    im = ax.imshow(share, cmap="Blues", vmin=0.0, vmax=1.0)
    ax.grid(False)
    if K <= 20:
        for i in range(K):
            for j in range(K):
                if m[i, j]:
                    ax.text(
                        j,
                        i,
                        str(int(m[i, j])),
                        ha="center",
                        va="center",
                        fontsize=_BASE_FONT - 2 if K > 10 else _BASE_FONT,
                        color="white" if share[i, j] > 0.5 else ("#b00000" if i != j else "black"),
                    )
    labels = [str(c) for c in class_names]
    rotate = 45 if max(len(s) for s in labels) > 2 else 0
    ax.set_xticks(range(K), labels, rotation=rotate, ha="right" if rotate else "center")
    ax.set_yticks(range(K), labels)
    ax.set_xlabel("predicted class")
    ax.set_ylabel("true class")
    ax.set_title(title or "Confusion matrix")
    fig.colorbar(im, ax=ax, fraction=0.046, pad=0.04, label="share of the true class")
    return finish(fig, out, dpi)


def _rgba(image: np.ndarray, cmap: str = "gray_r") -> np.ndarray:
    """(H, W) values in [0, 1] through `cmap`, or (H, W, 3) colours, as (H, W, 4) RGBA floats."""
    from matplotlib import colormaps

    a = np.clip(np.asarray(image, dtype=np.float64), 0.0, 1.0)
    if a.ndim == 2:
        return colormaps[cmap](a)
    rgba = np.ones(a.shape[:2] + (4,))
    rgba[..., :3] = a[..., :3]
    return rgba


def _mosaic(
    tiles: Sequence[np.ndarray], cols: int, gap_x: int, gap_y: int, *, left: int = 0, first_gap: int | None = None
) -> tuple[np.ndarray, list[tuple[int, int]]]:
    """Lay (H, W, 4) tiles out in rows of `cols` on one transparent canvas.

    Drawing one image with text on top is much faster than one matplotlib axes per tile
    (dozens of axes make a figure take seconds to lay out and save).

    Args:
        tiles: equally sized RGBA tiles.
        cols: tiles per row.
        gap_x: pixels between columns.
        gap_y: pixels above every row (room for labels).
        left: empty pixels on the left (room for row names).
        first_gap: pixels above the first row, if different from `gap_y`.
    Returns:
        (canvas (height, width, 4), the (x, y) pixel position of each tile's top-left corner).
    """
    H, W = tiles[0].shape[:2]
    rows = max(1, -(-len(tiles) // cols))
    first = gap_y if first_gap is None else first_gap
    tops = [first + r * (gap_y + H) for r in range(rows)]
    canvas = np.zeros((tops[-1] + H, left + cols * (W + gap_x) - gap_x, 4))  # alpha 0 = background
    positions = []
    for i, tile in enumerate(tiles):
        r, c = divmod(i, cols)
        x, y = left + c * (W + gap_x), tops[r]
        canvas[y : y + H, x : x + W] = tile
        positions.append((x, y))
    return canvas, positions


def _framed(tile: np.ndarray, scale: int, grey: float = 0.6) -> np.ndarray:
    """`tile` (h, w, 4) enlarged `scale` times (nearest), with a one-pixel grey frame."""
    big = np.kron(tile, np.ones((scale, scale, 1)))
    big[0, :, :3] = big[-1, :, :3] = big[:, 0, :3] = big[:, -1, :3] = grey
    return big


def _canvas_figure(canvas: np.ndarray, inches_per_pixel: float, title: str, title_inches: float = 0.6):
    """A figure that shows `canvas` at `inches_per_pixel`, with room for a title above it."""
    height, width = canvas.shape[:2]
    fig_w, fig_h = width * inches_per_pixel, height * inches_per_pixel + (title_inches if title else 0.1)
    fig = new_figure(fig_w, fig_h, layout=None)  # one axes placed by hand: fast to draw
    ax = fig.add_axes((0.0, 0.0, 1.0, height * inches_per_pixel / fig_h))
    ax.imshow(canvas, interpolation="nearest")
    ax.set_xlim(-0.5, width - 0.5)
    ax.set_ylim(height - 0.5, -0.5)
    ax.axis("off")
    if title:
        fig.suptitle(title, y=1.0 - 0.12 / fig_h, va="top")
    return fig, ax


@styled
def plot_misclassified(
    images: np.ndarray,
    true: np.ndarray,
    predicted: np.ndarray,
    class_names: Sequence[str],
    out: str | Path | None = None,
    *,
    confidence: np.ndarray | None = None,
    max_images: int = 24,
    total_wrong: int | None = None,
    title: str = "",
    dpi: int = DEFAULT_DPI,
):
    """A grid of misclassified images, each labelled "true → predicted".

    Args:
        images: (N, H, W) grey or (N, H, W, 3) colour images, pixel values in [0, 1].
        true, predicted: (N,) class ids.
        class_names: names of the class ids.
        out: PNG path; None returns the figure.
        confidence: (N,) probability of the predicted class, shown under the label.
        max_images: show at most this many (the first ones).
        total_wrong: how many are wrong in all (for the title; default N).
        title: figure title.
        dpi: PNG resolution.
    """
    n = min(len(images), max_images)
    wrong = total_wrong if total_wrong is not None else len(images)
    head = f"{title or 'Misclassified images'} (showing {n} of {wrong}; true → predicted)"
    if n == 0:
        fig = new_figure(8, 2.5)
        fig.text(0.5, 0.5, "no mistakes", ha="center", va="center", fontsize=_BASE_FONT + 6)
        fig.suptitle(head)
        return finish(fig, out, dpi)
    H, W = images.shape[1], images.shape[2]
    cols = min(8, n)
    scale = max(1, 112 // W)  # draw at about 112 pixels a side, so the frame is thin
    H, W = H * scale, W * scale
    tiles = [_framed(_rgba(images[i]), scale, grey=0.8) for i in range(n)]
    canvas, positions = _mosaic(tiles, cols, gap_x=W // 4, gap_y=round(0.6 * H))  # room for two label lines
    fig, ax = _canvas_figure(canvas, 1.45 / W, head)
    for i, (x, y) in enumerate(positions):
        text = f"{class_names[int(true[i])]} → {class_names[int(predicted[i])]}"
        if confidence is not None:
            text += f"\n{100 * float(confidence[i]):.0f}% sure"
        ax.text(
            x + W / 2,
            y - 0.08 * H,
            text,
            ha="center",
            va="bottom",
            fontsize=_BASE_FONT - 1,
            color=_VERMILION,
            fontweight="bold",
            linespacing=1.1,
        )
    return finish(fig, out, dpi)


@styled
def plot_attention_overlay(
    images: np.ndarray,
    maps: Mapping[str, np.ndarray],
    out: str | Path | None = None,
    *,
    labels: Sequence[str] | None = None,
    predictions: Sequence[str] | None = None,
    alpha: float = 0.6,
    title: str = "",
    dpi: int = DEFAULT_DPI,
):
    """Images in the first row, each attention map laid over them in the rows below.

    A (G, G) map is drawn as blocks of whole patches (nearest-neighbour), one block per
    ViT patch, each map on its own scale (brightest = its largest value).

    Args:
        images: (N, H, W) grey images in [0, 1].
        maps: row label -> (N, G, G) non-negative maps (e.g. rollout, last layer); G must divide H.
        out: PNG path; None returns the figure.
        labels: N true class names (shown above the images).
        predictions: N predicted class names (shown in red when wrong).
        alpha: opacity of the heat map over the image.
        title: figure title.
        dpi: PNG resolution.
    """
    from matplotlib import colormaps

    n, H, W = images.shape[:3]
    tiles = [_rgba(img) for img in images]
    for m in maps.values():
        for j in range(n):
            grid = np.asarray(m[j], dtype=np.float64)
            grid = grid / max(grid.max(), 1e-12)  # each map on its own 0-1 scale
            heat = colormaps["inferno"](np.kron(grid, np.ones((H // grid.shape[0], W // grid.shape[1]))))
            base = _rgba(images[j], "gray")  # white strokes on black under the heat map
            tiles.append((1 - alpha) * base + alpha * heat)
    left = round(2.0 * W)  # room for the row names
    canvas, positions = _mosaic(
        tiles,
        n,
        gap_x=max(1, W // 6),
        gap_y=max(1, W // 6),
        left=left,
        first_gap=max(2, round(0.7 * H)) if labels is not None else None,
    )
    fig, ax = _canvas_figure(canvas, 1.35 / W, title)
    for row, name in enumerate(["image", *maps]):
        _, y = positions[row * n]
        ax.text(left - 0.2 * W, y + H / 2, name, ha="right", va="center", fontsize=_BASE_FONT, wrap=True)
    if labels is not None:
        for j in range(n):
            x, y = positions[j]
            text, color = f"label {labels[j]}", "black"
            if predictions is not None:
                text += f"\npredicted {predictions[j]}"
                color = "black" if predictions[j] == labels[j] else _VERMILION
            ax.text(
                x + W / 2,
                y - 0.08 * H,
                text,
                ha="center",
                va="bottom",
                fontsize=_BASE_FONT - 1,
                color=color,
                linespacing=1.1,
            )
    return finish(fig, out, dpi)


@styled
def plot_patches(
    image: np.ndarray, patch_size: int, out: str | Path | None = None, *, title: str = "", dpi: int = DEFAULT_DPI
):
    """One image with its patch grid, next to the patches as separate tokens, numbered in reading order.

    Args:
        image: (H, W) grey image in [0, 1] (or (H, W, 3)).
        patch_size: P; must divide H and W.
        out: PNG path; None returns the figure.
        title: figure title.
        dpi: PNG resolution.
    """
    H, W = image.shape[:2]
    P, G = patch_size, H // patch_size
    fig = new_figure(12, 6)
    ax_image, ax_patches = fig.subplots(1, 2)
    ax_image.imshow(_rgba(image), interpolation="nearest")
    for k in range(1, G):
        ax_image.axhline(k * P - 0.5, color=_VERMILION, lw=1.5)
        ax_image.axvline(k * P - 0.5, color=_VERMILION, lw=1.5)
    _image_axes(ax_image, frame=True)
    ax_image.set_title(f"{H} x {W} image, {P} x {P} patches")
    scale = max(1, 40 // P)  # each patch drawn at about 40 pixels, with a thin grey frame
    patches = [
        _framed(_rgba(image[r * P : (r + 1) * P, c * P : (c + 1) * P]), scale) for r in range(G) for c in range(G)
    ]
    P = P * scale
    canvas, positions = _mosaic(patches, G, gap_x=P // 3, gap_y=round(0.7 * P) if G <= 8 else P // 3)
    ax_patches.imshow(canvas, interpolation="nearest")
    ax_patches.axis("off")
    if G <= 8:
        for n, (x, y) in enumerate(positions):
            ax_patches.text(x + P / 2, y - 0.1 * P, str(n), ha="center", va="bottom", fontsize=tick_fontsize(G * G) - 1)
    ax_patches.set_title(f"{G * G} patches = {G * G} tokens (+ CLS)")
    if title:
        fig.suptitle(title)
    return finish(fig, out, dpi)


# ---------------------------------------------------------------------------
# Sequence models
# ---------------------------------------------------------------------------


@styled
def plot_accuracy_by_distance(
    accuracies: Mapping[str, Mapping[int, float]],
    out: str | Path | None = None,
    *,
    chance: float | None = None,
    threshold: float | None = 0.9,
    title: str = "",
    dpi: int = DEFAULT_DPI,
):
    """Accuracy against the distance k between the marked token and the query.

    Args:
        accuracies: model name -> {k: accuracy in [0, 1]}.
        out: PNG path; None returns the figure.
        chance: accuracy of guessing, drawn as a dashed line.
        threshold: a dotted reference line (e.g. 0.9, the "solved" level); None = none.
        title: figure title.
        dpi: PNG resolution.
    """
    fig = new_figure(10, 5.5)
    ax = fig.subplots()
    for i, (name, by_k) in enumerate(accuracies.items()):
        ks = sorted(by_k)
        # Models that solve the task all sit at 100%: each later line is thinner, with its
        # own marker and dash pattern, and on long curves the markers of line i sit at
        # every n-th k from the i-th on, so no line hides the one drawn under it.
        marker, dashes = _DISTANCE_STYLES[i % len(_DISTANCE_STYLES)]
        n = len(_DISTANCE_STYLES)
        ax.plot(
            ks,
            [100 * by_k[k] for k in ks],
            color=_color(name, i),
            marker=marker,
            ms=max(9 - 1.5 * i, 4),
            mfc="none",
            mew=1.4,
            markevery=(i % n, n) if len(ks) > 3 * n else None,
            ls=dashes,
            lw=max(3.4 - 0.7 * i, 1.2),
            label=name,
            zorder=3 + i,
        )
    if chance is not None:
        ax.axhline(100 * chance, color="black", ls="--", lw=1.3, label=f"chance ({100 * chance:.1f}%)")
    if threshold is not None:
        ax.axhline(100 * threshold, color="#555555", ls=":", lw=1.3, label=f"{100 * threshold:.0f}%")
    ax.set_ylim(0, 102)
    ax.set_xlabel("distance k: steps between the marked token and the query")
    ax.set_ylabel("accuracy (%)")
    ax.set_title(title or "Recall accuracy by distance")
    ax.grid(alpha=0.3)
    ax.legend(frameon=True, framealpha=0.9, loc="best")
    return finish(fig, out, dpi)


@styled
def plot_gradient_norms(
    panels: Mapping[str, Mapping[str, np.ndarray]],
    out: str | Path | None = None,
    *,
    relative: bool = True,
    title: str = "",
    dpi: int = DEFAULT_DPI,
):
    """The gradient of the loss at the last position with respect to each earlier input.

    x counts the steps back from the scored (last) position, so every curve starts at
    the loss on the left; a vanishing gradient falls towards the right.

    Args:
        panels: panel title (e.g. "at initialisation", "after training") -> model name ->
            (T,) gradient norms for positions 0..T-1 (the last one is the scored position).
        out: PNG path; None returns the figure.
        relative: divide each curve by its value at the scored position, so curves of
            models with very different loss levels (e.g. a trained model that is almost
            always right) show how far the signal travels rather than how big it is.
        title: figure title.
        dpi: PNG resolution.
    """
    fig = new_figure(7.2 * len(panels), 5.6)
    axes = fig.subplots(1, len(panels), squeeze=False, sharey=True)
    for ax, (panel, norms) in zip(axes[0], panels.items()):
        for i, (name, values) in enumerate(norms.items()):
            v = np.asarray(values, dtype=np.float64)
            if relative and v[-1] > 0:
                v = v / v[-1]
            back = np.arange(len(v))[::-1]  # position t is T - 1 - t steps before the scored one
            ax.plot(back, np.where(v > 0, v, np.nan), color=_color(name, i), lw=2.4, label=name)  # log axis: hide zeros
        ax.set_yscale("log")
        ax.set_xlabel("steps back from the scored position")
        ax.set_title(panel)
        ax.grid(alpha=0.3, which="major")
        ax.legend(frameon=False)
    axes[0][0].set_ylabel("|d loss / d x_t|" + (", relative to t = T-1" if relative else "") + " (log scale)")
    if title:
        fig.suptitle(title)
    return finish(fig, out, dpi)


@styled
def plot_training_time(
    epoch_seconds: Mapping[str, float],
    out: str | Path | None = None,
    *,
    step_ms_by_length: Mapping[str, Mapping[int, float]] | None = None,
    title: str = "",
    dpi: int = DEFAULT_DPI,
):
    """Training time per epoch (bars), and optionally ms per training step against length.

    Args:
        epoch_seconds: model name -> seconds per epoch.
        out: PNG path; None returns the figure.
        step_ms_by_length: model name -> {sequence length: ms per optimizer step}.
        title: figure title.
        dpi: PNG resolution.
    """
    panels = 2 if step_ms_by_length else 1
    fig = new_figure(7.2 * panels, 5.2)
    axes = fig.subplots(1, panels, squeeze=False)
    ax = axes[0][0]
    names = list(epoch_seconds)
    bars = ax.bar(names, [epoch_seconds[n] for n in names], color=[_color(n, i) for i, n in enumerate(names)])
    for bar, name in zip(bars, names):
        ax.text(
            bar.get_x() + bar.get_width() / 2,
            bar.get_height(),
            f"{epoch_seconds[name]:.1f} s",
            ha="center",
            va="bottom",
            fontsize=_BASE_FONT,
        )
    ax.set_ylabel("seconds per epoch")
    ax.set_title("Training time per epoch")
    ax.margins(y=0.15)
    ax.grid(alpha=0.3, axis="y")
    if step_ms_by_length:
        ax = axes[0][1]
        for i, (name, by_len) in enumerate(step_ms_by_length.items()):
            lengths = sorted(by_len)
            ax.plot(lengths, [by_len[t] for t in lengths], color=_color(name, i), marker="o", lw=2.4, label=name)
        ax.set_xscale("log", base=2)
        ax.set_yscale("log")
        ax.set_xlabel("sequence length T")
        ax.set_ylabel("ms per training step (log scale)")
        ax.set_title("Cost of one step as sequences grow")
        ax.grid(alpha=0.3, which="both")
        ax.legend(frameon=False)
    if title:
        fig.suptitle(title, fontsize=_BASE_FONT + 3)
    return finish(fig, out, dpi)

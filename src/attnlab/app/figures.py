"""Figures that only the app draws (the general ones are in `attnlab.viz`).

* `plot_step_distribution`: a generation step's top-k candidates, raw vs after
  temperature / top-k / top-p;
* `plot_last_step_attention`: the last query's attention, one row per layer and head;
* `plot_logit_lens`: layers x positions, the top-1 token of each layer's prediction,
  coloured by its probability;
* `plot_sublayer_effects`: stream and branch norms per block, and relative updates;
* `plot_stream_norms`: the residual-stream norm of every token after every block;
* `plot_class_probabilities`: bars of class probabilities (ViT, probes).

All are built without pyplot in the projector style of `attnlab.viz` and returned as
`Figure`s; `figure_png` renders one to PNG bytes for `st.image`.

Notation: L layers, H heads, S keys, T positions, K classes.
"""

from __future__ import annotations

import io
from collections.abc import Sequence
from typing import Any

import numpy as np

from attnlab.viz._mpl import BLUE, GREEN, ORANGE, SKY, VERMILION, new_figure, projector_style, styled, tick_fontsize

CMAP = "viridis"


def figure_png(fig: Any, dpi: int = 110) -> bytes:
    """Render a figure to PNG bytes (white background, projector style)."""
    buf = io.BytesIO()
    with projector_style():
        fig.savefig(buf, format="png", dpi=dpi, facecolor="white")
    return buf.getvalue()


def _rotation(labels: Sequence[str]) -> int:
    return 0 if max((len(t) for t in labels), default=0) <= 2 else 90


@styled
def plot_step_distribution(step: Any, title: str = "") -> Any:
    """Horizontal bars: the top candidates of one step under the raw model and as sampled.

    The chosen token gets its own row (marked) even when it was not among the top ones.

    Args:
        step: an `attnlab.app.generation.GenerationStep`.
        title: figure title.
    """
    raw = {c.token_id: c.prob for c in step.raw_top}
    sampled = {c.token_id: c.prob for c in step.top}
    names = {c.token_id: c.token for c in [*step.raw_top, *step.top]}
    names[step.token_id] = step.token
    order = list(dict.fromkeys([*raw, *sampled, step.token_id]))
    p_raw = np.array([step.raw_prob if i == step.token_id else raw.get(i, np.nan) for i in order])
    p_smp = np.array([step.prob if i == step.token_id else sampled.get(i, np.nan) for i in order])
    fig = new_figure(6.0, 0.55 * len(order) + 2.2)
    ax = fig.subplots()
    y = np.arange(len(order))
    ax.barh(y - 0.2, p_raw, height=0.4, color=SKY, label="model (temperature 1)")
    ax.barh(y + 0.2, p_smp, height=0.4, color=BLUE, label="after temperature, top-k, top-p")
    top = float(np.nanmax(np.concatenate([p_raw, p_smp])))
    for yi, a, b in zip(y, p_raw, p_smp):
        for offset, v in ((-0.2, a), (0.2, b)):
            if np.isfinite(v):
                ax.text(v + 0.01 * max(top, 0.05), yi + offset, f"{v:.2f}", va="center", fontsize=10)
    labels = [f"{names[i]}  (chosen)" if i == step.token_id else names[i] for i in order]
    ax.set_yticks(y, labels, fontsize=13)
    for tick, i in zip(ax.get_yticklabels(), order):
        if i == step.token_id:
            tick.set_color(VERMILION)
            tick.set_fontweight("bold")
    ax.invert_yaxis()
    ax.set_xlim(0, min(1.0, 1.25 * top + 0.02))
    ax.set_xlabel("probability")
    ax.grid(axis="y", visible=False)
    fig.legend(loc="outside lower center", ncols=2, fontsize=10, frameon=False)
    ax.set_title(title or f"Step {step.index + 1}: the top candidates")
    return fig


# The last step's heatmap is shown at its natural size and only shrinks when the page is
# narrower (Streamlit never draws an image wider than its column); these numbers keep its
# token labels at least MIN_LABEL_PX screen pixels high on any page READABLE_FROM_PX wide
# or wider (rendered px = points / 72 x shown width / figure width in inches).
MIN_LABEL_PX = 10.0  # smallest token label on screen, in CSS pixels
READABLE_FROM_PX = 900  # narrowest page (content width) at which MIN_LABEL_PX still holds
LABEL_POINTS = 9.0  # smallest tick-label size of the heatmap, in points
MAX_KEYS_SHOWN = 40  # at most this many last keys get a labelled column
_KEY_INCHES = 0.19  # width of one key's column
_MARGIN_INCHES = 3.4  # row labels, colour bar and padding


def label_pixels(points: float, figure_inches: float, shown_px: float, dpi: float) -> float:
    """Screen height of a `points` label on a figure `figure_inches` wide shown in `shown_px` pixels.

    The image is drawn at its natural width (`figure_inches * dpi`) unless `shown_px` is narrower.
    """
    drawn_px = min(figure_inches * dpi, shown_px)
    return points / 72.0 * drawn_px / figure_inches


@styled
def plot_last_step_attention(attention: Any, title: str = "", *, max_keys: int = MAX_KEYS_SHOWN) -> Any:
    """Heatmap of the last query's attention: one row per (layer, head), one column per key.

    Only the last `max_keys` keys get a column, so that every label stays readable
    (>= LABEL_POINTS, on a figure at most `max_keys * 0.19 + 3.4` inches wide); the x label
    says how many earlier keys were left out and how much weight they got.

    Args:
        attention: an `attnlab.app.generation.LastStepAttention` (weights (L, H, S)).
        title: figure title.
        max_keys: most keys shown (the last ones, nearest the newest token).
    """
    w = np.asarray(attention.weights)
    L, H, S = w.shape
    shown = min(S, max(1, int(max_keys)))
    hidden = S - shown
    rows = w.reshape(L * H, S)[:, hidden:]  # (L * H, shown): the last keys
    labels = list(attention.tokens)[hidden:]
    points = max(tick_fontsize(shown), LABEL_POINTS)
    column = max(_KEY_INCHES, 1.35 * points / 72.0)  # a rotated label is about one line high
    fig = new_figure(max(6.0, column * shown + _MARGIN_INCHES), 0.42 * L * H + 2.4)
    ax = fig.subplots()
    im = ax.imshow(rows, cmap=CMAP, vmin=0.0, vmax=max(float(rows.max()), 1e-6), aspect="auto", interpolation="nearest")
    ax.grid(False)
    ax.set_yticks(
        range(L * H),
        [f"layer {i} · head {h}" for i in range(L) for h in range(H)],
        fontsize=max(tick_fontsize(L * H), LABEL_POINTS),
    )
    ax.set_xticks(range(shown), labels, rotation=_rotation(labels), fontsize=points)
    if hidden:
        earlier = w.reshape(L * H, S)[:, :hidden].sum(axis=1)  # weight each row gives the left-out keys
        ax.set_xlabel(
            f"the last {shown} of {S} tokens the newest position could read\n"
            f"(not shown: the {hidden} earlier ones, which got {earlier.min():.0%}-{earlier.max():.0%} of each row)"
        )
    else:
        ax.set_xlabel("earlier tokens (keys) the newest position could read")
    for i in range(1, L):
        ax.axhline(i * H - 0.5, color="white", linewidth=2)
    fig.colorbar(im, ax=ax, shrink=0.9, label="attention weight")
    ax.set_title(title or f"What the model read to choose {attention.chosen!r}")
    return fig


@styled
def plot_logit_lens(lens: Any, tokens: Sequence[str], vocab: Sequence[str], title: str = "") -> Any:
    """Layers x positions: each layer's most likely next token, coloured by its probability.

    Args:
        lens: `attnlab.analysis.lens.LogitLens` (rows: embeddings, block 0, ...).
        tokens: T input labels (the columns).
        vocab: display label of every token id.
        title: figure title.
    """
    p = lens.top_probs[:, :, 0]  # (L + 1, T)
    R, T = p.shape
    fig = new_figure(min(max(6.0, 0.5 * T + 2.8), 18.0), 0.75 * R + 2.2)
    ax = fig.subplots()
    im = ax.imshow(p, cmap="Blues", vmin=0.0, vmax=1.0, aspect="auto", interpolation="nearest")
    ax.grid(False)
    size = 15 if T <= 16 else (13 if T <= 24 else (10 if T <= 40 else 8))
    for r in range(R):
        for t in range(T):
            ax.text(
                t,
                r,
                vocab[int(lens.top_ids[r, t, 0])],
                ha="center",
                va="center",
                fontsize=size,
                color="white" if p[r, t] > 0.55 else "black",
            )
    ax.set_yticks(range(R), lens.layer_names)
    ax.set_xticks(range(T), list(tokens), rotation=_rotation(tokens), fontsize=tick_fontsize(T))
    ax.set_xlabel("input token (the prediction is for the token after it)")
    ax.invert_yaxis()  # the output at the top, as in the usual logit-lens pictures
    fig.colorbar(im, ax=ax, shrink=0.9, label="probability of the top token")
    ax.set_title(title or "Logit lens: what each layer would predict")
    return fig


@styled
def plot_sublayer_effects(effects: Any, title: str = "") -> Any:
    """Left: mean norms of the stream and of what each branch adds; right: relative updates.

    Args:
        effects: `attnlab.analysis.lens.SublayerEffects`.
        title: figure title.
    """
    L = effects.num_layers
    x = np.arange(L)
    fig = new_figure(13, 4.8)
    left, right = fig.subplots(1, 2)
    series = [
        ("stream_in", "stream entering", SKY),
        ("attn_out", "attention adds", VERMILION),
        ("ff_out", "feed-forward adds", GREEN),
        ("stream_out", "stream leaving", BLUE),
    ]
    width = 0.8 / len(series)
    for j, (key, name, colour) in enumerate(series):
        left.bar(x + (j - (len(series) - 1) / 2) * width, effects.norms[key], width=width, color=colour, label=name)
    left.set_xticks(x, [f"block {i}" for i in x])
    left.set_ylabel("mean L2 norm over tokens")
    left.set_title("Size of the stream and of each update")
    left.legend(fontsize=10)
    left.grid(axis="x", visible=False)
    right.plot(x, effects.attn_update, "o-", color=VERMILION, label="attention: |a| / |x|")
    right.plot(x, effects.ff_update, "s-", color=GREEN, label="feed-forward: |f| / |h|")
    right.plot(x, 1 - effects.attn_cosine, "o--", color=ORANGE, label="1 - cos(before, after attention)")
    right.plot(x, 1 - effects.ff_cosine, "s--", color=BLUE, label="1 - cos(before, after feed-forward)")
    right.set_xticks(x, [f"block {i}" for i in x])
    right.set_ylim(bottom=0)
    right.set_title("How much each sub-layer changes the stream")
    right.legend(fontsize=10)
    fig.suptitle(title or ("Inside each block (pre-norm)" if effects.norm_first else "Inside each block (post-norm)"))
    return fig


@styled
def plot_stream_norms(norms: np.ndarray, tokens: Sequence[str], title: str = "") -> Any:
    """(L + 1, T) heatmap of every token's residual-stream norm after every block."""
    R, T = norms.shape
    fig = new_figure(min(max(6.0, 0.45 * T + 3.0), 20.0), 0.5 * R + 2.4)
    ax = fig.subplots()
    im = ax.imshow(norms, cmap="magma", aspect="auto", interpolation="nearest")
    ax.grid(False)
    ax.set_yticks(range(R), ["embeddings"] + [f"after block {i}" for i in range(R - 1)])
    ax.set_xticks(range(T), list(tokens), rotation=_rotation(tokens), fontsize=tick_fontsize(T))
    ax.invert_yaxis()
    fig.colorbar(im, ax=ax, shrink=0.9, label="L2 norm")
    ax.set_title(title or "Norm of each token's hidden state, layer by layer")
    return fig


@styled
def plot_class_probabilities(
    probs: Sequence[float], class_names: Sequence[str], *, true_class: int | None = None, title: str = ""
) -> Any:
    """Vertical bars of class probabilities; the top class in blue, the true one outlined."""
    p = np.asarray(probs, dtype=float)
    K = len(p)
    fig = new_figure(max(4.5, 0.6 * K + 2.0), 4.2)
    ax = fig.subplots()
    colours = [BLUE if k == int(p.argmax()) else SKY for k in range(K)]
    bars = ax.bar(range(K), p, color=colours)
    if true_class is not None and 0 <= true_class < K:
        bars[true_class].set_edgecolor("black")
        bars[true_class].set_linewidth(2.5)
    short = max(len(c) for c in class_names) <= 3 or (K <= 4 and max(len(c) for c in class_names) <= 12)
    ax.set_xticks(range(K), list(class_names), rotation=0 if short else 45)
    ax.set_ylim(0, 1)
    ax.set_ylabel("probability")
    ax.grid(axis="x", visible=False)
    ax.set_title(title or "Prediction")
    return fig


@styled
def plot_digit_attention(image: np.ndarray, maps: dict[str, np.ndarray], title: str = "") -> Any:
    """One image, then each (G, G) attention map laid over it as whole-patch blocks, side by side.

    Args:
        image: (H, W) grey image in [0, 1].
        maps: panel title -> (G, G) non-negative map (e.g. rollout, last layer).
        title: figure title.
    """
    H, W = image.shape
    fig = new_figure(3.2 * (1 + len(maps)) + 0.6, 3.8)
    axes = np.atleast_1d(fig.subplots(1, 1 + len(maps)))
    axes[0].imshow(image, cmap="gray_r", vmin=0.0, vmax=1.0, interpolation="nearest")
    axes[0].set_title("the image")
    im = None
    for ax, (name, m) in zip(axes[1:], maps.items()):
        m = np.asarray(m, dtype=float)
        ax.imshow(image, cmap="gray", vmin=0.0, vmax=1.0, interpolation="nearest")
        # the map as blocks of whole patches, on the image's pixel grid
        im = ax.imshow(
            m / max(m.max(), 1e-12),
            cmap="inferno",
            alpha=0.6,
            vmin=0.0,
            vmax=1.0,
            extent=(-0.5, W - 0.5, H - 0.5, -0.5),
            interpolation="nearest",
        )
        G = m.shape[0]
        for k in range(1, G):  # patch borders
            ax.axhline(k * H / G - 0.5, color="white", linewidth=0.6, alpha=0.5)
            ax.axvline(k * W / G - 0.5, color="white", linewidth=0.6, alpha=0.5)
        ax.set_title(name)
    for ax in axes:
        ax.set_xticks([])
        ax.set_yticks([])
        ax.grid(False)
        for spine in ax.spines.values():
            spine.set_visible(False)
    if im is not None:
        fig.colorbar(im, ax=list(axes[1:]), shrink=0.85, label="share of attention (max = 1)")
    if title:
        fig.suptitle(title)
    return fig


__all__ = [
    "LABEL_POINTS",
    "MAX_KEYS_SHOWN",
    "MIN_LABEL_PX",
    "READABLE_FROM_PX",
    "figure_png",
    "label_pixels",
    "plot_digit_attention",
    "plot_class_probabilities",
    "plot_last_step_attention",
    "plot_logit_lens",
    "plot_step_distribution",
    "plot_stream_norms",
    "plot_sublayer_effects",
]

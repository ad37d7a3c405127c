"""Figures of the foundations lab, sized and styled for a workshop projector.

Each `figure_*` function computes its data (fixed seeds, a fraction of a second)
and returns a `matplotlib.figure.Figure` built without pyplot: no GUI backend is
touched, nothing global changes, and a notebook shows the returned figure as it is.
`save_figure` writes one figure (PNG, optionally SVG) atomically; `write_all_figures`
writes the whole set, which is what `attnlab figures foundations --out DIR` runs.
"""

from __future__ import annotations

import contextlib
import functools
import logging
import os
from collections.abc import Callable, Iterable, Iterator
from pathlib import Path

import numpy as np

from attnlab.errors import ConfigError
from attnlab.foundations import DEFAULT_DPI, FIGURE_NAMES, activations, optimizers, regression, surfaces, vectors
from attnlab.runs import output_metadata, writes_run

logger = logging.getLogger(__name__)

# Okabe & Ito's colour-blind-safe palette.
BLUE, ORANGE, GREEN, PINK, YELLOW, SKY, VERMILION, BLACK = (
    "#0072B2",
    "#E69F00",
    "#009E73",
    "#CC79A7",
    "#F0E442",
    "#56B4E9",
    "#D55E00",
    "#000000",
)
OPTIMIZER_STYLE = {  # name -> (colour, legend label)
    "gd": (BLUE, "gradient descent"),
    "sgd": (SKY, "SGD"),
    "momentum": (GREEN, "momentum"),
    "adam": (VERMILION, "Adam"),
    "adamw": (PINK, "AdamW"),
}

# Large type and thick lines: these are read from the back of a room.
PROJECTOR_STYLE = {
    "font.size": 13,
    "axes.titlesize": 15,
    "axes.titleweight": "bold",
    "axes.labelsize": 14,
    "xtick.labelsize": 12,
    "ytick.labelsize": 12,
    "legend.fontsize": 11.5,
    "legend.framealpha": 0.92,
    "figure.titlesize": 17,
    "figure.titleweight": "bold",
    "lines.linewidth": 2.4,
    "axes.grid": True,
    "grid.alpha": 0.3,
    "axes.spines.top": False,
    "axes.spines.right": False,
}


@contextlib.contextmanager
def projector_style() -> Iterator[None]:
    """Context in which figures are built and saved with the lab's style."""
    import matplotlib

    with matplotlib.rc_context(PROJECTOR_STYLE):
        yield


def _new_figure(width: float, height: float):
    from matplotlib.figure import Figure

    return Figure(figsize=(width, height), layout="constrained")


def _styled(build: Callable) -> Callable:
    """Build the figure inside `projector_style` (rc values are read when artists are made)."""

    @functools.wraps(build)
    def wrapper(*args, **kwargs):
        with projector_style():
            return build(*args, **kwargs)

    return wrapper


# --- vectors -----------------------------------------------------------------------------


@_styled
def figure_vectors(k: int = 3, seed: int = 3):
    """Nearest neighbours of one query by cosine similarity vs Euclidean distance.

    Left: 2-D points; the k nearest by each measure are marked. Cosine looks at
    direction only (a long vector far away can be "nearest"); Euclidean at position.
    Right: the pairwise cosine-similarity matrix of a few vectors, values printed.

    Args:
        k: neighbours to mark.
        seed: NumPy seed for the point cloud.
    Returns:
        A matplotlib `Figure`.
    """
    rng = np.random.default_rng(seed)
    angles = rng.uniform(0, 2 * np.pi, 40)
    lengths = rng.uniform(0.3, 3.0, 40)
    points = np.stack([lengths * np.cos(angles), lengths * np.sin(angles)], axis=1)  # (40, 2)
    query = np.array([1.0, 0.55])
    by_cos = vectors.nearest_neighbors(query, points, k=k, metric="cosine")
    by_euc = vectors.nearest_neighbors(query, points, k=k, metric="euclidean")

    fig = _new_figure(13.5, 6.0)
    ax_pts, ax_mat = fig.subplots(1, 2, gridspec_kw={"width_ratios": [1.15, 1]})
    ax_pts.axhline(0, color="0.6", lw=1)
    ax_pts.axvline(0, color="0.6", lw=1)
    ax_pts.scatter(points[:, 0], points[:, 1], s=40, color="0.55", label="keys", zorder=2)
    ax_pts.annotate("", xy=query, xytext=(0, 0), arrowprops=dict(arrowstyle="-|>", color=BLACK, lw=2.5), zorder=4)
    ax_pts.scatter(*query, s=160, marker="*", color=BLACK, label="query", zorder=5)
    direction = query / np.linalg.norm(query)
    ax_pts.plot([0, 4 * direction[0]], [0, 4 * direction[1]], ls=":", color=BLACK, lw=1.5)
    for idx in by_cos.indices[0]:
        ax_pts.plot([0, points[idx, 0]], [0, points[idx, 1]], color=VERMILION, lw=1.5, alpha=0.8, zorder=1)
    ax_pts.scatter(
        *points[by_cos.indices[0]].T,
        s=260,
        facecolors="none",
        edgecolors=VERMILION,
        linewidths=2.5,
        label=f"top-{k} cosine (same direction)",
        zorder=3,
    )
    ax_pts.scatter(
        *points[by_euc.indices[0]].T,
        s=200,
        marker="s",
        facecolors="none",
        edgecolors=BLUE,
        linewidths=2.5,
        label=f"top-{k} Euclidean (close by)",
        zorder=3,
    )
    radius = by_euc.scores[0, -1]
    circle_t = np.linspace(0, 2 * np.pi, 200)
    ax_pts.plot(query[0] + radius * np.cos(circle_t), query[1] + radius * np.sin(circle_t), color=BLUE, lw=1.2, ls="--")
    ax_pts.set_aspect("equal")
    ax_pts.set_xlim(-3.3, 3.3)
    ax_pts.set_ylim(-3.3, 3.3)
    ax_pts.set_xlabel("dimension 1")
    ax_pts.set_ylabel("dimension 2")
    ax_pts.set_title("Nearest neighbours: direction vs distance")
    ax_pts.legend(loc="lower left")

    names = ["a", "2a", "b", "-a", "c", "0"]
    a, b, c = np.array([2.0, 1.0]), np.array([1.0, 2.0]), np.array([-1.0, 2.0])
    named = np.stack([a, 2 * a, b, -a, c, np.zeros(2)])  # (6, 2)
    sim = vectors.pairwise_cosine_similarity(named, named)
    image = ax_mat.imshow(sim, cmap="RdBu_r", vmin=-1, vmax=1)
    for i in range(len(names)):
        for j in range(len(names)):
            ax_mat.text(
                j,
                i,
                f"{sim[i, j]:.2f}",
                ha="center",
                va="center",
                fontsize=12,
                color="white" if abs(sim[i, j]) > 0.6 else BLACK,
            )
    ticks = [f"{n} = ({v[0]:g}, {v[1]:g})" if n in ("a", "b", "c") else n for n, v in zip(names, named)]
    ax_mat.set_xticks(range(len(names)), names)
    ax_mat.set_yticks(range(len(names)), ticks)
    ax_mat.grid(False)
    ax_mat.set_title("Cosine similarity (zero vector -> 0)")
    ax_mat.set_xlabel("key vector")
    ax_mat.set_ylabel("query vector")
    fig.colorbar(image, ax=ax_mat, shrink=0.8, label="cos(angle)")
    return fig


# --- regularisation and weight decay ---------------------------------------------------------


@_styled
def figure_regularization(num_alphas: int = 40, seed: int = 0):
    """How L2 (ridge) and L1 (lasso) shrink weights, and how that meets AdamW.

    Top: coefficient paths against the penalty on one synthetic data set (6
    correlated features, 4 informative); ridge shrinks all weights smoothly, lasso
    sets them to exactly 0 one by one. Bottom: a computed example
    (`optimizers.weight_decay_demo`): with SGD an L2 gradient and decoupled weight
    decay are the same update; with Adam they are not, and AdamW restores the
    uniform shrinkage.

    Args:
        num_alphas: penalty values per path.
        seed: data seed.
    Returns:
        A matplotlib `Figure`.
    """
    X, y, true_coef = regression.make_regression_data(
        n_samples=60, n_features=6, n_informative=4, noise=1.0, correlation=0.5, seed=seed
    )
    colors = [BLUE, VERMILION, GREEN, PINK, ORANGE, SKY]
    alpha_max = regression.lasso_alpha_max(X, y)
    lasso_alphas = np.logspace(np.log10(alpha_max) - 3, np.log10(alpha_max) + 0.2, num_alphas)
    lasso_path = regression.regularization_path(X, y, lasso_alphas, penalty="lasso", tol=1e-8, max_iter=5000)
    ridge_alphas = np.logspace(-2, 5, num_alphas)
    ridge_path = regression.regularization_path(X, y, ridge_alphas, penalty="ridge")
    demo = optimizers.weight_decay_demo()

    fig = _new_figure(14.0, 10.5)
    (ax_ridge, ax_lasso), (ax_sgd, ax_adam) = fig.subplots(2, 2)
    for ax, alphas, path, title, xlabel in (
        (
            ax_ridge,
            ridge_alphas,
            ridge_path,
            "Ridge (L2): every weight shrinks smoothly",
            r"penalty $\alpha$ in $\|y-Xw\|^2 + \alpha\|w\|_2^2$",
        ),
        (
            ax_lasso,
            lasso_alphas,
            lasso_path,
            "Lasso (L1): weights hit exactly 0",
            r"penalty $\alpha$ in $\frac{1}{2n}\|y-Xw\|^2 + \alpha\|w\|_1$",
        ),
    ):
        for j in range(path.shape[1]):
            label = f"$w_{j + 1}$ (true {true_coef[j]:+.2g})"
            ax.plot(alphas, path[:, j], color=colors[j], label=label)
        ax.set_xscale("log")
        ax.axhline(0, color="0.3", lw=1)
        ax.set_title(title)
        ax.set_xlabel(xlabel)
        ax.set_ylabel("fitted weight")
    ax_lasso.axvline(alpha_max, color="0.3", ls="--", lw=1.2)
    ax_lasso.text(
        alpha_max * 1.12, 1.5, r"$\alpha_{max}$: all weights 0", rotation=90, ha="left", va="center", fontsize=12
    )
    ax_ridge.legend(loc="upper right", ncol=2, fontsize=10.5)

    steps = np.arange(demo.sgd_l2.shape[0])
    gap = np.max(np.abs(demo.sgd_l2 - demo.sgd_decoupled))
    even = steps[::2]  # the data gradient flips sign every step; every 2nd step hides the zig-zag
    for j, color in enumerate((BLUE, SKY)):
        label = f"L2 gradient, weight with gradient size {demo.gradient_scales[j]:g}"
        ax_sgd.plot(even, demo.sgd_l2[::2, j], color=color, lw=5 - 2 * j, label=label)
    ax_sgd.plot(
        even, demo.sgd_decoupled[::2, 0], color=BLACK, ls=(0, (2, 3)), lw=1.8, label="decoupled decay (both weights)"
    )
    ax_sgd.plot(even, demo.sgd_decoupled[::2, 1], color=BLACK, ls=(0, (2, 3)), lw=1.8)
    ax_sgd.set_title("SGD: L2 penalty = weight decay")
    ax_sgd.set_xlabel("step (every 2nd shown)")
    ax_sgd.set_ylabel("weight value")
    ax_sgd.text(
        0.97,
        0.97,
        rf"$w \leftarrow w - \eta(g + \lambda w) = (1-\eta\lambda)\,w - \eta g$"
        "\n"
        rf"$\eta$={demo.lr_sgd:g}, $\lambda$={demo.weight_decay:g}; max |difference| = {gap:.1e}",
        transform=ax_sgd.transAxes,
        ha="right",
        va="top",
        fontsize=12,
        bbox=dict(boxstyle="round", facecolor="white", edgecolor="0.7"),
    )
    ax_sgd.legend(loc="lower left", fontsize=10.5)
    ax_sgd.set_ylim(-0.05, 1.25)

    ax_adam.plot(steps, demo.adamw[:, 0], color=PINK, label=f"AdamW, gradient size {demo.gradient_scales[0]:g}")
    ax_adam.plot(
        steps, demo.adamw[:, 1], color=PINK, ls="--", label=f"AdamW, gradient size {demo.gradient_scales[1]:g}"
    )
    ax_adam.plot(
        steps, demo.adam_l2[:, 0], color=VERMILION, label=f"Adam + L2, gradient size {demo.gradient_scales[0]:g}"
    )
    ax_adam.plot(
        steps,
        demo.adam_l2[:, 1],
        color=VERMILION,
        ls="--",
        label=f"Adam + L2, gradient size {demo.gradient_scales[1]:g}",
    )
    ax_adam.plot(steps, demo.pure_decay[:, 0], color=BLACK, ls=":", lw=1.8, label=r"$(1-\eta\lambda)^t$")
    ax_adam.set_title("Adam: L2 gradient $\\neq$ decoupled decay (AdamW)")
    ax_adam.set_xlabel("step")
    ax_adam.set_ylabel("weight value")
    ax_adam.text(
        0.97,
        0.97,
        r"Adam+L2 divides $\lambda w$ by $\sqrt{\hat v}\approx$ gradient size;"
        "\n"
        rf"AdamW shrinks all weights by $(1-\eta\lambda)$ per step"
        "\n"
        rf"$\eta$={demo.lr_adam:g}, $\lambda$={demo.weight_decay:g}",
        transform=ax_adam.transAxes,
        ha="right",
        va="top",
        fontsize=12,
        bbox=dict(boxstyle="round", facecolor="white", edgecolor="0.7"),
    )
    ax_adam.legend(loc="lower left", fontsize=10.5)
    ax_adam.set_ylim(-0.05, 1.25)
    fig.suptitle("Shrinking weights: L2 and L1 penalties, and weight decay in AdamW")
    return fig


# --- activations ---------------------------------------------------------------------------


@_styled
def figure_activations(x_range: tuple[float, float] = (-4.0, 4.0)):
    """The activation functions (left) and their derivatives (right).

    Args:
        x_range: input interval to plot.
    Returns:
        A matplotlib `Figure`.
    """
    x = np.linspace(*x_range, 801)
    styles = {
        "relu": (BLUE, "-", "ReLU"),
        "gelu": (VERMILION, "-", "GELU (exact, erf)"),
        "gelu_tanh": (BLACK, (0, (1.5, 2.5)), "GELU (tanh approx.)"),
        "tanh": (GREEN, "-", "tanh"),
        "sigmoid": (ORANGE, "-", "sigmoid"),
        "silu": (PINK, "-", "SiLU / Swish"),
    }
    fig = _new_figure(14.0, 6.0)
    ax_f, ax_d = fig.subplots(1, 2)
    for name, (function, derivative) in activations.ACTIVATIONS.items():
        color, ls, label = styles[name]
        ax_f.plot(x, function(x), color=color, ls=ls, label=label)
        slope = derivative(x)
        if name == "relu":
            slope = np.where(x == 0, np.nan, slope)  # break the line at the jump instead of drawing a wall
        ax_d.plot(x, slope, color=color, ls=ls, label=label)
    for ax in (ax_f, ax_d):
        ax.axhline(0, color="0.3", lw=1)
        ax.axvline(0, color="0.3", lw=1)
        ax.set_xlabel("input x")
    ax_f.set_ylim(-1.5, 4.0)
    ax_d.set_ylim(-0.3, 1.35)
    ax_f.set_ylabel("f(x)")
    ax_d.set_ylabel("f'(x)")
    ax_f.set_title("Activation functions")
    ax_d.set_title("Their derivatives (what backprop multiplies by)")
    ax_f.legend(loc="upper left")
    fig.suptitle("Non-linearities: ReLU, GELU, tanh, sigmoid, SiLU")
    return fig


# --- optimizers on surfaces ----------------------------------------------------------------

# Per surface: steps and each optimizer's settings (each near its best on that surface).
SURFACE_RUNS = {
    "quadratic": dict(
        steps=80,
        optimizers={
            "gd": dict(lr=0.038),  # just under the stability limit 2 / 50
            "momentum": dict(lr=0.03, momentum=0.7),
            "adam": dict(lr=0.3),
            "adamw": dict(lr=0.3, weight_decay=0.1),
        },
    ),
    "rosenbrock": dict(
        steps=1500,
        optimizers={
            "gd": dict(lr=0.0015),
            "momentum": dict(lr=0.0005, momentum=0.9),
            "adam": dict(lr=0.05),
            "adamw": dict(lr=0.05, weight_decay=0.1),
        },
    ),
}


def surface_trajectories(name: str) -> tuple[surfaces.Surface, dict[str, optimizers.Trajectory]]:
    """Run GD, momentum, Adam and AdamW on a named surface with the lab's settings.

    Args:
        name: "quadratic" or "rosenbrock" (settings in `SURFACE_RUNS`).
    Returns:
        (surface, {optimizer name: Trajectory}).
    """
    surface = surfaces.get_surface(name)
    settings = SURFACE_RUNS[name]
    runs = {
        opt_name: optimizers.run_on_surface(surface, opt_name, steps=settings["steps"], **options)
        for opt_name, options in settings["optimizers"].items()
    }
    return surface, runs


def _label(run: optimizers.Trajectory, surface_name: str) -> str:
    options = SURFACE_RUNS[surface_name]["optimizers"][run.name]
    parts = [f"lr {options['lr']:g}"]
    if "momentum" in options:
        parts.append(f"$\\beta$ {options['momentum']:g}")
    if options.get("weight_decay"):
        parts.append(f"wd {options['weight_decay']:g}")
    label = f"{OPTIMIZER_STYLE[run.name][1]} ({', '.join(parts)})"
    return label + (" - diverged" if run.diverged else "")


def _contours(ax, surface: surfaces.Surface, num: int = 240, xlim=None, ylim=None) -> None:
    xlim = surface.xlim if xlim is None else xlim
    ylim = surface.ylim if ylim is None else ylim
    w1, w2, z = surface.grid(num, xlim, ylim)
    if surface.log_contours:
        levels = np.logspace(np.log10(max(z.min(), 1e-3)), np.log10(z.max()), 25)
        from matplotlib.colors import LogNorm

        ax.contourf(w1, w2, z, levels=levels, norm=LogNorm(), cmap="Greys_r", alpha=0.45)
        ax.contour(w1, w2, z, levels=levels, norm=LogNorm(), colors="0.45", linewidths=0.6)
    else:
        levels = np.linspace(0, np.percentile(z, 90), 20)
        ax.contourf(w1, w2, z, levels=levels, cmap="Greys_r", alpha=0.45, extend="max")
        ax.contour(w1, w2, z, levels=levels, colors="0.45", linewidths=0.6)
    ax.plot(*surface.minimum, marker="*", ms=20, color=YELLOW, mec=BLACK, mew=1.2, ls="none", zorder=6, label="minimum")
    ax.set_xlim(xlim)
    ax.set_ylim(ylim)
    ax.set_xlabel("weight $w_1$")
    ax.set_ylabel("weight $w_2$")
    ax.grid(False)


def _paths(ax, runs: dict[str, optimizers.Trajectory], surface_name: str, every: int = 1) -> None:
    for run in runs.values():
        color = OPTIMIZER_STYLE[run.name][0]
        pts = run.points
        ax.plot(
            pts[:, 0],
            pts[:, 1],
            color=color,
            lw=2.0,
            label=_label(run, surface_name),
            zorder=4,
            marker="o",
            ms=2.5,
            markevery=every,
        )
        ax.plot(*pts[-1], marker="o", ms=8, color=color, mec=BLACK, zorder=5)
    start = next(iter(runs.values())).points[0]
    ax.plot(*start, marker="X", ms=13, color="white", mec=BLACK, mew=1.5, ls="none", zorder=6, label="start")


@_styled
def figure_optimizer_paths():
    """Trajectories of GD, momentum, Adam and AdamW over two loss landscapes.

    Left: the ill-conditioned quadratic (GD zig-zags across the valley, momentum
    and Adam cross it). Right: Rosenbrock's curved valley. Contours are loss levels.

    Returns:
        A matplotlib `Figure`.
    """
    fig = _new_figure(15.0, 6.6)
    axes = fig.subplots(1, 2, gridspec_kw={"width_ratios": [1.25, 1]})
    for ax, name in zip(axes, ("quadratic", "rosenbrock")):
        surface, runs = surface_trajectories(name)
        _contours(ax, surface)
        _paths(ax, runs, name, every=1 if name == "quadratic" else 25)
        steps = SURFACE_RUNS[name]["steps"]
        ax.set_title(f"{surface.name}, {steps} steps", fontsize=14)
        if name == "quadratic":
            ax.set_aspect("equal")
        ax.legend(loc="lower right" if name == "quadratic" else "lower left", fontsize=10)
        if name == "rosenbrock":
            end = runs["adamw"].points[-1]
            ax.annotate(
                "AdamW stops short:\nweight decay pulls\ntowards (0, 0)",
                xy=end,
                xytext=(0.35, -0.55),
                fontsize=11,
                arrowprops=dict(arrowstyle="->", color=PINK, lw=1.5),
                color=BLACK,
                bbox=dict(boxstyle="round", facecolor="white", edgecolor=PINK),
            )
    fig.suptitle("Optimizers on 2-D loss surfaces")
    return fig


@_styled
def figure_loss_curves():
    """Loss against step for each optimizer on both surfaces (log scale).

    Returns:
        A matplotlib `Figure`.
    """
    fig = _new_figure(14.0, 5.8)
    axes = fig.subplots(1, 2)
    for ax, name in zip(axes, ("quadratic", "rosenbrock")):
        surface, runs = surface_trajectories(name)
        for run in runs.values():
            losses = run.losses - float(surface.loss(surface.minimum))
            ax.plot(
                np.arange(losses.size),
                np.maximum(losses, 1e-16),
                color=OPTIMIZER_STYLE[run.name][0],
                label=_label(run, name),
            )
        ax.set_yscale("log")
        ax.set_xlabel("step")
        ax.set_ylabel("loss - minimum loss")
        ax.set_title(surface.name, fontsize=14)
        ax.legend(loc="lower left", fontsize=10.5)
    fig.suptitle("Loss vs step: same start, each optimizer at its own learning rate")
    return fig


# --- mini-batch SGD ------------------------------------------------------------------------


def minibatch_problem(n_samples: int = 200, seed: int = 0) -> surfaces.LeastSquaresSurface:
    """The two-weight least-squares problem of the SGD figure (correlated features, noise).

    Args:
        n_samples: N.
        seed: NumPy seed.
    Returns:
        A `LeastSquaresSurface`.
    """
    X, y, _ = regression.make_regression_data(n_samples=n_samples, n_features=2, noise=1.0, correlation=0.6, seed=seed)
    return surfaces.least_squares_surface(X, y)


def _moving_average(values: np.ndarray, window: int) -> np.ndarray:
    """Trailing mean over `window` steps (shorter at the start); same length as `values`."""
    sums = np.cumsum(np.insert(values, 0, 0.0))
    counts = np.minimum(np.arange(1, values.size + 1), window)
    return (sums[1:] - sums[np.maximum(np.arange(1, values.size + 1) - window, 0)]) / counts


@_styled
def figure_minibatch_sgd(steps: int = 300, lr: float = 0.3, seed: int = 0):
    """Full-batch gradient descent vs mini-batch SGD on a least-squares problem.

    Smaller batches give cheaper but noisier gradients: the path jitters and, at a
    constant learning rate, never settles; decaying the rate (warmup + cosine, the
    schedule used to train every model here) lets SGD settle.

    Args:
        steps: optimizer steps per run.
        lr: learning rate (peak rate for the scheduled run).
        seed: seed of the mini-batch sampling.
    Returns:
        A matplotlib `Figure`.
    """
    from attnlab.schedule import warmup_cosine_lr

    surface = minibatch_problem()
    n = surface.features.shape[0]
    start = surface.minimum + np.array([-3.0, -1.0])  # off both axes of the bowl, so paths curve
    schedule = functools.partial(warmup_cosine_lr, max_lr=lr, min_lr=lr / 100, warmup_iters=5, decay_iters=steps)
    settings = [  # name, batch size, schedule, colour, label, draw the path
        ("gd", None, None, BLUE, f"gradient descent (all {n} rows)", True),
        ("sgd", 32, None, GREEN, "SGD, batch 32", False),
        ("sgd", 4, None, ORANGE, "SGD, batch 4", True),
        ("sgd", 4, schedule, PINK, "SGD, batch 4, warmup-cosine lr", True),
    ]
    runs = [
        (
            optimizers.run_on_surface(
                surface, name, start=start, steps=steps, lr=lr, batch_size=batch, schedule=sched, seed=seed
            ),
            color,
            label,
            draw,
        )
        for name, batch, sched, color, label, draw in settings
    ]
    every = np.concatenate([run.points for run, *_ in runs])  # zoom onto the paths
    low, high = every.min(axis=0), every.max(axis=0)
    pad = 0.08 * float(np.max(high - low))
    xlim, ylim = (low[0] - pad, high[0] + pad), (low[1] - pad, high[1] + pad)

    fig = _new_figure(15.0, 6.4)
    ax_path, ax_loss = fig.subplots(1, 2, gridspec_kw={"width_ratios": [1, 1.1]})
    _contours(ax_path, surface, xlim=xlim, ylim=ylim)
    min_loss = float(surface.loss(surface.minimum))
    window = 15
    for run, color, label, draw in runs:
        if draw:
            ax_path.plot(
                run.points[:, 0], run.points[:, 1], color=color, lw=1.3, marker="o", ms=2.0, label=label, zorder=4
            )
        gap = np.maximum(run.losses - min_loss, 1e-16)
        if run.name == "gd":  # deterministic: nothing to average
            ax_loss.plot(np.arange(gap.size), gap, color=color, lw=2.6, label=label)
            continue
        ax_loss.plot(np.arange(gap.size), gap, color=color, lw=0.9, alpha=0.35)
        smooth = np.exp(_moving_average(np.log(gap), window))  # geometric mean: fair on a log axis
        ax_loss.plot(np.arange(gap.size), smooth, color=color, lw=2.6, label=label)
    ax_path.plot(*start, marker="X", ms=13, color="white", mec=BLACK, mew=1.5, ls="none", zorder=6, label="start")
    ax_path.set_aspect("equal")
    ax_path.set_title("Paths over the mean-squared-error surface", fontsize=14)
    ax_path.legend(loc="upper left", fontsize=10)
    ax_loss.set_yscale("log")
    ax_loss.set_ylim(1e-7, None)
    ax_loss.set_xlabel("step")
    ax_loss.set_ylabel("full-data loss - minimum")
    ax_loss.set_title(f"Loss vs step (peak lr {lr:g}; SGD bold: {window}-step average)", fontsize=14)
    ax_loss.legend(loc="lower left", fontsize=10.5)
    fig.suptitle(f"Mini-batch SGD: noisy gradients on a least-squares problem ({n} samples, 2 weights)")
    return fig


@_styled
def figure_lr_schedule(
    max_lr: float = 6e-4, min_lr: float = 6e-5, warmup_iters: int = 100, decay_iters: int = 1000, total: int = 1200
):
    """The learning-rate schedule every trainer here uses: linear warmup, cosine decay.

    Args:
        max_lr: peak rate after warmup.
        min_lr: floor after `decay_iters`.
        warmup_iters: warmup steps.
        decay_iters: step at which the floor is reached.
        total: steps to plot.
    Returns:
        A matplotlib `Figure`.
    """
    from attnlab.schedule import warmup_cosine_lr

    steps = np.arange(total)
    lrs = [
        warmup_cosine_lr(int(s), max_lr=max_lr, min_lr=min_lr, warmup_iters=warmup_iters, decay_iters=decay_iters)
        for s in steps
    ]
    fig = _new_figure(10.0, 5.0)
    ax = fig.subplots()
    ax.plot(steps, lrs, color=BLUE, label="warmup_cosine_lr")
    ax.axvspan(0, warmup_iters, color=ORANGE, alpha=0.15, label=f"linear warmup ({warmup_iters} steps)")
    ax.axvspan(decay_iters, total, color=GREEN, alpha=0.12, label=f"floor min_lr = {min_lr:g}")
    ax.axhline(max_lr, color="0.4", ls="--", lw=1.2, label=f"peak max_lr = {max_lr:g}")
    ax.set_xlabel("optimizer step")
    ax.set_ylabel("learning rate")
    ax.set_title("Learning-rate schedule: warmup, then cosine decay")
    ax.ticklabel_format(axis="y", style="sci", scilimits=(-3, 3))
    ax.set_ylim(0, max_lr * 1.12)
    ax.legend(loc="center right")
    return fig


# --- writing -----------------------------------------------------------------------------

# file stem -> (builder, also write an SVG). Contour plots stay PNG-only: as SVG they
# are large and slow to render, and gain nothing from being vectors.
FIGURES: dict[str, tuple[Callable, bool]] = {
    "vectors_neighbors": (figure_vectors, False),
    "regularization_paths": (figure_regularization, True),
    "activations": (figure_activations, True),
    "optimizer_paths": (figure_optimizer_paths, False),
    "optimizer_loss_curves": (figure_loss_curves, True),
    "minibatch_sgd": (figure_minibatch_sgd, False),
    "lr_schedule": (figure_lr_schedule, True),
}
assert tuple(FIGURES) == FIGURE_NAMES, "keep attnlab.foundations.FIGURE_NAMES in step with FIGURES"


def save_figure(fig, path: str | os.PathLike, dpi: int = DEFAULT_DPI) -> Path:
    """Write `fig` atomically; the format comes from the suffix (.png, .svg, .pdf).

    Args:
        fig: a matplotlib `Figure`.
        path: destination file.
        dpi: resolution for raster formats.
    Returns:
        The written path.
    """
    from attnlab.utils import atomic_path

    path = Path(path)
    fmt = path.suffix.lstrip(".").lower()
    if not fmt:
        raise ConfigError(f"cannot tell the image format of {path}: give it a suffix such as .png or .svg")
    with projector_style(), atomic_path(path) as tmp:
        # The temporary name ends in .tmp, so the format is passed explicitly.
        fig.savefig(tmp, format=fmt, dpi=dpi, facecolor="white", metadata=output_metadata(fmt))
        # The temporary file is created private (0600); a figure is meant to be shared.
        os.chmod(tmp, 0o644)
    return path


def _check_out_dir(out_dir: str | os.PathLike) -> Path:
    out = Path(out_dir)
    if out.exists() and not out.is_dir():
        raise ConfigError(
            f"--out {out} is an existing file, not a folder; pass a folder path (it is created if missing)"
        )
    try:
        out.mkdir(parents=True, exist_ok=True)
    except OSError as e:
        raise ConfigError(
            f"cannot create the output folder {out} ({e.strerror}); choose a writable path for --out"
        ) from e
    if not os.access(out, os.W_OK):
        raise ConfigError(f"the output folder {out} is not writable; choose another path for --out")
    return out


@writes_run("figures")
def write_all_figures(
    out_dir: str | os.PathLike,
    dpi: int = DEFAULT_DPI,
    svg: bool = True,
    names: Iterable[str] | None = None,
    on_written: Callable[[Path], None] | None = None,
) -> list[Path]:
    """Write the foundations figures into a folder.

    Args:
        out_dir: folder, created if missing.
        dpi: PNG resolution.
        svg: also write an SVG of the line plots.
        names: subset of `FIGURES` to write (default: all).
        on_written: called with each path as soon as it is written (the CLI prints
            it, so a learner sees progress).
    Returns:
        The paths written, in order.
    Raises:
        ConfigError: `out_dir` is a file or cannot be created; unknown figure name; bad dpi.
    """
    if isinstance(dpi, bool) or not isinstance(dpi, (int, np.integer)) or not 20 <= dpi <= 1200:
        raise ConfigError(f"dpi must be an integer between 20 and 1200, got {dpi!r}")
    selected = list(FIGURES) if names is None else list(names)
    unknown = [n for n in selected if n not in FIGURES]
    if unknown:
        raise ConfigError(f"unknown figure(s) {', '.join(unknown)}; choose from {', '.join(FIGURES)}")
    out = _check_out_dir(out_dir)
    written = []
    for name in selected:
        build, with_svg = FIGURES[name]
        fig = build()
        targets = [out / f"{name}.png"] + ([out / f"{name}.svg"] if svg and with_svg else [])
        for target in targets:
            written.append(save_figure(fig, target, dpi=dpi))
            if on_written is not None:
                on_written(target)
        logger.debug("wrote %s", name)
    return written

"""Scaling-study figures: loss against parameters, tokens and compute, with a fitted law.

The rows are those of a study's runs.csv (`attnlab.train.scale`): each with `params` (N,
non-embedding), `tokens` (D), `flops` (6ND), `val_loss`, `size` and `token_budget`. The law,
when given, is any object with `predict(N, D)` and `compute_optimal(C) -> (N, D, L)` (a
fitted `attnlab.train.scaling_law.ScalingLaw`); its curves are drawn dashed. Runs of several
seeds at one grid point are drawn as their mean with a bar from the lowest to the highest.

Figures follow Hoffmann et al. 2022 (fig. 2 and 4) and Kaplan et al. 2020 (fig. 1).
"""

from __future__ import annotations

import os
from collections import defaultdict
from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np

from attnlab.errors import DataError
from attnlab.viz._mpl import BLACK, DEFAULT_DPI, PALETTE, finish, new_figure, styled

__all__ = ["plot_loss_vs_compute", "plot_loss_vs_params", "plot_loss_vs_tokens", "pareto_frontier"]


def _check(rows: Sequence[Mapping[str, Any]]) -> None:
    if not rows:
        raise DataError("no runs to draw: the scaling study has no finished runs yet")


def _grouped(rows: Sequence[Mapping[str, Any]], key: str, x: str) -> dict[Any, list[tuple[float, float, float, float]]]:
    """key value -> [(x, mean loss, lowest, highest)] sorted by x, seeds pooled at each x."""
    cells: dict[Any, dict[float, list[float]]] = defaultdict(lambda: defaultdict(list))
    for r in rows:
        cells[r[key]][float(r[x])].append(float(r["val_loss"]))
    out = {}
    for k in sorted(cells, key=lambda k: min(cells[k])):
        out[k] = [(xv, float(np.mean(v)), min(v), max(v)) for xv, v in sorted(cells[k].items())]
    return out


def _draw_groups(ax: Any, groups: dict[Any, list[tuple[float, float, float, float]]], label: Any) -> list[str]:
    colours = []
    for i, (k, points) in enumerate(groups.items()):
        colour = PALETTE[i % len(PALETTE)]
        xs, ys, lo, hi = (np.array(c) for c in zip(*points))
        ax.errorbar(xs, ys, yerr=[ys - lo, hi - ys], color=colour, marker="o", ms=7, lw=2.4, capsize=3, label=label(k))
        colours.append(colour)
    return colours


def _budget_label(tokens: Any) -> str:
    t = int(tokens)
    if t % 1_000_000 == 0:
        return f"D = {t // 1_000_000}M tokens"
    if t % 1_000 == 0:
        return f"D = {t // 1_000}k tokens"
    return f"D = {t:,} tokens"


def _log_span(values: Sequence[float], pad: float = 1.3) -> np.ndarray:
    low, high = min(values) / pad, max(values) * pad
    return np.geomspace(low, high, 100)


def _finish_axes(ax: Any, xlabel: str, title: str) -> None:
    ax.set_xscale("log")  # the loss on a linear axis, as in Hoffmann et al.'s figures
    ax.set_xlabel(xlabel)
    ax.set_ylabel("validation loss (nats/token)")
    ax.set_title(title)
    ax.grid(True, which="both", alpha=0.3)


@styled
def plot_loss_vs_params(
    rows: Sequence[Mapping[str, Any]], law: Any = None, out: str | os.PathLike | None = None, *, dpi: int = DEFAULT_DPI
):
    """Final loss against non-embedding parameters N, one line a token budget (the fitted law dashed).

    Returns:
        The figure when `out` is None, else the written path.
    """
    _check(rows)
    key = "token_budget" if all("token_budget" in r for r in rows) else "tokens"
    groups = _grouped(rows, key, "params")
    fig = new_figure(10, 6.5)
    ax = fig.subplots()
    colours = _draw_groups(ax, groups, _budget_label)
    if law is not None:
        n = _log_span([float(r["params"]) for r in rows])
        for colour, k in zip(colours, groups):
            d = np.mean([float(r["tokens"]) for r in rows if r[key] == k])
            ax.plot(n, law.predict(n, d), color=colour, ls="--", lw=1.6, alpha=0.8)
        ax.plot([], [], color=BLACK, ls="--", lw=1.6, label="fitted L(N, D)")
    _finish_axes(ax, "non-embedding parameters N", "Loss vs model size, at each token budget")
    ax.legend(fontsize=11)
    return finish(fig, out, dpi)


@styled
def plot_loss_vs_tokens(
    rows: Sequence[Mapping[str, Any]], law: Any = None, out: str | os.PathLike | None = None, *, dpi: int = DEFAULT_DPI
):
    """Final loss against training tokens D, one line a model size (the fitted law dashed).

    Returns:
        The figure when `out` is None, else the written path.
    """
    _check(rows)
    params = {r["size"]: float(r["params"]) for r in rows}
    groups = _grouped(rows, "size", "tokens")
    groups = dict(sorted(groups.items(), key=lambda kv: params[kv[0]]))
    fig = new_figure(10, 6.5)
    ax = fig.subplots()
    colours = _draw_groups(ax, groups, lambda s: f"{s} (N = {params[s]:,.0f})")
    if law is not None:
        d = _log_span([float(r["tokens"]) for r in rows])
        for colour, size in zip(colours, groups):
            ax.plot(d, law.predict(params[size], d), color=colour, ls="--", lw=1.6, alpha=0.8)
        ax.plot([], [], color=BLACK, ls="--", lw=1.6, label="fitted L(N, D)")
    _finish_axes(ax, "training tokens D", "Loss vs data, for each model size")
    ax.legend(fontsize=11)
    return finish(fig, out, dpi)


def pareto_frontier(flops: Sequence[float], losses: Sequence[float]) -> list[int]:
    """Indices of the runs on the measured compute-optimal frontier, by compute.

    A run is on it when no run of less (or equal) compute reached a lower loss.
    """
    order = np.argsort(np.asarray(flops, dtype=float), kind="stable")
    best, keep = np.inf, []
    for i in order:
        if losses[i] < best:
            best = float(losses[i])
            keep.append(int(i))
    return keep


@styled
def plot_loss_vs_compute(
    rows: Sequence[Mapping[str, Any]],
    law: Any = None,
    out: str | os.PathLike | None = None,
    *,
    held_out: Any = None,
    dpi: int = DEFAULT_DPI,
):
    """Final loss against training compute C = 6ND: every run, the measured and fitted frontiers.

    Each size's runs are joined in order of compute; the measured frontier joins the runs
    that no cheaper run beats; the fitted one is `law.compute_optimal(C)`'s loss (Hoffmann
    et al. eq. 4). With `held_out` (an `attnlab.train.scaling_law.HeldOut`), the held-out
    run's predicted loss is drawn beside its measured one.

    Returns:
        The figure when `out` is None, else the written path.
    """
    _check(rows)
    params = {r["size"]: float(r["params"]) for r in rows}
    groups = _grouped(rows, "size", "flops")
    groups = dict(sorted(groups.items(), key=lambda kv: params[kv[0]]))
    fig = new_figure(10, 6.5)
    ax = fig.subplots()
    for i, (size, points) in enumerate(groups.items()):
        xs, ys, _, _ = zip(*points)
        ax.plot(xs, ys, color=PALETTE[i % len(PALETTE)], marker="o", ms=7, lw=1.6, alpha=0.85, label=size)
    flops = [float(r["flops"]) for r in rows]
    losses = [float(r["val_loss"]) for r in rows]
    front = pareto_frontier(flops, losses)
    ax.plot(
        [flops[i] for i in front],
        [losses[i] for i in front],
        color=BLACK,
        lw=3,
        alpha=0.35,
        zorder=0,
        label="measured frontier",
    )
    if law is not None:
        c = _log_span(flops)
        _, _, l_opt = law.compute_optimal(c)
        if np.all(np.isfinite(l_opt)):
            ax.plot(c, l_opt, color=BLACK, ls="--", lw=2, label="fitted compute-optimal L(C)")
    if held_out is not None:
        c_held = 6 * held_out.params * held_out.tokens
        ax.scatter(
            [c_held], [held_out.predicted], marker="*", s=320, color=BLACK, zorder=5, label="held-out run: predicted"
        )
        ax.scatter(
            [c_held],
            [held_out.measured],
            marker="o",
            s=180,
            facecolors="none",
            edgecolors=BLACK,
            linewidths=2,
            zorder=5,
            label=f"held-out run: measured ({held_out.relative_error:+.1%})",
        )
    _finish_axes(ax, "training compute C = 6ND (FLOPs)", "Loss vs compute, and the compute-optimal frontier")
    ax.legend(fontsize=10, ncol=2)
    return finish(fig, out, dpi)

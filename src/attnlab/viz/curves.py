"""Training curves: train and validation loss (or any logged metric) of one run or several.

A run is what `attnlab.train.trainer.Trainer` writes into its folder: `metrics.jsonl`,
one JSON record per logged step, with at least `step` and usually `train_loss`, `lr`,
`grad_norm`, `tokens`, `elapsed` and, at evaluations, `val_loss` (and other `val_*`).
Activation-function figures are the foundations lab's (`plot_activations` here
reuses `attnlab.foundations.figures.figure_activations`).
"""

from __future__ import annotations

import math
import os
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from attnlab.errors import ConfigError, DataError
from attnlab.viz._mpl import DEFAULT_DPI, PALETTE, finish, new_figure, styled

X_AXES = {  # --x choice -> (record key, axis label)
    "step": ("step", "optimizer step"),
    "tokens": ("tokens", "tokens seen"),
    "time": ("elapsed", "training time (s)"),
}


def _points(records: Sequence[Mapping[str, Any]], x_key: str, y_key: str) -> list[tuple[float, float]]:
    points = []
    for r in records:
        x, y = r.get(x_key), r.get(y_key)
        if isinstance(x, (int, float)) and isinstance(y, (int, float)) and math.isfinite(y):
            points.append((float(x), float(y)))
    return points


def _x_axis(x: str) -> tuple[str, str]:
    if x not in X_AXES:
        raise ConfigError(f"unknown x axis {x!r}; choose one of {', '.join(X_AXES)}")
    return X_AXES[x]


@styled
def plot_loss_curves(
    runs: Mapping[str, Sequence[Mapping[str, Any]]],
    out: str | os.PathLike | None = None,
    *,
    title: str = "Training and validation loss",
    log_y: bool = False,
    x: str = "step",
    dpi: int = DEFAULT_DPI,
):
    """Train (thin line) and validation (markers) loss of one or several runs, one colour a run.

    Args:
        runs: run label -> metrics records (the lines of metrics.jsonl).
        out: file to write (PNG/SVG/PDF); None returns the figure instead.
        title: figure title.
        log_y: logarithmic loss axis.
        x: "step", "tokens" or "time".
        dpi: PNG resolution.
    Returns:
        The figure when `out` is None, else the written path (a run without loss values
        yet gives a figure that says so, so a training script never fails here).
    """
    x_key, x_label = _x_axis(x)
    fig = new_figure(10, 6)
    ax = fig.subplots()
    drawn = 0
    for i, (label, records) in enumerate(runs.items()):
        color = PALETTE[i % len(PALETTE)]
        train = _points(records, x_key, "train_loss")
        val = _points(records, x_key, "val_loss")
        prefix = f"{label}: " if len(runs) > 1 else ""
        if train:
            ax.plot(*zip(*train), color=color, alpha=0.6, lw=1.6, label=f"{prefix}train")
        if val:
            ax.plot(*zip(*val), color=color, marker="o", ms=6, lw=2.6, label=f"{prefix}validation")
        drawn += bool(train or val)
    if not drawn:
        ax.text(0.5, 0.5, "no loss values logged yet", ha="center", va="center", transform=ax.transAxes, fontsize=16)
    ax.set_xlabel(x_label)
    ax.set_ylabel("cross-entropy loss (nats/token)")
    if log_y:
        ax.set_yscale("log")
    ax.set_title(title)
    if drawn:
        ax.legend()
    return finish(fig, out, dpi)


@styled
def plot_metric_curves(
    runs: Mapping[str, Sequence[Mapping[str, Any]]],
    metric: str,
    out: str | os.PathLike | None = None,
    *,
    title: str = "",
    log_y: bool = False,
    x: str = "step",
    dpi: int = DEFAULT_DPI,
):
    """One logged metric (e.g. lr, grad_norm, val_accuracy) of one or several runs.

    Args:
        runs: run label -> metrics records.
        metric: the record key to draw.
        out: file to write; None returns the figure.
        title: figure title (default: the metric's name).
        log_y: logarithmic y axis.
        x: "step", "tokens" or "time".
        dpi: PNG resolution.
    Raises:
        DataError: no run logged `metric` (the message lists the metrics that exist).
    """
    x_key, x_label = _x_axis(x)
    fig = new_figure(10, 6)
    ax = fig.subplots()
    drawn = 0
    for i, (label, records) in enumerate(runs.items()):
        points = _points(records, x_key, metric)
        if points:
            ax.plot(
                *zip(*points), color=PALETTE[i % len(PALETTE)], marker="o" if len(points) < 30 else None, label=label
            )
            drawn += 1
    if not drawn:
        available = sorted(
            {k for records in runs.values() for r in records for k, v in r.items() if isinstance(v, (int, float))}
        )
        raise DataError(f"no run logged {metric!r}; logged metrics: {', '.join(available) or 'none'}")
    ax.set_xlabel(x_label)
    ax.set_ylabel(metric)
    if log_y:
        ax.set_yscale("log")
    ax.set_title(title or f"{metric} during training")
    ax.legend()
    return finish(fig, out, dpi)


def read_runs(
    run_dirs: Sequence[str | os.PathLike], labels: Sequence[str] | None = None
) -> dict[str, list[dict[str, Any]]]:
    """label -> metrics records for each run folder (via `attnlab.runs.read_metrics`).

    Args:
        run_dirs: run folders (each with a metrics.jsonl).
        labels: one label per run (default: the folder names, made unique).
    Raises:
        DataError: a folder is missing or has no metrics; wrong number of labels.
    """
    from attnlab.runs import METRICS_FILE, read_metrics

    if not run_dirs:
        raise ConfigError("give at least one run folder")
    if labels is not None and len(labels) != len(run_dirs):
        raise ConfigError(f"got {len(labels)} labels for {len(run_dirs)} runs; give one label per run")
    runs: dict[str, list[dict[str, Any]]] = {}
    for n, folder in enumerate(run_dirs):
        path = Path(folder)
        if not path.is_dir():
            raise DataError(f"run folder {str(path)!r} does not exist; pass the --out folder of `attnlab train`")
        records = read_metrics(path)
        if not records:
            raise DataError(f"{str(path)!r} has no {METRICS_FILE} records; is it the folder of a training run?")
        label = labels[n] if labels is not None else (path.resolve().name or str(path))
        while label in runs:  # two folders with the same name
            label = f"{label} ({n + 1})"
        runs[label] = records
    return runs


def plot_runs(
    run_dirs: Sequence[str | os.PathLike],
    out: str | os.PathLike | None = None,
    *,
    labels: Sequence[str] | None = None,
    metric: str = "loss",
    log_y: bool = False,
    x: str = "step",
    title: str = "",
    dpi: int = DEFAULT_DPI,
):
    """Curves of run folders overlaid: `metric="loss"` draws train + validation loss.

    Args:
        run_dirs: run folders.
        out: file to write; None returns the figure.
        labels: legend labels (default folder names).
        metric: "loss" or any logged metric key (lr, grad_norm, val_accuracy ...).
        log_y: logarithmic y axis.
        x: "step", "tokens" or "time".
        title: figure title.
        dpi: PNG resolution.
    """
    runs = read_runs(run_dirs, labels)
    if metric == "loss":
        x_key = _x_axis(x)[0]
        for label, records in runs.items():
            if not (_points(records, x_key, "train_loss") or _points(records, x_key, "val_loss")):
                raise DataError(f"run {label!r} logged no train_loss or val_loss against {x_key}; nothing to draw")
        return plot_loss_curves(runs, out, title=title or "Training and validation loss", log_y=log_y, x=x, dpi=dpi)
    return plot_metric_curves(runs, metric, out, title=title, log_y=log_y, x=x, dpi=dpi)


def plot_activations(
    out: str | os.PathLike | None = None, *, x_range: tuple[float, float] = (-4.0, 4.0), dpi: int = DEFAULT_DPI
):
    """The activation functions and their derivatives (the foundations lab's figure).

    Args:
        out: file to write; None returns the figure.
        x_range: input interval.
        dpi: PNG resolution.
    """
    from attnlab.foundations.figures import figure_activations

    low, high = x_range
    if not (math.isfinite(low) and math.isfinite(high) and low < high):
        raise ConfigError(f"the x range must be two finite numbers, low < high; got {low} {high}")
    return finish(figure_activations((float(low), float(high))), out, dpi)


__all__ = ["X_AXES", "plot_activations", "plot_loss_curves", "plot_metric_curves", "plot_runs", "read_runs"]

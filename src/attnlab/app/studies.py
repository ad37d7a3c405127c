"""What the Scale & transfer page shows: the finished study folders in the runs folder, read back.

A study folder is one that `attnlab scale` (`attnlab.train.scale.run_scaling_study`) or
`attnlab transfer` (`attnlab.train.transfer.run_transfer_study`) wrote: its `run.json`
marker names the command, and it holds `runs.csv` (written after every run), then, once the
study finished, `report.md`, `results.json` and the figures. `find_studies` lists them (with
the same walk and symlink rules as the checkpoint pickers, `attnlab.app.runs_folder`);
`load_study` reads one back: its settings and headline numbers from `results.json`, its table
from the CSVs, its report and its figures. A figure whose PNG is missing or damaged is drawn
again from the CSVs. A folder that is half written (the study still running, or stopped before
its end) or damaged raises a `DataError` that says so and what to do; the page shows it as a
message, never a traceback. No Streamlit import, so it is unit-tested.
"""

from __future__ import annotations

import json
import os
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from attnlab.app.runs_folder import MAX_SEARCH_DEPTH, resolve_in_runs, walk_runs
from attnlab.errors import AttnlabError, DataError
from attnlab.runs import lock_holder, read_marker

KINDS = {"scale": "scaling study", "transfer": "transfer study"}
RESULTS = "results.json"
REPORT = "report.md"
PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"
MAX_REPORT_BYTES = 4 << 20  # a report larger than this is not shown (a study's is a few kB)
FIGURES = {
    "scale": (
        ("loss_vs_params.png", "Loss vs model size N, one line a token budget; the fitted law dashed."),
        ("loss_vs_tokens.png", "Loss vs training tokens D, one line a model size; the fitted law dashed."),
        (
            "loss_vs_compute.png",
            "Every run vs compute C = 6ND: the measured frontier (grey), the fitted compute-optimal frontier "
            "(dashed) and the held-out run's prediction.",
        ),
    ),
    "transfer": (
        (
            "transfer_curves.png",
            "Validation loss on the target vs fine-tuning steps, one panel a target size: fine-tuned (solid) vs "
            "from scratch (dashed), each seed thin, their mean thick.",
        ),
        (
            "transfer_gain.png",
            "Best target loss vs target size for both, and the gain (scratch minus fine-tuned) with the seeds' range.",
        ),
    ),
}


@dataclass
class StudyEntry:
    """A study folder found in the runs folder."""

    relative: str  # path relative to the runs folder (what the picker shows and passes back)
    kind: str  # "scale" or "transfer"
    finished: bool  # results.json is there (the study ran to its end)
    modified: float  # newest modification time of its tables (newest first in lists)
    writer: dict[str, Any] | None = None  # who is writing it right now (attnlab.runs.lock_holder), if anyone

    def label(self) -> str:
        """One line for a picker: folder, kind, state."""
        state = "running now" if self.writer is not None else "finished" if self.finished else "incomplete"
        return f"{self.relative} · {KINDS[self.kind]} · {state}"


@dataclass
class Figure:
    """One figure of a study: PNG bytes (the study's own file, or drawn again from its CSVs)."""

    name: str  # the file name the study writes
    caption: str
    png: bytes
    redrawn: bool = False  # True: the PNG was missing or damaged and was drawn from the CSVs


@dataclass
class StudyView:
    """A finished study, read back for the page."""

    relative: str
    kind: str
    headline: list[tuple[str, str]]  # (label, value) pairs for the page's metrics
    summary: str  # one or two sentences computed from results.json
    report: str  # report.md (markdown tables), "" when missing
    table: list[dict[str, Any]]  # scale: runs.csv; transfer: gains.csv
    runs: list[dict[str, Any]]  # runs.csv
    figures: list[Figure] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)  # what could not be shown, and why


def _kind(folder: Path) -> str | None:
    """ "scale" or "transfer" when the folder is such a study folder (not one of its runs), else None."""
    marker = read_marker(folder)
    command = marker.get("command") if marker else None
    if command not in KINDS:
        return None
    # the runs inside a study are run folders of the same command: a study has its table or its runs/
    if (folder / "runs.csv").is_file() or (folder / "runs").is_dir():
        return command
    return None


def _modified(folder: Path) -> float:
    times = []
    for name in ("runs.csv", RESULTS, "run.json"):
        try:
            times.append((folder / name).stat().st_mtime)
        except OSError:
            continue
    return max(times, default=0.0)


def find_studies(root: Path, max_depth: int = MAX_SEARCH_DEPTH) -> list[StudyEntry]:
    """The scaling and transfer study folders inside the runs folder, newest first.

    Args:
        root: the runs folder (a missing folder gives an empty list).
        max_depth: how deep to look.
    """
    if not root.is_dir():
        return []
    real_root = root.resolve()
    found = []
    for folder in walk_runs(root, max_depth):
        kind = _kind(folder)
        if kind is None:
            continue
        try:
            resolve_in_runs(real_root, folder.relative_to(real_root))
        except AttnlabError:
            continue
        found.append(
            StudyEntry(
                folder.relative_to(real_root).as_posix() or ".",
                kind,
                (folder / RESULTS).is_file(),
                _modified(folder),
                writer=lock_holder(folder),
            )
        )
    return sorted(found, key=lambda e: (-e.modified, e.relative))


# ---------------------------------------------------------------------------
# Reading one study back
# ---------------------------------------------------------------------------


def _results(folder: Path, relative: str, kind: str) -> dict[str, Any]:
    path = folder / RESULTS
    if not path.is_file():
        writer = lock_holder(folder)
        if writer is not None:
            raise DataError(
                f"the {KINDS[kind]} {relative!r} is still running (its figures and report are written when its last "
                "run ends); come back when it has finished"
            )
        raise DataError(
            f"the {KINDS[kind]} {relative!r} is incomplete: it has no {RESULTS} (it was stopped before its end, or "
            f"is still being written). Run the same `attnlab {kind}` command again: finished runs are skipped, and "
            "the study ends with its report and figures"
        )
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, ValueError) as e:
        raise DataError(
            f"{relative}/{RESULTS} is damaged ({type(e).__name__}); run the same `attnlab {kind}` command again to "
            "write it anew (finished runs are skipped)"
        ) from None
    if not isinstance(data, dict):
        raise DataError(f"{relative}/{RESULTS} does not hold a study's results; run the `attnlab {kind}` command again")
    return data


def _rows(reader: Callable[[], list[dict[str, Any]]], relative: str, what: str, kind: str) -> list[dict[str, Any]]:
    try:
        rows = reader()
    except AttnlabError:
        raise DataError(
            f"the {KINDS[kind]} {relative!r} has no {what}; run the same `attnlab {kind}` command again"
        ) from None
    except (OSError, UnicodeDecodeError, ValueError) as e:
        raise DataError(
            f"{relative}/{what} is damaged ({type(e).__name__}); run the `attnlab {kind}` command again"
        ) from None
    if not rows:
        raise DataError(f"{relative}/{what} holds no runs yet; run the same `attnlab {kind}` command again")
    return rows


def _need(rows: list[dict[str, Any]], columns: tuple[str, ...], relative: str, what: str) -> None:
    for i, r in enumerate(rows):
        for c in columns:
            if not isinstance(r.get(c), (int, float)):
                raise DataError(
                    f"{relative}/{what} is damaged: row {i + 1} has no number in column {c!r}; run the study again"
                )


def _png(path: Path) -> bytes | None:
    try:
        data = path.read_bytes()
    except OSError:
        return None
    return data if data.startswith(PNG_SIGNATURE) and len(data) > len(PNG_SIGNATURE) else None


def _figure_png(fig: Any) -> bytes:
    import matplotlib.pyplot as plt

    from attnlab.app.figures import figure_png

    try:
        return figure_png(fig, dpi=100)
    finally:
        plt.close(fig)


def _scale_redraw(rows: list[dict[str, Any]], results: dict[str, Any]) -> dict[str, Callable[[], bytes]]:
    from attnlab.train.scaling_law import ScalingLaw
    from attnlab.viz.scaling import plot_loss_vs_compute, plot_loss_vs_params, plot_loss_vs_tokens

    fit = results.get("fit")
    law = None
    if isinstance(fit, dict):
        try:
            law = ScalingLaw(**{k: float(fit[k]) for k in ("E", "A", "B", "alpha", "beta")})
        except (KeyError, TypeError, ValueError):
            law = None
    return {
        "loss_vs_params.png": lambda: _figure_png(plot_loss_vs_params(rows, law)),
        "loss_vs_tokens.png": lambda: _figure_png(plot_loss_vs_tokens(rows, law)),
        "loss_vs_compute.png": lambda: _figure_png(plot_loss_vs_compute(rows, law)),
    }


def _transfer_redraw(curves: list[dict[str, Any]], gains: list[dict[str, Any]]) -> dict[str, Callable[[], bytes]]:
    from attnlab.train.transfer import KINDS as RUN_KINDS
    from attnlab.train.transfer import plot_transfer_curves, plot_transfer_gain

    target = [c for c in curves if c.get("kind") in RUN_KINDS]
    return {
        "transfer_curves.png": lambda: _figure_png(plot_transfer_curves(target)),
        "transfer_gain.png": lambda: _figure_png(plot_transfer_gain(gains)),
    }


def _figures(folder: Path, kind: str, redraw: dict[str, Callable[[], bytes]], notes: list[str]) -> list[Figure]:
    out = []
    for name, caption in FIGURES[kind]:
        png = _png(folder / name)
        if png is not None:
            out.append(Figure(name, caption, png))
            continue
        try:
            out.append(Figure(name, caption, redraw[name](), redrawn=True))
        except Exception as e:  # a figure that cannot be drawn is a note, never a traceback
            notes.append(f"{name} is missing or damaged and could not be drawn from the tables ({type(e).__name__})")
    return out


def _fmt(value: Any, spec: str) -> str:
    return format(value, spec) if isinstance(value, (int, float)) else "–"


def _scale_view(folder: Path, relative: str, results: dict[str, Any]) -> StudyView:
    from attnlab.train.scale import read_study

    rows = _rows(lambda: read_study(folder), relative, "runs.csv", "scale")
    _need(rows, ("params", "tokens", "val_loss"), relative, "runs.csv")
    fit = results.get("fit") if isinstance(results.get("fit"), dict) else None
    held = results.get("held_out") if isinstance(results.get("held_out"), dict) else None
    grid = results.get("grid") if isinstance(results.get("grid"), dict) else {}
    sizes, budgets = {r["params"] for r in rows}, {r["tokens"] for r in rows}
    headline = [("runs", str(len(rows))), ("model sizes x budgets", f"{len(sizes)} x {len(budgets)}")]
    if fit is not None:
        headline += [
            ("alpha (size exponent)", _fmt(fit.get("alpha"), ".3f")),
            ("beta (data exponent)", _fmt(fit.get("beta"), ".3f")),
        ]
    if held is not None:
        headline.append(("held-out prediction error", _fmt(held.get("relative_error"), "+.1%")))
    best = min(rows, key=lambda r: r["val_loss"])
    summary = (
        f"{len(rows)} runs on {grid.get('data', 'the embedded corpus')}: N from {min(sizes):,} to {max(sizes):,} "
        f"parameters, D from {min(budgets):,} to {max(budgets):,} tokens. The lowest loss, {best['val_loss']:.4f}, is "
        f"the run {best.get('run', best.get('size', ''))}."
    )
    if held is not None and all(isinstance(held.get(k), (int, float)) for k in ("predicted", "measured")):
        summary += (
            f" Fitted without the largest-compute run, the law predicted it at {held['predicted']:.4f}; it measured "
            f"{held['measured']:.4f}."
        )
    notes = [str(n) for n in results.get("notes", []) if isinstance(n, str)]
    figures = _figures(folder, "scale", _scale_redraw(rows, results), notes)
    return StudyView(relative, "scale", headline, summary, _report(folder), rows, rows, figures, notes)


def _transfer_view(folder: Path, relative: str, results: dict[str, Any]) -> StudyView:
    from attnlab.train.transfer import read_study

    rows = _rows(lambda: read_study(folder, "runs"), relative, "runs.csv", "transfer")
    gains = _rows(lambda: read_study(folder, "gains"), relative, "gains.csv", "transfer")
    curves = _rows(lambda: read_study(folder, "curves"), relative, "curves.csv", "transfer")
    _need(gains, ("target_chars", "gain_best_mean", "finetune_best", "scratch_best"), relative, "gains.csv")
    _need(curves, ("step", "val_loss", "seed"), relative, "curves.csv")
    _need([c for c in curves if c.get("kind") != "pretrain"], ("target_chars",), relative, "curves.csv")
    settings = results.get("settings") if isinstance(results.get("settings"), dict) else {}
    headline = [("runs", str(len(rows))), ("target sizes", str(len(gains)))]
    for g in (gains[0], gains[-1]) if len(gains) > 1 else (gains[0],):
        headline.append((f"gain at {g['target_chars']:,} characters", f"{g['gain_best_mean']:+.3f} nats"))
    conclusion = results.get("conclusion")
    summary = (
        f"Pretrained on {settings.get('source', 'the source text')}, fine-tuned on {settings.get('target', 'the target')} "
        f"vs trained from scratch; GPT {settings.get('size', '')}, seeds {', '.join(map(str, settings.get('seeds', [])))}."
    )
    if isinstance(conclusion, str):
        summary += " " + conclusion
    notes: list[str] = []
    figures = _figures(folder, "transfer", _transfer_redraw(curves, gains), notes)
    return StudyView(relative, "transfer", headline, summary, _report(folder), gains, rows, figures, notes)


def _report(folder: Path) -> str:
    path = folder / REPORT
    try:
        if path.stat().st_size > MAX_REPORT_BYTES:
            return ""
        return path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError):
        return ""


def load_study(root: Path, relative: str | os.PathLike) -> StudyView:
    """Read a study folder of the runs folder back (checked with `resolve_in_runs`).

    Raises:
        CheckpointError: the path leads outside the runs folder.
        DataError: not a study folder (any more), half written, or damaged (the message says which,
            and what to do).
    """
    folder = resolve_in_runs(root, relative)
    relative = Path(relative).as_posix()
    kind = _kind(folder) if folder.is_dir() else None
    if kind is None:
        raise DataError(f"{relative!r} is no longer a scaling or transfer study folder (was it deleted?); pick another")
    results = _results(folder, relative, kind)
    return _scale_view(folder, relative, results) if kind == "scale" else _transfer_view(folder, relative, results)


__all__ = ["FIGURES", "KINDS", "Figure", "StudyEntry", "StudyView", "find_studies", "load_study"]

"""The scaling study: a grid of GPT sizes x token budgets, each an ordinary run, and the fitted law.

`attnlab scale` as a library call. Every grid point (a model size, a token budget D and a
seed) is an ordinary `attnlab train` run folder, trained by `train_language_model` with
its own learning-rate schedule (warmup, then a cosine to a tenth of the peak *at the end
of that run*, as Hoffmann et al. 2022 do: a run cut short of a longer schedule would
overstate the loss of its budget). Running the study again skips the finished runs and
resumes an interrupted one exactly where its last checkpoint stopped. The study folder
gets:

    runs/SIZE-TOKENS-seedS/   each run: checkpoint, metrics.jsonl, results.json, run.json
    runs.csv                  one row a run: params N (non-embedding), tokens D, FLOPs 6ND,
                              final validation loss, training and wall seconds, seed, ...
    fit.csv                   the fitted E, A, B, alpha, beta (and the compute-optimal
                              exponents a, b) with bootstrap intervals: on all runs, and
                              without the largest-compute run (the held-out fit)
    results.json              the grid, both fits, the held-out prediction, the file list
    report.md                 the same as markdown tables (the command prints it)
    loss_vs_params.png        loss against N, one line a token budget, with the fitted law
    loss_vs_tokens.png        loss against D, one line a model size, with the fitted law
    loss_vs_compute.png       loss against C = 6ND with the measured and fitted compute-optimal frontiers

The law, its fit and the held-out check are `attnlab.train.scaling_law`'s. Model sizes are
written `LxC` (L layers of width C; heads of 16 channels, rotary positions, the `baby`
preset otherwise); N counts every parameter except the token embedding (tied with the
output layer), as Kaplan et al. 2020 do, and C = 6 N D estimates the training FLOPs.
"""

from __future__ import annotations

import json
import logging
import math
import re
import time
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from attnlab import limits
from attnlab.config import to_dict
from attnlab.errors import ConfigError, DataError
from attnlab.runs import open_run, read_marker, write_tidy_csv

logger = logging.getLogger(__name__)

# The default grid: 5 sizes spanning 36x in non-embedding parameters (12k to 443k) x 4 budgets
# spanning 8x in tokens (250k to 2M: up to ~5 passes over the embedded corpus's 418k training
# characters). About 1,800 steps a size, ~8 minutes on 2 CPU cores (benchmarks/bench_scale.py).
DEFAULT_SIZES = ("1x32", "2x32", "2x48", "3x64", "4x96")
DEFAULT_TOKENS = (250_000, 500_000, 1_000_000, 2_000_000)
# --quick: tiny models, short runs, a short context; seconds.
QUICK_SIZES = ("1x16", "1x32", "2x32")
QUICK_TOKENS = (8_000, 16_000, 32_000)
HEAD_DIM = 16  # channels per attention head of every size
MAX_GRID = 64  # at most this many sizes, budgets or seeds
MAX_LAYERS = 256
MAX_WIDTH = 65_536
MAX_BOOTSTRAP = 100_000
RUNS_DIR = "runs"
POINT_FILE = "scale_point.json"  # the study's own record in a run folder (wall seconds over all sessions)
_SIZE = re.compile(r"^\s*(\d{1,6})\s*[x×]\s*(\d{1,7})\s*$", re.IGNORECASE)
_TOKENS = re.compile(r"^\s*(\d+(?:\.\d+)?|\d+(?:_\d+)+)\s*([kKmMgG]?)\s*$")
_SUFFIX = {"": 1, "k": 1_000, "m": 1_000_000, "g": 1_000_000_000}


@dataclass(frozen=True)
class ModelSize:
    """One model size of the grid: `num_layers` blocks of width `embed_dim`."""

    num_layers: int  # transformer blocks
    embed_dim: (
        int  # model width: a multiple of HEAD_DIM (heads of HEAD_DIM channels), or one even head below 2 * HEAD_DIM
    )

    @property
    def name(self) -> str:
        return f"{self.num_layers}x{self.embed_dim}"

    @property
    def num_heads(self) -> int:
        return self.embed_dim // HEAD_DIM if self.embed_dim % HEAD_DIM == 0 else 1


def parse_size(text: str) -> ModelSize:
    """A model size written `LxC` (layers x width), e.g. `2x48`.

    Raises:
        ConfigError: not of that form, or out of range (the width must be a multiple of 16,
            split into heads of 16 channels, or one head of an even width below 32).
    """
    m = _SIZE.match(str(text))
    if not m:
        shown = text if len(text) <= 40 else text[:37] + "..."
        raise ConfigError(f"a model size is LAYERSxWIDTH such as 2x48, got {shown!r}")
    layers, width = int(m.group(1)), int(m.group(2))
    limits.check_int(layers, f"the layers of size {text.strip()!r}", 1, MAX_LAYERS)
    limits.check_int(width, f"the width of size {text.strip()!r}", 2, MAX_WIDTH)
    size = ModelSize(layers, width)
    if width % HEAD_DIM and (width >= 2 * HEAD_DIM or width % 2):
        raise ConfigError(
            f"size {size.name}: the width must be a multiple of {HEAD_DIM} (heads of {HEAD_DIM} channels), or an "
            f"even width below {2 * HEAD_DIM} (one head); e.g. {layers}x{max(HEAD_DIM, round(width / HEAD_DIM) * HEAD_DIM)}"
        )
    return size


def parse_tokens(text: str) -> int:
    """A token budget: a whole number, optionally with k, M or G (`250k`, `1.5M`, `2000000`).

    Raises:
        ConfigError: not such a number, or not a whole number of tokens.
    """
    m = _TOKENS.match(str(text)) if len(str(text)) <= 40 else None
    if not m:
        shown = text if len(text) <= 40 else text[:37] + "..."
        raise ConfigError(f"a token budget is a number such as 250k, 1M or 500000, got {shown!r}")
    number, suffix = m.group(1).replace("_", ""), m.group(2).lower()
    value = float(number) * _SUFFIX[suffix] if "." in number else int(number) * _SUFFIX[suffix]
    if value != int(value) or value < 1:
        raise ConfigError(f"a token budget must be a whole number of tokens of at least 1, got {text.strip()!r}")
    return limits.check_int(int(value), "a token budget", 1, 10**15)


def token_label(tokens: int) -> str:
    """`2000000` -> `2M`, `250000` -> `250k`, else the number itself."""
    if tokens % 1_000_000 == 0:
        return f"{tokens // 1_000_000}M"
    if tokens % 1_000 == 0:
        return f"{tokens // 1_000}k"
    return str(tokens)


@dataclass(frozen=True)
class ScaleConfig:
    """Settings of the scaling study (the flags of `attnlab scale`)."""

    sizes: tuple[str, ...] | None = None  # model sizes LxC; None = DEFAULT_SIZES (QUICK_SIZES with quick)
    tokens: tuple[int, ...] | None = None  # token budgets D; None = DEFAULT_TOKENS (QUICK_TOKENS with quick)
    seeds: tuple[int, ...] = (0,)  # one run per seed at every grid point
    data: str | None = None  # corpus name or text file; None = the embedded corpus (as `attnlab train`)
    quick: bool = False  # the tiny grid, a short context and small batches: a smoke test in seconds
    seq_len: int | None = None  # context length; None = 64 (quick: 32)
    batch_size: int | None = None  # sequences per step; None = 32 (quick: 8)
    lr: float = 3e-3  # peak AdamW learning rate of every run, cosine-decayed to lr / 10 at its end (see below)
    warmup_fraction: float = 0.05  # linear warmup over this share of each run's steps
    eval_iters: int | None = None  # validation batches of every evaluation; None = 16 (quick: 4)
    checkpoints: int = 4  # evaluate and checkpoint about this many times a run (so a stop loses little)
    bootstrap: int | None = None  # bootstrap refits for the intervals; None = 100 (quick: 20); 0 = none
    level: float = 0.95  # the intervals' coverage
    device: str = "auto"  # auto, cpu, cuda, cuda:N or mps
    progress: bool = True  # a progress bar for every run
    figures: bool = True  # write the three figures

    def __post_init__(self) -> None:
        for name in ("sizes", "tokens", "seeds"):
            value = getattr(self, name)
            if value is not None:
                value = tuple(value)
                if not value:
                    raise ConfigError(f"give at least one of {name}")
                if len(value) > MAX_GRID:
                    raise ConfigError(f"give at most {MAX_GRID} {name}, got {len(value)}")
                if len(set(value)) != len(value):
                    raise ConfigError(f"{name} are given twice: {', '.join(map(str, value))}")
                object.__setattr__(self, name, value)
        if self.sizes is not None:  # names (or ModelSize), kept as canonical names
            names = tuple(s.name if isinstance(s, ModelSize) else parse_size(s).name for s in self.sizes)
            if len(set(names)) != len(names):
                raise ConfigError(f"sizes are given twice: {', '.join(names)}")
            object.__setattr__(self, "sizes", names)
        for t in self.tokens or ():
            limits.check_int(t, "a token budget", 1, 10**15)
        for s in self.seeds:
            limits.check_seed(s, "a seed")
        if self.seq_len is not None:
            limits.check_int(self.seq_len, "seq_len", 2, 65_536)
        if self.batch_size is not None:
            limits.check_int(self.batch_size, "batch_size", 1, limits.MAX_BATCH_SIZE)
        if self.eval_iters is not None:
            limits.check_int(self.eval_iters, "eval_iters", 1, limits.MAX_EVAL_ITERS)
        limits.check_int(self.checkpoints, "checkpoints", 1, 1_000)
        if self.bootstrap is not None:
            limits.check_int(self.bootstrap, "bootstrap", 0, MAX_BOOTSTRAP)
        limits.check_float(self.lr, "lr", 0.0, limits.MAX_LR, low_open=True)
        limits.check_float(self.warmup_fraction, "warmup_fraction", 0.0, 1.0, high_open=True)
        limits.check_float(self.level, "level", 0.0, 1.0, low_open=True, high_open=True)

    # the settings in force, defaults resolved
    @property
    def grid_sizes(self) -> tuple[ModelSize, ...]:
        return tuple(parse_size(s) for s in (self.sizes or (QUICK_SIZES if self.quick else DEFAULT_SIZES)))

    @property
    def grid_tokens(self) -> tuple[int, ...]:
        return tuple(self.tokens or (QUICK_TOKENS if self.quick else DEFAULT_TOKENS))

    @property
    def context(self) -> int:
        return self.seq_len or (32 if self.quick else 64)

    @property
    def batch(self) -> int:
        return self.batch_size or (8 if self.quick else 32)

    @property
    def bootstrap_samples(self) -> int:
        return self.bootstrap if self.bootstrap is not None else (20 if self.quick else 100)

    @property
    def eval_batches(self) -> int:
        return self.eval_iters or (4 if self.quick else 16)


@dataclass(frozen=True)
class GridPoint:
    """One run of the study."""

    size: ModelSize
    tokens: int  # the budget asked for (the run trains steps * batch * context tokens)
    seed: int
    steps: int  # optimizer steps

    @property
    def name(self) -> str:
        return f"{self.size.name}-{token_label(self.tokens)}-seed{self.seed}"


def plan_grid(config: ScaleConfig) -> list[GridPoint]:
    """Every run of the study, small to large (sizes, then budgets, then seeds).

    Raises:
        ConfigError: a budget below one optimizer step or above the step limit.
    """
    per_step = config.batch * config.context
    points = []
    for size in sorted(config.grid_sizes, key=lambda s: (s.num_layers * s.embed_dim**2, s.name)):
        for tokens in sorted(config.grid_tokens):
            steps = round(tokens / per_step)
            if steps < 1:
                raise ConfigError(
                    f"token budget {tokens:,} is less than one optimizer step of {per_step:,} tokens "
                    f"({config.batch} sequences of {config.context}); give budgets of at least {per_step:,}"
                )
            limits.check_int(steps, f"the steps of token budget {tokens:,}", 1, limits.MAX_ITERS)
            for seed in config.seeds:
                points.append(GridPoint(size, tokens, seed, steps))
    return points


def model_config(size: ModelSize, config: ScaleConfig, vocab_size: int = 256) -> Any:
    """The GPTConfig of a size (the `baby` preset's choices, rotary positions, no dropout)."""
    from attnlab.models.gpt_config import GPTConfig

    return GPTConfig.from_name(
        "baby",
        num_layers=size.num_layers,
        embed_dim=size.embed_dim,
        num_heads=size.num_heads,
        max_seq_len=config.context,
        vocab_size=vocab_size,
        dropout=0.0,
    )


def non_embedding_parameters(model: Any) -> int:
    """Parameters of a causal LM outside its embedding tables (token and any position table).

    The config's model is built on PyTorch's `meta` device, so nothing is allocated; with
    tied weights the output layer is the token embedding and is not counted either.
    """
    import torch

    from attnlab.train.recipes import build_causal_lm

    with torch.device("meta"):
        module = build_causal_lm(model)
    embedding = {id(p) for m in module.modules() if isinstance(m, torch.nn.Embedding) for p in m.parameters()}
    return sum(p.numel() for p in module.parameters() if id(p) not in embedding)


def train_config(point: GridPoint, config: ScaleConfig, device: str) -> Any:
    """The TrainConfig of one run: its own warmup + cosine schedule, evaluations to checkpoint."""
    from attnlab.train.trainer import TrainConfig

    steps = point.steps
    return TrainConfig(
        batch_size=config.batch,
        max_iters=steps,
        lr=config.lr,
        min_lr=config.lr / 10,
        warmup_iters=min(steps - 1, max(1, round(config.warmup_fraction * steps))) if steps > 1 else 0,
        eval_interval=max(1, math.ceil(steps / config.checkpoints)),
        eval_iters=config.eval_batches,
        log_interval=max(1, steps // 50),
        seed=point.seed,
        device=device,
        progress=config.progress,
    )


def _data_source(data: str | None) -> str:
    """The corpus as run.json records it: a named corpus, or an existing file's absolute path."""
    from attnlab.data.text import CORPORA, DEFAULT_CORPUS

    source = data if data is not None else DEFAULT_CORPUS
    if source not in CORPORA and Path(source).expanduser().is_file():
        return str(Path(source).expanduser().resolve())
    return source


# Settings that may change between sessions without making a finished run another run.
_FREE_TRAIN_FIELDS = ("device", "progress", "precision")


def _settings_differ(folder: Path, model: Any, train: Any, source: str) -> list[str]:
    """What the run in `folder` was trained with that differs from what this study asks (empty: agrees)."""
    marker = read_marker(folder) or {}
    if "model" not in marker:
        return []  # never got as far as training: nothing to compare
    differ = []
    saved_model = dict(marker.get("model") or {})
    want_model = to_dict(model)
    for key in sorted(set(want_model) - {"vocab_size"}):
        if saved_model.get(key) != want_model[key]:
            differ.append(f"model.{key} {saved_model.get(key)!r} (now {want_model[key]!r})")
    saved_train = dict(marker.get("train") or {})
    want_train = to_dict(train)
    for key in sorted(set(want_train) - set(_FREE_TRAIN_FIELDS)):
        if saved_train.get(key) != want_train[key]:
            differ.append(f"train.{key} {saved_train.get(key)!r} (now {want_train[key]!r})")
    saved_source = (marker.get("data") or {}).get("source")
    if saved_source != source:
        differ.append(f"data {saved_source!r} (now {source!r})")
    return differ


def _finished(folder: Path, steps: int) -> dict[str, Any] | None:
    """The results of a run that trained all its steps, else None."""
    from attnlab import checkpoint as ckpt
    from attnlab.train.trainer import RESULTS_FILE

    try:
        results = json.loads((folder / RESULTS_FILE).read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None
    if not isinstance(results, dict) or results.get("stopped_early") is not None:
        return None
    if results.get("step") != steps or results.get("val_loss") is None or not ckpt.is_checkpoint(folder):
        return None
    return results


def _read_point(folder: Path) -> dict[str, Any]:
    try:
        data = json.loads((folder / POINT_FILE).read_text(encoding="utf-8"))
        return data if isinstance(data, dict) else {}
    except (OSError, ValueError):
        return {}


def run_point(folder: str | Path, point: GridPoint, config: ScaleConfig, device: str) -> dict[str, Any]:
    """Train one grid point in `folder` (skipped when finished, resumed when interrupted).

    Returns:
        Its row of runs.csv.
    Raises:
        ConfigError: the folder holds a run trained with other settings.
    """
    from attnlab import checkpoint as ckpt
    from attnlab.configs.data import DataConfig
    from attnlab.train.recipes import train_language_model
    from attnlab.utils import write_json_atomic

    folder = Path(folder)
    source = _data_source(config.data)
    model = model_config(point.size, config)
    train = train_config(point, config, device)
    data = DataConfig(source=source, tokenizer="char")
    with open_run(folder, command="scale"):
        differ = _settings_differ(folder, model, train, source)
        if differ:
            raise ConfigError(
                f"{str(folder)!r} holds a run trained with other settings ({'; '.join(differ[:4])}); "
                "run the study with its old settings, choose another --out, or delete that run folder"
            )
        results = _finished(folder, point.steps)
        status = "skipped (finished before)"
        if results is None:
            resume = ckpt.is_checkpoint(folder) and ckpt.has_training_state(folder)
            status = "resumed" if resume else "trained"
            record = _read_point(folder)
            start = time.perf_counter()
            try:
                results = train_language_model(
                    folder, data=data, model=model, train=train, resume=resume, write_plots=False
                )
            finally:  # an interrupted run keeps the time it took, for the next session to add to
                record["wall_seconds"] = float(record.get("wall_seconds", 0.0)) + time.perf_counter() - start
                record["sessions"] = int(record.get("sessions", 0)) + 1
                write_json_atomic(folder / POINT_FILE, record)
    params = non_embedding_parameters(model)
    tokens = int(results.get("tokens_seen") or point.steps * config.batch * config.context)
    return {
        "run": point.name,
        "size": point.size.name,
        "num_layers": point.size.num_layers,
        "embed_dim": point.size.embed_dim,
        "num_heads": point.size.num_heads,
        "params": params,
        "total_params": results.get("num_parameters"),
        "tokens": tokens,
        "token_budget": point.tokens,
        "steps": point.steps,
        "batch_size": config.batch,
        "seq_len": config.context,
        "flops": 6 * params * tokens,
        "val_loss": results["val_loss"],
        "train_loss": results.get("train_loss"),
        "train_seconds": results.get("train_seconds"),
        "wall_seconds": round(float(_read_point(folder).get("wall_seconds", math.nan)), 3),
        "seed": point.seed,
        "lr": config.lr,
        "device": results.get("device"),
        "status": status,
    }


# ---------------------------------------------------------------------------
# The analysis: fit, bootstrap, held-out check
# ---------------------------------------------------------------------------


def analyse_runs(
    rows: Sequence[dict[str, Any]], *, bootstrap: int = 100, level: float = 0.95, seed: int = 0
) -> dict[str, Any]:
    """Fit the law to the runs' (params, tokens, val_loss), with bootstrap intervals and the held-out check.

    Returns:
        {"fit": law | None, "bootstrap": Bootstrap | None, "held_out": HeldOut | None,
        "notes": [why a part is missing]}.
    """
    from attnlab.train.scaling_law import bootstrap_scaling_law, can_fit, fit_scaling_law, held_out_check

    n = [float(r["params"]) for r in rows]
    d = [float(r["tokens"]) for r in rows]
    loss = [float(r["val_loss"]) for r in rows]
    out: dict[str, Any] = {"fit": None, "bootstrap": None, "held_out": None, "notes": []}
    if not can_fit(n, d):
        out["notes"].append(
            f"no fit: the law has 5 parameters and needs at least 5 runs over 2 sizes and 2 token budgets "
            f"({len(rows)} run(s) here)"
        )
        return out
    law = fit_scaling_law(n, d, loss)
    out["fit"] = law
    if bootstrap > 0:
        out["bootstrap"] = bootstrap_scaling_law(n, d, loss, samples=bootstrap, level=level, seed=seed, start=law)
    try:
        out["held_out"] = held_out_check(n, d, loss, bootstrap=bootstrap, level=level, seed=seed)
    except DataError as e:
        out["notes"].append(f"no held-out check: {e}")
    return out


def fit_rows(analysis: dict[str, Any], level: float) -> list[dict[str, Any]]:
    """fit.csv: one row a (fit, parameter) with its estimate and bootstrap interval."""
    rows = []
    fits = [("all runs", analysis["fit"], analysis["bootstrap"])]
    held = analysis["held_out"]
    if held is not None:
        fits.append(("without the largest-compute run", held.law, None))
    for label, law, boot in fits:
        if law is None:
            continue
        values = {**law.as_dict(), "a": law.n_exponent, "b": law.d_exponent}
        for name, value in values.items():
            low, high = boot.intervals.get(name, (None, None)) if boot is not None else (None, None)
            rows.append(
                {
                    "fit": label,
                    "parameter": name,
                    "estimate": value,
                    "ci_low": low,
                    "ci_high": high,
                    "level": level if boot is not None else None,
                    "bootstrap_samples": boot.samples if boot is not None else 0,
                }
            )
    return rows


def _fmt_ci(value: float, interval: tuple[float, float] | None) -> str:
    if interval is None:
        return f"{value:.4g}"
    return f"{value:.4g} [{interval[0]:.4g}, {interval[1]:.4g}]"


def format_report(rows: Sequence[dict[str, Any]], analysis: dict[str, Any], level: float) -> str:
    """The study as markdown: the runs, the fitted law with intervals, the held-out prediction."""
    lines = [
        "| size | params N | tokens D | FLOPs 6ND | seed | val loss | train s | status |",
        "|---|---:|---:|---:|---:|---:|---:|---|",
    ]
    for r in rows:
        lines.append(
            f"| {r['size']} | {r['params']:,} | {r['tokens']:,} | {r['flops']:.3g} | {r['seed']} | "
            f"{r['val_loss']:.4f} | {r['train_seconds'] or 0:.1f} | {r['status']} |"
        )
    law, boot, held = analysis["fit"], analysis["bootstrap"], analysis["held_out"]
    if law is not None:
        ci = boot.intervals if boot is not None else {}
        what = f"{level:.0%} bootstrap intervals over {boot.samples} refits" if boot is not None else "no bootstrap"
        lines += [
            "",
            f"Fit of L(N, D) = E + A / N^alpha + B / D^beta (Hoffmann et al. 2022, approach 3) on {len(rows)} runs "
            f"({what}):",
            "",
            "| parameter | estimate |",
            "|---|---|",
        ]
        for name in ("E", "A", "alpha", "B", "beta"):
            lines.append(f"| {name} | {_fmt_ci(getattr(law, name), ci.get(name))} |")
        lines.append(f"| a (N_opt ~ C^a) | {_fmt_ci(law.n_exponent, ci.get('a'))} |")
        lines.append(f"| b (D_opt ~ C^b) | {_fmt_ci(law.d_exponent, ci.get('b'))} |")
    if held is not None:
        interval = f" ({level:.0%} interval {held.interval[0]:.4f} to {held.interval[1]:.4f})" if held.interval else ""
        lines += [
            "",
            f"Held out: the largest-compute run (N = {held.params:,.0f}, D = {held.tokens:,.0f}, "
            f"{len(held.index)} run(s)); fitted on the other {len(rows) - len(held.index)}: predicted loss "
            f"{held.predicted:.4f}{interval}, measured {held.measured:.4f}, relative error "
            f"{held.relative_error:+.2%}.",
        ]
    for note in analysis["notes"]:
        lines += ["", note[0].upper() + note[1:] + "."]
    return "\n".join(lines) + "\n"


def _analysis_json(analysis: dict[str, Any]) -> dict[str, Any]:
    law, boot, held = analysis["fit"], analysis["bootstrap"], analysis["held_out"]
    out: dict[str, Any] = {"notes": analysis["notes"]}
    if law is not None:
        out["fit"] = {**law.as_dict(), "a": law.n_exponent, "b": law.d_exponent}
    if boot is not None:
        out["bootstrap"] = {"samples": boot.samples, "level": boot.level, "intervals": boot.intervals}
    if held is not None:
        out["held_out"] = {
            "runs": list(held.index),
            "params": held.params,
            "tokens": held.tokens,
            "predicted": held.predicted,
            "measured": held.measured,
            "relative_error": held.relative_error,
            "interval": held.interval,
            "fit": held.law.as_dict(),
        }
    return out


def _check_device(device: str) -> str:
    from attnlab.utils import select_device

    try:
        return select_device(device)
    except ConfigError as e:
        raise ConfigError(str(e).replace("--train.device=", "--device ")) from None


def run_scaling_study(out_dir: str | Path, config: ScaleConfig | None = None, *, force: bool = False) -> dict[str, Any]:
    """Train every grid point (skipping finished runs), write runs.csv, fit the law, write the figures.

    Args:
        out_dir: the study folder (an attnlab run folder; `open_run` claims and locks it).
        config: the grid and settings (default: the default grid on the embedded corpus).
        force: write into a folder that holds files attnlab did not write (they are kept).
    Returns:
        {"out_dir", "rows" (runs.csv), "analysis" (see `analyse_runs`), "report" (markdown),
        "files" (what was written), "seconds"}.
    Raises:
        ConfigError / DataError: a bad grid, device or corpus, or a run folder of other settings.
        TrainingInterrupted: Ctrl-C; the finished runs and the interrupted run's checkpoint are kept.
    """
    from attnlab.data.text import load_text

    config = config or ScaleConfig()
    started = time.perf_counter()
    device = _check_device(config.device)
    points = plan_grid(config)
    out_dir = Path(out_dir)
    info = {"command": "scale", "scale": to_dict(config), "grid": [p.name for p in points]}
    with open_run(out_dir, command="scale", force=force, info=info):
        load_text(config.data)  # a bad --data is one line before any training
        for p in points:  # and so is a size too big for this machine
            _check_memory(p, config, device)
        rows: list[dict[str, Any]] = []
        files: list[str] = []
        for i, point in enumerate(points, 1):
            logger.info("scale: run %d of %d: %s (%s optimizer steps)", i, len(points), point.name, f"{point.steps:,}")
            rows.append(run_point(out_dir / RUNS_DIR / point.name, point, config, device))
            r = rows[-1]
            logger.info("scale: %s: validation loss %.4f (%s)", point.name, r["val_loss"], r["status"])
            # The table grows run by run, so a long study can be watched (and survives a stop).
            write_tidy_csv(out_dir / "runs.csv", rows, "one training run of the scaling study a row")
        files.append(str(out_dir / "runs.csv"))
        analysis = analyse_runs(rows, bootstrap=config.bootstrap_samples, level=config.level)
        frows = fit_rows(analysis, config.level)
        if frows:
            write_tidy_csv(out_dir / "fit.csv", frows, "one fitted parameter of the scaling law a row")
            files.append(str(out_dir / "fit.csv"))
        report = format_report(rows, analysis, config.level)
        from attnlab.utils import write_json_atomic, write_text_atomic

        write_text_atomic(out_dir / "report.md", "# Scaling study\n\n" + report)
        files.append(str(out_dir / "report.md"))
        if config.figures:
            files += [str(f) for f in write_figures(out_dir, rows, analysis)]
        seconds = time.perf_counter() - started
        write_json_atomic(
            out_dir / "results.json",
            {
                "grid": {
                    "sizes": [s.name for s in config.grid_sizes],
                    "tokens": list(config.grid_tokens),
                    "seeds": list(config.seeds),
                    "seq_len": config.context,
                    "batch_size": config.batch,
                    "data": _data_source(config.data),
                    "device": device,
                },
                "runs": len(rows),
                **_analysis_json(analysis),
                "seconds": round(seconds, 1),
                "files": [Path(f).name for f in files],
            },
        )
        files.append(str(out_dir / "results.json"))
    return {
        "out_dir": str(out_dir),
        "rows": rows,
        "analysis": analysis,
        "report": report,
        "files": files,
        "seconds": seconds,
    }


def _check_memory(point: GridPoint, config: ScaleConfig, device: str) -> None:
    from attnlab.models.memory import check_training_memory

    check_training_memory(
        model_config(point.size, config),
        config.batch,
        device=device,
        what=f"the GPT of size {point.size.name}",
        eval_batches=config.eval_batches,
    )


def write_figures(out_dir: Path, rows: Sequence[dict[str, Any]], analysis: dict[str, Any]) -> list[Path]:
    """loss_vs_params.png, loss_vs_tokens.png and loss_vs_compute.png (`attnlab.viz.scaling`)."""
    from attnlab.viz.scaling import plot_loss_vs_compute, plot_loss_vs_params, plot_loss_vs_tokens

    law = analysis["fit"]
    held = analysis["held_out"]
    return [
        plot_loss_vs_params(rows, law, out_dir / "loss_vs_params.png"),
        plot_loss_vs_tokens(rows, law, out_dir / "loss_vs_tokens.png"),
        plot_loss_vs_compute(rows, law, out_dir / "loss_vs_compute.png", held_out=held),
    ]


def read_study(out_dir: str | Path) -> list[dict[str, Any]]:
    """The rows of a study's runs.csv (numbers as numbers), for notebooks and the app.

    Raises:
        DataError: the folder has no runs.csv.
    """
    import csv

    path = Path(out_dir) / "runs.csv"
    try:
        lines = [ln for ln in path.read_text(encoding="utf-8").splitlines() if not ln.startswith("#")]
    except OSError as e:
        raise DataError(f"{str(out_dir)!r} holds no runs.csv of a scaling study ({e.strerror or e})") from None
    rows = []
    for row in csv.DictReader(lines):
        parsed: dict[str, Any] = {}
        for k, v in row.items():
            try:
                parsed[k] = int(v)
            except (TypeError, ValueError):
                try:
                    parsed[k] = float(v)
                except (TypeError, ValueError):
                    parsed[k] = v
        rows.append(parsed)
    return rows


__all__ = [
    "DEFAULT_SIZES",
    "DEFAULT_TOKENS",
    "QUICK_SIZES",
    "QUICK_TOKENS",
    "GridPoint",
    "ModelSize",
    "ScaleConfig",
    "analyse_runs",
    "format_report",
    "non_embedding_parameters",
    "parse_size",
    "parse_tokens",
    "plan_grid",
    "read_study",
    "run_point",
    "run_scaling_study",
    "token_label",
]

"""A model-agnostic training loop: the Trainer knows nothing of GPTs or images.

It runs any `Engine` (PyTorch or NumPy) on any batch source with:
  * AdamW (set up by the engine) with linear warmup + cosine decay (`attnlab.schedule`),
    gradient clipping and gradient accumulation;
  * periodic evaluation on held-out data (fixed batches, so curves are comparable);
  * a progress bar (loss, tokens/s, time left), `OUT/metrics.jsonl` (one JSON object per
    logged step: step, train_loss, lr, ..., and val_loss at evaluations) and
    `OUT/results.json` at the end;
  * checkpoints in OUT itself (config.json, model.safetensors, tokenizer, training state),
    each written as one transaction (`attnlab.checkpoint.CheckpointWriter`: all its files
    or none) at every evaluation, at the end and on Ctrl-C / SIGTERM;
  * exact resume: the batches of step s are drawn from a generator seeded by
    (seed, rank, s), and optimizer and RNG states are saved, so on CPU 20 + 20 resumed
    steps reproduce 40 straight steps.

Inspired by minGPT's trainer (a trainer that knows nothing of the model) and nanoGPT's
training loop, but importable and tested.
"""

from __future__ import annotations

import json
import logging
import math
import signal
import threading
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal, Protocol

import numpy as np

from attnlab import checkpoint as ckpt
from attnlab import limits
from attnlab.config import to_dict
from attnlab.errors import CheckpointError, ConfigError, TrainingDivergedError
from attnlab.runs import METRICS_FILE, read_metrics, remove_own, write_marker  # read_metrics: re-exported
from attnlab.schedule import warmup_cosine_lr
from attnlab.utils import write_json_atomic

logger = logging.getLogger(__name__)

RESULTS_FILE = "results.json"


@dataclass(frozen=True)
class TrainConfig:
    """How to train (model-independent). Defaults are nanoGPT's tiny-Shakespeare CPU example."""

    batch_size: int = 12  # sequences per micro-batch (per process)
    grad_accum_steps: int = 1  # micro-batches per optimizer step
    max_iters: int = 2000  # optimizer steps in total
    lr: float = 1e-3  # peak learning rate (reached after warmup)
    min_lr: float = 1e-4  # final learning rate of the cosine decay
    warmup_iters: int = 100  # linear warmup steps
    lr_decay_iters: int | None = None  # step where the cosine reaches min_lr; None = max_iters
    weight_decay: float = 0.1  # AdamW decoupled weight decay on matrices and embeddings
    beta1: float = 0.9  # AdamW beta1
    beta2: float = 0.99  # AdamW beta2
    eps: float = 1e-8  # AdamW epsilon
    grad_clip: float = 1.0  # clip the global gradient norm to this (0 = off)
    eval_interval: int = 250  # evaluate (and checkpoint) every this many steps (0 = only at the end)
    eval_iters: int = 20  # batches per evaluation
    log_interval: int = 10  # write a metrics line every this many steps
    seed: int = 1337  # seeds initialisation, batches and dropout
    device: str = "auto"  # auto, cpu, cuda, cuda:N or mps
    precision: Literal["auto", "fp32", "bf16"] = "auto"  # auto = bf16 autocast on supporting GPUs, else fp32
    max_time: float | None = None  # stop after this many seconds (a checkpoint is still written)
    val_fraction: float = 0.1  # share of the text held out for validation (its end)
    progress: bool = True  # show a progress bar

    def __post_init__(self) -> None:
        positive = ["batch_size", "grad_accum_steps", "max_iters", "eval_iters", "log_interval"]
        for name in positive:
            if getattr(self, name) < 1:
                raise ConfigError(f"train.{name} must be at least 1, got {getattr(self, name)}")
        for name in ("warmup_iters", "eval_interval"):
            if getattr(self, name) < 0:
                raise ConfigError(f"train.{name} must be >= 0, got {getattr(self, name)}")
        if not (self.lr > 0 and math.isfinite(self.lr)):
            raise ConfigError(f"train.lr must be a positive number, got {self.lr}")
        if self.min_lr < 0 or self.min_lr > self.lr:
            raise ConfigError(f"train.min_lr must be between 0 and train.lr ({self.lr}), got {self.min_lr}")
        if self.weight_decay < 0 or self.grad_clip < 0 or self.eps <= 0:
            raise ConfigError("train.weight_decay and train.grad_clip must be >= 0 and train.eps > 0")
        for name in ("beta1", "beta2"):
            if not 0.0 <= getattr(self, name) < 1.0:
                raise ConfigError(f"train.{name} must be in [0, 1), got {getattr(self, name)}")
        if self.lr_decay_iters is not None and self.lr_decay_iters < 1:
            raise ConfigError(f"train.lr_decay_iters must be at least 1, got {self.lr_decay_iters}")
        if self.max_time is not None and self.max_time <= 0:
            raise ConfigError(f"train.max_time must be positive seconds, got {self.max_time}")
        if not 0.0 < self.val_fraction < 1.0:
            raise ConfigError(f"train.val_fraction must be between 0 and 1, got {self.val_fraction}")
        # Upper bounds (attnlab.limits) and finiteness: a typo is refused here, not after hours.
        limits.check_seed(self.seed, "train.seed")
        limits.check_int(self.batch_size, "train.batch_size", 1, limits.MAX_BATCH_SIZE)
        limits.check_int(self.grad_accum_steps, "train.grad_accum_steps", 1, limits.MAX_GRAD_ACCUM)
        limits.check_int(self.eval_iters, "train.eval_iters", 1, limits.MAX_EVAL_ITERS)
        for name in ("max_iters", "warmup_iters", "eval_interval", "log_interval", "lr_decay_iters"):
            if getattr(self, name) is not None:
                limits.check_int(getattr(self, name), f"train.{name}", 0, limits.MAX_ITERS)
        limits.check_float(self.lr, "train.lr", 0.0, limits.MAX_LR, low_open=True)
        for name in ("min_lr", "weight_decay", "eps", "grad_clip"):
            limits.check_float(getattr(self, name), f"train.{name}", 0.0)
        if self.max_time is not None:
            limits.check_float(
                self.max_time,
                "train.max_time",
                0.0,
                limits.MAX_SECONDS,
                low_open=True,
                hint="give seconds, or null for no time limit",
            )

    def lr_at(self, step: int) -> float:
        """Learning rate for optimizer step `step` (0-based)."""
        return warmup_cosine_lr(
            step,
            max_lr=self.lr,
            min_lr=self.min_lr,
            warmup_iters=self.warmup_iters,
            decay_iters=self.lr_decay_iters or self.max_iters,
        )


class BatchSource(Protocol):
    """Where batches come from: dicts of NumPy arrays keyed by the model's arguments."""

    def train_batch(self, batch_size: int, rng: np.random.Generator) -> dict[str, np.ndarray]:
        """A random training batch."""

    def eval_batches(
        self, batch_size: int, num_batches: int, split: str = "val", seed: int = 0
    ) -> list[dict[str, np.ndarray]]:
        """Fixed evaluation batches (the same on every call)."""


class TrainingInterrupted(KeyboardInterrupt):
    """Raised after Ctrl-C / SIGTERM once the checkpoint is safely written."""

    def __init__(self, step: int, folder: Path | None, signal_name: str):
        self.step, self.folder, self.signal_name = step, folder, signal_name
        where = f"; checkpoint saved to {folder} (continue with --resume)" if folder else ""
        super().__init__(f"training stopped by {signal_name} at step {step}{where}")


def _count_tokens(batch: dict[str, np.ndarray]) -> int:
    """What one batch trains on: tokens of a token batch, else examples (images, point clouds)."""
    for key in ("input_ids", "inputs", "images"):
        if key in batch:
            arr = batch[key]
            return int(arr.shape[0] * arr.shape[1]) if key != "images" and arr.ndim >= 2 else int(arr.shape[0])
    first = next(iter(batch.values()))
    return int(first.shape[0])


def _rate_unit(batch: dict[str, np.ndarray]) -> str:
    """The progress bar's name for what `_count_tokens` counts: tok, img or ex (examples)."""
    for key in ("input_ids", "inputs"):
        if key in batch:
            return "tok" if batch[key].ndim >= 2 else "ex"
    return "img" if "images" in batch else "ex"


class Trainer:
    """Trains an engine on a batch source and writes metrics and checkpoints.

    Args:
        engine: a `TorchEngine` or `NumpyEngine`.
        data: a `BatchSource` (e.g. `attnlab.data.text.LMData`).
        config: the `TrainConfig`.
        out_dir: run folder (also the checkpoint folder); None = write nothing.
        tokenizer: saved with every checkpoint.
        metadata: extra fields for the checkpoint's config.json (e.g. the data source).
        eval_hook: called at each evaluation; returns extra metrics (e.g. exact match)
            merged into metrics.jsonl and results.json.
        run_info: JSON-ready description of the run written to OUT/run.json.
        description: label of the progress bar (e.g. the model's name).
    """

    def __init__(
        self,
        engine: Any,
        data: BatchSource,
        config: TrainConfig,
        out_dir: str | Path | None = None,
        *,
        tokenizer: Any | None = None,
        metadata: dict[str, Any] | None = None,
        eval_hook: Callable[[], dict[str, float]] | None = None,
        run_info: dict[str, Any] | None = None,
        description: str = "train",
    ):
        self.description = description
        self.engine = engine
        self.data = data
        self.config = config
        self.out_dir = Path(out_dir) if out_dir is not None else None
        self.tokenizer = tokenizer
        self.metadata = dict(metadata or {})
        self.eval_hook = eval_hook
        self._rate_unit = "tok"  # what the bar's rate counts: tok, img or ex (set from the first batch)
        self.run_info = run_info or {}
        self.step = 0
        self.tokens_seen = 0
        self.train_seconds = 0.0
        self.best_val_loss = math.inf
        self.last_val_loss: float | None = None
        self.last_train_loss: float | None = None
        self.history: list[dict[str, Any]] = []
        self._stop_signal: str | None = None
        self._eval_batches: list | None = None

    @property
    def is_main(self) -> bool:
        return getattr(self.engine, "rank", 0) == 0

    # -- persistence ---------------------------------------------------------

    def _write_metrics(self, record: dict[str, Any]) -> None:
        self.history.append(record)
        if self.out_dir is not None and self.is_main:
            with open(self.out_dir / METRICS_FILE, "a", encoding="utf-8") as f:
                f.write(json.dumps(record) + "\n")

    def save_checkpoint(self) -> None:
        """Write model, tokenizer and training state into the run folder (rank 0)."""
        if self.out_dir is None or not self.is_main:
            return
        state = {
            "step": self.step,
            "tokens_seen": self.tokens_seen,
            "train_seconds": self.train_seconds,
            "best_val_loss": self.best_val_loss if math.isfinite(self.best_val_loss) else None,
            "last_val_loss": self.last_val_loss,
            "train_config": to_dict(self.config),
            "engine_name": self.engine.name,
            "engine": self.engine.state_dict(),
        }
        meta = {**self.metadata, "step": self.step, "val_loss": self.last_val_loss}
        # One transaction: model, tokenizer and training state of this step are published
        # together (a kill at any moment leaves this checkpoint or the previous one).
        expect = ckpt.expected_files(tokenizer=self.tokenizer is not None, training_state=True)
        with ckpt.CheckpointWriter(self.out_dir, step=self.step, expect=expect) as staging:
            ckpt.save_training_state(staging, state)
            self.engine.save_model(staging, self.tokenizer, meta)

    def _restore(self) -> None:
        assert self.out_dir is not None
        if self.is_main:
            ckpt.recover(self.out_dir)  # finish a checkpoint a crash left half-published
        if not ckpt.has_training_state(self.out_dir):
            raise CheckpointError(
                f"cannot resume: {str(self.out_dir)!r} holds no training state; start without --resume"
            )
        state = ckpt.load_training_state(self.out_dir, as_torch=self.engine.name == "torch")
        if state.get("engine_name", self.engine.name) != self.engine.name:
            raise CheckpointError(
                f"cannot resume: the run in {str(self.out_dir)!r} was trained with the "
                f"{state['engine_name']} engine; resume it with --engine {state['engine_name']}"
            )
        self.engine.load_state_dict(state["engine"])
        self.step = int(state["step"])
        self.tokens_seen = int(state.get("tokens_seen", 0))
        self.train_seconds = float(state.get("train_seconds", 0.0))
        best = state.get("best_val_loss")
        self.best_val_loss = math.inf if best is None else float(best)
        self.last_val_loss = state.get("last_val_loss")
        # Forget metrics logged after the checkpoint (a crash may have left some).
        path = self.out_dir / METRICS_FILE
        if path.is_file() and self.is_main:
            kept = []
            for line in path.read_text(encoding="utf-8").splitlines():
                try:
                    if json.loads(line).get("step", 0) <= self.step:
                        kept.append(line)
                except json.JSONDecodeError:
                    continue
            path.write_text("".join(k + "\n" for k in kept), encoding="utf-8")
        logger.info("resumed from %s at step %d", self.out_dir, self.step)

    # -- signals ---------------------------------------------------------------

    def _install_signal_handlers(self) -> dict[int, Any]:
        if threading.current_thread() is not threading.main_thread():
            return {}
        previous = {}

        def handler(signum, frame):  # noqa: ARG001
            if self._stop_signal is not None:  # second Ctrl-C: stop right away
                raise KeyboardInterrupt
            self._stop_signal = signal.Signals(signum).name
            logger.warning("%s received: finishing this step and saving a checkpoint", self._stop_signal)

        for sig in (signal.SIGINT, signal.SIGTERM):
            previous[sig] = signal.signal(sig, handler)
        return previous

    # -- the loop ---------------------------------------------------------------

    def evaluate(self) -> dict[str, float]:
        """Validation loss on the fixed evaluation batches (+ the eval hook's metrics)."""
        if self._eval_batches is None:
            self._eval_batches = self.data.eval_batches(
                self.config.batch_size, self.config.eval_iters, "val", self.config.seed
            )
        metrics = {"val_loss": self.engine.eval_loss(self._eval_batches)}
        if self.eval_hook is not None:
            metrics.update(self.eval_hook())
        return metrics

    def fit(self, resume: bool = False) -> dict[str, Any]:
        """Train until `max_iters` (or `max_time`, or Ctrl-C). Returns the final results.

        The run folder is locked for the whole run (`attnlab.runs.open_run`: a second writer
        is refused, naming this process); the recipes that call `fit` have already checked
        that the folder is attnlab's, so here a file of the user's is never refused but kept.

        Raises:
            TrainingInterrupted: after Ctrl-C / SIGTERM, once the checkpoint is written.
            RunLockedError: another process is writing the run folder.
        """
        if self.out_dir is None or not self.is_main:
            return self._fit(resume)
        from attnlab.runs import open_run

        with open_run(self.out_dir, command=self.description, force=True):
            return self._fit(resume)

    def _fit(self, resume: bool) -> dict[str, Any]:
        from attnlab.progress import progress_bar

        cfg = self.config
        if self.out_dir is not None and self.is_main:
            self.out_dir.mkdir(parents=True, exist_ok=True)
        if resume:
            self._restore()
        elif self.out_dir is not None and self.is_main:
            remove_own(self.out_dir / METRICS_FILE)
        if self.out_dir is not None and self.is_main and self.run_info:
            write_marker(self.out_dir, command=self.description, info=self.run_info)

        rank = getattr(self.engine, "rank", 0)
        previous_handlers = self._install_signal_handlers()
        bar = progress_bar(  # one updating line in a notebook cell, a tqdm bar in a terminal
            total=cfg.max_iters,
            initial=min(self.step, cfg.max_iters),
            desc=self.description,
            unit="it",
            dynamic_ncols=True,
            disable=not cfg.progress or not self.is_main,
            leave=True,
        )
        stop_reason = None
        try:
            if self.step == 0 and cfg.eval_interval > 0:
                metrics = self.evaluate()
                self._record_eval(metrics, bar)
            window_start, window_tokens = time.perf_counter(), 0
            while self.step < cfg.max_iters:
                t0 = time.perf_counter()
                rng = np.random.default_rng((cfg.seed, rank, self.step))
                micro = [self.data.train_batch(cfg.batch_size, rng) for _ in range(cfg.grad_accum_steps)]
                lr = cfg.lr_at(self.step)
                loss, grad_norm = self.engine.train_step(micro, lr)
                if not math.isfinite(loss):
                    raise TrainingDivergedError(
                        f"the training loss became {loss} at step {self.step + 1}; "
                        "lower train.lr or raise train.warmup_iters"
                    )
                self.step += 1
                step_tokens = sum(_count_tokens(b) for b in micro) * getattr(self.engine, "world_size", 1)
                self._rate_unit = _rate_unit(micro[0])
                self.tokens_seen += step_tokens
                window_tokens += step_tokens
                self.train_seconds += time.perf_counter() - t0
                self.last_train_loss = loss

                is_last = self.step >= cfg.max_iters
                out_of_time = cfg.max_time is not None and self.train_seconds >= cfg.max_time
                stop = self.engine.any_process(self._stop_signal is not None)
                is_eval = (
                    (cfg.eval_interval > 0 and self.step % cfg.eval_interval == 0) or is_last or out_of_time or stop
                )
                if self.step % cfg.log_interval == 0 or self.step == 1 or is_eval:
                    elapsed = time.perf_counter() - window_start
                    record = {
                        "step": self.step,
                        "train_loss": self.engine.mean_over_processes(loss),
                        "lr": lr,
                        "grad_norm": grad_norm,
                        "tokens": self.tokens_seen,
                        "tokens_per_sec": window_tokens / elapsed if elapsed > 0 else None,
                        "elapsed": self.train_seconds,
                    }
                    window_start, window_tokens = time.perf_counter(), 0
                    if is_eval:
                        record.update(self.evaluate())
                        self._note_eval(record)
                    self._write_metrics(record)
                    bar.set_postfix(self._postfix(record), refresh=False)
                bar.update(1)
                if is_eval:
                    self.save_checkpoint()
                if stop:
                    stop_reason = "signal"
                    break
                if out_of_time:
                    stop_reason = "max_time"
                    logger.info("train.max_time (%.0f s) reached at step %d", cfg.max_time, self.step)
                    break
        finally:
            bar.close()
            for sig, h in previous_handlers.items():
                signal.signal(sig, h)
        results = self._results(stop_reason)
        if getattr(self.engine, "world_size", 1) > 1:
            results["ranks_in_sync"] = self.engine.parameters_in_sync()
        if self.out_dir is not None and self.is_main:
            write_json_atomic(self.out_dir / RESULTS_FILE, results)
        if stop_reason == "signal":
            raise TrainingInterrupted(self.step, self.out_dir, self._stop_signal or "signal")
        return results

    def _note_eval(self, record: dict[str, Any]) -> None:
        val = record.get("val_loss")
        if val is not None and math.isfinite(val):
            self.last_val_loss = val
            self.best_val_loss = min(self.best_val_loss, val)

    def _record_eval(self, metrics: dict[str, float], bar: Any) -> None:
        record = {"step": self.step, "lr": self.config.lr_at(self.step), **metrics}
        self._note_eval(record)
        self._write_metrics(record)
        bar.set_postfix(self._postfix(record), refresh=False)

    def _postfix(self, record: dict[str, Any]) -> dict[str, str]:
        out = {}
        if record.get("train_loss") is not None:
            out["loss"] = f"{record['train_loss']:.3f}"
        if record.get("val_loss") is not None:
            out["val"] = f"{record['val_loss']:.3f}"
        if record.get("tokens_per_sec"):
            out[f"{self._rate_unit}/s"] = f"{record['tokens_per_sec']:,.0f}"
        return out

    def _results(self, stop_reason: str | None) -> dict[str, Any]:
        steps_run = max(self.step, 1)
        val = self.last_val_loss
        return {
            "step": self.step,
            "max_iters": self.config.max_iters,
            "train_loss": self.last_train_loss,
            "val_loss": val,
            "val_perplexity": math.exp(val) if val is not None and val < 50 else None,
            "best_val_loss": self.best_val_loss if math.isfinite(self.best_val_loss) else None,
            "tokens_seen": self.tokens_seen,
            "train_seconds": round(self.train_seconds, 3),
            "ms_per_iter": round(1000 * self.train_seconds / steps_run, 3),
            "tokens_per_sec": round(self.tokens_seen / self.train_seconds, 1) if self.train_seconds > 0 else None,
            "num_parameters": self.engine.num_parameters(),
            "engine": self.engine.name,
            "device": str(getattr(self.engine, "device", "cpu")),
            "world_size": getattr(self.engine, "world_size", 1),
            "stopped_early": stop_reason,
            **{
                k: v
                for k, v in (self.history[-1] if self.history else {}).items()
                if k not in ("step", "lr", "train_loss", "val_loss", "grad_norm", "tokens", "tokens_per_sec", "elapsed")
            },
        }


__all__: Sequence[str] = ["TrainConfig", "Trainer", "TrainingInterrupted", "BatchSource", "read_metrics"]

"""Training a tiny language model (any registered causal LM) from the Generate page, in a background thread.

Its progress is read from the run's metrics.jsonl (what the Trainer writes anyway), so
the page can draw a progress bar and the Trainer needs no callback.
"""

from __future__ import annotations

import dataclasses
import json
import logging
import threading
import time
from pathlib import Path
from typing import Any

from attnlab.errors import AttnlabError, ConfigError, DataError

logger = logging.getLogger(__name__)

TRAIN_PRESETS = ("nano", "baby")  # what the Generate page can train
MIN_TRAIN_SECONDS, MAX_TRAIN_SECONDS = 3, 300


def new_run_folder(root: Path, prefix: str) -> Path:
    """A fresh folder name inside the runs folder: PREFIX-YYYYmmdd-HHMMSS[-n]."""
    stamp = time.strftime("%Y%m%d-%H%M%S")
    folder = root / f"{prefix}-{stamp}"
    n = 1
    while folder.exists():
        n += 1
        folder = root / f"{prefix}-{stamp}-{n}"
    return folder


class TrainingJob:
    """Train a small causal language model on the embedded corpus in a background thread.

    The thread measures the speed of this machine, sets the number of steps that fit in
    `seconds`, and runs `attnlab.train.recipes.train_language_model`; `progress()` reads
    how far it got from the run's metrics.jsonl (what the Trainer writes anyway), so the
    Trainer needs no callback.

    Args:
        root: the runs folder (created if missing).
        preset: a size preset ("nano" or "baby"; every causal LM has both).
        seconds: training time budget (MIN_TRAIN_SECONDS..MAX_TRAIN_SECONDS).
        seed: training seed.
        arch: the registry's causal LM to train ("gpt", "llama", ...).
    """

    def __init__(self, root: Path, preset: str = "nano", seconds: float = 20.0, seed: int = 1337, arch: str = "gpt"):
        from attnlab.models import registry

        if arch not in registry.model_types("causal_lm"):
            raise ConfigError(
                f"unknown architecture {arch!r}; choose one of {', '.join(registry.model_types('causal_lm'))}"
            )
        if preset not in TRAIN_PRESETS:
            raise ConfigError(f"unknown preset {preset!r}; choose one of {', '.join(TRAIN_PRESETS)}")
        if not MIN_TRAIN_SECONDS <= seconds <= MAX_TRAIN_SECONDS:
            raise ConfigError(
                f"the training time must be between {MIN_TRAIN_SECONDS} and {MAX_TRAIN_SECONDS} seconds, got {seconds}"
            )
        if root.exists() and not root.is_dir():
            raise DataError(f"the runs folder {str(root)!r} is a file; start the app with another --runs-dir")
        self.root = root
        self.arch = arch
        self.preset = preset
        self.seconds = float(seconds)
        self.seed = seed
        self.folder = new_run_folder(root, f"app-{arch}-{preset}")
        self.max_iters: int | None = None  # known once the speed is measured
        self.results: dict[str, Any] | None = None
        self.error: str | None = None
        self.started = time.monotonic()
        self._started = False
        self._thread = threading.Thread(target=self._run, name=f"attnlab-train-{self.folder.name}", daemon=True)

    def start(self) -> TrainingJob:
        self.root.mkdir(parents=True, exist_ok=True)
        self.started = time.monotonic()
        self._started = True
        self._thread.start()
        return self

    @property
    def done(self) -> bool:
        return self._started and not self._thread.is_alive()

    def wait(self, timeout: float | None = None) -> bool:
        """Block until the job ends (or `timeout` seconds pass); True when it has ended."""
        self._thread.join(timeout)
        return not self._thread.is_alive()

    @property
    def relative(self) -> str:
        """The run folder relative to the runs folder."""
        return self.folder.name

    def _run(self) -> None:
        from attnlab.data.text import DEFAULT_CORPUS, load_text
        from attnlab.models import registry
        from attnlab.train.recipes import DataConfig, build_tokenizer_for, calibrate_iterations, train_language_model
        from attnlab.train.trainer import TrainConfig

        try:
            data = DataConfig(source=DEFAULT_CORPUS, tokenizer="char")
            model = registry.config_class(self.arch).from_name(self.preset)
            tokenizer = build_tokenizer_for(data, load_text(DEFAULT_CORPUS).text)
            base = TrainConfig(seed=self.seed, eval_interval=0, eval_iters=5, progress=False)
            iters, _ = calibrate_iterations(model, base, self.seconds, tokenizer.vocab_size)
            self.max_iters = iters
            train = dataclasses.replace(
                base,
                max_iters=iters,
                warmup_iters=min(100, max(1, iters // 10)),
                eval_interval=max(1, iters // 4),
                log_interval=max(1, iters // 100),
                max_time=self.seconds * 1.5,  # a guard if the machine slows down
            )
            self.results = train_language_model(self.folder, data=data, model=model, train=train, write_plots=False)
        except AttnlabError as e:
            self.error = str(e)
        except Exception as e:  # a bug: say so on the page, keep the traceback in the server log
            logger.exception("training from the app failed")
            self.error = (
                f"training failed unexpectedly ({type(e).__name__}: {e}); see the terminal running `attnlab app`"
            )

    def progress(self) -> tuple[float, str]:
        """(fraction done in [0, 1], a one-line status)."""
        if self.error is not None:
            return 1.0, f"failed: {self.error}"
        if self.results is not None:
            r = self.results
            loss = r.get("val_loss")
            return 1.0, f"done: {r.get('step')} steps" + (f", validation loss {loss:.2f}" if loss is not None else "")
        if self.max_iters is None:
            return 0.0, "measuring the speed of this machine ..."
        step, loss = 0, None
        path = self.folder / "metrics.jsonl"
        try:
            lines = path.read_text(encoding="utf-8").splitlines()
        except OSError:
            lines = []
        for line in reversed(lines):
            try:
                record = json.loads(line)
            except json.JSONDecodeError:
                continue  # a line being written
            step, loss = int(record.get("step", 0)), record.get("train_loss")
            break
        elapsed = time.monotonic() - self.started
        fraction = max(step / self.max_iters, min(elapsed / self.seconds, 1.0) * 0.95)
        text = f"step {step} of {self.max_iters}" + (f", training loss {loss:.2f}" if loss is not None else "")
        return min(fraction, 1.0), text


__all__ = [
    "MAX_TRAIN_SECONDS",
    "MIN_TRAIN_SECONDS",
    "TRAIN_PRESETS",
    "TrainingJob",
    "new_run_folder",
]

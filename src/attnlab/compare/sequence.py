"""RNN vs LSTM vs GRU vs transformer on long-range recall: `attnlab compare sequence`.

The task (`attnlab.data.recall_task.RecallTask`): a sequence of random symbols holds
one marked symbol, k steps before a final query token; the model must name the marked
symbol at the query. Each training batch mixes all distances k = 1 .. seq_len - 1, so
one trained model gives an accuracy-against-distance curve. A recurrent network has
to carry the symbol through k steps of its state, and the training signal has to
travel back through the same k steps (Bengio et al. 1994; Hochreiter & Schmidhuber
1997); a transformer reaches the marked position in one attention step (Vaswani et
al. 2017, sec. 4).

Each model is trained with the library's `Trainer` and `TorchEngine` (AdamW, warmup
+ cosine, gradient clipping 1.0) on freshly sampled batches; an "epoch" is
`steps_per_epoch` optimizer steps (the task is generated, so there is no fixed data
set to pass over). The run folder gets:

    results.json               per model: parameters, training seconds, seconds per epoch,
                               accuracy at every distance, the first distance below 90%,
                               gradient norms through time, ms per step by sequence length
    results.md                 a markdown table of the same
    accuracy_by_distance.png   accuracy against k for every model
    gradient_norms.png         |d loss / d x_t| for every earlier step t, before and after training
    training_time.png          seconds per epoch, and ms per training step as sequences grow
    learning_curves.png        training loss and probe accuracy after every epoch
    models/NAME/               each trained model as an attnlab checkpoint

Notation: B batch, T time (seq_len), k distance, S num_symbols.
"""

from __future__ import annotations

import dataclasses
import logging
import math
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from attnlab import limits
from attnlab.compare._common import check_device
from attnlab.errors import ConfigError
from attnlab.runs import writes_run

logger = logging.getLogger(__name__)

__all__ = [
    "SEQUENCE_MODEL_NAMES",
    "SEQUENCE_TASK_NAMES",
    "SequenceRecipe",
    "DEFAULT_SEQUENCE_RECIPES",
    "SequenceCompareConfig",
    "TaskBatchSource",
    "parse_sequence_model_names",
    "build_sequence_model",
    "evaluate_by_distance",
    "first_distance_below",
    "time_training_steps",
    "compare_sequence",
    "format_sequence_table",
]

SEQUENCE_MODEL_NAMES = ("rnn", "lstm", "gru", "transformer")
SEQUENCE_TASK_NAMES = ("recall",)
_ALIASES = {"gpt": "transformer", "attention": "transformer"}


@dataclass(frozen=True)
class SequenceRecipe:
    """How one sequence model is trained by default."""

    lr: float  # peak AdamW learning rate
    weight_decay: float  # AdamW decoupled weight decay on matrices
    warmup_steps: int  # linear warmup length in optimizer steps


# Adam at 3e-3 with clipping is the usual setting for small recurrent nets on synthetic
# memory tasks; the transformer prefers a smaller rate after a short warmup.
DEFAULT_SEQUENCE_RECIPES: dict[str, SequenceRecipe] = {
    "rnn": SequenceRecipe(lr=3e-3, weight_decay=0.0, warmup_steps=50),
    "lstm": SequenceRecipe(lr=3e-3, weight_decay=0.0, warmup_steps=50),
    "gru": SequenceRecipe(lr=3e-3, weight_decay=0.0, warmup_steps=50),
    "transformer": SequenceRecipe(lr=1e-3, weight_decay=0.01, warmup_steps=100),
}


@dataclass(frozen=True)
class SequenceCompareConfig:
    """Settings of `compare_sequence` (the flags of `attnlab compare sequence`)."""

    models: tuple[str, ...] = SEQUENCE_MODEL_NAMES  # which models to train: rnn, lstm, gru, transformer
    task: str = "recall"  # the task; "recall": name the marked symbol k steps back
    seq_len: int = 64  # tokens per sequence T; distances run from 1 to T - 1
    num_symbols: int = 8  # alphabet size S; chance accuracy is 1/S
    epochs: int | None = None  # epochs of `steps_per_epoch` steps; None = 15 (quick: 2)
    steps_per_epoch: int | None = None  # optimizer steps per epoch; None = 100 (quick: 15)
    batch_size: int = 64  # sequences per optimizer step
    lr: float | None = None  # peak learning rate for every model; None = each model's recipe
    seed: int = 0  # seeds initialisation, batches and dropout
    device: str = "auto"  # auto, cpu, cuda, cuda:N or mps
    per_distance: int | None = None  # probe sequences at every distance; None = 100 (quick: 20)
    timing_lengths: tuple[int, ...] | None = (
        None  # sequence lengths of the step-time sweep; None = 16..256 (quick: 16, 32); () = skip
    )
    quick: bool = False  # tiny models and a short run: a smoke test in seconds
    save_models: bool = True  # write each trained model to OUT/models/NAME
    progress: bool = True  # progress bars

    def __post_init__(self) -> None:
        object.__setattr__(self, "models", tuple(parse_sequence_model_names(self.models)))
        if self.task not in SEQUENCE_TASK_NAMES:
            raise ConfigError(f"unknown task {self.task!r}; valid tasks: {', '.join(SEQUENCE_TASK_NAMES)}")
        if self.seq_len < 3:
            raise ConfigError(
                f"seq_len must be at least 3 (a marked token, a distractor and the query), got {self.seq_len}"
            )
        for name in ("epochs", "steps_per_epoch", "per_distance"):
            value = getattr(self, name)
            if value is not None and value < 1:
                raise ConfigError(f"{name} must be at least 1, got {value}")
        if self.batch_size < 1:
            raise ConfigError(f"batch_size must be at least 1, got {self.batch_size}")
        if self.num_symbols < 2:
            raise ConfigError(f"num_symbols must be at least 2, got {self.num_symbols}")
        if self.lr is not None and not (self.lr > 0 and math.isfinite(self.lr)):
            raise ConfigError(f"lr must be a positive number, got {self.lr}")
        if self.timing_lengths is not None:
            object.__setattr__(self, "timing_lengths", tuple(int(t) for t in self.timing_lengths))
            if any(t < 2 for t in self.timing_lengths):
                raise ConfigError(f"timing_lengths must all be at least 2, got {self.timing_lengths}")
            for t in self.timing_lengths:
                limits.check_int(t, "each of timing_lengths", 2, limits.MAX_COMPARE_SEQ_LEN)
        # Upper bounds (attnlab.limits): a typo is refused at once, not after hours of training.
        limits.check_seed(self.seed, "seed")
        limits.check_int(self.seq_len, "seq_len", 3, limits.MAX_COMPARE_SEQ_LEN)
        limits.check_int(self.num_symbols, "num_symbols", 2, limits.MAX_SYMBOLS)
        limits.check_int(self.batch_size, "batch_size", 1, limits.MAX_BATCH_SIZE)
        if self.epochs is not None:
            limits.check_int(self.epochs, "epochs", 1, limits.MAX_EPOCHS)
        if self.steps_per_epoch is not None:
            limits.check_int(self.steps_per_epoch, "steps_per_epoch", 1, limits.MAX_ITERS)
        if self.per_distance is not None:
            limits.check_int(self.per_distance, "per_distance", 1, 100_000)
        if self.lr is not None:
            limits.check_float(self.lr, "lr", 0.0, limits.MAX_LR, low_open=True)

    @property
    def num_epochs(self) -> int:
        """Epochs actually run."""
        return self.epochs if self.epochs is not None else (2 if self.quick else 15)

    @property
    def epoch_steps(self) -> int:
        """Optimizer steps per epoch actually run."""
        return self.steps_per_epoch if self.steps_per_epoch is not None else (15 if self.quick else 100)

    @property
    def probe_per_distance(self) -> int:
        """Probe sequences at each distance."""
        return self.per_distance if self.per_distance is not None else (20 if self.quick else 100)

    @property
    def sweep_lengths(self) -> tuple[int, ...]:
        """Sequence lengths of the step-time sweep."""
        if self.timing_lengths is not None:
            return self.timing_lengths
        return (16, 32) if self.quick else (16, 32, 64, 128, 256)

    def recipe(self, name: str) -> SequenceRecipe:
        """The recipe of model `name` with this run's overrides applied."""
        base = DEFAULT_SEQUENCE_RECIPES[name]
        warmup = min(base.warmup_steps, max(1, self.num_epochs * self.epoch_steps // 5))
        return dataclasses.replace(base, lr=self.lr if self.lr is not None else base.lr, warmup_steps=warmup)


def parse_sequence_model_names(names: str | Sequence[str]) -> list[str]:
    """Validate model names ("rnn,lstm,gru,transformer" or a list).

    Raises:
        ConfigError: an unknown or repeated name (the message lists the valid ones).
    """
    items = [n.strip().lower() for n in (names.split(",") if isinstance(names, str) else names)]
    items = [n for n in items if n]
    if not items:
        raise ConfigError(f"no model given; choose from {', '.join(SEQUENCE_MODEL_NAMES)}")
    out = []
    for item in items:
        name = _ALIASES.get(item, item)
        if name not in SEQUENCE_MODEL_NAMES:
            raise ConfigError(f"unknown model {item!r}; valid models: {', '.join(SEQUENCE_MODEL_NAMES)}")
        if name in out:
            raise ConfigError(f"model {name!r} is listed twice")
        out.append(name)
    return out


class TaskBatchSource:
    """A `BatchSource` over a generated task: fresh training batches, fixed evaluation batches.

    Batches are dicts {"input_ids": (B, T) int64, "targets": (B, T) int64 (-100 where
    not scored)}, the keyword arguments of `RecurrentModel` and `SequenceTransformer`.

    Args:
        task: a `RecallTask` (anything with `sample(batch_size, seed)` returning a `SequenceBatch`).
    """

    def __init__(self, task: Any):
        self.task = task

    def train_batch(self, batch_size: int, rng: np.random.Generator) -> dict[str, np.ndarray]:
        """A new batch drawn with the Trainer's generator (distances uniform)."""
        return self.task.sample(batch_size, rng).model_inputs()

    def eval_batches(
        self, batch_size: int, num_batches: int, split: str = "val", seed: int = 0
    ) -> list[dict[str, np.ndarray]]:
        """`num_batches` fixed batches from a generator kept apart from training's."""
        rng = np.random.default_rng((seed, 999_983))  # never the (seed, rank, step) of a training batch
        return [self.task.sample(batch_size, rng).model_inputs() for _ in range(num_batches)]


def build_sequence_model(name: str, task: Any, *, quick: bool = False, max_seq_len: int | None = None) -> Any:
    """Build model `name` ("rnn", "lstm", "gru", "transformer") for `task`.

    Presets: `small` (about 26-28k parameters each), `tiny` in quick mode.

    Args:
        name: the model.
        task: gives vocab_size, num_classes and seq_len.
        quick: tiny models.
        max_seq_len: context of the transformer (default the task's seq_len).
    """
    preset = "tiny" if quick else "small"
    if name in ("rnn", "lstm", "gru"):
        from attnlab.models.baselines import RecurrentConfig, RecurrentModel

        return RecurrentModel(
            RecurrentConfig.from_name(preset, cell=name, vocab_size=task.vocab_size, num_classes=task.num_classes)
        )
    if name == "transformer":
        from attnlab.models.sequence_transformer import SequenceTransformer, SequenceTransformerConfig

        return SequenceTransformer(
            SequenceTransformerConfig.from_name(
                preset,
                vocab_size=task.vocab_size,
                num_classes=task.num_classes,
                max_seq_len=max_seq_len or task.config.seq_len,
            )
        )
    raise ConfigError(f"unknown model {name!r}; valid models: {', '.join(SEQUENCE_MODEL_NAMES)}")


def evaluate_by_distance(model: Any, batch: Any, device: Any, *, chunk: int = 512) -> dict[int, float]:
    """Accuracy of `model` at every distance of a probe `batch` (eval mode, no gradients).

    Returns:
        {k: accuracy in [0, 1]}, ascending k.
    """
    import torch

    from attnlab.data.recall_task import accuracy_by_distance

    model.eval()
    predictions = []
    with torch.no_grad():
        for i in range(0, len(batch), chunk):
            ids = torch.as_tensor(batch.input_ids[i : i + chunk], device=device)
            predictions.append(model(ids).logits.argmax(-1).cpu().numpy())
    return accuracy_by_distance(np.concatenate(predictions), batch)


def first_distance_below(accuracy: dict[int, float], threshold: float = 0.9) -> int | None:
    """The smallest distance k whose accuracy is below `threshold` (None: never below)."""
    below = [k for k in sorted(accuracy) if accuracy[k] < threshold]
    return below[0] if below else None


def time_training_steps(
    build: Callable[[int], Any],
    lengths: Sequence[int],
    *,
    batch_size: int = 64,
    vocab_size: int = 17,
    steps: int = 5,
    warmup: int = 2,
    device: Any = "cpu",
) -> dict[int, float]:
    """Milliseconds per training step (forward, backward, AdamW) at each sequence length.

    Args:
        build: length T -> a fresh model that accepts (B, T) token ids.
        lengths: sequence lengths to time.
        batch_size: sequences per step.
        vocab_size: token ids are drawn from [0, vocab_size).
        steps: timed steps per length (the median is kept).
        warmup: untimed steps first (allocations, kernel selection).
        device: where to run.
    Returns:
        {T: median ms per step}.
    """
    import torch

    out: dict[int, float] = {}
    generator = torch.Generator().manual_seed(0)
    is_cuda = str(device).startswith("cuda")
    for T in lengths:
        model = build(T).to(device).train()
        optimizer = torch.optim.AdamW(model.parameters(), lr=1e-3)
        ids = torch.randint(0, vocab_size, (batch_size, T), generator=generator).to(device)
        targets = torch.full((batch_size, T), -100, dtype=torch.long)
        targets[:, -1] = 0
        targets = targets.to(device)
        times = []
        for i in range(warmup + steps):
            if is_cuda:
                torch.cuda.synchronize()
            start = time.perf_counter()
            loss = model(ids, targets).loss
            loss.backward()
            optimizer.step()
            optimizer.zero_grad(set_to_none=True)
            if is_cuda:
                torch.cuda.synchronize()
            if i >= warmup:
                times.append(time.perf_counter() - start)
        out[int(T)] = 1000.0 * float(np.median(times))
    return out


def _gradient_norms(model: Any, batch: Any, device: Any) -> list[float]:
    import torch

    from attnlab.models.baselines import gradient_norms_through_time

    ids = torch.as_tensor(batch.input_ids, device=device)
    targets = torch.as_tensor(batch.targets, device=device)
    return [float(v) for v in gradient_norms_through_time(model, ids, targets, wrt="embedding")]


@writes_run("compare")
def compare_sequence(
    config: SequenceCompareConfig,
    out_dir: str | Path,
    *,
    on_model_done: Callable[[str, dict[str, Any]], None] | None = None,
) -> dict[str, Any]:
    """Train and compare sequence models on the recall task; write results and figures.

    Args:
        config: which models, the task and training settings.
        out_dir: run folder (created; existing files in it are overwritten).
        on_model_done: called with (name, result) after each model.
    Returns:
        The results dict written to OUT/results.json, plus "table" (markdown) and "files".
    """
    import torch

    from attnlab.data.recall_task import RecallTask
    from attnlab.models.registry import save_model
    from attnlab.train.engine import TorchEngine
    from attnlab.train.trainer import TrainConfig, Trainer
    from attnlab.utils import seed_everything, write_json_atomic, write_text_atomic
    from attnlab.viz import vision

    out = Path(out_dir)
    if out.exists() and not out.is_dir():
        raise ConfigError(f"--out {str(out)!r} is a file; pass a folder for the results")
    check_device(config.device)
    task = RecallTask(num_symbols=config.num_symbols, seq_len=config.seq_len)
    out.mkdir(parents=True, exist_ok=True)
    probe = task.evaluation_set(per_distance=config.probe_per_distance)
    # a smaller probe for the per-epoch curve: the full one would cost as much as training
    curve_probe = task.evaluation_set(per_distance=min(20, config.probe_per_distance), seed=4321)
    gradient_batch = task.sample(64, seed=777)  # a fixed batch for the gradient picture
    source = TaskBatchSource(task)
    epochs, steps_per_epoch = config.num_epochs, config.epoch_steps

    models: dict[str, dict[str, Any]] = {}
    files: list[str] = []
    device_name = "cpu"
    for name in config.models:
        recipe = config.recipe(name)
        seed_everything(config.seed)
        model = build_sequence_model(name, task, quick=config.quick)
        train_config = TrainConfig(
            batch_size=config.batch_size,
            max_iters=epochs * steps_per_epoch,
            lr=recipe.lr,
            min_lr=recipe.lr * 0.05,
            warmup_iters=recipe.warmup_steps,
            weight_decay=recipe.weight_decay,
            grad_clip=1.0,
            eval_interval=steps_per_epoch,
            eval_iters=4,
            log_interval=max(1, steps_per_epoch // 10),
            seed=config.seed,
            device=config.device,
            progress=config.progress,
        )
        engine = TorchEngine(
            model,
            lr=recipe.lr,
            weight_decay=recipe.weight_decay,
            grad_clip=1.0,
            device=config.device,
            distributed=False,
        )
        device = engine.device
        device_name = str(device)
        grads_init = _gradient_norms(engine.module, gradient_batch, device)

        def probe_accuracy(model=engine.module, device=device) -> dict[str, float]:
            by_k = evaluate_by_distance(model, curve_probe, device)
            model.train()
            return {"probe_accuracy": float(np.mean(list(by_k.values())))}

        logger.info(
            "training %s: %s parameters, %d epochs x %d steps",
            name,
            f"{engine.num_parameters():,}",
            epochs,
            steps_per_epoch,
        )
        trainer = Trainer(engine, source, train_config, None, eval_hook=probe_accuracy)
        results = trainer.fit()
        model = engine.module
        by_k = evaluate_by_distance(model, probe, device)
        grads_trained = _gradient_norms(model, gradient_batch, device)
        step_ms = {}
        if config.sweep_lengths:
            step_ms = time_training_steps(
                lambda T, name=name: build_sequence_model(name, task, quick=config.quick, max_seq_len=T),
                config.sweep_lengths,
                batch_size=config.batch_size,
                vocab_size=task.vocab_size,
                steps=3 if config.quick else 5,
                device=device,
            )
        train_seconds = float(results["train_seconds"])
        curve = [
            {
                "epoch": r["step"] / steps_per_epoch,
                "train_loss": _mean_train_loss(trainer.history, r["step"], steps_per_epoch),
                "test_accuracy": r["probe_accuracy"],
                "test_loss": r.get("val_loss"),
            }
            for r in trainer.history
            if "probe_accuracy" in r
        ]
        result = {
            "model_type": model.model_type,
            "parameters": int(sum(p.numel() for p in model.parameters())),
            "epochs": epochs,
            "steps": int(results["step"]),
            "train_seconds": round(train_seconds, 2),
            "seconds_per_epoch": round(train_seconds / epochs, 3),
            "ms_per_step": round(1000 * train_seconds / max(int(results["step"]), 1), 3),
            "mean_accuracy": float(np.mean(list(by_k.values()))),
            "accuracy_by_distance": {str(k): v for k, v in by_k.items()},
            "first_distance_below_90": first_distance_below(by_k, 0.9),
            "gradient_norms": {"init": grads_init, "trained": grads_trained},
            "step_ms_by_length": {str(t): round(v, 3) for t, v in step_ms.items()},
            "recipe": dataclasses.asdict(recipe),
            "config": _config_dict(model.config),
            "curve": curve,
        }
        if config.save_models:
            folder = out / "models" / name
            save_model(
                model,
                folder,
                metadata={
                    "task": "recall",
                    "task_config": dataclasses.asdict(task.config),
                    "mean_accuracy": result["mean_accuracy"],
                },
            )
            result["checkpoint"] = str(folder)
        models[name] = result
        if on_model_done is not None:
            on_model_done(name, result)

    summary = {
        "task": {
            "name": config.task,
            **dataclasses.asdict(task.config),
            "vocab_size": task.vocab_size,
            "chance_accuracy": task.chance_accuracy,
            "probe_per_distance": config.probe_per_distance,
        },
        "settings": {
            **dataclasses.asdict(config),
            "models": list(config.models),
            "epochs": epochs,
            "steps_per_epoch": steps_per_epoch,
        },
        "device": device_name,
        "torch_threads": torch.get_num_threads(),
        "models": models,
    }
    table = format_sequence_table(models)
    write_json_atomic(out / "results.json", summary)
    write_text_atomic(out / "results.md", f"# attnlab compare sequence: recall, seq_len {config.seq_len}\n\n{table}\n")
    files += [str(out / "results.json"), str(out / "results.md")]

    accuracies = {n: {int(k): v for k, v in r["accuracy_by_distance"].items()} for n, r in models.items()}
    files.append(
        str(
            vision.plot_accuracy_by_distance(
                accuracies,
                out / "accuracy_by_distance.png",
                chance=task.chance_accuracy,
                title=f"Recall the marked symbol k steps back (T = {config.seq_len}, {config.num_symbols} symbols)",
            )
        )
    )
    files.append(
        str(
            vision.plot_gradient_norms(
                {
                    "at initialisation": {n: np.asarray(r["gradient_norms"]["init"]) for n, r in models.items()},
                    "after training": {n: np.asarray(r["gradient_norms"]["trained"]) for n, r in models.items()},
                },
                out / "gradient_norms.png",
                title="How much of the training signal at the query reaches each earlier input",
            )
        )
    )
    files.append(
        str(
            vision.plot_training_time(
                {n: r["seconds_per_epoch"] for n, r in models.items()},
                out / "training_time.png",
                step_ms_by_length={
                    n: {int(t): v for t, v in r["step_ms_by_length"].items()}
                    for n, r in models.items()
                    if r["step_ms_by_length"]
                }
                or None,
                title=f"Training time ({steps_per_epoch} steps of {config.batch_size} sequences per epoch, {device_name})",
            )
        )
    )
    files.append(
        str(
            vision.plot_learning_curves(
                {n: r["curve"] for n, r in models.items()},
                out / "learning_curves.png",
                accuracy_label="probe accuracy (all distances)",
                title=f"Learning curves (recall, T = {config.seq_len})",
            )
        )
    )
    return {**summary, "table": table, "files": files}


def _mean_train_loss(history: list[dict[str, Any]], step: int, steps_per_epoch: int) -> float | None:
    losses = [
        r["train_loss"]
        for r in history
        if r.get("train_loss") is not None and step - steps_per_epoch < r["step"] <= step
    ]
    return float(np.mean(losses)) if losses else None


def _config_dict(config: Any) -> dict[str, Any]:
    from attnlab.config import to_dict

    return to_dict(config)


def format_sequence_table(models: dict[str, dict[str, Any]]) -> str:
    """A markdown table: parameters, time per epoch, accuracy, and where accuracy falls below 90%."""
    lines = [
        "| model | parameters | s / epoch | mean accuracy | accuracy at k = 1 | at the longest k | first k below 90% |",
        "|---|---:|---:|---:|---:|---:|---:|",
    ]
    for name, r in models.items():
        by_k = {int(k): v for k, v in r["accuracy_by_distance"].items()}
        first = r["first_distance_below_90"]
        lines.append(
            f"| {name} | {r['parameters']:,} | {r['seconds_per_epoch']:.2f} | {100 * r['mean_accuracy']:.1f}% | "
            f"{100 * by_k[min(by_k)]:.1f}% | {100 * by_k[max(by_k)]:.1f}% | {first if first is not None else 'never'} |"
        )
    return "\n".join(lines)

"""Helpers shared by the comparisons."""

from __future__ import annotations

import logging
import math
from collections.abc import Sequence
from typing import Any

import numpy as np

from attnlab.errors import ConfigError

logger = logging.getLogger(__name__)


def check_device(device: str) -> str:
    """The device `device` resolves to ("auto" -> cuda, mps or cpu), checked before any training.

    Raises:
        ConfigError: an unknown or unavailable device (the message names the --device flag).
    """
    from attnlab.utils import select_device

    try:
        return select_device(device)
    except ConfigError as e:
        raise ConfigError(str(e).replace("--train.device=", "--device ")) from None


# ---------------------------------------------------------------------------
# Training one classifier (compare mnist, compare points)
# ---------------------------------------------------------------------------


class _ClassifierEngine:
    """Mixin for TorchEngine: one pass over the evaluation batches gives the loss and the
    accuracy (the Trainer asks for the loss; the eval hook reads `last_accuracy`)."""

    last_accuracy: float | None = None

    def eval_loss(self, batches: Sequence[dict[str, np.ndarray]]) -> float:
        torch = self.torch  # type: ignore[attr-defined]
        module = self.module  # type: ignore[attr-defined]
        module.eval()
        total_loss, correct, count = 0.0, 0, 0
        with torch.no_grad(), self._autocast():  # type: ignore[attr-defined]
            for batch in batches:
                b = self._to_device(batch)  # type: ignore[attr-defined]
                out = module(**b)
                n = int(b["targets"].numel())
                total_loss += float(out.loss) * n
                correct += int((out.logits.argmax(-1) == b["targets"]).sum())
                count += n
        module.train()
        self.last_accuracy = correct / count if count else float("nan")
        return total_loss / count if count else float("nan")


def classifier_engine(model: Any, recipe: Any, device: str) -> Any:
    """A TorchEngine (AdamW with the recipe's lr and weight decay) whose eval_loss also counts accuracy."""
    from attnlab.train.engine import TorchEngine

    # The subclass is made here, not at import, so that registering the CLI command
    # (which imports this module) does not import the training stack.
    engine_class = type("ClassifierEngine", (_ClassifierEngine, TorchEngine), {})
    return engine_class(
        model,
        lr=recipe.lr,
        weight_decay=recipe.weight_decay,
        grad_clip=1.0,
        device=device,
        precision="auto",
        distributed=False,
    )


class ComparisonInterrupted(KeyboardInterrupt):
    """A comparison stopped by Ctrl-C / SIGTERM while training one of its models.

    The message says which model and step, which finished models were saved, and that the
    comparison's tables and figures were not written.
    """

    def __init__(self, signal_name: str, model: str, step: int, max_iters: int, saved: Sequence[str]):
        self.signal_name, self.model, self.step, self.saved = signal_name, model, step, list(saved)
        kept = (
            f"the models finished before it are saved ({', '.join(self.saved)})"
            if self.saved
            else "no model had finished, so nothing was saved"
        )
        super().__init__(
            f"comparison stopped by {signal_name} while training {model} (step {step} of {max_iters}); {kept}; "
            "the tables and figures were not written: run the same command again to train the comparison "
            "from the start"
        )


def train_classifier(
    name: str,
    model: Any,
    recipe: Any,
    source: Any,
    config: Any,
    *,
    what: str = "examples",
    saved: Sequence[str] = (),
) -> tuple[Any, dict[str, Any], list[dict[str, Any]]]:
    """Train a classifier with the library's Trainer for `recipe.epochs` epochs.

    Args:
        name: the model's name in the log.
        model: the module; `model(**batch)` returns a `ModelOutput` with logits and loss.
        recipe: batch_size, epochs, lr, min_lr_ratio, warmup_epochs, weight_decay.
        source: a batch source with `steps_per_epoch(batch_size)` and `test_labels` (the
            held-out split, evaluated after every epoch; it chooses nothing).
        config: seed, device and progress of the comparison.
        what: what one example is, for the log ("images", "clouds").
        saved: the folders of the models this comparison finished and saved before this one
            (named when Ctrl-C or SIGTERM stops it).
    Returns:
        (engine, the Trainer's results, the per-epoch curve).
    Raises:
        ComparisonInterrupted: a signal stopped the training (it says what was saved).
    """
    from attnlab.train.trainer import TrainConfig, Trainer, TrainingInterrupted

    steps_per_epoch = source.steps_per_epoch(recipe.batch_size)
    max_iters = recipe.epochs * steps_per_epoch
    train_config = TrainConfig(
        batch_size=recipe.batch_size,
        max_iters=max_iters,
        lr=recipe.lr,
        min_lr=recipe.lr * recipe.min_lr_ratio,
        warmup_iters=min(round(recipe.warmup_epochs * steps_per_epoch), max_iters - 1),
        weight_decay=recipe.weight_decay,
        grad_clip=1.0,
        eval_interval=steps_per_epoch,
        eval_iters=math.ceil(len(source.test_labels) / recipe.batch_size),
        log_interval=max(1, steps_per_epoch // 10),
        seed=config.seed,
        device=config.device,
        progress=config.progress,
    )
    engine = classifier_engine(model, recipe, config.device)
    trainer = Trainer(engine, source, train_config, None, eval_hook=lambda: {"test_accuracy": engine.last_accuracy})
    logger.info(
        "training %s: %s parameters, %d epoch(s) x %d steps of %d %s",
        name,
        f"{engine.num_parameters():,}",
        recipe.epochs,
        steps_per_epoch,
        recipe.batch_size,
        what,
    )
    try:
        results = trainer.fit()
    except TrainingInterrupted as e:
        raise ComparisonInterrupted(e.signal_name, name, e.step, max_iters, saved) from None
    return engine, results, epoch_curve(trainer.history, steps_per_epoch)


def epoch_curve(history: list[dict[str, Any]], steps_per_epoch: int) -> list[dict[str, Any]]:
    """Per epoch: mean logged training loss, test loss and test accuracy at its end."""
    curve = []
    for record in history:
        if "test_accuracy" not in record:
            continue
        epoch = record["step"] / steps_per_epoch
        start = record["step"] - steps_per_epoch
        losses = [
            r["train_loss"] for r in history if r.get("train_loss") is not None and start < r["step"] <= record["step"]
        ]
        curve.append(
            {
                "epoch": round(epoch, 4),
                "train_loss": float(np.mean(losses)) if losses else None,
                "test_loss": record.get("val_loss"),
                "test_accuracy": record.get("test_accuracy"),
            }
        )
    return curve

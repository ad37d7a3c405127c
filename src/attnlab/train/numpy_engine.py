"""The NumPy engine: the Trainer's `Engine` protocol for the from-scratch NumPy GPT (and the
LLaMA-style model, which `NumpyGPT` builds from a `LlamaConfig`).

It does what `TorchEngine` does, with hand-written gradients instead of autograd:
AdamW over two parameter groups (decay on matrices and embeddings, none on biases and
norm gains), gradient accumulation over micro-batches (each backward adds 1/n of its
gradient), global-norm clipping, and resumable optimizer + dropout-RNG state. Runs on
the CPU in float32 and never imports torch.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

from attnlab.configs.gpt import GPTConfig
from attnlab.configs.llama import LlamaConfig
from attnlab.errors import ConfigError
from attnlab.scratch.gpt import NumpyGPT, load_numpy_gpt
from attnlab.scratch.optim import AdamW, clip_grad_norm, global_grad_norm

__all__ = ["NumpyEngine"]

logger = logging.getLogger(__name__)


class NumpyEngine:
    """Trains a `NumpyGPT`, GPT or LLaMA-style (one process, CPU).

    Args:
        model: the NumPy model.
        lr, betas, eps, weight_decay: AdamW settings (lr is set every step by the Trainer).
        grad_clip: clip the global gradient norm to this value (0 = no clipping).
    """

    name = "numpy"
    rank = 0
    world_size = 1
    device = "cpu"

    def __init__(
        self,
        model: NumpyGPT,
        *,
        lr: float = 1e-3,
        betas: tuple[float, float] = (0.9, 0.99),
        eps: float = 1e-8,
        weight_decay: float = 0.1,
        grad_clip: float = 1.0,
    ):
        self.model = model
        self.optimizer = AdamW(model.param_groups(weight_decay), lr=lr, betas=betas, eps=eps)
        self.grad_clip = grad_clip

    @classmethod
    def for_gpt(
        cls, model_config: GPTConfig | LlamaConfig, train: Any, init_from: str | Path | None = None
    ) -> NumpyEngine:
        """A NumPy engine for a fresh model of `model_config` (or the checkpoint `init_from`).

        Args:
            model_config: the model's config, a `GPTConfig` or a `LlamaConfig` (ignored with
                `init_from`, whose config is used).
            train: the `TrainConfig` (optimizer settings, seed, device, precision).
            init_from: a GPT or LLaMA checkpoint folder of either engine to start from.
        Raises:
            ConfigError: a device or precision the NumPy engine cannot run.
        """
        if train.device not in ("auto", "cpu"):
            raise ConfigError(
                f"the numpy engine runs on the CPU only; use --train.device=cpu (or auto), not {train.device!r}"
            )
        if train.precision == "bf16":
            raise ConfigError("the numpy engine trains in float32; use --train.precision=fp32 (or auto)")
        if init_from is not None:
            model, _ = load_numpy_gpt(init_from, np.float32, seed=train.seed)
        else:
            model = NumpyGPT(model_config, np.float32, seed=train.seed)
        model.train()
        return cls(
            model,
            lr=train.lr,
            betas=(train.beta1, train.beta2),
            eps=train.eps,
            weight_decay=train.weight_decay,
            grad_clip=train.grad_clip,
        )

    def train_step(self, micro_batches: Sequence[dict[str, np.ndarray]], lr: float) -> tuple[float, float]:
        """One AdamW step over the micro-batches (their gradients averaged).

        Returns:
            (mean loss over the micro-batches, global gradient norm before clipping).
        """
        model = self.model
        model.train()
        self.optimizer.lr = lr
        model.zero_grad()
        n = len(micro_batches)
        total = 0.0
        for batch in micro_batches:
            _, loss = model.forward(**batch)
            model.backward(scale=1.0 / n)  # gradients add up across micro-batches
            total += loss
        grads = model.grads
        if self.grad_clip > 0:
            norm = clip_grad_norm(grads, self.grad_clip)
        else:
            norm = global_grad_norm(grads.values())
        self.optimizer.step(grads)
        model.zero_grad()
        return total / n, norm

    def eval_loss(self, batches: Sequence[dict[str, np.ndarray]]) -> float:
        """Mean loss over `batches` without dropout."""
        self.model.eval()
        losses = [self.model.forward(**batch)[1] for batch in batches]
        self.model.train()
        return float(np.mean(losses)) if losses else float("nan")

    def state_dict(self) -> dict[str, Any]:
        """AdamW moments and step counts, and the dropout generator's state."""
        return {"optimizer": self.optimizer.state_dict(), "dropout_rng": self.model.dropout_rng.bit_generator.state}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        """Restore what `state_dict` returned."""
        self.optimizer.load_state_dict(state["optimizer"])
        self.model.dropout_rng.bit_generator.state = state["dropout_rng"]

    def save_model(self, folder: Path, tokenizer: Any | None, metadata: dict[str, Any]) -> None:
        """Write an attnlab checkpoint that both engines read."""
        self.model.save(folder, tokenizer=tokenizer, metadata=metadata)

    def num_parameters(self) -> int:
        return self.model.num_parameters()

    def any_process(self, flag: bool) -> bool:
        return flag  # a single process

    def mean_over_processes(self, value: float) -> float:
        return value

    def close(self) -> None:
        """Nothing to release (kept for symmetry with `TorchEngine`)."""

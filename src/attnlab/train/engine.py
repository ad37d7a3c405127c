"""What the Trainer needs from a model: the `Engine` protocol, and its PyTorch engine.

The Trainer (`attnlab.train.trainer`) owns the loop: learning-rate schedule, logging,
evaluation, checkpoints, resume, Ctrl-C. An engine owns everything that touches the
model: moving batches to the device, forward/backward, gradient accumulation and
clipping, the optimizer, mixed precision and data parallelism. Two engines exist:
`TorchEngine` (here) and `NumpyEngine` (`attnlab.train.numpy_engine`, the from-scratch
NumPy GPT). Batches arrive as dicts of NumPy arrays whose keys are the model's
keyword arguments (e.g. {"input_ids": (B, T), "targets": (B, T)}).
"""

from __future__ import annotations

import contextlib
import logging
from collections.abc import Sequence
from pathlib import Path
from typing import Any, Protocol

import numpy as np

logger = logging.getLogger(__name__)


class Engine(Protocol):
    """The interface between the Trainer and a model implementation."""

    name: str  # "torch" or "numpy"
    rank: int  # this process's rank (0 when not distributed)
    world_size: int  # number of data-parallel processes

    def train_step(self, micro_batches: Sequence[dict[str, np.ndarray]], lr: float) -> tuple[float, float]:
        """One optimizer step over `micro_batches` (gradient accumulation) at rate `lr`.

        Returns:
            (mean loss over the micro-batches, gradient norm before clipping).
        """

    def eval_loss(self, batches: Sequence[dict[str, np.ndarray]]) -> float:
        """Mean loss over `batches` in evaluation mode (no dropout, no gradients)."""

    def state_dict(self) -> dict[str, Any]:
        """Optimizer and RNG state for resuming (tensors/arrays and plain values)."""

    def load_state_dict(self, state: dict[str, Any]) -> None:
        """Restore what `state_dict` returned."""

    def save_model(self, folder: Path, tokenizer: Any | None, metadata: dict[str, Any]) -> None:
        """Write the model weights + config (+ tokenizer) as an attnlab checkpoint."""

    def num_parameters(self) -> int:
        """Number of model parameters."""

    def any_process(self, flag: bool) -> bool:
        """True if `flag` is True on any data-parallel process (so all stop together)."""

    def mean_over_processes(self, value: float) -> float:
        """Average a float over the data-parallel processes."""


def decay_groups(named_params: Sequence[tuple[str, Any]], weight_decay: float) -> list[dict[str, Any]]:
    """AdamW parameter groups: weight decay on matrices and embeddings, none on
    biases and norm gains (1-D tensors), as in GPT-2/nanoGPT.

    Args:
        named_params: (name, parameter) pairs (tied parameters listed once).
        weight_decay: decay for the matrix group.
    """
    decay = [p for _, p in named_params if p.ndim >= 2]
    no_decay = [p for _, p in named_params if p.ndim < 2]
    return [
        {"params": decay, "weight_decay": weight_decay},
        {"params": no_decay, "weight_decay": 0.0},
    ]


class TorchEngine:
    """Trains any attnlab PyTorch model whose forward returns an object with `.loss`.

    Args:
        model: the model (moved to the chosen device here).
        lr, betas, eps, weight_decay: AdamW settings (lr is set every step by the Trainer).
        grad_clip: clip the global gradient norm to this value (0 = no clipping).
        device: "auto", "cpu", "cuda", "cuda:N" or "mps".
        precision: "auto" (bf16 autocast on GPUs that support it, else fp32), "fp32" or "bf16".
        seed: seed for dropout and other model randomness.
        distributed: wrap the model in DistributedDataParallel when launched by torchrun.
    """

    name = "torch"

    def __init__(
        self,
        model: Any,
        *,
        lr: float = 1e-3,
        betas: tuple[float, float] = (0.9, 0.99),
        eps: float = 1e-8,
        weight_decay: float = 0.1,
        grad_clip: float = 1.0,
        device: str = "auto",
        precision: str = "auto",
        distributed: bool = True,
    ):
        import torch

        from attnlab.train import distributed as dist_utils
        from attnlab.utils import select_device

        self.torch = torch
        self.rank, self.world_size, local_rank = dist_utils.setup() if distributed else (0, 1, 0)
        device = select_device(device)
        if device == "cuda" and self.world_size > 1:
            device = f"cuda:{local_rank}"
            torch.cuda.set_device(local_rank)
        self.device = torch.device(device)
        self.amp_dtype = self._amp_dtype(precision)
        self.model = model.to(self.device)
        self.module = self.model  # the bare model, also when wrapped in DDP
        if self.world_size > 1:
            from torch.nn.parallel import DistributedDataParallel

            self.model = DistributedDataParallel(
                self.module, device_ids=[self.device.index] if self.device.type == "cuda" else None
            )
        named = _unique_named_parameters(self.module)
        groups = decay_groups(named, weight_decay)
        extra = {"fused": True} if self.device.type == "cuda" else {}
        self.optimizer = torch.optim.AdamW(groups, lr=lr, betas=betas, eps=eps, **extra)
        self.grad_clip = grad_clip

    def _amp_dtype(self, precision: str):
        torch = self.torch
        if precision == "fp32":
            return None
        if precision == "bf16":
            if self.device.type == "cuda" and not torch.cuda.is_bf16_supported():
                from attnlab.errors import ConfigError

                raise ConfigError("this GPU does not support bf16; use --train.precision=fp32")
            return torch.bfloat16
        if precision == "auto":
            if self.device.type == "cuda" and torch.cuda.is_bf16_supported():
                return torch.bfloat16
            return None
        from attnlab.errors import ConfigError

        raise ConfigError(f"unknown precision {precision!r}; choose auto, fp32 or bf16")

    def _autocast(self):
        if self.amp_dtype is None:
            return contextlib.nullcontext()
        return self.torch.autocast(device_type=self.device.type, dtype=self.amp_dtype)

    def _to_device(self, batch: dict[str, np.ndarray]) -> dict[str, Any]:
        torch = self.torch
        out = {}
        for k, v in batch.items():
            t = torch.as_tensor(v) if isinstance(v, np.ndarray) else v
            if isinstance(t, torch.Tensor):
                t = t.to(self.device, non_blocking=True)
            out[k] = t
        return out

    def train_step(self, micro_batches: Sequence[dict[str, np.ndarray]], lr: float) -> tuple[float, float]:
        torch = self.torch
        self.model.train()
        for group in self.optimizer.param_groups:
            group["lr"] = lr
        n = len(micro_batches)
        total = 0.0
        for i, batch in enumerate(micro_batches):
            last = i == n - 1
            # DDP: synchronise gradients only on the last micro-batch of the step
            sync = contextlib.nullcontext() if (last or self.world_size == 1) else self.model.no_sync()
            with sync:
                with self._autocast():
                    loss = self.model(**self._to_device(batch)).loss
                (loss / n).backward()
            total += float(loss.detach())
        if self.grad_clip > 0:
            norm = float(torch.nn.utils.clip_grad_norm_(self.module.parameters(), self.grad_clip))
        else:
            norm = float(
                torch.linalg.vector_norm(
                    torch.stack([p.grad.detach().norm() for p in self.module.parameters() if p.grad is not None])
                )
            )
        self.optimizer.step()
        self.optimizer.zero_grad(set_to_none=True)
        return total / n, norm

    def eval_loss(self, batches: Sequence[dict[str, np.ndarray]]) -> float:
        torch = self.torch
        self.module.eval()
        losses = []
        with torch.no_grad(), self._autocast():
            for batch in batches:
                losses.append(float(self.module(**self._to_device(batch)).loss))
        self.module.train()
        return float(np.mean(losses)) if losses else float("nan")

    def state_dict(self) -> dict[str, Any]:
        torch = self.torch
        state = {"optimizer": self.optimizer.state_dict(), "torch_rng": torch.get_rng_state()}
        if torch.cuda.is_available():
            state["cuda_rng"] = torch.cuda.get_rng_state_all()
        return state

    def load_state_dict(self, state: dict[str, Any]) -> None:
        torch = self.torch
        self.optimizer.load_state_dict(state["optimizer"])
        torch.set_rng_state(state["torch_rng"])
        if "cuda_rng" in state and torch.cuda.is_available():
            torch.cuda.set_rng_state_all(state["cuda_rng"])

    def save_model(self, folder: Path, tokenizer: Any | None, metadata: dict[str, Any]) -> None:
        from attnlab.models.registry import save_model

        save_model(self.module, folder, tokenizer=tokenizer, metadata=metadata)

    def num_parameters(self) -> int:
        return sum(p.numel() for _, p in _unique_named_parameters(self.module))

    def any_process(self, flag: bool) -> bool:
        if self.world_size == 1:
            return flag
        torch = self.torch
        t = torch.tensor([1.0 if flag else 0.0], device=self.device)
        torch.distributed.all_reduce(t, op=torch.distributed.ReduceOp.MAX)
        return bool(t.item() > 0)

    def mean_over_processes(self, value: float) -> float:
        if self.world_size == 1:
            return value
        torch = self.torch
        t = torch.tensor(
            [value], device=self.device, dtype=torch.float64 if self.device.type != "mps" else torch.float32
        )
        torch.distributed.all_reduce(t)
        return float(t.item()) / self.world_size

    def parameters_in_sync(self) -> bool:
        """True when every process holds the same weights (a DDP sanity check)."""
        if self.world_size == 1:
            return True
        torch = self.torch
        with torch.no_grad():
            sums = torch.stack([p.detach().double().sum() for p in self.module.parameters()])
        low, high = sums.clone(), sums.clone()
        torch.distributed.all_reduce(low, op=torch.distributed.ReduceOp.MIN)
        torch.distributed.all_reduce(high, op=torch.distributed.ReduceOp.MAX)
        return bool(torch.equal(low, high))

    def close(self) -> None:
        from attnlab.train import distributed as dist_utils

        dist_utils.teardown()


def _unique_named_parameters(module: Any) -> list[tuple[str, Any]]:
    """Trainable (name, parameter) pairs with tied parameters listed once."""
    return [(n, p) for n, p in module.named_parameters() if p.requires_grad]

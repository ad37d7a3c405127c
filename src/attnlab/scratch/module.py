"""The tiny `Module` base class of the NumPy layers: parameters, gradients, train/eval.

A NumPy layer is an object with
  * `params`: dict name -> array (e.g. {"weight": W, "bias": b}), updated in place by
    the optimizers;
  * `grads`: dict name -> array, filled by `backward` (and *added to* by further
    backward calls, like PyTorch's `.grad`, until `zero_grad`);
  * `forward(...)`, which caches what the backward pass needs, and `backward(dout)`,
    which takes dL/d(output) and returns dL/d(input).
Sub-layers are found from the attributes (a list of layers counts, as PyTorch's
`ModuleList`), so the parameter names come out as PyTorch's: `blocks.0.attn.qkv.weight`.
"""

from __future__ import annotations

from collections.abc import Iterator

import numpy as np

__all__ = ["Module", "as_float_dtype"]


def as_float_dtype(dtype) -> np.dtype:
    """np.float32 or np.float64 (the two dtypes the NumPy engine supports)."""
    dt = np.dtype(dtype)
    if dt not in (np.dtype(np.float32), np.dtype(np.float64)):
        raise ValueError(f"the NumPy engine supports float32 and float64, got {dt}")
    return dt


class Module:
    """Base class of every NumPy layer."""

    def __init__(self) -> None:
        self._params: dict[str, np.ndarray] = {}
        self._grads: dict[str, np.ndarray] = {}
        self.training = True

    @property
    def params(self) -> dict[str, np.ndarray]:
        """This layer's own parameters, name -> array (sub-layers keep theirs)."""
        return self._params

    @property
    def grads(self) -> dict[str, np.ndarray]:
        """This layer's own gradients, name -> array (filled by `backward`)."""
        return self._grads

    # -- sub-layers and parameters ---------------------------------------------------

    def named_children(self) -> Iterator[tuple[str, Module]]:
        """Direct sub-layers in definition order; list entries are named by index."""
        for name, value in vars(self).items():
            if isinstance(value, Module):
                yield name, value
            elif isinstance(value, (list, tuple)) and value and all(isinstance(v, Module) for v in value):
                for i, v in enumerate(value):
                    yield f"{name}.{i}", v

    def named_modules(self, prefix: str = "") -> Iterator[tuple[str, Module]]:
        """This layer and every layer below it, with dotted names."""
        yield prefix, self
        for name, child in self.named_children():
            yield from child.named_modules(f"{prefix}.{name}" if prefix else name)

    def named_parameters(self) -> Iterator[tuple[str, np.ndarray]]:
        """(dotted name, array) for every parameter; a shared (tied) array is listed once."""
        seen: set[int] = set()
        for prefix, module in self.named_modules():
            for name, p in module._params.items():
                if id(p) not in seen:
                    seen.add(id(p))
                    yield (f"{prefix}.{name}" if prefix else name), p

    def named_grads(self) -> Iterator[tuple[str, np.ndarray]]:
        """(dotted name, gradient) for every parameter that has one."""
        for prefix, module in self.named_modules():
            for name, g in module._grads.items():
                yield (f"{prefix}.{name}" if prefix else name), g

    # -- gradients and modes ---------------------------------------------------------

    def _accumulate(self, name: str, grad: np.ndarray) -> None:
        """Add a freshly computed gradient to `grads[name]` (the first one is stored as is)."""
        if name in self._grads:
            self._grads[name] += grad
        else:
            self._grads[name] = grad

    def zero_grad(self) -> None:
        """Forget all gradients (the next backward starts from zero)."""
        for _, module in self.named_modules():
            module._grads = {}

    def train(self, mode: bool = True) -> Module:
        """Training mode (dropout active) for this layer and every sub-layer."""
        for _, module in self.named_modules():
            module.training = mode
        return self

    def eval(self) -> Module:
        """Evaluation mode (no dropout)."""
        return self.train(False)

    def __call__(self, *args, **kwargs):
        return self.forward(*args, **kwargs)

    def forward(self, *args, **kwargs):  # pragma: no cover - every layer defines it
        raise NotImplementedError

"""Optimizers in NumPy with exactly the update rules of `torch.optim`, and gradient clipping.

Each optimizer updates its parameter arrays *in place* from a list of gradients,
so a training loop reads like PyTorch's without autograd:

    opt = AdamW(model.param_groups(weight_decay=0.1), lr=1e-3)
    grads = model.backward()          # name -> gradient
    clip_grad_norm(grads_list, 1.0)   # optional, in place
    opt.step(grads)                   # a list in parameter order, or a dict by name

References:
    SGD with momentum in PyTorch's form (Sutskever et al., ICML 2013);
    Adam (Kingma & Ba, ICLR 2015), algorithm 1 with the bias corrections;
    AdamW, decoupled weight decay (Loshchilov & Hutter, ICLR 2019);
    gradient clipping by the global norm (Pascanu et al., ICML 2013).
The formulas, and the order of the floating-point operations where it matters, follow
`torch.optim.SGD`, `torch.optim.Adam`, `torch.optim.AdamW` (single-tensor code path)
and `torch.nn.utils.clip_grad_norm_`; tests/scratch/test_optim.py checks them against
PyTorch in float64.

Parameter groups work like PyTorch's: `params` is a list of arrays, or a list of dicts
`{"params": [arrays], "weight_decay": 0.0, ...}` whose keys override the defaults for
that group. A group may also carry `"names"` (one name per array), which lets `step`
take a dict of gradients keyed by name.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping, Sequence
from typing import Any

import numpy as np

__all__ = ["Optimizer", "SGD", "Adam", "AdamW", "clip_grad_norm", "global_grad_norm"]


class Optimizer:
    """Base class: parameter groups, per-parameter state, state dicts.

    Args:
        params: a list of arrays, or a list of param-group dicts (see the module docstring).
        defaults: the hyper-parameters of a group that does not set them itself.
    """

    def __init__(self, params: Iterable[np.ndarray] | Iterable[dict[str, Any]], defaults: dict[str, Any]):
        params = list(params)
        if not params:
            raise ValueError("the optimizer got an empty parameter list")
        if not isinstance(params[0], Mapping):
            params = [{"params": params}]
        self.defaults = dict(defaults)
        self.param_groups: list[dict[str, Any]] = []
        seen: set[int] = set()
        for group in params:
            group = dict(group)
            arrays = group["params"]
            arrays = [arrays] if isinstance(arrays, np.ndarray) else list(arrays)
            for p in arrays:
                if not isinstance(p, np.ndarray):
                    raise TypeError(f"parameters must be NumPy arrays, got {type(p).__name__}")
                if not np.issubdtype(p.dtype, np.floating):
                    raise TypeError(f"parameters must be floating-point arrays, got {p.dtype}")
                if id(p) in seen:
                    raise ValueError("a parameter appears twice in the optimizer's parameter groups")
                seen.add(id(p))
            group["params"] = arrays
            if "names" in group and len(group["names"]) != len(arrays):
                raise ValueError("a param group's 'names' must have one name per parameter")
            for key, value in self.defaults.items():
                group.setdefault(key, value)
            self.param_groups.append(group)
        # one state dict per parameter, in flattened group order (torch keys state by index too)
        self.state: list[dict[str, Any]] = [{} for _ in self._flat_params()]

    # -- helpers -------------------------------------------------------------

    def _flat_params(self) -> list[np.ndarray]:
        return [p for group in self.param_groups for p in group["params"]]

    def _match_grads(self, grads: Sequence[np.ndarray | None] | Mapping[str, np.ndarray]) -> list[np.ndarray | None]:
        """Gradients in flattened parameter order, from a list or a name -> gradient dict."""
        if isinstance(grads, Mapping):
            out: list[np.ndarray | None] = []
            for group in self.param_groups:
                if "names" not in group:
                    raise ValueError("step(dict) needs param groups with 'names'; pass a list of gradients instead")
                out.extend(grads.get(name) for name in group["names"])
            return out
        grads = list(grads)
        n = sum(len(g["params"]) for g in self.param_groups)
        if len(grads) != n:
            raise ValueError(f"step() got {len(grads)} gradients for {n} parameters")
        return grads

    def _iter(self, grads) -> Iterable[tuple[dict[str, Any], np.ndarray, np.ndarray, dict[str, Any]]]:
        """(group, param, grad, state) for every parameter that has a gradient."""
        flat = self._match_grads(grads)
        i = 0
        for group in self.param_groups:
            for p in group["params"]:
                g = flat[i]
                if g is not None:
                    if g.shape != p.shape:
                        raise ValueError(f"gradient of shape {g.shape} for a parameter of shape {p.shape}")
                    yield group, p, g, self.state[i]
                i += 1

    # -- learning rate ---------------------------------------------------------

    @property
    def lr(self) -> float:
        """The learning rate of the first group (set it to change every group's)."""
        return self.param_groups[0]["lr"]

    @lr.setter
    def lr(self, value: float) -> None:
        for group in self.param_groups:
            group["lr"] = value

    # -- state ---------------------------------------------------------------

    def state_dict(self) -> dict[str, Any]:
        """Plain dict (numbers, tuples, arrays) in PyTorch's layout.

        `{"state": {index: {...}}, "param_groups": [{hyper-parameters, "params": [index, ...]}]}`;
        the arrays are copies, so the dict is a snapshot.
        """
        groups = []
        index = 0
        for group in self.param_groups:
            entry = {k: v for k, v in group.items() if k not in ("params", "names")}
            entry["params"] = list(range(index, index + len(group["params"])))
            if "names" in group:
                entry["names"] = list(group["names"])
            index += len(group["params"])
            groups.append(entry)
        state = {
            i: {k: (v.copy() if isinstance(v, np.ndarray) else v) for k, v in s.items()}
            for i, s in enumerate(self.state)
            if s
        }
        return {"state": state, "param_groups": groups}

    def load_state_dict(self, state_dict: Mapping[str, Any]) -> None:
        """Restore what `state_dict` returned (moments are cast to each parameter's dtype)."""
        groups = state_dict["param_groups"]
        if len(groups) != len(self.param_groups) or any(
            len(saved["params"]) != len(own["params"]) for saved, own in zip(groups, self.param_groups)
        ):
            raise ValueError("the saved optimizer state has a different number of parameter groups or parameters")
        for saved, own in zip(groups, self.param_groups):
            for key, value in saved.items():
                if key not in ("params", "names"):
                    own[key] = tuple(value) if isinstance(value, list) else value
        params = self._flat_params()
        self.state = [{} for _ in params]
        for key, entry in state_dict["state"].items():
            i = int(key)
            p = params[i]
            restored = {}
            for k, v in entry.items():
                if isinstance(v, np.ndarray) or hasattr(v, "shape"):
                    arr = np.asarray(v, dtype=p.dtype)
                    if arr.ndim == 0:  # a torch-style tensor step
                        restored[k] = int(arr) if k == "step" else float(arr)
                        continue
                    if arr.shape != p.shape:
                        raise ValueError(
                            f"saved state {k!r} of parameter {i} has shape {arr.shape}, expected {p.shape}"
                        )
                    restored[k] = arr.copy()
                else:
                    restored[k] = v
            self.state[i] = restored

    def step(self, grads: Sequence[np.ndarray | None] | Mapping[str, np.ndarray]) -> None:  # pragma: no cover
        raise NotImplementedError


class SGD(Optimizer):
    """Stochastic gradient descent with optional momentum (PyTorch's formulation).

    For each parameter p with gradient g:
        g   <- g + weight_decay * p                       (L2 penalty)
        buf <- g                                          (first step)
        buf <- momentum * buf + (1 - dampening) * g       (later steps)
        d   <- g + momentum * buf   if nesterov   else   buf
        p   <- p - lr * d
    With momentum = 0 the rule is plain p <- p - lr * g.

    Args:
        params: arrays or param groups.
        lr: learning rate.
        momentum: momentum factor (0 = none).
        dampening: dampening of the momentum's gradient term.
        weight_decay: L2 coefficient added to the gradient.
        nesterov: Nesterov momentum (needs momentum > 0 and dampening = 0).
    """

    def __init__(
        self,
        params,
        lr: float,
        momentum: float = 0.0,
        dampening: float = 0.0,
        weight_decay: float = 0.0,
        nesterov: bool = False,
    ):
        if lr < 0 or momentum < 0 or weight_decay < 0:
            raise ValueError("lr, momentum and weight_decay must be non-negative")
        if nesterov and (momentum <= 0 or dampening != 0):
            raise ValueError("Nesterov momentum needs momentum > 0 and dampening = 0")
        super().__init__(
            params, dict(lr=lr, momentum=momentum, dampening=dampening, weight_decay=weight_decay, nesterov=nesterov)
        )

    def step(self, grads) -> None:
        """Update every parameter in place from its gradient (None = skip this parameter)."""
        for group, p, g, state in self._iter(grads):
            lr, momentum, wd = group["lr"], group["momentum"], group["weight_decay"]
            d = g + wd * p if wd != 0 else g
            if momentum != 0:
                buf = state.get("momentum_buffer")
                if buf is None:
                    buf = state["momentum_buffer"] = np.array(d, dtype=p.dtype, copy=True)
                else:
                    buf *= momentum
                    buf += (1.0 - group["dampening"]) * d
                d = d + momentum * buf if group["nesterov"] else buf
            p -= lr * d


class Adam(Optimizer):
    """Adam with PyTorch's bias corrections; `weight_decay` is an L2 term added to the gradient.

    At step t (counting from 1), for each parameter p with gradient g:
        g  <- g + weight_decay * p                  (L2; what torch.optim.Adam does)
        m  <- beta1 * m + (1 - beta1) * g           first moment
        v  <- beta2 * v + (1 - beta2) * g^2         second moment
        p  <- p - lr / (1 - beta1^t) * m / (sqrt(v) / sqrt(1 - beta2^t) + eps)

    Args:
        params: arrays or param groups.
        lr: learning rate.
        betas: (beta1, beta2) decay rates of the moments.
        eps: added to the denominator for stability.
        weight_decay: L2 coefficient.
    """

    decoupled = False  # AdamW sets True

    def __init__(
        self,
        params,
        lr: float = 1e-3,
        betas: tuple[float, float] = (0.9, 0.999),
        eps: float = 1e-8,
        weight_decay: float = 0.0,
    ):
        if lr < 0 or eps < 0 or weight_decay < 0:
            raise ValueError("lr, eps and weight_decay must be non-negative")
        if not (0.0 <= betas[0] < 1.0 and 0.0 <= betas[1] < 1.0):
            raise ValueError(f"betas must be in [0, 1), got {betas}")
        super().__init__(params, dict(lr=lr, betas=tuple(betas), eps=eps, weight_decay=weight_decay))

    def step(self, grads) -> None:
        """Update every parameter in place from its gradient (None = skip this parameter)."""
        for group, p, g, state in self._iter(grads):
            lr, (beta1, beta2), eps, wd = group["lr"], group["betas"], group["eps"], group["weight_decay"]
            if not state:
                state["step"] = 0
                state["exp_avg"] = np.zeros_like(p)
                state["exp_avg_sq"] = np.zeros_like(p)
            state["step"] += 1
            t = state["step"]
            if wd != 0:
                if self.decoupled:
                    p *= 1.0 - lr * wd  # AdamW: shrink the weights directly, outside the moments
                else:
                    g = g + wd * p  # Adam: L2 gradient, which then goes through the moments
            m, v = state["exp_avg"], state["exp_avg_sq"]
            m += (1.0 - beta1) * (g - m)  # = beta1 * m + (1 - beta1) * g (torch's lerp)
            v *= beta2
            v += (1.0 - beta2) * (g * g)
            step_size = lr / (1.0 - beta1**t)
            update = np.sqrt(v)  # one scratch array, reused in place below
            update /= math.sqrt(1.0 - beta2**t)
            update += eps  # the denominator sqrt(v_hat) + eps
            np.divide(m, update, out=update)
            update *= step_size
            p -= update


class AdamW(Adam):
    """Adam with decoupled weight decay (Loshchilov & Hutter): p <- p * (1 - lr * weight_decay)
    before the Adam step, so the decay is not rescaled by the second moment.

    Args:
        params: arrays or param groups.
        lr: learning rate.
        betas: (beta1, beta2).
        eps: denominator epsilon.
        weight_decay: decoupled decay coefficient (torch's default 0.01).
    """

    decoupled = True

    def __init__(
        self,
        params,
        lr: float = 1e-3,
        betas: tuple[float, float] = (0.9, 0.999),
        eps: float = 1e-8,
        weight_decay: float = 1e-2,
    ):
        super().__init__(params, lr=lr, betas=betas, eps=eps, weight_decay=weight_decay)


def global_grad_norm(grads: Iterable[np.ndarray | None]) -> float:
    """The 2-norm of all gradients together, as if concatenated into one vector."""
    total = 0.0
    for g in grads:
        if g is not None:
            flat = g.reshape(-1)
            total += float(np.dot(flat, flat))
    return math.sqrt(total)


def clip_grad_norm(grads: Iterable[np.ndarray | None] | Mapping[str, np.ndarray], max_norm: float) -> float:
    """Scale the gradients in place so their global 2-norm is at most `max_norm`.

    Same formula as `torch.nn.utils.clip_grad_norm_`: with total = ||all grads||_2,
    every gradient is multiplied by min(1, max_norm / (total + 1e-6)).

    Args:
        grads: arrays (or a name -> array dict) modified in place.
        max_norm: the largest allowed global norm.
    Returns:
        The global norm *before* clipping.
    """
    grads = list(grads.values()) if isinstance(grads, Mapping) else [g for g in grads if g is not None]
    total = global_grad_norm(grads)
    coef = max_norm / (total + 1e-6)
    if coef < 1.0:
        for g in grads:
            g *= coef
    return total

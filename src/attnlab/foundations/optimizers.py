"""Optimizers, one idea at a time: GD -> SGD -> momentum -> Adam -> AdamW.

Each update rule is a short pure function with its math in the docstring, for
reading in the lab. The optimizer classes that train the NumPy GPT live in
`attnlab.scratch.optim` (PyTorch's conventions, in place, with state); this module
runs *those* classes on 2-D loss surfaces (`run_on_surface`) and the tests check that
the pure rules here, the scratch classes and `torch.optim` take identical steps.

References: momentum in PyTorch's form (Sutskever et al., ICML 2013); Adam (Kingma &
Ba, ICLR 2015); AdamW, decoupled weight decay (Loshchilov & Hutter, ICLR 2019).

Notation: P parameters (2 on a surface), S optimizer steps.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass

import numpy as np

from attnlab.errors import ConfigError
from attnlab.foundations.surfaces import LeastSquaresSurface, Surface

logger = logging.getLogger(__name__)

# Names accepted by `run_on_surface`, in the order of the workshop story.
OPTIMIZER_NAMES = ("gd", "sgd", "momentum", "adam", "adamw")


# --- the update rules ------------------------------------------------------------------


def gd_step(w: np.ndarray, grad: np.ndarray, lr: float) -> np.ndarray:
    """Gradient descent: step downhill, w <- w - lr * grad L(w).

    Args:
        w: parameters, shape (P,).
        grad: gradient of the loss over the *whole* data set at w, shape (P,).
        lr: learning rate (step size).
    Returns:
        The new parameters, shape (P,).
    """
    return w - lr * grad


def sgd_step(w: np.ndarray, grad: np.ndarray, lr: float, weight_decay: float = 0.0) -> np.ndarray:
    """Stochastic gradient descent: the GD rule with a mini-batch gradient.

    w <- w - lr * (g + weight_decay * w), where g is the gradient on B sampled rows,
    an unbiased but noisy estimate of the full gradient that costs B/N as much.
    `weight_decay` adds the gradient of an L2 penalty weight_decay/2 * |w|^2, which is
    the same as shrinking w <- (1 - lr * weight_decay) w before the step.

    Args:
        w: parameters, shape (P,).
        grad: mini-batch gradient, shape (P,).
        lr: learning rate.
        weight_decay: L2 penalty coefficient (torch's `weight_decay`).
    Returns:
        The new parameters, shape (P,).
    """
    return w - lr * (grad + weight_decay * w)


def momentum_step(
    w: np.ndarray,
    grad: np.ndarray,
    velocity: np.ndarray | None,
    lr: float,
    momentum: float = 0.9,
    dampening: float = 0.0,
    nesterov: bool = False,
    weight_decay: float = 0.0,
) -> tuple[np.ndarray, np.ndarray]:
    """SGD with momentum, in PyTorch's form: a running sum of past gradients.

        g <- grad + weight_decay * w
        v <- g                                 on the first step (velocity is None)
        v <- momentum * v + (1 - dampening) g  afterwards
        w <- w - lr * v                        (or w - lr * (g + momentum * v), Nesterov)

    Consistent directions add up (speed along a valley floor); directions that
    flip sign cancel (less zig-zag across it).

    Args:
        w: parameters, shape (P,).
        grad: gradient, shape (P,).
        velocity: the buffer v from the previous step, shape (P,), or None at step 1.
        lr: learning rate.
        momentum: decay of the running sum, in [0, 1).
        dampening: scales the new gradient into v (0 in almost every use).
        nesterov: look-ahead variant.
        weight_decay: L2 penalty coefficient (added to the gradient).
    Returns:
        (new w, new velocity), each shape (P,).
    """
    g = grad + weight_decay * w
    velocity = g.copy() if velocity is None else momentum * velocity + (1.0 - dampening) * g
    direction = g + momentum * velocity if nesterov else velocity
    return w - lr * direction, velocity


def adam_step(
    w: np.ndarray,
    grad: np.ndarray,
    m: np.ndarray,
    v: np.ndarray,
    step: int,
    lr: float = 1e-3,
    betas: tuple[float, float] = (0.9, 0.999),
    eps: float = 1e-8,
    weight_decay: float = 0.0,
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Adam: momentum divided by a running size of the gradient, per weight.

        g <- grad + weight_decay * w                 (an L2 penalty, *coupled*)
        m <- beta1 m + (1 - beta1) g                 mean of g
        v <- beta2 v + (1 - beta2) g^2               mean of g^2
        m_hat = m / (1 - beta1^t), v_hat = v / (1 - beta2^t)   undo the bias of starting at 0
        w <- w - lr * m_hat / (sqrt(v_hat) + eps)

    Each weight moves about lr per step whatever its gradient's scale, so flat and
    steep directions progress alike. Note the coupled weight decay goes through the
    division too: weights with large gradients are barely decayed (see `adamw_step`).

    Args:
        w: parameters, shape (P,).
        grad: gradient, shape (P,).
        m: first-moment estimate, shape (P,) (zeros before step 1).
        v: second-moment estimate, shape (P,) (zeros before step 1).
        step: t, counting from 1.
        lr: learning rate.
        betas: (beta1, beta2), decays of the two running means.
        eps: added to the denominator for stability.
        weight_decay: L2 penalty coefficient (torch.optim.Adam's `weight_decay`).
    Returns:
        (new w, new m, new v), each shape (P,).
    """
    beta1, beta2 = betas
    g = grad + weight_decay * w
    m = beta1 * m + (1.0 - beta1) * g
    v = beta2 * v + (1.0 - beta2) * g * g
    m_hat = m / (1.0 - beta1**step)
    v_hat = v / (1.0 - beta2**step)
    return w - lr * m_hat / (np.sqrt(v_hat) + eps), m, v


def adamw_step(
    w: np.ndarray,
    grad: np.ndarray,
    m: np.ndarray,
    v: np.ndarray,
    step: int,
    lr: float = 1e-3,
    betas: tuple[float, float] = (0.9, 0.999),
    eps: float = 1e-8,
    weight_decay: float = 1e-2,
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """AdamW: Adam plus *decoupled* weight decay.

        w <- w - lr * weight_decay * w               shrink every weight by the same factor
        then the Adam step on the plain gradient     (`adam_step` with weight_decay=0)

    With plain SGD, shrinking w and adding an L2 gradient are the same thing. With
    Adam they are not: an L2 gradient is divided by sqrt(v_hat), so it is weak where
    gradients are large and strong where they are tiny. AdamW applies the decay
    outside the adaptive division, so it acts like an L2 penalty of equal strength on
    every weight. This is the optimizer used to train transformers.

    Args:
        w: parameters, shape (P,).
        grad: gradient, shape (P,).
        m: first-moment estimate, shape (P,).
        v: second-moment estimate, shape (P,).
        step: t, counting from 1.
        lr: learning rate.
        betas: (beta1, beta2).
        eps: added to the denominator.
        weight_decay: decoupled decay coefficient (torch.optim.AdamW's `weight_decay`).
    Returns:
        (new w, new m, new v), each shape (P,).
    """
    w = w * (1.0 - lr * weight_decay)
    return adam_step(w, grad, m, v, step, lr=lr, betas=betas, eps=eps, weight_decay=0.0)


# --- the scratch optimizers on 2-D surfaces -------------------------------------------------


@dataclass(frozen=True)
class Trajectory:
    """The path of one optimizer run.

    Attributes:
        name: optimizer name (for legends).
        points: parameters before each step and after the last, shape (S + 1, P).
        losses: full loss at each point, shape (S + 1,).
        lrs: learning rate used at each step, shape (S,).
        diverged: the run stopped early because the parameters blew up.
    """

    name: str
    points: np.ndarray
    losses: np.ndarray
    lrs: np.ndarray
    diverged: bool = False


def make_optimizer(
    name: str,
    params: list[np.ndarray],
    lr: float,
    momentum: float = 0.9,
    betas: tuple[float, float] = (0.9, 0.999),
    eps: float = 1e-8,
    weight_decay: float = 0.0,
):
    """Build the `attnlab.scratch.optim` optimizer behind a workshop name.

    "gd" and "sgd" are both `SGD(momentum=0)` (they differ in the gradient they are
    given, not in the rule); "momentum" is `SGD(momentum=...)`; "adam" is `Adam`
    (coupled L2 `weight_decay`); "adamw" is `AdamW` (decoupled `weight_decay`).

    Args:
        name: one of `OPTIMIZER_NAMES`.
        params: arrays updated in place by `step(grads)`.
        lr: learning rate.
        momentum: for "momentum".
        betas: for "adam" / "adamw".
        eps: for "adam" / "adamw".
        weight_decay: L2 (gd, sgd, momentum, adam) or decoupled (adamw) decay.
    Returns:
        The scratch optimizer.
    """
    from attnlab.scratch import optim  # the engine that trains the NumPy GPT

    if name in ("gd", "sgd"):
        return optim.SGD(params, lr=lr, weight_decay=weight_decay)
    if name == "momentum":
        return optim.SGD(params, lr=lr, momentum=momentum, weight_decay=weight_decay)
    if name == "adam":
        return optim.Adam(params, lr=lr, betas=betas, eps=eps, weight_decay=weight_decay)
    if name == "adamw":
        return optim.AdamW(params, lr=lr, betas=betas, eps=eps, weight_decay=weight_decay)
    raise ConfigError(f"unknown optimizer {name!r}; choose one of {', '.join(OPTIMIZER_NAMES)}")


def _check_positive(value, name: str) -> None:
    if isinstance(value, bool) or not isinstance(value, (int, float, np.floating, np.integer)) or not value > 0:
        raise ConfigError(f"{name} must be a positive number, got {value!r}")


def run_on_surface(
    surface: Surface,
    optimizer: str,
    start=None,
    steps: int = 100,
    lr: float = 0.01,
    *,
    momentum: float = 0.9,
    betas: tuple[float, float] = (0.9, 0.999),
    eps: float = 1e-8,
    weight_decay: float = 0.0,
    batch_size: int | None = None,
    schedule: Callable[[int], float] | None = None,
    seed: int = 0,
    blowup: float = 1e6,
) -> Trajectory:
    """Run a scratch optimizer on a 2-D loss surface and record its path.

    Args:
        surface: from `attnlab.foundations.surfaces`.
        optimizer: "gd", "sgd", "momentum", "adam" or "adamw".
        start: starting point, shape (2,) (default: `surface.start`).
        steps: S, number of optimizer steps.
        lr: learning rate (the peak rate when `schedule` is given).
        momentum: for "momentum".
        betas: for "adam" / "adamw".
        eps: for "adam" / "adamw".
        weight_decay: passed to the optimizer.
        batch_size: B rows per mini-batch gradient (a `LeastSquaresSurface` only);
            required for "sgd", refused for "gd". Rows are drawn without replacement,
            reshuffled every pass through the data.
        schedule: maps step (0-based) to a learning rate, e.g. `functools.partial(
            attnlab.schedule.warmup_cosine_lr, max_lr=..., ...)`; overrides `lr`.
        seed: for mini-batch sampling.
        blowup: stop (diverged=True) once any |w| exceeds this.
    Returns:
        `Trajectory` with points (S' + 1, 2), losses (S' + 1,), lrs (S',); S' = S
        unless the run diverged.
    Raises:
        ConfigError: unknown optimizer or inconsistent settings.
    """
    if optimizer not in OPTIMIZER_NAMES:
        raise ConfigError(f"unknown optimizer {optimizer!r}; choose one of {', '.join(OPTIMIZER_NAMES)}")
    if isinstance(steps, bool) or not isinstance(steps, (int, np.integer)) or steps < 0:
        raise ConfigError(f"steps must be a non-negative integer, got {steps!r}")
    if schedule is None:
        _check_positive(lr, "lr")
    if optimizer == "sgd" and batch_size is None:
        raise ConfigError("optimizer 'sgd' needs mini-batches: pass batch_size (and a least_squares_surface)")
    if optimizer == "gd" and batch_size is not None:
        raise ConfigError("optimizer 'gd' uses the full gradient; use 'sgd' for mini-batches, or drop batch_size")
    if batch_size is not None:
        if not isinstance(surface, LeastSquaresSurface):
            raise ConfigError("batch_size needs a surface with data; build one with least_squares_surface(X, y)")
        n = surface.features.shape[0]
        if isinstance(batch_size, bool) or not isinstance(batch_size, (int, np.integer)) or not 1 <= batch_size <= n:
            raise ConfigError(
                f"batch_size must be an integer between 1 and the number of samples {n}, got {batch_size!r}"
            )

    w = np.array(surface.start if start is None else start, dtype=np.float64).reshape(-1)
    if w.shape != (2,) or not np.all(np.isfinite(w)):
        raise ConfigError(f"start must be two finite numbers, got {start!r}")
    opt = make_optimizer(
        optimizer,
        [w],
        lr=lr if schedule is None else schedule(0),
        momentum=momentum,
        betas=betas,
        eps=eps,
        weight_decay=weight_decay,
    )
    rng = np.random.default_rng(seed)
    order = np.zeros(0, dtype=np.int64)  # remaining rows of the current pass

    points = [w.copy()]
    lrs = []
    diverged = False
    for step in range(steps):
        if schedule is not None:
            opt.lr = schedule(step)
        if batch_size is None:
            grad = surface.grad(w)
        else:
            if order.size < batch_size:  # start a new pass through the data
                order = np.concatenate([order, rng.permutation(n)])
            batch, order = order[:batch_size], order[batch_size:]
            grad = surface.minibatch_grad(w, batch)
        opt.step([grad])  # updates w in place
        lrs.append(opt.lr)
        points.append(w.copy())
        if not np.all(np.isfinite(w)) or np.max(np.abs(w)) > blowup:
            diverged = True
            logger.info("%s diverged after %d steps at lr=%g", optimizer, step + 1, opt.lr)
            break
    points_arr = np.array(points)  # (S' + 1, 2)
    with np.errstate(over="ignore", invalid="ignore"):
        losses = surface.loss(points_arr)
    return Trajectory(name=optimizer, points=points_arr, losses=losses, lrs=np.array(lrs), diverged=diverged)


# --- weight decay: L2 penalty vs decoupled decay --------------------------------------------


@dataclass(frozen=True)
class WeightDecayDemo:
    """Weights under four ways of decaying them, driven by the same gradients.

    Every array has shape (S + 1, 2): two weights, starting at 1, whose data
    gradients are zero on average but of very different sizes (`gradient_scales`).

    Attributes:
        sgd_l2: SGD on loss + weight_decay/2 |w|^2 (the L2 gradient added).
        sgd_decoupled: SGD with w <- (1 - lr_sgd * weight_decay) w before each step.
        adam_l2: Adam with the L2 gradient added (torch.optim.Adam's weight_decay).
        adamw: AdamW, decoupled decay (torch.optim.AdamW's weight_decay).
        pure_decay: (1 - lr_adam * weight_decay)^t, the shrinkage AdamW promises.
        gradient_scales: size of each weight's data gradient, shape (2,).
        lr_sgd, lr_adam, weight_decay: the settings used.
    """

    sgd_l2: np.ndarray
    sgd_decoupled: np.ndarray
    adam_l2: np.ndarray
    adamw: np.ndarray
    pure_decay: np.ndarray
    gradient_scales: np.ndarray
    lr_sgd: float
    lr_adam: float
    weight_decay: float


def weight_decay_demo(
    steps: int = 600,
    lr_sgd: float = 0.01,
    lr_adam: float = 0.01,
    weight_decay: float = 0.3,
    gradient_scales: tuple[float, float] = (10.0, 0.001),
) -> WeightDecayDemo:
    """A small computed example of why AdamW decouples weight decay.

    Two weights start at 1. Their data gradient flips sign every step
    (+s, -s, +s, ...; zero on average, like mini-batch noise), with scale s = 10
    for the first weight and s = 0.001 for the second. Then:

    - SGD: adding the L2 gradient weight_decay * w is *exactly* shrinking
      w <- (1 - lr weight_decay) w each step; both weights decay alike.
    - Adam + L2: the decay gradient is divided by sqrt(v_hat) ~ s. The noisy weight
      (large s) hardly decays; the quiet weight (tiny s) is pushed to 0 at ~lr a step.
    - AdamW: both weights shrink by (1 - lr weight_decay) per step, whatever s is.

    Runs the scratch optimizers (`attnlab.scratch.optim`).

    Args:
        steps: S.
        lr_sgd: SGD learning rate.
        lr_adam: Adam / AdamW learning rate.
        weight_decay: the decay / L2 coefficient.
        gradient_scales: s for the two weights.
    Returns:
        `WeightDecayDemo` with weight histories of shape (S + 1, 2).
    """
    from attnlab.scratch import optim

    scales = np.asarray(gradient_scales, dtype=np.float64)
    if scales.shape != (2,) or np.any(scales < 0):
        raise ConfigError(f"gradient_scales must be two non-negative numbers, got {gradient_scales!r}")
    histories: dict[str, list[np.ndarray]] = {}

    def run(name: str, make, pre_step=None) -> None:
        w = np.ones(2)
        opt = make([w])
        history = [w.copy()]
        for t in range(steps):
            if pre_step is not None:
                pre_step(w)
            grad = scales * (1.0 if t % 2 == 0 else -1.0)  # zero-mean data gradient
            opt.step([grad])
            history.append(w.copy())
        histories[name] = np.array(history)

    def shrink(w: np.ndarray) -> None:
        w *= 1.0 - lr_sgd * weight_decay  # decoupled decay, in place

    run("sgd_l2", lambda p: optim.SGD(p, lr=lr_sgd, weight_decay=weight_decay))
    run("sgd_decoupled", lambda p: optim.SGD(p, lr=lr_sgd), pre_step=shrink)
    run("adam_l2", lambda p: optim.Adam(p, lr=lr_adam, weight_decay=weight_decay))
    run("adamw", lambda p: optim.AdamW(p, lr=lr_adam, weight_decay=weight_decay))
    pure = (1.0 - lr_adam * weight_decay) ** np.arange(steps + 1)
    return WeightDecayDemo(
        **histories,
        pure_decay=np.stack([pure, pure], axis=1),
        gradient_scales=scales,
        lr_sgd=lr_sgd,
        lr_adam=lr_adam,
        weight_decay=weight_decay,
    )

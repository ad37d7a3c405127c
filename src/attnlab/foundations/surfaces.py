"""Two-dimensional loss surfaces for watching optimizers move.

A real network has millions of weights, but the shapes that make training hard show
up already with two: a long narrow valley (an ill-conditioned quadratic, where plain
gradient descent zig-zags), a curved banana-shaped valley (Rosenbrock, "An automatic
method for finding the greatest or least value of a function", Comput. J. 1960), and
the bowl of a least-squares problem, whose mini-batch gradients are noisy versions
of the full gradient.

Every surface takes points of shape (..., 2) and returns losses of shape (...) and
gradients of shape (..., 2), so one call evaluates a whole contour grid.
Notation: N samples of a data set, B samples of a mini-batch.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass, field

import numpy as np

from attnlab.errors import ConfigError, DataError


def _points(w) -> np.ndarray:
    w = np.asarray(w, dtype=np.float64)
    if w.ndim == 0 or w.shape[-1] != 2:
        raise DataError(f"a point on a 2-D surface has shape (..., 2), got shape {w.shape}")
    return w


@dataclass(frozen=True)
class Surface:
    """A differentiable function of two weights, with what a plot needs.

    Attributes:
        name: title for plots.
        loss_fn: maps points (..., 2) to losses (...).
        grad_fn: maps points (..., 2) to gradients (..., 2).
        minimum: the minimiser, shape (2,).
        start: a default starting point for the lab, shape (2,).
        xlim: plot range of the first weight.
        ylim: plot range of the second weight.
        log_contours: space contour levels logarithmically (for very steep surfaces).
    """

    name: str
    loss_fn: Callable[[np.ndarray], np.ndarray] = field(repr=False)
    grad_fn: Callable[[np.ndarray], np.ndarray] = field(repr=False)
    minimum: np.ndarray
    start: np.ndarray
    xlim: tuple[float, float]
    ylim: tuple[float, float]
    log_contours: bool = False

    def loss(self, w) -> np.ndarray:
        """Loss at points of shape (..., 2); returns shape (...)."""
        return self.loss_fn(_points(w))

    def grad(self, w) -> np.ndarray:
        """Gradient at points of shape (..., 2); returns shape (..., 2)."""
        return self.grad_fn(_points(w))

    def grid(self, num: int = 200, xlim=None, ylim=None) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """The loss on a regular grid, ready for `contour`.

        Args:
            num: points per axis.
            xlim: range of the first weight (default `self.xlim`).
            ylim: range of the second weight (default `self.ylim`).
        Returns:
            (W1, W2, Z), each of shape (num, num).
        """
        xlim = self.xlim if xlim is None else xlim
        ylim = self.ylim if ylim is None else ylim
        w1, w2 = np.meshgrid(np.linspace(*xlim, num), np.linspace(*ylim, num))
        return w1, w2, self.loss(np.stack([w1, w2], axis=-1))


def quadratic(condition_number: float = 50.0, angle_degrees: float = 0.0, scale: float = 1.0) -> Surface:
    """An ill-conditioned quadratic bowl: L(w) = 1/2 w^T A w, minimum at 0.

    A has eigenvalues `scale` and `scale * condition_number`; the steep axis starts
    vertical and is rotated by `angle_degrees`. The largest stable gradient-descent
    step is lr < 2 / (scale * condition_number), at which the flat direction crawls:
    that mismatch is what momentum and Adam fix.

    Args:
        condition_number: ratio of largest to smallest curvature, >= 1.
        angle_degrees: rotation of the valley (0 = axis-aligned, Adam's best case).
        scale: the smallest curvature, > 0.
    Returns:
        A `Surface`; gradient A w.
    """
    if not (condition_number >= 1 and math.isfinite(condition_number)):
        raise ConfigError(f"condition_number must be a finite number >= 1, got {condition_number}")
    if not (scale > 0 and math.isfinite(scale)):
        raise ConfigError(f"scale must be a positive number, got {scale}")
    theta = math.radians(angle_degrees)
    rotation = np.array([[math.cos(theta), -math.sin(theta)], [math.sin(theta), math.cos(theta)]])
    hessian = rotation @ np.diag([scale, scale * condition_number]) @ rotation.T  # A, (2, 2) symmetric

    def loss_fn(w: np.ndarray) -> np.ndarray:
        return 0.5 * np.einsum("...i,ij,...j->...", w, hessian, w)

    def grad_fn(w: np.ndarray) -> np.ndarray:
        return w @ hessian  # A symmetric, so w A = (A w)^T

    return Surface(
        name=f"ill-conditioned quadratic (condition number {condition_number:g})",
        loss_fn=loss_fn,
        grad_fn=grad_fn,
        minimum=np.zeros(2),
        start=np.array([-4.5, 1.5]),
        xlim=(-5.0, 5.0),
        ylim=(-2.5, 2.5),
    )


def rosenbrock(a: float = 1.0, b: float = 100.0) -> Surface:
    """The Rosenbrock banana: L(x, y) = (a - x)^2 + b (y - x^2)^2, minimum at (a, a^2).

    Finding the curved valley is easy; following it to the minimum is slow.

    Args:
        a: position of the minimum.
        b: steepness of the valley walls, > 0.
    Returns:
        A `Surface`; gradient (-2 (a - x) - 4 b x (y - x^2), 2 b (y - x^2)).
    """
    if not b > 0:
        raise ConfigError(f"b must be > 0, got {b}")

    def loss_fn(w: np.ndarray) -> np.ndarray:
        x, y = w[..., 0], w[..., 1]
        return (a - x) ** 2 + b * (y - x * x) ** 2

    def grad_fn(w: np.ndarray) -> np.ndarray:
        x, y = w[..., 0], w[..., 1]
        valley = y - x * x  # zero along the bottom of the valley
        return np.stack([-2.0 * (a - x) - 4.0 * b * x * valley, 2.0 * b * valley], axis=-1)

    return Surface(
        name="Rosenbrock",
        loss_fn=loss_fn,
        grad_fn=grad_fn,
        minimum=np.array([a, a * a]),
        start=np.array([-1.5, 2.0]),
        xlim=(-2.0, 2.0),
        ylim=(-1.0, 3.0),
        log_contours=True,
    )


@dataclass(frozen=True)
class LeastSquaresSurface(Surface):
    """The mean squared error of a two-weight linear model, L(w) = 1/(2N) |y - X w|^2.

    Unlike the analytic surfaces it has data, so a mini-batch of B rows gives a
    noisy but unbiased estimate of the gradient: the setting of SGD.

    Attributes:
        features: X, shape (N, 2).
        targets: y, shape (N,).
    """

    features: np.ndarray = field(default=None, repr=False)
    targets: np.ndarray = field(default=None, repr=False)

    def minibatch_grad(self, w, indices) -> np.ndarray:
        """Gradient of the loss on the rows `indices` only: -X_b^T (y_b - X_b w) / B.

        Args:
            w: point, shape (2,).
            indices: row numbers of the mini-batch, shape (B,).
        Returns:
            Shape (2,).
        """
        w = _points(w)
        Xb = self.features[indices]  # (B, 2)
        residual = self.targets[indices] - Xb @ w  # (B,)
        return -(Xb.T @ residual) / len(indices)


def least_squares_surface(X, y) -> LeastSquaresSurface:
    """The least-squares loss of a linear model with two weights (no intercept).

    Args:
        X: features, shape (N, 2).
        y: targets, shape (N,).
    Returns:
        A `LeastSquaresSurface` whose minimum is the least-squares solution.
    """
    X = np.asarray(X, dtype=np.float64)
    y = np.asarray(y, dtype=np.float64)
    if X.ndim != 2 or X.shape[1] != 2:
        raise DataError(f"X must have shape (N, 2) for a 2-D surface, got {X.shape}")
    if y.shape != (X.shape[0],):
        raise DataError(f"y must have shape ({X.shape[0]},) to match X, got {y.shape}")
    if not (np.all(np.isfinite(X)) and np.all(np.isfinite(y))):
        raise DataError("X and y must not contain NaN or infinite values")
    n = X.shape[0]
    minimum, *_ = np.linalg.lstsq(X, y, rcond=None)

    def loss_fn(w: np.ndarray) -> np.ndarray:
        residual = y - w @ X.T  # (..., N)
        return 0.5 * np.mean(residual * residual, axis=-1)

    def grad_fn(w: np.ndarray) -> np.ndarray:
        residual = y - w @ X.T  # (..., N)
        return -(residual @ X) / n

    span = max(3.0, 1.5 * float(np.max(np.abs(minimum))))
    return LeastSquaresSurface(
        name="least squares (mean squared error)",
        loss_fn=loss_fn,
        grad_fn=grad_fn,
        minimum=minimum,
        start=minimum + np.array([-span, span]) * 0.8,
        xlim=(float(minimum[0]) - span, float(minimum[0]) + span),
        ylim=(float(minimum[1]) - span, float(minimum[1]) + span),
        features=X,
        targets=y,
    )


def get_surface(name: str) -> Surface:
    """A named analytic surface with its default settings.

    Args:
        name: "quadratic" or "rosenbrock".
    Returns:
        The `Surface`.
    """
    makers = {"quadratic": quadratic, "rosenbrock": rosenbrock}
    if name not in makers:
        raise ConfigError(f"unknown surface {name!r}; choose one of {', '.join(makers)}")
    return makers[name]()

"""Linear regression four ways: least squares, ridge, lasso and elastic net, in NumPy.

The objectives are exactly scikit-learn's, so the coefficients agree with
`sklearn.linear_model.LinearRegression`, `Ridge`, `Lasso` and `ElasticNet` on the
same data and penalties (the tests check this to 1e-6):

    least squares   ||y - X w - b||^2
    ridge           ||y - X w - b||^2 + alpha * ||w||_2^2                  (not divided by n)
    lasso           1/(2n) ||y - X w - b||^2 + alpha * ||w||_1
    elastic net     1/(2n) ||y - X w - b||^2 + alpha * l1_ratio * ||w||_1
                                            + alpha * (1 - l1_ratio) / 2 * ||w||_2^2

The intercept b is never penalised. With `fit_intercept=True` the columns of X and y
are centred first, the model is fitted without an intercept, and b = mean(y) - mean(X) w
(the same trick scikit-learn uses).

Least squares and ridge have closed forms (the normal equations, or the more stable
`np.linalg.lstsq`). Lasso and elastic net have a kink at w = 0 and are solved by
cyclic coordinate descent (Friedman, Hastie & Tibshirani, "Regularization paths for
generalized linear models via coordinate descent", J. Stat. Softw. 2010), stopped when
the duality gap falls below `tol * ||y||^2`.

Notation: N samples, P features, A penalty values on a path.
"""

from __future__ import annotations

import logging
import warnings
from dataclasses import dataclass

import numpy as np

from attnlab.errors import ConfigError, DataError

logger = logging.getLogger(__name__)

LEAST_SQUARES_METHODS = ("lstsq", "normal")
PENALTIES = ("ridge", "lasso", "elastic_net")


class ConvergenceWarning(UserWarning):
    """Coordinate descent stopped at `max_iter` before reaching the requested tolerance."""


@dataclass(frozen=True)
class LinearFit:
    """A fitted linear model y ~ X @ coef + intercept.

    Attributes:
        coef: weights, shape (P,).
        intercept: the unpenalised offset b (0.0 when `fit_intercept=False`).
        n_iter: coordinate-descent sweeps over all features (0 for closed forms).
        converged: whether the solver met its tolerance (always True for closed forms).
        duality_gap: final duality gap of coordinate descent (None for closed forms).
    """

    coef: np.ndarray
    intercept: float
    n_iter: int = 0
    converged: bool = True
    duality_gap: float | None = None

    def predict(self, X) -> np.ndarray:
        """Predictions for new samples.

        Args:
            X: shape (N, P).
        Returns:
            Shape (N,).
        """
        X = _as_matrix(X, "X")
        if X.shape[1] != self.coef.shape[0]:
            raise DataError(f"X has {X.shape[1]} features but the model was fitted on {self.coef.shape[0]}")
        return X @ self.coef + self.intercept


# --- input checks ----------------------------------------------------------------------


def _as_matrix(X, name: str) -> np.ndarray:
    try:
        X = np.asarray(X, dtype=np.float64)
    except (TypeError, ValueError) as e:
        raise DataError(f"{name} cannot be read as a numeric array ({e})") from e
    if X.ndim == 1:
        raise DataError(
            f"{name} must be 2-D (samples, features), got shape {X.shape}; for one feature use {name}.reshape(-1, 1)"
        )
    if X.ndim != 2:
        raise DataError(f"{name} must be 2-D (samples, features), got shape {X.shape}")
    if not np.all(np.isfinite(X)):
        raise DataError(f"{name} contains NaN or infinite values; remove or impute them before fitting")
    return X


def _check_xy(X, y) -> tuple[np.ndarray, np.ndarray]:
    X = _as_matrix(X, "X")
    try:
        y = np.asarray(y, dtype=np.float64)
    except (TypeError, ValueError) as e:
        raise DataError(f"y cannot be read as a numeric array ({e})") from e
    if y.ndim == 2 and y.shape[1] == 1:
        y = y[:, 0]  # a column vector is fine
    if y.ndim != 1:
        raise DataError(f"y must be 1-D (samples,), got shape {y.shape}; fit one target at a time")
    if not np.all(np.isfinite(y)):
        raise DataError("y contains NaN or infinite values; remove or impute them before fitting")
    if X.shape[0] != y.shape[0]:
        raise DataError(f"X has {X.shape[0]} samples (rows) but y has {y.shape[0]}; they must match")
    if X.shape[0] < 1 or X.shape[1] < 1:
        raise DataError(f"X must have at least one sample and one feature, got shape {X.shape}")
    return X, y


def _check_penalty(alpha: float, name: str = "alpha") -> float:
    try:
        alpha = float(alpha)
    except (TypeError, ValueError) as e:
        raise ConfigError(f"{name} must be a number, got {alpha!r}") from e
    if not np.isfinite(alpha) or alpha < 0:
        raise ConfigError(f"{name} must be a finite number >= 0 (the penalty strength), got {alpha}")
    return alpha


def _center(X: np.ndarray, y: np.ndarray, fit_intercept: bool):
    """Centre X and y when fitting an intercept; returns (Xc, yc, x_mean, y_mean)."""
    if not fit_intercept:
        return X, y, np.zeros(X.shape[1]), 0.0
    x_mean = X.mean(axis=0)  # (P,)
    y_mean = float(y.mean())
    return X - x_mean, y - y_mean, x_mean, y_mean


def _finish(coef: np.ndarray, x_mean: np.ndarray, y_mean: float, fit_intercept: bool, **extra) -> LinearFit:
    intercept = y_mean - float(x_mean @ coef) if fit_intercept else 0.0
    return LinearFit(coef=coef, intercept=intercept, **extra)


# --- closed forms ----------------------------------------------------------------------


def least_squares(X, y, fit_intercept: bool = True, method: str = "lstsq") -> LinearFit:
    """Ordinary least squares: minimise ||y - X w - b||^2.

    Args:
        X: features, shape (N, P).
        y: targets, shape (N,).
        fit_intercept: fit an unpenalised offset b.
        method: "normal" solves the normal equations (X^T X) w = X^T y, the textbook
            formula, which squares the condition number and fails when X^T X is
            singular; "lstsq" uses an SVD (`np.linalg.lstsq`), which is stable and
            returns the minimum-norm solution when columns are collinear.
    Returns:
        `LinearFit` with `coef` of shape (P,).
    Raises:
        DataError: bad shapes/values, or X^T X singular with method="normal".
        ConfigError: unknown method.
    """
    if method not in LEAST_SQUARES_METHODS:
        raise ConfigError(f"unknown least-squares method {method!r}; choose one of {', '.join(LEAST_SQUARES_METHODS)}")
    X, y = _check_xy(X, y)
    Xc, yc, x_mean, y_mean = _center(X, y, fit_intercept)
    if method == "normal":
        coef = _solve_normal_equations(Xc, yc, alpha=0.0)
    else:
        coef, *_ = np.linalg.lstsq(Xc, yc, rcond=None)
    return _finish(coef, x_mean, y_mean, fit_intercept)


def _solve_normal_equations(Xc: np.ndarray, yc: np.ndarray, alpha: float) -> np.ndarray:
    """Solve (X^T X + alpha I) w = X^T y, refusing a (numerically) singular system."""
    gram = Xc.T @ Xc + alpha * np.eye(Xc.shape[1])  # (P, P)
    # 1/eps of float64 is ~4.5e15: beyond that the solve returns rounding noise.
    if np.linalg.cond(gram) > 1e14:
        raise DataError(
            "X^T X (+ alpha I) is singular or nearly so (collinear or too few samples for the features); "
            "use method='lstsq', a ridge penalty alpha > 0, or drop redundant columns"
        )
    return np.linalg.solve(gram, Xc.T @ yc)


def ridge(X, y, alpha: float = 1.0, fit_intercept: bool = True) -> LinearFit:
    """Ridge regression (L2 penalty), closed form: w = (X^T X + alpha I)^-1 X^T y.

    Objective (scikit-learn's `Ridge`, not divided by N): ||y - X w - b||^2 + alpha ||w||^2.
    The penalty adds alpha to every eigenvalue of X^T X, so the system is always
    solvable for alpha > 0, and every weight shrinks smoothly towards 0 (never exactly 0).

    Args:
        X: features, shape (N, P).
        y: targets, shape (N,).
        alpha: penalty strength, >= 0 (0 is least squares via the normal equations).
        fit_intercept: fit an unpenalised offset b.
    Returns:
        `LinearFit` with `coef` of shape (P,).
    Raises:
        ConfigError: negative or non-finite alpha.
        DataError: bad shapes/values, or a singular system with alpha = 0.
    """
    alpha = _check_penalty(alpha)
    X, y = _check_xy(X, y)
    Xc, yc, x_mean, y_mean = _center(X, y, fit_intercept)
    return _finish(_solve_normal_equations(Xc, yc, alpha), x_mean, y_mean, fit_intercept)


# --- coordinate descent ---------------------------------------------------------------


def soft_threshold(z, threshold: float) -> np.ndarray:
    """The proximal step of the L1 norm: sign(z) * max(|z| - threshold, 0).

    Args:
        z: any shape.
        threshold: >= 0.
    Returns:
        Same shape as `z`; entries with |z| <= threshold become exactly 0.
    """
    z = np.asarray(z, dtype=np.float64)
    return np.sign(z) * np.maximum(np.abs(z) - threshold, 0.0)


def _duality_gap(Xc, yc, coef, residual, l1_reg, l2_reg) -> float:
    """Gap between the primal objective and a dual feasible point (both scaled by N).

    Primal:  P(w) = 1/2 ||y - X w||^2 + l1 ||w||_1 + l2/2 ||w||^2.
    Dual:    D(theta) = theta.y - 1/2 ||theta||^2 - sum_j (|X_j.theta| - l1)_+^2 / (2 l2),
             which for l2 = 0 becomes the constraint |X_j.theta| <= l1.
    At the optimum theta = residual, so we evaluate D at the residual (scaled down
    into the feasible set when l2 = 0). P(w) - D(theta) >= 0 bounds how far the
    objective is from its minimum.
    """
    r_sq = float(residual @ residual)
    primal = 0.5 * r_sq + l1_reg * np.abs(coef).sum() + 0.5 * l2_reg * float(coef @ coef)
    correlation = Xc.T @ residual  # (P,)
    if l2_reg > 0:
        theta_scale = 1.0
        conjugate = float(np.sum(np.maximum(np.abs(correlation) - l1_reg, 0.0) ** 2)) / (2.0 * l2_reg)
    else:
        largest = float(np.max(np.abs(correlation)))
        theta_scale = 1.0 if largest <= l1_reg else l1_reg / largest
        conjugate = 0.0
    dual = theta_scale * float(residual @ yc) - 0.5 * theta_scale**2 * r_sq - conjugate
    return primal - dual


def elastic_net(
    X,
    y,
    alpha: float = 1.0,
    l1_ratio: float = 0.5,
    fit_intercept: bool = True,
    max_iter: int = 1000,
    tol: float = 1e-4,
    initial_coef=None,
    on_not_converged: str = "warn",
) -> LinearFit:
    """Elastic net by cyclic coordinate descent (scikit-learn's `ElasticNet` objective).

    Minimises 1/(2N) ||y - X w - b||^2 + alpha * l1_ratio * ||w||_1
    + alpha * (1 - l1_ratio) / 2 * ||w||^2. Each coordinate step solves the problem
    in one weight exactly, holding the others fixed (multiplying through by N):

        rho_j = X_j . (r + X_j w_j)                       r = y - X w, the residual
        w_j   = soft_threshold(rho_j, N alpha l1_ratio) / (|X_j|^2 + N alpha (1 - l1_ratio))

    The soft threshold is what sets weights to exactly 0 (L1 sparsity); the added
    term in the denominator is the smooth L2 shrinkage.

    The stopping rule is scikit-learn's (duality gap <= tol * ||y||^2), but the gap is
    the exact Fenchel dual at the residual, which for l1_ratio < 1 is tighter than
    scikit-learn's bound, so the same `tol` can stop a few sweeps earlier. For
    agreement to ~1e-6 use a small tol such as 1e-12.

    Args:
        X: features, shape (N, P).
        y: targets, shape (N,).
        alpha: overall penalty strength, >= 0.
        l1_ratio: mix between L1 (1.0, the lasso) and L2 (0.0), in [0, 1].
        fit_intercept: fit an unpenalised offset b (by centring X and y).
        max_iter: most sweeps over all P features.
        tol: stop when the duality gap <= tol * ||y_centred||^2 (scikit-learn's rule).
        initial_coef: warm start, shape (P,) (e.g. the solution at a larger alpha).
        on_not_converged: "warn" (a `ConvergenceWarning`; the fit is still returned
            with `converged=False`) or "raise" (a `ConfigError`).
    Returns:
        `LinearFit` with `coef` (P,), `n_iter`, `converged` and `duality_gap`.
    Raises:
        ConfigError: bad penalty/solver settings, or no convergence with on_not_converged="raise".
        DataError: bad shapes or values.
    """
    alpha = _check_penalty(alpha)
    l1_ratio = _check_penalty(l1_ratio, "l1_ratio")
    if l1_ratio > 1:
        raise ConfigError(f"l1_ratio must be in [0, 1] (1 = lasso, 0 = ridge), got {l1_ratio}")
    if isinstance(max_iter, bool) or not isinstance(max_iter, (int, np.integer)) or max_iter < 1:
        raise ConfigError(f"max_iter must be a positive integer, got {max_iter!r}")
    if (
        isinstance(tol, bool)
        or not isinstance(tol, (int, float, np.integer, np.floating))
        or not (np.isfinite(tol) and tol > 0)
    ):
        raise ConfigError(f"tol must be a positive number, got {tol!r}")
    if on_not_converged not in ("warn", "raise"):
        raise ConfigError(f"on_not_converged must be 'warn' or 'raise', got {on_not_converged!r}")
    X, y = _check_xy(X, y)
    Xc, yc, x_mean, y_mean = _center(X, y, fit_intercept)
    n, p = Xc.shape

    if initial_coef is None:
        coef = np.zeros(p)
    else:
        coef = np.array(initial_coef, dtype=np.float64).reshape(-1)
        if coef.shape != (p,) or not np.all(np.isfinite(coef)):
            raise DataError(
                f"initial_coef must be {p} finite numbers (one per feature), got shape {np.shape(initial_coef)}"
            )

    l1_reg = n * alpha * l1_ratio  # the penalties, multiplied through by N
    l2_reg = n * alpha * (1.0 - l1_ratio)
    col_sq = np.einsum("ij,ij->j", Xc, Xc)  # |X_j|^2, shape (P,)
    residual = yc - Xc @ coef  # (N,)
    stop_gap = tol * float(yc @ yc)

    gap = np.inf
    n_iter = 0
    for n_iter in range(1, max_iter + 1):  # noqa: B007 (n_iter is read after the loop: sweeps run)
        largest_step = 0.0
        for j in range(p):
            if col_sq[j] == 0.0:  # a constant column carries no information
                coef[j] = 0.0
                continue
            old = coef[j]
            rho = Xc[:, j] @ residual + col_sq[j] * old
            new = np.sign(rho) * max(abs(rho) - l1_reg, 0.0) / (col_sq[j] + l2_reg)
            if new != old:
                residual -= Xc[:, j] * (new - old)  # keep r = y - X w up to date in O(N)
                coef[j] = new
                largest_step = max(largest_step, abs(new - old))
        gap = _duality_gap(Xc, yc, coef, residual, l1_reg, l2_reg)
        # A sweep that moves nothing is an exact fixed point, hence optimal: what
        # is left of the gap is rounding, which a tiny tol might never get under.
        if gap <= stop_gap or largest_step == 0.0:
            break
    converged = gap <= stop_gap or largest_step == 0.0
    if not converged:
        message = (
            f"coordinate descent did not converge in max_iter={max_iter} sweeps "
            f"(duality gap {gap:.3g} > tol * ||y||^2 = {stop_gap:.3g}); "
            "raise max_iter, loosen tol, or standardise the features"
        )
        if on_not_converged == "raise":
            raise ConfigError(message)
        warnings.warn(message, ConvergenceWarning, stacklevel=2)
    logger.debug("elastic net alpha=%g l1_ratio=%g: %d sweeps, gap %.3g", alpha, l1_ratio, n_iter, gap)
    return _finish(coef, x_mean, y_mean, fit_intercept, n_iter=n_iter, converged=converged, duality_gap=gap)


def lasso(
    X,
    y,
    alpha: float = 1.0,
    fit_intercept: bool = True,
    max_iter: int = 1000,
    tol: float = 1e-4,
    initial_coef=None,
    on_not_converged: str = "warn",
) -> LinearFit:
    """The lasso (L1 penalty): minimise 1/(2N) ||y - X w - b||^2 + alpha ||w||_1.

    Scikit-learn's `Lasso` objective; solved by coordinate descent, see `elastic_net`
    (this is `elastic_net` with l1_ratio=1). Large alpha sets weights to exactly 0.

    Args:
        X: features, shape (N, P).
        y: targets, shape (N,).
        alpha: penalty strength, >= 0.
        fit_intercept: fit an unpenalised offset b.
        max_iter: most sweeps over all features.
        tol: duality-gap tolerance, relative to ||y_centred||^2.
        initial_coef: warm start, shape (P,).
        on_not_converged: "warn" or "raise".
    Returns:
        `LinearFit` with `coef` of shape (P,).
    """
    return elastic_net(
        X,
        y,
        alpha=alpha,
        l1_ratio=1.0,
        fit_intercept=fit_intercept,
        max_iter=max_iter,
        tol=tol,
        initial_coef=initial_coef,
        on_not_converged=on_not_converged,
    )


def lasso_alpha_max(X, y, l1_ratio: float = 1.0, fit_intercept: bool = True) -> float:
    """Smallest alpha at which the lasso / elastic net sets every weight to 0.

    At w = 0 the residual is y, and coordinate j stays at 0 while
    |X_j . y| <= N alpha l1_ratio; so alpha_max = max_j |X_j . y| / (N l1_ratio).

    Args:
        X: features, shape (N, P).
        y: targets, shape (N,).
        l1_ratio: in (0, 1].
        fit_intercept: centre X and y first (as the fit does).
    Returns:
        alpha_max, a float >= 0.
    """
    l1_ratio = _check_penalty(l1_ratio, "l1_ratio")
    if not 0 < l1_ratio <= 1:
        raise ConfigError(f"l1_ratio must be in (0, 1] for alpha_max to exist, got {l1_ratio}")
    X, y = _check_xy(X, y)
    Xc, yc, _, _ = _center(X, y, fit_intercept)
    return float(np.max(np.abs(Xc.T @ yc))) / (X.shape[0] * l1_ratio)


def regularization_path(
    X,
    y,
    alphas,
    penalty: str = "lasso",
    l1_ratio: float = 0.5,
    fit_intercept: bool = True,
    max_iter: int = 1000,
    tol: float = 1e-4,
) -> np.ndarray:
    """Coefficients for a sequence of penalty strengths: how a penalty shrinks weights.

    Coordinate-descent penalties are fitted from the largest alpha down, each
    warm-started from the previous solution (the path is smooth, so this is fast).

    Args:
        X: features, shape (N, P).
        y: targets, shape (N,).
        alphas: penalty strengths, shape (A,), any order, each >= 0.
        penalty: "ridge", "lasso" or "elastic_net".
        l1_ratio: the elastic-net mix (only for penalty="elastic_net").
        fit_intercept: fit an unpenalised offset b.
        max_iter: coordinate-descent sweeps per alpha.
        tol: coordinate-descent tolerance.
    Returns:
        Coefficients, shape (A, P), row i for alphas[i].
    """
    if penalty not in PENALTIES:
        raise ConfigError(f"unknown penalty {penalty!r}; choose one of {', '.join(PENALTIES)}")
    alphas = np.asarray(alphas, dtype=np.float64).reshape(-1)
    if alphas.size == 0:
        raise ConfigError("alphas is empty; pass at least one penalty strength, e.g. np.logspace(-3, 1, 30)")
    for a in alphas:
        _check_penalty(a)
    X, y = _check_xy(X, y)
    coefs = np.zeros((alphas.size, X.shape[1]))  # (A, P)
    if penalty == "ridge":
        for i, a in enumerate(alphas):
            coefs[i] = ridge(X, y, a, fit_intercept).coef
        return coefs
    ratio = 1.0 if penalty == "lasso" else l1_ratio
    warm = None
    for i in np.argsort(-alphas, kind="stable"):  # strongest penalty first
        fit = elastic_net(X, y, alphas[i], ratio, fit_intercept, max_iter, tol, initial_coef=warm)
        coefs[i] = warm = fit.coef
    return coefs


def make_regression_data(
    n_samples: int = 100,
    n_features: int = 6,
    n_informative: int | None = None,
    noise: float = 0.5,
    correlation: float = 0.0,
    intercept: float = 0.0,
    seed: int = 0,
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """A synthetic linear-regression problem with known true weights.

    Features are standard normal with pairwise correlation `correlation`; the first
    `n_informative` true weights are non-zero (alternating sign, decreasing size), the
    rest are 0, so a good lasso should find them.

    Args:
        n_samples: N.
        n_features: P.
        n_informative: non-zero true weights (default: all P).
        noise: standard deviation of the Gaussian noise added to y.
        correlation: correlation between every pair of features, in [0, 1).
        intercept: true offset b.
        seed: NumPy random seed.
    Returns:
        (X, y, true_coef) with shapes (N, P), (N,), (P,).
    """
    if n_samples < 1 or n_features < 1:
        raise ConfigError(f"n_samples and n_features must be >= 1, got {n_samples} and {n_features}")
    if not 0 <= correlation < 1:
        raise ConfigError(f"correlation must be in [0, 1), got {correlation}")
    n_informative = n_features if n_informative is None else n_informative
    if not 0 <= n_informative <= n_features:
        raise ConfigError(f"n_informative must be between 0 and n_features={n_features}, got {n_informative}")
    rng = np.random.default_rng(seed)
    shared = rng.standard_normal((n_samples, 1))  # a common factor gives equal correlation
    own = rng.standard_normal((n_samples, n_features))
    X = np.sqrt(correlation) * shared + np.sqrt(1.0 - correlation) * own  # (N, P)
    true_coef = np.zeros(n_features)
    sizes = np.linspace(3.0, 0.75, n_informative) if n_informative else np.zeros(0)
    true_coef[:n_informative] = sizes * np.where(np.arange(n_informative) % 2 == 0, 1.0, -1.0)
    y = X @ true_coef + intercept + noise * rng.standard_normal(n_samples)
    return X, y, true_coef

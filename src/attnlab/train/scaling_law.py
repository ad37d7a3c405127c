"""The parametric scaling law L(N, D) = E + A / N^alpha + B / D^beta and its fit (torch-free).

Hoffmann et al. 2022, "Training Compute-Optimal Large Language Models" (Chinchilla), section
3.3 and appendix D.2, "approach 3": model the final loss of a run with N (non-embedding)
parameters trained on D tokens as

    L(N, D) = E + A / N^alpha + B / D^beta

(E: the loss of a perfect model, the entropy of the text; A / N^alpha: what a finite model
loses; B / D^beta: what finite data loses) and fit it by minimising the Huber loss
(delta = 1e-3) between the predicted and the measured *log* loss,

    min over (a, b, e, alpha, beta) of  sum_i Huber_delta( LSE(a - alpha log N_i, b - beta log D_i, e) - log L_i )

with A = exp(a), B = exp(b), E = exp(e), from a grid of initialisations, keeping the best.
Hoffmann et al. minimise with L-BFGS; here `scipy.optimize.least_squares` does it (its
`loss="huber"` with `f_scale=delta` is exactly this objective, see `_residuals`), with an
analytic Jacobian and wide bounds that keep the exponents non-negative. Each start is
first taken to the ordinary least-squares optimum on the log loss (fast), and the Huber
objective is then minimised from the best few distinct optima found (see `fit_scaling_law`).

Compute-optimal frontier (Hoffmann et al. eq. 4): with C = 6 N D training FLOPs,

    N_opt(C) = G (C / 6)^(beta / (alpha + beta)),  D_opt(C) = (C / 6) / N_opt(C),
    G = (alpha A / (beta B))^(1 / (alpha + beta)).

Uncertainty: a bootstrap over runs (resample the runs with replacement, refit; percentile
intervals), and a held-out check: fit without the run of the largest compute, predict it.

Notation: N parameters (non-embedding), D training tokens, L final validation loss (nats/token).
"""

from __future__ import annotations

import itertools
import math
from collections.abc import Iterable, Sequence
from dataclasses import asdict, dataclass
from typing import Any

import numpy as np

from attnlab.errors import DataError

HUBER_DELTA = 1e-3  # Hoffmann et al.'s delta, on the log loss
# Hoffmann et al.'s grid is alpha, beta in {0, 0.5, ..., 2}, e in {-1, -0.5, ..., 1}, a, b in
# {0, 5, ..., 25} (4,500 starts); 32 starts over the same ranges, each first brought to the
# ordinary least-squares optimum (see `fit_scaling_law`), find the same optimum on
# laptop-sized grids of runs in well under a second (tests/train/test_scale.py).
INIT_GRID = {"alpha": (0.25, 0.75), "beta": (0.25, 0.75), "e": (-0.5, 0.5), "a": (2.0, 10.0), "b": (2.0, 10.0)}
# The starts of each bootstrap refit besides the full fit's optimum.
BOOTSTRAP_GRID = {"alpha": (0.5,), "beta": (0.5,), "e": (0.0,), "a": (5.0,), "b": (5.0,)}
# (a, b, e, alpha, beta): exponents stay non-negative; the rest is wide enough never to bind in practice.
LOWER = np.array([-20.0, -20.0, -10.0, 0.0, 0.0])
UPPER = np.array([60.0, 60.0, 5.0, 5.0, 5.0])
MIN_RUNS = 5  # the law has 5 parameters
HUBER_STARTS = 4  # the Huber objective is minimised from this many of the best least-squares optima
# Evaluation caps: a good start converges in a few dozen; a grid of runs that leaves a parameter
# undetermined (A and alpha trading off) would otherwise crawl along the valley for hundreds.
STAGE1_NFEV = 60
STAGE2_NFEV = 300
PARAMETERS = ("E", "A", "B", "alpha", "beta")


@dataclass(frozen=True)
class ScalingLaw:
    """L(N, D) = E + A / N^alpha + B / D^beta, fitted (or given)."""

    E: float  # irreducible loss (nats/token)
    A: float  # model-size term's coefficient
    B: float  # data term's coefficient
    alpha: float  # model-size exponent
    beta: float  # data exponent

    def predict(self, params: Any, tokens: Any) -> np.ndarray:
        """Predicted loss at N = `params`, D = `tokens` (scalars or arrays, broadcast)."""
        n = np.asarray(params, dtype=float)
        d = np.asarray(tokens, dtype=float)
        return self.E + self.A / n**self.alpha + self.B / d**self.beta

    @property
    def n_exponent(self) -> float:
        """a in N_opt proportional to C^a: beta / (alpha + beta) (Hoffmann et al. find 0.46 for approach 3)."""
        return self.beta / (self.alpha + self.beta) if self.alpha + self.beta > 0 else math.nan

    @property
    def d_exponent(self) -> float:
        """b in D_opt proportional to C^b: alpha / (alpha + beta)."""
        return self.alpha / (self.alpha + self.beta) if self.alpha + self.beta > 0 else math.nan

    def compute_optimal(self, flops: Any) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """The loss-minimising split of a compute budget C = 6 N D (Hoffmann et al. eq. 4).

        Args:
            flops: compute budgets C (scalar or array).
        Returns:
            (N_opt, D_opt, L_opt), arrays shaped like `flops`.
        """
        c = np.asarray(flops, dtype=float) / 6.0
        if self.alpha <= 0 or self.beta <= 0:  # one term is constant: all compute goes to the other
            nan = np.full_like(c, math.nan)
            return nan, nan, nan
        g = (self.alpha * self.A / (self.beta * self.B)) ** (1.0 / (self.alpha + self.beta))
        n_opt = g * c**self.n_exponent
        d_opt = c / n_opt
        return n_opt, d_opt, self.predict(n_opt, d_opt)

    def as_dict(self) -> dict[str, float]:
        return {k: float(v) for k, v in asdict(self).items()}


def _to_theta(law: ScalingLaw) -> np.ndarray:
    return np.array([math.log(law.A), math.log(law.B), math.log(law.E), law.alpha, law.beta])


def _from_theta(theta: np.ndarray) -> ScalingLaw:
    a, b, e, alpha, beta = (float(x) for x in theta)
    return ScalingLaw(E=math.exp(e), A=math.exp(a), B=math.exp(b), alpha=alpha, beta=beta)


def _terms(theta: np.ndarray, log_n: np.ndarray, log_d: np.ndarray) -> np.ndarray:
    a, b, e, alpha, beta = theta
    return np.stack([a - alpha * log_n, b - beta * log_d, np.full_like(log_n, e)])  # (3, R)


def _residuals(theta: np.ndarray, log_n: np.ndarray, log_d: np.ndarray, log_loss: np.ndarray) -> np.ndarray:
    """log L_hat - log L for every run: LSE(a - alpha log N, b - beta log D, e) - log L.

    `least_squares(loss="huber", f_scale=delta)` minimises 0.5 delta^2 sum rho((r / delta)^2) with
    rho(z) = z (z <= 1) else 2 sqrt(z) - 1, which is sum Huber_delta(r): r^2 / 2 for |r| <= delta,
    else delta (|r| - delta / 2) -- Hoffmann et al.'s objective.
    """
    t = _terms(theta, log_n, log_d)
    top = t.max(axis=0)
    return top + np.log(np.exp(t - top).sum(axis=0)) - log_loss


def _jacobian(theta: np.ndarray, log_n: np.ndarray, log_d: np.ndarray, log_loss: np.ndarray) -> np.ndarray:
    t = _terms(theta, log_n, log_d)
    w = np.exp(t - t.max(axis=0))
    w /= w.sum(axis=0)  # (3, R) softmax weights: d LSE / d term
    return np.stack([w[0], w[1], w[2], -w[0] * log_n, -w[1] * log_d], axis=1)  # (R, 5): a, b, e, alpha, beta


def huber_objective(law: ScalingLaw, params: Any, tokens: Any, losses: Any, delta: float = HUBER_DELTA) -> float:
    """Hoffmann et al.'s objective of `law` on runs: the sum of Huber_delta over the log-loss residuals."""
    n, d, loss = _checked(params, tokens, losses)
    r = np.abs(_residuals(_to_theta(law), np.log(n), np.log(d), np.log(loss)))
    return float(np.where(r <= delta, 0.5 * r**2, delta * (r - 0.5 * delta)).sum())


def _checked(params: Any, tokens: Any, losses: Any) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    n, d, loss = (np.asarray(x, dtype=float).ravel() for x in (params, tokens, losses))
    if not (len(n) == len(d) == len(loss)):
        raise DataError(f"params, tokens and losses must have the same length, got {len(n)}, {len(d)}, {len(loss)}")
    for name, x in (("params", n), ("tokens", d), ("losses", loss)):
        if not np.all(np.isfinite(x)) or np.any(x <= 0):
            raise DataError(f"every value of {name} must be a positive finite number")
    return n, d, loss


def _grid(spec: dict[str, Sequence[float]]) -> list[np.ndarray]:
    keys = ("a", "b", "e", "alpha", "beta")
    return [np.array(v, dtype=float) for v in itertools.product(*(spec[k] for k in keys))]


def can_fit(params: Any, tokens: Any) -> bool:
    """Whether runs at these (N, D) determine the law: at least 5 runs, 2 sizes and 2 token budgets."""
    n = np.asarray(params, dtype=float).ravel()
    d = np.asarray(tokens, dtype=float).ravel()
    return len(n) >= MIN_RUNS and len(np.unique(n)) >= 2 and len(np.unique(d)) >= 2


def fit_scaling_law(
    params: Any,
    tokens: Any,
    losses: Any,
    *,
    delta: float = HUBER_DELTA,
    inits: Iterable[np.ndarray] | None = None,
    huber_starts: int = HUBER_STARTS,
) -> ScalingLaw:
    """Fit L(N, D) = E + A / N^alpha + B / D^beta to runs (Hoffmann et al. 2022, approach 3).

    Args:
        params: (R,) non-embedding parameters N of each run.
        tokens: (R,) training tokens D of each run.
        losses: (R,) final validation loss of each run (nats/token).
        delta: the Huber loss's delta, on the log loss.
        inits: starting points (a, b, e, alpha, beta); default the grid `INIT_GRID`.
        huber_starts: minimise the Huber objective from this many of the best least-squares optima.
    Returns:
        The law with the lowest objective over all starts.
    Raises:
        DataError: fewer than 5 runs, one size or one budget only, or a non-positive value.
    """
    from scipy.optimize import least_squares

    n, d, loss = _checked(params, tokens, losses)
    if not can_fit(n, d):
        raise DataError(
            f"fitting the scaling law needs at least {MIN_RUNS} runs over at least 2 model sizes and 2 token "
            f"budgets, got {len(n)} run(s), {len(np.unique(n))} size(s), {len(np.unique(d))} budget(s)"
        )
    args = (np.log(n), np.log(d), np.log(loss))
    bounds = (LOWER, UPPER)
    # Stage 1, from every start: ordinary least squares on the log loss (Gauss-Newton converges
    # in a few dozen evaluations, where the Huber loss with its tiny delta needs hundreds).
    candidates: list[np.ndarray] = []
    for x0 in _grid(INIT_GRID) if inits is None else inits:
        x0 = np.clip(np.asarray(x0, dtype=float), LOWER + 1e-9, UPPER - 1e-9)
        result = least_squares(
            _residuals, x0, jac=_jacobian, args=args, bounds=bounds, method="trf", x_scale="jac", max_nfev=STAGE1_NFEV
        )
        if np.all(np.isfinite(result.x)) and not any(
            np.allclose(result.x, c, rtol=1e-4, atol=1e-6) for c in candidates
        ):
            candidates.append(result.x)

    # Stage 2, from the best few distinct optima of stage 1 (by the Huber objective): the Huber
    # objective itself; the best wins.
    def huber_cost(theta: np.ndarray) -> float:
        r = np.abs(_residuals(theta, *args))
        return float(np.where(r <= delta, 0.5 * r**2, delta * (r - 0.5 * delta)).sum())

    candidates.sort(key=huber_cost)
    best_theta, best_cost = None, math.inf
    for x0 in candidates[: max(1, huber_starts)]:
        x0 = np.clip(x0, LOWER + 1e-9, UPPER - 1e-9)
        result = least_squares(
            _residuals,
            x0,
            jac=_jacobian,
            args=args,
            loss="huber",
            f_scale=delta,
            bounds=bounds,
            method="trf",
            x_scale="jac",
            max_nfev=STAGE2_NFEV,
        )
        if np.all(np.isfinite(result.x)) and result.cost < best_cost:
            best_theta, best_cost = result.x, float(result.cost)
    if best_theta is None:  # pragma: no cover - least_squares always returns a finite point
        raise DataError("the scaling-law fit failed from every starting point")
    return _from_theta(best_theta)


@dataclass(frozen=True)
class Bootstrap:
    """Percentile intervals of the law's parameters over bootstrap refits."""

    samples: int  # refits that succeeded
    level: float  # e.g. 0.95
    intervals: dict[str, tuple[float, float]]  # parameter -> (low, high); E, A, B, alpha, beta, a, b
    laws: tuple[ScalingLaw, ...]  # the refitted laws


def bootstrap_scaling_law(
    params: Any,
    tokens: Any,
    losses: Any,
    *,
    samples: int = 200,
    level: float = 0.95,
    seed: int = 0,
    start: ScalingLaw | None = None,
) -> Bootstrap:
    """Bootstrap over runs: refit on `samples` resamples (with replacement) of the runs.

    Each refit starts from `start` (the fit on all runs, computed when None) and from the
    few points of `BOOTSTRAP_GRID`. A resample that no longer spans 2 sizes and 2 budgets
    is drawn again.

    Returns:
        A `Bootstrap` with percentile intervals for E, A, B, alpha, beta and the
        compute-optimal exponents a (N_opt ~ C^a) and b (D_opt ~ C^b).
    """
    n, d, loss = _checked(params, tokens, losses)
    if start is None:
        start = fit_scaling_law(n, d, loss)
    rng = np.random.default_rng(seed)
    inits = [_to_theta(start), *_grid(BOOTSTRAP_GRID)]
    laws: list[ScalingLaw] = []
    tries = 0
    while len(laws) < samples and tries < 20 * max(samples, 1):
        tries += 1
        idx = rng.integers(0, len(n), len(n))
        if not can_fit(n[idx], d[idx]):
            continue
        laws.append(fit_scaling_law(n[idx], d[idx], loss[idx], inits=inits, huber_starts=1))
    intervals = {}
    if laws:
        tail = 100 * (1 - level) / 2
        values = {
            **{p: [getattr(law, p) for law in laws] for p in PARAMETERS},
            "a": [law.n_exponent for law in laws],
            "b": [law.d_exponent for law in laws],
        }
        for name, v in values.items():
            low, high = np.nanpercentile(np.asarray(v, dtype=float), [tail, 100 - tail])
            intervals[name] = (float(low), float(high))
    return Bootstrap(samples=len(laws), level=level, intervals=intervals, laws=tuple(laws))


@dataclass(frozen=True)
class HeldOut:
    """The held-out check: fit without the largest-compute run(s), predict them."""

    index: tuple[int, ...]  # the held-out runs (all seeds of the largest-compute grid point)
    params: float  # their N
    tokens: float  # their D (mean over the seeds)
    measured: float  # their mean measured loss
    predicted: float  # the prediction of the law fitted on the other runs
    law: ScalingLaw  # that law
    interval: tuple[float, float] | None  # bootstrap interval of the prediction (None without a bootstrap)

    @property
    def relative_error(self) -> float:
        """(predicted - measured) / measured."""
        return (self.predicted - self.measured) / self.measured


def held_out_check(
    params: Any,
    tokens: Any,
    losses: Any,
    *,
    bootstrap: int = 0,
    level: float = 0.95,
    seed: int = 0,
) -> HeldOut:
    """Hold out the run of the largest compute 6 N D, fit on the rest, and predict its loss.

    Runs at the same (N, D) (other seeds) are held out together, and their mean loss is
    the measurement. With `bootstrap` > 0 the prediction gets a percentile interval from
    that many bootstrap refits of the remaining runs.

    Raises:
        DataError: the remaining runs cannot determine the law (`can_fit`).
    """
    n, d, loss = _checked(params, tokens, losses)
    flops = 6 * n * d
    top = int(np.argmax(flops))
    held = np.flatnonzero(np.isclose(n, n[top]) & np.isclose(d, d[top], rtol=1e-3))
    keep = np.setdiff1d(np.arange(len(n)), held)
    if not can_fit(n[keep], d[keep]):
        raise DataError(
            f"the held-out check needs at least {MIN_RUNS} runs over 2 sizes and 2 budgets besides the largest-"
            f"compute one; got {len(keep)} run(s)"
        )
    law = fit_scaling_law(n[keep], d[keep], loss[keep])
    d_held = float(np.mean(d[held]))
    interval = None
    if bootstrap > 0:
        boot = bootstrap_scaling_law(n[keep], d[keep], loss[keep], samples=bootstrap, level=level, seed=seed, start=law)
        if boot.laws:
            preds = np.array([float(b.predict(n[top], d_held)) for b in boot.laws])
            tail = 100 * (1 - level) / 2
            low, high = np.percentile(preds, [tail, 100 - tail])
            interval = (float(low), float(high))
    return HeldOut(
        index=tuple(int(i) for i in held),
        params=float(n[top]),
        tokens=d_held,
        measured=float(np.mean(loss[held])),
        predicted=float(law.predict(n[top], d_held)),
        law=law,
        interval=interval,
    )


__all__ = [
    "HUBER_DELTA",
    "INIT_GRID",
    "Bootstrap",
    "HeldOut",
    "ScalingLaw",
    "bootstrap_scaling_law",
    "can_fit",
    "fit_scaling_law",
    "held_out_check",
    "huber_objective",
]

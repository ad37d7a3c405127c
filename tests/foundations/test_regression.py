"""Least squares, ridge, lasso and elastic net: same coefficients as scikit-learn (1e-6)."""

from __future__ import annotations

import warnings

import numpy as np
import pytest
from sklearn.linear_model import ElasticNet, Lasso, LinearRegression, Ridge

from attnlab.errors import ConfigError, DataError
from attnlab.foundations import regression as R

TIGHT = dict(tol=1e-14, max_iter=100_000)  # solve to the optimum so both libraries agree


@pytest.fixture(scope="module")
def data():
    X, y, _ = R.make_regression_data(
        n_samples=60, n_features=5, n_informative=3, noise=0.7, correlation=0.4, intercept=2.5, seed=7
    )
    X[:, 1] = 4.0 * X[:, 1] + 3.0  # a feature of another scale and offset, so centring matters
    return X, y


def _assert_same(ours, ref, atol=1e-6):
    np.testing.assert_allclose(ours.coef, ref.coef_, rtol=0, atol=atol)
    np.testing.assert_allclose(ours.intercept, ref.intercept_, rtol=0, atol=atol)


@pytest.mark.parametrize("fit_intercept", [True, False])
@pytest.mark.parametrize("method", ["lstsq", "normal"])
def test_least_squares_matches_sklearn(data, fit_intercept, method):
    X, y = data
    _assert_same(
        R.least_squares(X, y, fit_intercept, method=method), LinearRegression(fit_intercept=fit_intercept).fit(X, y)
    )


@pytest.mark.parametrize("fit_intercept", [True, False])
@pytest.mark.parametrize("alpha", [1e-3, 1.0, 30.0, 1e4])
def test_ridge_matches_sklearn(data, fit_intercept, alpha):
    X, y = data
    _assert_same(R.ridge(X, y, alpha, fit_intercept), Ridge(alpha=alpha, fit_intercept=fit_intercept).fit(X, y))


@pytest.mark.parametrize("fit_intercept", [True, False])
@pytest.mark.parametrize("alpha", [1e-3, 0.05, 0.3, 1.5])
def test_lasso_matches_sklearn(data, fit_intercept, alpha):
    X, y = data
    ours = R.lasso(X, y, alpha, fit_intercept, **TIGHT)
    assert ours.converged
    _assert_same(ours, Lasso(alpha=alpha, fit_intercept=fit_intercept, **TIGHT).fit(X, y))


@pytest.mark.parametrize("fit_intercept", [True, False])
@pytest.mark.parametrize("alpha, l1_ratio", [(0.01, 0.5), (0.1, 0.2), (0.5, 0.9), (2.0, 0.5)])
def test_elastic_net_matches_sklearn(data, fit_intercept, alpha, l1_ratio):
    X, y = data
    ours = R.elastic_net(X, y, alpha, l1_ratio, fit_intercept, **TIGHT)
    assert ours.converged
    _assert_same(ours, ElasticNet(alpha=alpha, l1_ratio=l1_ratio, fit_intercept=fit_intercept, **TIGHT).fit(X, y))


def test_lasso_zeroes_weights_that_sklearn_zeroes(data):
    X, y = data
    ours = R.lasso(X, y, 0.3, **TIGHT)
    ref = Lasso(alpha=0.3, **TIGHT).fit(X, y)
    np.testing.assert_array_equal(ours.coef == 0.0, ref.coef_ == 0.0)
    assert np.any(ours.coef == 0.0)  # the data has uninformative features: some are exactly 0


def test_rank_deficient_lstsq_gives_sklearns_minimum_norm_solution():
    rng = np.random.default_rng(0)
    X = rng.normal(size=(8, 12))  # more features than samples
    y = rng.normal(size=8)
    _assert_same(R.least_squares(X, y), LinearRegression().fit(X, y))
    with pytest.raises(DataError, match="singular"):
        R.least_squares(X, y, method="normal")
    R.ridge(X, y, alpha=1.0)  # the penalty makes it solvable


def test_hand_computed_small_cases():
    x = np.array([[0.0], [1.0], [2.0], [3.0]])
    fit = R.least_squares(x, 2.0 * x[:, 0] + 1.0)  # an exact line
    np.testing.assert_allclose([fit.coef[0], fit.intercept], [2.0, 1.0], atol=1e-12)
    np.testing.assert_allclose(fit.predict([[10.0]]), [21.0], atol=1e-12)
    # one feature, no intercept: ridge w = x.y / (x.x + alpha); x.x = 14, x.y = 0+1+4+9 = 14
    y = x[:, 0].copy()
    assert R.ridge(x, y, alpha=2.0, fit_intercept=False).coef[0] == pytest.approx(14 / 16)
    # lasso w = soft_threshold(x.y / n, alpha) / (x.x / n) = (3.5 - 1.5) / 3.5
    assert R.lasso(x, y, alpha=1.5, fit_intercept=False, tol=1e-12).coef[0] == pytest.approx(2.0 / 3.5)
    assert R.lasso(x, y, alpha=3.5, fit_intercept=False).coef[0] == 0.0  # alpha >= x.y / n
    np.testing.assert_array_equal(R.soft_threshold([-3.0, -0.5, 0.0, 0.5, 3.0], 1.0), [-2.0, 0.0, 0.0, 0.0, 2.0])


def test_alpha_max_is_where_every_weight_becomes_zero(data):
    X, y = data
    alpha_max = R.lasso_alpha_max(X, y)
    assert np.all(R.lasso(X, y, alpha_max).coef == 0.0)
    assert np.any(R.lasso(X, y, 0.95 * alpha_max).coef != 0.0)
    alpha_max_en = R.lasso_alpha_max(X, y, l1_ratio=0.5)
    assert np.all(R.elastic_net(X, y, alpha_max_en, 0.5).coef == 0.0)
    assert np.any(R.elastic_net(X, y, 0.95 * alpha_max_en, 0.5).coef != 0.0)


@pytest.mark.parametrize("penalty", ["ridge", "lasso", "elastic_net"])
def test_regularization_path_matches_single_fits(data, penalty):
    X, y = data
    alphas = np.array([0.01, 1.0, 0.1, 3.0])  # any order
    path = R.regularization_path(X, y, alphas, penalty=penalty, l1_ratio=0.5, **TIGHT)
    assert path.shape == (4, X.shape[1])
    for a, row in zip(alphas, path):
        if penalty == "ridge":
            single = R.ridge(X, y, a).coef
        else:
            single = R.elastic_net(X, y, a, 1.0 if penalty == "lasso" else 0.5, **TIGHT).coef
        np.testing.assert_allclose(row, single, atol=1e-8)
    norms = np.abs(path[np.argsort(alphas)]).sum(axis=1)
    assert np.all(np.diff(norms) <= 1e-9)  # a stronger penalty never grows the weights here


def test_duality_gap_certifies_the_optimum(data):
    X, y = data
    fit = R.elastic_net(X, y, 0.2, 0.7, tol=1e-10)
    assert fit.converged and 0 <= fit.duality_gap <= 1e-10 * np.sum((y - y.mean()) ** 2)
    loose = R.elastic_net(X, y, 0.2, 0.7, tol=1e-2)
    assert loose.n_iter < fit.n_iter and loose.duality_gap > fit.duality_gap
    exact = R.elastic_net(X, y, 0.2, 0.7, **TIGHT)
    warm = R.elastic_net(X, y, 0.2, 0.7, initial_coef=exact.coef, **TIGHT)
    assert warm.n_iter == 1  # started at the optimum: one sweep confirms it
    np.testing.assert_allclose(warm.coef, exact.coef, atol=1e-12)


def test_not_converged_warns_or_raises(data):
    X, y = data
    with pytest.warns(R.ConvergenceWarning, match="max_iter=1"):
        fit = R.lasso(X, y, 0.01, max_iter=1, tol=1e-14)
    assert not fit.converged and fit.n_iter == 1
    with pytest.raises(ConfigError, match="raise max_iter"):
        R.lasso(X, y, 0.01, max_iter=1, tol=1e-14, on_not_converged="raise")
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        assert R.lasso(X, y, 0.01).converged  # the defaults converge on ordinary data


def test_constant_feature_gets_zero_weight():
    rng = np.random.default_rng(1)
    X = np.column_stack([rng.normal(size=30), np.full(30, 5.0)])
    y = 3.0 * X[:, 0] + rng.normal(size=30) * 0.1
    fit = R.lasso(X, y, 0.01, tol=1e-12)
    assert fit.coef[1] == 0.0
    _assert_same(fit, Lasso(alpha=0.01, tol=1e-12).fit(X, y))


@pytest.mark.parametrize(
    "call, error, words",
    [
        (lambda X, y: R.ridge(X, y, alpha=-1.0), ConfigError, "alpha"),
        (lambda X, y: R.lasso(X, y, alpha=float("nan")), ConfigError, "alpha"),
        (lambda X, y: R.elastic_net(X, y, 0.1, l1_ratio=1.5), ConfigError, "l1_ratio"),
        (lambda X, y: R.elastic_net(X, y, 0.1, max_iter=0), ConfigError, "max_iter"),
        (lambda X, y: R.elastic_net(X, y, 0.1, tol=-1.0), ConfigError, "tol"),
        (lambda X, y: R.elastic_net(X, y, 0.1, on_not_converged="ignore"), ConfigError, "on_not_converged"),
        (lambda X, y: R.least_squares(X, y, method="qr"), ConfigError, "method"),
        (lambda X, y: R.regularization_path(X, y, [0.1], penalty="l3"), ConfigError, "penalty"),
        (lambda X, y: R.regularization_path(X, y, []), ConfigError, "empty"),
        (lambda X, y: R.ridge(X[:, 0], y), DataError, "reshape"),
        (lambda X, y: R.ridge(X, y[:-1]), DataError, "samples"),
        (lambda X, y: R.ridge(X, np.column_stack([y, y])), DataError, "1-D"),
        (lambda X, y: R.ridge(np.where(X > 1, np.nan, X), y), DataError, "NaN"),
        (lambda X, y: R.lasso(X, np.where(y > 1, np.inf, y)), DataError, "NaN"),
        (lambda X, y: R.lasso(X, y, initial_coef=[1.0]), DataError, "initial_coef"),
        (lambda X, y: R.least_squares(X, y).predict(X[:, :2]), DataError, "features"),
    ],
)
def test_bad_inputs_raise_clear_errors(data, call, error, words):
    X, y = data
    with pytest.raises(error, match=words):
        call(X, y)

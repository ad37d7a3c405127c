"""Loss surfaces: gradients vs finite differences, minima, hand values, mini-batch gradients."""

from __future__ import annotations

import numpy as np
import pytest

from attnlab.errors import ConfigError, DataError
from attnlab.foundations import surfaces as S


def _data_surface():
    rng = np.random.default_rng(0)
    X = rng.normal(size=(40, 2))
    return S.least_squares_surface(X, X @ np.array([2.0, -1.0]) + rng.normal(size=40))


SURFACES = {
    "quadratic": lambda: S.quadratic(condition_number=25.0, angle_degrees=35.0, scale=0.5),
    "rosenbrock": lambda: S.rosenbrock(a=1.0, b=100.0),
    "least_squares": _data_surface,
}


@pytest.mark.parametrize("name", list(SURFACES))
def test_gradient_matches_finite_differences(name):
    surface = SURFACES[name]()
    points = np.random.default_rng(1).uniform(-1.5, 1.5, size=(20, 2))
    h = 1e-6
    for w in points:
        numeric = [(surface.loss(w + h * e) - surface.loss(w - h * e)) / (2 * h) for e in np.eye(2)]
        np.testing.assert_allclose(surface.grad(w), numeric, rtol=1e-6, atol=1e-6)


@pytest.mark.parametrize("name", list(SURFACES))
def test_minimum_is_stationary_and_lowest(name):
    surface = SURFACES[name]()
    np.testing.assert_allclose(surface.grad(surface.minimum), [0.0, 0.0], atol=1e-10)
    w1, w2, z = surface.grid(num=60)
    assert w1.shape == w2.shape == z.shape == (60, 60)
    assert np.all(z >= surface.loss(surface.minimum) - 1e-12)


def test_batched_evaluation_matches_pointwise():
    surface = S.rosenbrock()
    points = np.random.default_rng(2).normal(size=(3, 4, 2))
    losses, grads = surface.loss(points), surface.grad(points)
    assert losses.shape == (3, 4) and grads.shape == (3, 4, 2)
    np.testing.assert_allclose(losses[1, 2], surface.loss(points[1, 2]))
    np.testing.assert_allclose(grads[2, 3], surface.grad(points[2, 3]))


def test_hand_computed_values():
    rosen = S.rosenbrock()
    assert rosen.loss([1.0, 1.0]) == 0.0
    assert rosen.loss([0.0, 0.0]) == 1.0  # (1 - 0)^2 + 100 * 0
    np.testing.assert_array_equal(rosen.grad([0.0, 0.0]), [-2.0, 0.0])
    np.testing.assert_array_equal(rosen.grad([0.0, 1.0]), [-2.0, 200.0])
    bowl = S.quadratic(condition_number=10.0)  # A = diag(1, 10)
    assert bowl.loss([2.0, 0.0]) == 2.0 and bowl.loss([0.0, 1.0]) == 5.0
    np.testing.assert_allclose(bowl.grad([1.0, 1.0]), [1.0, 10.0])
    turned = S.quadratic(condition_number=10.0, angle_degrees=90.0)  # the steep axis now horizontal
    np.testing.assert_allclose(turned.grad([1.0, 1.0]), [10.0, 1.0], atol=1e-12)


def test_minibatch_gradients_average_to_the_full_gradient():
    surface = _data_surface()
    w = np.array([0.3, -0.7])
    np.testing.assert_allclose(surface.minibatch_grad(w, np.arange(40)), surface.grad(w), rtol=1e-12)
    batches = np.random.default_rng(3).permutation(40).reshape(10, 4)  # a partition into equal batches
    mean_of_batches = np.mean([surface.minibatch_grad(w, b) for b in batches], axis=0)
    np.testing.assert_allclose(mean_of_batches, surface.grad(w), rtol=1e-12)
    assert not np.allclose(surface.minibatch_grad(w, batches[0]), surface.grad(w))  # one batch is noisy


@pytest.mark.parametrize(
    "call, error",
    [
        (lambda: S.quadratic(condition_number=0.5), ConfigError),
        (lambda: S.quadratic(scale=0.0), ConfigError),
        (lambda: S.rosenbrock(b=0.0), ConfigError),
        (lambda: S.get_surface("himmelblau"), ConfigError),
        (lambda: S.rosenbrock().loss([1.0, 2.0, 3.0]), DataError),
        (lambda: S.least_squares_surface(np.ones((5, 3)), np.ones(5)), DataError),
        (lambda: S.least_squares_surface(np.ones((5, 2)), np.ones(4)), DataError),
        (lambda: S.least_squares_surface(np.full((5, 2), np.nan), np.ones(5)), DataError),
    ],
)
def test_bad_inputs(call, error):
    with pytest.raises(error):
        call()

"""Activation functions and derivatives vs PyTorch (values and autograd) and finite differences."""

from __future__ import annotations

import math
import warnings

import numpy as np
import pytest
import torch
import torch.nn.functional as F

from attnlab.errors import ConfigError
from attnlab.foundations import activations as A

TORCH_REFERENCE = {
    "relu": torch.relu,
    "gelu": F.gelu,
    "gelu_tanh": lambda x: F.gelu(x, approximate="tanh"),
    "tanh": torch.tanh,
    "sigmoid": torch.sigmoid,
    "silu": F.silu,
}
X = np.concatenate([np.linspace(-8.0, 8.0, 1601), [0.0, 1e-9, -1e-9, 30.0, -30.0]])  # includes exact 0


def test_every_activation_has_a_reference():
    assert set(TORCH_REFERENCE) == set(A.ACTIVATIONS)


@pytest.mark.parametrize("name", list(A.ACTIVATIONS))
def test_values_match_torch(name):
    function, _ = A.get_activation(name)
    ref = TORCH_REFERENCE[name](torch.tensor(X, dtype=torch.float64)).numpy()
    np.testing.assert_allclose(function(X), ref, rtol=1e-12, atol=1e-14)


@pytest.mark.parametrize("name", list(A.ACTIVATIONS))
def test_derivatives_match_autograd(name):
    _, derivative = A.get_activation(name)
    x = torch.tensor(X, dtype=torch.float64, requires_grad=True)
    TORCH_REFERENCE[name](x).sum().backward()  # d(sum f(x_i)) / dx_i = f'(x_i)
    np.testing.assert_allclose(derivative(X), x.grad.numpy(), rtol=1e-12, atol=1e-14)


@pytest.mark.parametrize("name", list(A.ACTIVATIONS))
def test_derivatives_match_finite_differences(name):
    function, derivative = A.get_activation(name)
    x = np.linspace(-5.0, 5.0, 401)
    x = x[np.abs(x) > 1e-3]  # ReLU has no derivative at its kink
    h = 1e-6
    central = (function(x + h) - function(x - h)) / (2 * h)  # error O(h^2) plus rounding O(1e-16 / h)
    np.testing.assert_allclose(derivative(x), central, rtol=1e-6, atol=1e-8)


def test_hand_computed_values():
    assert A.relu(-1.0) == 0.0 and A.relu(2.5) == 2.5
    assert A.relu_derivative(0.0) == 0.0  # PyTorch's choice at the kink
    assert A.sigmoid(0.0) == 0.5 and A.sigmoid_derivative(0.0) == 0.25
    assert A.sigmoid(math.log(3.0)) == pytest.approx(0.75)  # 1 / (1 + 1/3)
    assert A.tanh(0.0) == 0.0 and A.tanh_derivative(0.0) == 1.0
    assert A.gelu(0.0) == 0.0 and A.gelu_derivative(0.0) == 0.5  # Phi(0) + 0
    assert A.gelu(1.0) == pytest.approx(0.5 * (1 + math.erf(1 / math.sqrt(2))))
    assert A.gelu_tanh_derivative(0.0) == 0.5
    assert A.silu(0.0) == 0.0 and A.silu_derivative(0.0) == 0.5  # sigmoid(0) * (1 + 0)
    assert A.silu(1.0) == pytest.approx(1 / (1 + math.exp(-1)))


def test_gelu_tanh_approximates_gelu():
    x = np.linspace(-6, 6, 1201)
    assert np.max(np.abs(A.gelu(x) - A.gelu_tanh(x))) < 1e-3


def test_sigmoid_is_stable_at_extremes():
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # no overflow RuntimeWarning
        values = A.sigmoid(np.array([-1000.0, 1000.0]))
        slopes = A.sigmoid_derivative(np.array([-1000.0, 1000.0]))
    np.testing.assert_array_equal(values, [0.0, 1.0])
    np.testing.assert_array_equal(slopes, [0.0, 0.0])


@pytest.mark.parametrize("name", list(A.ACTIVATIONS))
def test_shapes_and_dtypes(name):
    function, derivative = A.get_activation(name)
    x32 = np.random.default_rng(0).normal(size=(2, 3, 4)).astype(np.float32)
    for f in (function, derivative):
        out = f(x32)
        assert out.shape == (2, 3, 4) and out.dtype == np.float32
        assert f(np.array([1, -2, 3])).dtype == np.float64  # integers become float64


def test_unknown_activation_is_a_config_error():
    with pytest.raises(ConfigError, match="choose one of"):
        A.get_activation("swishy")

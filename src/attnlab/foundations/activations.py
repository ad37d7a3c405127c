"""Activation functions and their derivatives, written out in NumPy.

The non-linearities a transformer uses (GELU in GPT-2 and BERT, SiLU in the SwiGLU
of LLaMA) next to the classic ones (ReLU, tanh, sigmoid). Each function has its
derivative beside it, as a hand-written backward pass needs; the tests check every
derivative against PyTorch autograd and against finite differences.

References: GELU, Hendrycks & Gimpel, "Gaussian Error Linear Units" (2016), exact
form x * Phi(x) and the tanh approximation GPT-2 uses; SiLU/Swish, Elfwing et al.
(2017) and Ramachandran et al. (2017).

All functions act elementwise: any input shape, the same output shape. Float inputs
keep their dtype; integer inputs become float64. At x = 0 ReLU's derivative is taken
as 0, like PyTorch.
"""

from __future__ import annotations

import math
from collections.abc import Callable

import numpy as np

from attnlab.errors import ConfigError

_ERF = None  # filled on first use


def _erf(x: np.ndarray) -> np.ndarray:
    """The error function, elementwise: SciPy's vectorised C when installed, else math.erf.

    Imported on first use: SciPy is a "labs" extra, not a core dependency, and takes a
    noticeable fraction of a second to import.
    """
    global _ERF
    if _ERF is None:
        try:
            from scipy.special import erf as scipy_erf

            _ERF = scipy_erf
        except ImportError:  # pragma: no cover - the same function, slower
            _ERF = np.vectorize(math.erf, otypes=[np.float64])
    return _ERF(x)


SQRT_2_OVER_PI = math.sqrt(2.0 / math.pi)
GELU_TANH_COEFF = 0.044715  # the cubic term of the tanh approximation (Hendrycks & Gimpel)


def _float(x) -> np.ndarray:
    x = np.asarray(x)
    return x if x.dtype.kind == "f" else x.astype(np.float64)


def relu(x) -> np.ndarray:
    """Rectified linear unit: max(x, 0).

    Args:
        x: any shape.
    Returns:
        Same shape as `x`.
    """
    x = _float(x)
    return np.maximum(x, 0).astype(x.dtype, copy=False)


def relu_derivative(x) -> np.ndarray:
    """d relu / dx: 1 where x > 0, else 0 (0 at x = 0, as in PyTorch).

    Args:
        x: any shape.
    Returns:
        Same shape as `x`.
    """
    x = _float(x)
    return (x > 0).astype(x.dtype)


def sigmoid(x) -> np.ndarray:
    """Logistic sigmoid 1 / (1 + exp(-x)), computed without overflow.

    exp(-x) overflows for very negative x, so both signs are written with
    exp(-|x|) <= 1: sigmoid(x) = 1 / (1 + z) for x >= 0 and z / (1 + z) for x < 0.

    Args:
        x: any shape.
    Returns:
        Same shape as `x`, values in (0, 1).
    """
    x = _float(x)
    z = np.exp(-np.abs(x))
    return np.where(x >= 0, 1.0 / (1.0 + z), z / (1.0 + z)).astype(x.dtype, copy=False)


def sigmoid_derivative(x) -> np.ndarray:
    """d sigmoid / dx = sigmoid(x) * (1 - sigmoid(x)), at most 1/4 (at x = 0).

    Args:
        x: any shape.
    Returns:
        Same shape as `x`.
    """
    s = sigmoid(x)
    return s * (1.0 - s)


def tanh(x) -> np.ndarray:
    """Hyperbolic tangent (e^x - e^-x) / (e^x + e^-x) = 2 sigmoid(2x) - 1.

    Args:
        x: any shape.
    Returns:
        Same shape as `x`, values in (-1, 1).
    """
    return np.tanh(_float(x))


def tanh_derivative(x) -> np.ndarray:
    """d tanh / dx = 1 - tanh(x)^2.

    Args:
        x: any shape.
    Returns:
        Same shape as `x`.
    """
    t = np.tanh(_float(x))
    return 1.0 - t * t


def gelu(x) -> np.ndarray:
    """Exact GELU: x * Phi(x), Phi the standard normal CDF = (1 + erf(x / sqrt 2)) / 2.

    Each input is weighted by the probability that a standard normal is below it:
    close to ReLU for large |x| but smooth, and slightly negative for x < 0.

    Args:
        x: any shape.
    Returns:
        Same shape as `x`.
    """
    x = _float(x)
    return (x * 0.5 * (1.0 + _erf(x / math.sqrt(2.0)))).astype(x.dtype, copy=False)


def gelu_derivative(x) -> np.ndarray:
    """d gelu / dx = Phi(x) + x * phi(x), phi the standard normal density.

    Args:
        x: any shape.
    Returns:
        Same shape as `x`.
    """
    x = _float(x)
    cdf = 0.5 * (1.0 + _erf(x / math.sqrt(2.0)))
    pdf = np.exp(-0.5 * x * x) / math.sqrt(2.0 * math.pi)
    return (cdf + x * pdf).astype(x.dtype, copy=False)


def gelu_tanh(x) -> np.ndarray:
    """GELU, tanh approximation (GPT-2's "gelu_new", PyTorch approximate="tanh").

    0.5 x (1 + tanh(u)), u = sqrt(2/pi) (x + 0.044715 x^3). Within ~1e-3 of the exact GELU.

    Args:
        x: any shape.
    Returns:
        Same shape as `x`.
    """
    x = _float(x)
    u = SQRT_2_OVER_PI * (x + GELU_TANH_COEFF * x**3)
    return 0.5 * x * (1.0 + np.tanh(u))


def gelu_tanh_derivative(x) -> np.ndarray:
    """Derivative of the tanh-approximated GELU (product and chain rule).

    0.5 (1 + tanh u) + 0.5 x (1 - tanh^2 u) du/dx, du/dx = sqrt(2/pi) (1 + 3 * 0.044715 x^2).

    Args:
        x: any shape.
    Returns:
        Same shape as `x`.
    """
    x = _float(x)
    t = np.tanh(SQRT_2_OVER_PI * (x + GELU_TANH_COEFF * x**3))
    du_dx = SQRT_2_OVER_PI * (1.0 + 3.0 * GELU_TANH_COEFF * x * x)
    return 0.5 * (1.0 + t) + 0.5 * x * (1.0 - t * t) * du_dx


def silu(x) -> np.ndarray:
    """SiLU / Swish: x * sigmoid(x) (the gate inside SwiGLU).

    Args:
        x: any shape.
    Returns:
        Same shape as `x`.
    """
    x = _float(x)
    return x * sigmoid(x)


def silu_derivative(x) -> np.ndarray:
    """d silu / dx = sigmoid(x) * (1 + x * (1 - sigmoid(x))).

    Args:
        x: any shape.
    Returns:
        Same shape as `x`.
    """
    x = _float(x)
    s = sigmoid(x)
    return s * (1.0 + x * (1.0 - s))


# name -> (function, derivative); the order is the order of the lab's figure.
ACTIVATIONS: dict[str, tuple[Callable[[np.ndarray], np.ndarray], Callable[[np.ndarray], np.ndarray]]] = {
    "relu": (relu, relu_derivative),
    "gelu": (gelu, gelu_derivative),
    "gelu_tanh": (gelu_tanh, gelu_tanh_derivative),
    "tanh": (tanh, tanh_derivative),
    "sigmoid": (sigmoid, sigmoid_derivative),
    "silu": (silu, silu_derivative),
}


def get_activation(name: str) -> tuple[Callable[[np.ndarray], np.ndarray], Callable[[np.ndarray], np.ndarray]]:
    """Look up an activation and its derivative by name.

    Args:
        name: one of `ACTIVATIONS` ("relu", "gelu", "gelu_tanh", "tanh", "sigmoid", "silu").
    Returns:
        (function, derivative), each mapping an array to an array of the same shape.
    Raises:
        ConfigError: unknown name.
    """
    try:
        return ACTIVATIONS[name]
    except KeyError:
        raise ConfigError(f"unknown activation {name!r}; choose one of {', '.join(ACTIVATIONS)}") from None

"""Helpers for the scratch tests: central finite differences and weight copying."""

from __future__ import annotations

from collections.abc import Callable, Mapping

import numpy as np


def finite_difference_check(
    loss: Callable[[], float],
    arrays: Mapping[str, np.ndarray],
    analytic: Mapping[str, np.ndarray],
    *,
    coords: int = 4,
    eps: float = 1e-6,
    rtol: float = 1e-5,
    atol: float = 1e-8,
    seed: int = 0,
) -> int:
    """Compare analytic gradients with central differences (L(a + eps) - L(a - eps)) / 2 eps.

    `loss()` must recompute the scalar loss from the arrays, which are perturbed in place
    (and restored). A few random coordinates of each array are checked.

    Returns:
        The number of coordinates checked.
    """
    rng = np.random.default_rng(seed)
    checked = 0
    for name, arr in arrays.items():
        assert arr.dtype == np.float64, f"{name}: finite differences need float64"
        grad = analytic[name]
        assert grad.shape == arr.shape, f"{name}: gradient shape {grad.shape} != {arr.shape}"
        flat_arr, flat_grad = arr.reshape(-1), grad.reshape(-1)
        assert np.shares_memory(flat_arr, arr), f"{name}: must be contiguous to perturb in place"
        for i in rng.choice(flat_arr.size, size=min(coords, flat_arr.size), replace=False):
            old = flat_arr[i]
            flat_arr[i] = old + eps
            up = loss()
            flat_arr[i] = old - eps
            down = loss()
            flat_arr[i] = old
            numeric = (up - down) / (2 * eps)
            np.testing.assert_allclose(flat_grad[i], numeric, rtol=rtol, atol=atol, err_msg=f"{name}[{i}]")
            checked += 1
    return checked


def copy_torch_to_numpy(torch_module, numpy_module) -> None:
    """Copy every parameter of a torch module into the same-named NumPy parameter (in place)."""
    torch_params = dict(torch_module.named_parameters())
    own = dict(numpy_module.named_parameters())
    assert set(own) == set(torch_params), (sorted(own), sorted(torch_params))
    for name, arr in own.items():
        np.copyto(arr, torch_params[name].detach().cpu().numpy())

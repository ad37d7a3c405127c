"""NumPy layers: backward passes vs finite differences and vs torch autograd (float64)."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch
import torch.nn.functional as F

from attnlab.nn.layers import FeedForward as TorchFeedForward
from attnlab.nn.positional import fourier_table as torch_fourier_table
from attnlab.nn.positional import sinusoidal_table as torch_sinusoidal_table
from attnlab.scratch.layers import (
    GELU,
    CrossEntropyLoss,
    Dropout,
    Embedding,
    FeedForward,
    LayerNorm,
    Linear,
    ReLU,
    Tanh,
    _scatter_add_rows,
    erf,
    softmax,
    softmax_backward,
)
from attnlab.scratch.positional import (
    FixedPositionalEncoding,
    LearnedPositionalEmbedding,
    fourier_table,
    sinusoidal_table,
)

from .gradcheck import copy_torch_to_numpy, finite_difference_check

F64 = np.float64


def _layer_fd(layer, x: np.ndarray, **kw) -> None:
    """Finite-difference check of a layer's input and parameter gradients through sum(y * R)."""
    rng = np.random.default_rng(1)
    R = rng.normal(size=layer.forward(x).shape)

    def loss() -> float:
        return float(np.sum(layer.forward(x) * R))

    layer.zero_grad()
    layer.forward(x)
    dx = layer.backward(R)
    params, grads = dict(layer.named_parameters()), dict(layer.named_grads())
    assert set(grads) == set(params)
    finite_difference_check(loss, {"x": x, **params}, {"x": dx, **grads}, **kw)


# ---------------------------------------------------------------------------
# Finite differences, layer by layer
# ---------------------------------------------------------------------------


@pytest.mark.parametrize("bias", [True, False])
def test_linear_finite_differences(bias):
    _layer_fd(Linear(5, 3, bias, dtype=F64), np.random.default_rng(0).normal(size=(2, 4, 5)))


@pytest.mark.parametrize("bias", [True, False])
def test_layer_norm_finite_differences(bias):
    ln = LayerNorm(6, bias=bias, dtype=F64)
    rng = np.random.default_rng(0)
    ln.params["weight"][:] = rng.normal(size=6)  # not all ones: exercises dgamma fully
    if bias:
        ln.params["bias"][:] = rng.normal(size=6)
    _layer_fd(ln, rng.normal(size=(3, 2, 6)))


@pytest.mark.parametrize(
    "layer", [ReLU(), Tanh(), GELU("none"), GELU("tanh")], ids=["relu", "tanh", "gelu", "gelu_tanh"]
)
def test_activation_finite_differences(layer):
    x = np.random.default_rng(0).normal(size=(4, 7)) * 2
    x[np.abs(x) < 1e-3] = 0.5  # keep ReLU away from its kink
    _layer_fd(layer, x, coords=10)


def test_feed_forward_finite_differences():
    ff = FeedForward(4, 8, "gelu", bias=True, dtype=F64, rng=np.random.default_rng(0))
    _layer_fd(ff, np.random.default_rng(1).normal(size=(2, 3, 4)))


def test_dropout_finite_differences_with_a_fixed_mask():
    drop = Dropout(0.4, np.random.default_rng(7))
    x = np.random.default_rng(0).normal(size=(5, 6))
    R = np.random.default_rng(1).normal(size=x.shape)

    def loss() -> float:
        drop.rng = np.random.default_rng(7)  # the same mask on every call
        return float(np.sum(drop.forward(x) * R))

    loss()
    dx = drop.backward(R)
    finite_difference_check(loss, {"x": x}, {"x": dx}, coords=10)


def test_embedding_finite_differences_with_repeated_ids():
    emb = Embedding(5, 3, dtype=F64)
    ids = np.array([[0, 2, 2], [4, 2, 0]])  # repeats: their gradients must add up
    R = np.random.default_rng(1).normal(size=(2, 3, 3))

    def loss() -> float:
        return float(np.sum(emb.forward(ids) * R))

    emb.forward(ids)
    emb.backward(R)
    finite_difference_check(loss, emb.params, emb.grads, coords=15)
    np.testing.assert_array_equal(emb.grads["weight"][[1, 3]], 0.0)  # never looked up


def test_learned_positions_finite_differences():
    pos = LearnedPositionalEmbedding(6, 3, dtype=F64)
    R = np.random.default_rng(1).normal(size=(2, 4, 3))  # the (T, C) table is added to 2 batch rows

    def loss() -> float:
        return float(np.sum(pos.forward(np.arange(4))[None] * R))

    loss()
    pos.backward(R)
    finite_difference_check(loss, pos.params, pos.grads, coords=18)


def test_cross_entropy_finite_differences():
    ce = CrossEntropyLoss()
    logits = np.random.default_rng(0).normal(size=(2, 3, 5))
    targets = np.array([[1, -100, 4], [0, 2, -100]])

    def loss() -> float:
        return ce.forward(logits, targets)

    loss()
    dz = ce.backward()
    finite_difference_check(loss, {"logits": logits}, {"logits": dz}, coords=30)


def test_softmax_backward_finite_differences():
    x = np.random.default_rng(0).normal(size=(3, 4))
    R = np.random.default_rng(1).normal(size=(3, 4))
    dx = softmax_backward(softmax(x), R)
    finite_difference_check(lambda: float(np.sum(softmax(x) * R)), {"x": x}, {"x": dx}, coords=12)


# ---------------------------------------------------------------------------
# Values worked out by hand
# ---------------------------------------------------------------------------


def test_softmax_of_two_numbers_by_hand():
    # softmax([0, log 3]) = [1/4, 3/4]
    np.testing.assert_allclose(softmax(np.array([0.0, math.log(3.0)])), [0.25, 0.75])
    # an all -inf row (every key blocked) gives zeros, not NaN
    np.testing.assert_array_equal(softmax(np.array([[-np.inf, -np.inf]])), [[0.0, 0.0]])


def test_cross_entropy_by_hand():
    # uniform logits over 4 classes: loss log 4; gradient (1/4 - onehot) / rows
    ce = CrossEntropyLoss()
    assert ce.forward(np.zeros((1, 4)), np.array([2])) == pytest.approx(math.log(4))
    np.testing.assert_allclose(ce.backward(), [[0.25, 0.25, -0.75, 0.25]])


# ---------------------------------------------------------------------------
# Parity with PyTorch (forward and autograd backward, shared weights)
# ---------------------------------------------------------------------------


def _torch_backward(fn, x: np.ndarray, R: np.ndarray):
    xt = torch.tensor(x, requires_grad=True)
    y = fn(xt)
    (y * torch.tensor(R)).sum().backward()
    return y.detach().numpy(), xt.grad.numpy()


@pytest.mark.parametrize("bias", [True, False])
def test_linear_matches_torch(bias):
    ref = torch.nn.Linear(5, 3, bias=bias).double()
    ours = Linear(5, 3, bias, dtype=F64)
    copy_torch_to_numpy(ref, ours)
    x = np.random.default_rng(0).normal(size=(2, 4, 5))
    R = np.random.default_rng(1).normal(size=(2, 4, 3))
    y_ref, dx_ref = _torch_backward(ref, x, R)
    np.testing.assert_allclose(ours.forward(x), y_ref, atol=1e-13)
    np.testing.assert_allclose(ours.backward(R), dx_ref, atol=1e-13)
    grads = dict(ours.named_grads())
    for name, p in ref.named_parameters():
        np.testing.assert_allclose(grads[name], p.grad.numpy(), atol=1e-13)


@pytest.mark.parametrize("bias", [True, False])
def test_layer_norm_matches_torch(bias):
    ref = torch.nn.LayerNorm(6, eps=1e-5, bias=bias).double()
    with torch.no_grad():
        ref.weight.normal_()
    ours = LayerNorm(6, 1e-5, bias, dtype=F64)
    copy_torch_to_numpy(ref, ours)
    x = np.random.default_rng(0).normal(size=(3, 5, 6)) * 3 + 1
    R = np.random.default_rng(1).normal(size=x.shape)
    y_ref, dx_ref = _torch_backward(ref, x, R)
    np.testing.assert_allclose(ours.forward(x), y_ref, atol=1e-12)
    np.testing.assert_allclose(ours.backward(R), dx_ref, atol=1e-12)
    for name, p in ref.named_parameters():
        np.testing.assert_allclose(ours.grads[name], p.grad.numpy(), atol=1e-12)


@pytest.mark.parametrize(
    "ours, ref",
    [
        (ReLU(), F.relu),
        (Tanh(), torch.tanh),
        (GELU("none"), F.gelu),
        (GELU("tanh"), lambda t: F.gelu(t, approximate="tanh")),
    ],
    ids=["relu", "tanh", "gelu", "gelu_tanh"],
)
def test_activations_match_torch(ours, ref):
    x = np.random.default_rng(0).normal(size=(50, 8)) * 3
    R = np.random.default_rng(1).normal(size=x.shape)
    y_ref, dx_ref = _torch_backward(ref, x, R)
    np.testing.assert_allclose(ours.forward(x), y_ref, atol=1e-14)
    np.testing.assert_allclose(ours.backward(R), dx_ref, atol=1e-14)


def test_gelu_float32_stays_float32_and_matches_torch():
    x = np.random.default_rng(0).normal(size=(100,)).astype(np.float32) * 3
    y = GELU("none").forward(x)
    assert y.dtype == np.float32
    np.testing.assert_allclose(y, F.gelu(torch.from_numpy(x)).numpy(), atol=1e-6)


def test_erf_is_exact_in_both_dtypes():
    x = np.linspace(-9, 9, 4001)
    expected = np.array([math.erf(v) for v in x])
    np.testing.assert_allclose(erf(x), expected, rtol=0, atol=5e-14)
    x32 = erf(x.astype(np.float32))
    assert x32.dtype == np.float32
    np.testing.assert_allclose(x32, expected, rtol=0, atol=5e-7)


def test_softmax_backward_matches_torch():
    x = np.random.default_rng(0).normal(size=(3, 4, 5))
    R = np.random.default_rng(1).normal(size=x.shape)
    y_ref, dx_ref = _torch_backward(lambda t: torch.softmax(t, dim=-1), x, R)
    y = softmax(x)
    np.testing.assert_allclose(y, y_ref, atol=1e-15)
    np.testing.assert_allclose(softmax_backward(y, R), dx_ref, atol=1e-15)


def test_embedding_matches_torch_and_scatter_paths_agree():
    ref = torch.nn.Embedding(7, 4).double()
    ours = Embedding(7, 4, dtype=F64)
    copy_torch_to_numpy(ref, ours)
    ids = np.random.default_rng(0).integers(0, 7, size=(3, 9))
    R = np.random.default_rng(1).normal(size=(3, 9, 4))
    y = ref(torch.tensor(ids))
    (y * torch.tensor(R)).sum().backward()
    np.testing.assert_array_equal(ours.forward(ids), y.detach().numpy())
    ours.backward(R)
    np.testing.assert_allclose(ours.grads["weight"], ref.weight.grad.numpy(), atol=1e-13)
    # the one-hot path (small tables) and the sort + reduceat path (large tables) agree with np.add.at
    rows = R.reshape(-1, 4)
    expected = np.zeros((50_000, 4))
    np.add.at(expected, ids.reshape(-1) * 7000, rows)
    np.testing.assert_allclose(_scatter_add_rows(ids.reshape(-1) * 7000, rows, 50_000), expected, atol=1e-13)


def test_embedding_rejects_out_of_range_ids():
    with pytest.raises(IndexError, match=r"\[0, 5\)"):
        Embedding(5, 2).forward(np.array([[1, 5]]))


@pytest.mark.parametrize("activation", ["gelu", "relu", "gelu_tanh"])
def test_feed_forward_matches_torch(activation):
    ref = TorchFeedForward(6, 12, activation).double()
    ours = FeedForward(6, 12, activation, dtype=F64)
    copy_torch_to_numpy(ref, ours)
    x = np.random.default_rng(0).normal(size=(2, 5, 6))
    R = np.random.default_rng(1).normal(size=x.shape)
    y_ref, dx_ref = _torch_backward(ref, x, R)
    np.testing.assert_allclose(ours.forward(x), y_ref, atol=1e-13)
    np.testing.assert_allclose(ours.backward(R), dx_ref, atol=1e-13)
    grads = dict(ours.named_grads())
    for name, p in ref.named_parameters():
        np.testing.assert_allclose(grads[name], p.grad.numpy(), atol=1e-13)


def test_cross_entropy_matches_torch_with_ignore_index():
    logits = np.random.default_rng(0).normal(size=(4, 6, 9))
    targets = np.random.default_rng(1).integers(0, 9, size=(4, 6))
    targets[0, :3] = -100
    targets[2, 5] = -100
    zt = torch.tensor(logits, requires_grad=True)
    ref = F.cross_entropy(zt.reshape(-1, 9), torch.tensor(targets).reshape(-1), ignore_index=-100)
    ref.backward()
    ce = CrossEntropyLoss()
    assert ce.forward(logits, targets) == pytest.approx(ref.item(), abs=1e-14)
    np.testing.assert_allclose(ce.backward(), zt.grad.numpy(), atol=1e-15)


def test_cross_entropy_with_nothing_scored_is_nan_like_torch():
    ce = CrossEntropyLoss()
    assert math.isnan(ce.forward(np.zeros((2, 3)), np.array([-100, -100])))
    np.testing.assert_array_equal(ce.backward(), 0.0)


def test_dropout_statistics_and_eval_mode():
    drop = Dropout(0.25, np.random.default_rng(0))
    x = np.ones((200, 200), dtype=np.float32)
    y = drop.forward(x)
    assert y.dtype == np.float32
    kept = y != 0
    assert abs(kept.mean() - 0.75) < 0.01
    np.testing.assert_allclose(y[kept], 1 / 0.75, rtol=1e-6)  # inverted dropout keeps the mean
    drop.eval()
    assert drop.forward(x) is x


def test_linear_keeps_float32():
    layer = Linear(4, 3)
    x = np.ones((2, 4), dtype=np.float32)
    assert layer.forward(x).dtype == np.float32
    assert layer.backward(np.ones((2, 3), dtype=np.float32)).dtype == np.float32
    assert layer.grads["weight"].dtype == np.float32


# ---------------------------------------------------------------------------
# Positional tables
# ---------------------------------------------------------------------------


@pytest.mark.parametrize("num_positions, dim", [(8, 4), (64, 128), (256, 384)])
def test_fixed_tables_equal_torch(num_positions, dim):
    # Both are float32 tables from the same float32 angles; only the last-bit rounding of
    # exp/sin/cos may differ, which grows with the angle (position).
    tol = 1e-7 * num_positions
    np.testing.assert_allclose(
        sinusoidal_table(num_positions, dim), torch_sinusoidal_table(num_positions, dim).numpy(), rtol=0, atol=tol
    )
    np.testing.assert_allclose(
        fourier_table(num_positions, dim), torch_fourier_table(num_positions, dim).numpy(), rtol=0, atol=tol
    )


def test_sinusoidal_table_by_hand():
    table = sinusoidal_table(3, 4)
    # position 1: sin(1), cos(1), sin(1/100), cos(1/100)  (10000^(2/4) = 100)
    np.testing.assert_allclose(table[1], [math.sin(1), math.cos(1), math.sin(0.01), math.cos(0.01)], rtol=1e-6)
    np.testing.assert_allclose(table[0], [0, 1, 0, 1])
    enc = FixedPositionalEncoding(3, 4, "sinusoidal", dtype=F64)
    assert enc.forward(np.arange(2)).dtype == F64 and enc.params == {}

"""NumPy RMSNorm, SiLU, SwiGLU and grouped-query attention: finite differences and PyTorch autograd (float64)."""

from __future__ import annotations

import numpy as np
import pytest
import torch
import torch.nn.functional as F

from attnlab.nn.attention import MultiHeadAttention as TorchMHA
from attnlab.nn.layers import RMSNorm as TorchRMSNorm
from attnlab.nn.layers import SwiGLU as TorchSwiGLU
from attnlab.nn.positional import RotaryEmbedding
from attnlab.scratch.attention import MultiHeadAttention, padding_mask, repeat_kv, repeat_kv_backward
from attnlab.scratch.layers import RMSNorm, SiLU, SwiGLU, make_activation

from .gradcheck import copy_torch_to_numpy, finite_difference_check

F64 = np.float64


def _fd(layer, x: np.ndarray, call=None, **kw) -> None:
    """Finite-difference check of input and parameter gradients through sum(y * R)."""
    call = call or layer.forward
    R = np.random.default_rng(1).normal(size=call(x).shape)

    def loss() -> float:
        return float(np.sum(call(x) * R))

    layer.zero_grad()
    call(x)
    dx = layer.backward(R)
    params, grads = dict(layer.named_parameters()), dict(layer.named_grads())
    assert set(grads) == set(params)
    finite_difference_check(loss, {"x": x, **params}, {"x": dx, **grads}, **kw)


def _against_torch(ours, ref, x: np.ndarray, call=None, ref_call=None, atol=1e-12) -> None:
    """Forward output, input gradient and every parameter gradient equal torch autograd's."""
    call, ref_call = call or ours.forward, ref_call or ref
    R = np.random.default_rng(2).normal(size=call(x).shape)
    xt = torch.tensor(x, requires_grad=True)
    y = ref_call(xt)
    y = y[0] if isinstance(y, tuple) else y
    (y * torch.tensor(R)).sum().backward()
    ours.zero_grad()
    np.testing.assert_allclose(call(x), y.detach().numpy(), atol=atol)
    np.testing.assert_allclose(ours.backward(R), xt.grad.numpy(), atol=atol)
    grads = dict(ours.named_grads())
    for name, p in ref.named_parameters():
        np.testing.assert_allclose(grads[name], p.grad.numpy(), atol=atol, err_msg=name)


def test_rms_norm_finite_differences_and_torch():
    norm = RMSNorm(6, eps=1e-6, dtype=F64)
    norm.params["weight"][:] = np.random.default_rng(0).normal(size=6)
    x = np.random.default_rng(3).normal(size=(2, 4, 6))
    _fd(norm, x)
    ref = TorchRMSNorm(6, eps=1e-6).double()
    ref.weight.data.copy_(torch.tensor(norm.params["weight"]))
    _against_torch(norm, ref, x)


def test_silu_finite_differences_and_torch():
    x = np.random.default_rng(4).normal(size=(3, 7)) * 4
    x[0, 0], x[0, 1] = 60.0, -60.0  # saturated ends: no overflow
    act = make_activation("silu")
    assert isinstance(act, SiLU)
    np.testing.assert_allclose(act.forward(x), F.silu(torch.tensor(x)).numpy(), atol=1e-14)
    _fd(act, x)
    xt = torch.tensor(x, requires_grad=True)
    F.silu(xt).sum().backward()
    act.forward(x)
    np.testing.assert_allclose(act.backward(np.ones_like(x)), xt.grad.numpy(), atol=1e-14)


@pytest.mark.parametrize("bias", [False, True])
def test_swiglu_finite_differences_and_torch(bias):
    torch.manual_seed(0)
    ref = TorchSwiGLU(6, 10, bias=bias).double()
    with torch.no_grad():
        for p in ref.parameters():
            p.normal_(0, 0.5)
    ours = SwiGLU(6, 10, bias=bias, dtype=F64)
    assert sorted(n for n, _ in ours.named_parameters()) == sorted(n for n, _ in ref.named_parameters())
    copy_torch_to_numpy(ref, ours)
    x = np.random.default_rng(5).normal(size=(2, 3, 6))
    _against_torch(ours, ref, x)
    _fd(ours, x, coords=5)


def test_repeat_kv_and_its_backward():
    x = np.random.default_rng(6).normal(size=(2, 2, 3, 4))
    y = repeat_kv(x, 3)
    assert y.shape == (2, 6, 3, 4)
    np.testing.assert_array_equal(y[:, 0], x[:, 0])
    np.testing.assert_array_equal(y[:, 2], x[:, 0])
    np.testing.assert_array_equal(y[:, 3], x[:, 1])
    dy = np.random.default_rng(7).normal(size=y.shape)
    expected = np.stack([dy[:, 0:3].sum(1), dy[:, 3:6].sum(1)], axis=1)  # each kv head collects its 3 copies
    np.testing.assert_allclose(repeat_kv_backward(dy, 3), expected)


@pytest.mark.parametrize("kv_heads", [1, 2])
@pytest.mark.parametrize("rotary", [False, True])
def test_grouped_query_attention_matches_torch_and_finite_differences(kv_heads, rotary):
    torch.manual_seed(1)
    ref = TorchMHA(
        16, 4, bias=True, impl="naive", num_kv_heads=kv_heads, rotary=RotaryEmbedding(4) if rotary else None
    ).double()
    with torch.no_grad():
        ref.qkv.bias.normal_()
    ours = MultiHeadAttention(16, 4, bias=True, dtype=F64, num_kv_heads=kv_heads, rope_base=10000.0 if rotary else None)
    assert ours.qkv.params["weight"].shape == ((4 + 2 * kv_heads) * 4, 16)
    copy_torch_to_numpy(ref, ours)
    x = np.random.default_rng(8).normal(size=(2, 5, 16))
    keep = np.array([[1, 1, 1, 1, 1], [0, 1, 1, 1, 1]])
    mask = padding_mask(keep)
    _against_torch(
        ours,
        ref,
        x,
        call=lambda a: ours.forward(a, mask=mask, is_causal=True),
        ref_call=lambda a: ref(a, mask=torch.tensor(mask), is_causal=True),
    )
    _fd(ours, x, call=lambda a: ours.forward(a, mask=mask, is_causal=True), coords=5)


def test_num_kv_heads_must_divide_num_heads():
    with pytest.raises(ValueError, match="num_kv_heads \\(3\\) must divide num_heads \\(4\\)"):
        MultiHeadAttention(16, 4, num_kv_heads=3)

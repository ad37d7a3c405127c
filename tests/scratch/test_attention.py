"""NumPy attention, multi-head attention and transformer blocks vs finite differences and PyTorch."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from attnlab.nn.attention import MultiHeadAttention as TorchMHA
from attnlab.nn.attention import attention_naive
from attnlab.nn.attention import causal_mask as torch_causal_mask
from attnlab.nn.block import TransformerBlock as TorchBlock
from attnlab.scratch.attention import MultiHeadAttention, ScaledDotProductAttention, causal_mask, padding_mask
from attnlab.scratch.block import TransformerBlock

from .gradcheck import copy_torch_to_numpy, finite_difference_check

F64 = np.float64


def _qkv(B=2, H=3, T=4, S=4, D=5, seed=0):
    rng = np.random.default_rng(seed)
    return rng.normal(size=(B, H, T, D)), rng.normal(size=(B, H, S, D)), rng.normal(size=(B, H, S, D))


def test_causal_mask_by_hand_and_equal_to_torch():
    expected = np.array([[1, 0, 0], [1, 1, 0], [1, 1, 1]], dtype=bool)
    np.testing.assert_array_equal(causal_mask(3), expected)
    np.testing.assert_array_equal(causal_mask(2, 5), torch_causal_mask(2, 5).numpy())


def test_attention_weights_by_hand():
    # one query, two keys with scores 0 and log 3 (D = 1): weights 1/4, 3/4
    q = np.array([[[[1.0]]]])
    k = np.array([[[[0.0], [np.log(3.0)]]]])
    v = np.array([[[[2.0], [6.0]]]])
    out = ScaledDotProductAttention().forward(q, k, v)
    np.testing.assert_allclose(out, [[[[0.25 * 2 + 0.75 * 6]]]])


def _padding_with_a_blocked_row():
    # batch row 1 pads its first two keys; with the causal mask its first two queries see nothing
    keep = np.array([[1, 1, 1, 1], [0, 0, 1, 1]])
    return keep, padding_mask(keep)


@pytest.mark.parametrize("case", ["none", "causal", "padding+causal"])
def test_attention_matches_attention_naive(case):
    q, k, v = _qkv()
    mask = None
    is_causal = case != "none"
    if case == "padding+causal":
        _, mask = _padding_with_a_blocked_row()
    R = np.random.default_rng(3).normal(size=q.shape)
    qt, kt, vt = (torch.tensor(a, requires_grad=True) for a in (q, k, v))
    full_mask = None
    if is_causal:
        full_mask = torch_causal_mask(4)
    if mask is not None:
        full_mask = full_mask & torch.tensor(mask)
    ref, ref_w = attention_naive(qt, kt, vt, full_mask)
    (ref * torch.tensor(R)).sum().backward()

    att = ScaledDotProductAttention()
    out = att.forward(q, k, v, mask=mask, is_causal=is_causal)
    np.testing.assert_allclose(out, ref.detach().numpy(), atol=1e-14)
    np.testing.assert_allclose(att.weights, ref_w.detach().numpy(), atol=1e-14)
    dq, dk, dv = att.backward(R)
    for ours, t in ((dq, qt), (dk, kt), (dv, vt)):
        np.testing.assert_allclose(ours, t.grad.numpy(), atol=1e-13)
    if case == "padding+causal":  # fully blocked rows: zero output, zero gradient
        np.testing.assert_array_equal(out[1, :, :2], 0.0)
        np.testing.assert_array_equal(dq[1, :, :2], 0.0)


@pytest.mark.parametrize("dropout", [0.0, 0.3])
def test_attention_finite_differences(dropout):
    q, k, v = _qkv(T=3, S=5)
    _, mask = _padding_with_a_blocked_row()
    mask = np.concatenate([mask, np.ones((2, 1, 1, 1), dtype=bool)], axis=-1)  # 5 keys
    R = np.random.default_rng(3).normal(size=q.shape)
    att = ScaledDotProductAttention(dropout)

    def loss() -> float:
        att.dropout.rng = np.random.default_rng(11)  # the same dropout mask on every call
        return float(np.sum(att.forward(q, k, v, mask=mask, is_causal=True) * R))

    loss()
    dq, dk, dv = att.backward(R)
    finite_difference_check(loss, {"q": q, "k": k, "v": v}, {"q": dq, "k": dk, "v": dv}, coords=12)


def _mha_pair(bias: bool):
    torch.manual_seed(0)
    ref = TorchMHA(8, 2, bias=bias, impl="naive").double()
    if bias:
        with torch.no_grad():
            for p in ref.parameters():
                if p.ndim == 1:
                    p.normal_()  # non-zero biases, to test their gradients
    ours = MultiHeadAttention(8, 2, bias=bias, dtype=F64)
    copy_torch_to_numpy(ref, ours)
    return ref, ours


@pytest.mark.parametrize("bias", [True, False])
@pytest.mark.parametrize("use_padding", [False, True])
def test_multi_head_attention_matches_torch(bias, use_padding):
    ref, ours = _mha_pair(bias)
    x = np.random.default_rng(0).normal(size=(2, 4, 8))
    R = np.random.default_rng(1).normal(size=x.shape)
    mask = _padding_with_a_blocked_row()[1] if use_padding else None
    xt = torch.tensor(x, requires_grad=True)
    y, w = ref(xt, mask=torch.tensor(mask) if mask is not None else None, is_causal=True, need_weights=True)
    (y * torch.tensor(R)).sum().backward()
    np.testing.assert_allclose(ours.forward(x, mask=mask, is_causal=True), y.detach().numpy(), atol=1e-13)
    np.testing.assert_allclose(ours.weights, w.detach().numpy(), atol=1e-14)
    np.testing.assert_allclose(ours.backward(R), xt.grad.numpy(), atol=1e-13)
    grads = dict(ours.named_grads())
    for name, p in ref.named_parameters():
        np.testing.assert_allclose(grads[name], p.grad.numpy(), atol=1e-13, err_msg=name)


def test_multi_head_attention_finite_differences():
    ours = MultiHeadAttention(6, 3, bias=True, dtype=F64, rng=np.random.default_rng(0))
    x = np.random.default_rng(1).normal(size=(2, 3, 6))
    R = np.random.default_rng(2).normal(size=x.shape)

    def loss() -> float:
        return float(np.sum(ours.forward(x, is_causal=True) * R))

    loss()
    dx = ours.backward(R)
    finite_difference_check(
        loss, {"x": x, **dict(ours.named_parameters())}, {"x": dx, **dict(ours.named_grads())}, coords=5
    )


def test_heads_are_independent():
    """Changing the inputs of head 0 changes only head 0's output (heads are a batch dimension)."""
    q, k, v = _qkv()
    att = ScaledDotProductAttention()
    base = att.forward(q, k, v, is_causal=True)
    q2 = q.copy()
    q2[:, 0] += 1.0
    changed = att.forward(q2, k, v, is_causal=True)
    assert not np.allclose(changed[:, 0], base[:, 0])
    np.testing.assert_array_equal(changed[:, 1:], base[:, 1:])


def test_future_tokens_do_not_change_past_outputs():
    ours = MultiHeadAttention(8, 2, dtype=F64)
    x = np.random.default_rng(0).normal(size=(1, 5, 8))
    y = ours.forward(x, is_causal=True)
    x2 = x.copy()
    x2[:, 3:] = 7.0
    np.testing.assert_allclose(ours.forward(x2, is_causal=True)[:, :3], y[:, :3], atol=1e-14)


@pytest.mark.parametrize("norm_first", [True, False])
@pytest.mark.parametrize("activation", ["gelu", "gelu_tanh"])
def test_block_matches_torch(norm_first, activation):
    torch.manual_seed(0)
    ref = TorchBlock(8, 2, 16, activation=activation, norm_first=norm_first, bias=True, attn_impl="naive").double()
    with torch.no_grad():
        for p in ref.parameters():
            p.add_(0.1 * torch.randn_like(p))  # move norms and biases off 1 and 0
    ours = TransformerBlock(8, 2, 16, activation=activation, norm_first=norm_first, bias=True, dtype=F64)
    copy_torch_to_numpy(ref, ours)
    x = np.random.default_rng(0).normal(size=(2, 5, 8))
    R = np.random.default_rng(1).normal(size=x.shape)
    xt = torch.tensor(x, requires_grad=True)
    y = ref(xt, is_causal=True).hidden
    (y * torch.tensor(R)).sum().backward()
    np.testing.assert_allclose(ours.forward(x, is_causal=True), y.detach().numpy(), atol=1e-12)
    np.testing.assert_allclose(ours.backward(R), xt.grad.numpy(), atol=1e-12)
    grads = dict(ours.named_grads())
    assert set(grads) == {n for n, _ in ref.named_parameters()}
    for name, p in ref.named_parameters():
        np.testing.assert_allclose(grads[name], p.grad.numpy(), atol=1e-12, err_msg=name)


@pytest.mark.parametrize("norm_first", [True, False])
def test_block_finite_differences_with_dropout(norm_first):
    block = TransformerBlock(
        6, 2, 12, dropout=0.2, norm_first=norm_first, bias=True, dtype=F64, rng=np.random.default_rng(0)
    )
    x = np.random.default_rng(1).normal(size=(2, 4, 6))
    R = np.random.default_rng(2).normal(size=x.shape)
    drops = [m for _, m in block.named_modules() if hasattr(m, "rng")]
    assert len(drops) == 3  # attention weights, attention branch, feed-forward branch

    def loss() -> float:
        for i, d in enumerate(drops):
            d.rng = np.random.default_rng(100 + i)  # fixed masks
        return float(np.sum(block.forward(x, is_causal=True) * R))

    block.zero_grad()
    loss()
    dx = block.backward(R)
    finite_difference_check(
        loss, {"x": x, **dict(block.named_parameters())}, {"x": dx, **dict(block.named_grads())}, coords=3
    )


def test_rotary_multi_head_attention_matches_torch_and_finite_differences():
    from attnlab.nn.positional import RotaryEmbedding

    ref = TorchMHA(8, 2, bias=True, impl="naive", rotary=RotaryEmbedding(4)).double()
    ours = MultiHeadAttention(8, 2, bias=True, dtype=F64, rope_base=10000.0)
    copy_torch_to_numpy(ref, ours)
    x = np.random.default_rng(3).normal(size=(2, 5, 8))
    R = np.random.default_rng(4).normal(size=x.shape)
    xt = torch.tensor(x, requires_grad=True)
    y, _ = ref(xt, is_causal=True)
    (y * torch.tensor(R)).sum().backward()
    np.testing.assert_allclose(ours.forward(x, is_causal=True), y.detach().numpy(), atol=1e-13)
    np.testing.assert_allclose(ours.backward(R), xt.grad.numpy(), atol=1e-13)

    def loss() -> float:
        return float(np.sum(ours.forward(x, is_causal=True) * R))

    ours.zero_grad()
    loss()
    dx = ours.backward(R)
    finite_difference_check(
        loss, {"x": x, **dict(ours.named_parameters())}, {"x": dx, **dict(ours.named_grads())}, coords=5
    )

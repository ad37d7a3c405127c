"""Attention: hand-computed values, naive vs fused, vs torch.nn.MultiheadAttention, masks, KV cache."""

import math

import pytest
import torch
import torch.nn.functional as F
from torch.testing import assert_close

from attnlab.nn.attention import (
    KVCache,
    MultiHeadAttention,
    attention_naive,
    causal_mask,
    combine_masks,
    lengths_to_mask,
    padding_mask,
    scaled_dot_product_attention,
    to_torch_mha_masks,
)


def test_softmax_of_two_numbers_by_hand():
    # one query, two keys; scores q.k = 0 and 2 after scaling by 1/sqrt(1)
    q = torch.tensor([[[[1.0]]]])  # (B=1, H=1, T=1, D=1)
    k = torch.tensor([[[[0.0], [2.0]]]])  # S=2
    v = torch.tensor([[[[10.0], [20.0]]]])
    out, w = attention_naive(q, k, v)
    e = math.exp(2.0)
    assert_close(w[0, 0, 0], torch.tensor([1 / (1 + e), e / (1 + e)]))
    assert_close(out[0, 0, 0, 0], torch.tensor((10 + 20 * e) / (1 + e)))


def test_three_token_causal_attention_by_hand():
    # D = 4, so the scale is 1/2. All keys equal -> uniform weights over visible keys.
    q = torch.ones(1, 1, 3, 4)
    k = torch.ones(1, 1, 3, 4)
    v = torch.tensor([1.0, 2.0, 4.0]).view(1, 1, 3, 1).expand(1, 1, 3, 4)
    out, w = attention_naive(q, k, v, causal_mask(3))
    expected_w = torch.tensor([[1.0, 0.0, 0.0], [0.5, 0.5, 0.0], [1 / 3, 1 / 3, 1 / 3]])
    assert_close(w[0, 0], expected_w)
    assert_close(out[0, 0, :, 0], torch.tensor([1.0, 1.5, 7 / 3]))


def test_scale_is_one_over_sqrt_head_dim():
    torch.manual_seed(0)
    q, k, v = torch.randn(3, 1, 1, 2, 16).unbind(0)
    _, w = attention_naive(q, k, v)
    scores = (q @ k.transpose(-2, -1))[0, 0, 0] / 4.0
    assert_close(w[0, 0, 0], torch.softmax(scores, -1))


def test_causal_mask_shape_and_offset():
    m = causal_mask(2, 4)  # last two of four positions (KV cache)
    assert m.tolist() == [[True, True, True, False], [True, True, True, True]]
    with pytest.raises(ValueError):
        causal_mask(3, 2)


@pytest.mark.parametrize("use_mask", ["none", "causal", "padding", "both"])
def test_naive_equals_fused(use_mask):
    torch.manual_seed(1)
    B, H, T, D = 2, 3, 5, 8
    q, k, v = torch.randn(3, B, H, T, D).unbind(0)
    lengths = torch.tensor([5, 3])
    pad = padding_mask(lengths_to_mask(lengths, T))
    mask = {"none": None, "causal": causal_mask(T), "padding": pad, "both": combine_masks(causal_mask(T), pad)}[
        use_mask
    ]
    naive, _ = scaled_dot_product_attention(q, k, v, mask, impl="naive")
    fused, _ = scaled_dot_product_attention(q, k, v, mask, impl="fused")
    assert_close(naive, fused, atol=1e-5, rtol=1e-5)
    reference = F.scaled_dot_product_attention(q, k, v, attn_mask=mask)
    assert_close(fused, reference, atol=1e-5, rtol=1e-5)


def test_is_causal_flag_equals_explicit_mask():
    torch.manual_seed(2)
    q, k, v = torch.randn(3, 1, 2, 6, 4).unbind(0)
    a, _ = scaled_dot_product_attention(q, k, v, is_causal=True)
    b, _ = scaled_dot_product_attention(q, k, v, causal_mask(6), impl="naive")
    assert_close(a, b, atol=1e-6, rtol=1e-5)


def test_fully_blocked_rows_give_zero_not_nan():
    torch.manual_seed(3)
    q, k, v = torch.randn(3, 1, 1, 2, 4).unbind(0)
    mask = torch.tensor([[True, False], [False, False]])
    for impl in ("naive", "fused"):
        out, _ = scaled_dot_product_attention(q, k, v, mask, impl=impl)
        assert torch.isfinite(out).all()
        assert_close(out[0, 0, 1], torch.zeros(4))
        assert_close(out[0, 0, 0], v[0, 0, 0])


def test_weights_returned_on_request_sum_to_one():
    torch.manual_seed(4)
    q, k, v = torch.randn(3, 2, 2, 4, 8).unbind(0)
    out, w = scaled_dot_product_attention(q, k, v, is_causal=True, need_weights=True)
    assert w.shape == (2, 2, 4, 4)
    assert_close(w.sum(-1), torch.ones(2, 2, 4))
    assert (w.triu(1) == 0).all()
    _, none = scaled_dot_product_attention(q, k, v)
    assert none is None


def _copy_from_torch_mha(ours: MultiHeadAttention, ref: torch.nn.MultiheadAttention) -> None:
    with torch.no_grad():
        ours.qkv.weight.copy_(ref.in_proj_weight)
        ours.qkv.bias.copy_(ref.in_proj_bias)
        ours.out.weight.copy_(ref.out_proj.weight)
        ours.out.bias.copy_(ref.out_proj.bias)


@pytest.mark.parametrize("impl", ["naive", "fused"])
def test_multihead_attention_matches_torch_with_causal_and_padding_masks(impl):
    torch.manual_seed(5)
    B, T, C, H = 3, 7, 32, 4
    ref = torch.nn.MultiheadAttention(C, H, batch_first=True).eval()
    ours = MultiHeadAttention(C, H, impl=impl).eval()
    _copy_from_torch_mha(ours, ref)
    x = torch.randn(B, T, C)
    keep = lengths_to_mask(torch.tensor([7, 5, 2]), T)  # (B, T) True = real token
    causal = causal_mask(T)
    expected, expected_w = ref(
        x,
        x,
        x,
        attn_mask=to_torch_mha_masks(causal),
        key_padding_mask=~keep,
        need_weights=True,
        average_attn_weights=False,
    )
    got, w = ours(x, mask=combine_masks(causal, padding_mask(keep)), need_weights=True)
    # torch gives NaN-free rows here (every query sees key 0); compare everything
    assert_close(got, expected, atol=1e-5, rtol=1e-5)
    assert_close(w, expected_w, atol=1e-6, rtol=1e-5)


def test_cross_attention_matches_torch():
    torch.manual_seed(6)
    B, T, S, C, H = 2, 4, 6, 16, 2
    ref = torch.nn.MultiheadAttention(C, H, batch_first=True).eval()
    ours = MultiHeadAttention(C, H, cross=True).eval()
    with torch.no_grad():
        ours.q.weight.copy_(ref.in_proj_weight[:C])
        ours.q.bias.copy_(ref.in_proj_bias[:C])
        ours.kv.weight.copy_(ref.in_proj_weight[C:])
        ours.kv.bias.copy_(ref.in_proj_bias[C:])
        ours.out.weight.copy_(ref.out_proj.weight)
        ours.out.bias.copy_(ref.out_proj.bias)
    x, ctx = torch.randn(B, T, C), torch.randn(B, S, C)
    keep = lengths_to_mask(torch.tensor([6, 3]), S)
    expected, _ = ref(x, ctx, ctx, key_padding_mask=~keep)
    got, _ = ours(x, ctx, mask=padding_mask(keep))
    assert_close(got, expected, atol=1e-5, rtol=1e-5)


def test_kv_cache_step_by_step_equals_full_pass():
    torch.manual_seed(7)
    attn = MultiHeadAttention(16, 4).eval()
    x = torch.randn(2, 9, 16)
    full, _ = attn(x, is_causal=True)
    cache = KVCache(1).layers[0]
    parts = [attn(x[:, :4], is_causal=True, cache=cache)[0]]
    for t in range(4, 9):
        parts.append(attn(x[:, t : t + 1], is_causal=True, cache=cache)[0])
    assert cache.length == 9
    assert_close(torch.cat(parts, 1), full, atol=1e-6, rtol=1e-5)


def test_heads_are_a_tensor_dimension_not_a_list():
    attn = MultiHeadAttention(32, 8)
    names = [n for n, _ in attn.named_parameters()]
    assert names == ["qkv.weight", "qkv.bias", "out.weight", "out.bias"]
    with pytest.raises(ValueError):
        MultiHeadAttention(30, 8)

"""LLaMA's building blocks: RMSNorm, SwiGLU, grouped-query attention, and the block options."""

import pytest
import torch
import torch.nn.functional as F
from torch.testing import assert_close

from attnlab.nn.attention import MultiHeadAttention, attention_naive, repeat_kv, scaled_dot_product_attention
from attnlab.nn.block import TransformerBlock
from attnlab.nn.layers import FeedForward, RMSNorm, SwiGLU, make_norm
from attnlab.nn.positional import RotaryEmbedding


def test_rms_norm_formula_and_torch_rms_norm():
    torch.manual_seed(0)
    norm = RMSNorm(8, eps=1e-6)
    with torch.no_grad():
        norm.weight.normal_()
    x = torch.randn(2, 3, 8)
    expected = x / torch.sqrt(x.pow(2).mean(-1, keepdim=True) + 1e-6) * norm.weight
    assert_close(norm(x), expected)
    reference = torch.nn.RMSNorm(8, eps=1e-6)
    reference.weight.data.copy_(norm.weight.data)
    assert_close(norm(x), reference(x), atol=1e-6, rtol=1e-6)


@pytest.mark.parametrize("dtype", [torch.float32, torch.bfloat16])
def test_rms_norm_equals_hugging_face(dtype):
    modeling = pytest.importorskip("transformers.models.llama.modeling_llama")
    torch.manual_seed(1)
    ours, hf = RMSNorm(16, eps=1e-5), modeling.LlamaRMSNorm(16, eps=1e-5)
    with torch.no_grad():
        ours.weight.normal_()
        hf.weight.copy_(ours.weight)
    ours, hf = ours.to(dtype), hf.to(dtype)
    x = (torch.randn(4, 16) * 3).to(dtype)
    assert ours(x).dtype == dtype
    assert torch.equal(ours(x), hf(x))  # same operations in the same order: bit for bit


def test_make_norm():
    assert isinstance(make_norm("rms", 4), RMSNorm)
    layer = make_norm("layer", 4, bias=False)
    assert isinstance(layer, torch.nn.LayerNorm) and layer.bias is None
    with pytest.raises(ValueError, match="unknown norm"):
        make_norm("batch", 4)


def test_swiglu_formula_and_hugging_face_mlp():
    torch.manual_seed(2)
    ff = SwiGLU(8, 12)
    assert {n for n, _ in ff.named_parameters()} == {"w_gate.weight", "w_up.weight", "w_down.weight"}
    assert ff.residual_projections() == [ff.w_down]
    x = torch.randn(2, 5, 8)
    expected = (F.silu(x @ ff.w_gate.weight.T) * (x @ ff.w_up.weight.T)) @ ff.w_down.weight.T
    assert_close(ff(x), expected)
    transformers = pytest.importorskip("transformers")
    from transformers.models.llama.modeling_llama import LlamaMLP

    hf = LlamaMLP(
        transformers.LlamaConfig(hidden_size=8, intermediate_size=12, num_attention_heads=2, num_key_value_heads=2)
    )
    hf.gate_proj.weight.data.copy_(ff.w_gate.weight.data)
    hf.up_proj.weight.data.copy_(ff.w_up.weight.data)
    hf.down_proj.weight.data.copy_(ff.w_down.weight.data)
    assert_close(ff(x), hf(x))


def test_rotary_matches_hugging_face_llama():
    modeling = pytest.importorskip("transformers.models.llama.modeling_llama")
    torch.manual_seed(3)
    q, k = torch.randn(2, 4, 6, 8), torch.randn(2, 2, 6, 8)
    positions = torch.arange(3, 9)
    rope = RotaryEmbedding(8, base=500.0)
    inv_freq = 1.0 / 500.0 ** (torch.arange(0, 8, 2, dtype=torch.float32) / 8)
    emb = torch.cat([positions[:, None] * inv_freq] * 2, dim=-1)  # (T, D), HF's layout
    hq, hk = modeling.apply_rotary_pos_emb(q, k, emb.cos()[None], emb.sin()[None])
    assert_close(rope(q, positions), hq, atol=1e-5, rtol=1e-5)
    assert_close(rope(k, positions), hk, atol=1e-5, rtol=1e-5)


def test_repeat_kv_and_grouped_attention_kernels():
    torch.manual_seed(4)
    q, k, v = torch.randn(2, 6, 5, 4), torch.randn(2, 2, 7, 4), torch.randn(2, 2, 7, 4)
    big_k, big_v = repeat_kv(k, 3), repeat_kv(v, 3)
    assert big_k.shape == (2, 6, 7, 4) and torch.equal(big_k[:, 2], k[:, 0]) and torch.equal(big_k[:, 3], k[:, 1])
    mask = torch.rand(2, 1, 5, 7) > 0.3
    ref, ref_w = attention_naive(q, big_k, big_v, mask)
    naive, w = attention_naive(q, k, v, mask)
    assert_close(naive, ref)
    assert_close(w, ref_w)
    fused, _ = scaled_dot_product_attention(q, k, v, mask, is_causal=True)
    assert_close(fused, scaled_dot_product_attention(q, big_k, big_v, mask, is_causal=True)[0], atol=1e-6, rtol=1e-6)
    assert_close(
        fused, scaled_dot_product_attention(q, k, v, mask, is_causal=True, impl="naive")[0], atol=1e-6, rtol=1e-6
    )


def test_grouped_query_attention_equals_multi_head_with_repeated_key_value_heads():
    torch.manual_seed(5)
    C, H, G, D = 24, 6, 2, 4
    rotary = RotaryEmbedding(D)
    gqa = MultiHeadAttention(C, H, num_kv_heads=G, bias=True, rotary=rotary).eval()
    assert tuple(gqa.qkv.weight.shape) == ((H + 2 * G) * D, C)
    mha = MultiHeadAttention(C, H, bias=True, rotary=rotary).eval()
    w, b = gqa.qkv.weight.data, gqa.qkv.bias.data
    q_w, k_w, v_w = w.split([H * D, G * D, G * D])
    q_b, k_b, v_b = b.split([H * D, G * D, G * D])

    def rep(t):  # (G * D, ...) -> (H * D, ...): each kv head copied for its H / G query heads
        return t.view(G, D, *t.shape[1:]).repeat_interleave(H // G, dim=0).reshape(H * D, *t.shape[1:])

    mha.qkv.weight.data.copy_(torch.cat([q_w, rep(k_w), rep(v_w)]))
    mha.qkv.bias.data.copy_(torch.cat([q_b, rep(k_b), rep(v_b)]))
    mha.out.load_state_dict(gqa.out.state_dict())
    x = torch.randn(2, 9, C)
    out, weights = gqa(x, is_causal=True, need_weights=True)
    ref, ref_weights = mha(x, is_causal=True, need_weights=True)
    assert_close(out, ref, atol=1e-6, rtol=1e-6)
    assert weights.shape == (2, H, 9, 9)
    assert_close(weights, ref_weights, atol=1e-6, rtol=1e-6)
    assert_close(gqa(x, is_causal=True)[0], ref, atol=1e-6, rtol=1e-6)  # the fused kernel too


def test_grouped_query_attention_cache_holds_the_key_value_heads():
    from attnlab.nn.attention import LayerKVCache

    torch.manual_seed(6)
    attn = MultiHeadAttention(16, 4, num_kv_heads=1, rotary=RotaryEmbedding(4)).eval()
    x = torch.randn(1, 7, 16)
    full, _ = attn(x, is_causal=True)
    cache = LayerKVCache()
    steps = [attn(x[:, :3], is_causal=True, cache=cache)[0]] + [
        attn(x[:, t : t + 1], is_causal=True, cache=cache)[0] for t in range(3, 7)
    ]
    assert_close(torch.cat(steps, 1), full, atol=1e-6, rtol=1e-6)
    assert cache.k.shape == (1, 1, 7, 4) and cache.v.shape == (1, 1, 7, 4)


def test_num_kv_heads_errors():
    with pytest.raises(ValueError, match="num_kv_heads \\(3\\) must divide num_heads \\(4\\)"):
        MultiHeadAttention(16, 4, num_kv_heads=3)
    with pytest.raises(ValueError, match="self-attention only"):
        MultiHeadAttention(16, 4, num_kv_heads=2, cross=True)
    with pytest.raises(ValueError, match="unknown feed_forward"):
        TransformerBlock(16, 4, 32, feed_forward="moe")


def test_block_defaults_keep_their_weight_names_and_llama_options_change_them():
    default = TransformerBlock(16, 4, 32, bias=False)
    assert isinstance(default.norm1, torch.nn.LayerNorm) and isinstance(default.ff, FeedForward)
    assert sorted(n for n, _ in default.named_parameters()) == [
        "attn.out.weight",
        "attn.qkv.weight",
        "ff.fc1.weight",
        "ff.fc2.weight",
        "norm1.weight",
        "norm2.weight",
    ]
    assert tuple(default.attn.qkv.weight.shape) == (48, 16)
    llama = TransformerBlock(
        16, 4, 32, bias=False, activation="silu", norm="rms", feed_forward="swiglu", num_kv_heads=2
    )
    assert isinstance(llama.norm1, RMSNorm) and isinstance(llama.norm2, RMSNorm) and isinstance(llama.ff, SwiGLU)
    assert sorted(n for n, _ in llama.named_parameters()) == [
        "attn.out.weight",
        "attn.qkv.weight",
        "ff.w_down.weight",
        "ff.w_gate.weight",
        "ff.w_up.weight",
        "norm1.weight",
        "norm2.weight",
    ]
    assert tuple(llama.attn.qkv.weight.shape) == (32, 16)  # 4 query heads + 2 x 2 key/value heads of 4
    x = torch.randn(2, 5, 16)
    trace: dict = {}
    out = llama(x, is_causal=True, trace=trace)
    assert out.hidden.shape == x.shape
    assert_close(trace["after_attn"], x + trace["attn_out"])
    assert_close(out.hidden, trace["after_attn"] + llama.ff(llama.norm2(trace["after_attn"])))

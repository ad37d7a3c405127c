"""Blocks vs torch.nn.TransformerEncoderLayer with copied weights (pre- and post-norm)."""

import pytest
import torch
from torch.testing import assert_close

from attnlab.nn.attention import causal_mask, lengths_to_mask, padding_mask
from attnlab.nn.block import TransformerBlock
from attnlab.nn.layers import FeedForward


def _copy(ours: TransformerBlock, ref: torch.nn.TransformerEncoderLayer) -> None:
    with torch.no_grad():
        ours.attn.qkv.weight.copy_(ref.self_attn.in_proj_weight)
        ours.attn.qkv.bias.copy_(ref.self_attn.in_proj_bias)
        ours.attn.out.weight.copy_(ref.self_attn.out_proj.weight)
        ours.attn.out.bias.copy_(ref.self_attn.out_proj.bias)
        ours.ff.fc1.weight.copy_(ref.linear1.weight)
        ours.ff.fc1.bias.copy_(ref.linear1.bias)
        ours.ff.fc2.weight.copy_(ref.linear2.weight)
        ours.ff.fc2.bias.copy_(ref.linear2.bias)
        for a, b in ((ours.norm1, ref.norm1), (ours.norm2, ref.norm2)):
            a.weight.copy_(b.weight)
            a.bias.copy_(b.bias)


@pytest.mark.parametrize("norm_first", [True, False])
@pytest.mark.parametrize("activation", ["relu", "gelu"])
def test_block_matches_transformer_encoder_layer(norm_first, activation):
    torch.manual_seed(0)
    C, H, F = 32, 4, 64
    ref = torch.nn.TransformerEncoderLayer(
        C, H, F, dropout=0.0, activation=activation, batch_first=True, norm_first=norm_first
    ).eval()
    ours = TransformerBlock(C, H, F, activation=activation, norm_first=norm_first).eval()
    _copy(ours, ref)
    # perturb the norms so that their parameters matter
    with torch.no_grad():
        for n in (ref.norm1, ref.norm2):
            n.weight.uniform_(0.5, 1.5)
            n.bias.uniform_(-0.5, 0.5)
    _copy(ours, ref)
    x = torch.randn(3, 6, C)
    keep = lengths_to_mask(torch.tensor([6, 4, 1]), 6)
    with torch.no_grad():
        expected = ref(x, src_key_padding_mask=~keep)
        got = ours(x, mask=padding_mask(keep)).hidden
    # torch's fast path may zero padded positions; compare the real tokens
    assert_close(got[keep], expected[keep], atol=1e-5, rtol=1e-5)


@pytest.mark.parametrize("norm_first", [True, False])
def test_block_causal_matches_encoder_layer_with_causal_mask(norm_first):
    torch.manual_seed(1)
    C, H, F, T = 16, 2, 32, 5
    ref = torch.nn.TransformerEncoderLayer(C, H, F, dropout=0.0, batch_first=True, norm_first=norm_first).eval()
    ours = TransformerBlock(C, H, F, activation="relu", norm_first=norm_first).eval()
    _copy(ours, ref)
    x = torch.randn(2, T, C)
    with torch.no_grad():
        expected = ref(x, src_mask=~causal_mask(T), is_causal=True)
        got = ours(x, is_causal=True).hidden
    assert_close(got, expected, atol=1e-5, rtol=1e-5)


def test_padding_does_not_change_unpadded_outputs():
    torch.manual_seed(2)
    block = TransformerBlock(16, 4, 32).eval()
    x = torch.randn(1, 4, 16)
    padded = torch.cat([x, torch.randn(1, 3, 16) * 10], dim=1)
    keep = torch.tensor([[1, 1, 1, 1, 0, 0, 0]])
    with torch.no_grad():
        short = block(x).hidden
        long = block(padded, mask=padding_mask(keep)).hidden
    assert_close(long[:, :4], short, atol=1e-5, rtol=1e-5)


def test_encoder_without_positions_is_permutation_equivariant():
    torch.manual_seed(3)
    block = TransformerBlock(16, 4, 32).eval()
    x = torch.randn(1, 6, 16)
    perm = torch.randperm(6)
    with torch.no_grad():
        assert_close(block(x[:, perm]).hidden, block(x).hidden[:, perm], atol=1e-5, rtol=1e-5)


def test_trace_records_each_sublayer():
    block = TransformerBlock(8, 2, 16).eval()
    trace = {}
    x = torch.randn(1, 3, 8)
    out = block(x, trace=trace).hidden
    assert set(trace) == {"attn_out", "after_attn", "ff_out", "after_ff"}
    assert_close(trace["after_attn"], x + trace["attn_out"])
    assert_close(out, trace["after_attn"] + trace["ff_out"])


def test_cross_attention_block_uses_context():
    torch.manual_seed(4)
    block = TransformerBlock(8, 2, 16, cross_attention=True).eval()
    x, ctx = torch.randn(1, 3, 8), torch.randn(1, 5, 8)
    with torch.no_grad():
        a = block(x, is_causal=True, context=ctx, need_weights=True)
        b = block(x, is_causal=True, context=ctx + 1.0)
    assert a.cross_attention.shape == (1, 2, 3, 5)
    assert not torch.allclose(a.hidden, b.hidden)


def test_feed_forward_is_position_wise():
    torch.manual_seed(5)
    ff = FeedForward(8, 32, "gelu").eval()
    x = torch.randn(2, 5, 8)
    assert_close(ff(x)[:, 2], ff(x[:, 2:3])[:, 0])


def test_dropout_only_in_training():
    torch.manual_seed(6)
    block = TransformerBlock(8, 2, 16, dropout=0.5)
    x = torch.randn(2, 4, 8)
    block.eval()
    assert_close(block(x).hidden, block(x).hidden)
    block.train()
    assert not torch.allclose(block(x).hidden, block(x).hidden)

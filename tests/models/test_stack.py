"""`attnlab.nn.stack`: the block stack and the GPT-2 initialisation every model shares.

`INITIAL_WEIGHTS` pins a sha256 of each model's state_dict built after
`torch.manual_seed(0)`, taken with the initialisation loops each model file had before
they moved into `init_weights`: a given seed must keep giving bit-identical weights
(checkpoints, recorded results and tests depend on it).
"""

from __future__ import annotations

import hashlib
import math
from dataclasses import dataclass
from typing import Any

import pytest
import torch
from torch import nn

from attnlab.configs.base import TransformerConfig
from attnlab.models.encoder import Encoder, EncoderConfig
from attnlab.models.gpt import GPT, GPTConfig
from attnlab.models.seq2seq import Seq2Seq, Seq2SeqConfig
from attnlab.models.sequence_transformer import SequenceTransformer, SequenceTransformerConfig
from attnlab.models.vit import ViT, ViTConfig
from attnlab.nn.block import TransformerBlock
from attnlab.nn.layers import RMSNorm, SwiGLU
from attnlab.nn.positional import RotaryEmbedding
from attnlab.nn.stack import block_stack, init_weights, residual_projections

BUILDERS = {
    "gpt-nano": lambda: GPT(GPTConfig.from_name("nano", vocab_size=37)),
    "gpt-baby": lambda: GPT(GPTConfig.from_name("baby")),
    "gpt-postnorm-bias": lambda: GPT(GPTConfig.from_name("nano", bias=True, norm_first=False, tie_weights=False)),
    "encoder-mini": lambda: Encoder(EncoderConfig.from_name("mini")),
    "encoder-protein": lambda: Encoder(EncoderConfig.from_name("protein-small", num_layers=2)),
    "encoder-seq": lambda: Encoder(EncoderConfig.from_name("mini", head="sequence", type_vocab_size=2)),
    "seq2seq-tiny": lambda: Seq2Seq(Seq2SeqConfig.from_name("tiny")),
    "seq2seq-small": lambda: Seq2Seq(Seq2SeqConfig.from_name("small", num_decoder_layers=3)),
    "vit-tiny": lambda: ViT(ViTConfig.from_name("tiny")),
    "seqtr-tiny": lambda: SequenceTransformer(SequenceTransformerConfig.from_name("tiny")),
}
INITIAL_WEIGHTS = {  # torch.manual_seed(0), then the builder above (CPU, float32)
    "gpt-nano": "2c2bc887cdfd56257212faa4eb24b5795df1fbb4ea213d9ffe45edfe23ae92bc",
    "gpt-baby": "99df284c80452c575359fdde8d221b3bbfb54fc86230a76e42477aab46e22671",
    "gpt-postnorm-bias": "06bd35b03dbe0d9ed08eb3de4ccc2db48388d0488c56000d2d2d0a6b286ad1c9",
    "encoder-mini": "3fd11a313eb5f7cfce666be52b25797c7c98ae9c380381fc861519de287ce953",
    "encoder-protein": "d188243bde90531671593b33cb7a29bee55f70eee4f3a3e9176bdfdc42d44d18",
    "encoder-seq": "55ca144022d79c4e99350151ead11ad0f1a46806d7afe6ab1cb37102e4555719",
    "seq2seq-tiny": "2441427e90e360c700edfb394f5fbb8bd2a92333976df0828011d51100f3e455",
    "seq2seq-small": "22b30bd035d25f0eb125286866212818e1c2794ce755dcf4dc4d8225abe30455",
    "vit-tiny": "db670325af57073e361a880af52924816fd109d01714ce7738b2c39516281438",
    "seqtr-tiny": "9f99a61688b88f86c1bd2821bd048da63292aeca6399477c1135f8ef89a657c9",
}


def state_digest(model: nn.Module) -> str:
    h = hashlib.sha256()
    for name, tensor in model.state_dict().items():
        h.update(name.encode())
        h.update(tensor.detach().contiguous().numpy().tobytes())
    return h.hexdigest()


@pytest.mark.parametrize("name", sorted(BUILDERS))
def test_initial_weights_are_bit_identical_to_before(name):
    torch.manual_seed(0)
    assert state_digest(BUILDERS[name]()) == INITIAL_WEIGHTS[name]


def test_block_stack_builds_independent_blocks_from_the_config():
    config = GPTConfig.from_name("nano", activation="relu", bias=True, norm_first=False, layer_norm_eps=1e-6, ff_dim=40)
    blocks = block_stack(config)
    assert isinstance(blocks, nn.ModuleList) and len(blocks) == config.num_layers == 2
    assert all(type(b) is TransformerBlock for b in blocks)
    assert blocks[0].attn.qkv.weight is not blocks[1].attn.qkv.weight
    b = blocks[0]
    assert (b.norm_first, b.ff.activation_name, b.ff.fc1.out_features, b.norm1.eps) == (False, "relu", 40, 1e-6)
    assert b.attn.qkv.bias is not None and b.cross_attn is None and b.attn.rotary is None


def test_block_stack_shares_rotary_and_builds_decoder_blocks():
    config = Seq2SeqConfig.from_name("tiny")
    rotary = RotaryEmbedding(config.head_dim)
    blocks = block_stack(config, rotary=rotary, num_layers=3, cross_attention=True)
    assert len(blocks) == 3
    assert all(b.attn.rotary is rotary and b.cross_attn is not None for b in blocks)
    with pytest.raises(AttributeError):
        block_stack(config)  # an encoder-decoder has no single num_layers: say which count


def test_block_stack_overrides_replace_config_values():
    blocks = block_stack(GPTConfig.from_name("nano"), dropout=0.5, attn_impl="naive")
    assert blocks[0].drop1.p == 0.5 and blocks[0].attn.impl == "naive"


@dataclass(frozen=True)
class _RmsSwiGLUConfig(TransformerConfig):
    """A config that adds block keyword arguments, as LLaMA's does."""

    activation: Any = "silu"
    num_layers: int = 3

    def block_kwargs(self) -> dict[str, Any]:
        return {**super().block_kwargs(), "norm": "rms", "feed_forward": "swiglu", "num_kv_heads": 2}


def test_added_block_kwargs_reach_the_blocks_and_init_covers_rms_and_swiglu():
    config = _RmsSwiGLUConfig()
    blocks = block_stack(config)
    assert isinstance(blocks[0].norm1, RMSNorm) and isinstance(blocks[0].ff, SwiGLU)
    assert residual_projections(blocks[0]) == [blocks[0].attn.out, blocks[0].ff.w_down]
    with torch.no_grad():
        for p in blocks.parameters():
            p.fill_(3.0)
    torch.manual_seed(0)
    init_weights(blocks, 0.02, residual=[(blocks, config.num_layers)])
    assert all(torch.equal(b.norm1.weight, torch.ones(config.embed_dim)) for b in blocks)
    gate = torch.cat([b.ff.w_gate.weight.flatten() for b in blocks])
    assert abs(gate.std().item() - 0.02) < 0.001 and abs(gate.mean().item()) < 0.001
    down = torch.cat([b.ff.w_down.weight.flatten() for b in blocks])
    assert abs(down.std().item() - 0.02 / math.sqrt(2 * 3)) < 0.002


def _gpt2_init_as_it_was(model: GPT) -> None:
    """The loop GPT.reset_parameters had before `init_weights` (the reference here)."""
    std = model.config.init_std
    for module in model.modules():
        if isinstance(module, nn.Linear):
            nn.init.normal_(module.weight, mean=0.0, std=std)
            if module.bias is not None:
                nn.init.zeros_(module.bias)
        elif isinstance(module, nn.Embedding):
            nn.init.normal_(module.weight, mean=0.0, std=std)
        elif isinstance(module, nn.LayerNorm):
            nn.init.ones_(module.weight)
            if module.bias is not None:
                nn.init.zeros_(module.bias)
    residual_std = std / math.sqrt(2 * model.config.num_layers)
    for block in model.blocks:
        nn.init.normal_(block.attn.out.weight, mean=0.0, std=residual_std)
        nn.init.normal_(block.ff.fc2.weight, mean=0.0, std=residual_std)


@pytest.mark.parametrize("overrides", [{}, {"bias": True, "positional": "rotary"}, {"num_layers": 5, "init_std": 0.05}])
def test_init_weights_matches_the_old_gpt_loop(overrides):
    model = GPT(GPTConfig.from_name("nano", **overrides))
    torch.manual_seed(7)
    _gpt2_init_as_it_was(model)
    expected = {k: v.clone() for k, v in model.state_dict().items()}
    torch.manual_seed(7)
    init_weights(model, model.config.init_std, residual=[(model.blocks, model.config.num_layers)])
    for name, tensor in model.state_dict().items():
        assert torch.equal(tensor, expected[name]), name


def test_init_weights_zeroes_biases_sets_norms_and_scales_residual_writers():
    model = GPT(GPTConfig.from_name("nano", bias=True, num_layers=8, embed_dim=64))
    with torch.no_grad():
        for p in model.parameters():
            p.fill_(5.0)
    init_weights(model, 0.02, residual=[(model.blocks, 8)])
    for name, p in model.named_parameters():
        if name.endswith("bias"):
            assert torch.count_nonzero(p) == 0, name
        elif "norm" in name:
            assert torch.equal(p, torch.ones_like(p)), name
    writers = torch.cat([w.weight.flatten() for b in model.blocks for w in residual_projections(b)])
    readers = torch.cat([b.ff.fc1.weight.flatten() for b in model.blocks])
    assert abs(writers.std().item() - 0.02 / 4) < 0.0005 and abs(readers.std().item() - 0.02) < 0.001
    # without residual pairs nothing is rescaled (BERT)
    init_weights(model, 0.02)
    assert abs(torch.cat([b.attn.out.weight.flatten() for b in model.blocks]).std().item() - 0.02) < 0.001

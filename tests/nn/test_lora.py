"""LoRA (attnlab.nn.lora): identity at the start, merge = unmerged forward, only adapters train,
and parity with peft's LoRA on a Hugging Face BERT (weights copied in, outputs and gradients)."""

from __future__ import annotations

import pytest
import torch
from torch import nn
from torch.testing import assert_close

from attnlab.models.encoder import Encoder, EncoderConfig
from attnlab.models.gpt import GPT, GPTConfig
from attnlab.nn.lora import (
    LoRALinear,
    apply_lora,
    count_parameters,
    lora_layers,
    lora_state_dict,
    merge_lora,
    merged_copy,
    unmerge_lora,
)


def tiny_gpt() -> GPT:
    torch.manual_seed(0)
    return GPT(GPTConfig(vocab_size=20, max_seq_len=16, num_layers=2, num_heads=2, embed_dim=16, dropout=0.0)).eval()


def randomize_b(model: nn.Module, seed: int = 1) -> None:
    g = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for _, layer in lora_layers(model):
            layer.lora_B.copy_(torch.randn(layer.lora_B.shape, generator=g) * 0.2)


def test_lora_starts_as_the_identity_on_a_gpt():
    model = tiny_gpt()
    ids = torch.randint(0, 20, (2, 10))
    before = model(ids).logits
    names = apply_lora(model, rank=4, alpha=8)
    assert names == ["blocks.0.attn.qkv", "blocks.1.attn.qkv"]
    layer = model.get_submodule("blocks.0.attn.qkv")
    assert isinstance(layer, LoRALinear) and layer.splits == (16, 16, 16)
    assert torch.count_nonzero(layer.lora_B) == 0 and torch.count_nonzero(layer.lora_A) > 0
    assert_close(model(ids).logits, before, rtol=0, atol=0)


def test_merge_equals_the_unmerged_forward_and_unmerge_restores_the_weight():
    model = tiny_gpt()
    apply_lora(model, rank=3, alpha=6)
    randomize_b(model)
    ids = torch.randint(0, 20, (2, 9))
    base_weight = model.get_submodule("blocks.1.attn.qkv").weight.detach().clone()
    unmerged = model(ids).logits
    merge_lora(model)
    assert all(layer.merged for _, layer in lora_layers(model))
    assert_close(model(ids).logits, unmerged, rtol=1e-5, atol=1e-6)
    unmerge_lora(model)
    assert_close(model.get_submodule("blocks.1.attn.qkv").weight, base_weight, rtol=1e-6, atol=1e-7)
    assert_close(model(ids).logits, unmerged, rtol=1e-5, atol=1e-6)
    plain = merged_copy(model)  # a plain model with the update folded in, and the same weight names as before
    assert not lora_layers(plain) and set(plain.state_dict()) == set(tiny_gpt().state_dict())
    assert_close(plain(ids).logits, unmerged, rtol=1e-5, atol=1e-6)


def test_a_fused_qkv_adapter_is_one_adapter_per_slice():
    """LoRA over a fused [q | k | v] layer = separate LoRA on three layers with those weights."""
    torch.manual_seed(2)
    fused = nn.Linear(8, 12)
    lora = LoRALinear(fused, rank=2, alpha=4, splits=(4, 4, 4))
    with torch.no_grad():
        lora.lora_B.normal_()
    x = torch.randn(5, 8)
    expected = []
    for i, (w, b) in enumerate(zip(fused.weight.split(4), fused.bias.split(4))):
        a_i, b_i = lora.lora_A[2 * i : 2 * i + 2], lora.lora_B[4 * i : 4 * i + 4]
        expected.append(x @ w.T + b + 2.0 * (x @ a_i.T) @ b_i.T)
    assert_close(lora(x), torch.cat(expected, dim=-1))


def test_only_adapters_and_the_head_get_gradients():
    torch.manual_seed(0)
    enc = Encoder(EncoderConfig.from_name("mini", vocab_size=30, head="sequence", num_labels=3, pooling="mean"))
    apply_lora(enc, rank=2, alpha=4)
    enc.classifier.requires_grad_(True)  # the head trains too
    ids = torch.randint(0, 30, (4, 7))
    out = enc(ids, labels=torch.tensor([0, 1, 2, 1]))
    randomize_b(enc)
    out = enc(ids, labels=torch.tensor([0, 1, 2, 1]))
    out.loss.backward()
    with_grad = {n for n, p in enc.named_parameters() if p.grad is not None and p.grad.abs().sum() > 0}
    trainable = {n for n, p in enc.named_parameters() if p.requires_grad}
    assert with_grad == trainable
    assert trainable == {n for n in trainable if n.endswith(("lora_A", "lora_B")) or n.startswith("classifier.")}
    assert any(n.endswith("lora_A") for n in trainable) and "classifier.weight" in trainable
    n_trainable, n_total = count_parameters(enc)
    # 2 layers x (A (3 r, C) + B (3 C, r)) with r = 2, C = 32, plus the head (3 x 32 + 3)
    assert n_trainable == 2 * (3 * 2 * 32 + 3 * 32 * 2) + 3 * 32 + 3
    assert n_total == n_trainable + sum(p.numel() for n, p in enc.named_parameters() if not p.requires_grad)
    assert len(lora_state_dict(enc)) == 4


def test_named_targets_and_bad_arguments():
    model = nn.Sequential(nn.Linear(4, 4), nn.ReLU(), nn.Linear(4, 2))
    assert apply_lora(model, rank=1, targets=["0"]) == ["0"]
    with pytest.raises(ValueError, match="not an nn.Linear"):
        apply_lora(nn.Sequential(nn.ReLU()), targets=["0"])
    with pytest.raises(ValueError, match="no layer to adapt"):
        apply_lora(nn.Sequential(nn.Linear(2, 2)))
    with pytest.raises(ValueError, match="rank"):
        LoRALinear(nn.Linear(2, 2), rank=0)
    with pytest.raises(ValueError, match="splits"):
        LoRALinear(nn.Linear(2, 4), splits=(1, 2))


# --------------------------------------------------------------------------- parity with peft


def test_parity_with_peft_lora_on_a_hugging_face_bert():
    """peft's LoRA on BertModel's query/key/value = ours on the imported Encoder's fused qkv (float64)."""
    peft = pytest.importorskip("peft", reason="peft is not installed (pip install peft; it is in the test extra)")
    transformers = pytest.importorskip("transformers")
    from attnlab.interop import from_transformers

    torch.manual_seed(0)
    cfg = transformers.BertConfig(
        vocab_size=50,
        hidden_size=24,
        num_hidden_layers=2,
        num_attention_heads=3,
        intermediate_size=48,
        max_position_embeddings=20,
        attn_implementation="eager",
        hidden_dropout_prob=0.0,
        attention_probs_dropout_prob=0.0,
    )
    hf = transformers.BertModel(cfg).eval()
    ours = from_transformers(hf).eval()
    hf, ours = hf.double(), ours.double()
    rank, alpha = 4, 8
    hf_lora = peft.get_peft_model(
        hf, peft.LoraConfig(r=rank, lora_alpha=alpha, lora_dropout=0.0, target_modules=["query", "key", "value"])
    )
    apply_lora(ours, rank=rank, alpha=alpha)
    g = torch.Generator().manual_seed(3)
    for i in range(cfg.num_hidden_layers):
        attn = hf_lora.base_model.model.encoder.layer[i].attention.self
        parts = [attn.query, attn.key, attn.value]
        with torch.no_grad():
            for p in parts:  # B starts at zero in both: make the update non-trivial
                p.lora_B["default"].weight.copy_(torch.randn(p.lora_B["default"].weight.shape, generator=g) * 0.3)
            layer = ours.get_submodule(f"blocks.{i}.attn.qkv")
            layer.lora_A.copy_(torch.cat([p.lora_A["default"].weight for p in parts], dim=0))
            layer.lora_B.copy_(torch.cat([p.lora_B["default"].weight for p in parts], dim=0))
    ids = torch.randint(5, 50, (3, 11))
    mask = torch.ones_like(ids)
    mask[1, 7:] = 0
    mask[2, 4:] = 0
    ours_out = ours.encode(ids, mask)
    hf_out = hf_lora(input_ids=ids, attention_mask=mask).last_hidden_state
    real = mask.bool()
    assert_close(ours_out[real], hf_out[real], rtol=0, atol=1e-6)
    weights = torch.randn(ours_out.shape, generator=g, dtype=torch.float64)
    ((ours_out * weights)[real]).sum().backward()
    ((hf_out * weights)[real]).sum().backward()
    for i in range(cfg.num_hidden_layers):
        attn = hf_lora.base_model.model.encoder.layer[i].attention.self
        parts = [attn.query, attn.key, attn.value]
        layer = ours.get_submodule(f"blocks.{i}.attn.qkv")
        assert_close(layer.lora_A.grad, torch.cat([p.lora_A["default"].weight.grad for p in parts]), rtol=0, atol=1e-6)
        assert_close(layer.lora_B.grad, torch.cat([p.lora_B["default"].weight.grad for p in parts]), rtol=0, atol=1e-6)
    assert count_parameters(ours)[0] == sum(p.numel() for p in hf_lora.parameters() if p.requires_grad)

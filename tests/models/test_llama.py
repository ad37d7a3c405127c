"""Llama: parity with transformers' LlamaForCausalLM, config, presets, causality, KV cache, checkpoints, training."""

import pytest
import torch
from torch.testing import assert_close

from attnlab.config import from_dict, to_dict
from attnlab.decoding.protocol import CausalLM
from attnlab.errors import CheckpointError, ConfigError
from attnlab.generate import generate
from attnlab.models.llama import Llama, LlamaConfig
from attnlab.models.registry import load_model
from attnlab.nn.layers import RMSNorm, SwiGLU


def nano(**kw) -> LlamaConfig:
    return LlamaConfig.from_name("nano", vocab_size=37, **kw)


def tiny(**kw) -> LlamaConfig:
    """4 query heads sharing 2 key/value heads."""
    return LlamaConfig(
        **{**dict(vocab_size=37, max_seq_len=32, num_layers=2, num_heads=4, num_kv_heads=2, embed_dim=32), **kw}
    )


# ---------------------------------------------------------------------------
# Parity with Hugging Face
# ---------------------------------------------------------------------------


def random_hf_llama(transformers, seed=0, **overrides):
    torch.manual_seed(seed)
    config = dict(
        vocab_size=61,
        hidden_size=32,
        intermediate_size=48,
        num_hidden_layers=2,
        num_attention_heads=4,
        num_key_value_heads=2,
        max_position_embeddings=64,
        rms_norm_eps=1e-6,
        rope_theta=500.0,
    )
    config.update(overrides)
    hf = transformers.LlamaForCausalLM(transformers.LlamaConfig(**config)).eval()
    with torch.no_grad():  # HF initialises norms to one: randomise them so they are tested too
        for name, p in hf.named_parameters():
            if "norm" in name:
                p.normal_(1.0, 0.2)
    return hf


def copy_into_ours(hf) -> Llama:
    """Our Llama with HF's weights copied by hand (independent of attnlab.interop)."""
    c = hf.config
    ours = Llama(
        LlamaConfig(
            vocab_size=c.vocab_size,
            max_seq_len=c.max_position_embeddings,
            num_layers=c.num_hidden_layers,
            num_heads=c.num_attention_heads,
            num_kv_heads=c.num_key_value_heads,
            embed_dim=c.hidden_size,
            ff_dim=c.intermediate_size,
            tie_weights=c.tie_word_embeddings,
            layer_norm_eps=c.rms_norm_eps,
            rope_base=500.0,
            bias=c.attention_bias,
        )
    ).eval()
    hs = hf.state_dict()
    state = {"tok_emb.weight": hs["model.embed_tokens.weight"], "norm.weight": hs["model.norm.weight"]}
    if not c.tie_word_embeddings:
        state["lm_head.weight"] = hs["lm_head.weight"]
    for i in range(c.num_hidden_layers):
        h, b = f"model.layers.{i}.", f"blocks.{i}."
        for suffix in ("weight", "bias") if c.attention_bias else ("weight",):
            state[b + f"attn.qkv.{suffix}"] = torch.cat([hs[h + f"self_attn.{n}_proj.{suffix}"] for n in "qkv"])
            state[b + f"attn.out.{suffix}"] = hs[h + f"self_attn.o_proj.{suffix}"]
            for ours_name, hf_name in (("w_gate", "gate_proj"), ("w_up", "up_proj"), ("w_down", "down_proj")):
                state[b + f"ff.{ours_name}.{suffix}"] = hs[h + f"mlp.{hf_name}.{suffix}"]
        state[b + "norm1.weight"] = hs[h + "input_layernorm.weight"]
        state[b + "norm2.weight"] = hs[h + "post_attention_layernorm.weight"]
    missing = ours.load_state_dict(state, strict=False)
    assert not missing.unexpected_keys and set(missing.missing_keys) <= {"lm_head.weight"}
    return ours


@pytest.mark.parametrize("tie", [False, True])
@pytest.mark.parametrize("kv_heads", [2, 1, 4])
def test_logits_equal_transformers_llama(tie, kv_heads):
    transformers = pytest.importorskip("transformers")
    hf = random_hf_llama(transformers, tie_word_embeddings=tie, num_key_value_heads=kv_heads)
    ours = copy_into_ours(hf)
    assert ours.config.kv_heads == kv_heads and (ours.lm_head.weight is ours.tok_emb.weight) == tie
    x = torch.randint(0, 61, (3, 17))
    with torch.no_grad():
        assert_close(ours(x).logits, hf(x).logits, atol=1e-5, rtol=1e-5)


def test_logits_equal_transformers_llama_with_padding_and_biases():
    transformers = pytest.importorskip("transformers")
    hf = random_hf_llama(transformers, seed=1, attention_bias=True, mlp_bias=True)
    with torch.no_grad():
        for name, p in hf.named_parameters():
            if name.endswith("bias"):
                p.normal_(0.0, 0.1)
    ours = copy_into_ours(hf)
    x = torch.randint(0, 61, (3, 12))
    mask = torch.ones_like(x)
    mask[1, 8:] = 0  # right padding
    mask[2, :3] = 0  # left padding
    with torch.no_grad():
        a, b = ours(x, attention_mask=mask).logits, hf(x, attention_mask=mask).logits
    real = mask.bool()
    assert_close(a[real], b[real], atol=1e-5, rtol=1e-5)


def test_hidden_states_and_attentions_equal_transformers():
    transformers = pytest.importorskip("transformers")
    hf = random_hf_llama(transformers, seed=2)
    hf.config._attn_implementation = "eager"  # only the eager path returns attention weights
    ours = copy_into_ours(hf)
    x = torch.randint(0, 61, (2, 9))
    with torch.no_grad():
        a = ours(x, output_hidden_states=True, output_attentions=True)
        b = hf(x, output_hidden_states=True, output_attentions=True)
    assert len(a.hidden_states) == len(b.hidden_states) == 3
    for ha, hb in zip(a.hidden_states, b.hidden_states):
        assert_close(ha, hb, atol=1e-5, rtol=1e-5)
    for wa, wb in zip(a.attentions, b.attentions):
        assert wa.shape == (2, 4, 9, 9)
        assert_close(wa, wb, atol=1e-5, rtol=1e-5)


# ---------------------------------------------------------------------------
# Config
# ---------------------------------------------------------------------------


def test_presets_and_defaults():
    baby = LlamaConfig.from_name("baby")
    assert (baby.num_layers, baby.num_heads, baby.num_kv_heads, baby.embed_dim, baby.max_seq_len) == (4, 4, 2, 128, 64)
    assert (baby.positional, baby.activation, baby.bias, baby.tie_weights) == ("rotary", "silu", False, False)
    assert baby.hidden_dim == 352  # 2/3 * 4 * 128 = 341.3 -> multiple of 32
    small = LlamaConfig.from_name("small")
    assert (small.num_layers, small.num_heads, small.embed_dim, small.max_seq_len) == (6, 6, 384, 256)
    assert small.hidden_dim == 1024  # 2/3 * 4 * 384 exactly
    assert LlamaConfig(num_kv_heads=None).kv_heads == 4 and LlamaConfig(ff_dim=100).hidden_dim == 100
    with pytest.raises(ConfigError, match="unknown LLaMA preset"):
        LlamaConfig.from_name("huge")
    kw = baby.block_kwargs()
    assert (kw["norm"], kw["feed_forward"], kw["num_kv_heads"], kw["hidden_dim"]) == ("rms", "swiglu", 2, 352)


def test_config_errors():
    with pytest.raises(
        ConfigError, match=r"model.num_kv_heads \(3\) must be at least 1 and divide model.num_heads \(4\)"
    ):
        LlamaConfig(num_heads=4, num_kv_heads=3)
    with pytest.raises(ConfigError, match="num_kv_heads"):
        LlamaConfig(num_kv_heads=0)
    with pytest.raises(ConfigError, match="divisible"):
        LlamaConfig(embed_dim=30, num_heads=4)
    with pytest.raises(ConfigError, match="multiple_of"):
        LlamaConfig(multiple_of=0)
    with pytest.raises(ConfigError, match="positional"):
        from_dict(LlamaConfig, {**to_dict(LlamaConfig()), "positional": "learned"}, section="model")
    assert from_dict(LlamaConfig, to_dict(tiny()), section="model") == tiny()


# ---------------------------------------------------------------------------
# The model
# ---------------------------------------------------------------------------


def test_structure_and_parameter_count():
    model = Llama(tiny())
    assert isinstance(model, CausalLM) and model.model_type == "llama"
    block = model.blocks[0]
    assert isinstance(block.norm1, RMSNorm) and isinstance(block.ff, SwiGLU) and isinstance(model.norm, RMSNorm)
    assert not any(name.endswith("bias") for name, _ in model.named_parameters())
    C, F, L, V, D, G = 32, 96, 2, 37, 8, 2
    per_block = (C + 2 * G * D) * C + C * C + 3 * C * F + 2 * C  # qkv, out, SwiGLU, two RMSNorm gains
    assert tuple(block.attn.qkv.weight.shape) == (C + 2 * G * D, C)
    assert model.num_parameters() == V * C + L * per_block + C + V * C  # untied head
    tied = Llama(tiny(tie_weights=True))
    assert tied.lm_head.weight is tied.tok_emb.weight and tied.num_parameters() == model.num_parameters() - V * C


def test_initialisation_scales_the_residual_projections():
    torch.manual_seed(0)
    model = Llama(LlamaConfig.from_name("baby", vocab_size=65))
    block = model.blocks[0]
    residual_std = 0.02 / (2 * 4) ** 0.5
    assert abs(block.ff.w_down.weight.std().item() - residual_std) < 1e-3
    assert abs(block.attn.out.weight.std().item() - residual_std) < 1e-3
    assert abs(block.ff.w_gate.weight.std().item() - 0.02) < 1e-3
    assert torch.equal(block.norm1.weight, torch.ones(128)) and torch.equal(model.norm.weight, torch.ones(128))


def test_future_tokens_never_change_past_logits():
    torch.manual_seed(1)
    model = Llama(tiny()).eval()
    x = torch.randint(0, 37, (1, 12))
    x2 = x.clone()
    x2[0, 7:] = torch.randint(0, 37, (5,))
    assert_close(model(x).logits[:, :7], model(x2).logits[:, :7])
    assert not torch.allclose(model(x).logits[:, 8:], model(x2).logits[:, 8:])


def test_naive_and_fused_attention_agree():
    torch.manual_seed(2)
    model = Llama(tiny()).eval()
    x = torch.randint(0, 37, (2, 10))
    mask = torch.ones_like(x)
    mask[0, -3:] = 0
    fused = model(x, attention_mask=mask).logits
    for block in model.blocks:
        block.attn.impl = "naive"
    assert_close(model(x, attention_mask=mask).logits, fused, atol=1e-5, rtol=1e-5)


@pytest.mark.parametrize("kv_heads", [1, 2, 4])
def test_kv_cache_forward_equals_full_forward(kv_heads):
    torch.manual_seed(3)
    model = Llama(tiny(num_kv_heads=kv_heads)).eval()
    x = torch.randint(0, 37, (2, 16))
    full = model(x).logits
    cache = model.new_cache()
    pieces = [model(x[:, :5], cache=cache).logits] + [model(x[:, t : t + 1], cache=cache).logits for t in range(5, 16)]
    assert_close(torch.cat(pieces, 1), full, atol=1e-5, rtol=1e-5)
    assert cache.length == 16 and tuple(cache.layers[0].k.shape) == (2, kv_heads, 16, 8)  # the cache keeps G heads


def test_generation_with_cache_equals_without():
    torch.manual_seed(4)
    model = Llama(tiny()).eval()
    prompt = torch.randint(0, 37, (2, 5))
    with_cache = generate(model, prompt, max_new_tokens=40, temperature=0, use_cache=True)  # slides past max_seq_len
    without = generate(model, prompt, max_new_tokens=40, temperature=0, use_cache=False)
    assert with_cache.shape == (2, 45) and with_cache.tolist() == without.tolist()


def test_trace_and_hidden_states():
    model = Llama(tiny()).eval()
    x = torch.randint(0, 37, (2, 9))
    trace: list = []
    out = model(x, output_hidden_states=True, trace=trace)
    assert len(out.hidden_states) == 3 and len(trace) == 2
    assert_close(trace[0]["after_ff"], out.hidden_states[1])
    assert_close(model.lm_head(out.hidden_states[-1]), out.logits)
    assert_close(model.norm(trace[-1]["after_ff"]), out.hidden_states[-1])
    assert model(x, last_only=True).logits.shape == (2, 1, 37)


def test_checkpoint_round_trip(tmp_path):
    from attnlab.tokenizers import CharTokenizer

    torch.manual_seed(5)
    model = Llama(tiny(bias=True)).eval()
    tok = CharTokenizer(list("abcdefghijklmnopqrstuvwxyz0123456789 "))
    model.save(tmp_path / "ck", tokenizer=tok)
    loaded, tok2 = load_model(tmp_path / "ck")
    assert isinstance(loaded, Llama) and loaded.config == model.config
    x = torch.randint(0, 37, (1, 8))
    assert_close(loaded(x).logits, model(x).logits)
    assert tok2.encode("hello 42") == tok.encode("hello 42")
    assert Llama.from_checkpoint(tmp_path / "ck").config.num_kv_heads == 2
    Llama(nano(tie_weights=True)).save(tmp_path / "tied")
    tied = Llama.from_checkpoint(tmp_path / "tied")
    assert tied.lm_head.weight is tied.tok_emb.weight  # tying survives the round trip
    with pytest.raises(CheckpointError, match="needs gpt"):
        load_model(tmp_path / "ck", expect="gpt")


def test_tiny_model_trains():
    torch.manual_seed(6)
    model = Llama(nano())
    x = torch.randint(0, 37, (4, 16))
    y = torch.roll(x, -1, 1)
    y[:, -1] = -100
    opt = torch.optim.AdamW(model.parameters(), lr=3e-3)
    losses = []
    for _ in range(100):
        loss = model(x, y).loss
        losses.append(loss.item())
        opt.zero_grad()
        loss.backward()
        opt.step()
    assert all(p.grad is not None for p in model.parameters())
    assert losses[0] > 3.0 and losses[-1] < 0.2

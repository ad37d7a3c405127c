"""LLaMA <-> attnlab Llama: import parity, export that transformers loads, `attnlab convert` both ways."""

import dataclasses
import json

import pytest
import torch
from torch.testing import assert_close

from attnlab.cli import main
from attnlab.errors import CheckpointError
from attnlab.generate import generate
from attnlab.interop import export_llama, from_pretrained, from_transformers
from attnlab.interop.llama import llama_config_to_attnlab
from attnlab.interop.pretrained import EXPORTERS, SUPPORTED_MODEL_TYPES, convert_from_hf, convert_to_hf
from attnlab.models.llama import Llama, LlamaConfig
from attnlab.models.registry import load_model

transformers = pytest.importorskip("transformers")


def random_llama(seed=0, **overrides):
    torch.manual_seed(seed)
    config = dict(
        vocab_size=61,
        hidden_size=32,
        intermediate_size=48,
        num_hidden_layers=2,
        num_attention_heads=4,
        num_key_value_heads=2,
        max_position_embeddings=48,
        bos_token_id=0,
        eos_token_id=0,
        rope_theta=1000.0,
    )
    config.update(overrides)
    model = transformers.LlamaForCausalLM(transformers.LlamaConfig(**config)).eval()
    with torch.no_grad():
        for name, p in model.named_parameters():
            if "norm" in name:
                p.normal_(1.0, 0.2)
            elif name.endswith("bias"):
                p.normal_(0.0, 0.1)
    return model


def hf_greedy(model, ids, n):
    return model.generate(
        ids, max_new_tokens=n, do_sample=False, attention_mask=torch.ones_like(ids), pad_token_id=0, eos_token_id=None
    )


@pytest.fixture(scope="module")
def tiny_llama_folder(tmp_path_factory):
    """A random LlamaForCausalLM saved HF style, with a character-level tokenizer.json."""
    from attnlab.interop.gpt2 import char_tokenizer_to_hf
    from attnlab.tokenizers import CharTokenizer

    tokenizer = CharTokenizer(list("abcdefghijklmnopqrstuvwxyz .,\n"))
    model = random_llama(seed=7, vocab_size=tokenizer.vocab_size)
    folder = tmp_path_factory.mktemp("tiny-llama")
    model.save_pretrained(folder)
    char_tokenizer_to_hf(tokenizer).save(str(folder / "tokenizer.json"))
    return folder


@pytest.mark.parametrize(
    "overrides",
    [dict(), dict(tie_word_embeddings=True), dict(attention_bias=True, mlp_bias=True), dict(num_key_value_heads=1)],
)
def test_import_gives_same_logits_and_greedy_tokens(overrides):
    hf = random_llama(**overrides)
    ours = from_transformers(hf)
    assert isinstance(ours, Llama)
    c = ours.config
    assert c.kv_heads == hf.config.num_key_value_heads
    assert (c.rope_base, c.layer_norm_eps, c.hidden_dim) == (1000.0, 1e-6, 48)
    assert c.tie_weights == hf.config.tie_word_embeddings and c.bias == hf.config.attention_bias
    x = torch.randint(0, 61, (3, 17))
    with torch.no_grad():
        assert_close(ours(x).logits, hf(x).logits, atol=1e-5, rtol=1e-5)
    prompt = x[:1, :5]
    assert generate(ours, prompt, max_new_tokens=20, temperature=0).tolist() == hf_greedy(hf, prompt, 20).tolist()


def test_unsupported_llama_configs_are_refused():
    base = transformers.LlamaConfig(hidden_size=32, num_attention_heads=4, num_key_value_heads=2).to_dict()
    with pytest.raises(CheckpointError, match="rope scaling 'llama3'"):
        llama_config_to_attnlab({**base, "rope_parameters": {"rope_type": "llama3", "rope_theta": 1e4, "factor": 8.0}})
    with pytest.raises(CheckpointError, match="rope scaling 'linear'"):
        llama_config_to_attnlab({**base, "rope_parameters": None, "rope_scaling": {"type": "linear", "factor": 2.0}})
    with pytest.raises(CheckpointError, match="head_dim"):
        llama_config_to_attnlab({**base, "head_dim": 16})
    with pytest.raises(CheckpointError, match="mlp_bias"):
        llama_config_to_attnlab({**base, "attention_bias": True, "mlp_bias": False})
    with pytest.raises(CheckpointError, match="activation"):
        llama_config_to_attnlab({**base, "hidden_act": "mish"})
    older = {**base, "rope_parameters": None, "rope_theta": 5e5}  # transformers < 5 spelling
    assert llama_config_to_attnlab(older).rope_base == 5e5


@pytest.mark.parametrize(
    "kwargs", [dict(), dict(tie_weights=True), dict(bias=True), dict(num_kv_heads=None), dict(activation="gelu_tanh")]
)
def test_export_loads_in_transformers_with_same_logits_and_tokens(tmp_path, kwargs):
    torch.manual_seed(4)
    ours = Llama(LlamaConfig.from_name("nano", vocab_size=29, rope_base=300.0, **kwargs)).eval()
    with torch.no_grad():  # non-trivial norms and biases, so that a dropped one would show
        for name, p in ours.named_parameters():
            p.add_(torch.randn_like(p) * (0.2 if "norm" in name else 0.05))
    export_llama(ours, tmp_path / "hf")
    config = json.loads((tmp_path / "hf" / "config.json").read_text())
    assert config["architectures"] == ["LlamaForCausalLM"] and config["model_type"] == "llama"
    hf = transformers.LlamaForCausalLM.from_pretrained(tmp_path / "hf").eval()
    assert hf.config.num_key_value_heads == ours.config.kv_heads
    x = torch.randint(0, 29, (2, 12))
    with torch.no_grad():
        assert_close(hf(x).logits, ours(x).logits, atol=1e-5, rtol=1e-5)
    prompt = x[:1, :4]
    assert hf_greedy(hf, prompt, 15).tolist() == generate(ours, prompt, max_new_tokens=15, temperature=0).tolist()
    back, _ = from_pretrained(tmp_path / "hf")  # and back again
    explicit = dataclasses.replace(ours.config, ff_dim=ours.config.hidden_dim, num_kv_heads=ours.config.kv_heads)
    assert back.config == explicit  # the defaults come back spelled out
    assert_close(back(x).logits, ours(x).logits)


def test_export_refuses_what_hugging_face_llama_cannot_express(tmp_path):
    with pytest.raises(CheckpointError, match="positional=none"):
        export_llama(Llama(LlamaConfig.from_name("nano", positional="none")), tmp_path / "a")
    with pytest.raises(CheckpointError, match="post-norm"):
        export_llama(Llama(LlamaConfig.from_name("nano", norm_first=False)), tmp_path / "b")
    assert not (tmp_path / "a" / "config.json").exists()


def test_convert_functions_both_ways(tiny_llama_folder, tmp_path):
    assert "llama" in SUPPORTED_MODEL_TYPES and set(EXPORTERS) == {"gpt", "llama"}
    imported = convert_from_hf(tiny_llama_folder, tmp_path / "ck")
    assert imported.hf_model_type == "llama" and imported.architecture == "LlamaForCausalLM"
    model, tokenizer = load_model(tmp_path / "ck", expect="llama")
    hf = transformers.LlamaForCausalLM.from_pretrained(tiny_llama_folder).eval()
    ids = torch.tensor([tokenizer.encode("the cat sat.")])
    with torch.no_grad():
        assert_close(model(ids).logits, hf(ids).logits, atol=1e-5, rtol=1e-5)
    out = convert_to_hf(tmp_path / "ck", tmp_path / "hf")
    again = transformers.LlamaForCausalLM.from_pretrained(out).eval()
    hf_tokenizer = transformers.AutoTokenizer.from_pretrained(out)
    assert hf_tokenizer("the cat sat.")["input_ids"] == ids[0].tolist()
    with torch.no_grad():
        assert_close(again(ids).logits, hf(ids).logits, atol=1e-5, rtol=1e-5)


def test_attnlab_convert_command_line(tiny_llama_folder, tmp_path, capsys):
    ck, hf_out = tmp_path / "ck", tmp_path / "hf"
    assert main(["convert", "--from-hf", str(tiny_llama_folder), "--out", str(ck)]) == 0
    assert "LlamaForCausalLM" in capsys.readouterr().out
    meta = json.loads((ck / "config.json").read_text())
    assert meta["model_type"] == "llama" and meta["hf_architecture"] == "LlamaForCausalLM"
    assert main(["convert", "--to-hf", str(ck), "--out", str(hf_out)]) == 0
    assert "load with LlamaForCausalLM.from_pretrained" in capsys.readouterr().out
    model, _ = load_model(ck)
    hf = transformers.LlamaForCausalLM.from_pretrained(hf_out).eval()
    prompt = torch.tensor([[1, 2, 3, 4]])
    assert hf_greedy(hf, prompt, 10).tolist() == generate(model, prompt, max_new_tokens=10, temperature=0).tolist()
    capsys.readouterr()
    assert main(["convert", "--to-hf", str(ck), "--out", str(hf_out)]) == 2  # already holds a model
    assert "already holds a model" in capsys.readouterr().err

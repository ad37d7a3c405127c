"""GPT-2 <-> attnlab GPT: import parity (logits 1e-4, greedy tokens), export that transformers loads."""

import json

import pytest
import torch
from torch.testing import assert_close

from attnlab.errors import CheckpointError
from attnlab.generate import generate
from attnlab.interop import export_gpt2, from_pretrained, from_transformers
from attnlab.models.gpt import GPT, GPTConfig

transformers = pytest.importorskip("transformers")


def random_gpt2(seed=0, **overrides):
    torch.manual_seed(seed)
    config = dict(n_layer=2, n_head=4, n_embd=32, vocab_size=61, n_positions=48, bos_token_id=0, eos_token_id=0)
    config.update(overrides)
    return transformers.GPT2LMHeadModel(transformers.GPT2Config(**config)).eval()


def hf_greedy(model, ids, n):
    return model.generate(
        ids, max_new_tokens=n, do_sample=False, attention_mask=torch.ones_like(ids), pad_token_id=0, eos_token_id=None
    )


def test_import_gives_same_logits_and_greedy_tokens():
    hf = random_gpt2()
    ours = from_transformers(hf)
    c = ours.config
    assert (c.bias, c.activation, c.norm_first, c.tie_weights, c.positional) == (
        True,
        "gelu_tanh",
        True,
        True,
        "learned",
    )
    x = torch.randint(0, 61, (3, 17))
    with torch.no_grad():
        assert_close(ours(x).logits, hf(x).logits, atol=1e-4, rtol=1e-4)
    prompt = x[:1, :5]
    assert generate(ours, prompt, max_new_tokens=20, temperature=0).tolist() == hf_greedy(hf, prompt, 20).tolist()


def test_import_hidden_states_and_attentions_match():
    hf = random_gpt2(seed=3)
    hf.config._attn_implementation = "eager"  # only the eager path returns attention weights
    ours = from_transformers(hf)
    x = torch.randint(0, 61, (2, 9))
    with torch.no_grad():
        a = ours(x, output_hidden_states=True, output_attentions=True)
        b = hf(x, output_hidden_states=True, output_attentions=True)
    assert len(a.hidden_states) == len(b.hidden_states) == 3
    for ha, hb in zip(a.hidden_states, b.hidden_states):
        assert_close(ha, hb, atol=1e-4, rtol=1e-4)
    for wa, wb in zip(a.attentions, b.attentions):
        assert_close(wa, wb, atol=1e-5, rtol=1e-5)


@pytest.mark.parametrize(
    "flags",
    [
        dict(scale_attn_weights=False),
        dict(scale_attn_by_inverse_layer_idx=True),
        dict(activation_function="relu", n_inner=40),
    ],
)
def test_unusual_gpt2_configs_import_exactly(flags):
    hf = random_gpt2(seed=1, **flags)
    ours = from_transformers(hf)
    x = torch.randint(0, 61, (2, 11))
    with torch.no_grad():
        assert_close(ours(x).logits, hf(x).logits, atol=1e-4, rtol=1e-4)


def test_untied_head_imports():
    hf = random_gpt2(seed=2, tie_word_embeddings=False)
    with torch.no_grad():
        hf.lm_head.weight.normal_()
    ours = from_transformers(hf)
    assert not ours.config.tie_weights
    x = torch.randint(0, 61, (1, 8))
    with torch.no_grad():
        assert_close(ours(x).logits, hf(x).logits, atol=1e-4, rtol=1e-4)


def test_import_from_a_saved_folder(tiny_gpt2_folder):
    hf = transformers.GPT2LMHeadModel.from_pretrained(tiny_gpt2_folder).eval()
    ours, tokenizer = from_pretrained(tiny_gpt2_folder)
    assert isinstance(ours, GPT) and tokenizer is None  # the folder has no tokenizer files
    x = torch.randint(0, 61, (2, 10))
    with torch.no_grad():
        assert_close(ours(x).logits, hf(x).logits, atol=1e-4, rtol=1e-4)


@pytest.mark.parametrize(
    "kwargs",
    [dict(bias=True, activation="gelu_tanh"), dict(bias=False), dict(positional="sinusoidal"), dict(tie_weights=False)],
)
def test_export_loads_in_transformers_with_same_logits_and_tokens(tmp_path, kwargs):
    torch.manual_seed(4)
    ours = GPT(GPTConfig.from_name("nano", vocab_size=29, **kwargs)).eval()
    if "bias" not in kwargs or kwargs["bias"]:
        with torch.no_grad():  # non-zero biases so that a dropped bias would show
            for name, p in ours.named_parameters():
                if name.endswith("bias"):
                    p.normal_(0, 0.1)
    export_gpt2(ours, tmp_path / "hf")
    config = json.loads((tmp_path / "hf" / "config.json").read_text())
    assert config["architectures"] == ["GPT2LMHeadModel"] and config["model_type"] == "gpt2"
    hf = transformers.GPT2LMHeadModel.from_pretrained(tmp_path / "hf").eval()
    x = torch.randint(0, 29, (2, 12))
    with torch.no_grad():
        assert_close(hf(x).logits, ours(x).logits, atol=1e-4, rtol=1e-4)
    prompt = x[:1, :4]
    assert hf_greedy(hf, prompt, 15).tolist() == generate(ours, prompt, max_new_tokens=15, temperature=0).tolist()


def test_export_writes_a_char_tokenizer_transformers_can_use(tmp_path):
    from attnlab.tokenizers import CharTokenizer

    tokenizer = CharTokenizer.train("the cat sat on the mat\nand the dog ran.", specials=["<unk>"])
    torch.manual_seed(5)
    ours = GPT(GPTConfig.from_name("nano", vocab_size=tokenizer.vocab_size)).eval()
    export_gpt2(ours, tmp_path / "hf", tokenizer)
    hf_tokenizer = transformers.AutoTokenizer.from_pretrained(tmp_path / "hf")
    text = "the dog sat\non a mat"
    assert hf_tokenizer(text)["input_ids"] == tokenizer.encode(text)
    assert hf_tokenizer.decode(tokenizer.encode(text)) == text
    assert hf_tokenizer("zebra")["input_ids"] == tokenizer.encode("zebra")  # unknown characters -> <unk> in both


def test_export_round_trip_through_import(tmp_path):
    torch.manual_seed(6)
    ours = GPT(GPTConfig.from_name("nano", vocab_size=31, bias=True)).eval()
    export_gpt2(ours, tmp_path / "hf")
    back, _ = from_pretrained(tmp_path / "hf")
    x = torch.randint(0, 31, (1, 9))
    assert_close(back(x).logits, ours(x).logits, atol=1e-5, rtol=1e-5)


def test_export_refuses_what_gpt2_cannot_express(tmp_path):
    with pytest.raises(CheckpointError, match="rotary"):
        export_gpt2(GPT(GPTConfig.from_name("nano", positional="rotary")), tmp_path / "a")
    with pytest.raises(CheckpointError, match="post-norm"):
        export_gpt2(GPT(GPTConfig.from_name("nano", norm_first=False)), tmp_path / "b")
    assert not (tmp_path / "a" / "config.json").exists()

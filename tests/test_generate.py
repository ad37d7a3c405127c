"""Generation: KV cache equals no cache, cropping, empty prompts, sampling filters, bad settings."""

import pytest
import torch
from torch.testing import assert_close

from attnlab.errors import ConfigError, UnknownCharactersError
from attnlab.generate import SamplingConfig, filter_logits, generate, generate_text, next_token_distribution
from attnlab.models.gpt import GPT, GPTConfig
from attnlab.tokenizers import CharTokenizer

TOK = CharTokenizer(list("\n abcdefghijklmnopqrstuvwxyz.,"))


@pytest.fixture(scope="module")
def model():
    torch.manual_seed(0)
    return GPT(GPTConfig.from_name("nano", vocab_size=TOK.vocab_size, max_seq_len=16)).eval()


@pytest.mark.parametrize("positional", ["learned", "rotary"])
def test_kv_cache_generation_equals_no_cache_even_past_the_context(positional):
    torch.manual_seed(1)
    m = GPT(GPTConfig.from_name("nano", vocab_size=TOK.vocab_size, max_seq_len=16, positional=positional)).eval()
    prompt = torch.randint(0, TOK.vocab_size, (2, 5))
    for temperature in (0.0, 1.0):
        a = generate(m, prompt, max_new_tokens=30, temperature=temperature, seed=3, use_cache=True)
        b = generate(m, prompt, max_new_tokens=30, temperature=temperature, seed=3, use_cache=False)
        assert a.shape == (2, 35)
        assert torch.equal(a, b)


def test_prompt_longer_than_context_keeps_its_last_tokens(model):
    long = torch.randint(0, TOK.vocab_size, (1, 40))
    out = generate(model, long, max_new_tokens=3, temperature=0)
    same = generate(model, long[:, -16:], max_new_tokens=3, temperature=0)
    assert torch.equal(out[:, -3:], same[:, -3:])


def test_empty_prompt_is_allowed(model):
    text = generate_text(model, TOK, "", max_new_tokens=10, temperature=1.0, seed=0)
    assert len(text) == 10


def test_unknown_characters_are_named(model):
    with pytest.raises(UnknownCharactersError, match="'Q'.*'€'|'€'.*'Q'"):
        generate_text(model, TOK, "hello Q€", max_new_tokens=2)


@pytest.mark.parametrize("temperature", [0.0, -1.0, 1e-9])
def test_temperature_at_or_below_zero_is_greedy_never_nan(model, temperature):
    prompt = torch.tensor([TOK.encode("the ")])
    out = generate(model, prompt, max_new_tokens=8, temperature=temperature, seed=0)
    greedy = generate(model, prompt, max_new_tokens=8, temperature=0.0)
    if temperature <= 0:
        assert torch.equal(out, greedy)
    logits = model(prompt).logits[:, -1]
    probs = next_token_distribution(logits, SamplingConfig(temperature=temperature))
    assert torch.isfinite(probs).all()


def test_top_k_one_is_greedy(model):
    prompt = torch.tensor([TOK.encode("a")])
    assert torch.equal(
        generate(model, prompt, max_new_tokens=12, temperature=1.5, top_k=1, seed=4),
        generate(model, prompt, max_new_tokens=12, temperature=0.0),
    )


def test_top_p_filter_by_hand():
    # probabilities 0.5, 0.3, 0.15, 0.05 -> top_p 0.75 keeps the first two (0.5 < 0.75 <= 0.8)
    logits = torch.log(torch.tensor([[0.5, 0.3, 0.15, 0.05]]))
    kept = torch.isfinite(filter_logits(logits, top_p=0.75))
    assert kept.tolist() == [[True, True, False, False]]
    assert torch.isfinite(filter_logits(logits, top_p=0.01)).tolist() == [[True, False, False, False]]
    assert torch.isfinite(filter_logits(logits, top_k=3)).tolist() == [[True, True, True, False]]


def test_sampling_is_seeded(model):
    prompt = torch.tensor([TOK.encode("a")])
    a = generate(model, prompt, max_new_tokens=20, temperature=1.0, seed=7)
    b = generate(model, prompt, max_new_tokens=20, temperature=1.0, seed=7)
    c = generate(model, prompt, max_new_tokens=20, temperature=1.0, seed=8)
    assert torch.equal(a, b) and not torch.equal(a, c)


@pytest.mark.parametrize(
    "kwargs, message",
    [
        ({"top_p": 0.0}, "top_p"),
        ({"top_p": 1.5}, "top_p"),
        ({"top_k": 0}, "top_k"),
        ({"max_new_tokens": -1}, "max_new_tokens"),
        ({"temperature": float("nan")}, "temperature"),
    ],
)
def test_bad_sampling_settings(kwargs, message):
    with pytest.raises(ConfigError, match=message):
        SamplingConfig(**kwargs)


def test_distribution_sums_to_one(model):
    logits = model(torch.tensor([TOK.encode("ab")])).logits[:, -1]
    p = next_token_distribution(logits, SamplingConfig(temperature=0.7, top_k=5, top_p=0.9))
    assert_close(p.sum(-1), torch.ones(1))
    assert (p > 0).sum() <= 5

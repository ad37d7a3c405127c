"""The Generate page's computations (`attnlab.app.generation`): sliders, prompts, step-by-step generation."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch

from attnlab.app import generation
from attnlab.errors import ConfigError, DataError, UnknownCharactersError


@pytest.fixture(scope="module")
def gpt(trained_gpt):
    from attnlab.models.registry import load_model

    return load_model(trained_gpt, expect="gpt")


# --- sampling controls and prompts --------------------------------------------------------------------


def test_the_temperature_slider_starts_at_the_library_default():
    from attnlab.configs.sampling import SamplingConfig

    assert generation.DEFAULT_TEMPERATURE == SamplingConfig().temperature
    assert 0.0 <= generation.DEFAULT_TEMPERATURE <= generation.MAX_TEMPERATURE


def test_sampling_from_controls_maps_the_sliders():
    s = generation.sampling_from_controls(temperature=0.7, top_k=0, top_p=1.0, max_new_tokens=5, seed=3)
    assert (s.temperature, s.top_k, s.top_p, s.max_new_tokens, s.seed) == (0.7, None, None, 5, 3)
    s = generation.sampling_from_controls(temperature=0.0, top_k=4, top_p=0.5, max_new_tokens=1, seed=None)
    assert s.greedy and s.top_k == 4 and s.top_p == 0.5 and s.seed is None


@pytest.mark.parametrize(
    "changes, message",
    [
        ({"temperature": -0.1}, "temperature"),
        ({"temperature": 99.0}, "temperature"),
        ({"temperature": math.nan}, "temperature"),
        ({"top_p": 0.0}, "top-p"),
        ({"top_p": 1.5}, "top-p"),
        ({"top_k": -1}, "top-k"),
        ({"top_k": 2.5}, "top-k"),
        ({"max_new_tokens": 0}, "tokens to generate"),
        ({"max_new_tokens": generation.MAX_NEW_TOKENS + 1}, "tokens to generate"),
        ({"seed": -4}, "seed"),
    ],
)
def test_sampling_from_controls_rejects_absurd_values(changes, message):
    values = dict(temperature=1.0, top_k=0, top_p=1.0, max_new_tokens=10, seed=0) | changes
    with pytest.raises(ConfigError, match=message):
        generation.sampling_from_controls(**values)


def test_encode_prompt(gpt):
    _, tokenizer = gpt
    assert generation.encode_prompt(tokenizer, "The ") == tokenizer.encode("The ")
    with pytest.raises(DataError, match="empty"):
        generation.encode_prompt(tokenizer, "")
    with pytest.raises(UnknownCharactersError) as info:
        generation.encode_prompt(tokenizer, "caf\u00e9 \u2713")
    assert "\u2713" in info.value.chars


def test_text_ids_truncates_to_the_context(gpt):
    model, tokenizer = gpt
    long = "abc " * 20  # 80 characters, context 32
    ids, cut = generation.text_ids(model, tokenizer, long)
    assert cut and ids == tokenizer.encode(long)[-32:]
    with pytest.raises(DataError, match="context"):
        generation.text_ids(model, tokenizer, long, truncate=False)
    assert generation.text_ids(model, tokenizer, "abc") == (tokenizer.encode("abc"), False)


def test_display_token():
    assert (
        generation.display_token(" ") == "␣"
        and generation.display_token("\n") == "\\n"
        and generation.display_token("a") == "a"
    )


# --- generation step by step ------------------------------------------------------------------------------


def test_generate_steps_top_k_are_the_models_probabilities(gpt):
    """Each step's top-5 equal softmax(logits) of a fresh forward on the text so far."""
    model, tokenizer = gpt
    sampling = generation.sampling_from_controls(temperature=0.0, top_k=0, top_p=1.0, max_new_tokens=6, seed=None)
    result = generation.generate_steps(model, tokenizer, "The ", sampling)
    assert len(result.steps) == 6 and result.greedy
    ids = result.prompt_ids
    for step in result.steps:
        with torch.no_grad():
            probs = torch.softmax(model(torch.tensor([ids])).logits[0, -1].double(), -1)
        values, top = torch.topk(probs, 5)
        assert [c.token_id for c in step.raw_top] == top.tolist()
        np.testing.assert_allclose([c.prob for c in step.raw_top], values.numpy(), rtol=1e-5, atol=1e-6)
        assert step.token_id == top[0].item()  # greedy takes the most likely token
        assert step.top == step.raw_top  # greedy shows the model's own distribution
        ids = ids + [step.token_id]
    assert result.new_ids == ids[len(result.prompt_ids) :]
    assert result.text == "The " + tokenizer.decode(result.new_ids)


def test_generate_steps_sampling_matches_generate_text(gpt):
    from attnlab.generate import generate_text

    model, tokenizer = gpt
    sampling = generation.sampling_from_controls(temperature=1.3, top_k=12, top_p=0.9, max_new_tokens=20, seed=7)
    result = generation.generate_steps(model, tokenizer, "def ", sampling)
    assert result.text == generate_text(model, tokenizer, "def ", sampling)
    for step in result.steps:
        assert len(step.top) == 5
        probs = [c.prob for c in step.top]
        assert probs == sorted(probs, reverse=True)
        assert sum(c.prob > 0 for c in step.top) <= 12  # top-k leaves at most 12 candidates
        assert step.prob > 0  # the chosen token was allowed


def test_last_step_attention_is_the_last_query_row(gpt):
    model, tokenizer = gpt
    sampling = generation.sampling_from_controls(temperature=0.0, top_k=0, top_p=1.0, max_new_tokens=40, seed=None)
    result = generation.generate_steps(model, tokenizer, "x = ", sampling)  # 44 tokens > context 32
    attention = generation.last_step_attention(model, tokenizer, result)
    context = result.all_ids[:-1][-32:]
    with torch.no_grad():
        out = model(torch.tensor([context]), output_attentions=True)
    expected = torch.stack([a[0, :, -1, :] for a in out.attentions]).numpy()  # (L, H, S)
    np.testing.assert_allclose(attention.weights, expected, rtol=1e-6)
    np.testing.assert_allclose(attention.weights.sum(-1), 1.0, rtol=1e-5)
    assert attention.full.shape == (2, 2, 32, 32)
    assert len(attention.tokens) == 32 and attention.chosen == result.steps[-1].token

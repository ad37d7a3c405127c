"""The app's own figures (`attnlab.app.figures`), drawn from what the app modules compute."""

from __future__ import annotations

import numpy as np
import pytest

from attnlab.app import figures, generation


@pytest.fixture(scope="module")
def gpt(trained_gpt):
    from attnlab.models.registry import load_model

    return load_model(trained_gpt, expect="gpt")


# --- figures ---------------------------------------------------------------------------------------------------


def test_figures_draw_what_they_are_given(gpt, tiny_vit):
    from attnlab.analysis.lens import logit_lens, stream_norms, sublayer_effects

    model, tokenizer = gpt
    sampling = generation.sampling_from_controls(temperature=1.0, top_k=0, top_p=1.0, max_new_tokens=4, seed=1)
    result = generation.generate_steps(model, tokenizer, "ab", sampling)
    fig = figures.plot_step_distribution(result.steps[0])
    labels = [t.get_text() for t in fig.axes[0].get_yticklabels()]
    assert sum("(chosen)" in t for t in labels) == 1 and len(labels) >= 5
    attention = generation.last_step_attention(model, tokenizer, result)
    fig = figures.plot_last_step_attention(attention)
    assert fig.axes[0].images[0].get_array().shape == (4, len(attention.tokens))  # L * H rows
    ids = tokenizer.encode("The end")
    tokens = generation.token_labels(tokenizer, ids)
    lens = logit_lens(model, ids)
    vocab = generation.token_labels(tokenizer, range(model.config.vocab_size))
    fig = figures.plot_logit_lens(lens, tokens, vocab)
    assert len(fig.axes[0].texts) == 3 * len(ids)  # one top token per layer and position
    assert len(figures.plot_sublayer_effects(sublayer_effects(model, ids)).axes) == 2
    assert figures.plot_stream_norms(stream_norms(model, ids), tokens).axes[0].images[0].get_array().shape == (
        3,
        len(ids),
    )
    maps = {"rollout": np.full((4, 4), 1 / 16), "last layer": np.eye(4) / 4}
    fig = figures.plot_digit_attention(np.zeros((28, 28)), maps)
    assert [ax.get_title() for ax in fig.axes[:3]] == ["the image", "rollout", "last layer"]
    assert fig.axes[2].images[1].get_extent() == [-0.5, 27.5, 27.5, -0.5]  # patches cover the whole image
    fig = figures.plot_class_probabilities([0.1, 0.7, 0.2], ["a", "b", "c"], true_class=2)
    assert [b.get_height() for b in fig.axes[0].patches] == [0.1, 0.7, 0.2]
    png = figures.figure_png(fig)
    assert png[:8] == b"\x89PNG\r\n\x1a\n"

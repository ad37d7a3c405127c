"""What the learner sees on Generate and Attention: no stale heatmap, readable labels, an instructive MiniLM head."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from attnlab.app import figures, generation
from tests.app.apptest_checks import images, page_ok

GENERATE = "FormSubmitter:generate_form-Generate"
HEATMAP_DPI = 110  # what pages/generate.py renders the heatmap at
README = Path(__file__).resolve().parents[2] / "README.md"


def _nodes(block, path=()):
    """(delta path, node) of every element and block under `block`, depth first."""
    for index, child in sorted(getattr(block, "children", {}).items()):
        yield (*path, index), child
        yield from _nodes(child, (*path, index))


def _heatmap_slot(at):
    """Delta path and node of the slot after the "Attention of the last step" heading and its caption."""
    nodes = dict(_nodes(at._tree[0]))
    (heading,) = [p for p, n in nodes.items() if getattr(n, "type", "") == "subheader" and "last step" in n.value]
    path = (*heading[:-1], heading[-1] + 2)
    return path, nodes[path]


def _min_label_pixels(fig) -> float:
    """Smallest tick label of the figure, in screen pixels, on a page READABLE_FROM_PX wide."""
    ax = fig.axes[0]
    points = min(t.get_fontsize() for t in [*ax.get_xticklabels(), *ax.get_yticklabels()])
    return figures.label_pixels(points, fig.get_figwidth(), figures.READABLE_FROM_PX, HEATMAP_DPI)


def test_label_pixels_is_points_scaled_to_the_shown_width():
    assert figures.label_pixels(9, 10, 2000, 100) == pytest.approx(9 * 100 / 72)  # natural size: 1000 px
    assert figures.label_pixels(9, 10, 500, 100) == pytest.approx(9 * 100 / 72 / 2)  # shrunk to half


@pytest.mark.parametrize("keys", [8, 30, 200])
def test_last_step_heatmap_labels_stay_readable(keys):
    L, H = 4, 4
    rng = np.random.default_rng(0)
    weights = rng.random((L, H, keys))
    weights /= weights.sum(-1, keepdims=True)
    tokens = [f"t{i}" for i in range(keys)]
    attention = generation.LastStepAttention(tokens, weights, np.zeros((L, H, keys, keys)), "x")
    fig = figures.plot_last_step_attention(attention)
    shown = min(keys, figures.MAX_KEYS_SHOWN)
    labels = [t.get_text() for t in fig.axes[0].get_xticklabels()]
    assert labels == tokens[-shown:]  # the last keys, nearest the new token, each labelled
    np.testing.assert_allclose(fig.axes[0].images[0].get_array(), weights.reshape(L * H, keys)[:, -shown:])
    assert min(t.get_fontsize() for t in fig.axes[0].get_xticklabels()) >= figures.LABEL_POINTS
    assert _min_label_pixels(fig) >= figures.MIN_LABEL_PX
    if keys > shown:
        earlier = weights.reshape(L * H, keys)[:, : keys - shown].sum(1)
        xlabel = fig.axes[0].get_xlabel()
        assert f"last {shown} of {keys}" in xlabel and f"the {keys - shown} earlier" in xlabel
        assert f"{earlier.min():.0%}-{earlier.max():.0%}" in xlabel


def test_generate_heatmap_is_readable_and_never_stale(app, full_runs, monkeypatch):
    drawn = []
    draw = figures.plot_last_step_attention

    def recording(attention, *args, **kwargs):
        drawn.append((attention, draw(attention, *args, **kwargs)))
        return drawn[-1][1]

    monkeypatch.setattr(figures, "plot_last_step_attention", recording)
    at = app(full_runs)
    at.text_area(key="prompt").set_value("The function returns a list of the keys in the mapping. " * 2)
    at.slider(key="max_new_tokens").set_value(5)
    at.button(key=GENERATE).click().run()
    page_ok(at)
    ((attention, fig),) = drawn
    assert len(attention.tokens) == 32  # a long prompt fills the nano model's whole context
    assert _min_label_pixels(fig) >= figures.MIN_LABEL_PX
    path, slot = _heatmap_slot(at)
    assert slot.type == "image" and images(at) == 3  # the step close-up, the heatmap, the grid
    at.slider(key="step_view").set_value(2).run()  # another step: the heatmap is not drawn again
    page_ok(at)
    assert len(drawn) == 1 and _heatmap_slot(at)[1].type == "image"

    def still_drawing(*args, **kwargs):
        raise RuntimeError("the new heatmap is still being drawn")

    # a new generation, caught while its heatmap is being drawn: the text is new, and the slot where
    # the old heatmap was (the browser replaces what sits at the same place) now says "updating"
    monkeypatch.setattr(figures, "plot_last_step_attention", still_drawing)
    at.text_area(key="prompt").set_value("def ")
    at.button(key=GENERATE).click().run()
    assert [e.message for e in at.exception] == ["the new heatmap is still being drawn"]
    assert at.code[0].value.startswith("def ")
    new_path, slot = _heatmap_slot(at)
    assert new_path == path and slot.type == "caption" and "updating" in slot.value
    assert images(at) == 1  # only this generation's step close-up
    monkeypatch.setattr(figures, "plot_last_step_attention", recording)
    at.run()
    page_ok(at)
    assert _heatmap_slot(at)[1].type == "image" and drawn[-1][0].tokens[0] == "d"


def test_minilm_opens_on_the_head_of_notebook_06(app, tmp_path, minilm_installed):
    from attnlab.viz.models import attention_for_text, load_model_for_viz

    at = app(tmp_path / "no-runs", "attention")
    at.radio(key="attn_source").set_value("minilm").run()
    page_ok(at)
    text = at.text_input(key="attn_text_minilm").value
    assert text in README.read_text()  # the README's sentence
    layer, head = at.selectbox(key="attn_layer_minilm").value, at.selectbox(key="attn_head_minilm").value
    # notebook 06's head: the one whose query "it" puts the most weight on "animal"
    model, tokenizer = load_model_for_viz("minilm")
    labels, weights = attention_for_text(model, tokenizer, text)
    query, key = labels.index("it"), labels.index("animal")
    assert (layer, head) == np.unravel_index(np.argmax(weights[:, :, query, key]), weights.shape[:2])
    assert (layer, head) != (weights.shape[0] - 1, 0)  # not the old default
    sinks = [c.value for c in at.caption if "Attention sinks" in c.value]
    assert sinks and "[CLS]" in sinks[0] and f"Layer {layer}, head {head}" in sinks[0]
    assert images(at) == 1

"""The Experiments page (activation patching, head ablation) through AppTest, and its logic module.

Expected values are computed in the test with the library (`attnlab.interp`, `generate_text`)
on a freshly loaded copy of the checkpoint, never typed in.
"""

from __future__ import annotations

import numpy as np
import pytest
import torch

from attnlab.app import experiments
from attnlab.errors import DataError
from tests.app.apptest_checks import images, messages, page_ok

PAGE = "experiments"


def _metrics(at) -> dict[str, str]:
    return {m.label: m.value for m in at.metric}


def _labels(tokenizer, text: str) -> list[str]:
    from attnlab.app.generation import token_labels

    return token_labels(tokenizer, tokenizer.encode(text))


def _losses(at) -> list[float]:
    return [float(m.value) for m in at.metric if m.label.startswith("Loss on the prompt")]


@pytest.fixture(scope="module")
def gpt(trained_gpt):
    from attnlab.models.registry import load_model

    model, tokenizer = load_model(trained_gpt, expect="gpt")
    return model.eval(), tokenizer


# --- patching ----------------------------------------------------------------------------------------------


def test_patching_renders_both_heatmaps(app, full_runs, gpt):
    from attnlab.interp.patching import logit_diff, model_logits

    at = app(full_runs, PAGE)
    page_ok(at)
    assert at.radio(key="exp_section").value == "Patching"
    assert images(at) == 2  # residual stream (layers x positions) and heads (layers x heads)
    clean, corrupted = at.text_input(key="exp_clean").value, at.text_input(key="exp_corrupted").value
    counts = [c.value for c in at.caption if "tokens**" in c.value]
    assert counts == [f"**{len(t)} tokens**: " + " | ".join(_labels(gpt[1], t)) for t in (clean, corrupted)]
    assert any("(LD_patched − LD_corrupted) / (LD_clean − LD_corrupted)" in c.value for c in at.caption)
    # the shown clean logit difference is the library's, for the default answer / wrong token
    model, tokenizer = gpt
    ids = torch.tensor([tokenizer.encode(clean)])
    answer, wrong, _ = experiments.default_answers(model, tokenizer.encode(clean), tokenizer.encode(corrupted))
    with torch.no_grad():
        expected = float(logit_diff(model_logits(model, ids), answer, wrong)[0])
    shown = next(v for k, v in _metrics(at).items() if k.endswith(", clean"))
    assert float(shown) == pytest.approx(expected, abs=1e-3)


def test_patching_mismatched_token_counts(app, full_runs):
    at = app(full_runs, PAGE)
    at.text_input(key="exp_clean").set_value("the key, the ke")
    at.text_input(key="exp_corrupted").set_value("the box, the b").run()
    page_ok(at)
    assert "the clean prompt has 15 tokens and the corrupted prompt 14" in messages(at)
    assert "same number of tokens" in messages(at)
    assert [c.value.split("**")[1] for c in at.caption if "tokens**" in c.value] == ["15 tokens", "14 tokens"]
    assert images(at) == 0


def test_patching_friendly_messages(app, full_runs):
    at = app(full_runs, PAGE)
    at.text_input(key="exp_answer").set_value("ab").run()
    page_ok(at)
    assert "is 2 tokens" in messages(at) and "single token" in messages(at) and images(at) == 0
    at.text_input(key="exp_answer").set_value("e")
    at.text_input(key="exp_wrong").set_value("e").run()
    page_ok(at)
    assert "same token" in messages(at)
    at.text_input(key="exp_wrong").set_value("y").run()
    page_ok(at)
    assert images(at) == 2 and any("logit[e] − logit[y]" in c.value for c in at.caption)
    at.text_input(key="exp_clean").set_value("").run()
    page_ok(at)
    assert "Clean prompt: the prompt is empty" in messages(at)
    at.text_input(key="exp_clean").set_value("x" * 40).run()
    page_ok(at)
    assert "40 tokens long but the model's context is 32" in messages(at)
    at.text_input(key="exp_corrupted").set_value("schön ✓").run()
    page_ok(at)
    assert "Corrupted prompt:" in messages(at) and "'✓'" in messages(at)


# --- ablation ----------------------------------------------------------------------------------------------


def test_ablating_a_head_changes_the_loss_and_the_figure_renders(app, full_runs, gpt):
    from attnlab.generate import SamplingConfig, generate_text
    from attnlab.interp import head_ablation_hooks, hooks, run_with_hooks
    from attnlab.interp.attribution import lm_loss

    at = app(full_runs, PAGE)
    at.radio(key="exp_section").set_value("Ablation").run()
    page_ok(at)
    assert at.radio(key="exp_kind").options == ["zero", "mean"]  # no resample during generation
    before = _losses(at)
    assert len(before) == 2 and before[0] == before[1]  # no head off yet
    assert images(at) == 1  # the loss change per head
    at.slider(key="exp_new_tokens").set_value(12)
    at.checkbox(key="exp_off_L0H1").check()
    at.checkbox(key="exp_off_L1H0").check().run()
    page_ok(at)
    on, off = _losses(at)
    assert on == before[0] and off != on
    assert [s.value for s in at.subheader] == ["Every head on", "L0H1, L1H0 off"]
    assert images(at) == 1
    # the shown numbers and texts are the library's
    model, tokenizer = gpt
    prompt = at.text_input(key="exp_prompt").value
    ids = torch.tensor([tokenizer.encode(prompt)])
    fwd = head_ablation_hooks(model, [(0, 1), (1, 0)], kind="zero")
    with torch.no_grad():
        assert on == pytest.approx(float(lm_loss(run_with_hooks(model, ids), ids)), abs=1e-4)
        assert off == pytest.approx(float(lm_loss(run_with_hooks(model, ids, fwd_hooks=fwd), ids)), abs=1e-4)
    sampling = SamplingConfig(max_new_tokens=12, temperature=0.0)
    with hooks(model, fwd):
        expected_off = generate_text(model, tokenizer, prompt, sampling)
    expected_on = generate_text(model, tokenizer, prompt, sampling)
    texts = {h.value for h in at.html if 'data-testid="ablation-' in h.value}
    assert any(expected_on[len(prompt) :] in t and "ablation-on" in t for t in texts)
    assert any(expected_off[len(prompt) :] in t and "ablation-off" in t for t in texts)


def test_mean_ablation_says_what_it_averages(app, full_runs):
    at = app(full_runs, PAGE)
    at.radio(key="exp_section").set_value("Ablation").run()
    at.radio(key="exp_kind").set_value("mean")
    at.checkbox(key="exp_off_L0H0").check().run()
    page_ok(at)
    assert any("of `pydoc`, the text this checkpoint was trained on" in c.value for c in at.caption)
    on, off = _losses(at)
    assert off != on and images(at) == 1


def test_ablation_friendly_messages(app, full_runs):
    at = app(full_runs, PAGE)
    at.radio(key="exp_section").set_value("Ablation").run()
    for text, message in [
        ("", "the prompt is empty"),
        ("x" * 40, "context is 32"),
        ("x", "at least 2 tokens"),
        ("naïve ✓", "does not know"),
    ]:
        at.text_input(key="exp_prompt").set_value(text).run()
        page_ok(at)
        assert message in messages(at), text
        assert images(at) == 0


def test_experiments_without_a_checkpoint(app, tmp_path):
    at = app(tmp_path, PAGE)
    page_ok(at)
    assert "No gpt or llama checkpoint" in messages(at)


def test_experiments_on_a_llama(app, llama_runs):
    at = app(llama_runs, PAGE)
    page_ok(at)
    assert at.selectbox(key="exp_checkpoint").value == "nano-llama" and images(at) == 2
    at.radio(key="exp_section").set_value("Ablation").run()
    at.checkbox(key="exp_off_L1H1").check().run()
    page_ok(at)
    on, off = _losses(at)
    assert off != on and images(at) == 1


# --- the logic module --------------------------------------------------------------------------------------


def test_reference_batch_from_the_training_text_or_random(gpt):
    model, tokenizer = gpt
    own = experiments.reference_batch(model, tokenizer, "pydoc", size=4)
    assert own.ids.shape == (4, 32) and "pydoc" in own.source
    from attnlab.data.text import load_text

    text = load_text("pydoc").text
    assert tokenizer.decode(own.ids[0].tolist()) == text[:32]  # the first window starts the corpus
    other = experiments.reference_batch(model, tokenizer, "shakespeare", size=4)
    assert other.ids.shape == (4, 32) and "random tokens" in other.source
    assert (other.ids >= 0).all() and (other.ids < model.config.vocab_size).all()
    again = experiments.reference_batch(model, tokenizer, None, size=4)
    np.testing.assert_array_equal(again.ids, other.ids)  # seeded


def test_patching_logic_checks(gpt):
    model, tokenizer = gpt
    with pytest.raises(DataError, match="3 tokens and the corrupted prompt 2"):
        experiments.check_same_length([1, 2, 3], [1, 2])
    ids = tokenizer.encode("the key, the ke")
    with pytest.raises(DataError, match="same token"):
        experiments.run_patching(model, tokenizer, ids, ids, 5, 5)
    answer, wrong, _ = experiments.default_answers(model, ids, tokenizer.encode("the box, the bo"))
    assert answer != wrong
    run = experiments.run_patching(model, tokenizer, ids, tokenizer.encode("the box, the bo"), answer, wrong)
    assert run.residual.values.shape == (3, len(ids)) and run.heads.values.shape == (2, 2)
    # patching the final stream at the last position restores the clean logit difference exactly
    assert run.residual.values[-1, -1] == pytest.approx(1.0, abs=1e-5)
    with pytest.raises(DataError, match="2 tokens"):
        experiments.single_token(tokenizer, "ab", "answer")


def test_ablation_with_no_heads_off_is_the_model(gpt):
    model, tokenizer = gpt
    ids = tokenizer.encode("The return value is None.")
    run = experiments.run_ablation(model, tokenizer, ids, [], "zero", None, 5)
    assert run.loss_on == run.loss_off and run.continuation_on == run.continuation_off
    assert run.per_head.values.shape == (2, 2)
    with pytest.raises(DataError, match="not offered"):
        experiments.run_ablation(model, tokenizer, ids, [(0, 0)], "resample", None, 5)

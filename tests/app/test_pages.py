"""Every page of the app through Streamlit's AppTest: the normal path and the friendly messages.

A page must never end in an exception: user mistakes (no runs folder, no checkpoint,
empty or unknown text, absurd values) show an info or warning box instead.
"""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from attnlab.app import generation, protein_probes, runs_folder, training
from tests.app.apptest_checks import images, messages, page_ok

GENERATE = "FormSubmitter:generate_form-Generate"


# --- Generate ------------------------------------------------------------------------------------


def test_generate_without_runs_folder(app, tmp_path):
    at = app(tmp_path / "missing")
    page_ok(at)
    assert "does not exist yet" in messages(at)
    assert at.button(key="train_button").label == "Train"  # a model can be trained from the page
    assert GENERATE not in [b.key for b in at.button]


def test_generate_without_checkpoints(app, tmp_path):
    (tmp_path / "runs" / "empty-run").mkdir(parents=True)
    at = app(tmp_path / "runs")
    page_ok(at)
    assert "No gpt or llama checkpoint" in messages(at)
    assert "attnlab demo" in messages(at)


def test_generate_step_by_step(app, full_runs):
    at = app(full_runs)
    page_ok(at)
    at.text_area(key="prompt").set_value("The ")
    at.slider(key="temperature").set_value(0.5)
    at.slider(key="top_k").set_value(10)
    at.slider(key="max_new_tokens").set_value(12)
    at.button(key=GENERATE).click().run()
    page_ok(at)
    text = at.code[0].value
    assert text.startswith("The ") and len(text) == len("The ") + 12  # character tokens
    html = [h.value for h in at.html if "attnlab-generated" in h.value and "<span" in h.value]
    assert html and "The " in html[0]
    table = at.dataframe[0].value
    assert list(table["step"]) == list(range(1, 13))
    assert (table["p(chosen)"] > 0).all()
    assert images(at) >= 2  # the step close-up and the attention of the last step
    at.slider(key="step_view").set_value(3).run()  # look at another step: no regeneration
    page_ok(at)
    assert at.code[0].value == text


def test_generate_greedy_matches_the_library(app, full_runs):
    from attnlab.generate import SamplingConfig, generate_text
    from attnlab.models.registry import load_model

    at = app(full_runs)
    at.text_area(key="prompt").set_value("def ")
    at.slider(key="temperature").set_value(0.0)
    at.slider(key="max_new_tokens").set_value(8)
    at.button(key=GENERATE).click().run()
    page_ok(at)
    model, tokenizer = load_model(full_runs / "nano-gpt", expect="gpt")
    expected = generate_text(model, tokenizer, "def ", SamplingConfig(max_new_tokens=8, temperature=0.0))
    assert at.code[0].value == expected


def test_generate_empty_prompt(app, full_runs):
    at = app(full_runs)
    at.text_area(key="prompt").set_value("")
    at.button(key=GENERATE).click().run()
    page_ok(at)
    assert "prompt is empty" in messages(at)
    assert not at.code


def test_generate_unknown_characters(app, full_runs):
    at = app(full_runs)
    at.text_area(key="prompt").set_value("naïve ✓")
    at.button(key=GENERATE).click().run()
    page_ok(at)
    assert "does not know" in messages(at) and "'✓'" in messages(at)


def test_generate_absurd_slider_values_are_kept_in_bounds(app, full_runs):
    at = app(full_runs)
    at.slider(key="temperature").set_value(99.0)
    at.slider(key="max_new_tokens").set_value(10**6)
    at.button(key=GENERATE).click().run()
    page_ok(at)
    assert 0.0 <= at.slider(key="temperature").value <= generation.MAX_TEMPERATURE
    assert 1 <= at.slider(key="max_new_tokens").value <= generation.MAX_NEW_TOKENS
    assert len(at.code[0].value) <= len(at.text_area(key="prompt").value) + generation.MAX_NEW_TOKENS


def test_generate_corrupt_checkpoint(app, tmp_path, trained_gpt):
    shutil.copytree(trained_gpt, tmp_path / "runs" / "broken")
    (tmp_path / "runs" / "broken" / "model.safetensors").unlink()
    at = app(tmp_path / "runs")
    page_ok(at)
    assert "model.safetensors" in messages(at)


def test_generate_ignores_checkpoints_outside_the_runs_folder(app, tmp_path, trained_gpt):
    (tmp_path / "runs").mkdir()
    (tmp_path / "runs" / "elsewhere").symlink_to(trained_gpt, target_is_directory=True)
    at = app(tmp_path / "runs")
    page_ok(at)
    assert "No gpt or llama checkpoint" in messages(at)


@pytest.mark.slow
def test_train_a_tiny_llama_from_the_page(app, tmp_path):
    """The architecture list is the registry's causal LMs: a LLaMA-style model trains with no page code of its own."""
    runs = tmp_path / "runs"
    at = app(runs)
    assert set(at.radio(key="train_arch").options) >= {"GPT", "LLaMA-style model"}
    at.radio(key="train_arch").set_value("llama")
    at.radio(key="train_preset").set_value("nano")
    at.slider(key="train_seconds").set_value(training.MIN_TRAIN_SECONDS)
    at.button(key="train_button").click().run(timeout=180)
    page_ok(at)
    trained = runs_folder.find_checkpoints(runs, ("llama",))
    assert len(trained) == 1 and trained[0].relative.startswith("app-llama-nano-")
    assert at.selectbox(key="gen_checkpoint").value == trained[0].relative


@pytest.mark.slow
def test_train_a_tiny_gpt_from_the_page(app, tmp_path):
    runs = tmp_path / "runs"
    at = app(runs)
    at.radio(key="train_preset").set_value("nano")
    at.slider(key="train_seconds").set_value(training.MIN_TRAIN_SECONDS)
    at.button(key="train_button").click().run(timeout=180)
    page_ok(at)
    trained = runs_folder.find_checkpoints(runs, ("gpt",))
    assert len(trained) == 1 and trained[0].relative.startswith("app-gpt-nano-")
    assert at.selectbox(key="gen_checkpoint").value == trained[0].relative  # the new model is selected
    assert any("Trained" in s.value for s in at.success)
    assert GENERATE in [b.key for b in at.button]


# --- Attention --------------------------------------------------------------------------------------


@pytest.mark.parametrize("view", ["One head", "All heads", "Mean over heads", "Head view"])
def test_attention_views_for_our_gpt(app, full_runs, view):
    at = app(full_runs, "attention")
    at.radio(key="attn_view").set_value(view).run()
    page_ok(at)
    if view == "Head view":
        (frame,) = at.get("iframe")
        assert frame.proto.srcdoc.startswith("<!DOCTYPE html>") and "attnlab-head-view-data" in frame.proto.srcdoc
    else:
        assert images(at) == 1


def test_attention_friendly_messages(app, full_runs, tmp_path):
    at = app(full_runs, "attention")
    at.text_input(key="attn_text_checkpoint").set_value("schön ✓").run()
    page_ok(at)
    assert "does not know" in messages(at) and images(at) == 0
    at.text_input(key="attn_text_checkpoint").set_value("").run()
    page_ok(at)
    assert "empty" in messages(at) and "--text" not in messages(at)
    at.checkbox(key="attn_truncate").uncheck()
    at.text_input(key="attn_text_checkpoint").set_value("x" * 100).run()
    page_ok(at)
    assert "context is 32 tokens" in messages(at) and "Cut to the context" in messages(at)
    at = app(tmp_path / "nothing-here", "attention")
    page_ok(at)
    assert "does not exist yet" in messages(at) and "MiniLM" in messages(at)


def test_attention_minilm(app, tmp_path, minilm_installed):
    at = app(tmp_path / "no-runs", "attention")
    at.radio(key="attn_source").set_value("minilm").run()
    at.text_input(key="attn_text_minilm").set_value("The fashion model walked.").run()
    page_ok(at)
    assert images(at) == 1
    assert any("[CLS]" in c.value and "6 layers x 12 heads" in c.value for c in at.caption)


# --- Any causal LM of the registry: the LLaMA-style model on the GPT pages ------------------------------


def test_the_language_model_pages_show_a_llama(app, llama_runs):
    from attnlab.generate import SamplingConfig, generate_text
    from attnlab.models.registry import load_model

    at = app(llama_runs)
    page_ok(at)
    assert at.selectbox(key="gen_checkpoint").value == "nano-llama"
    at.text_area(key="prompt").set_value("def ")
    at.slider(key="temperature").set_value(0.0)
    at.slider(key="max_new_tokens").set_value(8)
    at.button(key=GENERATE).click().run()
    page_ok(at)
    model, tokenizer = load_model(llama_runs / "nano-llama", expect="llama")
    assert at.code[0].value == generate_text(
        model, tokenizer, "def ", SamplingConfig(max_new_tokens=8, temperature=0.0)
    )
    at = app(llama_runs, "inside")
    page_ok(at)
    assert images(at) == 2
    at.radio(key="inside_view").set_value("Logit lens").run()
    page_ok(at)
    assert list(at.dataframe[0].value["layer"]) == ["block 1", "block 0", "embeddings"]
    at = app(llama_runs, "attention")
    page_ok(at)
    assert at.selectbox(key="attn_checkpoint").value == "nano-llama" and images(at) == 1


# --- Inside the block ------------------------------------------------------------------------------------


def test_inside_the_block_views(app, full_runs):
    at = app(full_runs, "inside")
    page_ok(at)
    assert images(at) == 2  # token norms, hidden-state statistics
    at.radio(key="inside_view").set_value("Each sub-layer").run()
    page_ok(at)
    table = at.dataframe[0].value
    assert len(table) == 2 and "|attn|" in table.columns  # one row per block of the nano GPT
    at.radio(key="inside_view").set_value("Logit lens").run()
    page_ok(at)
    lens = at.dataframe[0].value
    assert list(lens["layer"]) == ["block 1", "block 0", "embeddings"]
    assert images(at) == 1


def test_inside_the_block_friendly_messages(app, full_runs, tmp_path):
    at = app(full_runs, "inside")
    at.text_input(key="inside_text").set_value("").run()
    page_ok(at)
    assert "empty" in messages(at)
    at.text_input(key="inside_text").set_value("∑ ✓").run()
    page_ok(at)
    assert "does not know" in messages(at)
    at = app(tmp_path, "inside")
    page_ok(at)
    assert "No gpt or llama checkpoint" in messages(at)


# --- Positions and embeddings ------------------------------------------------------------------------------


def test_positions_panels(app, tmp_path):
    at = app(tmp_path, "positions")
    page_ok(at)
    assert images(at) == 1
    at.selectbox(key="pos_panel").set_value("rope")
    at.slider(key="pos_head_dim").set_value(32).run()
    page_ok(at)
    assert images(at) == 1
    at.radio(key="pe_section").set_value("Random vectors").run()
    page_ok(at)
    assert images(at) == 1
    at.multiselect(key="emb_dims").set_value([]).run()
    page_ok(at)
    assert "at least one" in messages(at)


def test_embeddings_with_minilm(app, tmp_path, minilm_installed):
    at = app(tmp_path, "positions")
    at.radio(key="pe_section").set_value("Sentences").run()
    page_ok(at)
    assert images(at) == 1
    at.text_area(key="emb_sentences").set_value("only one sentence").run()
    page_ok(at)
    assert messages(at) and images(at) == 0
    at.radio(key="pe_section").set_value("Words").run()
    at.text_input(key="emb_a").set_value("qzxvbnm").run()  # not a single word piece
    page_ok(at)
    assert "single token" in messages(at)
    assert images(at) == 2  # the word matrix and the neighbours still draw


# --- Vision and proteins ------------------------------------------------------------------------------------


def test_vision_without_a_vit(app, tmp_path):
    at = app(tmp_path, "vision_bio")
    page_ok(at)
    assert "attnlab compare mnist" in messages(at)


def test_vision_with_a_vit(app, full_runs):
    at = app(full_runs, "vision_bio")
    page_ok(at)
    assert any("the ViT says" in h.value for h in at.subheader)
    assert images(at) == 2  # attention over the patches, class probabilities
    at.slider(key="vit_index").set_value(7).run()
    page_ok(at)
    assert any(h.value.startswith("Digit #7") for h in at.subheader)
    at.button(key="vit_random").click().run()
    page_ok(at)
    assert 0 <= at.slider(key="vit_index").value < 1000


def test_proteins_without_a_probe(app, tmp_path):
    at = app(tmp_path, "vision_bio")
    at.radio(key="vb_section").set_value("Proteins through a probe").run()
    page_ok(at)
    assert "No trained probe" in messages(at)
    assert "probe.save" in at.code[0].value


def test_proteins_with_a_probe(app, full_runs):
    at = app(full_runs, "vision_bio")
    at.radio(key="vb_section").set_value("Proteins through a probe").run()
    page_ok(at)
    entry = protein_probes.find_probes(full_runs)[0]
    expected = protein_probes.probe_predict(full_runs, entry, "GIGKFLHSAKKFGKAFVGEIMNS")
    top = int(expected.probs.argmax())
    assert any(h.value.startswith(f"Prediction: {expected.class_names[top]} (") for h in at.subheader)
    at.text_area(key="probe_sequence").set_value("MKTJ*").run()
    page_ok(at)
    assert "'J'" in messages(at)
    at.text_area(key="probe_sequence").set_value("   ").run()
    page_ok(at)
    assert "empty" in messages(at)


def test_every_page_reads_only_the_runs_folder(app, tmp_path, trained_gpt):
    """A checkpoint whose weights file links outside the runs folder is refused."""
    folder = tmp_path / "runs" / "linked"
    folder.mkdir(parents=True)
    for item in Path(trained_gpt).iterdir():
        if item.is_file() and item.name != "model.safetensors":
            shutil.copy(item, folder / item.name)
    (folder / "model.safetensors").symlink_to(trained_gpt / "model.safetensors")
    for page in ("generate", "attention", "inside", "experiments"):
        at = app(tmp_path / "runs", page)
        page_ok(at)
        assert "No gpt" in messages(at), page

"""The app's computations (`attnlab.app.logic`, `attnlab.app.figures`), without Streamlit."""

from __future__ import annotations

import json
import math
import os
import shutil
import time

import numpy as np
import pytest
import torch

from attnlab.app import RUNS_ENV, figures, logic
from attnlab.errors import CheckpointError, ConfigError, DataError, UnknownCharactersError


@pytest.fixture(scope="module")
def gpt(trained_gpt):
    from attnlab.models.registry import load_model

    return load_model(trained_gpt, expect="gpt")


# --- the runs folder ------------------------------------------------------------------------------


def test_runs_root_from_argument_environment_or_default(monkeypatch, tmp_path):
    monkeypatch.delenv(RUNS_ENV, raising=False)
    monkeypatch.chdir(tmp_path)
    assert logic.runs_root() == tmp_path / "runs"
    monkeypatch.setenv(RUNS_ENV, str(tmp_path / "elsewhere"))
    assert logic.runs_root() == tmp_path / "elsewhere"
    assert logic.runs_root(tmp_path / "given") == tmp_path / "given"


def test_check_runs_root(tmp_path):
    with pytest.raises(DataError, match="does not exist yet"):
        logic.check_runs_root(tmp_path / "missing")
    (tmp_path / "file").write_text("x")
    with pytest.raises(DataError, match="is a file"):
        logic.check_runs_root(tmp_path / "file")
    logic.check_runs_root(tmp_path)


def test_find_checkpoints_nested_filtered_and_newest_first(full_runs, tmp_path, trained_gpt):
    entries = logic.find_checkpoints(full_runs)
    assert {e.relative: e.model_type for e in entries} == {"nano-gpt": "gpt", "compare-mnist/models/vit": "vit"}
    assert [e.relative for e in logic.find_checkpoints(full_runs, ("vit",))] == ["compare-mnist/models/vit"]
    assert "test accuracy 10.0%" in logic.find_checkpoints(full_runs, ("vit",))[0].label()
    gpt_label = logic.find_checkpoints(full_runs, ("gpt",))[0].label()
    assert "2 layers x 32 wide" in gpt_label and "step 60" in gpt_label
    # newest first
    root = tmp_path / "runs"
    shutil.copytree(trained_gpt, root / "old")
    shutil.copytree(trained_gpt, root / "new")
    past = time.time() - 3600
    os.utime(root / "old" / "config.json", (past, past))
    assert [e.relative for e in logic.find_checkpoints(root)] == ["new", "old"]
    assert logic.find_checkpoints(tmp_path / "missing") == []


def test_a_run_being_trained_is_marked_and_offered_only_as_its_last_whole_checkpoint(tmp_path, trained_gpt):
    import subprocess
    import sys

    from attnlab import runs

    root = tmp_path / "runs"
    shutil.copytree(trained_gpt, root / "busy")
    hold = "import sys, time; from attnlab import runs\nwith runs.run_lock(sys.argv[1], command='train'):\n print('locked', flush=True); time.sleep(60)"
    holder = subprocess.Popen([sys.executable, "-c", hold, str(root / "busy")], stdout=subprocess.PIPE, text=True)
    try:
        assert holder.stdout.readline().strip() == "locked"
        (entry,) = logic.find_checkpoints(root)
        assert entry.writer["pid"] == holder.pid and "training now" in entry.label()
        model, _ = logic.load_checkpoint(root, "busy", "gpt")  # the published checkpoint is whole
        assert model.config.num_layers == 2
    finally:
        holder.kill()
        holder.wait()
    (entry,) = logic.find_checkpoints(root)
    assert entry.writer is None and "training now" not in entry.label()
    assert runs.lock_holder(root / "busy") is None


def test_find_checkpoints_never_follows_links_out(tmp_path, trained_gpt):
    root = tmp_path / "runs"
    root.mkdir()
    (root / "linked-folder").symlink_to(trained_gpt, target_is_directory=True)
    inner = root / "linked-weights"
    shutil.copytree(trained_gpt, inner)
    (inner / "model.safetensors").unlink()
    (inner / "model.safetensors").symlink_to(trained_gpt / "model.safetensors")
    config_only = root / "linked-config"
    config_only.mkdir()
    (config_only / "config.json").symlink_to(trained_gpt / "config.json")
    assert logic.find_checkpoints(root) == []


def test_resolve_in_runs_refuses_paths_out_of_the_folder(tmp_path, trained_gpt):
    root = tmp_path / "runs"
    shutil.copytree(trained_gpt, root / "gpt")
    assert logic.resolve_in_runs(root, "gpt") == (root / "gpt").resolve()
    for bad in ("../outside", str(trained_gpt), "gpt/../../x"):
        with pytest.raises(CheckpointError, match="not a folder inside the runs folder"):
            logic.resolve_in_runs(root, bad)
    (root / "link").symlink_to(trained_gpt, target_is_directory=True)
    with pytest.raises(CheckpointError, match="links outside the runs folder"):
        logic.resolve_in_runs(root, "link")
    (root / "gpt" / "extra.json").symlink_to(tmp_path / "secret.json")
    with pytest.raises(CheckpointError, match="links outside the runs folder"):
        logic.resolve_in_runs(root, "gpt")
    with pytest.raises(CheckpointError, match="links outside"):
        logic.load_checkpoint(root, "link", "gpt")


def test_load_checkpoint_checks_type_and_existence(full_runs):
    model, tokenizer = logic.load_checkpoint(full_runs, "nano-gpt", ("gpt",))
    assert model.model_type == "gpt" and tokenizer is not None
    with pytest.raises(CheckpointError, match="needs gpt"):
        logic.load_checkpoint(full_runs, "compare-mnist/models/vit", ("gpt",))
    with pytest.raises(CheckpointError, match="no longer a checkpoint"):
        logic.load_checkpoint(full_runs, "compare-mnist", ("gpt",))


# --- sampling controls and prompts --------------------------------------------------------------------


def test_sampling_from_controls_maps_the_sliders():
    s = logic.sampling_from_controls(temperature=0.7, top_k=0, top_p=1.0, max_new_tokens=5, seed=3)
    assert (s.temperature, s.top_k, s.top_p, s.max_new_tokens, s.seed) == (0.7, None, None, 5, 3)
    s = logic.sampling_from_controls(temperature=0.0, top_k=4, top_p=0.5, max_new_tokens=1, seed=None)
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
        ({"max_new_tokens": logic.MAX_NEW_TOKENS + 1}, "tokens to generate"),
        ({"seed": -4}, "seed"),
    ],
)
def test_sampling_from_controls_rejects_absurd_values(changes, message):
    values = dict(temperature=1.0, top_k=0, top_p=1.0, max_new_tokens=10, seed=0) | changes
    with pytest.raises(ConfigError, match=message):
        logic.sampling_from_controls(**values)


def test_encode_prompt(gpt):
    _, tokenizer = gpt
    assert logic.encode_prompt(tokenizer, "The ") == tokenizer.encode("The ")
    with pytest.raises(DataError, match="empty"):
        logic.encode_prompt(tokenizer, "")
    with pytest.raises(UnknownCharactersError) as info:
        logic.encode_prompt(tokenizer, "caf\u00e9 \u2713")
    assert "\u2713" in info.value.chars


def test_text_ids_truncates_to_the_context(gpt):
    model, tokenizer = gpt
    long = "abc " * 20  # 80 characters, context 32
    ids, cut = logic.text_ids(model, tokenizer, long)
    assert cut and ids == tokenizer.encode(long)[-32:]
    with pytest.raises(DataError, match="context"):
        logic.text_ids(model, tokenizer, long, truncate=False)
    assert logic.text_ids(model, tokenizer, "abc") == (tokenizer.encode("abc"), False)


def test_display_token():
    assert logic.display_token(" ") == "␣" and logic.display_token("\n") == "\\n" and logic.display_token("a") == "a"


# --- generation step by step ------------------------------------------------------------------------------


def test_generate_steps_top_k_are_the_models_probabilities(gpt):
    """Each step's top-5 equal softmax(logits) of a fresh forward on the text so far."""
    model, tokenizer = gpt
    sampling = logic.sampling_from_controls(temperature=0.0, top_k=0, top_p=1.0, max_new_tokens=6, seed=None)
    result = logic.generate_steps(model, tokenizer, "The ", sampling)
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
    assert result.new_ids == ids[len(result.prompt_ids):]
    assert result.text == "The " + tokenizer.decode(result.new_ids)


def test_generate_steps_sampling_matches_generate_text(gpt):
    from attnlab.generate import generate_text

    model, tokenizer = gpt
    sampling = logic.sampling_from_controls(temperature=1.3, top_k=12, top_p=0.9, max_new_tokens=20, seed=7)
    result = logic.generate_steps(model, tokenizer, "def ", sampling)
    assert result.text == generate_text(model, tokenizer, "def ", sampling)
    for step in result.steps:
        assert len(step.top) == 5
        probs = [c.prob for c in step.top]
        assert probs == sorted(probs, reverse=True)
        assert sum(c.prob > 0 for c in step.top) <= 12  # top-k leaves at most 12 candidates
        assert step.prob > 0  # the chosen token was allowed


def test_last_step_attention_is_the_last_query_row(gpt):
    model, tokenizer = gpt
    sampling = logic.sampling_from_controls(temperature=0.0, top_k=0, top_p=1.0, max_new_tokens=40, seed=None)
    result = logic.generate_steps(model, tokenizer, "x = ", sampling)  # 44 tokens > context 32
    attention = logic.last_step_attention(model, tokenizer, result)
    context = result.all_ids[:-1][-32:]
    with torch.no_grad():
        out = model(torch.tensor([context]), output_attentions=True)
    expected = torch.stack([a[0, :, -1, :] for a in out.attentions]).numpy()  # (L, H, S)
    np.testing.assert_allclose(attention.weights, expected, rtol=1e-6)
    np.testing.assert_allclose(attention.weights.sum(-1), 1.0, rtol=1e-5)
    assert attention.full.shape == (2, 2, 32, 32)
    assert len(attention.tokens) == 32 and attention.chosen == result.steps[-1].token


# --- training from the page ---------------------------------------------------------------------------------


def test_training_job_validates_its_settings(tmp_path):
    with pytest.raises(ConfigError, match="preset"):
        logic.TrainingJob(tmp_path, preset="huge")
    with pytest.raises(ConfigError, match="seconds"):
        logic.TrainingJob(tmp_path, seconds=10_000)
    (tmp_path / "file").write_text("x")
    with pytest.raises(DataError, match="is a file"):
        logic.TrainingJob(tmp_path / "file")


def test_training_job_progress_reads_the_metrics_file(tmp_path):
    job = logic.TrainingJob(tmp_path, preset="nano", seconds=20)
    assert job.progress() == (0.0, "measuring the speed of this machine ...")
    job.max_iters = 100
    job.folder.mkdir(parents=True)
    lines = [json.dumps({"step": 10, "train_loss": 3.5}), json.dumps({"step": 40, "train_loss": 2.25}), '{"step": 5']
    (job.folder / "metrics.jsonl").write_text("\n".join(lines))  # the last line is still being written
    job.started = time.monotonic()  # no time has passed: the steps decide
    fraction, text = job.progress()
    assert fraction == pytest.approx(0.4, abs=0.01) and text == "step 40 of 100, training loss 2.25"
    job.results = {"step": 100, "val_loss": 1.5}
    assert job.progress() == (1.0, "done: 100 steps, validation loss 1.50")


def test_new_run_folder_never_reuses_a_name(tmp_path):
    first = logic.new_run_folder(tmp_path, "app")
    first.mkdir()
    second = logic.new_run_folder(tmp_path, "app")
    assert second != first and second.parent == tmp_path and second.name.startswith("app-")


# --- vision ---------------------------------------------------------------------------------------------------


def test_digit_source():
    assert logic.digit_source({"data": "mnist5k"}, {})[0] == "mnist5k"
    name, note = logic.digit_source({"data": "mnist"}, {"image_size": 28})
    assert name == "mnist5k" and "offline sample" in note
    assert logic.digit_source({"data": "digits"}, {"image_size": 8})[0] == "digits"
    with pytest.raises(DataError, match="attnlab compare mnist"):
        logic.digit_source({"data": "fashion"}, {"image_size": 28})
    with pytest.raises(DataError):
        logic.digit_source({"data": "/some/folder"}, {"image_size": 32})


def test_vit_predict_matches_the_model(tiny_vit):
    from attnlab.models.registry import load_model
    from attnlab.models.vit import patch_attention_map

    model, _ = load_model(tiny_vit, expect="vit")
    meta = json.loads((tiny_vit / "config.json").read_text())
    image = np.random.default_rng(0).random((28, 28), dtype=np.float32)
    pred = logic.vit_predict(model, meta, image, 0.0, 1.0)
    x = torch.from_numpy((image - 0.1312) / 0.3085)[None, None]
    with torch.no_grad():
        out = model(x, output_attentions=True)
    np.testing.assert_allclose(pred.probs, torch.softmax(out.logits[0], -1).numpy(), rtol=1e-5)
    np.testing.assert_allclose(pred.rollout, patch_attention_map(out.attentions, 4)[0].numpy(), rtol=1e-5)
    assert pred.last_layer.shape == (4, 4) and pred.last_layer.sum() == pytest.approx(1.0, abs=1e-5)
    assert pred.predicted == int(pred.probs.argmax())
    with pytest.raises(DataError, match="1x28x28"):
        logic.vit_predict(model, meta, np.zeros((8, 8), np.float32), 0.0, 1.0)


# --- proteins ---------------------------------------------------------------------------------------------------


def test_clean_protein():
    assert logic.clean_protein(" gigk\nflhs ") == "GIGKFLHS"
    with pytest.raises(DataError, match="empty"):
        logic.clean_protein(" \n")
    with pytest.raises(DataError, match="FASTA header"):
        logic.clean_protein(">sp|P1\nMKT")
    with pytest.raises(UnknownCharactersError, match="'J'"):
        logic.clean_protein("MKTJ")


def test_find_probes_and_predict(full_runs, tiny_probe):
    from attnlab.bio.controls import composition
    from attnlab.bio.probes import Probe

    (entry,) = logic.find_probes(full_runs)
    assert (entry.relative, entry.kind, entry.task, entry.features) == ("amp-probe", "linear", "binary", "composition")
    assert entry.classes == ["not AMP", "AMP"] and "guessed" in entry.features_note
    result = logic.probe_predict(full_runs, entry, "gigkflhsakkfgkafvgeimns")
    expected = Probe.load(tiny_probe).predict_proba(composition(["GIGKFLHSAKKFGKAFVGEIMNS"]))[0]
    np.testing.assert_allclose(result.probs, expected, rtol=1e-6)
    assert result.class_names == ["not AMP", "AMP"] and result.residues == "GIGKFLHSAKKFGKAFVGEIMNS"


def test_probe_features_recorded_unknown_or_missing(tmp_path, tiny_probe):
    root = tmp_path / "runs"
    shutil.copytree(tiny_probe, root / "recorded")
    (root / "recorded" / "embedder.json").write_text(json.dumps({"identity": "control:composition:protein:length=1:v1"}))
    shutil.copytree(tiny_probe, root / "plm")
    (root / "plm" / "embedder.json").write_text(json.dumps({"identity": "esm2:t6:mean"}))
    entries = {e.relative: e for e in logic.find_probes(root)}
    assert entries["recorded"].features == "composition" and "recorded" in entries["recorded"].features_note
    assert entries["plm"].features is None and "esm2" in entries["plm"].features_note
    with pytest.raises(DataError, match="cannot use this probe"):
        logic.probe_predict(root, entries["plm"], "MKT")


# --- figures ---------------------------------------------------------------------------------------------------


def test_figures_draw_what_they_are_given(gpt, tiny_vit):
    from attnlab.analysis.lens import logit_lens, stream_norms, sublayer_effects

    model, tokenizer = gpt
    sampling = logic.sampling_from_controls(temperature=1.0, top_k=0, top_p=1.0, max_new_tokens=4, seed=1)
    result = logic.generate_steps(model, tokenizer, "ab", sampling)
    fig = figures.plot_step_distribution(result.steps[0])
    labels = [t.get_text() for t in fig.axes[0].get_yticklabels()]
    assert sum("(chosen)" in t for t in labels) == 1 and len(labels) >= 5
    attention = logic.last_step_attention(model, tokenizer, result)
    fig = figures.plot_last_step_attention(attention)
    assert fig.axes[0].images[0].get_array().shape == (4, len(attention.tokens))  # L * H rows
    ids = tokenizer.encode("The end")
    tokens = logic.token_labels(tokenizer, ids)
    lens = logit_lens(model, ids)
    vocab = logic.token_labels(tokenizer, range(model.config.vocab_size))
    fig = figures.plot_logit_lens(lens, tokens, vocab)
    assert len(fig.axes[0].texts) == 3 * len(ids)  # one top token per layer and position
    assert len(figures.plot_sublayer_effects(sublayer_effects(model, ids)).axes) == 2
    assert figures.plot_stream_norms(stream_norms(model, ids), tokens).axes[0].images[0].get_array().shape == (3, len(ids))
    maps = {"rollout": np.full((4, 4), 1 / 16), "last layer": np.eye(4) / 4}
    fig = figures.plot_digit_attention(np.zeros((28, 28)), maps)
    assert [ax.get_title() for ax in fig.axes[:3]] == ["the image", "rollout", "last layer"]
    assert fig.axes[2].images[1].get_extent() == [-0.5, 27.5, 27.5, -0.5]  # patches cover the whole image
    fig = figures.plot_class_probabilities([0.1, 0.7, 0.2], ["a", "b", "c"], true_class=2)
    assert [b.get_height() for b in fig.axes[0].patches] == [0.1, 0.7, 0.2]
    png = figures.figure_png(fig)
    assert png[:8] == b"\x89PNG\r\n\x1a\n"

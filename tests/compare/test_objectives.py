"""`attnlab compare objectives`: span corruption's invariants, the pretraining text, a quick study end to end."""

from __future__ import annotations

import csv
import json

import numpy as np
import pytest

from attnlab.cli import main
from attnlab.compare.objectives import (
    OBJECTIVES,
    ObjectivesConfig,
    compare_objectives,
    count_parameters,
    flat_paragraphs,
    model_config,
    normalise_whitespace,
    pretraining_text,
)
from attnlab.data.span_corruption import corrupt_spans, noise_mask, reconstruct, span_counts
from attnlab.errors import ConfigError

SENTINELS = tuple(range(1000, 1400))


# ---------------------------------------------------------------------------
# Span corruption
# ---------------------------------------------------------------------------


@pytest.mark.parametrize("length", [2, 7, 48, 128, 1000])
def test_input_and_target_reconstruct_the_original(length):
    rng = np.random.default_rng(length)
    for _ in range(20):
        ids = rng.integers(0, 500, size=length)
        inputs, targets = corrupt_spans(ids, rng, SENTINELS, eos_id=999)
        np.testing.assert_array_equal(reconstruct(inputs, targets, SENTINELS, eos_id=999), ids)
        noise, spans = span_counts(length)
        assert len(inputs) == length - noise + spans + 1 and len(targets) == noise + spans + 1
        # sentinels in order, the target starting with the first
        used = [t for t in inputs if t in SENTINELS]
        assert used == list(SENTINELS[:spans]) and targets[0] == SENTINELS[0]


def test_noise_share_and_mean_span_length():
    rng = np.random.default_rng(0)
    masks = np.stack([noise_mask(1000, rng) for _ in range(200)])  # (200, 1000)
    assert masks.mean() == pytest.approx(0.15, abs=1e-12)  # exactly round(0.15 * T) every time
    lengths = []
    for m in masks:
        edges = np.flatnonzero(np.diff(np.concatenate([[0], m.astype(int), [0]])))
        lengths += list(edges[1::2] - edges[0::2])
    assert np.mean(lengths) == pytest.approx(3.0)  # 150 noise tokens in round(150 / 3) = 50 spans
    assert np.std(lengths) > 0.5  # random lengths, not all 3
    assert not masks[:, 0].any()  # a kept run comes first, as in T5
    # at T = 128 the share is round(19.2) / 128 and the spans round(19 / 3) = 6
    m = np.stack([noise_mask(128, rng) for _ in range(50)])
    assert m.sum(axis=1).tolist() == [19] * 50


def test_span_settings_refused():
    with pytest.raises(ConfigError, match="noise_density"):
        span_counts(64, noise_density=1.5)
    with pytest.raises(ConfigError, match="at least 2 tokens"):
        span_counts(1)
    with pytest.raises(ConfigError, match="sentinel"):
        corrupt_spans(np.arange(100), np.random.default_rng(0), sentinel_ids=(7,))


# ---------------------------------------------------------------------------
# The study's pieces
# ---------------------------------------------------------------------------


def test_no_test_passage_in_the_pretraining_text():
    from attnlab.data.labelled_text import load_doc_topics
    from attnlab.data.text import load_text

    task = load_doc_topics(unit="sentence")
    text, dropped = pretraining_text(task)
    original, kept = flat_paragraphs(load_text().text), flat_paragraphs(text)
    assert all(p in original for p in task.test_texts)  # each test passage was in the corpus...
    assert not [p for p in task.test_texts if p in kept]  # ... and none is left
    # nor with its whitespace written any other way
    loose = normalise_whitespace(text)
    assert not [p for p in task.test_texts if normalise_whitespace(p) in loose]
    assert dropped > 0 and len(text) > 0.9 * len(load_text().text)  # only those paragraphs went
    assert sum(p in kept for p in task.train_texts[:200]) > 150  # training passages stay


def test_default_sizes_match_within_ten_percent():
    config = ObjectivesConfig()
    counts = {o: count_parameters(model_config(o, config, 120)) for o in OBJECTIVES}
    for o in ("mlm", "span"):
        assert abs(counts[o] / counts["clm"] - 1) < 0.10, counts
    span = model_config("span", config, 120)
    assert span.num_encoder_layers + span.num_decoder_layers in (config.layers, config.layers + 1)


def test_bad_settings_refused():
    with pytest.raises(ConfigError, match="unknown objective 'xlnet'"):
        ObjectivesConfig(objectives=("clm", "xlnet"))
    with pytest.raises(ConfigError, match="given twice"):
        ObjectivesConfig(seeds=(1, 1))
    with pytest.raises(ConfigError, match="multiple of 16"):
        ObjectivesConfig(embed_dim=40)


@pytest.mark.parametrize(
    ("flags", "message"),
    [
        (["--objectives", "clm,gpt"], "unknown objective 'gpt'"),
        (["--objectives", "clm,clm"], "each objective may be given once"),
        (["--seeds", "0,x"], "seed"),
        (["--tokens", "lots"], "token budget"),
        (["--device", "tpu"], "unknown device 'tpu'"),
    ],
)
def test_bad_options_one_line(tmp_path, capsys, flags, message):
    with pytest.raises(SystemExit) as e:
        code = main(["compare", "objectives", "--out", str(tmp_path / "s"), "--quick", *flags])
        raise SystemExit(code)
    assert e.value.code == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert message in err[-1]
    assert not any(line.startswith("Traceback") for line in err)


# ---------------------------------------------------------------------------
# A quick study end to end
# ---------------------------------------------------------------------------


@pytest.fixture(scope="module")
def study(tmp_path_factory):
    out = tmp_path_factory.mktemp("objectives") / "study"
    config = ObjectivesConfig(quick=True, seeds=(0,), progress=False, figures=True)
    return out, config, compare_objectives(out, config)


def read_csv(path):
    return list(csv.DictReader(line for line in path.read_text().splitlines() if not line.startswith("#")))


def test_study_tables_and_files(study):
    out, config, result = study
    rows = read_csv(out / "runs.csv")
    assert [(r["objective"], r["evaluation"]) for r in rows] == [
        (o, e) for o in OBJECTIVES for e in ("random-probe", "probe", "finetune")
    ]
    for column in ("objective", "model", "seed", "params", "tokens", "input_positions", "evaluation", "accuracy"):
        assert column in rows[0]
    assert {r["tokens"] for r in rows} == {str(config.steps * config.batch * config.context)}
    assert all(0.0 <= float(r["accuracy"]) <= 1.0 for r in rows)
    summary = read_csv(out / "summary.csv")
    assert len(summary) == 9 and {s["seeds"] for s in summary} == {"1"}
    results = json.loads((out / "results.json").read_text())
    assert 0 < results["chance_accuracy"] < 0.5 and results["dropped_paragraphs"] > 0
    assert (out / "objectives.png").read_bytes()[:4] == b"\x89PNG"
    assert "| clm |" in result["report"] and "Chance" in result["report"]


def test_each_objective_loss_falls(study):
    out, _, _ = study
    for objective in OBJECTIVES:
        lines = (out / "runs" / f"pretrain-{objective}-seed0" / "metrics.jsonl").read_text().splitlines()
        val = [json.loads(x)["val_loss"] for x in lines if "val_loss" in json.loads(x)]
        assert val[-1] < val[0] - 0.3, (objective, val)


def test_rerun_skips_resumes_and_refuses_other_settings(study):
    out, config, _ = study
    again = compare_objectives(out, config)
    assert {r["status"] for r in again["rows"] if r["evaluation"] != "random-probe"} == {"skipped (finished before)"}
    # an interrupted run (no results.json yet, a checkpoint with training state) is resumed
    (out / "runs" / "pretrain-clm-seed0" / "results.json").unlink()
    resumed = compare_objectives(out, ObjectivesConfig(**{**config.__dict__, "objectives": ("clm",)}))
    assert [r["status"] for r in resumed["rows"] if r["evaluation"] == "probe"] == ["resumed"]
    changed = ObjectivesConfig(**{**config.__dict__, "objectives": ("clm",), "lr": 1e-3})
    with pytest.raises(ConfigError, match="other settings.*--force"):
        compare_objectives(out, changed)
    forced = compare_objectives(out, changed, force=True)
    assert [r["status"] for r in forced["rows"] if r["evaluation"] == "probe"] == ["trained"]

"""The induction-head lab: data, losses, the phase-change rule, ablation plumbing, the run folder, the CLI."""

from __future__ import annotations

import json
import math

import numpy as np
import pytest
import torch

from attnlab.cli import main
from attnlab.errors import ConfigError
from attnlab.interp.induction import (
    InductionConfig,
    detect_phase_change,
    half_losses,
    induction_batch,
    run_induction_lab,
    train_induction,
)
from attnlab.models.gpt import GPT

TINY = dict(vocab_size=16, half_len=6, embed_dim=16, steps=30, eval_every=10, eval_batch=8, batch_size=8)


def test_training_batches_repeat_a_segment_of_varied_length():
    config = InductionConfig(vocab_size=50, half_len=8, batch_size=64)
    ids = induction_batch(config, torch.Generator().manual_seed(0))
    assert ids.shape == (64, 16) and ids.dtype == torch.long
    periods = set()
    for row in ids.tolist():
        # the shortest k with row[k:2k] == row[:k] (a random coincidence of a shorter one is rare but allowed)
        k = next(k for k in range(config.shortest, 9) if row[k : 2 * k] == row[:k])
        periods.add(k)
    assert len(periods) > 1  # the period varies: position alone cannot say where to copy from
    assert min(periods) >= config.shortest == 4


def test_half_losses_by_hand():
    N, V = 3, 5
    ids = torch.tensor([[1, 2, 3, 1, 2, 3]])
    logits = torch.zeros(1, 6, V)  # uniform: every loss is ln 5
    first, repeated = half_losses(logits, ids)
    assert first == pytest.approx(math.log(V)) and repeated == pytest.approx(math.log(V))
    # a perfect copier on the repeated half: positions N .. 2N-2 predict ids[t + 1] with certainty
    for t in range(N, 2 * N - 1):
        logits[0, t, ids[0, t + 1]] = 100.0
    first, repeated = half_losses(logits, ids)
    assert first == pytest.approx(math.log(V)) and repeated == pytest.approx(0.0, abs=1e-6)


def test_phase_change_rule():
    first = [4.0] * 8
    assert detect_phase_change(first, [4.0, 3.9, 3.5, 1.0, 0.9, 0.8, 0.7, 0.6], threshold=0.3, patience=2) == 3
    # a dip that does not hold is not the phase change
    assert detect_phase_change(first, [4.0, 1.0, 3.9, 3.8, 1.1, 3.9, 0.9, 3.9], threshold=0.3, patience=2) is None
    assert detect_phase_change(first, [4.0, 1.0, 3.9, 3.8, 1.1, 1.0, 0.9, 0.9], threshold=0.3, patience=2) == 4
    # the end of the curve counts as holding
    assert detect_phase_change(first, [4.0] * 7 + [1.0], threshold=0.3, patience=2) == 7
    assert detect_phase_change(first, [4.0] * 8) is None


def test_config_checks():
    with pytest.raises(ConfigError, match="divisible"):
        InductionConfig(embed_dim=30, num_heads=4)
    with pytest.raises(ConfigError, match="threshold"):
        InductionConfig(threshold=1.5)
    with pytest.raises(ConfigError, match="min_half_len"):
        InductionConfig(half_len=8, min_half_len=9)


def test_a_short_run_records_curves_and_ablates():
    config = InductionConfig(**TINY)
    model, result = train_induction(config)
    assert result.steps == [0, 10, 20, 30] and result.trained_steps == 30
    assert np.asarray(result.induction_scores).shape == (4, 2, 2)
    assert result.induction_head[0] == 1 and result.previous_token_head[0] == 0
    names = [r["ablated"] for r in result.ablations]
    assert names[:3] == ["none", "induction_head", "previous_token_head"]
    base = result.ablation("none")
    assert base["first_half_loss"] == pytest.approx(result.first_loss[-1], rel=1e-4)
    tables = result.to_rows()
    assert len(tables["curves"]) == 4 and len(tables["heads"]) == 4 * 2 * 2
    assert tables["ablations"][1]["heads"] == "L{}H{}".format(*result.induction_head)
    # the 1-layer control has no previous-token head to ablate
    _, control = train_induction(InductionConfig(**{**TINY, "num_layers": 1}))
    assert control.previous_token_head is None and control.induction_head[0] == 0


def test_run_folder_is_written_and_a_finished_run_is_skipped(tmp_path):
    config = InductionConfig(**TINY)
    out = tmp_path / "run"
    result = run_induction_lab(config, out)
    for name in ("curves.csv", "head_scores.csv", "ablations.csv", "results.json", "loss_curves.png"):
        assert (out / name).is_file(), name
    assert (out / "induction_pattern.png").is_file() and (out / "head_scores.png").is_file()
    model = GPT.from_checkpoint(out / "checkpoint")
    assert model.config.attn_only and model.config.num_layers == 2
    again = run_induction_lab(config, out)
    assert again.skipped and not result.skipped
    assert again.repeated_loss == result.repeated_loss
    # another config in the same folder is trained afresh
    other = run_induction_lab(InductionConfig(**{**TINY, "steps": 20}), out, figures=False)
    assert not other.skipped and json.loads((out / "results.json").read_text())["trained_steps"] == 20


def test_cli_writes_and_resumes(tmp_path, capsys):
    out = tmp_path / "lab"
    argv = ["interp", "induction", "--out", str(out), "--seeds", "0,1", "--control", "--quick", "--steps", "20"]
    assert main(argv + ["--no-figures"]) == 0
    printed = capsys.readouterr().out
    assert "| seed-0 |" in printed and "| control-seed-1 |" in printed
    for run in ("seed-0", "seed-1", "control-seed-0", "control-seed-1"):
        assert (out / run / "results.json").is_file()
    assert (out / "summary.csv").read_text().count("\n") == 1 + 1 + 4  # marker line, header, four runs
    assert main(argv + ["--no-figures"]) == 0
    assert printed.count("(done before)") == 0 and capsys.readouterr().out.count("(done before)") == 4


@pytest.mark.parametrize("bad", [["--seeds", "x"], ["--layers", "0"], ["--steps", "-3"], ["--seeds", "1,1"]])
def test_cli_bad_flags_are_one_line_exit_2(tmp_path, capsys, bad):
    assert main(["interp", "induction", "--out", str(tmp_path / "o"), *bad]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "error" in err[0]


@pytest.mark.slow
def test_default_lab_forms_an_induction_head_and_ablations_break_it():
    model, result = train_induction(InductionConfig(seed=0))
    assert result.formed, result.repeated_loss
    base, ind, prev = (result.ablation(n) for n in ("none", "induction_head", "previous_token_head"))
    gap = base["first_half_loss"] - base["repeated_half_loss"]
    assert gap > 2.0
    # each ablation gives back at least a third of what the circuit gained (shared heads take the rest)
    assert ind["repeated_half_loss"] - base["repeated_half_loss"] > gap / 3
    assert prev["repeated_half_loss"] - base["repeated_half_loss"] > gap / 3
    scores = result.scores_at(-1)
    assert scores["induction"][1].max() > 0.5 > scores["induction"][0].max()
    _, control = train_induction(InductionConfig(seed=0, num_layers=1))
    assert not control.formed

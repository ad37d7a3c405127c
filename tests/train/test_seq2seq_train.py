"""Seq2seq training: exact match, decoding text, `attnlab train --task` and `attnlab translate`
end to end (in-process), resume, and every kind of bad input."""

import dataclasses
import json

import pytest
import torch

import attnlab.cli as cli
from attnlab.cli import main
from attnlab.config import to_dict
from attnlab.data.seq2seq_tasks import TaskConfig, TaskData, make_task, task_tokenizer
from attnlab.decoding.seq2seq import greedy_decode
from attnlab.errors import ConfigError, UnknownCharactersError
from attnlab.models.registry import load_model
from attnlab.models.seq2seq import Seq2Seq, Seq2SeqConfig, sequence_log_probs
from attnlab.train.seq2seq import (
    encode_source,
    evaluate_exact_match,
    exact_match,
    output_text,
    recipe,
    train_task,
    translate,
)
from attnlab.train.trainer import TrainConfig

TRAIN_ARGS = [
    "--preset",
    "tiny",
    "--task.max_length=5",
    "--task.num_eval_examples=20",
    "--train.eval_interval=15",
    "--train.progress=false",
    "--train.device=cpu",
    "--seed",
    "1",
]


def test_translate_is_a_registered_command():
    assert "attnlab.cli.seq2seq" in cli.COMMAND_MODULES


@pytest.fixture(scope="module")
def trained(tmp_path_factory):
    out = tmp_path_factory.mktemp("seq2seq") / "run"
    rc = main(["train", "--task", "reverse", "--out", str(out), "--max-iters", "30", *TRAIN_ARGS])
    assert rc == 0
    return out


def error_line(capsys) -> str:
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1, err  # one line, never a traceback
    assert err[0].startswith(("attnlab: error:", "attnlab train: error:", "attnlab translate: error:")), err[0]
    return err[0]


# -- metric ------------------------------------------------------------------------------


def test_exact_match_by_hand():
    assert exact_match(["olleh", "cba", "x"], ["olleh", "abc", "x"]) == pytest.approx(2 / 3)
    assert exact_match(["a"], ["a "]) == 0.0  # character for character
    with pytest.raises(ValueError, match="at least one"):
        exact_match([], [])
    with pytest.raises(ValueError, match="2 predictions for 1 references"):
        exact_match(["a", "b"], ["a"])


def test_recipes():
    r = recipe("numbers")
    assert r.task.name == "numbers" and r.train.batch_size == 64
    with pytest.raises(ConfigError, match="unknown task 'copy'; choose one of: reverse, sort, numbers"):
        recipe("copy")


# -- decoding text ---------------------------------------------------------------------------


def small_model_and_data(seed=0):
    task = make_task(TaskConfig(name="reverse", symbols="abcd", max_length=5, num_eval_examples=30))
    tok = task_tokenizer(task)
    torch.manual_seed(seed)
    cfg = Seq2SeqConfig.from_name("tiny", vocab_size=tok.vocab_size, init_std=0.3)
    return Seq2Seq(cfg).eval(), tok, TaskData(task, tok)


def test_translate_matches_greedy_decoding_and_scores():
    model, tok, data = small_model_and_data()
    sources = ["abc", "d", "dcbaa"]
    out = translate(model, tok, sources, max_new_tokens=8)
    batch = data.encode_sources(sources)
    ids = torch.from_numpy(batch["input_ids"])
    gen = greedy_decode(model, ids, max_new_tokens=8)
    for i, t in enumerate(out):
        assert t.source == sources[i]
        assert t.text == output_text(tok, gen.sequences[i].tolist(), tok.eos_id)
        assert t.finished == bool(gen.finished[i])
    assert [t.log_prob for t in out] == pytest.approx(sequence_log_probs(model, ids, gen.sequences).tolist(), abs=1e-4)
    # one at a time, in batches of 2, or all together: the same outputs
    assert [t.text for t in translate(model, tok, sources, max_new_tokens=8, batch_size=2)] == [t.text for t in out]
    beam = translate(model, tok, sources, beam_width=3, length_penalty=0.0, max_new_tokens=8)
    assert all(b.log_prob >= g.log_prob - 1e-4 for b, g in zip(beam, out))
    assert model.training is False


def test_output_text_and_encode_source_by_hand():
    tok = task_tokenizer(make_task(TaskConfig(name="reverse", symbols="ab")))
    assert encode_source(tok, "ab", tok.eos_id) == [4, 5, 2]
    assert output_text(tok, [5, 4, 2, 0, 0], tok.eos_id) == "ba"
    assert output_text(tok, [5, 4], tok.eos_id) == "ba"  # never finished
    with pytest.raises(UnknownCharactersError, match="'z'"):
        encode_source(tok, "abz", tok.eos_id)


def test_evaluate_exact_match_scores_its_own_predictions():
    model, tok, data = small_model_and_data(1)
    examples = data.eval_examples
    r = evaluate_exact_match(model, tok, examples)
    assert r["num_examples"] == len(examples) == 30
    right = sum(p == t for _, t, p in r["predictions"])
    assert r["exact_match"] == right / 30
    assert [p for _, _, p in r["predictions"]] == [t.text for t in translate(model, tok, [s for s, _ in examples])]


def test_too_long_input_is_a_config_error():
    model, tok, _ = small_model_and_data()
    with pytest.raises(ConfigError, match="reads at most 24"):
        translate(model, tok, ["a" * 30])


# -- training ------------------------------------------------------------------------------


def test_train_task_writes_results_with_exact_match(trained, capsys):
    results = json.loads((trained / "results.json").read_text())
    assert results["step"] == 30 and results["task"] == "reverse"
    assert 0.0 <= results["exact_match"] <= 1.0 and 0.0 <= results["exact_match_beam"] <= 1.0
    assert results["num_eval_examples"] == 20 and results["beam_width"] == 4
    evals = [r for r in map(json.loads, (trained / "metrics.jsonl").read_text().splitlines()) if "exact_match" in r]
    assert [r["step"] for r in evals] == [0, 15, 30]  # the hook runs at every evaluation
    run = json.loads((trained / "run.json").read_text())
    assert run["task"]["max_length"] == 5 and run["model"]["num_encoder_layers"] == 1
    # the CLI trains with the task's recipe, changed only where flags say so
    expected = dataclasses.replace(
        recipe("reverse").train, max_iters=30, eval_interval=15, progress=False, device="cpu", seed=1
    )
    assert run["train"] == to_dict(expected)
    predictions = (trained / "predictions.txt").read_text().splitlines()
    assert predictions[0].startswith("held-out examples of the reverse task") and len(predictions) == 21
    model, tok = load_model(trained, expect="seq2seq")
    assert model.config.vocab_size == tok.vocab_size == 30 and model.config.eos_id == tok.eos_id == 2
    # the saved model reproduces the recorded greedy exact match on the same held-out examples
    data = TaskData(make_task(TaskConfig(**run["task"])), tok)
    assert evaluate_exact_match(model, tok, data.eval_examples)["exact_match"] == results["exact_match"]


def test_cli_prints_exact_match(tmp_path, capsys):
    out = tmp_path / "run"
    assert main(["train", "--task", "sort", "--out", str(out), "--max-iters", "5", *TRAIN_ARGS]) == 0
    printed = capsys.readouterr().out
    assert "held-out exact match (20 examples): greedy" in printed and "beam search (width 4)" in printed
    assert "attnlab translate --checkpoint" in printed


def test_resume_continues_to_more_steps(tmp_path):
    out = tmp_path / "run"
    assert main(["train", "--task", "reverse", "--out", str(out), "--max-iters", "10", *TRAIN_ARGS]) == 0
    assert (
        main(
            ["train", "--task", "reverse", "--out", str(out), "--max-iters", "20", "--resume", "--train.progress=false"]
        )
        == 0
    )
    results = json.loads((out / "results.json").read_text())
    assert results["step"] == 20
    steps = [json.loads(line)["step"] for line in (out / "metrics.jsonl").read_text().splitlines()]
    assert steps == sorted(steps) and steps[-1] == 20


@pytest.mark.slow
def test_a_small_model_learns_to_reverse(tmp_path):
    """150 steps on strings of 1-4 letters a-d: held-out exact match close to 100%."""
    task = TaskConfig(name="reverse", symbols="abcd", min_length=1, max_length=4, num_eval_examples=30)
    model = Seq2SeqConfig.from_name("tiny", embed_dim=64)
    train = TrainConfig(
        batch_size=64,
        max_iters=150,
        lr=3e-3,
        min_lr=3e-4,
        warmup_iters=30,
        weight_decay=0.01,
        eval_interval=0,
        eval_iters=2,
        progress=False,
        device="cpu",
        seed=0,
    )
    results = train_task(tmp_path / "run", task=task, model=model, train=train, beam_width=2)
    assert results["num_eval_examples"] == 30
    assert results["exact_match"] >= 0.9
    assert results["exact_match_beam"] >= 0.9


# -- translate ------------------------------------------------------------------------------


def test_translate_command(trained, capsys):
    assert main(["translate", "--checkpoint", str(trained), "--text", "abc", "--text", "ed"]) == 0
    lines = capsys.readouterr().out.splitlines()
    model, tok = load_model(trained)
    assert lines == [t.text for t in translate(model, tok, ["abc", "ed"])]
    assert main(["translate", "--checkpoint", str(trained), "--text", "abc", "--json", "--beam", "2"]) == 0
    data = json.loads(capsys.readouterr().out)
    assert data[0]["source"] == "abc" and set(data[0]) == {"source", "output", "log_prob", "finished"}
    assert main(["translate", "--checkpoint", str(trained), "--text", "abc", "--beam", "3", "--all-beams"]) == 0
    shown = capsys.readouterr().out.splitlines()
    assert shown[0] == "abc:" and len(shown) == 4 and all("log-prob" in s for s in shown[1:])
    assert main(["translate", "--checkpoint", str(trained), "--text", "abc", "--no-kv-cache"]) == 0
    assert capsys.readouterr().out.splitlines() == lines[:1]


@pytest.mark.parametrize(
    "args, message",
    [
        (["--text", "ABC"], "does not know: 'A', 'B', 'C'"),
        (["--text", "abc", "--beam", "0"], "--beam: the value must be from 1 to 64, got 0"),
        (["--text", "abc", "--beam", "65"], "--beam: the value must be from 1 to 64, got 65"),
        (["--text", "abc", "--max-new-tokens", "0"], "--max-new-tokens: the value must be from 1 to 100,000, got 0"),
        (["--text", "abc", "--max-new-tokens", "500"], "max_new_tokens (500) exceeds"),
        (["--text", "a" * 40], "reads at most"),
    ],
)
def test_translate_bad_input(trained, capsys, args, message):
    assert main(["translate", "--checkpoint", str(trained), *args]) == 2
    assert message in error_line(capsys)


def test_translate_needs_a_seq2seq_checkpoint(tmp_path, capsys):
    from attnlab.models.gpt import GPT, GPTConfig

    GPT(GPTConfig.from_name("nano")).save(tmp_path / "gpt")
    assert main(["translate", "--checkpoint", str(tmp_path / "gpt"), "--text", "a"]) == 2
    assert "holds a 'gpt' model, but this command needs seq2seq" in error_line(capsys)
    assert main(["translate", "--checkpoint", str(tmp_path / "missing"), "--text", "a"]) == 2
    assert "does not exist" in error_line(capsys)


# -- bad training input ---------------------------------------------------------------------------


@pytest.mark.parametrize(
    "args, message",
    [
        (["--task", "copy"], "unknown task 'copy'; choose one of: reverse, sort, numbers"),
        (["--task", "reverse", "--objective", "mlm"], "cannot be combined with --objective"),
        (["--task", "reverse", "--task.max_length=0"], "task.max_length (0) must be >= task.min_length (1)"),
        (["--task", "reverse", "--task.min_length=0"], "task.min_length must be at least 1"),
        (["--task", "reverse", "--task.max_length=abc"], "task.max_length: expected int, got 'abc'"),
        (["--task", "reverse", "--task.max_length=100000"], "task.max_length must be from 1 to 1,000, got 100,000"),
        (
            ["--task", "reverse", "--task.num_eval_examples=10000000"],
            "task.num_eval_examples must be from 1 to 100,000",
        ),
        (["--task", "numbers", "--task.max_length=12"], "at most 9"),
        (["--task", "reverse", "--task.bogus=1"], "unknown TaskConfig key(s): task.bogus"),
        (["--task", "reverse", "--task.name=sort"], "choose the task with --task"),
        (["--task", "reverse", "--data", "pydoc"], "--data and --tokenizer do not apply to --task"),
        (["--task", "reverse", "--engine", "numpy"], "--engine numpy trains GPT language models only"),
        (["--task", "reverse", "--preset", "huge"], "unknown seq2seq preset 'huge'"),
        (
            ["--task", "reverse", "--data.source=x"],
            "dotted overrides must start with one of --model., --task., --train.",
        ),
        (["--task", "reverse", "--model.max_source_len=5"], "--model.max_source_len=13"),
        (["--task", "reverse", "--task.max_length=40"], "--model.max_target_len=41"),
        (["--task", "reverse", "--train.batch_size=0"], "train.batch_size must be at least 1"),
    ],
)
def test_bad_training_input_is_one_line_and_exit_2(tmp_path, capsys, args, message):
    assert main(["train", "--out", str(tmp_path / "run"), "--train.progress=false", *args]) == 2
    assert message in error_line(capsys)
    assert not (tmp_path / "run" / "config.json").exists()


def test_existing_checkpoint_needs_resume(trained, capsys):
    assert main(["train", "--task", "reverse", "--out", str(trained), *TRAIN_ARGS]) == 2
    assert "already holds a trained model; pass --resume" in error_line(capsys)
    assert main(["train", "--task", "sort", "--out", str(trained), "--resume"]) == 2
    assert "trained on the reverse task; resume it with --task reverse" in error_line(capsys)


def test_config_file_task_section(tmp_path, capsys):
    cfg = tmp_path / "cfg.yaml"
    cfg.write_text(
        "preset: tiny\ntask:\n  max_length: 4\n  num_eval_examples: 10\ntrain:\n  max_iters: 3\n  progress: false\n"
    )
    out = tmp_path / "run"
    assert main(["train", "--task", "reverse", "--out", str(out), "--config", str(cfg), "--train.eval_interval=0"]) == 0
    run = json.loads((out / "run.json").read_text())
    assert run["task"]["max_length"] == 4 and run["train"]["max_iters"] == 3
    assert run["train"]["batch_size"] == 64  # the task recipe's default where nothing overrides it
    bad = tmp_path / "bad.yaml"
    bad.write_text("task:\n  name: sort\n")
    assert main(["train", "--task", "reverse", "--out", str(tmp_path / "r2"), "--config", str(bad)]) == 2
    assert "cannot set the task name" in error_line(capsys)

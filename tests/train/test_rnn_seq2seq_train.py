"""`attnlab train --task NAME --model rnn|rnn-bahdanau|rnn-luong|transformer`: recipes, a few steps
lower the loss, train + translate end to end (in-process) with each model, resume, bad input."""

import json

import pytest

from attnlab.cli import main
from attnlab.configs.rnn_seq2seq import RNNSeq2SeqConfig
from attnlab.data.seq2seq_tasks import TaskConfig
from attnlab.errors import ConfigError
from attnlab.models.registry import load_model
from attnlab.models.rnn_seq2seq import RNNSeq2Seq
from attnlab.models.seq2seq import Seq2Seq, Seq2SeqConfig
from attnlab.train.seq2seq import TASK_MODELS, recipe, task_model_type, train_task, translate
from attnlab.train.trainer import TrainConfig

TRAIN_ARGS = [
    "--preset",
    "tiny",
    "--task.max_length=5",
    "--task.num_eval_examples=20",
    "--train.eval_interval=5",
    "--train.progress=false",
    "--train.device=cpu",
    "--seed",
    "1",
]
ATTENTION = {"rnn": "none", "rnn-bahdanau": "additive", "rnn-luong": "general"}


def error_line(capsys) -> str:
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1, err  # one line, never a traceback
    assert err[0].startswith(("attnlab: error:", "attnlab train: error:", "attnlab translate: error:")), err[0]
    return err[0]


def test_recipes_for_every_model():
    assert TASK_MODELS == ("rnn", "rnn-bahdanau", "rnn-luong", "transformer")
    assert recipe("reverse").model == recipe("reverse", "transformer").model == Seq2SeqConfig.from_name("small")
    for kind, attention in ATTENTION.items():
        r = recipe("sort", kind)
        assert r.model == RNNSeq2SeqConfig.from_name("small", attention=attention) and r.model_preset == "small"
        assert r.train == recipe("sort").train  # the same optimisation as the transformer
        assert task_model_type(kind) == "rnn_seq2seq"
    assert task_model_type("transformer") == "seq2seq"
    with pytest.raises(ConfigError, match="unknown --model 'lstm'; choose one of: rnn, rnn-bahdanau, rnn-luong"):
        recipe("reverse", "lstm")


@pytest.mark.parametrize("attention", ["none", "additive", "general"])
def test_a_few_training_steps_on_reverse_lower_the_loss(tmp_path, attention):
    task = TaskConfig(name="reverse", symbols="abcd", min_length=1, max_length=4, num_eval_examples=20)
    model = RNNSeq2SeqConfig.from_name("tiny", attention=attention)
    train = TrainConfig(
        batch_size=32,
        max_iters=40,
        lr=1e-2,
        min_lr=1e-3,
        warmup_iters=5,
        eval_interval=40,
        eval_iters=2,
        progress=False,
        device="cpu",
        seed=0,
    )
    results = train_task(tmp_path / "run", task=task, model=model, train=train, beam_width=2)
    evals = [
        r for r in map(json.loads, (tmp_path / "run" / "metrics.jsonl").read_text().splitlines()) if "val_loss" in r
    ]
    assert [r["step"] for r in evals] == [0, 40]
    assert evals[-1]["val_loss"] < 0.8 * evals[0]["val_loss"]
    assert 0.0 <= results["exact_match"] <= 1.0 and "exact_match_beam" in results
    net, _ = load_model(tmp_path / "run")
    assert type(net) is RNNSeq2Seq and net.config.attention == attention


@pytest.mark.parametrize("kind", TASK_MODELS)
def test_cli_train_and_translate_with_each_model(tmp_path, capsys, kind):
    out = tmp_path / "run"
    assert (
        main(["train", "--task", "reverse", "--model", kind, "--out", str(out), "--max-iters", "5", *TRAIN_ARGS]) == 0
    )
    printed = capsys.readouterr().out
    assert "held-out exact match (20 examples): greedy" in printed and "beam search (width 4)" in printed
    model, tok = load_model(out)
    if kind == "transformer":
        assert type(model) is Seq2Seq and model.config == Seq2SeqConfig.from_name("tiny", **_specials(tok))
    else:
        assert type(model) is RNNSeq2Seq
        assert model.config == RNNSeq2SeqConfig.from_name("tiny", attention=ATTENTION[kind], **_specials(tok))
    run = json.loads((out / "run.json").read_text())
    assert run["model"] == json.loads(json.dumps(_dict(model.config)))

    assert main(["translate", "--checkpoint", str(out), "--text", "abc", "--text", "ed"]) == 0
    lines = capsys.readouterr().out.splitlines()
    assert lines == [t.text for t in translate(model, tok, ["abc", "ed"])]
    assert main(["translate", "--checkpoint", str(out), "--text", "abc", "--no-kv-cache"]) == 0
    assert capsys.readouterr().out.splitlines() == lines[:1]
    assert main(["translate", "--checkpoint", str(out), "--text", "abc", "--beam", "3", "--all-beams"]) == 0
    shown = capsys.readouterr().out.splitlines()
    assert shown[0] == "abc:" and all("log-prob" in s for s in shown[1:])
    assert main(["translate", "--checkpoint", str(out), "--text", "abc", "--json", "--beam", "1"]) == 0
    assert json.loads(capsys.readouterr().out)[0]["output"] == lines[0]


def _specials(tok) -> dict:
    return dict(vocab_size=tok.vocab_size, pad_id=tok.pad_id, bos_id=tok.bos_id, eos_id=tok.eos_id)


def _dict(config) -> dict:
    from attnlab.config import to_dict

    return to_dict(config)


def test_model_overrides_win_over_the_named_model(tmp_path):
    out = tmp_path / "run"
    args = ["train", "--task", "reverse", "--model", "rnn-luong", "--model.attention=dot", "--model.cell=lstm"]
    assert main([*args, "--out", str(out), "--max-iters", "3", *TRAIN_ARGS]) == 0
    model, _ = load_model(out)
    assert model.config.attention == "dot" and model.config.cell == "lstm"


def test_resume_a_recurrent_run(tmp_path, capsys):
    out = tmp_path / "run"
    base = ["train", "--task", "reverse", "--out", str(out)]
    assert main([*base, "--model", "rnn-bahdanau", "--max-iters", "4", *TRAIN_ARGS]) == 0
    resume = ["--resume", "--train.progress=false"]
    assert main([*base, "--max-iters", "6", *resume]) == 0  # no --model: the checkpoint's own
    assert json.loads((out / "results.json").read_text())["step"] == 6
    assert main([*base, "--model", "rnn-bahdanau", "--max-iters", "8", *resume]) == 0
    assert json.loads((out / "results.json").read_text())["step"] == 8
    capsys.readouterr()
    assert main([*base, "--model", "transformer", "--max-iters", "9", *resume]) == 2
    assert "cannot resume" in (line := error_line(capsys)) and "holds a rnn_seq2seq model" in line
    assert main([*base, "--model", "rnn-luong", "--max-iters", "9", *resume]) == 2
    assert "model.attention is 'general' now but 'additive' in the checkpoint" in error_line(capsys)
    assert json.loads((out / "results.json").read_text())["step"] == 8


@pytest.mark.parametrize(
    "args, message",
    [
        (["--task", "reverse", "--model", "lstm"], "unknown --model 'lstm'; choose one of: rnn, rnn-bahdanau"),
        (["--model", "rnn"], "--model rnn chooses the encoder-decoder of a --task run; it does not apply"),
        (["--model", "rnn", "--objective", "mlm"], "it does not apply without --task"),
        (["--task", "reverse", "--model", "rnn", "--preset", "huge"], "unknown rnn_seq2seq preset 'huge'"),
        (
            ["--task", "reverse", "--model", "rnn", "--model.attention=luong"],
            "model.attention: expected one of 'none', 'additive'",
        ),
        (["--task", "reverse", "--model", "transformer", "--model.attention=dot"], "unknown Seq2SeqConfig key"),
    ],
)
def test_bad_model_input_is_one_line_and_exit_2(tmp_path, capsys, args, message):
    assert main(["train", "--out", str(tmp_path / "run"), "--train.progress=false", *args]) == 2
    assert message in error_line(capsys)
    assert not (tmp_path / "run" / "config.json").exists()


@pytest.mark.slow
def test_attention_learns_to_reverse_where_the_bottleneck_does_not(tmp_path):
    """200 steps on strings of 1-6 letters a-d: with attention near 100% held-out exact match; without, far less."""
    task = TaskConfig(name="reverse", symbols="abcd", min_length=1, max_length=6, num_eval_examples=30)
    train = TrainConfig(
        batch_size=64,
        max_iters=200,
        lr=1e-2,
        min_lr=1e-3,
        warmup_iters=20,
        weight_decay=0.0,
        eval_interval=0,
        eval_iters=2,
        progress=False,
        device="cpu",
        seed=0,
    )
    scores = {}
    for attention in ("none", "additive", "dot", "general"):
        model = RNNSeq2SeqConfig.from_name("tiny", attention=attention, hidden_dim=64)
        results = train_task(tmp_path / attention, task=task, model=model, train=train, beam_width=2)
        scores[attention] = results["exact_match"]
    assert min(scores["additive"], scores["dot"], scores["general"]) >= 0.9, scores
    assert scores["none"] <= 0.7, scores

"""Alignment heatmaps of seq2seq models (decoder step x source position): `alignment` from
`attnlab.train.seq2seq`, `plot_alignment`, and `attnlab viz alignment` end to end (in-process)
for every attention type, with each kind of bad input answered in one line, exit code 2.

The checkpoints are tiny untrained models saved with a task tokenizer (the weights do not
matter to shapes, row sums and files); one run folder comes from a few steps of `train_task`.
"""

from __future__ import annotations

import numpy as np
import pytest

from attnlab.cli import main
from attnlab.errors import ConfigError, UnknownCharactersError
from attnlab.viz.attention import plot_alignment

ATTENTIONS = ("additive", "dot", "general")
TEXT = "abcab"


def error_line(capsys) -> str:
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1, err  # one line, never a traceback
    assert err[0].startswith("attnlab"), err[0]
    return err[0]


def is_png(path) -> bool:
    return path.is_file() and path.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def _task_tokenizer():
    from attnlab.data.seq2seq_tasks import TaskConfig, make_task, task_tokenizer

    return task_tokenizer(make_task(TaskConfig(name="reverse", symbols="abcd", min_length=1, max_length=6)))


def _specials(tokenizer) -> dict:
    return dict(
        vocab_size=tokenizer.vocab_size, pad_id=tokenizer.pad_id, bos_id=tokenizer.bos_id, eos_id=tokenizer.eos_id
    )


@pytest.fixture(scope="module")
def checkpoints(tmp_path_factory) -> dict:
    """Untrained tiny checkpoints: rnn-none, rnn-additive, rnn-dot, rnn-general, transformer (2 layers x 2 heads)."""
    import torch

    from attnlab.models.rnn_seq2seq import RNNSeq2Seq, RNNSeq2SeqConfig
    from attnlab.models.seq2seq import Seq2Seq, Seq2SeqConfig

    tokenizer = _task_tokenizer()
    root = tmp_path_factory.mktemp("alignment")
    folders = {}
    torch.manual_seed(0)
    for attention in ("none", *ATTENTIONS):
        model = RNNSeq2Seq(
            RNNSeq2SeqConfig.from_name("tiny", attention=attention, max_target_len=8, **_specials(tokenizer))
        )
        folders[attention] = model.save(root / f"rnn-{attention}", tokenizer=tokenizer)
    config = Seq2SeqConfig.from_name(
        "tiny", num_decoder_layers=2, max_source_len=12, max_target_len=8, **_specials(tokenizer)
    )
    folders["transformer"] = Seq2Seq(config).save(root / "transformer", tokenizer=tokenizer)
    return folders


def _load(folder):
    from attnlab.models.registry import load_model

    return load_model(folder)


# --- the library function ---------------------------------------------------------------


@pytest.mark.parametrize("kind", [*ATTENTIONS, "transformer"])
def test_alignment_shapes_and_rows_sum_to_one(checkpoints, kind):
    from attnlab.train.seq2seq import alignment, translate

    model, tokenizer = _load(checkpoints[kind])
    found = alignment(model, tokenizer, TEXT)
    assert found.source_tokens == [*TEXT, "<eos>"]
    assert found.text == translate(model, tokenizer, [TEXT])[0].text  # the same greedy output
    T, S = len(found.output_tokens), len(found.source_tokens)
    L, H = (2, 2) if kind == "transformer" else (1, 1)
    assert found.weights.shape == (L, H, T, S) and found.weights.dtype == np.float32
    np.testing.assert_allclose(found.weights.sum(-1), 1.0, atol=1e-5)  # over every source position, <eos> too
    assert (found.weights >= 0).all()
    assert found.model_type == ("seq2seq" if kind == "transformer" else "rnn_seq2seq")
    assert found.attention == ("multi-head" if kind == "transformer" else kind)
    assert found.output_tokens[-1] == "<eos>" if found.finished else T == 8
    assert not model.training  # eval mode restored (load_model returns eval mode)


def test_alignment_max_new_tokens_and_errors(checkpoints):
    from attnlab.train.seq2seq import alignment

    model, tokenizer = _load(checkpoints["additive"])
    assert alignment(model, tokenizer, TEXT, max_new_tokens=2).weights.shape[2] <= 2
    with pytest.raises(UnknownCharactersError, match="'z'"):
        alignment(model, tokenizer, "abz")
    none, tokenizer = _load(checkpoints["none"])
    with pytest.raises(ConfigError, match="has no attention: it reads the source through one fixed-size state"):
        alignment(none, tokenizer, TEXT)
    transformer, tokenizer = _load(checkpoints["transformer"])
    with pytest.raises(ConfigError, match="reads at most 12"):
        alignment(transformer, tokenizer, "abcd" * 4)


def test_alignment_of_a_trained_run_folder(tmp_path):
    from attnlab.data.seq2seq_tasks import TaskConfig
    from attnlab.models.rnn_seq2seq import RNNSeq2SeqConfig
    from attnlab.train.seq2seq import alignment, train_task
    from attnlab.train.trainer import TrainConfig

    task = TaskConfig(name="reverse", symbols="abcd", min_length=1, max_length=4, num_eval_examples=4)
    train = TrainConfig(batch_size=8, max_iters=2, eval_interval=0, eval_iters=1, progress=False, device="cpu")
    model = RNNSeq2SeqConfig.from_name("tiny", attention="dot", max_target_len=6)
    train_task(tmp_path / "run", task=task, model=model, train=train, beam_width=1)
    found = alignment(*_load(tmp_path / "run"), "abc")
    assert found.weights.shape[:2] == (1, 1) and found.weights.shape[3] == 4
    np.testing.assert_allclose(found.weights.sum(-1), 1.0, atol=1e-5)


# --- the figure -------------------------------------------------------------------------


def test_plot_alignment_is_rectangular_and_checks_labels(tmp_path):
    weights = np.full((3, 5), 0.2, dtype=np.float32)  # 3 decoder steps x 5 source positions
    fig = plot_alignment(weights, [*"abcd", "<eos>"], [*"dc", "<eos>"], title="t")
    (ax, _colorbar) = fig.axes
    assert [t.get_text() for t in ax.get_xticklabels()] == [*"abcd", "<eos>"]
    assert [t.get_text() for t in ax.get_yticklabels()] == [*"dc", "<eos>"]
    assert ax.get_title() == "t"
    assert is_png(plot_alignment(weights, [*"abcd", "<eos>"], [*"dc", "<eos>"], tmp_path / "a.png", dpi=40))
    with pytest.raises(ConfigError, match="got 4 source labels for 5 sources"):
        plot_alignment(weights, list("abcd"), [*"dc", "<eos>"])
    with pytest.raises(ConfigError, match=r"must be \(T, S\)"):
        plot_alignment(weights[None], [*"abcd", "<eos>"], [*"dc", "<eos>"])


# --- the command ------------------------------------------------------------------------


def _viz(checkpoint, out, *extra):
    return main(
        ["viz", "alignment", "--checkpoint", str(checkpoint), "--text", TEXT, "--out", str(out), "--dpi", "20", *extra]
    )


@pytest.mark.parametrize(
    ("kind", "extra"),
    [
        ("additive", []),
        ("dot", []),
        ("general", ["--layer", "0", "--head", "0"]),
        ("transformer", ["--mean"]),
    ],
)
def test_cli_writes_the_figure_for_every_attention(checkpoints, tmp_path, capsys, kind, extra):
    out = tmp_path / "alignment.png"
    assert _viz(checkpoints[kind], out, *extra) == 0
    lines = capsys.readouterr().out.strip().splitlines()
    assert lines[0].startswith(f"{TEXT} -> ") and lines[-1] == str(out)
    assert is_png(out)


def test_cli_svg(checkpoints, tmp_path, capsys):
    out = tmp_path / "alignment.svg"
    assert _viz(checkpoints["transformer"], out, "--layer", "0", "--head", "-1") == 0
    assert "layer 0, head 1" in out.read_text(encoding="utf-8")  # the title names the map drawn
    assert out.read_text(encoding="utf-8").lstrip().startswith(("<?xml", "<svg"))


def test_cli_errors_are_one_line(checkpoints, tmp_path, capsys, request):
    out = tmp_path / "a.png"
    assert _viz(tmp_path / "missing", out) == 2
    assert "missing" in error_line(capsys)
    gpt = request.getfixturevalue("gpt_checkpoint")  # tests/viz/conftest.py: a GPT run is not a seq2seq one
    assert _viz(gpt, out) == 2
    assert "'gpt' model, but this command needs" in error_line(capsys)
    assert _viz(checkpoints["none"], out) == 2
    assert "has no attention: it reads the source through one fixed-size state" in error_line(capsys)
    assert _viz(checkpoints["transformer"], out, "--layer", "2") == 2
    assert "layer 2 does not exist: this model has 2 layers, valid values are 0..1" in error_line(capsys)
    assert _viz(checkpoints["transformer"], out, "--head", "5") == 2
    assert "head 5 does not exist: this model has 2 heads" in error_line(capsys)
    assert _viz(checkpoints["additive"], out, "--head", "1") == 2
    assert "(additive attention) has one alignment map (layer 0, head 0); drop --layer/--head" in error_line(capsys)
    assert _viz(checkpoints["additive"], tmp_path / "a.jpg") == 2
    assert "must end in .png, .svg, .pdf" in error_line(capsys)
    assert _viz(checkpoints["additive"], out, "--head", "0", "--mean") == 2
    assert "not allowed with argument" in error_line(capsys)
    assert (
        main(["viz", "alignment", "--checkpoint", str(checkpoints["additive"]), "--text", "xyz", "--out", str(out)])
        == 2
    )
    assert "'x'" in error_line(capsys)
    assert not out.exists()


def test_help_lists_alignment(capsys):
    assert main(["viz", "--help"]) == 0
    assert "alignment" in capsys.readouterr().out
    assert main(["viz", "alignment", "--help"]) == 0
    text = capsys.readouterr().out
    for option in ("--checkpoint", "--text", "--layer", "--head", "--mean", "--out", "--dpi", "--force"):
        assert option in text

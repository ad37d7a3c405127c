"""`attnlab viz ...` end to end, in-process: files written, paths printed, and every kind of
bad input answered with exit code 2 and one line `attnlab: error: ...`."""

from __future__ import annotations

import numpy as np
import pytest

from attnlab.cli import main
from attnlab.viz.headview import read_head_view_data


def error_line(capsys) -> str:
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1, err  # one line, never a traceback
    assert err[0].startswith("attnlab")
    return err[0]


def is_png(path) -> bool:
    return path.is_file() and path.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def test_help_documents_every_figure_and_option(capsys):
    assert main(["viz", "--help"]) == 0
    text = capsys.readouterr().out
    for figure in ("attention", "positions", "embeddings", "activations", "curves"):
        assert figure in text
    assert main(["viz", "embeddings", "--help"]) == 0
    text = capsys.readouterr().out
    for option in (
        "--sentences",
        "--words",
        "--contextual",
        "--neighbours",
        "--analogy",
        "--random-dims",
        "--model",
        "--top-k",
    ):
        assert option in text
    assert main(["viz"]) == 2
    assert "choose a figure" in error_line(capsys)


@pytest.mark.parametrize("mode", [[], ["--grid"], ["--layer", "1", "--head", "0"], ["--layer", "-1"], ["--mean"]])
def test_attention_modes(gpt_checkpoint, tmp_path, capsys, mode):
    out = tmp_path / "att.png"
    assert (
        main(
            [
                "viz",
                "attention",
                "--checkpoint",
                str(gpt_checkpoint),
                "--text",
                "the lazy dog",
                *mode,
                "--out",
                str(out),
                "--dpi",
                "40",
            ]
        )
        == 0
    )
    assert capsys.readouterr().out.strip() == str(out)
    assert is_png(out)


def test_attention_html_and_svg(gpt_checkpoint, tmp_path, capsys):
    html = tmp_path / "view.html"
    assert (
        main(
            ["viz", "attention", "--checkpoint", str(gpt_checkpoint), "--text", "the fox", "--html", "--out", str(html)]
        )
        == 0
    )
    data = read_head_view_data(html)
    assert data["tokens"] == list("the fox") and data["num_layers"] == 2
    svg = tmp_path / "head.svg"
    assert (
        main(
            [
                "viz",
                "attention",
                "--checkpoint",
                str(gpt_checkpoint),
                "--text",
                "the fox",
                "--layer",
                "0",
                "--head",
                "1",
                "--out",
                str(svg),
            ]
        )
        == 0
    )
    assert "<svg" in svg.read_text(encoding="utf-8")


def test_attention_of_an_encoder_checkpoint(encoder_checkpoint, gpt_checkpoint, tmp_path, capsys):
    import torch

    from attnlab.models.registry import load_model

    out = tmp_path / "enc.html"
    assert (
        main(
            [
                "viz",
                "attention",
                "--checkpoint",
                str(encoder_checkpoint),
                "--text",
                "the dog",
                "--html",
                "--out",
                str(out),
            ]
        )
        == 0
    )
    data = read_head_view_data(out)
    assert data["tokens"] == ["[CLS]", *"the dog", "[SEP]"]  # framed as encoders expect
    model, tokenizer = load_model(encoder_checkpoint)
    ids = torch.tensor([[tokenizer.cls_id, *tokenizer.encode("the dog"), tokenizer.sep_id]])
    with torch.no_grad():
        expected = torch.stack([a[0] for a in model(ids, output_attentions=True).attentions]).numpy()
    np.testing.assert_allclose(np.array(data["attentions"]), expected, atol=5e-6)
    long_text = "the quick brown fox jumps"
    assert (
        main(
            [
                "viz",
                "attention",
                "--checkpoint",
                str(encoder_checkpoint),
                "--text",
                long_text,
                "--truncate",
                "--html",
                "--out",
                str(out),
            ]
        )
        == 0
    )
    tokens = read_head_view_data(out)["tokens"]
    assert len(tokens) == 16 and tokens[0] == "[CLS]" and tokens[-1] == "[SEP]"  # the closing [SEP] is kept
    capsys.readouterr()
    assert (
        main(
            ["viz", "embeddings", "--words", "a", "b", "--model", str(gpt_checkpoint), "--out", str(tmp_path / "x.png")]
        )
        == 2
    )
    assert "embedding figures need an encoder" in error_line(capsys)


def test_attention_truncate(gpt_checkpoint, tmp_path, capsys):
    long_text = "the quick brown fox jumps over the lazy dog"  # 43 characters, context 16
    out = tmp_path / "a.html"
    assert (
        main(
            ["viz", "attention", "--checkpoint", str(gpt_checkpoint), "--text", long_text, "--html", "--out", str(out)]
        )
        == 2
    )
    assert "context is 16 tokens" in error_line(capsys) and not out.exists()
    assert (
        main(
            [
                "viz",
                "attention",
                "--checkpoint",
                str(gpt_checkpoint),
                "--text",
                long_text,
                "--truncate",
                "--html",
                "--out",
                str(out),
            ]
        )
        == 0
    )
    assert "drew the first 16" in capsys.readouterr().out
    assert read_head_view_data(out)["tokens"] == list(long_text[:16])


@pytest.mark.parametrize(
    "args, message",
    [
        (["--text", "THE DOG"], "does not know: 'D', 'E', 'G', 'H', 'O', 'T'"),
        (["--text", ""], "the text is empty"),
        (["--text", "the", "--layer", "2"], r"layer 2 does not exist: this model has 2 layers, valid values are 0..1"),
        (
            ["--text", "the", "--layer", "0", "--head", "-3"],
            "head -3 does not exist: this model has 2 heads, valid values are 0..1",
        ),
        (["--text", "the", "--head", "1"], "--head needs --layer"),
        (["--text", "the", "--grid", "--layer", "0"], "--grid shows every layer and head"),
        (["--text", "the", "--mean", "--layer", "0", "--head", "0"], "--mean averages over heads"),
        (["--text", "the", "--out-format"], "unrecognized arguments"),
    ],
)
def test_attention_bad_inputs(gpt_checkpoint, tmp_path, capsys, args, message):
    rc = main(["viz", "attention", "--checkpoint", str(gpt_checkpoint), *args, "--out", str(tmp_path / "x.png")])
    assert rc == 2
    assert message in error_line(capsys)
    assert not (tmp_path / "x.png").exists()


@pytest.mark.parametrize(
    "args, message",
    [
        (["--checkpoint", "no/such/folder", "--out", "x.png"], "is not a folder"),
        (["--checkpoint", "CKPT", "--out", "x.jpg"], "must end in .png, .svg, .pdf"),
        (["--checkpoint", "CKPT", "--html", "--out", "view.png"], "ending in .html"),
        (
            ["--checkpoint", "CKPT", "--layer", "x", "--out", "x.png"],
            "--layer: the value expects a whole number, got 'x'",
        ),
        (["--checkpoint", "CKPT", "--out", "."], "is a folder"),
    ],
)
def test_attention_bad_paths(gpt_checkpoint, tmp_path, capsys, monkeypatch, args, message):
    monkeypatch.chdir(tmp_path)
    args = [str(gpt_checkpoint) if a == "CKPT" else a for a in args]
    assert main(["viz", "attention", "--text", "the", *args]) == 2
    assert message in error_line(capsys)


def test_attention_of_a_checkpoint_without_attention(tmp_path, capsys):
    (tmp_path / "config.json").write_text('{"format": "attnlab-checkpoint"}')
    assert (
        main(["viz", "attention", "--checkpoint", str(tmp_path), "--text", "a", "--out", str(tmp_path / "x.png")]) == 2
    )
    error_line(capsys)


def test_positions(tmp_path, capsys):
    out = tmp_path / "pos.png"
    assert (
        main(
            [
                "viz",
                "positions",
                "--positions",
                "32",
                "--dim",
                "16",
                "--head-dim",
                "8",
                "--out",
                str(out),
                "--dpi",
                "40",
            ]
        )
        == 0
    )
    assert capsys.readouterr().out.strip() == str(out) and is_png(out)
    svg = tmp_path / "rope.svg"
    assert main(["viz", "positions", "--panel", "rope", "--head-dim", "8", "--out", str(svg)]) == 0
    assert "<svg" in svg.read_text(encoding="utf-8")
    assert main(["viz", "positions", "--dim", "15", "--out", str(out)]) == 2
    assert "even" in error_line(capsys)
    assert main(["viz", "positions", "--panel", "spiral", "--out", str(out)]) == 2
    assert "invalid choice" in error_line(capsys)
    assert main(["viz", "positions", "--period", "0", "--out", str(out)]) == 2
    assert "--period: the value must be greater than 0" in error_line(capsys)


def test_random_dims_needs_no_model(tmp_path, capsys):
    out = tmp_path / "jl.png"
    assert main(["viz", "embeddings", "--random-dims", "4", "64", "--out", str(out), "--dpi", "40"]) == 0
    assert is_png(out)
    assert main(["viz", "embeddings", "--random-dims", "1", "--out", str(out)]) == 2
    assert "--random-dims: the value must be from 2 to 4,096, got 1" in error_line(capsys)
    assert main(["viz", "embeddings", "--out", str(out)]) == 2
    assert "one of the arguments --sentences" in error_line(capsys)
    assert main(["viz", "embeddings", "--sentences", "a", "b", "--words", "c", "--out", str(out)]) == 2
    assert "not allowed with argument" in error_line(capsys)


@pytest.mark.needs_minilm
def test_embeddings_with_minilm(minilm_path, tmp_path, capsys):
    out = tmp_path / "e.png"
    assert (
        main(
            ["viz", "embeddings", "--analogy", "king", "man", "woman", "--top-k", "3", "--out", str(out), "--dpi", "40"]
        )
        == 0
    )
    printed = capsys.readouterr().out
    assert printed.startswith("king - man + woman = queen ") and is_png(out)
    assert (
        main(
            [
                "viz",
                "embeddings",
                "--sentences",
                "Academy of Data Science",
                "Computational Modeling and Data Analytics",
                "--out",
                str(tmp_path / "s.svg"),
            ]
        )
        == 0
    )
    assert (
        main(
            [
                "viz",
                "embeddings",
                "--contextual",
                "model",
                "machine learning model",
                "fashion model",
                "--out",
                str(out),
                "--dpi",
                "40",
            ]
        )
        == 0
    )
    capsys.readouterr()
    assert main(["viz", "embeddings", "--neighbours", "king", "--top-k", "2", "--out", str(out), "--dpi", "40"]) == 0
    assert capsys.readouterr().out.startswith("king: kings ")
    assert main(["viz", "embeddings", "--words", "king", "queen", "--out", str(out), "--dpi", "40"]) == 0
    capsys.readouterr()
    bad = [
        (["--analogy", "king", "man"], "three words"),
        (["--analogy", "kingz", "man", "woman"], "not a single token"),
        (["--contextual", "model", "fashion model"], "at least two CONTEXT"),
        (["--contextual", "bank", "fashion model", "river bank"], "does not occur"),
        (["--sentences", "only one"], "at least two sentences"),
        (["--sentences", "a", ""], "empty"),
        (["--neighbours", "king", "--top-k", "0"], "--top-k"),
        (["--words", "king", "--model", str(tmp_path / "nope")], "is not a folder"),
    ]
    for args, message in bad:
        assert main(["viz", "embeddings", *args, "--out", str(out)]) == 2, args
        assert message in error_line(capsys), args


@pytest.mark.needs_minilm
def test_attention_of_minilm(minilm_path, tmp_path, capsys):
    out = tmp_path / "view.html"
    assert (
        main(["viz", "attention", "--checkpoint", "minilm", "--text", "a fashion model", "--html", "--out", str(out)])
        == 0
    )
    data = read_head_view_data(out)
    assert data["tokens"] == ["[CLS]", "a", "fashion", "model", "[SEP]"]
    assert np.array(data["attentions"]).shape == (6, 12, 5, 5)
    assert (
        main(
            [
                "viz",
                "attention",
                "--checkpoint",
                str(minilm_path),
                "--text",
                "word " * 600,
                "--out",
                str(tmp_path / "a.png"),
            ]
        )
        == 2
    )
    assert "context is 512 tokens" in error_line(capsys)


def test_activations(tmp_path, capsys):
    out = tmp_path / "act.png"
    assert main(["viz", "activations", "--out", str(out), "--dpi", "40", "--x-min", "-3", "--x-max", "3"]) == 0
    assert is_png(out)
    assert main(["viz", "activations", "--out", str(out), "--x-min", "3", "--x-max", "-3"]) == 2
    assert "low < high" in error_line(capsys)


def test_curves(run_dirs, tmp_path, capsys):
    out = tmp_path / "curves.png"
    assert (
        main(["viz", "curves", *map(str, run_dirs), "--out", str(out), "--dpi", "40", "--labels", "A", "B", "--log-y"])
        == 0
    )
    assert capsys.readouterr().out.strip() == str(out) and is_png(out)
    assert (
        main(["viz", "curves", str(run_dirs[0]), "--metric", "lr", "--x", "tokens", "--out", str(tmp_path / "lr.svg")])
        == 0
    )
    capsys.readouterr()
    bad = [
        ([str(tmp_path / "missing")], "does not exist"),
        ([str(run_dirs[0]), "--metric", "bleu"], "no run logged 'bleu'"),
        ([str(run_dirs[0]), "--labels", "A", "B"], "one label per run"),
        ([str(run_dirs[0]), "--x", "epoch"], "invalid choice"),
    ]
    for args, message in bad:
        assert main(["viz", "curves", *args, "--out", str(out)]) == 2, args
        assert message in error_line(capsys), args


def test_attention_of_any_registered_causal_lm(tmp_path, capsys):
    """A LLaMA-style checkpoint is drawn like a GPT's: plain ids (no framing), one map per layer and head."""
    import torch

    llama = pytest.importorskip("attnlab.models.llama")
    from attnlab.models.registry import load_model
    from attnlab.tokenizers import build_tokenizer
    from attnlab.viz.models import attention_model_types, tokenize_for_model

    assert attention_model_types() == ("gpt", "llama", "encoder")
    torch.manual_seed(0)
    tokenizer = build_tokenizer("char", "the quick brown fox")
    model = llama.Llama(llama.Llama.config_class.from_name("nano", vocab_size=tokenizer.vocab_size))
    model.save(tmp_path / "llama", tokenizer=tokenizer)
    out = tmp_path / "llama.html"
    assert (
        main(
            [
                "viz",
                "attention",
                "--checkpoint",
                str(tmp_path / "llama"),
                "--text",
                "the fox",
                "--html",
                "--out",
                str(out),
            ]
        )
        == 0
    )
    data = read_head_view_data(out)
    assert data["tokens"] == list("the fox")
    model, tokenizer = load_model(tmp_path / "llama")
    assert tokenize_for_model(model, tokenizer, "the fox").ids == tokenizer.encode("the fox")
    with torch.no_grad():
        expected = model(torch.tensor([tokenizer.encode("the fox")]), output_attentions=True).attentions
    np.testing.assert_allclose(np.array(data["attentions"]), torch.stack([a[0] for a in expected]).numpy(), atol=5e-6)

"""`attnlab interp cache|patch|ablate|attribute|heads` (`attnlab.cli.interp`).

What is promised: each command writes its tidy CSVs (marked as attnlab's) and PNGs into
--out; the numbers in the CSVs are the library's; every bad input is one line on stderr
and exit code 2; a file attnlab did not write is never replaced.
"""

from __future__ import annotations

import csv
from pathlib import Path

import numpy as np
import pytest
import torch

from attnlab.cli import main

CORPUS = "the cat sat on the mat. a dog ran far away!"


@pytest.fixture(scope="module")
def gpt(tmp_path_factory) -> Path:
    from attnlab.models.gpt import GPT, GPTConfig
    from attnlab.tokenizers.char import CharTokenizer

    tokenizer = CharTokenizer.train(CORPUS)
    torch.manual_seed(0)
    model = GPT(GPTConfig.from_name("nano", vocab_size=tokenizer.vocab_size, max_seq_len=24, bias=True))
    folder = tmp_path_factory.mktemp("interp") / "gpt"
    model.save(folder, tokenizer=tokenizer)
    return folder


def _rows(path: Path) -> list[dict[str, str]]:
    with open(path, encoding="utf-8") as f:
        assert f.readline().startswith("# attnlab-output")
        return list(csv.DictReader(f))


def _error(capsys, argv: list[str], match: str) -> None:
    assert main(argv) == 2
    err = capsys.readouterr().err.strip()
    assert err.count("\n") == 0 and err.startswith("attnlab") and match in err, err


def test_patch_writes_csv_and_png(gpt, tmp_path, capsys):
    out = tmp_path / "out"
    argv = ["interp", "patch", "--checkpoint", str(gpt), "--clean", "the cat", "--corrupted", "the mat"]
    assert main([*argv, "--answer", " ", "--wrong", "s", "--out", str(out)]) == 0
    for kind in ("residual", "attn_out", "mlp_out", "heads"):
        assert (out / f"patch_{kind}.png").stat().st_size > 1000
    rows = _rows(out / "patch_residual.csv")
    assert len(rows) == 3 * 7  # (L + 1) x T
    final_last = [r for r in rows if r["layer_label"] == "final" and r["position"] == "6"]
    assert float(final_last[0]["metric"]) == pytest.approx(1.0, abs=1e-4)
    assert len(_rows(out / "patch_heads.csv")) == 4
    # a second run replaces attnlab's own files
    assert main([*argv, "--answer", " ", "--wrong", "s", "--out", str(out), "--what", "heads"]) == 0


def test_attribute_sums_to_the_logit(gpt, tmp_path, capsys):
    out = tmp_path / "out"
    assert (
        main(["interp", "attribute", "--checkpoint", str(gpt), "--text", "the cat", "--token", "s", "--out", str(out)])
        == 0
    )
    rows = _rows(out / "attribution.csv")
    from attnlab.models.registry import load_model

    model, tok = load_model(gpt)
    with torch.no_grad():
        logit = float(model(torch.tensor([tok.encode("the cat")])).logits[0, -1, tok.encode("s")[0]])
    assert sum(float(r["contribution"]) for r in rows) == pytest.approx(logit, abs=1e-4)
    assert (out / "attribution.png").exists()


def test_ablate_heads_and_cache(gpt, tmp_path, capsys):
    out = tmp_path / "out"
    base = ["--checkpoint", str(gpt), "--out", str(out)]
    assert (
        main(
            [
                "interp",
                "ablate",
                *base,
                "--text",
                "the cat sat",
                "--heads",
                "1.0,0.1",
                "--kind",
                "zero",
                "--max-new-tokens",
                "5",
            ]
        )
        == 0
    )
    assert len(_rows(out / "loss_change.csv")) == 4 and (out / "loss_change.png").exists()
    gen = _rows(out / "generation.csv")
    assert [r["condition"] for r in gen] == ["all heads on", "heads off"]
    assert all(r["text"].startswith("the cat sat") for r in gen)
    assert main(["interp", "heads", *base, "--random", "--half-len", "6", "--batch", "2"]) == 0
    rows = _rows(out / "head_scores.csv")
    assert len(rows) == 4 and {"previous_token", "induction", "entropy"} <= set(rows[0])
    assert (out / "head_scores.png").exists()
    assert main(["interp", "heads", *base, "--text", "the cat"]) == 0
    assert main(["interp", "cache", *base, "--text", "the cat", "--names", "blocks.*.attn.hook_pattern"]) == 0
    shapes = {r["name"]: r["shape"] for r in _rows(out / "hook_points.csv")}
    assert shapes["blocks.0.attn.hook_pattern"] == "1x2x7x7"
    saved = np.load(out / "activations.npz")
    assert saved["blocks.1.attn.hook_pattern"].shape == (1, 2, 7, 7)
    assert main(["interp", "cache", *base, "--text", "the cat", "--names", "hook_embed", "--format", "pt"]) == 0
    assert torch.load(out / "activations.pt", weights_only=True)["hook_embed"].shape == (1, 7, 32)


def test_errors_are_one_line(gpt, tmp_path, capsys):
    out = str(tmp_path / "out")
    patch = ["interp", "patch", "--checkpoint", str(gpt), "--out", out, "--answer", " ", "--wrong", "s"]
    _error(
        capsys,
        [
            "interp",
            "patch",
            "--checkpoint",
            str(tmp_path / "none"),
            "--out",
            out,
            "--clean",
            "a",
            "--corrupted",
            "b",
            "--answer",
            "a",
            "--wrong",
            "b",
        ],
        "no checkpoint",
    )
    _error(capsys, [*patch, "--clean", "the cat", "--corrupted", "the ca"], "same token length")
    _error(
        capsys, [*patch[:-4], "--answer", "ca", "--wrong", "s", "--clean", "the", "--corrupted", "tha"], "single token"
    )
    _error(capsys, ["interp", "attribute", "--checkpoint", str(gpt), "--out", out, "--text", "the cat " * 5], "context")
    _error(
        capsys,
        ["interp", "ablate", "--checkpoint", str(gpt), "--out", out, "--text", "the", "--heads", "7.0"],
        "does not exist",
    )
    _error(
        capsys,
        ["interp", "cache", "--checkpoint", str(gpt), "--out", out, "--text", "the", "--names", "hook_nope"],
        "no hook point",
    )
    _error(
        capsys,
        ["interp", "attribute", "--checkpoint", str(gpt), "--out", out, "--text", "the", "--token", "Z"],
        "attnlab",
    )
    _error(capsys, ["interp"], "choose an experiment")
    # a file of the user's is never replaced
    Path(out).mkdir(exist_ok=True)
    (Path(out) / "attribution.csv").write_text("mine\n")
    _error(capsys, ["interp", "attribute", "--checkpoint", str(gpt), "--out", out, "--text", "the"], "did not write")
    assert (Path(out) / "attribution.csv").read_text() == "mine\n"


def test_a_model_without_hook_points_is_refused(tmp_path, capsys):
    from attnlab.models.rnn_seq2seq import RNNSeq2Seq, RNNSeq2SeqConfig
    from attnlab.tokenizers.char import CharTokenizer

    tokenizer = CharTokenizer.train(CORPUS)
    model = RNNSeq2Seq(RNNSeq2SeqConfig.from_name("tiny", vocab_size=tokenizer.vocab_size))
    model.save(tmp_path / "rnn", tokenizer=tokenizer)
    _error(
        capsys,
        ["interp", "heads", "--checkpoint", str(tmp_path / "rnn"), "--out", str(tmp_path / "o"), "--random"],
        "needs gpt or llama",
    )

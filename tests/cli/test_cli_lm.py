"""The CLI end to end: train, generate, eval, --help, and every kind of bad input."""

import json

import pytest

from attnlab.cli import build_parser, main

TEXT = ("the quick brown fox jumps over the lazy dog. " * 40 + "pack my box with five dozen liquor jugs.\n") * 12


@pytest.fixture(scope="module")
def trained(tmp_path_factory):
    d = tmp_path_factory.mktemp("cli")
    corpus = d / "corpus.txt"
    corpus.write_text(TEXT, encoding="utf-8")
    out = d / "run"
    rc = main(
        [
            "train",
            "--data",
            str(corpus),
            "--out",
            str(out),
            "--preset",
            "nano",
            "--max-iters",
            "30",
            "--train.eval_interval=15",
            "--train.progress=false",
            "--seed",
            "1",
        ]
    )
    assert rc == 0
    return corpus, out


def error_line(capsys) -> str:
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1, err  # one line, never a traceback
    assert err[0].startswith("attnlab")
    return err[0]


def test_train_writes_a_checkpoint_and_prints_results(trained):
    _, out = trained
    results = json.loads((out / "results.json").read_text())
    assert results["step"] == 30
    run = json.loads((out / "run.json").read_text())
    assert run["model"]["num_layers"] == 2 and run["train"]["seed"] == 1


def test_generate(trained, capsys):
    _, out = trained
    assert (
        main(["generate", "--checkpoint", str(out), "--prompt", "the ", "--max-new-tokens", "20", "--seed", "0"]) == 0
    )
    text = capsys.readouterr().out
    assert text.startswith("the ") and len(text.rstrip("\n")) == 24
    assert (
        main(
            [
                "generate",
                "--checkpoint",
                str(out),
                "--prompt",
                "the ",
                "--max-new-tokens",
                "20",
                "--seed",
                "0",
                "--no-kv-cache",
            ]
        )
        == 0
    )
    assert capsys.readouterr().out == text  # same tokens with or without the cache
    assert (
        main(
            ["generate", "--checkpoint", str(out), "--max-new-tokens", "5", "--temperature", "0", "--num-samples", "2"]
        )
        == 0
    )
    assert capsys.readouterr().out.count("--- sample") == 2


def test_eval(trained, capsys):
    corpus, out = trained
    assert main(["eval", "--checkpoint", str(out), "--data", str(corpus), "--json"]) == 0
    r = json.loads(capsys.readouterr().out)
    assert (
        r["split"] == "val" and r["loss"] > 0 and r["perplexity"] == pytest.approx(2.718281828 ** r["loss"], rel=1e-6)
    )
    assert main(["eval", "--checkpoint", str(out), "--data", str(corpus)]) == 0
    assert "perplexity" in capsys.readouterr().out


def test_config_file_and_overrides(tmp_path, trained, capsys):
    corpus, _ = trained
    cfg = tmp_path / "c.yaml"
    cfg.write_text(
        "preset: nano\nmodel:\n  num_layers: 1\ntrain:\n  max_iters: 4\n  eval_interval: 0\n  progress: false\n"
    )
    out = tmp_path / "run"
    assert main(["train", "--data", str(corpus), "--out", str(out), "--config", str(cfg), "--model.embed_dim=16"]) == 0
    run = json.loads((out / "run.json").read_text())
    assert run["model"]["num_layers"] == 1 and run["model"]["embed_dim"] == 16 and run["train"]["max_iters"] == 4
    toml = tmp_path / "c.toml"
    toml.write_text('preset = "nano"\n[train]\nmax_iters = 3\nprogress = false\neval_interval = 0\n')
    assert (
        main(["train", "--data", str(corpus), "--out", str(tmp_path / "t"), "--config", str(toml), "--max-iters", "2"])
        == 0
    )
    assert json.loads((tmp_path / "t" / "results.json").read_text())["step"] == 2  # the flag wins over the file


@pytest.mark.parametrize(
    "args, message",
    [
        (["--model.not_a_field=3"], "unknown GPTConfig key"),
        (["--train.lr=fast"], "train.lr: expected float"),
        (["--train.max_iters=1.5"], "train.max_iters: expected int"),
        (["--optimizer.lr=1"], "dotted overrides must start with"),
        (["--model.num_heads=3"], "divisible"),
        (["--preset", "gigantic"], "unknown GPT preset"),
        (["--tokenizer", "morse"], "unknown tokenizer"),
        (["--train.lr"], "needs a value"),
        (["--frobnicate"], "unrecognized arguments"),
    ],
)
def test_train_rejects_bad_settings_by_name(tmp_path, trained, capsys, args, message):
    corpus, _ = trained
    rc = main(["train", "--data", str(corpus), "--out", str(tmp_path / "x"), "--max-iters", "1"] + args)
    assert rc == 2
    assert message in error_line(capsys)


def test_bad_config_files(tmp_path, trained, capsys):
    corpus, _ = trained
    cases = {
        "a.yaml": ("model: [unclosed", "not valid YAML"),
        "b.yaml": ("optimizer:\n  lr: 1\n", "unknown section"),
        "c.yaml": ("train:\n  batchsize: 3\n", "train.batchsize"),
        "d.json": ("{}", "use a .yaml"),
        "e.toml": ("[train\n", "not valid TOML"),
    }
    for name, (content, message) in cases.items():
        path = tmp_path / name
        path.write_text(content)
        assert main(["train", "--data", str(corpus), "--out", str(tmp_path / "x"), "--config", str(path)]) == 2
        assert message in error_line(capsys), name
    assert main(["train", "--out", str(tmp_path / "x"), "--config", str(tmp_path / "missing.yaml")]) == 2
    assert "does not exist" in error_line(capsys)


def test_bad_data(tmp_path, capsys):
    latin = tmp_path / "latin1.txt"
    latin.write_bytes("caf\xe9 au lait\n".encode("latin-1") * 10)
    empty = tmp_path / "empty.txt"
    empty.write_text("  \n")
    short = tmp_path / "short.txt"
    short.write_text("just a few words")
    cases = [
        (str(tmp_path / "nope.txt"), "neither a file nor a known corpus"),
        (str(tmp_path), "is a folder"),
        (str(latin), "not UTF-8"),
        (str(empty), "is empty"),
        (str(short), "too short"),
    ]
    for data, message in cases:
        assert main(["train", "--data", data, "--out", str(tmp_path / "x"), "--preset", "nano"]) == 2
        assert message in error_line(capsys), data
    assert not (tmp_path / "x").exists() or not any((tmp_path / "x").iterdir())


def test_generate_bad_inputs(tmp_path, trained, capsys):
    _, out = trained
    cases = [
        (["--checkpoint", str(tmp_path / "missing")], "does not exist"),
        (["--checkpoint", str(tmp_path)], "not an attnlab checkpoint"),
        (["--checkpoint", str(out), "--prompt", "Zürich €"], "does not know"),
        (["--checkpoint", str(out), "--top-p", "1.5"], "--top-p: the value must be greater than 0 and at most 1"),
        (["--checkpoint", str(out), "--top-k", "0"], "--top-k: the value must be from 1 to 1,000,000"),
        (["--checkpoint", str(out), "--max-new-tokens", "-3"], "--max-new-tokens: the value must be from 0 to 100,000"),
        (["--checkpoint", str(out), "--max-new-tokens", "10000000000"], "from 0 to 100,000, got 10,000,000,000"),
        (["--checkpoint", str(out), "--temperature", "nan"], "--temperature: the value must be a finite number"),
        (["--checkpoint", str(out), "--temperature", "1e-30"], "temperature must be 0 (or less) for greedy decoding"),
        (["--checkpoint", str(out), "--num-samples", "0"], "--num-samples: the value must be from 1 to 1,000"),
        (["--checkpoint", str(out), "--num-samples", "1001"], "--num-samples: the value must be from 1 to 1,000"),
        (["--checkpoint", str(out), "--temperature", "hot"], "--temperature: the value expects a number, got 'hot'"),
    ]
    for args, message in cases:
        assert main(["generate"] + args) == 2
        line = error_line(capsys)
        assert message in line, (args, line)
    assert capsys.readouterr().out == ""  # nothing half-printed


def test_eval_bad_inputs(tmp_path, trained, capsys):
    corpus, out = trained
    other = tmp_path / "other.txt"
    other.write_text("ÆØÅ" * 100)
    assert main(["eval", "--checkpoint", str(out), "--data", str(other)]) == 2
    assert "does not know" in error_line(capsys)
    assert main(["eval", "--checkpoint", str(out)]) == 2
    assert "--data" in error_line(capsys)


def test_existing_run_needs_resume(trained, capsys):
    corpus, out = trained
    assert main(["train", "--data", str(corpus), "--out", str(out), "--preset", "nano"]) == 2
    assert "--resume" in error_line(capsys)
    assert main(["train", "--data", str(corpus), "--out", str(out), "--resume", "--model.num_layers=3"]) == 2
    line = error_line(capsys)
    assert "model.num_layers is 3 now but" in line and "in the checkpoint" in line


def test_every_command_has_help(capsys):
    parser = build_parser()
    commands = parser._subparsers._group_actions[0].choices
    assert {"demo", "train", "generate", "eval"} <= set(commands)
    for name in commands:
        assert main([name, "--help"]) == 0
        assert "usage: attnlab " + name in capsys.readouterr().out


def test_no_command_prints_help(capsys):
    assert main([]) == 2
    assert "usage: attnlab" in capsys.readouterr().out

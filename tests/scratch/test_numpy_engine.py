"""The NumPy engine drives the Trainer like the PyTorch engine does."""

from __future__ import annotations

import dataclasses
import json
import subprocess
import sys

import numpy as np
import pytest
import torch

from attnlab.data.text import LMData
from attnlab.errors import ConfigError
from attnlab.models.gpt import GPT, GPTConfig
from attnlab.models.registry import load_model
from attnlab.scratch.gpt import NumpyGPT
from attnlab.tokenizers import CharTokenizer
from attnlab.train import TorchEngine, TrainConfig, Trainer
from attnlab.train.numpy_engine import NumpyEngine
from attnlab.train.recipes import make_engine

TEXT = "the quick brown fox jumps over the lazy dog. pack my box with five dozen liquor jugs.\n" * 30


@pytest.fixture(scope="module")
def corpus():
    tok = CharTokenizer.train(TEXT)
    return tok, LMData(np.array(tok.encode(TEXT)), 16, 0.1)


def _configs(tok, **train_overrides):
    model = GPTConfig.from_name("nano", vocab_size=tok.vocab_size, max_seq_len=16)
    train = TrainConfig(
        batch_size=8,
        max_iters=40,
        lr=3e-3,
        min_lr=3e-4,
        warmup_iters=5,
        eval_interval=20,
        eval_iters=2,
        log_interval=5,
        progress=False,
        seed=3,
        **train_overrides,
    )
    return model, train


def test_trainer_trains_the_numpy_gpt_and_torch_reads_the_result(corpus, tmp_path):
    tok, data = corpus
    model_cfg, train = _configs(tok)
    engine = make_engine("numpy", model_cfg, train)
    assert isinstance(engine, NumpyEngine)
    results = Trainer(engine, data, train, tmp_path / "run", tokenizer=tok).fit()
    assert results["engine"] == "numpy" and results["step"] == 40
    records = [json.loads(line) for line in (tmp_path / "run" / "metrics.jsonl").read_text().splitlines()]
    vals = [r["val_loss"] for r in records if "val_loss" in r]
    assert vals[0] > 3.0 and vals[-1] < vals[0] - 0.8, vals  # from ~log(vocab) clearly down
    ref, tokenizer = load_model(tmp_path / "run")
    ids = data.eval_batches(2, 1)[0]["input_ids"]
    np_logits, _ = engine.model.eval().forward(ids)
    np.testing.assert_allclose(np_logits, ref(torch.from_numpy(ids)).logits.detach().numpy(), atol=1e-4)


def test_resume_reproduces_an_uninterrupted_run(corpus, tmp_path):
    tok, data = corpus
    model_cfg, train = _configs(tok, grad_accum_steps=2)
    model_cfg = dataclasses.replace(model_cfg, dropout=0.1)  # the dropout generator's state is resumed too
    full = dataclasses.replace(train, max_iters=6)
    straight = NumpyEngine.for_gpt(model_cfg, full)
    Trainer(straight, data, full, tmp_path / "a").fit()

    first = dataclasses.replace(train, max_iters=3, lr_decay_iters=6)
    second = dataclasses.replace(train, max_iters=6, lr_decay_iters=6)
    Trainer(NumpyEngine.for_gpt(model_cfg, first), data, first, tmp_path / "b").fit()
    resumed = NumpyEngine.for_gpt(model_cfg, second, init_from=tmp_path / "b")
    Trainer(resumed, data, second, tmp_path / "b").fit(resume=True)
    for name, p in straight.model.params.items():
        np.testing.assert_array_equal(resumed.model.params[name], p, err_msg=name)


def test_numpy_engine_steps_equal_torch_engine(corpus):
    """Same weights and micro-batches (accumulation 2, clipping): same losses and norms (float32)."""
    tok, data = corpus
    model_cfg, _ = _configs(tok)
    torch.manual_seed(0)
    ref = GPT(model_cfg)
    ours = NumpyGPT(model_cfg)
    ours.load_state_dict({k: v.numpy() for k, v in ref.state_dict().items()})
    t_engine = TorchEngine(ref, weight_decay=0.1, grad_clip=0.5, device="cpu", precision="fp32", distributed=False)
    n_engine = NumpyEngine(ours, weight_decay=0.1, grad_clip=0.5)
    rng = np.random.default_rng(0)
    for _ in range(4):
        micro = [data.train_batch(4, rng) for _ in range(2)]
        loss_t, norm_t = t_engine.train_step(micro, 2e-3)
        loss_n, norm_n = n_engine.train_step(micro, 2e-3)
        assert loss_n == pytest.approx(loss_t, abs=1e-4)
        assert norm_n == pytest.approx(norm_t, rel=1e-3)
    eval_batches = data.eval_batches(4, 2)
    assert n_engine.eval_loss(eval_batches) == pytest.approx(t_engine.eval_loss(eval_batches), abs=1e-4)
    assert n_engine.num_parameters() == t_engine.num_parameters()


def test_bad_device_or_precision_is_a_config_error(corpus):
    tok, _ = corpus
    model_cfg, train = _configs(tok)
    with pytest.raises(ConfigError, match="CPU only"):
        NumpyEngine.for_gpt(model_cfg, dataclasses.replace(train, device="cuda"))
    with pytest.raises(ConfigError, match="float32"):
        NumpyEngine.for_gpt(model_cfg, dataclasses.replace(train, precision="bf16"))


def test_numpy_engine_does_not_import_torch():
    code = (
        "import sys\n"
        "from attnlab.train.numpy_engine import NumpyEngine\n"
        "from attnlab.train import TrainConfig\n"
        "from attnlab.models.gpt_config import GPTConfig\n"
        "e = NumpyEngine.for_gpt(GPTConfig.from_name('nano'), TrainConfig())\n"
        "import numpy as np\n"
        "b = {'input_ids': np.zeros((2, 8), dtype=np.int64), 'targets': np.ones((2, 8), dtype=np.int64)}\n"
        "e.train_step([b], 1e-3)\n"
        "assert 'torch' not in sys.modules, 'torch was imported'\n"
    )
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60)
    assert result.returncode == 0, result.stderr

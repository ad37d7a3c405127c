"""Trainer: metrics files, determinism, exact resume, gradient accumulation, time limits."""

import json

import numpy as np
import pytest
import torch

from attnlab.data.text import LMData
from attnlab.errors import CheckpointError, ConfigError
from attnlab.models.gpt import GPT, GPTConfig
from attnlab.train import TorchEngine, TrainConfig, Trainer, read_metrics
from attnlab.train.recipes import DataConfig, train_language_model

TEXT = ("the quick brown fox jumps over the lazy dog. " * 40 + "pack my box with five dozen liquor jugs.\n") * 12


@pytest.fixture()
def corpus(tmp_path):
    path = tmp_path / "corpus.txt"
    path.write_text(TEXT, encoding="utf-8")
    return path


def small_run(out, corpus, resume=False, **train_kw):
    cfg = dict(
        batch_size=4,
        max_iters=40,
        eval_interval=10,
        eval_iters=2,
        log_interval=1,
        warmup_iters=5,
        lr_decay_iters=40,
        progress=False,
        seed=3,
    )
    cfg.update(train_kw)
    return train_language_model(
        out,
        data=DataConfig(source=str(corpus)),
        model=GPTConfig.from_name("nano", dropout=0.1),
        train=TrainConfig(**cfg),
        resume=resume,
        write_plots=False,
    )


def test_metrics_and_results_files(tmp_path, corpus):
    out = tmp_path / "run"
    results = small_run(out, corpus, max_iters=12, eval_interval=5)
    lines = [json.loads(rec) for rec in (out / "metrics.jsonl").read_text().splitlines()]
    train_lines = [rec for rec in lines if "train_loss" in rec]
    assert [rec["step"] for rec in train_lines] == list(range(1, 13))
    for rec in train_lines:
        assert {"step", "train_loss", "lr"} <= set(rec)
    evals = [rec["step"] for rec in lines if "val_loss" in rec]
    assert evals == [0, 5, 10, 12]
    saved = json.loads((out / "results.json").read_text())
    assert saved["step"] == 12 and saved == json.loads(json.dumps(results))
    assert saved["val_loss"] == pytest.approx(lines[-1]["val_loss"])
    for name in ("config.json", "model.safetensors", "attnlab_tokenizer.json", "training_state.json", "run.json"):
        assert (out / name).is_file(), name


def test_learning_rate_schedule_in_metrics(tmp_path, corpus):
    out = tmp_path / "run"
    small_run(out, corpus, max_iters=40)
    lrs = {rec["step"]: rec["lr"] for rec in read_metrics(out) if "train_loss" in rec}
    cfg = TrainConfig(warmup_iters=5, lr_decay_iters=40)
    assert lrs[1] == pytest.approx(cfg.lr / 6)  # step 0 of warmup: lr * 1/(5+1)
    assert lrs[6] == pytest.approx(cfg.lr)  # first step after warmup
    assert lrs[40] < lrs[20] < lrs[6]


def test_same_seed_same_losses(tmp_path, corpus):
    a = small_run(tmp_path / "a", corpus, max_iters=8)
    b = small_run(tmp_path / "b", corpus, max_iters=8)
    la = [rec.get("train_loss") for rec in read_metrics(tmp_path / "a")]
    lb = [rec.get("train_loss") for rec in read_metrics(tmp_path / "b")]
    assert la == lb and a["val_loss"] == b["val_loss"]


def test_resume_20_plus_20_equals_40_straight(tmp_path, corpus):
    small_run(tmp_path / "straight", corpus, max_iters=40)
    small_run(tmp_path / "split", corpus, max_iters=20)
    small_run(tmp_path / "split", corpus, resume=True, max_iters=40)
    straight = {
        rec["step"]: rec.get("train_loss") for rec in read_metrics(tmp_path / "straight") if "train_loss" in rec
    }
    split = {rec["step"]: rec.get("train_loss") for rec in read_metrics(tmp_path / "split") if "train_loss" in rec}
    assert sorted(split) == list(range(1, 41))
    assert [split[s] for s in range(1, 41)] == [straight[s] for s in range(1, 41)]  # bit for bit
    a = json.loads((tmp_path / "straight" / "results.json").read_text())
    b = json.loads((tmp_path / "split" / "results.json").read_text())
    assert a["val_loss"] == b["val_loss"]


def test_resume_without_state_and_overwrite_protection(tmp_path, corpus):
    with pytest.raises(CheckpointError):
        small_run(tmp_path / "nothing", corpus, resume=True)
    small_run(tmp_path / "run", corpus, max_iters=3)
    with pytest.raises(ConfigError, match="--resume"):
        small_run(tmp_path / "run", corpus, max_iters=3)


def _engine(seed=0):
    torch.manual_seed(seed)
    model = GPT(GPTConfig.from_name("nano", vocab_size=30))
    return model, TorchEngine(model, lr=1e-3, grad_clip=0.0, distributed=False)


def test_gradient_accumulation_equals_one_big_batch():
    ids = np.random.default_rng(0).integers(0, 30, 3000)
    data = LMData(ids, 32)
    m1, e1 = _engine()
    m2, e2 = _engine()
    big = data.train_batch(8, np.random.default_rng(5))
    halves = [{k: v[:4] for k, v in big.items()}, {k: v[4:] for k, v in big.items()}]
    l1, _ = e1.train_step([big], 1e-3)
    l2, _ = e2.train_step(halves, 1e-3)
    assert l1 == pytest.approx(l2, rel=1e-5)
    for p1, p2 in zip(m1.parameters(), m2.parameters()):
        torch.testing.assert_close(p1, p2, atol=1e-6, rtol=1e-5)


def test_weight_decay_groups():
    model, engine = _engine()
    groups = engine.optimizer.param_groups
    decayed = {id(p) for p in groups[0]["params"]}
    assert groups[0]["weight_decay"] == 0.1 and groups[1]["weight_decay"] == 0.0
    for name, p in model.named_parameters():
        assert (id(p) in decayed) == (p.ndim >= 2), name
    # the tied embedding/head matrix appears once
    assert sum(len(g["params"]) for g in groups) == len(list(model.parameters()))


def test_max_time_stops_early_and_still_checkpoints(tmp_path, corpus):
    results = small_run(tmp_path / "run", corpus, max_iters=10_000, max_time=0.5, eval_interval=0)
    assert results["stopped_early"] == "max_time"
    assert 0 < results["step"] < 10_000
    assert (tmp_path / "run" / "model.safetensors").is_file()


def test_tiny_model_learns_the_corpus(tmp_path, corpus):
    results = small_run(tmp_path / "run", corpus, max_iters=120, eval_interval=60, lr_decay_iters=120)
    lines = read_metrics(tmp_path / "run")
    first_val = lines[0]["val_loss"]
    assert results["val_loss"] < first_val - 1.0


@pytest.mark.parametrize(
    "bad",
    [dict(batch_size=0), dict(lr=-1.0), dict(min_lr=1.0), dict(beta2=1.0), dict(val_fraction=1.0), dict(max_time=0.0)],
)
def test_train_config_validation(bad):
    with pytest.raises(ConfigError):
        TrainConfig(**bad)


def test_nan_loss_is_reported(tmp_path, corpus, monkeypatch, capsys):
    # (lr=1e6 used to make it diverge; learning rates are now bounded by attnlab.limits.MAX_LR)
    real_step = TorchEngine.train_step
    losses = []

    def diverging(self, micro_batches, lr):
        loss, grad_norm = real_step(self, micro_batches, lr)
        losses.append(loss)
        return (float("nan") if len(losses) >= 3 else loss), grad_norm

    monkeypatch.setattr(TorchEngine, "train_step", diverging)
    with pytest.raises(FloatingPointError, match=r"the training loss became nan at step 3; lower train.lr"):
        small_run(tmp_path / "run", corpus, max_iters=30, min_lr=0.0, grad_clip=0.0, warmup_iters=0)
    monkeypatch.undo()

    # A real divergence through the command line (weights initialised far too large): one line, exit 2.
    from attnlab.cli import main

    rc = main(
        [
            "train",
            "--data",
            str(corpus),
            "--out",
            str(tmp_path / "cli"),
            "--preset",
            "nano",
            "--max-iters",
            "5",
            "--model.init_std=1e300",
            "--train.progress=false",
            "--train.device=cpu",
            "--train.eval_iters=1",
        ]
    )
    err = capsys.readouterr().err.strip().splitlines()
    assert rc == 2
    assert err[-1] == (
        "attnlab: error: the training loss became nan at step 1; lower train.lr or raise train.warmup_iters"
    ), err
    assert not any(line.startswith("Traceback") for line in err)


def test_trainer_is_model_agnostic():
    """A two-parameter linear regression trains through the same Trainer."""

    class Linear(torch.nn.Module):
        model_type = "toy"

        def __init__(self):
            super().__init__()
            self.w = torch.nn.Parameter(torch.zeros(1))
            self.b = torch.nn.Parameter(torch.zeros(1))

        def forward(self, x, y):
            from attnlab.models.outputs import ModelOutput

            return ModelOutput(loss=((self.w * x + self.b - y) ** 2).mean())

    class Data:
        def train_batch(self, batch_size, rng):
            x = rng.normal(size=(batch_size, 1)).astype(np.float32)
            return {"x": x, "y": 3 * x - 1}

        def eval_batches(self, batch_size, num_batches, split="val", seed=0):
            rng = np.random.default_rng(seed)
            return [self.train_batch(batch_size, rng) for _ in range(num_batches)]

    model = Linear()
    engine = TorchEngine(model, lr=0.1, weight_decay=0.0, grad_clip=0.0, distributed=False)
    cfg = TrainConfig(max_iters=300, lr=0.05, min_lr=0.01, warmup_iters=0, eval_interval=100, progress=False)
    results = Trainer(engine, Data(), cfg).fit()
    assert results["val_loss"] < 1e-3
    assert model.w.item() == pytest.approx(3.0, abs=0.05) and model.b.item() == pytest.approx(-1.0, abs=0.05)


def test_progress_rate_names_what_it_counts():
    from attnlab.train.trainer import _count_tokens, _rate_unit

    tokens = {"input_ids": np.zeros((4, 16), np.int64), "targets": np.zeros((4, 16), np.int64)}
    images = {"images": np.zeros((8, 1, 28, 28), np.float32), "targets": np.zeros(8, np.int64)}
    clouds = {"points": np.zeros((6, 64, 3), np.float32), "mask": np.ones((6, 64), bool), "targets": np.zeros(6)}
    assert (_rate_unit(tokens), _count_tokens(tokens)) == ("tok", 64)
    assert (_rate_unit(images), _count_tokens(images)) == ("img", 8)  # images, not pixels
    assert (_rate_unit(clouds), _count_tokens(clouds)) == ("ex", 6)


def test_progress_bar_shows_tokens_per_second_for_text(tmp_path, corpus, capsys):
    small_run(tmp_path / "run", corpus, max_iters=6, eval_interval=3, progress=True)
    err = capsys.readouterr().err
    assert "tok/s=" in err and "img/s" not in err

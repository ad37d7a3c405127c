"""The demo's step-time calibration: a burst of load must not shrink the run."""

import pytest

from attnlab.models.gpt_config import GPTConfig
from attnlab.train import recipes
from attnlab.train.engine import TorchEngine
from attnlab.train.trainer import TrainConfig


def test_one_slow_step_does_not_cut_the_iteration_budget(monkeypatch):
    """Four fast steps and three 50x slower ones (another program's burst): the budget
    follows the fast steps. The old median of four steps fell on the slow ones."""
    real_step = TorchEngine.train_step
    calls = {"n": 0}
    clock = {"t": 0.0}

    def fake_step(self, batches, lr):
        calls["n"] += 1
        real_step(self, batches, lr)
        clock["t"] += 5.0 if calls["n"] in (2, 3, 4) else 0.1  # call 1 is the warm-up

    monkeypatch.setattr(TorchEngine, "train_step", fake_step)
    monkeypatch.setattr(recipes.time, "perf_counter", lambda: clock["t"])
    cfg = GPTConfig.from_name("nano")
    iters, per_step = recipes.calibrate_iterations(cfg, TrainConfig(batch_size=2), 120.0, 30)
    assert calls["n"] == 9  # warm-up + 8 trials: 15.7 s of steps, inside the 30 s budget
    assert per_step == pytest.approx(0.1 * 1.15)
    assert iters == int(120.0 / (0.1 * 1.15))


def test_calibration_stops_early_when_steps_are_slow(monkeypatch):
    clock = {"t": 0.0}

    def slow_step(self, batches, lr):
        clock["t"] += 10.0

    monkeypatch.setattr(TorchEngine, "train_step", slow_step)
    monkeypatch.setattr(recipes.time, "perf_counter", lambda: clock["t"])
    iters, per_step = recipes.calibrate_iterations(GPTConfig.from_name("nano"), TrainConfig(batch_size=2), 120.0, 30)
    assert per_step == pytest.approx(10.0 * 1.15)
    assert iters == 50  # the floor: a demo always trains a little

"""Optimizer rules: pure functions == attnlab.scratch.optim == torch.optim, step by step (float64)."""

from __future__ import annotations

import functools
import warnings

import numpy as np
import pytest
import torch

from attnlab.errors import ConfigError
from attnlab.foundations import optimizers as O
from attnlab.foundations import surfaces as S
from attnlab.schedule import warmup_cosine_lr

P, STEPS = 5, 25
PARITY = dict(rtol=1e-7, atol=1e-7)  # the bound; the runs agree to ~1e-15


def _pure_sgd(kwargs):
    """A closure stepping the pure rule functions with SGD-style kwargs."""
    velocity = None

    def step(w, g):
        nonlocal velocity
        if kwargs.get("momentum", 0.0) == 0.0:
            return O.sgd_step(w, g, kwargs["lr"], weight_decay=kwargs.get("weight_decay", 0.0))
        w, velocity = O.momentum_step(w, g, velocity, **kwargs)
        return w

    return step


def _pure_adam(rule, kwargs):
    state = {"m": np.zeros(P), "v": np.zeros(P), "t": 0}

    def step(w, g):
        state["t"] += 1
        w, state["m"], state["v"] = rule(w, g, state["m"], state["v"], state["t"], **kwargs)
        return w

    return step


CASES = [
    # (workshop name, torch class, kwargs shared by torch and the rule functions)
    ("gd", torch.optim.SGD, dict(lr=0.1)),
    ("sgd", torch.optim.SGD, dict(lr=0.05, weight_decay=0.1)),
    ("momentum", torch.optim.SGD, dict(lr=0.05, momentum=0.9)),
    ("momentum", torch.optim.SGD, dict(lr=0.05, momentum=0.8, dampening=0.2, weight_decay=0.01)),
    ("momentum", torch.optim.SGD, dict(lr=0.05, momentum=0.9, nesterov=True)),
    ("adam", torch.optim.Adam, dict(lr=0.01)),
    ("adam", torch.optim.Adam, dict(lr=0.02, betas=(0.8, 0.99), eps=1e-6, weight_decay=0.1)),
    ("adamw", torch.optim.AdamW, dict(lr=0.01)),
    ("adamw", torch.optim.AdamW, dict(lr=0.02, betas=(0.85, 0.95), weight_decay=0.3)),
]


@pytest.mark.parametrize("name, torch_cls, kwargs", CASES, ids=[f"{c[0]}-{i}" for i, c in enumerate(CASES)])
def test_every_step_matches_torch_and_scratch(name, torch_cls, kwargs):
    from attnlab.scratch import optim

    rng = np.random.default_rng(0)
    start = rng.normal(size=P)
    grads = [rng.normal(size=P) * rng.uniform(0.01, 10.0) for _ in range(STEPS)]  # varied scales

    # torch.optim
    t_param = torch.tensor(start.copy(), dtype=torch.float64, requires_grad=True)
    t_opt = torch_cls([t_param], **kwargs)
    # attnlab.scratch.optim, built the way run_on_surface builds it
    s_param = start.copy()
    scratch_cls = {torch.optim.SGD: optim.SGD, torch.optim.Adam: optim.Adam, torch.optim.AdamW: optim.AdamW}[torch_cls]
    s_opt = scratch_cls([s_param], **kwargs)
    # the pure rule functions of this module
    if torch_cls is torch.optim.SGD:
        pure = _pure_sgd(kwargs)
    else:
        pure = _pure_adam(O.adam_step if torch_cls is torch.optim.Adam else O.adamw_step, kwargs)
    w = start.copy()

    for g in grads:
        t_param.grad = torch.tensor(g)
        t_opt.step()
        s_opt.step([g.copy()])
        w = pure(w, g)
        expected = t_param.detach().numpy()
        np.testing.assert_allclose(s_param, expected, **PARITY)
        np.testing.assert_allclose(w, expected, **PARITY)


@pytest.mark.parametrize(
    "name, cls_name, expected",
    [
        ("gd", "SGD", dict(lr=0.1, momentum=0.0, weight_decay=0.0)),
        ("sgd", "SGD", dict(lr=0.1, momentum=0.0, weight_decay=0.0)),
        ("momentum", "SGD", dict(lr=0.1, momentum=0.8, weight_decay=0.0)),
        ("adam", "Adam", dict(lr=0.1, betas=(0.8, 0.9), eps=1e-6, weight_decay=0.0)),
        ("adamw", "AdamW", dict(lr=0.1, betas=(0.8, 0.9), eps=1e-6, weight_decay=0.0)),
    ],
)
def test_make_optimizer_builds_the_scratch_classes(name, cls_name, expected):
    from attnlab.scratch import optim

    made = O.make_optimizer(name, [np.zeros(2)], lr=0.1, momentum=0.8, betas=(0.8, 0.9), eps=1e-6)
    assert type(made) is getattr(optim, cls_name)
    assert {k: made.param_groups[0][k] for k in expected} == expected
    with pytest.raises(ConfigError, match="unknown optimizer"):
        O.make_optimizer("lion", [np.zeros(2)], lr=0.1)


def test_hand_computed_steps():
    w, g = np.array([1.0, 2.0]), np.array([0.5, -1.0])
    np.testing.assert_allclose(O.gd_step(w, g, 0.1), [0.95, 2.1])
    np.testing.assert_allclose(O.sgd_step(w, g, 0.1, weight_decay=0.5), [0.9, 2.0])  # g + 0.5 w = [1, 0]
    new, velocity = O.momentum_step(w, g, None, lr=0.1, momentum=0.9)  # first step: v = g
    np.testing.assert_allclose(velocity, g)
    new, velocity = O.momentum_step(new, g, velocity, lr=0.1, momentum=0.9)  # v = 0.9 g + g
    np.testing.assert_allclose(velocity, 1.9 * g)
    np.testing.assert_allclose(new, w - 0.1 * g - 0.19 * g)
    # Adam's first step: m_hat = g, v_hat = g^2, so each weight moves lr * sign(g)
    new, m, v = O.adam_step(w, g, np.zeros(2), np.zeros(2), 1, lr=0.01, eps=0.0)
    np.testing.assert_allclose(new, w - 0.01 * np.sign(g), rtol=1e-15)
    # AdamW with a zero gradient only decays: w (1 - lr wd)
    new, m, v = O.adamw_step(w, np.zeros(2), np.zeros(2), np.zeros(2), 1, lr=0.1, weight_decay=0.5)
    np.testing.assert_allclose(new, w * 0.95, rtol=1e-15)


@pytest.mark.parametrize("name", ["gd", "momentum", "adam", "adamw"])
def test_run_on_surface_equals_a_loop_of_pure_rules(name):
    surface = S.quadratic(condition_number=10.0, angle_degrees=30.0)
    options = dict(lr=0.05, momentum=0.9, weight_decay=0.05 if name == "adamw" else 0.0)
    run = O.run_on_surface(surface, name, steps=40, **options)
    assert run.points.shape == (41, 2) and run.losses.shape == (41,) and run.lrs.shape == (40,)
    w, velocity, m, v = surface.start.copy(), None, np.zeros(2), np.zeros(2)
    for t in range(1, 41):
        g = surface.grad(w)
        if name == "gd":
            w = O.gd_step(w, g, 0.05)
        elif name == "momentum":
            w, velocity = O.momentum_step(w, g, velocity, 0.05, momentum=0.9)
        elif name == "adam":
            w, m, v = O.adam_step(w, g, m, v, t, lr=0.05)
        else:
            w, m, v = O.adamw_step(w, g, m, v, t, lr=0.05, weight_decay=0.05)
        np.testing.assert_allclose(run.points[t], w, rtol=1e-12, atol=1e-15)
    np.testing.assert_allclose(run.losses, surface.loss(run.points))


def test_gradient_descent_converges_below_and_diverges_above_the_stability_limit():
    surface = S.quadratic(condition_number=20.0)  # largest curvature 20: stable iff lr < 2/20
    stable = O.run_on_surface(surface, "gd", steps=400, lr=0.095)
    assert not stable.diverged and stable.losses[-1] < 1e-8 * stable.losses[0]
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # stops before any overflow
        unstable = O.run_on_surface(surface, "gd", steps=400, lr=0.105)
    assert unstable.diverged and len(unstable.points) < 401


def test_optimizers_reach_the_rosenbrock_minimum():
    surface = S.rosenbrock()
    run = O.run_on_surface(surface, "adam", steps=1500, lr=0.05)
    np.testing.assert_allclose(run.points[-1], surface.minimum, atol=1e-2)


def test_minibatch_sgd():
    rng = np.random.default_rng(0)
    X = rng.normal(size=(64, 2))
    y = X @ np.array([1.5, -2.0]) + 0.5 * rng.normal(size=64)
    surface = S.least_squares_surface(X, y)
    # a "mini-batch" of every row is full-batch gradient descent (up to summation order)
    full = O.run_on_surface(surface, "sgd", steps=30, lr=0.2, batch_size=64)
    gd = O.run_on_surface(surface, "gd", steps=30, lr=0.2)
    np.testing.assert_allclose(full.points, gd.points, rtol=1e-10, atol=1e-12)
    # small batches are noisy but still get close; the seed makes them reproducible
    noisy = O.run_on_surface(surface, "sgd", steps=200, lr=0.1, batch_size=4, seed=3)
    again = O.run_on_surface(surface, "sgd", steps=200, lr=0.1, batch_size=4, seed=3)
    np.testing.assert_array_equal(noisy.points, again.points)
    same_lr = O.run_on_surface(surface, "gd", steps=200, lr=0.1)
    assert np.max(np.abs(noisy.points - same_lr.points)) > 1e-2  # the noise is real
    assert noisy.losses[-1] < 0.05 * noisy.losses[0]
    assert np.linalg.norm(noisy.points[-1] - surface.minimum) < 0.5


def test_schedule_sets_the_learning_rate_of_every_step():
    surface = S.quadratic()
    schedule = functools.partial(warmup_cosine_lr, max_lr=0.01, min_lr=0.001, warmup_iters=5, decay_iters=20)
    run = O.run_on_surface(surface, "adam", steps=25, schedule=schedule)
    np.testing.assert_allclose(run.lrs, [schedule(s) for s in range(25)])


def test_weight_decay_demo_shows_why_adamw_decouples():
    demo = O.weight_decay_demo(steps=400)
    # SGD: the L2 gradient and decoupled decay are the same update (to rounding)
    np.testing.assert_allclose(demo.sgd_l2, demo.sgd_decoupled, rtol=0, atol=1e-12)
    big, small = 0, 1  # weights with gradient scale 10 and 0.001
    # AdamW: both weights follow (1 - lr wd)^t, whatever their gradient scale
    np.testing.assert_allclose(demo.adamw[::2, small], demo.pure_decay[::2, small], atol=0.02)
    np.testing.assert_allclose(demo.adamw[::2, big], demo.pure_decay[::2, big], atol=0.02)
    # Adam + L2: the noisy weight barely decays, the quiet one collapses to 0
    assert demo.adam_l2[-1, big] > demo.adamw[-1, big] + 0.3
    assert abs(demo.adam_l2[-1, small]) < 0.02 < demo.adamw[-1, small]


@pytest.mark.parametrize(
    "kwargs, words",
    [
        (dict(optimizer="rmsprop"), "unknown optimizer"),
        (dict(optimizer="gd", lr=0.0), "lr"),
        (dict(optimizer="gd", lr=-1.0), "lr"),
        (dict(optimizer="gd", steps=-1), "steps"),
        (dict(optimizer="sgd"), "batch_size"),
        (dict(optimizer="gd", batch_size=4), "full gradient"),
        (dict(optimizer="adam", batch_size=4), "surface with data"),
        (dict(optimizer="adam", start=[1.0, 2.0, 3.0]), "start"),
    ],
)
def test_bad_settings_raise_config_errors(kwargs, words):
    with pytest.raises(ConfigError, match=words):
        O.run_on_surface(S.quadratic(), **kwargs)


def test_bad_batch_size_on_a_data_surface():
    surface = S.least_squares_surface(np.eye(2).repeat(3, axis=0), np.arange(6.0))
    for bad in (0, 7, 2.5):
        with pytest.raises(ConfigError, match="batch_size"):
            O.run_on_surface(surface, "sgd", batch_size=bad)

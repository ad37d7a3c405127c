"""The NumPy optimizers take exactly the steps of torch.optim (float64), and clip like torch."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from attnlab.checkpoint import load_training_state, save_training_state
from attnlab.scratch.optim import SGD, Adam, AdamW, clip_grad_norm, global_grad_norm

SHAPES = [(3, 4), (4,), (2, 3, 2)]


def _run_pair(np_cls, torch_cls, kwargs, steps=6, groups=None, lr_schedule=None, seed=0):
    """Run the same gradient sequence through both optimizers; return both parameter lists."""
    rng = np.random.default_rng(seed)
    init = [rng.normal(size=s) for s in SHAPES]
    np_params = [a.copy() for a in init]
    t_params = [torch.tensor(a.copy(), requires_grad=True) for a in init]
    if groups is None:
        np_opt, t_opt = np_cls(np_params, **kwargs), torch_cls(t_params, **kwargs)
    else:
        np_opt = np_cls([{"params": [np_params[i] for i in idx], **extra} for idx, extra in groups], **kwargs)
        t_opt = torch_cls([{"params": [t_params[i] for i in idx], **extra} for idx, extra in groups], **kwargs)
    order = [i for idx, _ in groups for i in idx] if groups else list(range(len(SHAPES)))
    for step in range(steps):
        grads = [rng.normal(size=s) for s in SHAPES]
        if lr_schedule is not None:
            np_opt.lr = lr_schedule(step)
            for g in t_opt.param_groups:
                g["lr"] = lr_schedule(step)
        for p, g in zip(t_params, grads):
            p.grad = torch.tensor(g)
        t_opt.step()
        np_opt.step([grads[i] for i in order])
    return np_params, [p.detach().numpy() for p in t_params], np_opt


@pytest.mark.parametrize(
    "kwargs",
    [
        dict(lr=0.1),
        dict(lr=0.1, weight_decay=0.05),
        dict(lr=0.05, momentum=0.9),
        dict(lr=0.05, momentum=0.9, dampening=0.3, weight_decay=0.01),
        dict(lr=0.05, momentum=0.8, nesterov=True, weight_decay=0.02),
    ],
)
def test_sgd_matches_torch(kwargs):
    ours, ref, _ = _run_pair(SGD, torch.optim.SGD, kwargs)
    for a, b in zip(ours, ref):
        np.testing.assert_allclose(a, b, rtol=0, atol=1e-13)


@pytest.mark.parametrize("kwargs", [dict(lr=0.01), dict(lr=0.02, betas=(0.8, 0.99), eps=1e-6, weight_decay=0.1)])
def test_adam_matches_torch(kwargs):
    ours, ref, _ = _run_pair(Adam, torch.optim.Adam, kwargs, steps=8)
    for a, b in zip(ours, ref):
        np.testing.assert_allclose(a, b, rtol=0, atol=1e-13)


@pytest.mark.parametrize("kwargs", [dict(lr=0.01), dict(lr=0.02, betas=(0.8, 0.99), eps=1e-6, weight_decay=0.3)])
def test_adamw_matches_torch(kwargs):
    ours, ref, _ = _run_pair(AdamW, torch.optim.AdamW, kwargs, steps=8)
    for a, b in zip(ours, ref):
        np.testing.assert_allclose(a, b, rtol=0, atol=1e-13)


def test_param_groups_and_lr_setter_match_torch():
    groups = [([0, 2], {"weight_decay": 0.2}), ([1], {"weight_decay": 0.0, "lr": 0.5})]
    ours, ref, opt = _run_pair(
        AdamW, torch.optim.AdamW, dict(lr=0.01), steps=5, groups=groups, lr_schedule=lambda s: 0.01 * (s + 1)
    )
    for a, b in zip(ours, ref):
        np.testing.assert_allclose(a, b, rtol=0, atol=1e-13)
    assert [g["lr"] for g in opt.param_groups] == [0.05, 0.05]  # the setter reached every group
    assert opt.param_groups[0]["weight_decay"] == 0.2 and opt.param_groups[1]["weight_decay"] == 0.0


def test_step_by_name_and_none_gradient_skips():
    a, b = np.ones(3), np.ones(2)
    opt = SGD([{"params": [a, b], "names": ["a", "b"]}], lr=0.5)
    opt.step({"a": np.full(3, 2.0)})  # no gradient for b: untouched, as in torch
    np.testing.assert_array_equal(a, np.zeros(3))
    np.testing.assert_array_equal(b, np.ones(2))
    with pytest.raises(ValueError, match="gradients for 2 parameters"):
        opt.step([np.ones(3)])


def test_state_dict_round_trip_through_checkpoint(tmp_path):
    """Stop after 3 steps, save through attnlab.checkpoint, resume: same as 6 uninterrupted steps."""
    rng = np.random.default_rng(1)
    init = [rng.normal(size=s) for s in SHAPES]
    grads = [[rng.normal(size=s) for s in SHAPES] for _ in range(6)]
    full = [x.copy() for x in init]
    opt = AdamW([{"params": full[:2], "weight_decay": 0.1}, {"params": full[2:], "weight_decay": 0.0}], lr=0.01)
    for g in grads:
        opt.step(g)

    first = [x.copy() for x in init]
    opt1 = AdamW([{"params": first[:2], "weight_decay": 0.1}, {"params": first[2:], "weight_decay": 0.0}], lr=0.01)
    for g in grads[:3]:
        opt1.step(g)
    save_training_state(tmp_path, {"optimizer": opt1.state_dict(), "params": first})
    loaded = load_training_state(tmp_path)
    resumed = [np.asarray(x) for x in loaded["params"]]
    opt2 = AdamW([{"params": resumed[:2], "weight_decay": 0.5}, {"params": resumed[2:], "weight_decay": 0.0}], lr=0.5)
    opt2.load_state_dict(loaded["optimizer"])
    assert opt2.param_groups[0]["weight_decay"] == 0.1 and opt2.lr == 0.01  # hyper-parameters restored
    assert opt2.param_groups[0]["betas"] == (0.9, 0.999)
    for g in grads[3:]:
        opt2.step(g)
    for a, b in zip(resumed, full):
        np.testing.assert_array_equal(a, b)


def test_load_state_dict_rejects_mismatch():
    opt = Adam([np.ones(3)], lr=0.1)
    opt.step([np.ones(3)])
    other = Adam([np.ones(3), np.ones(2)], lr=0.1)
    with pytest.raises(ValueError, match="different number"):
        other.load_state_dict(opt.state_dict())


@pytest.mark.parametrize("max_norm", [0.5, 100.0])
def test_clip_grad_norm_matches_torch(max_norm):
    rng = np.random.default_rng(2)
    grads = [rng.normal(size=s) for s in SHAPES]
    params = [torch.zeros(s, dtype=torch.float64, requires_grad=True) for s in SHAPES]
    for p, g in zip(params, grads):
        p.grad = torch.tensor(g)
    ref_norm = torch.nn.utils.clip_grad_norm_(params, max_norm)
    ours = [g.copy() for g in grads]
    norm = clip_grad_norm(ours, max_norm)
    assert norm == pytest.approx(float(ref_norm), rel=1e-14)
    for a, p in zip(ours, params):
        np.testing.assert_allclose(a, p.grad.numpy(), rtol=0, atol=1e-15)
    if max_norm < norm:
        assert global_grad_norm(ours) == pytest.approx(max_norm, rel=1e-5)


def test_clip_grad_norm_by_hand():
    g = [np.array([3.0, 4.0])]  # norm 5
    assert clip_grad_norm(g, 1.0) == 5.0
    np.testing.assert_allclose(g[0], np.array([3.0, 4.0]) / (5.0 + 1e-6))


def test_bad_arguments():
    with pytest.raises(ValueError, match="Nesterov"):
        SGD([np.ones(2)], lr=0.1, nesterov=True)
    with pytest.raises(TypeError, match="floating"):
        SGD([np.ones(2, dtype=np.int64)], lr=0.1)
    with pytest.raises(ValueError, match="empty"):
        Adam([], lr=0.1)
    p = np.ones(2)
    with pytest.raises(ValueError, match="twice"):
        Adam([{"params": [p]}, {"params": [p]}])

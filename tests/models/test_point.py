"""Tests for attnlab.models.point: sampling and grouping, set invariances, padding, checkpoints, errors."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from attnlab.configs.point import PointMLPConfig, PointNetConfig, PointTransformerConfig, check_point_count
from attnlab.errors import ConfigError, DataError
from attnlab.models import registry
from attnlab.models.point import (
    FourierFeatures,
    PointMLP,
    PointNet,
    PointTransformer,
    build_point_model,
    farthest_point_sample,
    gather_points,
    knn_groups,
)


def cloud_batch(B=3, P=40, seed=0, dtype=torch.float64):
    g = torch.Generator().manual_seed(seed)
    return torch.randn(B, P, 3, generator=g, dtype=dtype)


def fps_reference(points: np.ndarray, count: int) -> list[int]:
    """Farthest-point sampling written plainly: start farthest from the centroid, then farthest from the picks."""
    centroid = points.mean(0)
    first = max(range(len(points)), key=lambda i: np.sum((points[i] - centroid) ** 2))
    picks = [first]
    while len(picks) < count:
        best = max(
            (i for i in range(len(points)) if i not in picks),
            key=lambda i: min(np.sum((points[i] - points[j]) ** 2) for j in picks),
        )
        picks.append(best)
    return picks


def test_fps_and_knn_against_brute_force_with_padding():
    points = cloud_batch(B=3, P=30, seed=1)
    counts = [30, 22, 17]
    mask = torch.arange(30)[None, :] < torch.tensor(counts)[:, None]
    points = points * mask[..., None]  # padding as zeros, which must never be picked
    centres = farthest_point_sample(points, 8, mask)
    groups = knn_groups(points, gather_points(points, centres), 5, mask)
    assert centres.shape == (3, 8) and groups.shape == (3, 8, 5)
    for b, n in enumerate(counts):
        real = points[b, :n].numpy()
        assert centres[b].tolist() == fps_reference(real, 8)
        for g, c in enumerate(centres[b].tolist()):
            distances = np.sum((real - real[c]) ** 2, axis=1)
            expected = np.argsort(distances, kind="stable")[:5]
            assert set(groups[b, g].tolist()) == set(expected.tolist())
            assert groups[b, g, 0] == c  # a centre is its own nearest neighbour
    assert (groups < torch.tensor(counts)[:, None, None]).all()


def test_fourier_features_layout():
    ff = FourierFeatures(3, 8)
    xyz = torch.tensor([[0.5, -0.25, 1.0]])
    angles = xyz[..., None] * torch.pi * torch.tensor([1.0, 2.0, 4.0])
    feats = torch.cat([xyz, angles.sin().flatten(-2), angles.cos().flatten(-2)], -1)
    torch.testing.assert_close(ff(xyz), ff.proj(feats))
    assert ff.proj.in_features == 3 + 6 * 3


NANO = dict(num_patches=8, patch_size=6, group_dims=(16, 16), embed_dim=16, num_layers=2, num_heads=2, ff_dim=32)


def set_models():
    torch.manual_seed(0)
    return {
        "patch-mlp-cls": PointTransformer(PointTransformerConfig(**NANO, num_classes=5)),
        "patch-fourier-max": PointTransformer(
            PointTransformerConfig(**NANO, num_classes=5, position="fourier", pool="max")
        ),
        "point-mean": PointTransformer(PointTransformerConfig(**NANO, num_classes=5, tokenizer="point", pool="mean")),
        "point-cls": PointTransformer(PointTransformerConfig(**NANO, num_classes=5, tokenizer="point")),
        "pointnet": PointNet(PointNetConfig(num_classes=5, point_dims=(16, 32), head_dims=(16,))),
    }


def randomise(model):
    """Random weights everywhere (the transformer's head starts at zero, which would hide any difference)."""
    g = torch.Generator().manual_seed(1)
    with torch.no_grad():
        for p in model.parameters():
            p.copy_(0.3 * torch.randn(p.shape, generator=g, dtype=p.dtype))
    return model.double().eval()


@pytest.mark.parametrize("name", list(set_models()))
def test_permuting_the_points_leaves_set_models_unchanged(name):
    model = randomise(set_models()[name])
    points = cloud_batch(B=4, P=40, seed=2)
    perm = torch.randperm(40, generator=torch.Generator().manual_seed(3))
    with torch.no_grad():
        before = model(points).logits
        after = model(points[:, perm]).logits
    assert before.abs().max() > 1e-3  # a real signal, not zeros
    torch.testing.assert_close(after, before, atol=1e-6, rtol=0)


def test_permuting_the_points_changes_the_fixed_order_mlp():
    torch.manual_seed(0)
    model = PointMLP(PointMLPConfig(num_classes=5, num_points=40, hidden_dims=(32,))).double().eval()
    points = cloud_batch(B=4, P=40, seed=2)
    perm = torch.randperm(40, generator=torch.Generator().manual_seed(3))
    with torch.no_grad():
        diff = (model(points).logits - model(points[:, perm]).logits).abs().max()
    assert diff > 1e-3


def all_models():
    models = set_models()
    models["mlp"] = PointMLP(PointMLPConfig(num_classes=5, num_points=48, hidden_dims=(32,)))
    return models


@pytest.mark.parametrize("name", list(all_models()))
def test_padding_never_changes_a_clouds_result(name):
    model = randomise(all_models()[name])
    counts = [40, 25, 12]
    clouds = [cloud_batch(B=1, P=n, seed=10 + i)[0] for i, n in enumerate(counts)]
    P = 48  # more than the largest cloud: every cloud is padded
    points = torch.zeros(3, P, 3, dtype=torch.float64)
    mask = torch.zeros(3, P, dtype=torch.bool)
    for i, c in enumerate(clouds):
        points[i, : len(c)] = c
        points[i, len(c) :] = 7.0  # whatever the padding holds, it is never read
        mask[i, : len(c)] = True
    with torch.no_grad():
        batched = model(points, mask=mask).logits
        for i, c in enumerate(clouds):
            alone = model(c[None]).logits[0]
            torch.testing.assert_close(batched[i], alone, atol=1e-6, rtol=0)


def test_outputs_attentions_and_extras():
    model = randomise(set_models()["patch-mlp-cls"])
    points = cloud_batch(B=2, P=30)
    targets = torch.tensor([1, 4])
    out = model(points, targets, output_attentions=True, output_hidden_states=True)
    assert out.logits.shape == (2, 5) and out.loss is not None and out.loss.ndim == 0
    assert len(out.attentions) == 2 and out.attentions[0].shape == (2, 2, 9, 9)  # CLS + 8 patches
    torch.testing.assert_close(out.attentions[0].sum(-1), torch.ones(2, 2, 9, dtype=torch.float64))
    assert len(out.hidden_states) == 3 and out.hidden_states[0].shape == (2, 9, 16)
    assert out.extras["centres"].shape == (2, 8) and out.extras["groups"].shape == (2, 8, 6)
    assert out.extras["features"].shape == (2, 16)
    pn = randomise(set_models()["pointnet"])
    critical = pn(points).extras["critical"]
    assert critical.shape == (2, 32) and int(critical.max()) < 30


def test_clouds_too_small_for_the_patches_are_one_clear_error():
    model = PointTransformer(PointTransformerConfig(**NANO, num_classes=5))
    points = torch.randn(2, 10, 3)
    mask = torch.ones(2, 10, dtype=torch.bool)
    mask[1, 5:] = False
    with pytest.raises(DataError, match="as few as 5 points, but patches of 6 points around 8 centres need at least 8"):
        model(points, mask=mask)
    with pytest.raises(DataError, match="patches of 16 points"):
        check_point_count(PointTransformerConfig(), 12)
    check_point_count(PointTransformerConfig(tokenizer="point"), 1)  # every point a token: any size
    with pytest.raises(DataError, match="more than this MLP's model.num_points"):
        PointMLP(PointMLPConfig(num_points=8))(torch.randn(1, 9, 3))
    with pytest.raises(DataError, match="points must be"):
        PointNet(PointNetConfig())(torch.randn(2, 5))
    with pytest.raises(DataError, match="mask must be"):
        PointNet(PointNetConfig())(torch.randn(2, 5, 3), mask=torch.ones(2, 4, dtype=torch.bool))


@pytest.mark.parametrize(
    "cls, kwargs, message",
    [
        (PointTransformerConfig, dict(tokenizer="voxel"), "model.tokenizer must be"),
        (PointTransformerConfig, dict(position="rotary"), "model.position must be"),
        (PointTransformerConfig, dict(pool="sum"), "model.pool must be"),
        (PointTransformerConfig, dict(num_classes=1), "model.num_classes must be at least 2"),
        (PointTransformerConfig, dict(embed_dim=30, num_heads=4), "divisible by model.num_heads"),
        (PointTransformerConfig, dict(patch_size=0), "model.patch_size must be at least 1"),
        (PointTransformerConfig, dict(group_dims=()), "model.group_dims must be at least one width"),
        (PointNetConfig, dict(point_dims=(16, 0)), "model.point_dims"),
        (PointNetConfig, dict(dropout=1.0), "model.dropout"),
        (PointMLPConfig, dict(num_points=0), "model.num_points must be at least 1"),
    ],
)
def test_config_errors(cls, kwargs, message):
    with pytest.raises(ConfigError, match=message):
        cls(**kwargs)


def test_presets_and_builder():
    for cls in (PointTransformerConfig, PointNetConfig, PointMLPConfig):
        for name in cls.presets:
            cls.from_name(name)
    with pytest.raises(ConfigError, match="unknown point transformer preset 'huge'"):
        PointTransformerConfig.from_name("huge")
    assert build_point_model("point", 8).config.tokenizer == "point"
    assert build_point_model("patch", 8, preset="nano").config.num_patches == 8
    assert build_point_model("mlp", 8, num_points=100).config.num_points == 100
    with pytest.raises(ConfigError, match="unknown point model 'voxnet'"):
        build_point_model("voxnet", 8)


def test_registry_entries_and_checkpoints_round_trip(tmp_path):
    assert {"point_transformer", "pointnet", "point_mlp"} <= set(registry.model_types("classifier"))
    assert registry.config_class("pointnet") is PointNetConfig
    points = cloud_batch(B=2, P=30, dtype=torch.float32)
    for model in [*all_models().values()]:
        if isinstance(model, PointMLP):
            points_in = torch.cat([points, torch.zeros(2, 18, 3)], 1)
        else:
            points_in = points
        randomise(model).float()
        folder = model.save(tmp_path / model.model_type / str(id(model)))
        loaded, _ = registry.load_model(folder)
        assert type(loaded) is type(model) and loaded.config == model.config
        with torch.no_grad():
            torch.testing.assert_close(loaded(points_in).logits, model(points_in).logits)
        assert type(model).from_checkpoint(folder).config == model.config


@pytest.mark.parametrize("name", ["patch-fourier-max", "pointnet"])
def test_a_few_steps_lower_the_loss(name):
    torch.manual_seed(0)
    model = set_models()[name].train()
    points = cloud_batch(B=8, P=30, dtype=torch.float32)
    targets = torch.arange(8) % 5
    opt = torch.optim.AdamW(model.parameters(), lr=1e-2)
    first = None
    for _ in range(40):
        loss = model(points, targets).loss
        first = first if first is not None else float(loss.detach())
        opt.zero_grad()
        loss.backward()
        opt.step()
    assert float(loss.detach()) < 0.7 * first


def test_the_checkpoint_format_of_the_configs_is_pinned():
    from attnlab.config import from_dict, to_dict

    assert to_dict(PointTransformerConfig()) == {
        "num_classes": 8,
        "tokenizer": "patch",
        "num_patches": 32,
        "patch_size": 16,
        "group_dims": [64, 128],
        "position": "mlp",
        "fourier_bands": 8,
        "embed_dim": 64,
        "num_layers": 3,
        "num_heads": 4,
        "ff_dim": 128,
        "dropout": 0.0,
        "pool": "cls",
        "activation": "gelu",
        "norm_first": True,
        "layer_norm_eps": 1e-06,
        "init_std": 0.02,
    }
    assert to_dict(PointNetConfig()) == {
        "num_classes": 8,
        "point_dims": [64, 128, 256],
        "head_dims": [128],
        "dropout": 0.1,
    }
    assert to_dict(PointMLPConfig()) == {"num_classes": 8, "num_points": 256, "hidden_dims": [256, 128], "dropout": 0.1}
    for cls in (PointTransformerConfig, PointNetConfig, PointMLPConfig):
        for name in cls.presets:
            assert from_dict(cls, to_dict(cls.from_name(name))) == cls.from_name(name)

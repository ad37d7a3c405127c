"""Tests for attnlab.compare.points and `attnlab compare points`: names, augmentation, the batch
source, a whole quick comparison, and bad input as one line."""

from __future__ import annotations

import json
import zipfile

import numpy as np
import pytest

from attnlab.cli import main
from attnlab.compare.points import (
    DEFAULT_POINT_RECIPES,
    POINT_MODEL_NAMES,
    PointBatchSource,
    PointsCompareConfig,
    augment_clouds,
    compare_points,
    format_points_table,
    parse_point_model_names,
)
from attnlab.data.points import make_shapes
from attnlab.errors import ConfigError, DataError


def error_line(capsys) -> str:
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1, err
    assert err[0].startswith("attnlab")
    return err[0]


def test_model_names_and_recipes():
    assert parse_point_model_names("patch, PointNet ,mlp") == ["patch", "pointnet", "mlp"]
    assert parse_point_model_names(["point-bert", "points"]) == ["patch", "point"]
    with pytest.raises(ConfigError, match="unknown model 'dgcnn'; valid models: patch, point, pointnet, mlp"):
        parse_point_model_names("patch,dgcnn")
    with pytest.raises(ConfigError, match="listed twice"):
        parse_point_model_names("patch,transformer")
    with pytest.raises(ConfigError, match="no model given"):
        parse_point_model_names(" , ")
    assert set(DEFAULT_POINT_RECIPES) == set(POINT_MODEL_NAMES)
    config = PointsCompareConfig(quick=True, lr=0.01, augment=False)
    assert config.recipe("patch").epochs == 1 and config.recipe("patch").lr == 0.01
    assert config.recipe("mlp").augment is False


def test_augmentation_rotates_about_z_and_keeps_padding_zero():
    rng = np.random.default_rng(0)
    points = rng.normal(size=(5, 10, 3)).astype(np.float32)
    mask = np.ones((5, 10), dtype=bool)
    mask[:, 7:] = False
    points[~mask] = 0
    out = augment_clouds(points, mask, rng, scale=0.0, jitter=1e-9)
    assert out.dtype == np.float32 and not out[~mask].any()
    np.testing.assert_allclose(out[..., 2], points[..., 2], atol=1e-5)  # z untouched by a z rotation
    np.testing.assert_allclose(np.hypot(out[..., 0], out[..., 1]), np.hypot(points[..., 0], points[..., 1]), atol=1e-5)
    assert not np.allclose(out[..., 0], points[..., 0])


def test_batch_source_covers_each_epoch():
    data = make_shapes(2, 1, seed=0)
    source = PointBatchSource(data.train, data.test, augment=False)
    rng = np.random.default_rng(0)
    assert source.steps_per_epoch(4) == 4
    seen = [source.train_batch(4, rng) for _ in range(4)]
    index = np.concatenate(
        [[int(np.flatnonzero((data.train.points == b["points"][j]).all((1, 2)))[0]) for j in range(4)] for b in seen]
    )
    assert sorted(index) == list(range(16))
    assert set(seen[0]) == {"points", "mask", "targets"}
    batches = source.eval_batches(3, 100)
    assert [len(b["targets"]) for b in batches] == [3, 3, 2]
    assert np.array_equal(np.concatenate([b["targets"] for b in batches]), data.test.labels)


def test_quick_comparison_writes_table_figures_and_models(tmp_path):
    from attnlab.models.registry import load_model

    out = tmp_path / "run"
    config = PointsCompareConfig(quick=True, progress=False, device="cpu", num_examples=2)
    result = compare_points(config, out)
    assert list(result["models"]) == list(POINT_MODEL_NAMES)
    for name in ("results.json", "results.md", "learning_curves.png", "point_patches.png", "point_attention.png"):
        assert (out / name).is_file() and (out / name).stat().st_size > 0, name
    for name in POINT_MODEL_NAMES:
        assert (out / f"confusion_{name}.png").is_file()
        r = result["models"][name]
        assert 0.0 <= r["test_accuracy"] <= 1.0 and r["parameters"] > 0 and r["epochs"] == 1
        model, _ = load_model(r["checkpoint"])
        assert model.model_type == r["model_type"]
    saved = json.loads((out / "results.json").read_text())
    assert saved["data"]["name"] == "shapes" and saved["data"]["max_points"] == 64
    assert saved["models"]["patch"]["model_type"] == "point_transformer"
    assert "| patch | FPS + kNN patches" in (out / "results.md").read_text()
    assert result["table"] == format_points_table(result["models"])


def test_cli_quick_run(tmp_path, capsys):
    out = tmp_path / "cli"
    rc = main(
        [
            "compare",
            "points",
            "--models",
            "pointnet,mlp",
            "--quick",
            "--no-progress",
            "--device",
            "cpu",
            "--out",
            str(out),
        ]
    )
    assert rc == 0
    printed = capsys.readouterr().out
    assert "| pointnet |" in printed and "| mlp |" in printed and f"wrote {out / 'results.json'}" in printed
    assert (out / "confusion_pointnet.png").is_file() and (out / "models" / "mlp" / "config.json").is_file()
    assert not (out / "point_attention.png").exists()  # only the patch model draws attention


@pytest.mark.parametrize(
    "args, message",
    [
        (["--models", "patch,voxnet"], "unknown model 'voxnet'; valid models: patch, point, pointnet, mlp"),
        (["--models", "patch", "--quick", "--num-points", "4"], "need at least 8"),
        (["--epochs", "0"], "--epochs: the value must be from 1 to 100,000, got 0"),
        (["--data", "nowhere"], "unknown point-cloud data set 'nowhere'"),
        (["--device", "tpu"], "unknown device"),
    ],
)
def test_bad_input_is_one_line_and_exit_code_2(tmp_path, capsys, args, message):
    out = tmp_path / "out"
    rc = main(["compare", "points", *args, "--out", str(out)])
    assert rc == 2
    assert message in error_line(capsys)
    assert not out.exists()


def test_malformed_modelnet_file_is_one_line(tmp_path, capsys):
    archive = tmp_path / "mine.zip"
    with zipfile.ZipFile(archive, "w") as z:
        z.writestr("ModelNet10/chair/train/chair_0001.off", "OFF\n3 1 0\n0 0 0\n1 0\n")
    rc = main(["compare", "points", "--data", str(archive), "--quick", "--out", str(tmp_path / "o")])
    assert rc == 2
    assert "chair_0001.off" in error_line(capsys)


def test_too_few_points_refused_before_training(tmp_path):
    config = PointsCompareConfig(models=("patch",), quick=True, num_points=5, progress=False)
    with pytest.raises(DataError, match="patches of 8 points around 8 centres"):
        compare_points(config, tmp_path / "x")
    assert not (tmp_path / "x").exists()


def test_help_lists_the_options(capsys):
    assert main(["compare", "points", "--help"]) == 0
    text = capsys.readouterr().out
    assert "--models" in text and "--num-points" in text and "modelnet10" in text and "--data-seed" in text

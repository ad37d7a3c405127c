"""Tests for attnlab.compare.mnist: augmentation, the epoch batch source, helpers, and a
whole comparison on a few hundred images."""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch

from attnlab.compare.mnist import (
    DEFAULT_IMAGE_RECIPES,
    ImageBatchSource,
    MnistCompareConfig,
    build_image_model,
    compare_mnist,
    format_results_table,
    load_image_classifier,
    parse_model_names,
    predict_images,
    random_shift,
)
from attnlab.errors import ConfigError, DataError


def test_random_shift_moves_each_image_by_its_drawn_offset():
    s, B = 2, 6
    images = np.zeros((B, 1, 9, 9), dtype=np.float32)
    images[:, 0, 4, 4] = 1.0  # one lit pixel in the middle
    shifted = random_shift(images, s, np.random.default_rng(5), fill=-1.0)
    check = np.random.default_rng(5)  # the same draws, in the same order
    top, left = check.integers(0, 2 * s + 1, size=B), check.integers(0, 2 * s + 1, size=B)
    for b in range(B):
        # the crop starts at (top, left) of the padded image, so pixel (y, x) lands at (y - top + s, x - left + s)
        y, x = 4 - top[b] + s, 4 - left[b] + s
        assert shifted[b, 0, y, x] == 1.0 and (shifted[b] == 1.0).sum() == 1
        assert set(np.unique(shifted[b])) <= {-1.0, 0.0, 1.0}
    assert shifted.shape == images.shape and shifted.dtype == images.dtype
    assert random_shift(images, 0, np.random.default_rng(0)) is images


def test_random_shift_border_takes_the_fill_value():
    images = np.ones((40, 2, 5, 5), dtype=np.float32)
    shifted = random_shift(images, 1, np.random.default_rng(0), fill=0.25)
    moved = [b for b in range(40) if (shifted[b] == 0.25).any()]
    assert moved and all(np.isin(shifted[b], [1.0, 0.25]).all() for b in range(40))
    assert np.array_equal(shifted[:, 0], shifted[:, 1])  # both channels move together


def test_batch_source_visits_every_image_once_per_epoch():
    n, batch = 12, 4
    labels = np.arange(n, dtype=np.int64)  # the label says which image it is
    images = np.zeros((n, 1, 3, 3), dtype=np.float32)
    source = ImageBatchSource(images, labels, images[:5], labels[:5])
    rng = np.random.default_rng(0)
    assert source.steps_per_epoch(batch) == 3
    for _ in range(2):  # two epochs
        seen = np.concatenate([source.train_batch(batch, rng)["targets"] for _ in range(3)])
        assert sorted(seen) == list(range(n))
    evals = source.eval_batches(2, 100)
    assert [len(b["targets"]) for b in evals] == [2, 2, 1]
    assert np.array_equal(np.concatenate([b["targets"] for b in evals]), labels[:5])
    assert len(source.eval_batches(2, 1)) == 1


def test_batch_source_tops_up_a_short_last_batch():
    labels = np.arange(5, dtype=np.int64)
    source = ImageBatchSource(
        np.zeros((5, 1, 2, 2), np.float32), labels, np.zeros((1, 1, 2, 2), np.float32), labels[:1]
    )
    rng = np.random.default_rng(1)
    batches = [source.train_batch(3, rng)["targets"] for _ in range(2)]
    assert all(len(b) == 3 for b in batches)
    assert set(batches[0]) | set(batches[1][:2]) == set(range(5))  # the first epoch's 5, then the next epoch starts


def test_model_names():
    assert parse_model_names("vit, convnet,MLP") == ["vit", "cnn", "mlp"]
    with pytest.raises(ConfigError, match="valid models: vit, cnn, mlp"):
        parse_model_names("vit,resnet")
    with pytest.raises(ConfigError, match="twice"):
        parse_model_names("cnn,convnet")
    with pytest.raises(ConfigError, match="no model"):
        parse_model_names(" , ")


@pytest.mark.parametrize("name", ["vit", "cnn", "mlp"])
@pytest.mark.parametrize("shape", [(1, 28, 28), (1, 8, 8), (3, 32, 32)])
def test_build_image_model_matches_the_data(name, shape):
    model = build_image_model(name, shape, 7, quick=shape[1] == 28)
    out = model(torch.rand(2, *shape))
    assert out.logits.shape == (2, 7)


def test_build_image_model_rejects_sizes_without_a_patch_size():
    with pytest.raises(ConfigError, match="2, 4 or 7"):
        build_image_model("vit", (1, 9, 9), 10)
    with pytest.raises(ConfigError, match="square"):
        build_image_model("mlp", (1, 28, 20), 10)


def test_config_overrides_and_validation():
    config = MnistCompareConfig(epochs=3, lr=1e-3, augment=False)
    vit = config.recipe("vit")
    assert (vit.epochs, vit.lr, vit.shift_pixels) == (3, 1e-3, 0)
    assert vit.batch_size == DEFAULT_IMAGE_RECIPES["vit"].batch_size
    assert MnistCompareConfig(quick=True).recipe("cnn").epochs == 1
    assert MnistCompareConfig().recipe("vit").shift_pixels == 2
    for bad, message in [
        (dict(epochs=0), "epochs"),
        (dict(batch_size=0), "batch_size"),
        (dict(lr=0.0), "lr"),
        (dict(lr=float("nan")), "lr"),
        (dict(num_train=3), "num_train"),
        (dict(models="vit,rnn"), "valid models"),
    ]:
        with pytest.raises(ConfigError, match=message):
            MnistCompareConfig(**bad)


def test_results_table():
    table = format_results_table(
        {
            "vit": dict(
                parameters=139018, epochs=2, train_seconds=12.345, test_accuracy=0.9612, inference_ms_per_image=0.1234
            )
        }
    )
    assert "| vit | 139,018 | 2 | 12.3 | 96.12% | 0.123 |" in table


@pytest.fixture(scope="module")
def mnist_run(idx_folder, tmp_path_factory):
    """One quick comparison on 300 upscaled digits in an IDX folder (240 train / 60 test)."""
    out = tmp_path_factory.mktemp("compare") / "run"
    done = []
    result = compare_mnist(
        MnistCompareConfig(data=str(idx_folder), quick=True, epochs=2, num_examples=4, progress=False),
        out,
        on_model_done=lambda name, r: done.append(name),
    )
    return out, result, done


def test_compare_mnist_end_to_end(mnist_run):
    out, result, done = mnist_run
    assert done == ["vit", "cnn", "mlp"]
    saved = json.loads((out / "results.json").read_text())
    assert saved["data"]["num_train"] == 240 and saved["data"]["num_test"] == 60
    assert saved["data"]["name"] == "digits28-t10k-split"
    for name in ("vit", "cnn", "mlp"):
        r = saved["models"][name]
        assert r["parameters"] > 0 and r["train_seconds"] > 0 and r["inference_ms_per_image"] > 0
        assert 0.0 <= r["test_accuracy"] <= 1.0 and r["epochs"] == 2 and r["steps"] > 0
        assert [c["epoch"] for c in r["curve"]] == [0.0, 1.0, 2.0]  # the initial evaluation, then every epoch
        assert r["test_accuracy"] == pytest.approx(r["curve"][-1]["test_accuracy"])  # the last point is the final model
        for figure in (f"confusion_{name}.png", f"misclassified_{name}.png"):
            assert (out / figure).stat().st_size > 1000
    for figure in ("learning_curves.png", "vit_attention.png", "vit_patches.png"):
        assert (out / figure).stat().st_size > 1000
    assert result["table"] in (out / "results.md").read_text() and "| vit |" in result["table"]
    assert all(p.startswith(str(out)) for p in result["files"])


@pytest.mark.parametrize(
    "name",
    [
        "vit",
        "cnn",
        "mlp",
    ],
)
def test_saved_models_reproduce_the_reported_accuracy(mnist_run, idx_folder, name):
    from attnlab.data.images import load_images
    from attnlab.models.registry import load_model

    out, result, _ = mnist_run
    model, _ = load_model(out / "models" / name)
    meta = json.loads((out / "models" / name / "config.json").read_text())
    assert meta["class_names"] == [str(d) for d in range(10)] and meta["image_shape"] == [1, 28, 28]
    data = load_images(idx_folder)
    x = torch.as_tensor((data.test_images - meta["normalize_mean"]) / meta["normalize_std"], dtype=torch.float32)
    with torch.no_grad():
        accuracy = (model(x).logits.argmax(-1).numpy() == data.test_labels).mean()
    assert accuracy == pytest.approx(result["models"][name]["test_accuracy"])
    # the helpers the app uses give the same predictions from raw uint8 pixels
    model, metadata = load_image_classifier(out / "models" / name)
    raw = (data.test_images[:, 0] * 255).round().astype(np.uint8)
    probs = predict_images(model, metadata, raw)
    assert probs.shape == (60, 10) and (probs.argmax(1) == data.test_labels).mean() == pytest.approx(accuracy)
    with pytest.raises(DataError, match=r"\(N, 1, 28, 28\)"):
        predict_images(model, metadata, raw[:, :20, :20])


def test_load_image_classifier_rejects_other_checkpoints(tmp_path):
    from attnlab.errors import CheckpointError
    from attnlab.models.registry import save_model

    save_model(build_image_model("mlp", (1, 28, 28), 10, quick=True), tmp_path / "plain")
    with pytest.raises(CheckpointError, match="compare mnist"):
        load_image_classifier(tmp_path / "plain")


def test_compare_mnist_learns_on_digits(tmp_path):
    """The small 8x8 data set trains real (digits preset) models in a few seconds; the
    ConvNet and MLP must beat chance by far after 3 epochs."""
    result = compare_mnist(
        MnistCompareConfig(
            models=("cnn", "mlp"),
            data="digits",
            epochs=3,
            num_train=600,
            num_test=200,
            save_models=False,
            progress=False,
        ),
        tmp_path,
    )
    for name in ("cnn", "mlp"):
        assert result["models"][name]["test_accuracy"] > 0.6, name
    assert not (tmp_path / "models").exists()
    assert not (tmp_path / "vit_attention.png").exists()


def test_compare_mnist_bad_inputs(tmp_path):
    with pytest.raises(DataError, match="neither one of"):
        compare_mnist(MnistCompareConfig(data=str(tmp_path / "missing"), quick=True), tmp_path / "out")
    (tmp_path / "empty").mkdir()
    with pytest.raises(DataError, match="no IDX files"):
        compare_mnist(MnistCompareConfig(data=str(tmp_path / "empty"), quick=True), tmp_path / "out")
    afile = tmp_path / "file.txt"
    afile.write_text("x")
    with pytest.raises(ConfigError, match="is a file"):
        compare_mnist(MnistCompareConfig(data="digits", quick=True), afile)
    assert not (tmp_path / "out").exists()

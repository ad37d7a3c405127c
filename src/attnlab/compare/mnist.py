"""ViT vs ConvNet vs MLP on the same images: `attnlab compare mnist`, as a library call.

Each model is trained with the library's `Trainer` and `TorchEngine` (AdamW, linear
warmup + cosine decay, gradient clipping 1.0) on the normalised training images, for
a number of epochs (every epoch visits every training image once, in a fresh random
order), then evaluated on the test split. The run folder gets:

    results.json             per model: parameters, training seconds, test accuracy,
                             inference ms per image, epochs, settings, per-epoch curve
    results.md               the same as a markdown table (also returned for printing)
    learning_curves.png      training loss and test accuracy after every epoch
    confusion_NAME.png       confusion matrix of each model on the test split
    misclassified_NAME.png   a grid of the test digits each model gets wrong
    vit_attention.png        ViT attention rollout and last-layer CLS attention on test digits
    vit_patches.png          one digit cut into the ViT's patches
    models/NAME/             each trained model as an attnlab checkpoint (safetensors),
                             with the normalisation statistics and class names in config.json

The test split is evaluated after every epoch to draw the curves; it is never used to
choose anything (no early stopping, no model selection): the reported accuracy is the
one of the final weights.

Augmentation: the ViT's default recipe shifts each training image by up to 2 pixels
in each direction (`shift_pixels`), a standard cure for a ViT's lack of built-in
translation invariance on small data (Dosovitskiy et al. 2021 sec. 4.2 discuss how
much data ViTs need). The ConvNet and MLP are trained without augmentation.

Notation: N images, C channels, H height, W width, B batch, K classes.
"""

from __future__ import annotations

import dataclasses
import logging
import math
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from attnlab import limits
from attnlab.bio.metrics import confusion_matrix
from attnlab.compare._common import check_device, train_classifier
from attnlab.errors import ConfigError
from attnlab.runs import writes_run

logger = logging.getLogger(__name__)

__all__ = [
    "IMAGE_MODEL_NAMES",
    "ImageRecipe",
    "DEFAULT_IMAGE_RECIPES",
    "MnistCompareConfig",
    "ImageBatchSource",
    "parse_model_names",
    "build_image_model",
    "random_shift",
    "measure_inference_ms",
    "compare_mnist",
    "format_results_table",
    "load_image_classifier",
    "predict_images",
]

IMAGE_MODEL_NAMES = ("vit", "cnn", "mlp")
_ALIASES = {"convnet": "cnn", "conv": "cnn", "transformer": "vit"}


@dataclass(frozen=True)
class ImageRecipe:
    """How one model is trained by default (each field can be overridden per run)."""

    epochs: int  # passes over the training images
    batch_size: int  # images per optimizer step
    lr: float  # peak AdamW learning rate (after warmup)
    weight_decay: float  # AdamW decoupled weight decay on matrices
    warmup_epochs: float  # linear warmup length, in epochs
    shift_pixels: int  # random translation of training images by up to this many pixels (0 = none)
    min_lr_ratio: float = 0.01  # final learning rate of the cosine decay, as a share of lr

    def __post_init__(self) -> None:
        if self.epochs < 1 or self.batch_size < 1:
            raise ConfigError("epochs and batch_size must be at least 1")
        if not (self.lr > 0 and math.isfinite(self.lr)):
            raise ConfigError(f"lr must be a positive number, got {self.lr}")
        if self.weight_decay < 0 or self.warmup_epochs < 0 or self.shift_pixels < 0:
            raise ConfigError("weight_decay, warmup_epochs and shift_pixels must be >= 0")
        if not 0.0 <= self.min_lr_ratio <= 1.0:
            raise ConfigError(f"min_lr_ratio must be in [0, 1], got {self.min_lr_ratio}")
        limits.check_int(self.epochs, "epochs", 1, limits.MAX_EPOCHS)
        limits.check_int(self.batch_size, "batch_size", 1, limits.MAX_BATCH_SIZE)
        limits.check_float(self.lr, "lr", 0.0, limits.MAX_LR, low_open=True)
        limits.check_float(self.warmup_epochs, "warmup_epochs", 0.0, float(limits.MAX_EPOCHS))
        limits.check_int(self.shift_pixels, "shift_pixels", 0, 1_000)


# Per-model defaults, tuned on the 8,000 / 2,000 split of MNIST's test set (docs/vision.md).
DEFAULT_IMAGE_RECIPES: dict[str, ImageRecipe] = {
    "vit": ImageRecipe(epochs=25, batch_size=128, lr=2e-3, weight_decay=0.05, warmup_epochs=2, shift_pixels=2),
    "cnn": ImageRecipe(epochs=8, batch_size=64, lr=2e-3, weight_decay=0.01, warmup_epochs=0.5, shift_pixels=0),
    "mlp": ImageRecipe(epochs=15, batch_size=64, lr=2e-3, weight_decay=0.01, warmup_epochs=0.5, shift_pixels=0),
}


@dataclass(frozen=True)
class MnistCompareConfig:
    """Settings of `compare_mnist` (the flags of `attnlab compare mnist`)."""

    models: tuple[str, ...] = IMAGE_MODEL_NAMES  # which models to train, in this order: vit, cnn, mlp
    data: str = "mnist5k"  # data set name (mnist5k, mnist, fashion, digits) or a folder of IDX files
    epochs: int | None = None  # epochs for every model; None = each model's recipe (quick: 1)
    batch_size: int | None = None  # batch size for every model; None = each model's recipe
    lr: float | None = None  # peak learning rate for every model; None = each model's recipe
    augment: bool = True  # use the recipes' augmentation (random shifts for the ViT); False = none
    seed: int = 0  # seeds initialisation, batch order, augmentation and dropout
    device: str = "auto"  # auto, cpu, cuda, cuda:N or mps
    num_train: int | None = None  # train on a stratified subset of this many images (None = all)
    num_test: int | None = None  # test on a stratified subset of this many images (None = all)
    quick: bool = False  # tiny models, 1 epoch, at most 600 / 200 images: a smoke test in seconds
    num_examples: int = 8  # digits shown in the ViT attention figure
    save_models: bool = True  # write each trained model to OUT/models/NAME
    progress: bool = True  # progress bars

    def __post_init__(self) -> None:
        object.__setattr__(self, "models", tuple(parse_model_names(self.models)))
        if self.epochs is not None and self.epochs < 1:
            raise ConfigError(f"epochs must be at least 1, got {self.epochs}")
        if self.batch_size is not None and self.batch_size < 1:
            raise ConfigError(f"batch_size must be at least 1, got {self.batch_size}")
        if self.lr is not None and not (self.lr > 0 and math.isfinite(self.lr)):
            raise ConfigError(f"lr must be a positive number, got {self.lr}")
        for name in ("num_train", "num_test"):
            value = getattr(self, name)
            if value is not None and value < 10:
                raise ConfigError(f"{name} must be at least 10 (one image a class), got {value}")
        if self.num_examples < 1:
            raise ConfigError(f"num_examples must be at least 1, got {self.num_examples}")
        # Upper bounds (attnlab.limits): a typo is refused at once, not after hours of training.
        limits.check_seed(self.seed, "seed")
        if self.epochs is not None:
            limits.check_int(self.epochs, "epochs", 1, limits.MAX_EPOCHS)
        if self.batch_size is not None:
            limits.check_int(self.batch_size, "batch_size", 1, limits.MAX_BATCH_SIZE)
        if self.lr is not None:
            limits.check_float(self.lr, "lr", 0.0, limits.MAX_LR, low_open=True)
        for name in ("num_train", "num_test"):
            if getattr(self, name) is not None:
                limits.check_int(getattr(self, name), name, 10, limits.MAX_IMAGES)
        limits.check_int(self.num_examples, "num_examples", 1, 1_000)

    def recipe(self, name: str) -> ImageRecipe:
        """The training recipe of model `name` with this run's overrides applied."""
        base = DEFAULT_IMAGE_RECIPES[name]
        changes: dict[str, Any] = {}
        if self.quick:
            changes["epochs"] = 1
        for field in ("epochs", "batch_size", "lr"):
            if getattr(self, field) is not None:
                changes[field] = getattr(self, field)
        if not self.augment:
            changes["shift_pixels"] = 0
        return dataclasses.replace(base, **changes)


def parse_model_names(names: str | Sequence[str]) -> list[str]:
    """Validate model names ("vit,cnn,mlp" or a list); aliases: convnet -> cnn.

    Raises:
        ConfigError: an unknown or repeated name (the message lists the valid ones).
    """
    items = [n.strip().lower() for n in (names.split(",") if isinstance(names, str) else names)]
    items = [n for n in items if n]
    if not items:
        raise ConfigError(f"no model given; choose from {', '.join(IMAGE_MODEL_NAMES)}")
    out = []
    for item in items:
        name = _ALIASES.get(item, item)
        if name not in IMAGE_MODEL_NAMES:
            raise ConfigError(f"unknown model {item!r}; valid models: {', '.join(IMAGE_MODEL_NAMES)} (convnet = cnn)")
        if name in out:
            raise ConfigError(f"model {name!r} is listed twice")
        out.append(name)
    return out


# ---------------------------------------------------------------------------
# Data: an epoch-style batch source over NumPy arrays
# ---------------------------------------------------------------------------


def random_shift(images: np.ndarray, max_shift: int, rng: np.random.Generator, fill: float = 0.0) -> np.ndarray:
    """Translate each image by a random whole number of pixels in [-max_shift, max_shift].

    Pixels moved in from outside take the value `fill` (the background).

    Args:
        images: (B, C, H, W).
        max_shift: largest shift in pixels, per axis (0 returns the images unchanged).
        rng: NumPy generator for the shifts.
        fill: value of the uncovered border.
    Returns:
        (B, C, H, W) shifted copies, same dtype.
    """
    if max_shift <= 0:
        return images
    B, C, H, W = images.shape
    s = max_shift
    padded = np.full((B, C, H + 2 * s, W + 2 * s), fill, dtype=images.dtype)
    padded[:, :, s : s + H, s : s + W] = images
    top = rng.integers(0, 2 * s + 1, size=B)  # crop start: s means no shift
    left = rng.integers(0, 2 * s + 1, size=B)
    rows = top[:, None] + np.arange(H)  # (B, H)
    cols = left[:, None] + np.arange(W)  # (B, W)
    batch = np.arange(B)[:, None, None]
    # channels-last so that the three index arrays broadcast to (B, H, W) and C stays a slice
    out = padded.transpose(0, 2, 3, 1)[batch, rows[:, :, None], cols[:, None, :]]  # (B, H, W, C)
    return np.ascontiguousarray(out.transpose(0, 3, 1, 2))


class ImageBatchSource:
    """A `BatchSource` for the Trainer that walks through the training images in epochs.

    `train_batch` hands out the images of a random permutation in order and draws a new
    permutation (with the Trainer's generator) when fewer than a batch remain, so every
    image is seen once per epoch. Batches are dicts {"images": (B, C, H, W) float32,
    "targets": (B,) int64}, the keyword arguments of the models' forward.

    Args:
        train_images, train_labels: (N, C, H, W) normalised float32 and (N,) int64.
        test_images, test_labels: the evaluation split, same layout.
        shift_pixels: random translation of training images (0 = no augmentation).
        fill: the normalised background value used for shifted-in pixels.
    """

    def __init__(
        self,
        train_images: np.ndarray,
        train_labels: np.ndarray,
        test_images: np.ndarray,
        test_labels: np.ndarray,
        *,
        shift_pixels: int = 0,
        fill: float = 0.0,
    ):
        self.train_images, self.train_labels = train_images, train_labels
        self.test_images, self.test_labels = test_images, test_labels
        self.shift_pixels = shift_pixels
        self.fill = fill
        self._queue = np.empty(0, dtype=np.int64)

    def steps_per_epoch(self, batch_size: int) -> int:
        """Optimizer steps that cover the training images once (the last batch is topped up)."""
        return math.ceil(len(self.train_labels) / batch_size)

    def train_batch(self, batch_size: int, rng: np.random.Generator) -> dict[str, np.ndarray]:
        """The next `batch_size` images of the current epoch's permutation."""
        while len(self._queue) < batch_size:
            self._queue = np.concatenate([self._queue, rng.permutation(len(self.train_labels))])
        index, self._queue = self._queue[:batch_size], self._queue[batch_size:]
        images = random_shift(self.train_images[index], self.shift_pixels, rng, self.fill)
        return {"images": images, "targets": self.train_labels[index]}

    def eval_batches(
        self, batch_size: int, num_batches: int, split: str = "val", seed: int = 0
    ) -> list[dict[str, np.ndarray]]:
        """The test split in order, in batches (at most `num_batches`)."""
        n = len(self.test_labels)
        return [
            {"images": self.test_images[i : i + batch_size], "targets": self.test_labels[i : i + batch_size]}
            for i in range(0, n, batch_size)
        ][:num_batches]


# ---------------------------------------------------------------------------
# Models
# ---------------------------------------------------------------------------


def _preset_for(name: str, image_size: int, quick: bool) -> str:
    if image_size == 8:
        return "digits"
    if quick:
        return "tiny"
    return "mnist"


def build_image_model(name: str, image_shape: Sequence[int], num_classes: int, *, quick: bool = False) -> Any:
    """Build model `name` ("vit", "cnn", "mlp") for images of shape (C, H, W).

    Presets: "mnist" for 28 x 28 images, "digits" for 8 x 8, "tiny" in quick mode; other
    sizes take the "mnist" preset with `image_size` changed (a ViT then needs a patch
    size that divides it: 4 or 7 are tried, then 2).

    Returns:
        An nn.Module whose forward(images, targets) returns a `ModelOutput`.
    """
    channels, height, width = (int(s) for s in image_shape)
    if height != width:
        raise ConfigError(f"the models need square images, got {height} x {width}; crop or pad them first")
    preset = _preset_for(name, height, quick)
    common = dict(image_size=height, in_channels=channels, num_classes=num_classes)
    if name == "vit":
        from attnlab.models.vit import VIT_PRESETS, ViT, ViTConfig

        patch = VIT_PRESETS[preset]["patch_size"]
        if height % patch:
            patch = next((p for p in (4, 7, 2) if height % p == 0), None)
            if patch is None:
                raise ConfigError(
                    f"images of {height} x {height} pixels cannot be cut into 2, 4 or 7 pixel patches; "
                    "resize them (e.g. to 28 x 28) or build a ViTConfig with a patch_size that divides the size"
                )
        return ViT(ViTConfig.from_name(preset, patch_size=patch, **common))
    from attnlab.models.baselines import build_image_baseline

    return build_image_baseline("convnet" if name == "cnn" else "mlp", preset, **common)


# ---------------------------------------------------------------------------
# Evaluation helpers
# ---------------------------------------------------------------------------


def _predict(model: Any, images: np.ndarray, device: Any, batch_size: int = 500) -> np.ndarray:
    """(N, K) softmax probabilities of `model` (eval mode) on normalised images."""
    import torch

    model.eval()
    probs = []
    with torch.no_grad():
        for i in range(0, len(images), batch_size):
            x = torch.as_tensor(images[i : i + batch_size], device=device)
            probs.append(torch.softmax(model(x).logits.float(), dim=-1).cpu().numpy())
    return np.concatenate(probs)


def measure_inference_ms(
    model: Any, images: np.ndarray, device: Any, *, batch_size: int = 256, repeats: int = 3
) -> float:
    """Milliseconds per image of a forward pass in eval mode, in batches of `batch_size`.

    The best of `repeats` passes over `images` is kept (the least disturbed by other
    programs); one warm-up batch runs first.

    Returns:
        Milliseconds per image (throughput-based, not single-image latency).
    """
    import torch

    model.eval()
    sync = torch.cuda.synchronize if getattr(device, "type", str(device)).startswith("cuda") else (lambda: None)
    batches = [torch.as_tensor(images[i : i + batch_size], device=device) for i in range(0, len(images), batch_size)]
    best = math.inf
    with torch.no_grad():
        model(batches[0])
        for _ in range(repeats):
            sync()
            start = time.perf_counter()
            for x in batches:
                model(x)
            sync()
            best = min(best, time.perf_counter() - start)
    return 1000.0 * best / len(images)


# ---------------------------------------------------------------------------
# The comparison
# ---------------------------------------------------------------------------


def _load_data(config: MnistCompareConfig) -> Any:
    from attnlab.data.images import load_images

    data = load_images(config.data)
    num_train, num_test = config.num_train, config.num_test
    if config.quick:
        num_train = num_train or 600
        num_test = num_test or 200
    if num_train is not None or num_test is not None:
        num_train = None if num_train is None or num_train >= len(data.train_labels) else num_train
        num_test = None if num_test is None or num_test >= len(data.test_labels) else num_test
        data = data.subset(num_train, num_test)
    return data


@writes_run("compare")
def compare_mnist(
    config: MnistCompareConfig,
    out_dir: str | Path,
    *,
    on_model_done: Callable[[str, dict[str, Any]], None] | None = None,
) -> dict[str, Any]:
    """Train and compare image classifiers; write results, figures and checkpoints.

    Args:
        config: what to train and on which data.
        out_dir: run folder (created; existing files in it are overwritten).
        on_model_done: called with (name, result) after each model, e.g. to print progress.
    Returns:
        The results dict written to OUT/results.json, plus "table" (markdown) and
        "files" (paths written).
    """
    import torch

    from attnlab.models.registry import save_model
    from attnlab.utils import seed_everything, write_json_atomic, write_text_atomic
    from attnlab.viz import vision

    out = Path(out_dir)
    if out.exists() and not out.is_dir():
        raise ConfigError(f"--out {str(out)!r} is a file; pass a folder for the results")
    check_device(config.device)
    data = _load_data(config)
    out.mkdir(parents=True, exist_ok=True)
    train_x, test_x = data.normalize(data.train_images), data.normalize(data.test_images)
    background = float(data.normalize(np.zeros(1, dtype=np.float32))[0])  # a 0 pixel, normalised
    logger.info("%s", data.summary())

    files: list[str] = []
    device_name = "cpu"
    models: dict[str, dict[str, Any]] = {}
    predictions: dict[str, np.ndarray] = {}
    trained: dict[str, Any] = {}
    for name in config.models:
        recipe = config.recipe(name)
        seed_everything(config.seed)  # each model starts from the same seed, whatever the order
        model = build_image_model(name, data.image_shape, data.num_classes, quick=config.quick)
        source = ImageBatchSource(
            train_x, data.train_labels, test_x, data.test_labels, shift_pixels=recipe.shift_pixels, fill=background
        )
        saved = [m["checkpoint"] for m in models.values() if "checkpoint" in m]
        engine, results, curve = train_classifier(name, model, recipe, source, config, what="images", saved=saved)
        model = engine.module
        device_name = str(engine.device)
        probs = _predict(model, test_x, engine.device)
        predicted = probs.argmax(1)
        accuracy = float((predicted == data.test_labels).mean())
        ms = measure_inference_ms(model, test_x[:1024], engine.device)
        result = {
            "model_type": model.model_type,
            "parameters": int(sum(p.numel() for p in model.parameters())),
            "train_seconds": round(float(results["train_seconds"]), 2),
            "test_accuracy": accuracy,
            "inference_ms_per_image": round(ms, 4),
            "epochs": recipe.epochs,
            "steps": int(results["step"]),
            "recipe": dataclasses.asdict(recipe),
            "config": _config_dict(model.config),
            "curve": curve,
        }
        if config.save_models:
            folder = out / "models" / name
            save_model(
                model,
                folder,
                metadata={
                    "task": "image-classification",
                    "data": data.name,
                    "data_source": data.source,
                    "class_names": list(data.class_names),
                    "image_shape": list(data.image_shape),
                    "normalize_mean": data.mean,
                    "normalize_std": data.std,
                    "test_accuracy": accuracy,
                },
            )
            result["checkpoint"] = str(folder)
        models[name] = result
        predictions[name] = probs
        trained[name] = model
        if on_model_done is not None:
            on_model_done(name, result)

    summary = {
        "data": {
            "name": data.name,
            "source": data.source,
            "num_train": int(len(data.train_labels)),
            "num_test": int(len(data.test_labels)),
            "image_shape": list(data.image_shape),
            "class_names": list(data.class_names),
            "mean": data.mean,
            "std": data.std,
        },
        "settings": {**dataclasses.asdict(config), "models": list(config.models)},
        "device": device_name,
        "torch_threads": torch.get_num_threads(),
        "models": models,
    }
    table = format_results_table(models)
    results_path = out / "results.json"
    write_json_atomic(results_path, summary)
    write_text_atomic(out / "results.md", f"# attnlab compare mnist: {data.name}\n\n{table}\n")
    files += [str(results_path), str(out / "results.md")]

    # -- figures ---------------------------------------------------------------
    images = data.test_images[:, 0] if data.image_shape[0] == 1 else data.test_images.transpose(0, 2, 3, 1)
    files.append(
        str(
            vision.plot_learning_curves(
                {n: r["curve"] for n, r in models.items()},
                out / "learning_curves.png",
                title=f"Learning curves on {data.name}",
            )
        )
    )
    for name, probs in predictions.items():
        predicted = probs.argmax(1)
        acc = models[name]["test_accuracy"]
        files.append(
            str(
                vision.plot_confusion_matrix(
                    confusion_matrix(data.test_labels, predicted, labels=range(data.num_classes))[0],
                    data.class_names,
                    out / f"confusion_{name}.png",
                    title=f"{name.upper()}: confusion matrix ({100 * acc:.1f}% correct)",
                )
            )
        )
        wrong = np.flatnonzero(predicted != data.test_labels)
        files.append(
            str(
                vision.plot_misclassified(
                    images[wrong],
                    data.test_labels[wrong],
                    predicted[wrong],
                    data.class_names,
                    out / f"misclassified_{name}.png",
                    confidence=probs[wrong, predicted[wrong]],
                    total_wrong=len(wrong),
                    title=f"{name.upper()}: misclassified test images",
                )
            )
        )
    if "vit" in trained:
        files += _vit_figures(trained["vit"], data, test_x, predictions["vit"], images, out, config.num_examples)
    return {**summary, "table": table, "files": files}


def _vit_figures(
    model: Any, data: Any, test_x: np.ndarray, probs: np.ndarray, images: np.ndarray, out: Path, count: int
) -> list[str]:
    import torch

    from attnlab.viz import vision

    # one example of each class in turn (the first test image of class 0, 1, ...), so the
    # figure shows different digits
    order = []
    for round_ in range(count):
        for k in range(data.num_classes):
            hits = np.flatnonzero(data.test_labels == k)
            if round_ < len(hits) and len(order) < count:
                order.append(int(hits[round_]))
        if len(order) >= count:
            break
    index = np.asarray(order[:count])
    device = next(model.parameters()).device
    model.eval()
    x = torch.as_tensor(test_x[index], device=device)
    rollout = model.attention_maps(x, method="rollout").cpu().numpy()
    last = model.attention_maps(x, method="last_layer").cpu().numpy()
    predicted = probs[index].argmax(1)
    paths = [
        vision.plot_attention_overlay(
            images[index],
            {"attention rollout": rollout, "last layer, CLS row": last},
            out / "vit_attention.png",
            labels=[data.class_names[k] for k in data.test_labels[index]],
            predictions=[data.class_names[k] for k in predicted],
            title="Where the ViT's CLS token looks (brighter = more attention)",
        ),
        vision.plot_patches(images[index[0]], model.config.patch_size, out / "vit_patches.png"),
    ]
    return [str(p) for p in paths]


def _config_dict(config: Any) -> dict[str, Any]:
    from attnlab.config import to_dict

    return to_dict(config)


def format_results_table(models: dict[str, dict[str, Any]]) -> str:
    """A markdown table: model, parameters, epochs, training time, test accuracy, inference time."""
    lines = [
        "| model | parameters | epochs | training time (s) | test accuracy | inference (ms/image) |",
        "|---|---:|---:|---:|---:|---:|",
    ]
    for name, r in models.items():
        lines.append(
            f"| {name} | {r['parameters']:,} | {r['epochs']} | {r['train_seconds']:.1f} | "
            f"{100 * r['test_accuracy']:.2f}% | {r['inference_ms_per_image']:.3g} |"
        )
    return "\n".join(lines)


# ---------------------------------------------------------------------------
# Using a saved model (the app, a notebook)
# ---------------------------------------------------------------------------


def load_image_classifier(folder: str | Path, map_location: str = "cpu") -> tuple[Any, dict[str, Any]]:
    """Load a model written by `compare_mnist` (OUT/models/NAME) with what it needs to predict.

    Args:
        folder: the checkpoint folder.
        map_location: device for the weights.
    Returns:
        (model in eval mode, metadata with "class_names", "image_shape", "normalize_mean",
        "normalize_std", "data", "test_accuracy").
    Raises:
        CheckpointError: not a checkpoint, or one without the image metadata of `compare_mnist`.
    """
    from attnlab import checkpoint as ckpt
    from attnlab.errors import CheckpointError
    from attnlab.models.registry import load_model

    meta = ckpt.read_metadata(folder)
    needed = ("class_names", "image_shape", "normalize_mean", "normalize_std")
    missing = [k for k in needed if k not in meta]
    if missing:
        raise CheckpointError(
            f"{str(folder)!r} lacks {', '.join(missing)} in its config.json; pass a model folder written by "
            "`attnlab compare mnist` (OUT/models/NAME)"
        )
    model, _ = load_model(folder, map_location=map_location, expect=("vit", "convnet", "mlp"))
    return model, {k: meta[k] for k in (*needed, "data", "test_accuracy") if k in meta}


def predict_images(model: Any, metadata: dict[str, Any], images: np.ndarray) -> np.ndarray:
    """Class probabilities for raw images, normalised as in training.

    Args:
        model: from `load_image_classifier`.
        metadata: its metadata.
        images: (N, H, W) or (N, C, H, W) pixels in [0, 1] (uint8 0-255 is scaled).
    Returns:
        (N, K) softmax probabilities.
    Raises:
        DataError: images of the wrong size.
    """
    from attnlab.errors import DataError

    x = np.asarray(images)
    if x.dtype == np.uint8:
        x = x.astype(np.float32) / 255.0
    if x.ndim == 3:
        x = x[:, None]
    expected = tuple(metadata["image_shape"])
    if x.ndim != 4 or tuple(x.shape[1:]) != expected:
        raise DataError(f"the model expects images of shape (N, {', '.join(map(str, expected))}), got {x.shape}")
    x = ((x - metadata["normalize_mean"]) / metadata["normalize_std"]).astype(np.float32)
    return _predict(model, x, next(model.parameters()).device)

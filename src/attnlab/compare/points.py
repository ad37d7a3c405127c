"""Point-cloud tokenizations compared: `attnlab compare points`, as a library call.

Four models on the same clouds (`attnlab.data.points`; the procedural shapes by default):

    patch      transformer on Point-BERT / Point-MAE patch tokens (FPS centres, kNN groups, mini-PointNet)
    point      transformer with every point a token (a linear embedding of xyz)
    pointnet   PointNet (Qi et al. 2017): shared per-point MLP and max-pool
    mlp        an MLP on the points in the order they are listed (the "wrong inductive bias")

Each is trained with the library's `Trainer` and `TorchEngine` (AdamW, linear warmup +
cosine decay, gradient clipping 1.0) for a number of epochs (every epoch visits every
training cloud once, in a fresh random order), then evaluated on the fixed held-out test
split. The test split is evaluated after every epoch to draw the curves; it never chooses
anything (no early stopping): the reported accuracy is the final weights'. The run folder gets:

    results.json             per model: parameters, training seconds, test accuracy,
                             inference ms per cloud, epochs, settings, per-epoch curve
    results.md               the same as a markdown table (also returned for printing)
    learning_curves.png      training loss and test accuracy after every epoch
    confusion_NAME.png       confusion matrix of each model on the test split
    point_patches.png        a test cloud of each of a few classes with its sampled centres and kNN groups
    point_attention.png      (patch model) the CLS token's attention over each patch, painted on the
                             cloud's points as a 3-D scatter, for a few test clouds
    models/NAME/             each trained model as an attnlab checkpoint, with the class names

Augmentation (`augment`, on by default): each training batch is rotated about the z axis
by a random angle, scaled by a random factor in [0.8, 1.2] and jittered (std 0.01), the
standard PointNet recipe; the test clouds are left as they are.

Notation: N clouds, P points (padded), B batch, K classes.
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
from attnlab.compare._common import check_device, train_classifier
from attnlab.errors import ConfigError
from attnlab.runs import writes_run

logger = logging.getLogger(__name__)

__all__ = [
    "POINT_MODEL_NAMES",
    "PointRecipe",
    "DEFAULT_POINT_RECIPES",
    "PointsCompareConfig",
    "PointBatchSource",
    "augment_clouds",
    "parse_point_model_names",
    "compare_points",
    "format_points_table",
    "plot_patches_3d",
    "plot_point_attention_3d",
]

POINT_MODEL_NAMES = ("patch", "point", "pointnet", "mlp")
_ALIASES = {"transformer": "patch", "point-bert": "patch", "point-mae": "patch", "patches": "patch", "points": "point"}
TOKENIZATION = {
    "patch": "FPS + kNN patches (mini-PointNet)",
    "point": "every point a token",
    "pointnet": "per-point MLP + max-pool",
    "mlp": "fixed point order",
}


@dataclass(frozen=True)
class PointRecipe:
    """How one model is trained by default (epochs, batch size and lr can be overridden per run)."""

    epochs: int  # passes over the training clouds
    batch_size: int  # clouds per optimizer step
    lr: float  # peak AdamW learning rate (after warmup)
    weight_decay: float  # AdamW decoupled weight decay
    warmup_epochs: float  # linear warmup length, in epochs
    augment: bool = True  # random z rotation, scale and jitter of training batches
    min_lr_ratio: float = 0.01  # final learning rate of the cosine decay, as a share of lr

    def __post_init__(self) -> None:
        limits.check_int(self.epochs, "epochs", 1, limits.MAX_EPOCHS)
        limits.check_int(self.batch_size, "batch_size", 1, limits.MAX_BATCH_SIZE)
        limits.check_float(self.lr, "lr", 0.0, limits.MAX_LR, low_open=True)
        if self.weight_decay < 0 or self.warmup_epochs < 0:
            raise ConfigError("weight_decay and warmup_epochs must be >= 0")
        if not 0.0 <= self.min_lr_ratio <= 1.0:
            raise ConfigError(f"min_lr_ratio must be in [0, 1], got {self.min_lr_ratio}")


# Per-model defaults for the procedural shapes (2,000 train / 400 test clouds of 192-256 points).
DEFAULT_POINT_RECIPES: dict[str, PointRecipe] = {
    "patch": PointRecipe(epochs=15, batch_size=32, lr=1e-3, weight_decay=0.05, warmup_epochs=1),
    "point": PointRecipe(epochs=8, batch_size=32, lr=1e-3, weight_decay=0.05, warmup_epochs=1),
    "pointnet": PointRecipe(epochs=20, batch_size=32, lr=1e-3, weight_decay=0.01, warmup_epochs=1),
    "mlp": PointRecipe(epochs=20, batch_size=64, lr=1e-3, weight_decay=0.01, warmup_epochs=1),
}


def parse_point_model_names(names: str | Sequence[str]) -> list[str]:
    """Validate model names ("patch,point,pointnet,mlp" or a list); aliases: transformer -> patch.

    Raises:
        ConfigError: an unknown or repeated name (the message lists the valid ones).
    """
    items = [n.strip().lower() for n in (names.split(",") if isinstance(names, str) else names)]
    items = [n for n in items if n]
    if not items:
        raise ConfigError(f"no model given; choose from {', '.join(POINT_MODEL_NAMES)}")
    out = []
    for item in items:
        name = _ALIASES.get(item, item)
        if name not in POINT_MODEL_NAMES:
            raise ConfigError(
                f"unknown model {item!r}; valid models: {', '.join(POINT_MODEL_NAMES)} (transformer = patch)"
            )
        if name in out:
            raise ConfigError(f"model {name!r} is listed twice")
        out.append(name)
    return out


@dataclass(frozen=True)
class PointsCompareConfig:
    """Settings of `compare_points` (the flags of `attnlab compare points`)."""

    models: tuple[str, ...] = POINT_MODEL_NAMES  # which models to train, in this order
    data: str = "shapes"  # shapes (procedural, offline), modelnet10, modelnet40, or a ModelNet zip / folder
    num_train_per_class: int = 250  # shapes: training clouds per class
    num_test_per_class: int = 50  # shapes: test clouds per class
    num_points: int | None = None  # shapes: most points per cloud (default 256); ModelNet: points a mesh (1024)
    epochs: int | None = None  # epochs for every model; None = each model's recipe (quick: 1)
    batch_size: int | None = None  # batch size for every model; None = each model's recipe
    lr: float | None = None  # peak learning rate for every model; None = each model's recipe
    augment: bool = True  # random rotation / scale / jitter of training batches
    seed: int = 0  # seeds initialisation, batch order, augmentation and dropout
    data_seed: int = 0  # seeds the procedural shapes (0 = the documented set)
    device: str = "auto"  # auto, cpu, cuda, cuda:N or mps
    quick: bool = False  # nano models, 1 epoch, 12 / 4 clouds a class of at most 64 points: a smoke test
    num_examples: int = 4  # clouds shown in the 3-D figures
    save_models: bool = True  # write each trained model to OUT/models/NAME
    progress: bool = True  # progress bars

    def __post_init__(self) -> None:
        object.__setattr__(self, "models", tuple(parse_point_model_names(self.models)))
        limits.check_seed(self.seed, "seed")
        limits.check_seed(self.data_seed, "data_seed")
        for name in ("num_train_per_class", "num_test_per_class"):
            limits.check_int(getattr(self, name), name, 1, 1_000_000)
        if self.num_points is not None:
            limits.check_int(self.num_points, "num_points", 1, 100_000)
        if self.epochs is not None:
            limits.check_int(self.epochs, "epochs", 1, limits.MAX_EPOCHS)
        if self.batch_size is not None:
            limits.check_int(self.batch_size, "batch_size", 1, limits.MAX_BATCH_SIZE)
        if self.lr is not None:
            limits.check_float(self.lr, "lr", 0.0, limits.MAX_LR, low_open=True)
        limits.check_int(self.num_examples, "num_examples", 1, 64)

    def recipe(self, name: str) -> PointRecipe:
        """The training recipe of model `name` with this run's overrides applied."""
        changes: dict[str, Any] = {"epochs": 1} if self.quick else {}
        for field in ("epochs", "batch_size", "lr"):
            if getattr(self, field) is not None:
                changes[field] = getattr(self, field)
        if not self.augment:
            changes["augment"] = False
        return dataclasses.replace(DEFAULT_POINT_RECIPES[name], **changes)


# ---------------------------------------------------------------------------
# Data: an epoch-style batch source with augmentation
# ---------------------------------------------------------------------------


def augment_clouds(
    points: np.ndarray, mask: np.ndarray, rng: np.random.Generator, *, scale: float = 0.2, jitter: float = 0.01
) -> np.ndarray:
    """Rotate each cloud about z by a random angle, scale it by a factor in [1 - scale, 1 + scale], jitter it.

    Args:
        points: (B, P, 3); mask: (B, P) True = real point (padding stays zero).
    Returns:
        (B, P, 3) float32 augmented copies.
    """
    B = len(points)
    angle = rng.uniform(0, 2 * np.pi, B)
    c, s = np.cos(angle), np.sin(angle)
    rot = np.zeros((B, 3, 3))
    rot[:, 0, 0], rot[:, 0, 1], rot[:, 1, 0], rot[:, 1, 1], rot[:, 2, 2] = c, -s, s, c, 1.0
    factor = rng.uniform(1 - scale, 1 + scale, (B, 1, 1))
    out = np.einsum("bpj,bij->bpi", points, rot) * factor
    out = out + np.clip(rng.normal(0, jitter, out.shape), -5 * jitter, 5 * jitter)
    return (out * mask[..., None]).astype(np.float32)


class PointBatchSource:
    """A `BatchSource` for the Trainer over padded clouds, one permutation an epoch.

    Batches are dicts {"points": (B, P, 3) float32, "mask": (B, P) bool, "targets": (B,) int64},
    the keyword arguments of the point models' forward.
    """

    def __init__(self, train: Any, test: Any, *, augment: bool = True):
        self.train, self.test = train, test
        self.augment = augment
        self.test_labels = test.labels
        self._queue = np.empty(0, dtype=np.int64)

    def steps_per_epoch(self, batch_size: int) -> int:
        return math.ceil(len(self.train.labels) / batch_size)

    def train_batch(self, batch_size: int, rng: np.random.Generator) -> dict[str, np.ndarray]:
        while len(self._queue) < batch_size:
            self._queue = np.concatenate([self._queue, rng.permutation(len(self.train.labels))])
        index, self._queue = self._queue[:batch_size], self._queue[batch_size:]
        points, mask = self.train.points[index], self.train.mask[index]
        if self.augment:
            points = augment_clouds(points, mask, rng)
        return {"points": points, "mask": mask, "targets": self.train.labels[index]}

    def eval_batches(
        self, batch_size: int, num_batches: int, split: str = "val", seed: int = 0
    ) -> list[dict[str, np.ndarray]]:
        t = self.test
        return [
            {
                "points": t.points[i : i + batch_size],
                "mask": t.mask[i : i + batch_size],
                "targets": t.labels[i : i + batch_size],
            }
            for i in range(0, len(t.labels), batch_size)
        ][:num_batches]


# ---------------------------------------------------------------------------
# Training and evaluation
# ---------------------------------------------------------------------------


def _load_data(config: PointsCompareConfig) -> Any:
    from attnlab.data.points import load_point_clouds

    if config.quick:
        return load_point_clouds(
            config.data,
            num_train_per_class=min(config.num_train_per_class, 12),
            num_test_per_class=min(config.num_test_per_class, 4),
            num_points=min(config.num_points or 64, 64) if config.data == "shapes" else config.num_points,
            seed=config.data_seed,
            settings=_quick_settings() if config.data == "shapes" else None,
        )
    return load_point_clouds(
        config.data,
        num_train_per_class=config.num_train_per_class,
        num_test_per_class=config.num_test_per_class,
        num_points=config.num_points,
        seed=config.data_seed,
    )


def _quick_settings() -> Any:
    from attnlab.data.points import ShapeSettings

    return ShapeSettings(min_points=48, max_points=64)


def _build(name: str, data: Any, quick: bool) -> Any:
    from attnlab.configs.point import check_point_count
    from attnlab.models.point import build_point_model

    model = build_point_model(name, data.num_classes, preset="nano" if quick else "shapes", num_points=data.max_points)
    check_point_count(model.config, data.min_points, where=f"the {data.name} clouds")
    return model


def _predict(model: Any, split: Any, device: Any, batch_size: int = 200) -> np.ndarray:
    """(N, K) softmax probabilities of `model` (eval mode) on a split."""
    import torch

    model.eval()
    probs = []
    with torch.no_grad():
        for i in range(0, len(split.labels), batch_size):
            x = torch.as_tensor(split.points[i : i + batch_size], device=device)
            m = torch.as_tensor(split.mask[i : i + batch_size], device=device)
            probs.append(torch.softmax(model(x, mask=m).logits.float(), dim=-1).cpu().numpy())
    return np.concatenate(probs)


def _inference_ms(model: Any, split: Any, device: Any, *, batch_size: int = 200, repeats: int = 3) -> float:
    """Milliseconds per cloud of a forward pass in eval mode (the best of `repeats` passes)."""
    import torch

    model.eval()
    sync = torch.cuda.synchronize if getattr(device, "type", str(device)).startswith("cuda") else (lambda: None)
    n = min(len(split.labels), 512)
    batches = [
        (
            torch.as_tensor(split.points[i : i + batch_size], device=device),
            torch.as_tensor(split.mask[i : i + batch_size], device=device),
        )
        for i in range(0, n, batch_size)
    ]
    best = math.inf
    with torch.no_grad():
        model(batches[0][0], mask=batches[0][1])
        for _ in range(repeats):
            sync()
            start = time.perf_counter()
            for x, m in batches:
                model(x, mask=m)
            sync()
            best = min(best, time.perf_counter() - start)
    return 1000.0 * best / n


@writes_run("compare")
def compare_points(
    config: PointsCompareConfig,
    out_dir: str | Path,
    *,
    on_model_done: Callable[[str, dict[str, Any]], None] | None = None,
) -> dict[str, Any]:
    """Train and compare point-cloud classifiers; write results, figures and checkpoints.

    Args:
        config: what to train and on which clouds.
        out_dir: run folder (created).
        on_model_done: called with (name, result) after each model, e.g. to print progress.
    Returns:
        The results dict written to OUT/results.json, plus "table" (markdown) and "files" (paths written).
    Raises:
        ConfigError: a bad setting or device. DataError: clouds too small for a model's patch settings,
            or a malformed ModelNet file.
    """
    import torch

    from attnlab.bio.metrics import confusion_matrix
    from attnlab.config import to_dict
    from attnlab.models.registry import save_model
    from attnlab.utils import seed_everything, write_json_atomic, write_text_atomic
    from attnlab.viz import vision

    out = Path(out_dir)
    if out.exists() and not out.is_dir():
        raise ConfigError(f"--out {str(out)!r} is a file; pass a folder for the results")
    check_device(config.device)
    data = _load_data(config)
    for name in config.models:  # every model is checked against the clouds before any training
        _build(name, data, config.quick)
    out.mkdir(parents=True, exist_ok=True)
    logger.info("%s", data.summary())

    files: list[str] = []
    device_name = "cpu"
    models: dict[str, dict[str, Any]] = {}
    predictions: dict[str, np.ndarray] = {}
    trained: dict[str, Any] = {}
    for name in config.models:
        recipe = config.recipe(name)
        seed_everything(config.seed)  # each model starts from the same seed, whatever the order
        model = _build(name, data, config.quick)
        source = PointBatchSource(data.train, data.test, augment=recipe.augment)
        saved = [m["checkpoint"] for m in models.values() if "checkpoint" in m]
        engine, results, curve = train_classifier(name, model, recipe, source, config, what="clouds", saved=saved)
        model = engine.module
        device_name = str(engine.device)
        probs = _predict(model, data.test, engine.device)
        accuracy = float((probs.argmax(1) == data.test.labels).mean())
        result = {
            "model_type": model.model_type,
            "tokenization": TOKENIZATION[name],
            "parameters": int(sum(p.numel() for p in model.parameters())),
            "train_seconds": round(float(results["train_seconds"]), 2),
            "test_accuracy": accuracy,
            "inference_ms_per_cloud": round(_inference_ms(model, data.test, engine.device), 4),
            "epochs": recipe.epochs,
            "steps": int(results["step"]),
            "recipe": dataclasses.asdict(recipe),
            "config": to_dict(model.config),
            "curve": curve,
        }
        if config.save_models:
            folder = out / "models" / name
            save_model(
                model,
                folder,
                metadata={
                    "task": "point-cloud-classification",
                    "data": data.name,
                    "data_source": data.source,
                    "class_names": list(data.class_names),
                    "max_points": data.max_points,
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
            "num_train": int(len(data.train)),
            "num_test": int(len(data.test)),
            "min_points": data.min_points,
            "max_points": data.max_points,
            "class_names": list(data.class_names),
            "settings": data.settings,
        },
        "settings": {**dataclasses.asdict(config), "models": list(config.models)},
        "device": device_name,
        "torch_threads": torch.get_num_threads(),
        "models": models,
    }
    table = format_points_table(models)
    write_json_atomic(out / "results.json", summary)
    write_text_atomic(out / "results.md", f"# attnlab compare points: {data.name}\n\n{table}\n")
    files += [str(out / "results.json"), str(out / "results.md")]

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
        matrix = confusion_matrix(data.test.labels, probs.argmax(1), labels=range(data.num_classes))[0]
        acc = models[name]["test_accuracy"]
        files.append(
            str(
                vision.plot_confusion_matrix(
                    matrix,
                    data.class_names,
                    out / f"confusion_{name}.png",
                    title=f"{name}: confusion matrix ({100 * acc:.1f}% correct)",
                )
            )
        )
    examples = _examples(data.test.labels, data.num_classes, config.num_examples)
    patch_model = trained.get("patch")
    if patch_model is not None:
        files += _patch_figures(patch_model, data, examples, out)
    return {**summary, "table": table, "files": files}


def _examples(labels: np.ndarray, num_classes: int, count: int) -> np.ndarray:
    """Indices of `count` test clouds, one of each class in turn."""
    order: list[int] = []
    for k in range(num_classes):
        hits = np.flatnonzero(labels == k)
        if len(hits):
            order.append(int(hits[0]))
        if len(order) >= count:
            break
    return np.asarray(order[:count], dtype=np.int64)


def _patch_figures(model: Any, data: Any, index: np.ndarray, out: Path) -> list[str]:
    import torch

    device = next(model.parameters()).device
    model.eval()
    with torch.no_grad():
        x = torch.as_tensor(data.test.points[index], device=device)
        m = torch.as_tensor(data.test.mask[index], device=device)
        result = model(x, mask=m, output_attentions=True)
    centres = result.extras["centres"].cpu().numpy()
    groups = result.extras["groups"].cpu().numpy()
    cls_row = result.attentions[-1][:, :, 0, 1:].mean(1).cpu().numpy()  # (B, G): CLS over the patches, head mean
    clouds = [data.test.points[i][data.test.mask[i]] for i in index]
    names = [data.class_names[k] for k in data.test.labels[index]]
    predicted = [data.class_names[k] for k in result.logits.argmax(-1).cpu().numpy()]
    return [
        str(plot_patches_3d(clouds, centres, groups, out / "point_patches.png", titles=names)),
        str(
            plot_point_attention_3d(
                clouds,
                groups,
                cls_row,
                out / "point_attention.png",
                titles=[f"{t} (predicted {p})" for t, p in zip(names, predicted)],
            )
        ),
    ]


def format_points_table(models: dict[str, dict[str, Any]]) -> str:
    """A markdown table: model, tokenization, parameters, epochs, training time, test accuracy, inference time."""
    lines = [
        "| model | tokenization | parameters | epochs | training time (s) | test accuracy | inference (ms/cloud) |",
        "|---|---|---:|---:|---:|---:|---:|",
    ]
    for name, r in models.items():
        lines.append(
            f"| {name} | {r['tokenization']} | {r['parameters']:,} | {r['epochs']} | {r['train_seconds']:.1f} | "
            f"{100 * r['test_accuracy']:.2f}% | {r['inference_ms_per_cloud']:.3g} |"
        )
    return "\n".join(lines)


# ---------------------------------------------------------------------------
# 3-D figures
# ---------------------------------------------------------------------------


def _axes_3d(fig: Any, rows: int, cols: int, i: int, cloud: np.ndarray, title: str) -> Any:
    ax = fig.add_subplot(rows, cols, i + 1, projection="3d")
    r = float(np.abs(cloud).max()) if len(cloud) else 1.0
    for setter in (ax.set_xlim, ax.set_ylim, ax.set_zlim):
        setter(-r, r)
    ax.set_box_aspect((1, 1, 1))
    ax.set_xticks([])
    ax.set_yticks([])
    ax.set_zticks([])
    ax.set_title(title)
    return ax


def plot_patches_3d(
    clouds: Sequence[np.ndarray],
    centres: np.ndarray,
    groups: np.ndarray,
    out: str | Path | None = None,
    *,
    titles: Sequence[str] | None = None,
    dpi: int | None = None,
):
    """Each cloud's points in grey, its kNN groups in colour and its FPS centres as black stars.

    Args:
        clouds: n clouds (n_i, 3) (the real points, in the indexing of `centres` / `groups`).
        centres: (n, G) centre indices; groups: (n, G, k) group indices.
        out: image path; None returns the figure.
    """
    from matplotlib import colormaps

    from attnlab.viz._mpl import DEFAULT_DPI, finish, new_figure, projector_style

    with projector_style():
        n = len(clouds)
        fig = new_figure(4.5 * n, 4.8)
        palette = colormaps["tab20"]
        for i, cloud in enumerate(clouds):
            ax = _axes_3d(fig, 1, n, i, cloud, titles[i] if titles else f"cloud {i}")
            ax.scatter(*cloud.T, s=2, c="0.75", depthshade=False)
            for g, members in enumerate(groups[i]):
                ax.scatter(*cloud[members].T, s=6, color=palette(g % 20), depthshade=False)
            ax.scatter(*cloud[centres[i]].T, s=40, c="black", marker="*", depthshade=False)
        fig.suptitle(
            f"{centres.shape[1]} farthest-point centres (stars), each with its {groups.shape[2]} nearest points"
        )
        return finish(fig, out, dpi or DEFAULT_DPI)


def plot_point_attention_3d(
    clouds: Sequence[np.ndarray],
    groups: np.ndarray,
    weights: np.ndarray,
    out: str | Path | None = None,
    *,
    titles: Sequence[str] | None = None,
    dpi: int | None = None,
):
    """A token's attention over the patches, painted on the points of each patch (3-D scatter).

    A point in several groups takes the largest weight among them; points in no group stay grey.

    Args:
        clouds: n clouds (n_i, 3).
        groups: (n, G, k) group indices.
        weights: (n, G) attention of the reading token (e.g. CLS) over the G patch tokens.
        out: image path; None returns the figure.
    """
    from attnlab.viz._mpl import DEFAULT_DPI, finish, new_figure, projector_style

    with projector_style():
        n = len(clouds)
        fig = new_figure(4.5 * n + 1.0, 4.8)
        image = None
        for i, cloud in enumerate(clouds):
            ax = _axes_3d(fig, 1, n, i, cloud, titles[i] if titles else f"cloud {i}")
            value = np.full(len(cloud), np.nan)
            for g, members in enumerate(groups[i]):
                value[members] = np.fmax(value[members], weights[i, g])
            covered = ~np.isnan(value)
            ax.scatter(*cloud[~covered].T, s=2, c="0.85", depthshade=False)
            image = ax.scatter(*cloud[covered].T, s=8, c=value[covered], cmap="viridis", depthshade=False)
        if image is not None:
            fig.colorbar(image, ax=fig.axes, fraction=0.03, pad=0.02, label="attention weight")
        fig.suptitle("Where the CLS token looks: last-layer attention over the patches (mean of heads)")
        return finish(fig, out, dpi or DEFAULT_DPI)

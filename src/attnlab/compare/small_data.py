"""Small data: where attention loses. Accuracy against training-set size, with seeds.

`attnlab compare mnist --train-sizes ...` and `attnlab compare sequence --train-sizes ...`
as a library call. Every model ("line") is trained at every training-set size N with every
seed; each (line, N, seed) is its own run folder, trained by the library's `Trainer`
(AdamW, linear warmup + cosine decay, gradient clipping 1.0), skipped when it finished
before and resumed from its last checkpoint when it was interrupted. The study folder gets:

    runs/LINE-nN-seedS/           each run: checkpoint, metrics.jsonl, results.json,
                                  small_data_run.json (its settings and test accuracy)
    runs.csv                      one row a run: line, size, seed, parameters, steps,
                                  test accuracy, seconds, status
    summary.csv                   one row a (line, size): mean and std of the accuracy over
                                  the seeds, lowest, highest, number of seeds
    results.json                  settings, the summary, the crossovers, the file list
    report.md                     the same as markdown (the command prints it)
    accuracy_vs_train_size.png    mean accuracy +- std over seeds against N (log axis)

What stays fixed. The test set is the same for every size and seed (the data set's test
split, or a stratified subset of it with `num_test`). The training subsets of one seed are
nested and stratified: the training pool is put in one order in which every prefix holds
each class in proportion (within one image), the order inside each class shuffled by the
seed, and size N takes the first N (so the 500 set contains the 250 set). The pixels are
normalised with the statistics of the whole training pool, the same for every size.

The training budget. A run takes max(`min_steps`, ceil(`epochs` x N / batch)) optimizer
steps. With the defaults (4 passes, at least 250 steps of 64) every size up to 4,000 images
gets the same 250 updates (250 images: 64 passes), so a small set differs from a large one
in its data, not in its number of updates, and 8,000 images get 4 passes (500 steps); the
study's cost grows only linearly with the largest N. Every model gets the same budget and
batch; only the learning rate and weight decay are each model's own recipe. The test set
is evaluated once, after the last step; nothing is chosen with it (a small slice of it gives
the Trainer's logged validation loss at each checkpoint, which chooses nothing either).

The ViT's small-data remedies (`vit_remedies`), each its own line, each alone:
`augment` (random shifts of up to `shift_pixels` pixels, line `vit+augment`; every other
line trains on the plain images), `patchP` (P x P patches instead of 7 x 7: more, smaller
tokens, line `vit-patchP`) and `conv-stem` (3 x 3 convolutions before the patch projection,
`ViTConfig.conv_stem`, line `vit+conv-stem`; Xiao et al. 2021, "Early Convolutions Help
Transformers See Better"). Dosovitskiy et al. 2021 (sec. 4.2) show the ViT losing to
ResNets on small data and winning only with much more; Cordonnier et al. 2020 and d'Ascoli
et al. 2021 discuss the missing locality prior.

The crossover. For every attention line (each ViT line; the transformer on the sequence
task) against the reference (the ConvNet; the LSTM): the smallest size at which the
attention line's mean accuracy reaches the reference's (or none up to the largest size),
and whether the gap (reference minus attention, in accuracy points) shrinks with data:
the gap at the smallest and largest size and its least-squares slope per doubling of N.

Sequence task: a training size is a fixed pool of N distinct recall sequences (the distances
k balanced in every prefix, as the classes above), reused epoch after epoch, instead of
fresh sequences at every step; the test set is the fixed probe of `per_distance` sequences
at every distance, and the accuracy is the mean over distances.

Notation: N training examples, B batch, K classes.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import logging
import math
import re
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from attnlab import limits
from attnlab.errors import ConfigError, DataError
from attnlab.runs import open_run, write_tidy_csv

logger = logging.getLogger(__name__)

__all__ = [
    "TASKS",
    "DEFAULT_TRAIN_SIZES",
    "QUICK_TRAIN_SIZES",
    "VIT_REMEDIES",
    "SmallDataConfig",
    "Line",
    "SmallDataInterrupted",
    "parse_remedies",
    "plan_lines",
    "nested_stratified_order",
    "balanced_distances",
    "PoolBatchSource",
    "run_steps",
    "summarise",
    "crossover",
    "format_report",
    "run_small_data_study",
    "read_summary",
]

TASKS = ("mnist", "sequence")
# The ladder of sizes: doubling from 250. On mnist5k (4,000 training digits) the default
# stops at 4,000; on the official test set split 8,000 / 2,000 it reaches 8,000.
DEFAULT_TRAIN_SIZES = (250, 500, 1000, 2000, 4000, 8000)
QUICK_TRAIN_SIZES = (40, 80)
VIT_REMEDIES = ("augment", "patchP", "conv-stem")  # patchP: patch4, patch2, ...
REFERENCE = {"mnist": "cnn", "sequence": "lstm"}  # the line every attention line is measured against
MAX_SIZES = 64  # at most this many sizes or seeds
MAX_TRAIN_SIZE = 10_000_000
RUNS_DIR = "runs"
RUN_FILE = "small_data_run.json"  # a run's own record: its settings, result and wall seconds
FIGURE = "accuracy_vs_train_size.png"
_CHUNK = 1024  # the sequence task's pools are drawn this many sequences at a time
_PATCH = re.compile(r"^patch(\d{1,4})$")
# Settings a finished run may differ in and still be the same run.
_FREE_SETTINGS = ("device", "progress")


@dataclass(frozen=True)
class SmallDataConfig:
    """Settings of the small-data study (the flags of `attnlab compare mnist|sequence --train-sizes ...`)."""

    task: str = "mnist"  # "mnist" (images) or "sequence" (the recall task)
    train_sizes: tuple[int, ...] | None = None  # training-set sizes N; None = 250, 500, ... (quick: 40, 80)
    seeds: tuple[int, ...] = (0, 1, 2)  # one run per seed at every size (each seed its own nested subsets)
    models: tuple[str, ...] | None = None  # base models; None = all of the task's (vit, cnn, mlp / rnn, lstm, ...)
    vit_remedies: tuple[str, ...] = ()  # mnist: extra ViT lines: augment, patchP (e.g. patch4), conv-stem
    data: str = "mnist5k"  # mnist: a data set name or a folder of IDX files
    num_test: int | None = None  # mnist: test on a stratified subset of this many images (None = all; quick: 200)
    seq_len: int = 64  # sequence: tokens per sequence (distances 1 .. seq_len - 1)
    num_symbols: int = 8  # sequence: alphabet size (chance 1 / num_symbols)
    per_distance: int | None = None  # sequence: test sequences at every distance; None = 100 (quick: 10)
    epochs: int | None = None  # passes over the training set of every run; None = 4 mnist, 10 sequence (quick: 1)
    min_steps: int | None = None  # at least this many optimizer steps a run; None = 250 mnist, 300 seq. (quick: 4)
    batch_size: int | None = None  # examples per step of every model; None = 64 (quick: 16)
    lr: float | None = None  # peak learning rate of every model; None = each model's recipe
    shift_pixels: int = 2  # the vit+augment line's random shifts, in pixels
    conv_stem: tuple[int, ...] | None = None  # the vit+conv-stem line's conv channels; None = 16, 16 (quick: 4, 4)
    checkpoints: int = 2  # checkpoint (and log a validation loss) about this many times a run
    device: str = "auto"  # auto, cpu, cuda, cuda:N or mps
    quick: bool = False  # tiny models, tiny sizes and runs: a smoke test in seconds
    progress: bool = True  # a progress bar for every run
    figures: bool = True  # write the figure

    def __post_init__(self) -> None:
        if self.task not in TASKS:
            raise ConfigError(f"unknown task {self.task!r}; the small-data study runs on {', '.join(TASKS)}")
        for name in ("train_sizes", "seeds"):
            value = getattr(self, name)
            if value is None:
                continue
            value = tuple(value)
            if not value:
                raise ConfigError(f"give at least one of {name.replace('_', ' ')}")
            if len(value) > MAX_SIZES:
                raise ConfigError(f"give at most {MAX_SIZES} {name.replace('_', ' ')}, got {len(value)}")
            if len(set(value)) != len(value):
                raise ConfigError(f"{name.replace('_', ' ')} are given twice: {', '.join(map(str, value))}")
            object.__setattr__(self, name, value)
        for n in self.train_sizes or ():
            limits.check_int(n, "a training size", 2, MAX_TRAIN_SIZE)
        if self.train_sizes is not None:
            object.__setattr__(self, "train_sizes", tuple(sorted(self.train_sizes)))
        for s in self.seeds:
            limits.check_seed(s, "a seed")
        object.__setattr__(self, "vit_remedies", tuple(parse_remedies(self.vit_remedies)))
        if self.vit_remedies and self.task != "mnist":
            raise ConfigError("the ViT remedies (--vit-remedies) belong to the image task (attnlab compare mnist)")
        if self.models is not None:
            object.__setattr__(self, "models", tuple(_parse_models(self.task, self.models)))
        if self.vit_remedies and "vit" not in self.base_models:
            raise ConfigError("the ViT remedies are measured against the plain ViT: add vit to --models")
        if self.conv_stem is not None:
            object.__setattr__(self, "conv_stem", tuple(self.conv_stem))
            if not self.conv_stem:
                raise ConfigError("conv_stem needs the channels of at least one conv layer, e.g. 16,16")
        for name in ("epochs", "min_steps", "batch_size", "num_test", "per_distance"):
            value = getattr(self, name)
            if value is not None:
                low = 10 if name == "num_test" else 1
                high = {"epochs": limits.MAX_EPOCHS, "batch_size": limits.MAX_BATCH_SIZE}.get(name, limits.MAX_ITERS)
                limits.check_int(value, name, low, high)
        if self.lr is not None:
            limits.check_float(self.lr, "lr", 0.0, limits.MAX_LR, low_open=True)
        limits.check_int(self.shift_pixels, "shift_pixels", 1, 1_000)
        limits.check_int(self.checkpoints, "checkpoints", 1, 1_000)
        limits.check_int(self.seq_len, "seq_len", 3, limits.MAX_COMPARE_SEQ_LEN)
        limits.check_int(self.num_symbols, "num_symbols", 2, limits.MAX_SYMBOLS)

    # -- the settings in force, defaults resolved ---------------------------------------
    @property
    def base_models(self) -> tuple[str, ...]:
        if self.models is not None:
            return self.models
        return tuple(_parse_models(self.task, None))

    @property
    def run_epochs(self) -> int:
        return self.epochs or (1 if self.quick else 4 if self.task == "mnist" else 10)

    @property
    def run_min_steps(self) -> int:
        return self.min_steps or (4 if self.quick else 250 if self.task == "mnist" else 300)

    @property
    def batch(self) -> int:
        return self.batch_size or (16 if self.quick else 64)

    @property
    def stem_channels(self) -> tuple[int, ...]:
        return self.conv_stem or ((4, 4) if self.quick else (16, 16))

    @property
    def probe_per_distance(self) -> int:
        return self.per_distance or (10 if self.quick else 100)


@dataclass(frozen=True)
class Line:
    """One model line of the study: a base model, optionally with one ViT remedy."""

    name: str  # vit, cnn, mlp, vit+augment, vit-patch4, vit+conv-stem, rnn, lstm, gru, transformer
    base: str  # the base model's name
    remedy: str = ""  # "", "augment", "patchP", "conv-stem"


def parse_remedies(remedies: str | Sequence[str] | None) -> list[str]:
    """Validate ViT remedies ("augment,patch4,conv-stem", a list, "none" or empty).

    Raises:
        ConfigError: an unknown or repeated remedy, or a second patch size.
    """
    if remedies is None:
        return []
    items = remedies.split(",") if isinstance(remedies, str) else list(remedies)
    items = [str(r).strip().lower() for r in items]
    items = [r for r in items if r and r != "none"]
    out: list[str] = []
    for item in items:
        name = {"shift": "augment", "augmentation": "augment", "conv_stem": "conv-stem", "stem": "conv-stem"}.get(
            item, item
        )
        m = _PATCH.match(name)
        if m and not 1 <= int(m.group(1)) <= 1_000:
            raise ConfigError(f"remedy {item!r}: a patch size is 1 to 1,000 pixels")
        if name not in ("augment", "conv-stem") and not m:
            raise ConfigError(
                f"unknown ViT remedy {item!r}; choose from augment, patchP (smaller patches, e.g. patch4) and conv-stem"
            )
        if name in out:
            raise ConfigError(f"remedy {name!r} is listed twice")
        if m and any(_PATCH.match(r) for r in out):
            raise ConfigError("give one patch size (e.g. patch4): each remedy is one line of the study")
        out.append(name)
    return out


def _parse_models(task: str, models: Sequence[str] | str | None) -> list[str]:
    if task == "mnist":
        from attnlab.compare.mnist import IMAGE_MODEL_NAMES, parse_model_names

        return parse_model_names(models if models is not None else IMAGE_MODEL_NAMES)
    from attnlab.compare.sequence import SEQUENCE_MODEL_NAMES, parse_sequence_model_names

    return parse_sequence_model_names(models if models is not None else SEQUENCE_MODEL_NAMES)


def _remedy_line(remedy: str) -> str:
    return f"vit-{remedy}" if _PATCH.match(remedy) else f"vit+{remedy}"


def plan_lines(config: SmallDataConfig) -> list[Line]:
    """The study's lines: the base models in order, then one line per ViT remedy."""
    lines = [Line(m, m) for m in config.base_models]
    lines += [Line(_remedy_line(r), "vit", r) for r in config.vit_remedies]
    return lines


def run_steps(size: int, epochs: int, min_steps: int, batch_size: int) -> int:
    """Optimizer steps of a run on `size` examples: max(min_steps, ceil(epochs * size / batch_size))."""
    return max(min_steps, math.ceil(epochs * size / batch_size))


# ---------------------------------------------------------------------------
# Nested, stratified subsets
# ---------------------------------------------------------------------------


def nested_stratified_order(labels: np.ndarray, seed: int) -> np.ndarray:
    """An order of the training pool in which every prefix is stratified; `order[:N]` is the size-N set.

    Class c (n_c members) has its members shuffled by `seed`; its j-th member gets the key
    (j + 1/2) / n_c, and the pool is sorted by key (ties: the smaller class first). A prefix
    of length N then holds N * n_c / n members of class c to within one, and the prefixes
    are nested by construction (the size-500 set contains the size-250 set).

    Args:
        labels: (n,) class ids of the pool.
        seed: shuffles within each class (a seed gives its own nested family of subsets).
    Returns:
        (n,) int64 indices into the pool.
    """
    labels = np.asarray(labels)
    rng = np.random.default_rng((int(seed), 0x5EED))
    index_parts, key_parts, class_parts = [], [], []
    for c in np.unique(labels):
        members = rng.permutation(np.flatnonzero(labels == c))
        index_parts.append(members)
        key_parts.append((np.arange(len(members)) + 0.5) / len(members))
        class_parts.append(np.full(len(members), c))
    if not index_parts:
        return np.zeros(0, dtype=np.int64)
    index, key, cls = (np.concatenate(p) for p in (index_parts, key_parts, class_parts))
    return index[np.lexsort((cls, key))].astype(np.int64)


def balanced_distances(count: int, distances: np.ndarray, seed: int) -> np.ndarray:
    """`count` recall distances, every prefix balanced: consecutive shuffled blocks of all distances."""
    rng = np.random.default_rng((int(seed), 0xD157))
    blocks = math.ceil(count / len(distances))
    return np.concatenate([rng.permutation(distances) for _ in range(blocks)])[:count].astype(np.int64)


def _fingerprint(*arrays: np.ndarray) -> str:
    h = hashlib.sha1()
    for a in arrays:
        a = np.ascontiguousarray(a)
        h.update(str((a.dtype.str, a.shape)).encode())
        h.update(a.tobytes())
    return h.hexdigest()[:16]


class PoolBatchSource:
    """A `BatchSource` over a fixed pool of N examples, reused epoch after epoch.

    Batch t of a run covers positions t*B .. t*B + B - 1 of an endless sequence of epochs,
    each epoch a permutation of the pool drawn from (seed, epoch). The batch is a function of
    the step alone, so a resumed run sees exactly the batches it would have seen.

    Args:
        arrays: the pool, e.g. {"images": (N, C, H, W), "targets": (N,)}, same first dimension.
        eval_arrays: the fixed batches behind the Trainer's logged validation loss.
        seed: the permutations' seed.
        augment: (batch, rng) -> batch, applied to every training batch with the Trainer's generator.
    """

    def __init__(
        self,
        arrays: dict[str, np.ndarray],
        eval_arrays: dict[str, np.ndarray],
        *,
        seed: int,
        augment: Callable[[dict[str, np.ndarray], np.random.Generator], dict[str, np.ndarray]] | None = None,
    ):
        sizes = {len(v) for v in arrays.values()}
        if len(sizes) != 1 or 0 in sizes:
            raise DataError("a training pool needs arrays of one non-zero length")
        self.arrays, self.eval_arrays = arrays, eval_arrays
        self.size = sizes.pop()
        self.seed = seed
        self.augment = augment
        self.step_of: Callable[[], int] = lambda: 0  # the Trainer's step (set by the study)
        self._perms: dict[int, np.ndarray] = {}

    def steps_per_epoch(self, batch_size: int) -> int:
        return math.ceil(self.size / batch_size)

    def _perm(self, epoch: int) -> np.ndarray:
        if epoch not in self._perms:
            if len(self._perms) > 4:
                self._perms.clear()
            self._perms[epoch] = np.random.default_rng((self.seed, 104_729, epoch)).permutation(self.size)
        return self._perms[epoch]

    def indices(self, step: int, batch_size: int) -> np.ndarray:
        """The pool indices of training batch `step` (0-based)."""
        positions = step * batch_size + np.arange(batch_size)
        epochs, within = positions // self.size, positions % self.size
        return np.array([self._perm(int(e))[w] for e, w in zip(epochs, within)], dtype=np.int64)

    def train_batch(self, batch_size: int, rng: np.random.Generator) -> dict[str, np.ndarray]:
        index = self.indices(self.step_of(), batch_size)
        batch = {k: v[index] for k, v in self.arrays.items()}
        return self.augment(batch, rng) if self.augment is not None else batch

    def eval_batches(
        self, batch_size: int, num_batches: int, split: str = "val", seed: int = 0
    ) -> list[dict[str, np.ndarray]]:
        n = len(next(iter(self.eval_arrays.values())))
        return [{k: v[i : i + batch_size] for k, v in self.eval_arrays.items()} for i in range(0, n, batch_size)][
            :num_batches
        ]


class SmallDataInterrupted(KeyboardInterrupt):
    """The study stopped by Ctrl-C / SIGTERM: what is kept, and how to go on."""

    def __init__(self, signal_name: str, run: str, step: int, steps: int, finished: int):
        super().__init__(
            f"small-data study stopped by {signal_name} while training {run} (step {step} of {steps}); "
            f"{finished} finished run(s) are kept and this run's checkpoint is saved: run the same command "
            "again to resume (finished runs are skipped)"
        )


# ---------------------------------------------------------------------------
# The tasks: data, models, evaluation
# ---------------------------------------------------------------------------


@dataclass
class _Task:
    """What a task gives the study: its pool, test set, models and evaluation."""

    name: str
    data_name: str  # for the report
    available: int | None  # training examples in the pool (None: generated, no limit)
    chance: float
    unit: str  # "images" / "sequences"
    pool: Callable[[int, int], tuple[dict[str, np.ndarray], str]]  # (size, seed) -> (arrays, fingerprint)
    eval_arrays: dict[str, np.ndarray]  # the Trainer's logged validation slice
    test_fingerprint: str
    num_test: int
    build: Callable[[Line], Any]
    recipe: Callable[[Line], tuple[float, float]]  # (lr, weight decay)
    augment: Callable[[Line], Any]
    evaluate: Callable[[Any, Any], float]  # (model, device) -> test accuracy
    describe: dict[str, Any]


def _image_task(config: SmallDataConfig) -> _Task:
    from attnlab.compare.mnist import DEFAULT_IMAGE_RECIPES, build_image_model, random_shift
    from attnlab.data.images import load_images

    data = load_images(config.data)
    num_test = config.num_test or (200 if config.quick else None)
    if num_test is not None and num_test < len(data.test_labels):
        data = data.subset(None, num_test)  # stratified and deterministic: the same for every size and seed
    available = len(data.train_labels)
    too_big = [n for n in config.train_sizes or () if n > available]
    if too_big:
        raise DataError(
            f"training size {max(too_big):,} is more than the {available:,} training images of {data.name}; "
            f"choose sizes up to {available:,}, or pass --data with a folder of IDX files that holds more "
            "(e.g. MNIST's train-* files, or t10k-* alone: split 8,000 / 2,000)"
        )
    train_x = data.normalize(data.train_images)
    test_x = data.normalize(data.test_images)
    train_y, test_y = data.train_labels, data.test_labels
    fill = float(data.normalize(np.zeros(1, dtype=np.float32))[0])  # a 0 pixel, normalised
    orders: dict[int, np.ndarray] = {}

    def pool(size: int, seed: int) -> tuple[dict[str, np.ndarray], str]:
        if seed not in orders:
            orders[seed] = nested_stratified_order(train_y, seed)
        index = orders[seed][:size]
        return {"images": train_x[index], "targets": train_y[index]}, _fingerprint(train_x[index], train_y[index])

    def build(line: Line) -> Any:
        if line.base != "vit" or not line.remedy or line.remedy == "augment":
            return build_image_model(line.base, data.image_shape, data.num_classes, quick=config.quick)
        from attnlab.models.vit import ViT

        base = build_image_model("vit", data.image_shape, data.num_classes, quick=config.quick).config
        if line.remedy == "conv-stem":
            return ViT(dataclasses.replace(base, conv_stem=config.stem_channels))
        patch = int(_PATCH.match(line.remedy).group(1))  # type: ignore[union-attr]
        if data.image_size % patch:
            raise ConfigError(
                f"remedy {line.remedy}: {patch}-pixel patches do not tile {data.image_size} x {data.image_size} "
                "images; choose a patch size that divides the image size"
            )
        return ViT(dataclasses.replace(base, patch_size=patch))

    def recipe(line: Line) -> tuple[float, float]:
        r = DEFAULT_IMAGE_RECIPES[line.base]
        return (config.lr if config.lr is not None else r.lr), r.weight_decay

    def augment(line: Line) -> Any:
        if line.remedy != "augment":
            return None
        shift = config.shift_pixels

        def shifted(batch: dict[str, np.ndarray], rng: np.random.Generator) -> dict[str, np.ndarray]:
            return {**batch, "images": random_shift(batch["images"], shift, rng, fill)}

        return shifted

    def evaluate(model: Any, device: Any) -> float:
        return float((_predict_classes(model, {"images": test_x}, device) == test_y).mean())

    val = min(len(test_y), 256)
    return _Task(
        name="mnist",
        data_name=data.name,
        available=available,
        chance=1.0 / data.num_classes,
        unit="images",
        pool=pool,
        eval_arrays={"images": test_x[:val], "targets": test_y[:val]},
        test_fingerprint=_fingerprint(test_x, test_y),
        num_test=len(test_y),
        build=build,
        recipe=recipe,
        augment=augment,
        evaluate=evaluate,
        describe={
            "name": data.name,
            "source": data.source,
            "num_train_available": available,
            "num_test": int(len(test_y)),
            "image_shape": list(data.image_shape),
            "mean": data.mean,
            "std": data.std,
        },
    )


def _sequence_task(config: SmallDataConfig) -> _Task:
    from attnlab.compare.sequence import DEFAULT_SEQUENCE_RECIPES, build_sequence_model, evaluate_by_distance
    from attnlab.data.recall_task import RecallTask

    task = RecallTask(num_symbols=config.num_symbols, seq_len=config.seq_len)
    probe = task.evaluation_set(per_distance=config.probe_per_distance)  # seed 12345, apart from the pools'
    val = task.evaluation_set(per_distance=max(1, 128 // len(task.distances)), seed=4321)
    largest = max(config.train_sizes or (QUICK_TRAIN_SIZES if config.quick else DEFAULT_TRAIN_SIZES))
    pools: dict[int, Any] = {}

    def master(seed: int) -> Any:
        """The seed's pool of distinct sequences, as long as the largest size (sizes take prefixes).

        Drawn in chunks of `_CHUNK` sequences, chunk i from its own generator, so a prefix does
        not depend on how long the pool is (a study run again with a larger size keeps its runs).
        """
        if seed not in pools:
            ids_parts, target_parts, seen = [], [], set()
            chunk = 0
            while len(ids_parts) < largest:
                rng = np.random.default_rng((int(seed), 0xA11, chunk))
                k = balanced_distances(_CHUNK * (chunk + 1), task.distances, seed)[_CHUNK * chunk :]
                batch = task.sample(_CHUNK, rng, distances=k)
                chunk += 1
                for ids, targets in zip(batch.input_ids, batch.targets):
                    key = ids.tobytes()
                    if key in seen:  # never twice in one pool (with 8 symbols and 64 tokens: never happens)
                        continue
                    seen.add(key)
                    ids_parts.append(ids)
                    target_parts.append(targets)
            pools[seed] = (np.stack(ids_parts[:largest]), np.stack(target_parts[:largest]))
        return pools[seed]

    def pool(size: int, seed: int) -> tuple[dict[str, np.ndarray], str]:
        ids, targets = master(seed)
        ids, targets = ids[:size], targets[:size]
        return {"input_ids": ids, "targets": targets}, _fingerprint(ids, targets)

    def build(line: Line) -> Any:
        return build_sequence_model(line.base, task, quick=config.quick)

    def recipe(line: Line) -> tuple[float, float]:
        r = DEFAULT_SEQUENCE_RECIPES[line.base]
        return (config.lr if config.lr is not None else r.lr), r.weight_decay

    def evaluate(model: Any, device: Any) -> float:
        return float(np.mean(list(evaluate_by_distance(model, probe, device).values())))

    return _Task(
        name="sequence",
        data_name=f"recall (T = {config.seq_len}, {config.num_symbols} symbols)",
        available=None,
        chance=task.chance_accuracy,
        unit="sequences",
        pool=pool,
        eval_arrays={"input_ids": val.input_ids, "targets": val.targets},
        test_fingerprint=_fingerprint(probe.input_ids, probe.targets),
        num_test=len(probe),
        build=build,
        recipe=recipe,
        augment=lambda line: None,
        evaluate=evaluate,
        describe={
            "name": "recall",
            **dataclasses.asdict(task.config),
            "vocab_size": task.vocab_size,
            "chance_accuracy": task.chance_accuracy,
            "probe_per_distance": config.probe_per_distance,
            "num_test": len(probe),
        },
    )


def _predict_classes(model: Any, inputs: dict[str, np.ndarray], device: Any, batch_size: int = 500) -> np.ndarray:
    """Arg-max class of `model` (eval mode) for every example of `inputs`."""
    import torch

    model.eval()
    key, values = next(iter(inputs.items()))
    out = []
    with torch.no_grad():
        for i in range(0, len(values), batch_size):
            x = torch.as_tensor(values[i : i + batch_size], device=device)
            out.append(model(**{key: x}).logits.argmax(-1).cpu().numpy())
    return np.concatenate(out)


# ---------------------------------------------------------------------------
# One run
# ---------------------------------------------------------------------------


def _read_run(folder: Path) -> dict[str, Any]:
    try:
        data = json.loads((folder / RUN_FILE).read_text(encoding="utf-8"))
        return data if isinstance(data, dict) else {}
    except (OSError, ValueError):
        return {}


def _flat(settings: dict[str, Any]) -> dict[str, Any]:
    """{"model": {"patch_size": 7}} -> {"model.patch_size": 7} (one level)."""
    out = {}
    for k, v in settings.items():
        if isinstance(v, dict):
            out.update({f"{k}.{sub}": value for sub, value in v.items()})
        else:
            out[k] = v
    return out


def _differences(saved: dict[str, Any], want: dict[str, Any]) -> list[str]:
    """What a run folder's settings say that differs from what the study asks now (empty: agree)."""
    saved, want = _flat(saved), _flat(want)
    keys = sorted((set(saved) | set(want)) - set(_FREE_SETTINGS))
    return [f"{k} {saved.get(k)!r} (now {want.get(k)!r})" for k in keys if saved.get(k) != want.get(k)]


def _run_one(
    folder: Path,
    line: Line,
    size: int,
    seed: int,
    task: _Task,
    config: SmallDataConfig,
    device: str,
    *,
    force: bool,
    finished_before: int,
) -> dict[str, Any]:
    """Train (or skip, or resume) one run; returns its row of runs.csv."""
    from attnlab import checkpoint as ckpt
    from attnlab.config import to_dict
    from attnlab.train.engine import TorchEngine
    from attnlab.train.trainer import TrainConfig, Trainer, TrainingInterrupted
    from attnlab.utils import seed_everything, write_json_atomic

    arrays, fingerprint = task.pool(size, seed)
    lr, weight_decay = task.recipe(line)
    steps = run_steps(size, config.run_epochs, config.run_min_steps, config.batch)
    limits.check_int(steps, f"the steps of run {folder.name}", 1, limits.MAX_ITERS)
    seed_everything(seed)  # every line starts from its seed, whatever ran before it
    model = task.build(line)
    train = TrainConfig(
        batch_size=config.batch,
        max_iters=steps,
        lr=lr,
        min_lr=lr * 0.01,
        warmup_iters=min(steps - 1, max(1, round(0.1 * steps))) if steps > 1 else 0,
        weight_decay=weight_decay,
        grad_clip=1.0,
        eval_interval=max(1, math.ceil(steps / config.checkpoints)),
        eval_iters=math.ceil(len(next(iter(task.eval_arrays.values()))) / config.batch),
        log_interval=max(1, steps // 10),
        seed=seed,
        device=device,
        progress=config.progress,
    )
    want = {
        "task": task.name,
        "line": line.name,
        "train_size": size,
        "seed": seed,
        "train_fingerprint": fingerprint,
        "test_fingerprint": task.test_fingerprint,
        "augment_shift": config.shift_pixels if line.remedy == "augment" else 0,
        "model": to_dict(model.config),
        "train": {k: v for k, v in to_dict(train).items() if k not in ("device", "progress")},
        "device": device,
    }
    with open_run(folder, command="compare"):
        record = _read_run(folder)
        saved = record.get("settings")
        status = "trained"
        if saved is not None and _differences(saved, want):
            differ = _differences(saved, want)
            if not force:
                raise ConfigError(
                    f"{str(folder)!r} holds a run trained with other settings ({'; '.join(differ[:3])}); run the "
                    "study with its old settings, choose another --out, or pass --force to train it again"
                )
            logger.warning("%s: settings changed (%s); training it again (--force)", folder.name, differ[0])
            record, saved, status = {}, None, "trained again (settings changed, --force)"
        if saved is not None and record.get("test_accuracy") is not None:
            status = "skipped (finished before)"
        else:
            resume = saved is not None and ckpt.is_checkpoint(folder) and ckpt.has_training_state(folder)
            if resume:  # the weights of the last checkpoint (the Trainer restores the optimizer and RNG)
                from attnlab.models.registry import load_model

                status = "resumed"
                model, _ = load_model(folder, map_location="cpu", expect=model.model_type)
            record = {**record, "settings": want, "test_accuracy": None}
            write_json_atomic(folder / RUN_FILE, record)
            engine = TorchEngine(
                model, lr=lr, weight_decay=weight_decay, grad_clip=1.0, device=device, distributed=False
            )
            source = PoolBatchSource(arrays, task.eval_arrays, seed=seed, augment=task.augment(line))
            trainer = Trainer(
                engine,
                source,
                train,
                folder,
                metadata={"task": f"small-data {task.name}", "line": line.name, "train_size": size},
                description=f"{line.name} n={size} seed {seed}",
            )
            source.step_of = lambda: trainer.step
            logger.info(
                "small data: %s on %s %s, seed %d: %s steps of %d (%s)",
                line.name,
                f"{size:,}",
                task.unit,
                seed,
                f"{steps:,}",
                config.batch,
                status,
            )
            start = time.perf_counter()
            try:
                results = trainer.fit(resume=resume)
            except TrainingInterrupted as e:
                raise SmallDataInterrupted(e.signal_name, folder.name, e.step, steps, finished_before) from None
            finally:
                record["wall_seconds"] = float(record.get("wall_seconds", 0.0)) + time.perf_counter() - start
                record["sessions"] = int(record.get("sessions", 0)) + 1
                write_json_atomic(folder / RUN_FILE, record)
            model = engine.module
            record.update(
                test_accuracy=task.evaluate(model, engine.device),
                parameters=int(sum(p.numel() for p in model.parameters())),
                steps=int(results["step"]),
                train_seconds=round(float(results["train_seconds"]), 3),
                device=str(engine.device),
            )
            write_json_atomic(folder / RUN_FILE, record)
    return {
        "task": task.name,
        "line": line.name,
        "model": line.base,
        "remedy": line.remedy or "none",
        "train_size": size,
        "seed": seed,
        "parameters": record.get("parameters"),
        "steps": record.get("steps"),
        "epochs": round(steps * config.batch / size, 2),
        "batch_size": config.batch,
        "lr": lr,
        "weight_decay": weight_decay,
        "test_accuracy": record["test_accuracy"],
        "test_examples": task.num_test,
        "train_seconds": record.get("train_seconds"),
        "wall_seconds": round(float(record.get("wall_seconds", math.nan)), 3),
        "device": record.get("device"),
        "status": status,
        "run": folder.name,
    }


# ---------------------------------------------------------------------------
# The analysis
# ---------------------------------------------------------------------------


def summarise(rows: Sequence[dict[str, Any]]) -> list[dict[str, Any]]:
    """summary.csv: one row a (line, size), lines in first-seen order and sizes ascending.

    The std is the sample standard deviation over the seeds (ddof = 1; 0 with one seed).
    """
    cells: dict[str, dict[int, list[float]]] = {}
    for r in rows:
        cells.setdefault(r["line"], {}).setdefault(int(r["train_size"]), []).append(float(r["test_accuracy"]))
    out = []
    for line, by_size in cells.items():
        for size in sorted(by_size):
            acc = np.asarray(by_size[size])
            out.append(
                {
                    "line": line,
                    "train_size": size,
                    "mean_accuracy": float(acc.mean()),
                    "std_accuracy": float(acc.std(ddof=1)) if len(acc) > 1 else 0.0,
                    "min_accuracy": float(acc.min()),
                    "max_accuracy": float(acc.max()),
                    "seeds": len(acc),
                }
            )
    return out


def _curve(summary: Sequence[dict[str, Any]], line: str) -> dict[int, tuple[float, float]]:
    return {int(r["train_size"]): (r["mean_accuracy"], r["std_accuracy"]) for r in summary if r["line"] == line}


def crossover(
    summary: Sequence[dict[str, Any]], attention: str, reference: str, *, unit: str = "images"
) -> dict[str, Any]:
    """Where `attention`'s mean accuracy reaches `reference`'s, and how the gap moves with N.

    Args:
        summary: rows of `summarise` (line, train_size, mean_accuracy, std_accuracy).
        attention: the attention line (e.g. "vit").
        reference: the line it is measured against (e.g. "cnn").
        unit: what a training example is, for the sentence.
    Returns:
        {"attention", "reference", "crossover_size" (the smallest size at which the
        attention line's mean reaches the reference's, or None), "behind_again" (larger
        sizes where it falls behind again), "largest_size", "gaps" ({size: reference minus
        attention, in accuracy points}), "gap_first", "gap_last", "gap_per_doubling" (the
        least-squares slope of the gap against log2 N; None with one size), "gap_shrinks"
        (the gap at the largest size is smaller than at the smallest: the attention line
        gains on the reference as data grows), "text"}.
    Raises:
        DataError: the two lines share no size.
    """
    a, b = _curve(summary, attention), _curve(summary, reference)
    sizes = sorted(set(a) & set(b))
    if not sizes:
        raise DataError(f"{attention} and {reference} share no training size: nothing to compare")
    gaps = {n: 100.0 * (b[n][0] - a[n][0]) for n in sizes}  # accuracy points; > 0: attention behind
    spread = {n: 100.0 * math.hypot(a[n][1], b[n][1]) for n in sizes}
    reached = [n for n in sizes if gaps[n] <= 0.0]
    cross = reached[0] if reached else None
    behind_again = [n for n in sizes if cross is not None and n > cross and gaps[n] > 0.0]
    slope = None
    if len(sizes) > 1:
        slope = float(np.polyfit(np.log2(sizes), [gaps[n] for n in sizes], 1)[0])
    first, last = gaps[sizes[0]], gaps[sizes[-1]]
    shrinks = len(sizes) > 1 and last < first  # the attention line gains on the reference as data grows
    if cross is None:
        text = (
            f"{attention} vs {reference}: no crossover up to {sizes[-1]:,} {unit}; {attention} is "
            f"{last:.1f} ± {spread[sizes[-1]]:.1f} points behind at {sizes[-1]:,}"
        )
    elif cross == sizes[0]:
        text = f"{attention} vs {reference}: {attention} is at or above {reference} already at {cross:,} {unit}"
    else:
        text = f"{attention} vs {reference}: {attention} reaches {reference} at {cross:,} {unit}"
    if behind_again:
        text += f" (but falls behind again at {', '.join(f'{n:,}' for n in behind_again)})"
    if len(sizes) > 1:
        if first > 0:
            how = ("the gap closes" if last <= 0 else "the gap shrinks") if shrinks else "the gap does not shrink"
        else:
            how = f"{attention}'s lead grows" if shrinks else f"{reference} catches up"
        text += (
            f"; {how} with data: {first:+.1f} points at {sizes[0]:,}, {last:+.1f} at {sizes[-1]:,} "
            f"({slope:+.2f} points per doubling; gap = {reference} minus {attention}, ± the seeds' std of the difference)"
        )
    return {
        "attention": attention,
        "reference": reference,
        "crossover_size": cross,
        "behind_again": behind_again,
        "largest_size": sizes[-1],
        "gaps": {str(n): gaps[n] for n in sizes},
        "gap_spread": {str(n): spread[n] for n in sizes},
        "gap_first": first,
        "gap_last": last,
        "gap_per_doubling": slope,
        "gap_shrinks": shrinks,
        "text": text,
    }


def _crossovers(task: str, lines: Sequence[Line], summary: Sequence[dict[str, Any]], unit: str) -> list[dict]:
    names = [line.name for line in lines]
    if task == "mnist":
        reference = REFERENCE["mnist"]
        attention = [n for n in names if n == "vit" or n.startswith(("vit+", "vit-"))]
    else:
        reference = "lstm" if "lstm" in names else next((n for n in names if n in ("gru", "rnn")), "")
        attention = ["transformer"] if "transformer" in names else []
    if reference not in names:
        return []
    return [crossover(summary, a, reference, unit=unit) for a in attention]


def format_report(
    summary: Sequence[dict[str, Any]], crossovers: Sequence[dict[str, Any]], *, unit: str = "images"
) -> str:
    """Markdown: accuracy (mean ± std over seeds) a line a column, a size a row; then the crossovers."""
    lines = list(dict.fromkeys(r["line"] for r in summary))
    sizes = sorted({int(r["train_size"]) for r in summary})
    cell = {(r["line"], int(r["train_size"])): r for r in summary}
    seeds = sorted({int(r["seeds"]) for r in summary})
    out = [
        f"Test accuracy (%), mean ± std over {'/'.join(map(str, seeds))} seed(s), by training-set size ({unit}):",
        "",
        f"| {unit} | " + " | ".join(lines) + " |",
        "|---:|" + "---:|" * len(lines),
    ]
    for n in sizes:
        values = []
        for line in lines:
            r = cell.get((line, n))
            values.append(f"{100 * r['mean_accuracy']:.1f} ± {100 * r['std_accuracy']:.1f}" if r else "")
        out.append(f"| {n:,} | " + " | ".join(values) + " |")
    if crossovers:
        out += ["", "Crossover:", ""] + [f"- {c['text']}." for c in crossovers]
    return "\n".join(out) + "\n"


# ---------------------------------------------------------------------------
# The study
# ---------------------------------------------------------------------------


def _sizes(config: SmallDataConfig, available: int | None) -> tuple[int, ...]:
    if config.train_sizes is not None:
        return config.train_sizes
    ladder = QUICK_TRAIN_SIZES if config.quick else DEFAULT_TRAIN_SIZES
    if available is None:
        return ladder
    kept = tuple(n for n in ladder if n <= available)
    return kept or (available,)


def run_small_data_study(
    out_dir: str | Path, config: SmallDataConfig | None = None, *, force: bool = False
) -> dict[str, Any]:
    """Train every (line, size, seed) run (skipping finished ones), then write the tables, report and figure.

    Args:
        out_dir: the study folder (an attnlab run folder; `open_run` claims and locks it).
        config: the task, sizes, seeds, lines and training budget (default: mnist5k, all sizes it
            holds, seeds 0, 1, 2, vit / cnn / mlp).
        force: write into a folder that holds files attnlab did not write (they are kept), and
            train again a run whose folder holds one of other settings.
    Returns:
        {"out_dir", "rows" (runs.csv), "summary" (summary.csv), "crossovers", "report"
        (markdown), "files", "seconds"}.
    Raises:
        ConfigError / DataError: bad settings, a size beyond the data, a run of other settings.
        SmallDataInterrupted: Ctrl-C; finished runs and the interrupted run's checkpoint are kept.
    """
    from attnlab.compare._common import check_device
    from attnlab.config import to_dict
    from attnlab.utils import write_json_atomic, write_text_atomic

    config = config or SmallDataConfig()
    started = time.perf_counter()
    device = check_device(config.device)
    out_dir = Path(out_dir)
    lines = plan_lines(config)
    with open_run(out_dir, command="compare", force=force, info={"small_data": to_dict(config)}):
        task = _image_task(config) if config.task == "mnist" else _sequence_task(config)
        sizes = _sizes(config, task.available)
        for line in lines:  # a model that cannot be built (a patch size) is one line before any training
            task.build(line)
        total = len(lines) * len(sizes) * len(config.seeds)
        rows: list[dict[str, Any]] = []
        for seed in config.seeds:
            for size in sizes:
                for line in lines:
                    name = f"{line.name}-n{size}-seed{seed}"
                    logger.info("small data: run %d of %d: %s", len(rows) + 1, total, name)
                    rows.append(
                        _run_one(
                            out_dir / RUNS_DIR / name,
                            line,
                            size,
                            seed,
                            task,
                            config,
                            device,
                            force=force,
                            finished_before=len(rows),
                        )
                    )
                    logger.info(
                        "small data: %s: %.2f%% (%s)", name, 100 * rows[-1]["test_accuracy"], rows[-1]["status"]
                    )
                    # The table grows run by run, so a long study can be watched (and survives a stop).
                    write_tidy_csv(out_dir / "runs.csv", rows, "one run of the small-data study a row")
        order = {line.name: i for i, line in enumerate(lines)}
        rows.sort(key=lambda r: (order[r["line"]], r["train_size"], r["seed"]))
        write_tidy_csv(out_dir / "runs.csv", rows, "one run of the small-data study a row")
        summary = summarise(rows)
        write_tidy_csv(out_dir / "summary.csv", summary, "one (line, training size) of the small-data study a row")
        crossovers = _crossovers(config.task, lines, summary, task.unit)
        report = format_report(summary, crossovers, unit=task.unit)
        title = f"# Small data: {task.data_name}\n\n"
        write_text_atomic(out_dir / "report.md", title + report)
        files = [str(out_dir / n) for n in ("runs.csv", "summary.csv", "report.md")]
        if config.figures:
            from attnlab.viz.small_data import plot_accuracy_vs_train_size

            files.append(
                str(
                    plot_accuracy_vs_train_size(
                        summary,
                        out_dir / FIGURE,
                        chance=task.chance,
                        unit=task.unit,
                        title=f"Accuracy vs training-set size on {task.data_name}",
                    )
                )
            )
        seconds = time.perf_counter() - started
        write_json_atomic(
            out_dir / "results.json",
            {
                "task": task.describe,
                "settings": {
                    **to_dict(config),
                    "train_sizes": list(sizes),
                    "lines": [line.name for line in lines],
                    "epochs": config.run_epochs,
                    "min_steps": config.run_min_steps,
                    "batch_size": config.batch,
                    "conv_stem": list(config.stem_channels),
                    "device": device,
                },
                "runs": len(rows),
                "summary": summary,
                "crossovers": crossovers,
                "seconds": round(seconds, 1),
                "files": [Path(f).name for f in files] + ["results.json"],
            },
        )
        files.append(str(out_dir / "results.json"))
    return {
        "out_dir": str(out_dir),
        "rows": rows,
        "summary": summary,
        "crossovers": crossovers,
        "report": report,
        "files": files,
        "seconds": seconds,
    }


def read_summary(out_dir: str | Path) -> list[dict[str, Any]]:
    """The rows of a study's summary.csv (numbers as numbers), for notebooks and the app.

    Raises:
        DataError: the folder has no summary.csv.
    """
    import csv

    path = Path(out_dir) / "summary.csv"
    try:
        text = path.read_text(encoding="utf-8")
    except OSError as e:
        raise DataError(f"{str(out_dir)!r} holds no summary.csv of a small-data study ({e.strerror or e})") from None
    rows = []
    for row in csv.DictReader(ln for ln in text.splitlines() if not ln.startswith("#")):
        parsed: dict[str, Any] = {"line": row["line"], "train_size": int(row["train_size"]), "seeds": int(row["seeds"])}
        for k in ("mean_accuracy", "std_accuracy", "min_accuracy", "max_accuracy"):
            parsed[k] = float(row[k])
        rows.append(parsed)
    return rows

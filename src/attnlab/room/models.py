"""`attnlab room build` and `attnlab room install`: every lab's model, trained once for a whole room.

`build_models` trains each model of `attnlab.pretrained.CATALOGUE` with the very library call
and settings its lab uses (the recipe of each `_build_*` function names where it comes from),
into `OUT/<name>` as an ordinary checkpoint folder plus `room.json` (what it is, how long it
trained, its headline metric, the sha256 of every file; see `attnlab.pretrained`). Only the
PLM is trained longer than its notebook does: 2,400 steps, the benchmark's recipe
(`benchmarks/bench_bio.py`), so that it beats the composition control, which notebook 04's
90-second PLM does not.

A model is trained in `OUT/.building-<name>/` and renamed into place after its `room.json`
is written, so a finished model is skipped when the command runs again and an interrupted
one is retrained from scratch. `quick=True` trains tiny versions (seconds each) for tests.

`install_models` copies the models of a build folder or a kit (`KIT/models/`) into
`attnlab.pretrained.models_dir()`: each is verified (sha256 of every file), copied to a
temporary name, verified again and renamed into place; a broken model is never installed
over a working one.
"""

from __future__ import annotations

import dataclasses
import logging
import os
import shutil
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from attnlab import __version__, pretrained
from attnlab.errors import CheckpointError, ConfigError

logger = logging.getLogger(__name__)

BUILDING_PREFIX = ".building-"  # OUT/.building-<name>: a model being trained (or one an interruption left)
INSTALL_PREFIX = ".installing-"  # MODELS/.installing-<name>-<pid>: a model being copied in
OLD_PREFIX = ".replaced-"  # MODELS/.replaced-<name>-<pid>: the previous copy, deleted once replaced

# The PLM of the kit: notebook 04's model and data, trained with the benchmark's step budget.
PLM_STEPS = 2400
PLM_MAX_SECONDS = 900.0  # a guard for a slow machine (the schedule assumes PLM_STEPS)


@dataclass(frozen=True)
class Result:
    """What one model's training gave (the fields of its room.json)."""

    folder: Path  # the trained checkpoint (or probe) folder, to be moved to OUT/<name>
    steps: int | None
    train_seconds: float
    metric: dict[str, Any]  # {"name": ..., "value": ...}
    settings: dict[str, Any]
    extra: dict[str, Any] = dataclasses.field(default_factory=dict)  # what a notebook needs besides the weights
    kind: str = "checkpoint"  # or "probe"


@dataclass(frozen=True)
class Recipe:
    """How to train some models of the catalogue (several come out of one run, e.g. compare mnist)."""

    names: tuple[str, ...]
    expected_seconds: dict[str, float]  # per model, on the 2-core reference machine (attnlab.doctor)
    train: Callable[[Path, Sequence[str], bool], dict[str, Result]]  # (work folder, names wanted, quick)


def _settings(obj: Any) -> dict[str, Any]:
    import json

    return json.loads(json.dumps(dataclasses.asdict(obj), default=str))


# --------------------------------------------------------------------------- the recipes


def _build_demo(work: Path, names: Sequence[str], quick: bool) -> dict[str, Result]:
    """`attnlab demo`: `run_demo` with its defaults (baby GPT, 120 s, seed 1337, pydoc)."""
    from attnlab.train.recipes import run_demo

    out = work / "demo-gpt"
    kwargs: dict[str, Any] = dict(seconds=1.0, preset="nano", sample_tokens=20) if quick else {}
    run = run_demo(out, **kwargs)
    r = run["results"]
    return {
        "demo-gpt": Result(
            out,
            r.get("step"),
            float(r.get("train_seconds", 0.0)),
            {"name": "validation loss", "value": r.get("val_loss")},
            {"command": "attnlab demo", **kwargs},
        )
    }


def _build_gpt05(work: Path, names: Sequence[str], quick: bool) -> dict[str, Result]:
    """Notebook 05: `train_language_model`, the baby GPT, 2,000 steps of batch 12 on pydoc (normal mode)."""
    from attnlab.models.gpt import GPTConfig
    from attnlab.train.recipes import DataConfig, train_language_model
    from attnlab.train.trainer import TrainConfig

    config = GPTConfig.from_name("nano" if quick else "baby")
    train = TrainConfig(
        max_iters=10 if quick else 2000,
        batch_size=12,
        lr=1e-3,
        warmup_iters=2 if quick else 100,
        eval_interval=10 if quick else 250,
        eval_iters=2 if quick else 20,
        log_interval=5 if quick else 10,
        max_time=180,
        device="cpu",
    )
    out = work / "gpt-05"
    r = train_language_model(out, data=DataConfig(source="pydoc", tokenizer="char"), model=config, train=train)
    return {
        "gpt-05": Result(
            out,
            r.get("step"),
            float(r.get("train_seconds", 0.0)),
            {"name": "validation loss", "value": r.get("val_loss")},
            {"model": _settings(config), "train": _settings(train)},
        )
    }


def _build_encoder(work: Path, names: Sequence[str], quick: bool) -> dict[str, Result]:
    """`attnlab train --objective mlm --data pydoc` (docs/encoders.md): the small encoder, TrainConfig's defaults."""
    from attnlab.configs.data import DataConfig
    from attnlab.models.encoder import EncoderConfig
    from attnlab.train.mlm import MaskingConfig, train_masked_lm
    from attnlab.train.trainer import TrainConfig

    model = EncoderConfig.from_name("mini" if quick else "small")
    train = TrainConfig(max_iters=10, eval_interval=10, eval_iters=2) if quick else TrainConfig()
    out = work / "encoder-mlm"
    r = train_masked_lm(out, data=DataConfig(source="pydoc"), model=model, train=train, masking=MaskingConfig())
    return {
        "encoder-mlm": Result(
            out,
            r.get("step"),
            float(r.get("train_seconds", 0.0)),
            {"name": "masked-token accuracy", "value": r.get("val_masked_accuracy")},
            {"command": "attnlab train --objective mlm --data pydoc", "model": _settings(model)},
        )
    }


def _build_seq2seq(work: Path, names: Sequence[str], quick: bool) -> dict[str, Result]:
    """`attnlab train --task reverse|sort|numbers`: each task's `recipe(...)` (the transformer)."""
    from attnlab.train.seq2seq import recipe, train_task

    done = {}
    for name in names:
        task_name = name.removeprefix("seq2seq-")
        r = recipe(task_name, "transformer")
        train, task, model = r.train, r.task, r.model
        if quick:
            train = dataclasses.replace(train, max_iters=10, warmup_iters=2, eval_interval=10, eval_iters=2)
            task = dataclasses.replace(task, num_eval_examples=20)
        out = work / name
        results = train_task(out, task=task, model=model, train=train)
        done[name] = Result(
            out,
            results.get("step"),
            float(results.get("train_seconds", 0.0)),
            {"name": "held-out exact match", "value": results.get("exact_match")},
            {"command": f"attnlab train --task {task_name}", "task": _settings(task)},
        )
    return done


def _build_mnist(work: Path, names: Sequence[str], quick: bool) -> dict[str, Result]:
    """Notebook 03 / `attnlab compare mnist`: `compare_mnist` on mnist5k, each model's own recipe, seed 0."""
    from attnlab.compare.mnist import MnistCompareConfig, compare_mnist

    models = tuple(n.removeprefix("mnist-") for n in names)
    config = MnistCompareConfig(data="mnist5k", models=models, seed=0, device="auto", quick=quick, progress=True)
    out = work / "mnist"
    run = compare_mnist(config, out)
    done = {}
    for model in models:
        r = run["models"][model]
        done[f"mnist-{model}"] = Result(
            Path(r["checkpoint"]),
            r.get("steps"),
            float(r.get("train_seconds", 0.0)),
            {"name": "test accuracy", "value": r.get("test_accuracy")},
            {"command": f"attnlab compare mnist --models {model}", "compare": _settings(config)},
            extra={"result": {k: v for k, v in r.items() if k != "checkpoint"}, "data": run["data"]},
        )
    return done


def amp_pretraining_fasta(out: Path, *, max_sequences: int | None = None) -> tuple[Any, Path]:
    """Notebook 04's pretraining data: the AMP data set's train and valid sequences (not test) as FASTA.

    Returns:
        (the prepared data set (`attnlab.bio.workflow.prepare_dataset`, split seed 0), the FASTA file).
    """
    from attnlab.bio.data import load_amp
    from attnlab.bio.workflow import prepare_dataset

    dataset = prepare_dataset(load_amp(), "seq-class", max_sequences=max_sequences, split_seed=0)
    fasta = out / "pretrain.fasta"
    fasta.parent.mkdir(parents=True, exist_ok=True)
    splits = [s if s != "test" else None for s in dataset.splits]
    fasta.write_text(
        "".join(f">{i} split={s}\n{q}\n" for i, q, s in zip(dataset.ids, dataset.sequences, splits) if s),
        encoding="utf-8",
    )
    return dataset, fasta


def _build_plm(work: Path, names: Sequence[str], quick: bool) -> dict[str, Result]:
    """Notebook 04's PLM (protein-small, context 64, batch 64, lr 2e-3) for PLM_STEPS steps instead of 90 s."""
    from attnlab.models.encoder import EncoderConfig
    from attnlab.train.mlm import MaskingConfig, train_masked_lm
    from attnlab.train.recipes import DataConfig
    from attnlab.train.trainer import TrainConfig

    dataset, fasta = amp_pretraining_fasta(work / "plm-data", max_sequences=300 if quick else None)
    steps = 5 if quick else PLM_STEPS
    model = EncoderConfig.from_name("protein-small", max_seq_len=64)
    train = TrainConfig(
        batch_size=16 if quick else 64,
        lr=2e-3,
        min_lr=2e-4,
        warmup_iters=2 if quick else 50,
        max_iters=steps,
        max_time=30 if quick else PLM_MAX_SECONDS,
        eval_interval=5 if quick else 300,
        eval_iters=3,
        device="cpu",
        seed=0,
    )
    out = work / "plm"
    r = train_masked_lm(
        out, data=DataConfig(source=str(fasta), tokenizer="protein"), model=model, train=train, masking=MaskingConfig()
    )
    return {
        "plm": Result(
            out,
            r.get("step"),
            float(r.get("train_seconds", 0.0)),
            {"name": "masked-token accuracy", "value": r.get("val_masked_accuracy")},
            {
                "model": _settings(model),
                "train": _settings(train),
                "data": "amp, prepare_dataset split_seed=0, not test",
            },
            extra={"val_loss": r.get("val_loss"), "num_sequences": len(dataset.sequences)},
        )
    }


def _build_probe(work: Path, names: Sequence[str], quick: bool) -> dict[str, Result]:
    """The app's proteins view: an MLP probe on composition + length (the app computes those features)."""
    from attnlab.bio.controls import composition
    from attnlab.bio.data import load_amp
    from attnlab.bio.probes import ProbeConfig, fit_probe
    from attnlab.bio.workflow import encode_splits, prepare_dataset

    start = time.perf_counter()
    dataset = prepare_dataset(load_amp(), "seq-class", max_sequences=300 if quick else None, split_seed=0)
    encoder, parts, y, _ = encode_splits(dataset)
    config = ProbeConfig(max_epochs=3) if quick else ProbeConfig()
    X = {s: composition(p.sequences) for s, p in parts.items()}
    probe = fit_probe("mlp", X["train"], y["train"], X["valid"], y["valid"], dataset.task, seed=0, config=config)
    metrics = probe.evaluate(X["test"], y["test"])
    out = work / "amp-probe"
    probe.save(out)
    encoder.save(out / "labels.json")
    return {
        "amp-probe": Result(
            out,
            None,
            time.perf_counter() - start,
            {"name": "test MCC", "value": metrics.get("mcc")},
            {"features": "composition + length", "probe": "mlp", "split_seed": 0},
            extra={"test_metrics": metrics},
            kind="probe",
        )
    }


def _build_induction(work: Path, names: Sequence[str], quick: bool) -> dict[str, Result]:
    """Notebook 08 / `attnlab interp induction`: `run_induction_lab(InductionConfig())`, seed 0."""
    from attnlab.interp.induction import CHECKPOINT_DIR, InductionConfig, run_induction_lab

    config = InductionConfig.quick(steps=50, eval_every=25) if quick else InductionConfig()
    out = work / "induction-run"
    result = run_induction_lab(config, out, figures=False)
    return {
        "induction": Result(
            out / CHECKPOINT_DIR,
            result.trained_steps,
            float(result.train_seconds),
            {"name": "phase change step", "value": result.phase_change_step},
            {"induction": _settings(config)},
            extra={"result": result.to_json()},
        )
    }


RECIPES: tuple[Recipe, ...] = (
    Recipe(("demo-gpt",), {"demo-gpt": 140.0}, _build_demo),
    Recipe(("gpt-05",), {"gpt-05": 130.0}, _build_gpt05),
    Recipe(("encoder-mlm",), {"encoder-mlm": 240.0}, _build_encoder),
    Recipe(
        ("seq2seq-reverse", "seq2seq-sort", "seq2seq-numbers"),
        {"seq2seq-reverse": 120.0, "seq2seq-sort": 180.0, "seq2seq-numbers": 240.0},
        _build_seq2seq,
    ),
    Recipe(
        ("mnist-vit", "mnist-cnn", "mnist-mlp"), {"mnist-vit": 90.0, "mnist-cnn": 40.0, "mnist-mlp": 15.0}, _build_mnist
    ),
    Recipe(("plm",), {"plm": 560.0}, _build_plm),
    Recipe(("amp-probe",), {"amp-probe": 15.0}, _build_probe),
    Recipe(("induction",), {"induction": 25.0}, _build_induction),
)
QUICK_SECONDS = 5.0  # expected seconds of a --quick model
assert [n for r in RECIPES for n in r.names] == list(pretrained.CATALOGUE)


def parse_names(only: str | Sequence[str] | None) -> list[str]:
    """The catalogue names chosen with `--only a,b` (all when None), in catalogue order.

    Raises:
        ConfigError: an unknown name (the message lists the known ones) or an empty list.
    """
    if only is None:
        return list(pretrained.CATALOGUE)
    raw = only.split(",") if isinstance(only, str) else list(only)
    chosen = [n.strip() for n in raw if n.strip()]
    if not chosen:
        raise ConfigError(
            f"--only needs model names, e.g. --only demo-gpt,plm; known: {', '.join(pretrained.CATALOGUE)}"
        )
    unknown = [n for n in chosen if n not in pretrained.CATALOGUE]
    if unknown:
        raise ConfigError(
            f"unknown model name{'s' if len(unknown) > 1 else ''} in --only: {', '.join(unknown)}; "
            f"choose from: {', '.join(pretrained.CATALOGUE)}"
        )
    return [n for n in pretrained.CATALOGUE if n in chosen]


def _models_folder(folder: Path, fix: str, *, writable: bool = True) -> None:
    """Create the models folder `folder` if needed, or raise a ConfigError ending in `fix`."""
    if folder.exists() and not folder.is_dir():
        raise ConfigError(f"the models folder {str(folder)!r} is a file; {fix}")
    try:
        folder.mkdir(parents=True, exist_ok=True)
    except OSError as e:
        raise ConfigError(f"cannot create the models folder {str(folder)!r} ({e.strerror or e}); {fix}") from None
    if writable and not os.access(folder, os.W_OK):
        raise ConfigError(f"the models folder {str(folder)!r} is not writable; {fix}")


def _check_out(out: Path) -> None:
    _models_folder(out, "pass another --out")


def is_finished(folder: Path) -> bool:
    """True when `folder` holds a finished model (room.json and its files in order)."""
    try:
        pretrained.check_model(folder, full=False)
    except CheckpointError:
        return False
    return True


def speed_factor(quick: bool) -> float:
    """How many times slower than the reference machine this one is (the doctor's 5-second probe); 1 when quick."""
    if quick:
        return 1.0
    from attnlab import doctor

    probe = doctor.speed_probe(device="cpu")
    threads = probe.threads if probe.threads in doctor.PROBE_REFERENCE_MS else max(doctor.PROBE_REFERENCE_MS)
    return probe.ms_per_step / doctor.PROBE_REFERENCE_MS[threads]


def _publish(result: Result, name: str, out: Path, seconds: float, quick: bool) -> Path:
    """Write room.json into the trained folder and rename it to OUT/<name> (room.json last: it marks it finished)."""
    from attnlab.utils import write_json_atomic

    folder = result.folder
    room = {
        "format": pretrained.ROOM_FORMAT,
        "name": name,
        "description": pretrained.CATALOGUE[name],
        "kind": result.kind,
        "steps": result.steps,
        "train_seconds": round(result.train_seconds, 2),
        "build_seconds": round(seconds, 2),
        "metric": result.metric,
        "quick": quick,
        "settings": result.settings,
        "extra": result.extra,
        "attnlab_version": __version__,
        "built": time.strftime("%Y-%m-%d %H:%M:%S"),
        "files": pretrained.file_table(folder),
    }
    write_json_atomic(folder / pretrained.ROOM_FILE, room)
    final = out / name
    if final.exists():  # an unfinished or broken model of an earlier build
        shutil.rmtree(final)
    os.replace(folder, final)
    return final


def build_models(
    out: str | os.PathLike | None = None,
    *,
    only: str | Sequence[str] | None = None,
    quick: bool = False,
    progress: bool = True,
    on_done: Callable[[str, dict[str, Any]], None] | None = None,
) -> dict[str, Any]:
    """Train the models of the catalogue that `out` does not hold yet.

    Args:
        out: the build folder (default `attnlab.pretrained.models_dir()`).
        only: names to build (default all), as a list or "a,b".
        quick: tiny versions in seconds each (tests).
        progress: a progress bar over the models with the estimated time left.
        on_done: called with (name, room.json) after each model.
    Returns:
        {"out": folder, "built": [names], "skipped": [names], "estimated_seconds": ..., "seconds": ...}.
    Raises:
        ConfigError: unknown names, or an `out` that is a file or cannot be written.
    """
    from tqdm.auto import tqdm

    from attnlab.doctor import format_seconds

    names = parse_names(only)
    out = Path(out) if out is not None else pretrained.models_dir()
    _check_out(out)
    skipped = [n for n in names if is_finished(out / n)]
    todo = [n for n in names if n not in skipped]
    for name in skipped:
        logger.info("%s: already built in %s, skipping", name, out / name)
    start = time.perf_counter()
    estimate = 0.0
    if todo:
        factor = speed_factor(quick)
        expected = {n: (QUICK_SECONDS if quick else r.expected_seconds[n] * factor) for r in RECIPES for n in r.names}
        estimate = sum(expected[n] for n in todo)
        logger.info(
            "room build: %d model(s) to train into %s, about %s on this machine%s",
            len(todo),
            out,
            format_seconds(estimate),
            "" if quick else f" ({factor:.2f} x the 2-core reference machine's time)",
        )
        bar = tqdm(total=len(todo), unit="model", disable=not progress, desc="room build")
        left = estimate
        built: list[str] = []
        try:
            for recipe in RECIPES:
                wanted = [n for n in recipe.names if n in todo]
                if not wanted:
                    continue
                bar.set_postfix_str(f"{', '.join(wanted)}; about {format_seconds(left)} left")
                work = out / f"{BUILDING_PREFIX}{wanted[0]}"
                if work.exists():  # an interrupted build: start it again
                    shutil.rmtree(work)
                work.mkdir(parents=True)
                t0 = time.perf_counter()
                results = recipe.train(work, wanted, quick)
                seconds = time.perf_counter() - t0
                for name in wanted:
                    final = _publish(results[name], name, out, seconds / len(wanted), quick)
                    built.append(name)
                    left = max(0.0, left - expected[name])
                    bar.update(1)
                    if on_done is not None:
                        on_done(name, pretrained.read_room(final) or {})
                shutil.rmtree(work, ignore_errors=True)
            bar.set_postfix_str("done")
        finally:
            bar.close()
    else:
        built = []
    return {
        "out": str(out),
        "built": built,
        "skipped": skipped,
        "estimated_seconds": estimate,
        "seconds": time.perf_counter() - start,
    }


# --------------------------------------------------------------------------- what the notebooks load


def _same_settings(saved: Any, wanted: Any, ignore: tuple[str, ...] = ()) -> bool:
    import json

    now = json.loads(json.dumps(dataclasses.asdict(wanted), default=str))
    if not isinstance(saved, dict):
        return False
    return {k: v for k, v in saved.items() if k not in ignore} == {k: v for k, v in now.items() if k not in ignore}


def load_mnist(config: Any, run_dir: str | os.PathLike) -> dict[str, Any] | None:
    """Notebook 03: the kit's mnist-NAME models in place of `compare_mnist(config, run_dir)`, or None.

    None unless every model of `config.models` is installed (and `$ATTNLAB_TRAIN` is not set)
    and was trained with these very settings. The checkpoints are copied to RUN_DIR/models/NAME
    (where `compare_mnist` writes them); the returned dict has the keys of `compare_mnist`'s
    that the notebook reads: "data", "models" (with each model's curve), "table", "settings".
    """
    from attnlab.compare.mnist import format_results_table

    rooms = {}
    for name in config.models:
        folder = pretrained.use(f"mnist-{name}")
        room = pretrained.read_room(folder) if folder is not None else None
        saved = ((room or {}).get("settings") or {}).get("compare")
        if room is None or not _same_settings(saved, config, ignore=("models", "progress")):
            return None
        rooms[name] = room
    run_dir = Path(run_dir)
    models = {}
    for name, room in rooms.items():
        target = run_dir / "models" / name
        pretrained.copy_to(f"mnist-{name}", target)
        models[name] = {**room["extra"]["result"], "checkpoint": str(target)}
    data = next(iter(rooms.values()))["extra"]["data"]
    return {
        "data": data,
        "models": models,
        "table": format_results_table(models),
        "settings": {**dataclasses.asdict(config), "models": list(config.models)},
        "pretrained": {name: room.get("steps") for name, room in rooms.items()},
    }


def load_induction(config: Any) -> tuple[Any, Any] | None:
    """Notebook 08: the kit's induction model and its training record for `config`, or None.

    None unless it is installed (and `$ATTNLAB_TRAIN` is not set) and was trained with `config`.
    Returns:
        (the model in eval mode, the `InductionResult` of its training).
    """
    from attnlab.interp.induction import InductionResult
    from attnlab.models.registry import load_model

    folder = pretrained.use("induction")
    room = pretrained.read_room(folder) if folder is not None else None
    if room is None or not _same_settings((room.get("settings") or {}).get("induction"), config):
        return None
    model, _ = load_model(folder)
    return model.eval(), InductionResult.from_json(room["extra"]["result"])


# --------------------------------------------------------------------------- install


def model_folders(source: str | os.PathLike) -> tuple[Path, list[Path]]:
    """The folder holding models in `source` (a build folder, or a kit with `models/`), and its model folders.

    A model folder is any sub-folder with a room.json (finished or not: `install_models`
    reports the broken ones).

    Raises:
        ConfigError: `source` is missing, not a folder, or holds no models.
    """
    src = Path(source)
    if not src.exists():
        raise ConfigError(f"{str(src)!r} does not exist; pass a kit folder or the --out folder of `attnlab room build`")
    if not src.is_dir():
        raise ConfigError(f"{str(src)!r} is a file; pass a kit folder or the --out folder of `attnlab room build`")
    for root in (src / "models", src):
        if root.is_dir():
            found = sorted(p for p in root.iterdir() if p.is_dir() and (p / pretrained.ROOM_FILE).is_file())
            if found:
                return root, found
    raise ConfigError(
        f"{str(src)!r} holds no pre-trained models (no folder with a {pretrained.ROOM_FILE}, neither there nor in "
        "its models/ folder); build them with `attnlab room build --out DIR`, or pass the kit of `attnlab room pack`"
    )


def install_models(
    source: str | os.PathLike, dest: str | os.PathLike | None = None, *, progress: bool = True
) -> dict[str, Any]:
    """Copy the models of a kit or build folder into `dest` (default `models_dir()`), atomically per model.

    Returns:
        {"dest": folder, "installed": [names], "unchanged": [names], "broken": {name: reason}}.
        A broken model in `source` is not copied, and the installed one of that name is kept.
    Raises:
        ConfigError: `source` holds no models; `dest` is a file or not writable.
    """
    from tqdm.auto import tqdm

    root, folders = model_folders(source)
    dest = Path(dest) if dest is not None else pretrained.models_dir()
    _models_folder(dest, f"set {pretrained.MODELS_ENV} to another folder", writable=False)
    if dest.resolve() == root.resolve():
        raise ConfigError(f"{str(root)!r} is the models folder itself; pass the kit or build folder to install from")
    installed, unchanged, broken = [], [], {}
    for folder in tqdm(folders, unit="model", desc="room install", disable=not progress):
        name = folder.name
        try:
            room = pretrained.check_model(folder, full=True)
        except CheckpointError as e:
            broken[name] = str(e)
            logger.warning("%s: not installed: %s", name, e)
            continue
        target = dest / name
        current = pretrained.read_room(target)
        if current is not None and current.get("files") == room.get("files") and is_finished(target):
            unchanged.append(name)
            continue
        tmp = dest / f"{INSTALL_PREFIX}{name}-{os.getpid()}"
        old = dest / f"{OLD_PREFIX}{name}-{os.getpid()}"
        shutil.rmtree(tmp, ignore_errors=True)
        try:
            shutil.copytree(folder, tmp)
            pretrained.check_model(tmp, full=True)  # the copy itself, before it replaces anything
            if target.exists():
                os.replace(target, old)
            os.replace(tmp, target)
        except (OSError, CheckpointError):
            shutil.rmtree(tmp, ignore_errors=True)
            if old.exists() and not target.exists():
                os.replace(old, target)  # put the previous copy back
            raise
        shutil.rmtree(old, ignore_errors=True)
        installed.append(name)
    return {"dest": str(dest), "installed": installed, "unchanged": unchanged, "broken": broken}


__all__ = [
    "PLM_STEPS",
    "RECIPES",
    "Recipe",
    "Result",
    "amp_pretraining_fasta",
    "build_models",
    "install_models",
    "is_finished",
    "load_induction",
    "load_mnist",
    "model_folders",
    "parse_names",
    "speed_factor",
]

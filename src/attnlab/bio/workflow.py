"""The probing workflow behind `attnlab probe`: data -> embeddings (cached) -> probes over seeds -> report.

    dataset ("amp" or a FASTA/CSV file)
      -> de-duplicate, optional subset, train/valid/test splits (the file's own, or stratified 80/10/10)
      -> embed every split with one embedder (`make_embedder`), through the on-disk cache
      -> for each seed: train a probe on train, early-stop on valid, score on test
         (or, with `finetune=True`, fine-tune the encoder with a head, `attnlab.bio.finetune`)
      -> mean ± std over seeds
      -> OUT/results.json, OUT/results.md, OUT/confusion_matrix.png, OUT/pca.png,
         OUT/probes/seed<k>/ (probe.json with the class names, probe.safetensors,
         embedder.json, labels.json: the folder the web app reads)

`run_probe_experiment(ProbeRunConfig(...))` does all of it (pass `embedder=` / `dataset=`
objects to reuse models and data held in memory); the pieces (`prepare_dataset`,
`encode_splits`, `embed_splits`, `write_report`, `comparison_table`) are public for the
benchmark and the notebook.

CLI task names map onto `attnlab.bio.data` tasks:
    seq-class      binary or multiclass (one class per sequence)
    seq-reg        regression (one number per sequence)
    residue-class  residue (one class per residue, optionally masked)
CLI probe and pool names map onto probe kinds (`attnlab.bio.probes`):
    linear / mlp + pool mean|max|cls   pooled vectors -> "linear" / "mlp"
    linear / mlp + pool attn           per-residue vectors -> "attention" / "attention-mlp"
    transformer (+ pool cls|attn|mean|max for sequence tasks)   per-residue vectors -> "transformer"
    residue-class: linear / mlp read each residue vector, transformer reads the sequence.
"""

from __future__ import annotations

import dataclasses
import json
import logging
import math
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from attnlab.bio.cache import EmbeddingCache
from attnlab.bio.data import (
    BAD_LABEL_POLICIES,
    CLASSIFICATION_TASKS,
    LabelEncoder,
    SequenceDataset,
    assign_splits,
    deduplicate,
    load_dataset,
    split_indices,
)
from attnlab.bio.embedder_base import SequenceEmbedder, compute_embeddings
from attnlab.bio.embedders import check_pool, embedder_kind, embedding_pooling, make_embedder
from attnlab.bio.finetune import FineTuneConfig
from attnlab.bio.metrics import PRIMARY_METRIC, aggregate_over_seeds, confusion_matrix, flatten_residues
from attnlab.bio.probe_kinds import ProbeConfig
from attnlab.errors import ConfigError, DataError
from attnlab.runs import writes_run
from attnlab.utils import write_json_atomic, write_text_atomic

logger = logging.getLogger(__name__)

CLI_TASKS = {"seq-class": CLASSIFICATION_TASKS, "seq-reg": ("regression",), "residue-class": ("residue",)}
CLI_PROBES = ("linear", "mlp", "transformer")
CLI_POOLS = ("mean", "max", "cls", "attn")
MAX_SEEDS = 100
SPLITS = ("train", "valid", "test")
METRIC_ORDER = ("accuracy", "macro_f1", "mcc", "roc_auc", "spearman", "pearson", "r2", "rmse")


@dataclass(frozen=True)
class ProbeRunConfig:
    """One probing experiment (what `attnlab probe` runs)."""

    data: str  # "amp" (offline modlamp set) or a FASTA / CSV path
    task: str  # seq-class, seq-reg or residue-class
    embedder: str  # onehot, composition, random[:PRESET|:PATH], an encoder checkpoint, an ESM-2 folder or hub name
    out: str  # folder for results.json, results.md, figures and probes/
    pool: str | None = None  # mean, max, cls or attn (sequence tasks); None = mean; must be None for residue-class
    probe: str = "linear"  # linear, mlp or transformer
    seeds: int = 3  # probes trained with seeds 0 .. seeds-1
    max_sequences: int | None = None  # use a deterministic subset of this many sequences (quick runs)
    split_seed: int = 0  # seed of the splits drawn when the data has none
    split_fractions: tuple[float, float, float] = (0.8, 0.1, 0.1)  # train / valid / test when drawn
    finetune: bool = False  # fine-tune the encoder with a head instead of probing frozen embeddings
    layer: int | None = None  # hidden state of a model embedder (None = last)
    batch_size: int = 16  # sequences (windows) per forward pass while embedding
    device: str = "cpu"  # cpu, cuda, mps or auto
    random_like: str | None = None  # shape of the random control: preset name or model folder (None = protein-small)
    random_seed: int = 0  # initialisation seed of the random control
    long_sequences: str = "window"  # window (overlapping windows) or error, for sequences longer than the context
    cache: bool = True  # read / write the embedding cache
    cache_dir: str | None = None  # cache folder (None = $ATTNLAB_CACHE/embeddings or ~/.cache/attnlab/embeddings)
    progress: bool = True  # tqdm bars on embedding and training
    save_probes: bool = True  # write OUT/probes/seed<k>/ (or OUT/finetuned/seed<k>/)
    pca_points: int = 2000  # at most this many test points (sequences or residues) in pca.png
    bad_labels: str = (
        "error"  # missing / non-finite labels: error (one line naming the record) or drop (counted in the notes)
    )
    probe_config: ProbeConfig = field(default_factory=ProbeConfig)  # probe training settings
    finetune_config: FineTuneConfig = field(default_factory=FineTuneConfig)  # fine-tuning settings

    def __post_init__(self) -> None:
        if self.task not in CLI_TASKS:
            raise ConfigError(f"unknown task {self.task!r}; choose one of: {', '.join(CLI_TASKS)}")
        if self.probe not in CLI_PROBES:
            raise ConfigError(f"unknown probe {self.probe!r}; choose one of: {', '.join(CLI_PROBES)}")
        if self.pool is not None and self.pool not in CLI_POOLS:
            raise ConfigError(f"unknown pool {self.pool!r}; choose one of: {', '.join(CLI_POOLS)}")
        if self.pool is not None and self.task == "residue-class":
            raise ConfigError(
                "--pool does not apply to residue-class: per-residue probes read every residue's vector; drop --pool"
            )
        if isinstance(self.seeds, bool) or not isinstance(self.seeds, int) or not 1 <= self.seeds <= MAX_SEEDS:
            raise ConfigError(
                f"--seeds must be a whole number from 1 to {MAX_SEEDS} (probes use seeds 0 .. N-1), got {self.seeds!r}"
            )
        if self.max_sequences is not None and self.max_sequences < 10:
            raise ConfigError(
                f"--max-sequences must be at least 10 (train, valid and test need sequences), got {self.max_sequences}"
            )
        if self.batch_size < 1 or self.pca_points < 10:
            raise ConfigError("batch_size must be at least 1 and pca_points at least 10")
        if self.bad_labels not in BAD_LABEL_POLICIES:
            raise ConfigError(f"unknown bad_labels {self.bad_labels!r}; choose {' or '.join(BAD_LABEL_POLICIES)}")
        # Upper bounds (attnlab.limits): a typo is refused at once, not after hours of embedding.
        from attnlab import limits

        limits.check_seed(self.split_seed, "--split-seed")
        limits.check_seed(self.random_seed, "--random-seed")
        limits.check_int(self.batch_size, "--batch-size", 1, limits.MAX_EVAL_BATCH_SIZE)
        limits.check_int(self.pca_points, "pca_points", 10, 1_000_000)
        if self.max_sequences is not None:
            limits.check_int(self.max_sequences, "--max-sequences", 10, limits.MAX_SEQUENCES)
        if self.layer is not None:
            limits.check_int(self.layer, "--layer", -limits.MAX_INDEX, limits.MAX_INDEX)

    @property
    def pool_name(self) -> str:
        """The pool actually used: "none" (residue task) or the --pool choice (default mean)."""
        return "none" if self.task == "residue-class" else (self.pool or "mean")


# ----------------------------------------------------------------------------- data


def prepare_dataset(
    data: str | SequenceDataset,
    task: str,
    *,
    max_sequences: int | None = None,
    split_seed: int = 0,
    fractions: Sequence[float] = (0.8, 0.1, 0.1),
    bad_labels: str = "error",
) -> SequenceDataset:
    """Load, check against the task, de-duplicate, subset and split a data set.

    Args:
        data: "amp", a FASTA/CSV path, or a `SequenceDataset`.
        task: seq-class, seq-reg or residue-class.
        max_sequences: keep a deterministic subset of this many (spread over the splits).
        split_seed: seed of the subset and of splits drawn when the data has none.
        fractions: train / valid / test fractions when splits are drawn.
        bad_labels: records with a missing or non-finite label: "error" (name the first)
            or "drop" (counted in the dataset's notes); see `attnlab.bio.data.read_csv`.
    Returns:
        A dataset with train, valid and test splits.
    Raises:
        DataError: no labels, labels of another task, or empty splits.
    """
    if task not in CLI_TASKS:
        raise ConfigError(f"unknown task {task!r}; choose one of: {', '.join(CLI_TASKS)}")
    dataset = data if isinstance(data, SequenceDataset) else load_dataset(data, bad_labels=bad_labels)
    name = dataset.name or str(data)
    if dataset.task is None:
        raise DataError(f"{name} has no labels; probing needs a label per sequence (or per residue)")
    if dataset.task not in CLI_TASKS[task]:
        right = [t for t, tasks in CLI_TASKS.items() if dataset.task in tasks]
        what = {"residue": "per-residue labels", "regression": "numeric labels", "multilabel": "multi-label sets"}.get(
            dataset.task, f"{dataset.task} class labels"
        )
        fix = (
            f"use --task {right[0]}"
            if right
            else "attnlab probe handles one class or number per sequence, or one class per residue"
        )
        raise DataError(f"--task {task} does not fit {name}: it has {what} (task {dataset.task}); {fix}")
    if len(dataset) < 10:
        raise DataError(f"{name} has {len(dataset)} sequences; probing needs at least 10 (train, valid and test)")
    if len(set(dataset.sequences)) < len(dataset):  # copies would leak from train into test
        dataset, _ = deduplicate(dataset, conflicts="drop")
    if max_sequences is not None and max_sequences < len(dataset):
        dataset = _subset(dataset, max_sequences, split_seed)
    present = set(dataset.splits or [])
    if present >= {"train", "valid", "test"}:
        return dataset
    if present == {"train", "test"}:  # carve the validation split out of train
        train_idx = [i for i, s in enumerate(dataset.splits) if s == "train"]
        groups = [dataset.labels[i] for i in train_idx] if dataset.task in CLASSIFICATION_TASKS else None
        parts = split_indices(len(train_idx), (0.9, 0.1, 0.0), seed=split_seed, groups=groups)
        splits = list(dataset.splits)
        for j in parts["valid"]:
            splits[train_idx[j]] = "valid"
        return dataset.with_splits(splits, note=f"validation split: 10% of train (seed {split_seed})")
    if present:
        logger.warning("%s has splits %s but not train/valid/test; drawing new splits", name, sorted(present))
    return assign_splits(dataset, fractions, seed=split_seed)


def _subset(dataset: SequenceDataset, n: int, seed: int) -> SequenceDataset:
    """A deterministic subset of n sequences; existing splits keep their shares (each at least 2)."""
    rng = np.random.default_rng(seed)
    if dataset.splits is None:
        groups = dataset.labels if dataset.task in CLASSIFICATION_TASKS else None
        frac = n / len(dataset)
        keep = split_indices(
            len(dataset), (frac, 1 - frac, 0.0) if frac < 1 else (1.0, 0.0, 0.0), seed=seed, groups=groups
        )["train"]
    else:
        keep_parts = []
        for split in SPLITS:
            idx = np.array([i for i, s in enumerate(dataset.splits) if s == split])
            if not len(idx):
                continue
            quota = min(len(idx), max(2, int(round(n * len(idx) / len(dataset)))))
            keep_parts.append(np.sort(rng.choice(idx, quota, replace=False)))
        keep = np.sort(np.concatenate(keep_parts))
    return dataset.subset(keep.tolist(), note=f"subset of {len(keep)} of {len(dataset)} sequences (seed {seed})")


def encode_splits(
    dataset: SequenceDataset,
) -> tuple[LabelEncoder, dict[str, SequenceDataset], dict[str, Any], dict[str, Any]]:
    """(label encoder fitted on all labels, split datasets, encoded labels, residue masks or None) per split."""
    encoder = LabelEncoder.fit(dataset.labels, dataset.task)
    parts = {s: dataset.split(s) for s in SPLITS}
    y = {s: encoder.transform(p.labels) for s, p in parts.items()}
    masks = {s: p.mask for s, p in parts.items()}
    return encoder, parts, y, masks


def class_names(encoder: LabelEncoder, dataset: SequenceDataset) -> list[str]:
    """Display names of the encoded classes (the data set's label names when it has them)."""
    names = dataset.label_names or {}
    return [str(names.get(c, c)) for c in encoder.classes]


# ----------------------------------------------------------------------------- embeddings and probes


def probe_kind(probe: str, pool: str, task: str) -> str:
    """The registered probe kind for a CLI probe name, pool and CLI task."""
    if probe not in CLI_PROBES:
        raise ConfigError(f"unknown probe {probe!r}; choose one of: {', '.join(CLI_PROBES)}")
    if probe == "transformer":
        return "transformer"
    if task != "residue-class" and pool == "attn":
        return "attention" if probe == "linear" else "attention-mlp"
    return probe


def input_pooling(probe: str, pool: str, task: str) -> str:
    """The pooling of the embeddings a probe reads ("none" = per residue)."""
    if task == "residue-class" or probe == "transformer" or pool == "attn":
        return "none"
    return embedding_pooling(pool)


def embed_splits(
    embedder: SequenceEmbedder,
    parts: dict[str, SequenceDataset],
    pooling: str,
    cache: EmbeddingCache | bool | None = True,
) -> tuple[dict[str, Any], float]:
    """Embeddings of every split (through the cache) and the seconds it took."""
    start = time.perf_counter()
    out = {s: compute_embeddings(embedder, p.sequences, pooling, cache=cache) for s, p in parts.items()}
    return out, time.perf_counter() - start


def _check_embeddings(X: Any, part: SequenceDataset, pooling: str, split: str) -> None:
    """Per-residue embeddings must have one vector per residue (labels and masks line up)."""
    if pooling != "none":
        return
    for seq_id, seq, x in zip(part.ids, part.sequences, X):
        if len(x) != len(seq):
            raise DataError(f"{split} sequence {seq_id!r}: {len(x)} residue vectors for {len(seq)} residues")


# ----------------------------------------------------------------------------- the experiment


@writes_run("probe", folder="config.out")
def run_probe_experiment(
    config: ProbeRunConfig, *, embedder: SequenceEmbedder | None = None, dataset: SequenceDataset | None = None
) -> dict[str, Any]:
    """Run one probing experiment and write its report into `config.out`.

    Args:
        config: what to run.
        embedder: an embedder object to use instead of building one from `config.embedder`
            (the benchmark and notebook pass models they hold in memory).
        dataset: a loaded data set to use instead of reading `config.data`.
    Returns:
        The results dict (also OUT/results.json): config, data summary, embedder, per-seed
        metrics (`runs`), `summary` (mean / std per metric), timings and the files written.
    Raises:
        ConfigError, CheckpointError, DataError: bad options, models or data (one line each).
    """
    from attnlab.progress import progress_bar as tqdm  # one updating line in a notebook

    t0 = time.perf_counter()
    out = Path(config.out)
    if out.exists() and not out.is_dir():
        raise ConfigError(f"--out {str(out)!r} is a file; pass a folder")
    pool = config.pool_name
    data = prepare_dataset(
        dataset if dataset is not None else config.data,
        config.task,
        max_sequences=config.max_sequences,
        split_seed=config.split_seed,
        fractions=config.split_fractions,
        bad_labels=config.bad_labels,
    )
    kind = probe_kind(config.probe, pool, config.task)
    pooling = input_pooling(config.probe, pool, config.task)
    if embedder is None:
        embedder = make_embedder(
            config.embedder,
            layer=config.layer,
            batch_size=config.batch_size,
            device=config.device,
            random_like=config.random_like,
            random_seed=config.random_seed,
            long_sequences=config.long_sequences,
            progress=config.progress,
        )
    name = config.embedder
    if pooling == "none" and "none" not in embedder.poolings:
        reader = (
            "per-residue probes" if config.task == "residue-class" else f"the {config.probe} probe with pool {pool}"
        )
        raise ConfigError(
            f"{reader} need per-residue embeddings, which the {name} embedder does not provide; use onehot or a model"
        )
    if pool != "none" and config.probe != "transformer":
        check_pool(embedder, pool, name)
    if config.finetune and not hasattr(embedder, "model"):
        raise ConfigError(
            f"--finetune trains a language model with its head; the {name} embedder has no model to tune "
            "(use a checkpoint, a Hugging Face ESM-2 folder or random)"
        )
    if config.finetune and config.probe == "transformer":
        raise ConfigError("--finetune trains the encoder with a linear head; use --probe linear with --finetune")

    encoder, parts, y, masks = encode_splits(data)
    names = class_names(encoder, data) if data.task != "regression" else []
    task = data.task
    num_classes = encoder.num_classes if task != "regression" else None
    logger.info("%s", data.describe())
    cache: EmbeddingCache | bool = (
        EmbeddingCache(config.cache_dir) if (config.cache and config.cache_dir) else config.cache
    )

    probe_config = dataclasses.replace(
        config.probe_config,
        progress=config.progress,
        transformer_pool=pool
        if (config.probe == "transformer" and pool != "none")
        else config.probe_config.transformer_pool,
        device=config.device if config.device != "auto" else config.probe_config.device,
    )
    runs, details, X, embed_seconds = [], [], None, 0.0
    first_predictions = None
    if config.finetune:
        from attnlab.bio.finetune import finetune

        ft_config = dataclasses.replace(
            config.finetune_config,
            pool=pool if pool != "none" else "mean",
            progress=config.progress,
            device=config.device,
        )
        seeds = tqdm(
            range(config.seeds), desc="fine-tuning seeds", unit="seed", disable=not config.progress or config.seeds < 2
        )
        for seed in seeds:
            start = time.perf_counter()
            tuned = finetune(
                embedder,
                parts["train"].sequences,
                y["train"],
                parts["valid"].sequences,
                y["valid"],
                task,  # type: ignore[arg-type]
                seed,
                config=ft_config,
                num_classes=num_classes,
                train_mask=masks["train"],
                valid_mask=masks["valid"],
            )
            X_test = tuned.embed(parts["test"].sequences)
            metrics = tuned.probe.evaluate(X_test, y["test"], masks["test"])
            runs.append(metrics)
            details.append(
                {
                    "seed": seed,
                    "metrics": metrics,
                    "best_epoch": tuned.best_epoch,
                    "epochs": len(tuned.history),
                    "train_seconds": time.perf_counter() - start,
                }
            )
            if seed == 0:
                first_predictions = tuned.probe.predict(X_test)
                X = {"test": X_test}
            if config.save_probes:
                folder = out / "finetuned" / f"seed{seed}"
                tuned.save(folder)
                _write_probe_sidecars(folder, tuned.embedder, f"fine-tuned {name}", tuned.pooling, pool, encoder, names)
        probe_label = f"fine-tuned + {'linear' if kind == 'linear' else kind} head"
    else:
        from attnlab.bio.probes import fit_probe

        X, embed_seconds = embed_splits(embedder, parts, pooling, cache)
        for split in SPLITS:
            _check_embeddings(X[split], parts[split], pooling, split)
        seeds = tqdm(
            range(config.seeds),
            desc=f"{kind} probe seeds",
            unit="seed",
            disable=not config.progress or config.seeds < 2,
        )
        for seed in seeds:
            start = time.perf_counter()
            probe = fit_probe(
                kind,
                X["train"],
                y["train"],
                X["valid"],
                y["valid"],
                task,
                seed,
                config=probe_config,
                num_classes=num_classes,
                train_mask=masks["train"],
                valid_mask=masks["valid"],
            )
            metrics = probe.evaluate(X["test"], y["test"], masks["test"])
            runs.append(metrics)
            details.append(
                {
                    "seed": seed,
                    "metrics": metrics,
                    "best_epoch": probe.best_epoch,
                    "epochs": len(probe.history),
                    "train_seconds": time.perf_counter() - start,
                }
            )
            if seed == 0:
                first_predictions = probe.predict(X["test"])
            if config.save_probes:
                folder = out / "probes" / f"seed{seed}"
                probe.save(folder)
                _write_probe_sidecars(folder, embedder, name, pooling, pool, encoder, names)
        probe_label = kind
    summary = aggregate_over_seeds(runs)
    results: dict[str, Any] = {
        "config": _config_dict(config),
        "data": {**data.summary(), "split_sizes": {s: len(p) for s, p in parts.items()}},
        "task": task,
        "embedder": {
            "spec": name,
            "kind": embedder_kind(embedder),
            "identity": embedder.identity,
            "embedding_dim": embedder.embedding_dim,
            "description": getattr(embedder, "name", name),
        },
        "probe": {
            "name": config.probe,
            "kind": kind,
            "label": probe_label,
            "pool": pool,
            "input_pooling": pooling,
            "finetune": config.finetune,
            "config": dataclasses.asdict(probe_config),
        },
        "classes": names,
        "primary_metric": PRIMARY_METRIC.get(task, "accuracy"),
        "runs": details,
        "summary": {k: v.to_dict() for k, v in summary.items()},
        "summary_text": {k: v.format() for k, v in summary.items()},
        "timings": {
            "embed_seconds": round(embed_seconds, 3),
            "train_seconds": round(sum(d["train_seconds"] for d in details), 3),
        },
    }
    if isinstance(cache, EmbeddingCache):
        results["cache"] = {"hits": cache.hits, "misses": cache.misses, "root": str(cache.root)}
    files = write_report(
        results,
        out,
        X_test=(X or {}).get("test"),
        test=parts["test"],
        y_test=y["test"],
        predictions=first_predictions,
        pca_points=config.pca_points,
        seed=config.split_seed,
    )
    results["timings"]["total_seconds"] = round(time.perf_counter() - t0, 3)
    results["files"] = [str(f) for f in files]
    write_json_atomic(out / "results.json", _jsonable(results))
    return results


def _config_dict(config: ProbeRunConfig) -> dict[str, Any]:
    d = dataclasses.asdict(config)
    d["split_fractions"] = list(config.split_fractions)
    return d


def _jsonable(obj: Any) -> Any:
    """NaN -> None (strict JSON), tuples -> lists, NumPy scalars -> Python."""
    if isinstance(obj, dict):
        return {str(k): _jsonable(v) for k, v in obj.items()}
    if isinstance(obj, (list, tuple)):
        return [_jsonable(v) for v in obj]
    if isinstance(obj, (np.floating, float)):
        return None if not math.isfinite(float(obj)) else float(obj)
    if isinstance(obj, np.integer):
        return int(obj)
    return obj


def _write_probe_sidecars(
    folder: Path,
    embedder: SequenceEmbedder,
    spec: str,
    pooling: str,
    pool: str,
    encoder: LabelEncoder,
    names: list[str],
) -> None:
    """embedder.json, labels.json and the class names inside probe.json (what the app reads)."""
    write_json_atomic(
        folder / "embedder.json",
        {
            "identity": embedder.identity,
            "spec": spec,
            "kind": embedder_kind(embedder),
            "pooling": pooling,
            "pool": pool,
            "embedding_dim": embedder.embedding_dim,
        },
    )
    encoder.save(folder / "labels.json")
    if names:
        meta = json.loads((folder / "probe.json").read_text(encoding="utf-8"))
        meta["classes"] = names
        write_json_atomic(folder / "probe.json", meta)


# ----------------------------------------------------------------------------- the report


def metric_columns(summaries: Sequence[dict[str, Any]]) -> list[str]:
    """The metrics present, in a fixed reading order."""
    present = {m for s in summaries for m in s}
    return [m for m in METRIC_ORDER if m in present] + sorted(present - set(METRIC_ORDER))


def _fmt(entry: dict[str, Any] | None) -> str:
    if not entry or entry.get("mean") is None or not math.isfinite(entry["mean"]):
        return "n/a"
    return f"{entry['mean']:.3f} ± {entry['std']:.3f}"


def comparison_table(results: Sequence[dict[str, Any]], labels: Sequence[str] | None = None) -> str:
    """A markdown table with one row per experiment (embedder, probe, pool, then mean ± std of each metric).

    Args:
        results: dicts returned by `run_probe_experiment` (same task).
        labels: row names (default: the embedder spec).
    """
    metrics = metric_columns([r["summary"] for r in results])
    head = ["embedder", "probe", "pool", *metrics]
    lines = ["| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
    for i, r in enumerate(results):
        label = labels[i] if labels is not None else r["embedder"]["spec"]
        row = [label, r["probe"]["label"], r["probe"]["pool"], *(_fmt(r["summary"].get(m)) for m in metrics)]
        lines.append("| " + " | ".join(row) + " |")
    return "\n".join(lines)


def markdown_report(results: dict[str, Any]) -> str:
    """results.md: what was run, the metrics table (mean ± std over seeds), the per-seed values."""
    data, emb, probe = results["data"], results["embedder"], results["probe"]
    n = len(results["runs"])
    lines = [
        f"# Probe: {emb['spec']} on {data.get('name') or results['config']['data']} ({results['task']})",
        "",
        f"- data: {data['num_sequences']} sequences after de-duplication; splits "
        + ", ".join(f"{k} {v}" for k, v in data["split_sizes"].items()),
        *[f"- {note}" for note in data.get("notes", []) if "missing or non-finite label" in note],
        f"- embedder: {emb['description']} ({emb['embedding_dim']} dimensions)",
        f"- probe: {probe['label']}, pool {probe['pool']}; {n} seed{'s' if n != 1 else ''} (mean ± sample std)",
        f"- primary metric: {results['primary_metric']}",
        "",
        "## Test metrics",
        "",
        comparison_table([results]),
        "",
        "## Per seed",
        "",
    ]
    metrics = metric_columns([results["summary"]])
    lines += ["| seed | " + " | ".join(metrics) + " | best epoch | seconds |", "|" + "---|" * (len(metrics) + 3)]
    for run in results["runs"]:
        values = [
            f"{run['metrics'][m]:.4f}"
            if run["metrics"].get(m) is not None and math.isfinite(run["metrics"][m])
            else "n/a"
            for m in metrics
        ]
        lines.append(
            f"| {run['seed']} | " + " | ".join(values) + f" | {run['best_epoch']} | {run['train_seconds']:.1f} |"
        )
    return "\n".join(lines) + "\n"


def write_report(
    results: dict[str, Any],
    out: Path,
    *,
    X_test: Any,
    test: SequenceDataset,
    y_test: Any,
    predictions: Any,
    pca_points: int = 2000,
    seed: int = 0,
) -> list[Path]:
    """Write results.md, confusion_matrix.png (class tasks) and pca.png; returns the files (results.json is written by the caller)."""
    from attnlab.bio.figures import plot_confusion, plot_pca

    out.mkdir(parents=True, exist_ok=True)
    files = [out / "results.json"]
    write_text_atomic(out / "results.md", markdown_report(results))
    files.append(out / "results.md")
    task, names = results["task"], results["classes"]
    title = f"{results['embedder']['spec']} · {results['probe']['label']}"
    if task in ("binary", "multiclass", "residue") and predictions is not None:
        mask = test.mask if task == "residue" else None
        truth = flatten_residues(y_test, mask) if task == "residue" else np.asarray(y_test)
        guess = flatten_residues(predictions, mask) if task == "residue" else np.asarray(predictions)
        matrix, _ = confusion_matrix(truth, guess, labels=list(range(len(names))))
        files.append(plot_confusion(matrix, names, out / "confusion_matrix.png", title=f"Test split, seed 0: {title}"))
    if X_test is not None and len(test) >= 3:
        points, colours, what = _pca_points(X_test, y_test, test, task, pca_points, seed)
        if len(points) >= 3:
            files.append(
                plot_pca(
                    points,
                    colours,
                    out / "pca.png",
                    class_names=names or None,
                    regression=task == "regression",
                    title=f"PCA of test {what}: {results['embedder']['spec']}",
                )
            )
    return files


def _pca_points(
    X: Any, y: Any, test: SequenceDataset, task: str, limit: int, seed: int
) -> tuple[np.ndarray, np.ndarray, str]:
    """The vectors and labels to project: sequences (pooled; per-residue ones mean-pooled), or residues."""
    rng = np.random.default_rng(seed)
    if task == "residue":
        mask = test.mask
        vectors = np.concatenate([x if mask is None else x[m] for x, m in zip(X, mask or [None] * len(X))])
        labels = flatten_residues(y, mask)
        what = "residues"
    else:
        vectors = np.stack([x.mean(axis=0) for x in X]) if isinstance(X, list) else np.asarray(X)
        labels = np.asarray(y)
        what = "sequences (mean of residue vectors)" if isinstance(X, list) else "sequences"
        if task == "multilabel":
            labels = labels.argmax(axis=1)
    if len(vectors) > limit:
        keep = np.sort(rng.choice(len(vectors), limit, replace=False))
        vectors, labels = vectors[keep], labels[keep]
    return vectors, labels, what


__all__ = [
    "CLI_POOLS",
    "CLI_PROBES",
    "CLI_TASKS",
    "ProbeRunConfig",
    "class_names",
    "comparison_table",
    "embed_splits",
    "encode_splits",
    "input_pooling",
    "markdown_report",
    "metric_columns",
    "prepare_dataset",
    "probe_kind",
    "run_probe_experiment",
    "write_report",
]

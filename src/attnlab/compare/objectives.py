"""Pretraining objectives side by side: causal LM, masked LM and span corruption.

`attnlab compare objectives` as a library call. Three models of (nearly) the same size
are pretrained on the same text, with one shared character vocabulary, for the same
token budget, each with its own objective:

  * clm:  a GPT (`attnlab.models.gpt`) predicts the next character (Radford et al. 2018);
  * mlm:  a bidirectional encoder (`attnlab.models.encoder`) predicts the 15% of characters
          chosen by BERT's 80/10/10 rule (`attnlab.train.mlm.mask_tokens`; Devlin et al. 2019);
  * span: an encoder-decoder (`attnlab.models.seq2seq`) restores T5's corrupted spans
          (`attnlab.data.span_corruption`: 15% noise, mean span length 3; Raffel et al. 2020).

Every model is pre-norm with rotary positions, GELU feed-forwards, no dropout, tied
embeddings, heads of 16 channels. The GPT and the encoder have `num_layers` blocks; the
encoder-decoder splits its blocks between encoder and decoder, the split whose parameter
count is closest to the GPT's (a decoder block, with cross-attention, is a third larger
than an encoder block). The counts are in runs.csv and the report.

The token budget counts *corpus tokens read*: every pretraining run takes steps x batch
windows of `seq_len` characters from the training text, the same windows for all three
objectives (the GPT reads the window and is scored on it shifted by one; the encoder reads
it with 15% masked; the encoder-decoder's encoder reads it with the spans replaced by
sentinels and its decoder reads the sentinels and spans). `input_positions` in runs.csv
counts the positions each model actually computes (for span: encoder + decoder).

Downstream: `attnlab.data.labelled_text.load_doc_topics(unit="sentence")`, sentences of
CPython's documentation labelled by the topic they come from. The pretraining text is
the embedded corpus with every paragraph that contains a test sentence removed (see
`pretraining_text`), so no test passage is ever read in pretraining. For each objective
and seed, on the features mean-pooled over the final hidden states (GPT: its causal states;
encoder-decoder: the encoder's states):

  * probe:    logistic regression on the frozen, standardised features; the inverse
              regularisation C is chosen from PROBE_C on a validation slice of the training
              sentences (VALIDATION_SHARE, drawn with the seed), then refit on all of them;
  * finetune: a linear head on the pooled features, all weights trained with AdamW for
              `finetune_steps` steps (300 of 16 passages; its own run folder, resumable);
  * random:   the same architecture randomly initialised, probed the same way (the
              no-pretraining baseline).

The seed fixes pretraining (initialisation, batches, masks) and the probe's validation
slice and the fine-tune. The study folder gets:

    runs/pretrain-OBJ-seedS/   a pretraining run (checkpoint, metrics.jsonl, results.json)
    runs/finetune-OBJ-seedS/   its fine-tune (checkpoint, metrics.jsonl, results.json)
    runs.csv                   one row an (objective, seed, evaluation): accuracy, params, tokens, ...
    summary.csv                per objective and evaluation: mean and std over seeds
    results.json, report.md    the same, with the chance accuracy and the settings
    objectives.png             bar chart: accuracy per objective and evaluation, +-1 std
"""

from __future__ import annotations

import json
import logging
import math
import shutil
import time
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from attnlab import limits
from attnlab.compare._common import check_device
from attnlab.config import to_dict
from attnlab.errors import ConfigError, DataError

logger = logging.getLogger(__name__)

OBJECTIVES = ("clm", "mlm", "span")
OBJECTIVE_NAMES = {
    "clm": "causal LM (GPT)",
    "mlm": "masked LM (BERT 15%, 80/10/10)",
    "span": "span corruption (T5 encoder-decoder)",
}
# corpus characters read by each pretraining run: 122 steps of 32 windows of 128 characters, about half a
# minute a run on 2 CPU cores, so the default study (9 pretrainings, 9 fine-tunes) takes about 10 minutes
# (benchmarks/bench_objectives.py)
DEFAULT_TOKENS = 500_000
QUICK_TOKENS = 9_216  # 24 steps of 8 windows of 48
HEAD_DIM = 16
PROBE_C = (0.01, 0.1, 1.0, 10.0)  # inverse L2 strength of the logistic-regression probe, chosen on validation
VALIDATION_SHARE = 0.2  # share of the training sentences that choose the probe's C (and watch the fine-tune)
MAX_PARAM_MISMATCH = 0.10  # the models' parameter counts should agree within this share of the GPT's
RUNS_DIR = "runs"
RUN_FILE = "objective_run.json"  # the study's own record in a run folder: settings and wall seconds
SPECIALS = ("[PAD]", "[UNK]", "[MASK]", "<bos>", "<eos>")
PAD, UNK, MASK, BOS, EOS = range(len(SPECIALS))


@dataclass(frozen=True)
class ObjectivesConfig:
    """Settings of the objectives study (the flags of `attnlab compare objectives`)."""

    objectives: tuple[str, ...] = OBJECTIVES  # which of clm, mlm, span
    seeds: tuple[int, ...] = (0, 1, 2)  # pretraining + probe + fine-tune seed of each repeat
    tokens: int | None = None  # corpus tokens each pretraining reads; None = 500k (quick: 9,216)
    quick: bool = False  # tiny models, a short budget, a short fine-tune: a smoke test in seconds
    num_layers: int | None = None  # blocks of the GPT and the encoder; None = 4 (quick: 2)
    embed_dim: int | None = None  # model width; None = 64 (quick: 32)
    seq_len: int | None = None  # pretraining window and downstream crop, characters; None = 128 (quick: 48)
    batch_size: int | None = None  # sequences a step; None = 32 (quick: 8)
    lr: float = 2e-3  # peak AdamW learning rate of pretraining (warmup, cosine to lr / 10)
    finetune_steps: int | None = None  # fine-tune steps; None = 300 (quick: 16)
    finetune_batch_size: int | None = None  # passages a fine-tune step; None = 16 (quick: 8)
    # peak AdamW learning rate of the fine-tune: of 5e-4, 1e-3 and 2e-3, the best on the validation slice
    # (the GPT, seed 0, default study); 5e-4 left the head under-trained after 300 steps
    finetune_lr: float = 2e-3
    num_classes: int = 8  # topics of the downstream task
    device: str = "auto"  # auto, cpu, cuda, cuda:N or mps
    progress: bool = True  # progress bars
    figures: bool = True  # write objectives.png

    def __post_init__(self) -> None:
        objectives = tuple(self.objectives)
        if not objectives:
            raise ConfigError(f"give at least one objective of {', '.join(OBJECTIVES)}")
        unknown = [o for o in objectives if o not in OBJECTIVES]
        if unknown:
            raise ConfigError(f"unknown objective {unknown[0]!r}; choose from {', '.join(OBJECTIVES)}")
        if len(set(objectives)) != len(objectives):
            raise ConfigError(f"objectives are given twice: {', '.join(objectives)}")
        object.__setattr__(self, "objectives", objectives)
        seeds = tuple(self.seeds)
        if not seeds:
            raise ConfigError("give at least one seed")
        if len(seeds) > 64:
            raise ConfigError(f"give at most 64 seeds, got {len(seeds)}")
        if len(set(seeds)) != len(seeds):
            raise ConfigError(f"seeds are given twice: {', '.join(map(str, seeds))}")
        for s in seeds:
            limits.check_seed(s, "a seed")
        object.__setattr__(self, "seeds", seeds)
        if self.tokens is not None:
            limits.check_int(self.tokens, "the token budget", 1, 10**12)
        if self.num_layers is not None:
            limits.check_int(self.num_layers, "num_layers", 2, 64, hint="the encoder-decoder needs 2 blocks or more")
        if self.embed_dim is not None:
            limits.check_int(self.embed_dim, "embed_dim", HEAD_DIM, 4096)
            if self.embed_dim % HEAD_DIM:
                raise ConfigError(f"embed_dim must be a multiple of {HEAD_DIM} (heads of 16), got {self.embed_dim}")
        if self.seq_len is not None:
            limits.check_int(self.seq_len, "seq_len", 8, 4096)
        if self.batch_size is not None:
            limits.check_int(self.batch_size, "batch_size", 1, limits.MAX_BATCH_SIZE)
        if self.finetune_steps is not None:
            limits.check_int(self.finetune_steps, "finetune_steps", 1, limits.MAX_ITERS)
        if self.finetune_batch_size is not None:
            limits.check_int(self.finetune_batch_size, "finetune_batch_size", 1, limits.MAX_BATCH_SIZE)
        limits.check_float(self.lr, "lr", 0.0, limits.MAX_LR, low_open=True)
        limits.check_float(self.finetune_lr, "finetune_lr", 0.0, limits.MAX_LR, low_open=True)
        limits.check_int(self.num_classes, "num_classes", 2, 20)

    # the settings in force, defaults resolved
    @property
    def budget(self) -> int:
        return self.tokens or (QUICK_TOKENS if self.quick else DEFAULT_TOKENS)

    @property
    def layers(self) -> int:
        return self.num_layers or (2 if self.quick else 4)

    @property
    def width(self) -> int:
        return self.embed_dim or (32 if self.quick else 64)

    @property
    def context(self) -> int:
        return self.seq_len or (48 if self.quick else 128)

    @property
    def batch(self) -> int:
        return self.batch_size or (8 if self.quick else 32)

    @property
    def steps(self) -> int:
        return max(1, round(self.budget / (self.batch * self.context)))

    @property
    def ft_steps(self) -> int:
        return self.finetune_steps or (16 if self.quick else 300)

    @property
    def ft_batch(self) -> int:
        return self.finetune_batch_size or (8 if self.quick else 16)


# ---------------------------------------------------------------------------
# Data: the pretraining text without the test passages, the shared vocabulary
# ---------------------------------------------------------------------------


def pretraining_text(task: Any) -> tuple[str, int]:
    """The embedded corpus without any paragraph that contains a test passage of `task`.

    The corpus (`attnlab.data.text.load_text()`) is cut into paragraphs at blank lines; a
    paragraph is dropped when its text, with its line breaks joined by single spaces (as
    `load_doc_topics` joins them), contains a test passage. So the returned text, read the
    same way, contains no test passage (the test in tests/compare/test_objectives.py checks).

    Returns:
        (the text, the number of paragraphs dropped).
    """
    from attnlab.data.text import load_text

    blocks = _paragraphs(load_text().text)
    flat = [_flat(b) for b in blocks]
    joined = "\n".join(flat)  # "\n" never occurs in a passage: a hit lies inside one paragraph
    starts = np.cumsum([0] + [len(f) + 1 for f in flat])
    drop: set[int] = set()
    for passage in set(task.test_texts):
        at = joined.find(passage)
        while at != -1:
            drop.add(int(np.searchsorted(starts, at, side="right") - 1))
            at = joined.find(passage, at + 1)
    kept = [b for i, b in enumerate(blocks) if i not in drop]
    return "\n\n".join(kept), len(drop)


def _paragraphs(text: str) -> list[str]:
    import re

    return re.split(r"\n\s*\n", text)


def _flat(block: str) -> str:
    return " ".join(line.strip() for line in block.strip().splitlines())


def flat_paragraphs(text: str) -> str:
    """`text` read as `load_doc_topics` reads it: each paragraph on one line, its lines joined by spaces."""
    return "\n".join(_flat(b) for b in _paragraphs(text))


def normalise_whitespace(text: str) -> str:
    """Every run of whitespace as one space (how a passage reads in the corpus)."""
    return " ".join(text.split())


@dataclass(frozen=True)
class Vocabulary:
    """One character vocabulary for every model: the specials, T5 sentinels, then the corpus's characters."""

    tokens: tuple[str, ...]
    num_sentinels: int

    @classmethod
    def build(cls, text: str, num_sentinels: int) -> Vocabulary:
        sentinels = tuple(f"<extra_id_{i}>" for i in range(num_sentinels))
        return cls(SPECIALS + sentinels + tuple(sorted(set(text))), num_sentinels)

    @property
    def size(self) -> int:
        return len(self.tokens)

    @property
    def sentinel_ids(self) -> tuple[int, ...]:
        return tuple(range(len(SPECIALS), len(SPECIALS) + self.num_sentinels))

    @property
    def char_ids(self) -> np.ndarray:
        return np.arange(len(SPECIALS) + self.num_sentinels, self.size)

    def encode(self, text: str) -> np.ndarray:
        index = {t: i for i, t in enumerate(self.tokens) if i >= len(SPECIALS) + self.num_sentinels}
        return np.fromiter((index.get(ch, UNK) for ch in text), dtype=np.int64, count=len(text))


def encode_passages(vocab: Vocabulary, texts: Sequence[str], length: int) -> tuple[np.ndarray, np.ndarray]:
    """(ids (N, T), attention mask (N, T)): each passage cropped to `length` characters, right-padded."""
    ids = np.full((len(texts), length), PAD, dtype=np.int64)
    mask = np.zeros((len(texts), length), dtype=np.int64)
    for i, text in enumerate(texts):
        row = vocab.encode(text[:length])
        ids[i, : len(row)] = row
        mask[i, : len(row)] = 1
    return ids, mask


class PretrainData:
    """Batches of one objective from the same windows of the training text (a `BatchSource`).

    The first 90% of the text trains, the last 10% validates (as `attnlab.data.text.LMData`).
    """

    def __init__(self, objective: str, ids: np.ndarray, vocab: Vocabulary, seq_len: int):
        self.objective, self.vocab, self.seq_len = objective, vocab, seq_len
        cut = int(0.9 * len(ids))
        self.parts = {"train": ids[:cut], "val": ids[cut:]}
        for split, part in self.parts.items():
            if len(part) < seq_len + 2:
                raise DataError(f"the {split} text has {len(part)} characters, fewer than a window of {seq_len + 1}")

    def _windows(self, split: str, batch_size: int, rng: np.random.Generator) -> np.ndarray:
        part = self.parts[split]
        starts = rng.integers(0, len(part) - self.seq_len - 1, size=batch_size)
        return np.stack([part[s : s + self.seq_len + 1] for s in starts])  # (B, T + 1)

    def _batch(self, windows: np.ndarray, rng: np.random.Generator) -> dict[str, np.ndarray]:
        from attnlab.data.span_corruption import corrupt_batch
        from attnlab.train.mlm import mask_tokens

        if self.objective == "clm":
            return {"input_ids": windows[:, :-1], "targets": windows[:, 1:]}
        x = windows[:, :-1]  # (B, T): the same characters the GPT reads
        if self.objective == "mlm":
            masked, labels = mask_tokens(x, rng, mask_id=MASK, special_ids=(PAD,), random_ids=self.vocab.char_ids)
            return {"input_ids": masked, "labels": labels}
        inputs, targets = corrupt_batch(x, rng, self.vocab.sentinel_ids, eos_id=EOS)
        return {"input_ids": inputs, "labels": targets}

    def train_batch(self, batch_size: int, rng: np.random.Generator) -> dict[str, np.ndarray]:
        return self._batch(self._windows("train", batch_size, rng), rng)

    def eval_batches(
        self, batch_size: int, num_batches: int, split: str = "val", seed: int = 0
    ) -> list[dict[str, np.ndarray]]:
        rng = np.random.default_rng((seed, 7919))
        return [self._batch(self._windows(split, batch_size, rng), rng) for _ in range(num_batches)]


def input_positions(objective: str, seq_len: int) -> int:
    """Positions a model computes for one window (span: encoder input + decoder input)."""
    from attnlab.data.span_corruption import span_counts

    if objective != "span":
        return seq_len
    noise, spans = span_counts(seq_len)
    return (seq_len - noise + spans + 1) + (noise + spans + 1)


# ---------------------------------------------------------------------------
# Models
# ---------------------------------------------------------------------------


def model_config(
    objective: str, config: ObjectivesConfig, vocab_size: int, split: tuple[int, int] | None = None
) -> Any:
    """The model config of an objective (the encoder-decoder's split chosen by `seq2seq_split`)."""
    from attnlab.data.span_corruption import span_counts

    c, heads, t = config.width, config.width // HEAD_DIM, config.context
    shared = dict(vocab_size=vocab_size, num_heads=heads, embed_dim=c, dropout=0.0, positional="rotary")
    if objective == "clm":
        from attnlab.models.gpt_config import GPTConfig

        return GPTConfig.from_name("baby", num_layers=config.layers, max_seq_len=t, **shared)
    if objective == "mlm":
        from attnlab.models.encoder import EncoderConfig

        return EncoderConfig(
            num_layers=config.layers,
            max_seq_len=t,
            norm_first=True,
            embed_norm=False,
            final_norm=True,
            layer_norm_eps=1e-5,
            pad_token_id=PAD,
            mask_token_id=MASK,
            head="mlm",
            **shared,
        )
    from attnlab.models.seq2seq import Seq2SeqConfig

    encoder_layers, decoder_layers = split or seq2seq_split(config, vocab_size)
    noise, spans = span_counts(t)
    return Seq2SeqConfig(
        num_encoder_layers=encoder_layers,
        num_decoder_layers=decoder_layers,
        max_source_len=t + 1,
        max_target_len=noise + spans + 1,
        pad_id=PAD,
        bos_id=BOS,
        eos_id=EOS,
        **shared,
    )


def build_model(model_cfg: Any) -> Any:
    """The registered model a config builds."""
    from attnlab.models.registry import model_class, model_type_for_config

    return model_class(model_type_for_config(model_cfg))(model_cfg)


def count_parameters(model_cfg: Any) -> int:
    """Parameters of the model a config builds (tied weights once), built on the meta device."""
    import torch

    with torch.device("meta"):
        module = build_model(model_cfg)
    return sum(p.numel() for p in module.parameters())


def seq2seq_split(config: ObjectivesConfig, vocab_size: int) -> tuple[int, int]:
    """(encoder, decoder) blocks for the encoder-decoder, matched to the GPT's parameter count.

    Of the splits within MAX_PARAM_MISMATCH of the GPT's count, the one with the most encoder
    blocks (the probes read the encoder), then the closest; if none is that close, the closest.
    """
    target = count_parameters(model_config("clm", config, vocab_size))
    candidates = []
    for total in range(2, config.layers + 2):
        for decoder in range(1, total):
            split = (total - decoder, decoder)
            gap = abs(count_parameters(model_config("span", config, vocab_size, split)) - target) / target
            candidates.append((gap, split))
    close = [c for c in candidates if c[0] <= MAX_PARAM_MISMATCH]
    if close:
        return min(close, key=lambda c: (-c[1][0], c[0]))[1]
    return min(candidates, key=lambda c: (c[0], -c[1][0]))[1]


def build(model_cfg: Any, seed: int) -> Any:
    import torch

    torch.manual_seed(seed)
    return build_model(model_cfg)


def pooled_features(model: Any, objective: str, input_ids: Any, attention_mask: Any) -> Any:
    """(B, C) mean over the real positions of the final hidden states (span: the encoder's)."""
    from attnlab.models.encoder import pool_hidden

    if objective == "clm":
        hidden = model(input_ids, attention_mask=attention_mask, output_hidden_states=True).hidden_states[-1]
    elif objective == "mlm":
        hidden = model(input_ids, attention_mask=attention_mask, output_hidden_states=True).extras["last_hidden_state"]
    else:
        hidden = model.encode(input_ids, attention_mask).last_hidden_state
    return pool_hidden(hidden, attention_mask, "mean")


def extract_features(model: Any, objective: str, ids: np.ndarray, mask: np.ndarray, device: str) -> np.ndarray:
    """Frozen pooled features of every passage, (N, C) float64."""
    import torch

    model = model.to(device).eval()
    out = []
    with torch.no_grad():
        for i in range(0, len(ids), 256):
            x = torch.from_numpy(ids[i : i + 256]).to(device)
            m = torch.from_numpy(mask[i : i + 256]).to(device)
            out.append(pooled_features(model, objective, x, m).float().cpu().numpy())
    return np.concatenate(out).astype(np.float64)


# ---------------------------------------------------------------------------
# The probe and the fine-tune
# ---------------------------------------------------------------------------


def validation_split(n: int, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """(fit indices, validation indices) of the training passages, drawn with `seed`."""
    order = np.random.default_rng((seed, 31)).permutation(n)
    n_val = max(1, round(VALIDATION_SHARE * n))
    return np.sort(order[n_val:]), np.sort(order[:n_val])


def linear_probe(
    train_x: np.ndarray, train_y: np.ndarray, test_x: np.ndarray, test_y: np.ndarray, seed: int
) -> dict[str, Any]:
    """Logistic regression on standardised features; C chosen on a validation slice, then refit on all."""
    from sklearn.linear_model import LogisticRegression
    from sklearn.preprocessing import StandardScaler

    def fit(x: np.ndarray, y: np.ndarray, c: float) -> Any:
        scaler = StandardScaler().fit(x)
        clf = LogisticRegression(C=c, max_iter=1000, random_state=seed).fit(scaler.transform(x), y)
        return lambda z: clf.predict(scaler.transform(z))

    fit_idx, val_idx = validation_split(len(train_y), seed)
    scores = {}
    for c in PROBE_C:
        predict = fit(train_x[fit_idx], train_y[fit_idx], c)
        scores[c] = float(np.mean(predict(train_x[val_idx]) == train_y[val_idx]))
    best = max(PROBE_C, key=lambda c: (scores[c], -c))  # ties: the stronger regularisation
    predict = fit(train_x, train_y, best)
    return {"accuracy": float(np.mean(predict(test_x) == test_y)), "probe_C": best, "val_accuracy": scores[best]}


def _classifier_class() -> Any:
    """PooledClassifier, defined on first use (so importing this module does not import torch)."""
    import torch
    from torch import nn

    from attnlab.models.outputs import ModelOutput

    class PooledClassifier(nn.Module):
        """A pretrained backbone, its final states mean-pooled, then a linear head."""

        model_type = "pooled-classifier"

        def __init__(self, backbone: nn.Module, objective: str, num_labels: int):
            super().__init__()
            self.backbone, self.objective = backbone, objective
            self.head = nn.Linear(backbone.config.embed_dim, num_labels)

        def forward(self, input_ids: Any, attention_mask: Any, targets: Any = None) -> Any:
            logits = self.head(pooled_features(self.backbone, self.objective, input_ids, attention_mask))
            loss = torch.nn.functional.cross_entropy(logits, targets) if targets is not None else None
            return ModelOutput(logits=logits, loss=loss)

    return PooledClassifier


class PassageData:
    """Fine-tune batches: random training passages; evaluation on the validation slice."""

    def __init__(self, ids: np.ndarray, mask: np.ndarray, labels: np.ndarray, fit_idx: np.ndarray, val_idx: np.ndarray):
        self.ids, self.mask, self.labels = ids, mask, labels
        self.fit_idx, self.val_idx = fit_idx, val_idx

    def _rows(self, rows: np.ndarray) -> dict[str, np.ndarray]:
        width = max(1, int(self.mask[rows].sum(axis=1).max()))  # crop the common padding
        return {
            "input_ids": self.ids[rows, :width],
            "attention_mask": self.mask[rows, :width],
            "targets": self.labels[rows],
        }

    def train_batch(self, batch_size: int, rng: np.random.Generator) -> dict[str, np.ndarray]:
        return self._rows(rng.choice(self.fit_idx, size=batch_size, replace=len(self.fit_idx) < batch_size))

    def eval_batches(
        self, batch_size: int, num_batches: int, split: str = "val", seed: int = 0
    ) -> list[dict[str, np.ndarray]]:
        chunks = [self.val_idx[i : i + batch_size] for i in range(0, len(self.val_idx), batch_size)]
        return [self._rows(c) for c in chunks[:num_batches]]


def predict(module: Any, ids: np.ndarray, mask: np.ndarray, device: str) -> np.ndarray:
    import torch

    module.eval()
    out = []
    with torch.no_grad():
        for i in range(0, len(ids), 256):
            x, m = torch.from_numpy(ids[i : i + 256]).to(device), torch.from_numpy(mask[i : i + 256]).to(device)
            out.append(module(x, m).logits.argmax(-1).cpu().numpy())
    return np.concatenate(out)


# ---------------------------------------------------------------------------
# Run folders
# ---------------------------------------------------------------------------


def _read_record(folder: Path) -> dict[str, Any]:
    try:
        data = json.loads((folder / RUN_FILE).read_text(encoding="utf-8"))
        return data if isinstance(data, dict) else {}
    except (OSError, ValueError):
        return {}


def _finished(folder: Path, steps: int) -> dict[str, Any] | None:
    from attnlab import checkpoint as ckpt
    from attnlab.train.trainer import RESULTS_FILE

    try:
        results = json.loads((folder / RESULTS_FILE).read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None
    if not isinstance(results, dict) or results.get("stopped_early") is not None or results.get("step") != steps:
        return None
    return results if ckpt.is_checkpoint(folder) else None


def _claim(folder: Path, settings: dict[str, Any], force: bool) -> None:
    """Refuse a run folder trained with other settings (with force: empty it and start again)."""
    saved = _read_record(folder).get("settings")
    if saved is None or saved == settings:
        return
    differ = [f"{k} {saved.get(k)!r} (now {settings.get(k)!r})" for k in sorted(set(saved) | set(settings))]
    differ = [d for d, k in zip(differ, sorted(set(saved) | set(settings))) if saved.get(k) != settings.get(k)]
    if not force:
        raise ConfigError(
            f"{str(folder)!r} holds a run trained with other settings ({'; '.join(differ[:4])}); "
            "run the study with its old settings, choose another --out, or pass --force to train it again"
        )
    logger.warning("%s: settings changed (%s); --force: training it again", folder, "; ".join(differ[:4]))
    shutil.rmtree(folder)


def _train(
    folder: Path,
    module: Any,
    data: Any,
    train: Any,
    settings: dict[str, Any],
    description: str,
    engine_class: Any = None,
    resume_weights: Any = None,
) -> tuple[dict[str, Any], str]:
    """Train `module` in `folder` unless finished; resume from its checkpoint when interrupted."""
    from attnlab import checkpoint as ckpt
    from attnlab.runs import open_run
    from attnlab.train.engine import TorchEngine
    from attnlab.train.trainer import Trainer
    from attnlab.utils import write_json_atomic

    with open_run(folder, command=description):
        results = _finished(folder, train.max_iters)
        if results is not None:
            return results, "skipped (finished before)"
        resume = ckpt.is_checkpoint(folder) and ckpt.has_training_state(folder)
        if resume:
            resume_weights(module, folder)
        record = {**_read_record(folder), "settings": settings}
        write_json_atomic(folder / RUN_FILE, record)
        engine = (engine_class or TorchEngine)(
            module,
            lr=train.lr,
            weight_decay=train.weight_decay,
            grad_clip=train.grad_clip,
            device=train.device,
            precision="auto",
            distributed=False,
        )
        hook = (lambda: {"val_accuracy": engine.last_accuracy}) if hasattr(engine, "last_accuracy") else None
        trainer = Trainer(
            engine, data, train, folder, description=description, run_info={"settings": settings}, eval_hook=hook
        )
        start = time.perf_counter()
        try:
            results = trainer.fit(resume=resume)
        finally:
            record["wall_seconds"] = float(record.get("wall_seconds", 0.0)) + time.perf_counter() - start
            write_json_atomic(folder / RUN_FILE, record)
    return results, "resumed" if resume else "trained"


def _load_registered(module: Any, folder: Path) -> None:
    from attnlab.models.registry import load_model

    saved, _ = load_model(folder)
    module.load_state_dict(saved.state_dict())
    module.train()


def _load_classifier(module: Any, folder: Path) -> None:
    import torch

    from attnlab import checkpoint as ckpt
    from attnlab.errors import CheckpointError

    tensors = ckpt.read_model(folder, load_tokenizer=False).tensors
    result = module.load_state_dict({k: torch.from_numpy(v.copy()) for k, v in tensors.items()}, strict=False)
    untied = [k for k in result.missing_keys if not k.endswith(("lm_head.weight", "mlm_head.decoder.weight"))]
    if untied or result.unexpected_keys:
        raise CheckpointError(
            f"{str(folder)!r} does not hold this fine-tune's weights (missing {untied[:3]}, unexpected "
            f"{result.unexpected_keys[:3]}); delete that run folder or pass --force"
        )
    module.train()


def _classifier_engine() -> Any:
    from attnlab.compare._common import _ClassifierEngine
    from attnlab.train.engine import TorchEngine

    def save_model(self: Any, folder: Path, tokenizer: Any, metadata: dict[str, Any]) -> None:
        from attnlab import checkpoint as ckpt

        module = self.module
        tensors = {k: v.detach().cpu().float() for k, v in module.state_dict().items()}
        tied = [k for k in tensors if k.endswith("lm_head.weight") or k.endswith("mlm_head.decoder.weight")]
        for k in tied:  # tied to the token embedding: stored once
            tensors.pop(k)
        config = {"backbone": module.backbone.model_type, "objective": module.objective}
        config["backbone_config"] = to_dict(module.backbone.config)
        ckpt.save_model(folder, model_type="pooled-classifier", config=config, tensors=tensors, metadata=metadata)

    return type("FinetuneEngine", (_ClassifierEngine, TorchEngine), {"save_model": save_model})


def _pretrain_config(config: ObjectivesConfig, seed: int, device: str) -> Any:
    from attnlab.train.trainer import TrainConfig

    steps = config.steps
    return TrainConfig(
        batch_size=config.batch,
        max_iters=steps,
        lr=config.lr,
        min_lr=config.lr / 10,
        warmup_iters=min(steps - 1, max(1, round(0.05 * steps))) if steps > 1 else 0,
        eval_interval=max(1, math.ceil(steps / 4)),
        eval_iters=4 if config.quick else 8,
        log_interval=max(1, steps // 50),
        seed=seed,
        device=device,
        progress=config.progress,
    )


def _finetune_config(config: ObjectivesConfig, seed: int, device: str, val_batches: int) -> Any:
    from attnlab.train.trainer import TrainConfig

    steps = config.ft_steps
    return TrainConfig(
        batch_size=config.ft_batch,
        max_iters=steps,
        lr=config.finetune_lr,
        min_lr=config.finetune_lr / 10,
        warmup_iters=min(steps - 1, max(1, round(0.1 * steps))) if steps > 1 else 0,
        weight_decay=0.01,
        eval_interval=max(1, math.ceil(steps / 2)),
        eval_iters=max(1, val_batches),
        log_interval=max(1, steps // 20),
        seed=seed,
        device=device,
        progress=config.progress,
    )


# ---------------------------------------------------------------------------
# The study
# ---------------------------------------------------------------------------


def _mean_std(values: Sequence[float]) -> tuple[float, float]:
    a = np.asarray(values, dtype=float)
    return float(a.mean()), float(a.std(ddof=1)) if len(a) > 1 else 0.0


def summarise(rows: Sequence[dict[str, Any]]) -> list[dict[str, Any]]:
    """summary.csv: per objective and evaluation, accuracy mean and std over seeds."""
    out = []
    for objective in dict.fromkeys(r["objective"] for r in rows):
        for evaluation in ("random-probe", "probe", "finetune"):
            picked = [r for r in rows if r["objective"] == objective and r["evaluation"] == evaluation]
            if not picked:
                continue
            mean, std = _mean_std([r["accuracy"] for r in picked])
            out.append(
                {
                    "objective": objective,
                    "evaluation": evaluation,
                    "accuracy_mean": round(mean, 5),
                    "accuracy_std": round(std, 5),
                    "seeds": len(picked),
                    "params": picked[0]["params"],
                    "model": picked[0]["model"],
                }
            )
    return out


def format_report(summary: Sequence[dict[str, Any]], info: dict[str, Any]) -> str:
    """The study as markdown: accuracy per objective (mean ± std over seeds), sizes, chance."""
    lines = [
        "| objective | model | params | pretrain val loss | random-init probe | linear probe | fine-tune |",
        "|---|---|---:|---:|---:|---:|---:|",
    ]
    for objective in dict.fromkeys(s["objective"] for s in summary):
        cells = {s["evaluation"]: s for s in summary if s["objective"] == objective}
        first = next(iter(cells.values()))

        def cell(name: str, cells: dict[str, dict[str, Any]] = cells) -> str:
            s = cells.get(name)
            return f"{s['accuracy_mean']:.3f} ± {s['accuracy_std']:.3f}" if s else "-"

        loss = info["pretrain_loss"].get(objective)
        lines.append(
            f"| {objective} | {first['model']} | {first['params']:,} | {loss:.3f} | "
            f"{cell('random-probe')} | {cell('probe')} | {cell('finetune')} |"
        )
    lines += [
        "",
        f"Chance (the test set's most common class): {info['chance_accuracy']:.3f}. "
        f"{info['task']}; {info['test_passages']:,} test passages.",
        "",
        f"Each pretraining read {info['tokens']:,} corpus characters ({info['steps']:,} steps of "
        f"{info['batch_size']} windows of {info['seq_len']}); mean ± std over seeds {info['seeds']}. "
        f"Pretraining text: the embedded corpus without the {info['dropped_paragraphs']} paragraphs that contain "
        f"a test passage ({info['pretrain_chars']:,} characters). Each pretraining loss is its own objective's "
        "(the next character; the masked characters; the dropped spans): not comparable between objectives.",
    ]
    for note in info.get("notes", []):
        lines += ["", note]
    return "\n".join(lines) + "\n"


def write_figure(out_dir: Path, summary: Sequence[dict[str, Any]], chance: float) -> Path:
    """objectives.png: a bar per objective and evaluation, error bars +-1 std over seeds."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    from attnlab.utils import atomic_path

    objectives = list(dict.fromkeys(s["objective"] for s in summary))
    evaluations = [("random-probe", "random init, probe"), ("probe", "linear probe"), ("finetune", "fine-tune")]
    fig, ax = plt.subplots(figsize=(7, 4))
    width = 0.8 / len(evaluations)
    for j, (name, label) in enumerate(evaluations):
        cells = [
            next((s for s in summary if s["objective"] == o and s["evaluation"] == name), None) for o in objectives
        ]
        xs = [i + (j - 1) * width for i, c in enumerate(cells) if c]
        ax.bar(
            xs,
            [c["accuracy_mean"] for c in cells if c],
            width,
            yerr=[c["accuracy_std"] for c in cells if c],
            capsize=3,
            label=label,
        )
    ax.axhline(chance, color="grey", linestyle="--", linewidth=1, label=f"chance {chance:.2f}")
    ax.set_xticks(range(len(objectives)), [OBJECTIVE_NAMES[o] for o in objectives], fontsize=8)
    ax.set_ylabel("test accuracy")
    ax.set_ylim(0, 1)
    ax.set_title("Pretraining objectives: downstream accuracy (mean ± std over seeds)")
    ax.legend(fontsize=8)
    fig.tight_layout()
    path = out_dir / "objectives.png"
    with atomic_path(path) as tmp:
        fig.savefig(tmp, dpi=120, format="png")
    plt.close(fig)
    return path


def compare_objectives(
    out_dir: str | Path, config: ObjectivesConfig | None = None, *, force: bool = False
) -> dict[str, Any]:
    """Pretrain every objective with every seed, probe and fine-tune each, write the tables and the figure.

    Args:
        out_dir: the study folder (claimed with `open_run`).
        config: the settings (default: the default study).
        force: write into a folder of files attnlab did not write, and train again run folders
            whose settings differ (instead of refusing them).
    Returns:
        {"out_dir", "rows" (runs.csv), "summary" (summary.csv), "report", "files", "seconds", "info"}.
    Raises:
        ConfigError: bad settings or device, or a run folder of other settings (without force).
        TrainingInterrupted: Ctrl-C; finished runs and the interrupted run's checkpoint are kept.
    """
    from attnlab.data.labelled_text import load_doc_topics
    from attnlab.data.span_corruption import span_counts
    from attnlab.runs import open_run, write_tidy_csv
    from attnlab.utils import write_json_atomic, write_text_atomic

    config = config or ObjectivesConfig()
    started = time.perf_counter()
    device = check_device(config.device)
    out_dir = Path(out_dir)
    task = load_doc_topics(num_classes=config.num_classes, unit="sentence")
    text, dropped = pretraining_text(task)
    vocab = Vocabulary.build(text, num_sentinels=span_counts(config.context)[1])
    ids = vocab.encode(text)
    train_ids, train_mask = encode_passages(vocab, task.train_texts, config.context)
    test_ids, test_mask = encode_passages(vocab, task.test_texts, config.context)
    configs = {o: model_config(o, config, vocab.size) for o in config.objectives}
    params = {o: count_parameters(c) for o, c in configs.items()}
    notes = []
    reference = params.get("clm", max(params.values()))
    for o, n in params.items():
        if abs(n - reference) > MAX_PARAM_MISMATCH * reference:
            notes.append(
                f"Note: {o} has {n:,} parameters, {n / reference - 1:+.0%} from the GPT's {reference:,} "
                f"(more than {MAX_PARAM_MISMATCH:.0%}: choose other --layers / widths to match them)."
            )
            logger.warning(notes[-1])
    info_run = {"command": "compare objectives", "objectives": to_dict(config)}
    rows: list[dict[str, Any]] = []
    losses: dict[str, list[float]] = {}
    with open_run(out_dir, command="compare objectives", force=force, info=info_run):
        for objective in config.objectives:
            model_cfg = configs[objective]
            model_name = type(model_cfg).__name__.removesuffix("Config")
            if objective == "span":
                model_name += f" {model_cfg.num_encoder_layers}+{model_cfg.num_decoder_layers}"
            else:
                model_name += f" {model_cfg.num_layers}"
            model_name += f"x{config.width}"
            for seed in config.seeds:
                base = {
                    "objective": objective,
                    "model": model_name,
                    "seed": seed,
                    "params": params[objective],
                    "tokens": config.steps * config.batch * config.context,
                    "input_positions": config.steps * config.batch * input_positions(objective, config.context),
                }
                # the no-pretraining baseline: the same architecture, randomly initialised
                random_model = build(model_cfg, seed)
                probe = linear_probe(
                    extract_features(random_model, objective, train_ids, train_mask, device),
                    task.train_labels,
                    extract_features(random_model, objective, test_ids, test_mask, device),
                    task.test_labels,
                    seed,
                )
                rows.append({**base, "evaluation": "random-probe", **probe, "status": "computed"})
                # pretraining
                folder = out_dir / RUNS_DIR / f"pretrain-{objective}-seed{seed}"
                settings = {
                    "model": to_dict(model_cfg),
                    "train": to_dict(_pretrain_config(config, seed, "cpu")),
                    "pretrain_chars": len(text),
                }
                settings["train"].pop("device")
                settings["train"].pop("progress")
                _claim(folder, settings, force)
                logger.info("objectives: pretraining %s seed %d (%d steps)", objective, seed, config.steps)
                model = build(model_cfg, seed)
                data = PretrainData(objective, ids, vocab, config.context)
                results, status = _train(
                    folder,
                    model,
                    data,
                    _pretrain_config(config, seed, device),
                    settings,
                    f"pretrain {objective}",
                    resume_weights=_load_registered,
                )
                from attnlab.models.registry import load_model

                model, _ = load_model(folder)  # the finished weights, also when skipped
                losses.setdefault(objective, []).append(float(results["val_loss"]))
                pre = {"pretrain_val_loss": results["val_loss"], "pretrain_seconds": results.get("train_seconds")}
                probe = linear_probe(
                    extract_features(model, objective, train_ids, train_mask, device),
                    task.train_labels,
                    extract_features(model, objective, test_ids, test_mask, device),
                    task.test_labels,
                    seed,
                )
                rows.append({**base, "evaluation": "probe", **probe, **pre, "status": status})
                # the fine-tune, from the pretrained weights
                fit_idx, val_idx = validation_split(len(task.train_labels), seed)
                passages = PassageData(train_ids, train_mask, task.train_labels, fit_idx, val_idx)
                ft_train = _finetune_config(config, seed, device, math.ceil(len(val_idx) / config.ft_batch))
                classifier = _classifier_class()(model, objective, task.num_classes)
                import torch

                torch.manual_seed(seed)
                classifier.head.reset_parameters()
                ft_folder = out_dir / RUNS_DIR / f"finetune-{objective}-seed{seed}"
                ft_settings = {**settings, "finetune": to_dict(ft_train), "task": task.source}
                ft_settings["finetune"].pop("device")
                ft_settings["finetune"].pop("progress")
                _claim(ft_folder, ft_settings, force)
                ft_results, ft_status = _train(
                    ft_folder,
                    classifier,
                    passages,
                    ft_train,
                    ft_settings,
                    f"finetune {objective}",
                    engine_class=_classifier_engine(),
                    resume_weights=_load_classifier,
                )
                _load_classifier(classifier, ft_folder)
                classifier.to(device)
                accuracy = float(np.mean(predict(classifier, test_ids, test_mask, device) == task.test_labels))
                rows.append(
                    {
                        **base,
                        "evaluation": "finetune",
                        "accuracy": accuracy,
                        "val_accuracy": ft_results.get("val_accuracy"),  # on the validation slice, at the last step
                        **pre,
                        "finetune_seconds": ft_results.get("train_seconds"),
                        "status": ft_status,
                    }
                )
                logger.info(
                    "objectives: %s seed %d: probe %.3f, fine-tune %.3f (%s)",
                    objective,
                    seed,
                    rows[-2]["accuracy"],
                    accuracy,
                    status,
                )
                write_tidy_csv(out_dir / "runs.csv", rows, "one (objective, seed, evaluation) of the study a row")
        summary = summarise(rows)
        files = [out_dir / "runs.csv"]
        write_tidy_csv(out_dir / "summary.csv", summary, "one (objective, evaluation) a row: mean and std over seeds")
        files.append(out_dir / "summary.csv")
        info = {
            "objectives": list(config.objectives),
            "seeds": list(config.seeds),
            "tokens": config.steps * config.batch * config.context,
            "steps": config.steps,
            "batch_size": config.batch,
            "seq_len": config.context,
            "params": params,
            "vocab_size": vocab.size,
            "task": task.source,
            "num_classes": task.num_classes,
            "train_passages": len(task.train_texts),
            "test_passages": len(task.test_texts),
            "chance_accuracy": task.chance_accuracy,
            "dropped_paragraphs": dropped,
            "pretrain_chars": len(text),
            "pretrain_text": "the embedded corpus without every paragraph that contains a test passage",
            "pretrain_loss": {o: float(np.mean(v)) for o, v in losses.items()},
            "device": device,
            "notes": notes,
        }
        report = format_report(summary, info)
        write_text_atomic(out_dir / "report.md", "# Pretraining objectives side by side\n\n" + report)
        files.append(out_dir / "report.md")
        if config.figures:
            files.append(write_figure(out_dir, summary, task.chance_accuracy))
        seconds = time.perf_counter() - started
        write_json_atomic(
            out_dir / "results.json",
            {**info, "summary": summary, "seconds": round(seconds, 1), "files": [f.name for f in files]},
        )
        files.append(out_dir / "results.json")
    return {
        "out_dir": str(out_dir),
        "rows": rows,
        "summary": summary,
        "report": report,
        "files": [str(f) for f in files],
        "seconds": seconds,
        "info": info,
    }


__all__ = [
    "OBJECTIVES",
    "ObjectivesConfig",
    "PretrainData",
    "Vocabulary",
    "compare_objectives",
    "count_parameters",
    "format_report",
    "linear_probe",
    "model_config",
    "pretraining_text",
    "seq2seq_split",
    "summarise",
]

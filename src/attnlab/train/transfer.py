"""The transfer study: pretrain a GPT on one corpus, fine-tune it on another, against training from scratch.

`attnlab transfer` as a library call. One GPT size is pretrained on a source corpus (the
embedded corpus by default), then fine-tuned on the first S characters of a target corpus
for several target-data sizes S; a model of the same size and the same number of steps is
trained from scratch on the same S characters. Both are evaluated on one fixed validation
set of the target (the last 10% of the target text: the same windows for every run, size
and seed), many times a run, so the study gives validation loss against fine-tuning steps
for both at every size and seed, and the *transfer gain* (scratch loss - fine-tuned loss)
against S: the classic picture in which pretraining helps most when target data is scarce
(Hernandez et al. 2021, "Scaling Laws for Transfer"; Howard & Ruder 2018).

Both corpora share one vocabulary: the scaling study's character tokenizer
(`attnlab.train.scale`: the char tokenizer of `attnlab train`), built here on the
characters of *both* texts, so the pretrained model can read the target and the scratch
model has the same embedding table. Models and schedules are the scaling study's
(`model_config`, `train_config`: the `baby` GPT's choices at a size `LxC`, rotary
positions, AdamW with a warmup and a cosine to a tenth of the peak at the end of each run).

Every run is an ordinary, resumable run folder (skipped when finished, resumed when
interrupted; a folder trained with other settings is refused unless `force`, which sets it
aside as NAME.replaced and trains it again). The study folder gets:

    runs/pretrain-seedS/                the pretrained model (one a seed)
    runs/finetune-SIZE-seedS/           fine-tuned from runs/pretrain-seedS
    runs/scratch-SIZE-seedS/            the same model trained from scratch
    runs.csv                            one row a run: first, best and final validation loss, steps, times
    curves.csv                          one row a (run, evaluation): step, tokens, validation loss
    gains.csv                           one row a target size: best and final losses of both, the gain and
                                        its spread over seeds
    report.md, results.json             the tables, the trend of the gain with target size, the settings
    transfer_curves.png                 validation loss vs fine-tuning steps, one panel a target size
    transfer_gain.png                   best loss vs target size for both, and the gain with its seed spread

The default target is tiny Shakespeare when it is already in attnlab's cache (or a file
given with `target`), otherwise `licenses`: the license texts that the installed
dependencies ship (PyTorch, NumPy, SciPy, Matplotlib, ...; `license_text`), legal English
prose, a register far from the Python documentation of the embedded corpus, available
offline on every install.
"""

from __future__ import annotations

import hashlib
import json
import logging
import math
import os
import re
import time
from collections import defaultdict
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from attnlab import limits
from attnlab.config import to_dict
from attnlab.data.text import LMData
from attnlab.errors import ConfigError, DataError
from attnlab.runs import open_run, read_marker, write_tidy_csv
from attnlab.train.scale import (
    GridPoint,
    ModelSize,
    ScaleConfig,
    _finished,
    model_config,
    non_embedding_parameters,
    parse_size,
    parse_tokens,
    token_label,
    train_config,
)

logger = logging.getLogger(__name__)

# The default study (benchmarks/bench_transfer.py: about 9 minutes on 2 CPU cores): a 2x48 GPT
# (55k non-embedding parameters) pretrained on 2M characters of the embedded corpus (about 5
# passes), then 500 steps of 32 x 64 characters (1M) on 5k to 320k characters of the target.
DEFAULT_SIZE = "2x48"
DEFAULT_TARGET_SIZES = (5_000, 20_000, 80_000, 320_000)
DEFAULT_SEEDS = (0, 1)
DEFAULT_PRETRAIN_TOKENS = 2_000_000
DEFAULT_FINETUNE_STEPS = 500
# --quick: a tiny model, short runs and a short context; seconds.
QUICK_SIZE = "1x32"
QUICK_TARGET_SIZES = (1_000, 4_000)
QUICK_SEEDS = (0,)
QUICK_PRETRAIN_TOKENS = 8_000
QUICK_FINETUNE_STEPS = 24
VAL_FRACTION = 0.1  # the target's validation set: the last 10% of its text, shared by every run
LICENSES = "licenses"  # the built-in second text (`license_text`)
MAX_SIZES = 64
RUNS_DIR = "runs"
POINT_FILE = "transfer_point.json"  # the study's own record in a run folder (wall seconds over all sessions)
# The dependencies whose shipped license files make up the `licenses` text (those that are installed).
LICENSE_DISTRIBUTIONS = ("torch", "numpy", "scipy", "matplotlib", "tokenizers", "safetensors", "tqdm", "pyyaml")
_LICENSE_NAME = re.compile(r"(licen[cs]e|copying|notice|authors)", re.IGNORECASE)
MIN_LICENSE_CHARS = 2_000
# Settings that may change between sessions without making a finished run another run.
_FREE_TRAIN_FIELDS = ("device", "progress", "precision")
KINDS = ("finetune", "scratch")


# ---------------------------------------------------------------------------
# Settings
# ---------------------------------------------------------------------------


def parse_target_size(text: str) -> int:
    """A target-data size in characters: a whole number, optionally with k or M (`5k`, `1.5M`, `20000`).

    Raises:
        ConfigError: not such a number, or zero.
    """
    try:
        return parse_tokens(text)
    except ConfigError:
        shown = text if len(str(text)) <= 40 else str(text)[:37] + "..."
        raise ConfigError(
            f"a target size is a whole number of characters of at least 1, such as 5k, 80k or 20000; got {shown!r}"
        ) from None


@dataclass(frozen=True)
class TransferConfig:
    """Settings of the transfer study (the flags of `attnlab transfer`)."""

    source: str | None = None  # corpus name or text file to pretrain on; None = the embedded corpus
    target: str | None = None  # corpus name, text file or "licenses"; None = shakespeare if cached, else licenses
    target_sizes: tuple[int, ...] | None = None  # characters of target training text; None = the defaults that fit
    seeds: tuple[int, ...] | None = None  # one pretraining, fine-tuning and scratch run a seed; None = 0,1 (quick: 0)
    size: str | None = None  # the GPT size LxC of every run; None = 2x48 (quick: 1x32)
    pretrain_tokens: int | None = None  # pretraining characters; None = 2M (quick: 8k)
    finetune_steps: int | None = None  # optimizer steps of every fine-tuning and scratch run; None = 500 (quick: 24)
    quick: bool = False  # the tiny study: a small model, a short context, small batches; seconds
    seq_len: int | None = None  # context length; None = 64 (quick: 32)
    batch_size: int | None = None  # sequences per step; None = 32 (quick: 8)
    lr: float = 3e-3  # peak learning rate of pretraining and of the scratch runs (the scaling study's)
    finetune_lr: float = 1e-3  # peak learning rate of fine-tuning (lower: the pretrained weights are a good start)
    warmup_fraction: float = 0.05  # linear warmup over this share of each run's steps
    eval_iters: int | None = None  # validation batches of every evaluation; None = 16 (quick: 4)
    evaluations: int | None = None  # evaluations (and checkpoints) a target run, for the curves; None = 20 (quick: 4)
    device: str = "auto"  # auto, cpu, cuda, cuda:N or mps
    progress: bool = True  # a progress bar for every run
    figures: bool = True  # write the two figures

    def __post_init__(self) -> None:
        for name, most in (("target_sizes", MAX_SIZES), ("seeds", MAX_SIZES)):
            value = getattr(self, name)
            if value is None:
                continue
            value = tuple(value)
            if not value:
                raise ConfigError(f"give at least one of {name.replace('_', ' ')}")
            if len(value) > most:
                raise ConfigError(f"give at most {most} {name.replace('_', ' ')}, got {len(value)}")
            if len(set(value)) != len(value):
                raise ConfigError(f"{name.replace('_', ' ')} are given twice: {', '.join(map(str, value))}")
            object.__setattr__(self, name, value)
        for s in self.target_sizes or ():
            limits.check_int(s, "a target size (characters)", 1, 10**12)
        for s in self.seeds or ():
            limits.check_seed(s, "a seed")
        if self.size is not None:
            object.__setattr__(
                self, "size", (self.size if isinstance(self.size, ModelSize) else parse_size(self.size)).name
            )
        if self.pretrain_tokens is not None:
            limits.check_int(self.pretrain_tokens, "pretrain_tokens", 1, 10**15)
        if self.finetune_steps is not None:
            limits.check_int(self.finetune_steps, "finetune_steps", 1, limits.MAX_ITERS)
        if self.seq_len is not None:
            limits.check_int(self.seq_len, "seq_len", 2, 65_536)
        if self.batch_size is not None:
            limits.check_int(self.batch_size, "batch_size", 1, limits.MAX_BATCH_SIZE)
        if self.eval_iters is not None:
            limits.check_int(self.eval_iters, "eval_iters", 1, limits.MAX_EVAL_ITERS)
        if self.evaluations is not None:
            limits.check_int(self.evaluations, "evaluations", 1, 1_000)
        limits.check_float(self.lr, "lr", 0.0, limits.MAX_LR, low_open=True)
        limits.check_float(self.finetune_lr, "finetune_lr", 0.0, limits.MAX_LR, low_open=True)
        limits.check_float(self.warmup_fraction, "warmup_fraction", 0.0, 1.0, high_open=True)

    # the settings in force, defaults resolved
    @property
    def model_size(self) -> ModelSize:
        return parse_size(self.size or (QUICK_SIZE if self.quick else DEFAULT_SIZE))

    @property
    def run_seeds(self) -> tuple[int, ...]:
        return tuple(self.seeds or (QUICK_SEEDS if self.quick else DEFAULT_SEEDS))

    @property
    def context(self) -> int:
        return self.seq_len or (32 if self.quick else 64)

    @property
    def batch(self) -> int:
        return self.batch_size or (8 if self.quick else 32)

    @property
    def eval_batches(self) -> int:
        return self.eval_iters or (4 if self.quick else 16)

    @property
    def curve_points(self) -> int:
        return self.evaluations or (4 if self.quick else 20)

    @property
    def pretrain_budget(self) -> int:
        return self.pretrain_tokens or (QUICK_PRETRAIN_TOKENS if self.quick else DEFAULT_PRETRAIN_TOKENS)

    @property
    def steps(self) -> int:
        return self.finetune_steps or (QUICK_FINETUNE_STEPS if self.quick else DEFAULT_FINETUNE_STEPS)

    @property
    def pretrain_steps(self) -> int:
        per_step = self.batch * self.context
        steps = round(self.pretrain_budget / per_step)
        if steps < 1:
            raise ConfigError(
                f"--pretrain-tokens {self.pretrain_budget:,} is less than one optimizer step of {per_step:,} "
                f"characters ({self.batch} sequences of {self.context}); give at least {per_step:,}"
            )
        return limits.check_int(steps, "the pretraining steps", 1, limits.MAX_ITERS)

    def scale_config(self, lr: float, evaluations: int) -> ScaleConfig:
        """The scaling study's settings object that `model_config`/`train_config` read."""
        return ScaleConfig(
            sizes=(self.model_size.name,),
            seeds=self.run_seeds,
            quick=self.quick,
            seq_len=self.context,
            batch_size=self.batch,
            lr=lr,
            warmup_fraction=self.warmup_fraction,
            eval_iters=self.eval_batches,
            checkpoints=evaluations,
            device=self.device,
            progress=self.progress,
            figures=False,
        )


# ---------------------------------------------------------------------------
# The texts and their shared vocabulary
# ---------------------------------------------------------------------------


def license_text() -> str:
    """The license texts that the installed dependencies ship, as one text of legal English prose.

    The files named LICENSE, COPYING, NOTICE or AUTHORS in the metadata of the installed
    distributions of `LICENSE_DISTRIBUTIONS` (read with `importlib.metadata`, so nothing is
    downloaded), split into paragraphs; a paragraph that occurs more than once (the many
    copies of the BSD and MIT licenses) is kept once, and the paragraphs are put in the order
    of their SHA-256, a fixed shuffle, so that the validation set (the text's end) is drawn
    from the same mix of licenses as the training text. The text depends on the installed
    versions; the study records its SHA-256.

    Raises:
        DataError: fewer than MIN_LICENSE_CHARS characters of license text are installed.
    """
    import importlib.metadata as metadata

    paragraphs: dict[str, str] = {}
    for name in LICENSE_DISTRIBUTIONS:
        try:
            files = metadata.distribution(name).files or []
        except metadata.PackageNotFoundError:
            continue
        for f in files:
            if ".dist-info" not in str(f) or not _LICENSE_NAME.search(f.name):
                continue
            try:
                text = f.read_text(encoding="utf-8")
            except (OSError, UnicodeDecodeError, ValueError):
                continue
            for p in re.split(r"\n\s*\n", (text or "").replace("\r\n", "\n")):
                p = p.strip("\n").rstrip()
                if p.strip():
                    paragraphs.setdefault(" ".join(p.split()), p)
    ordered = sorted(paragraphs.items(), key=lambda kv: hashlib.sha256(kv[0].encode("utf-8")).hexdigest())
    text = "\n\n".join(p for _, p in ordered) + "\n"
    if len(text) < MIN_LICENSE_CHARS:
        raise DataError(
            f"the installed packages ship only {len(text):,} characters of license text (at least "
            f"{MIN_LICENSE_CHARS:,} are needed); give a target text with --target FILE"
        )
    return text


@dataclass(frozen=True)
class Texts:
    """The two texts of a study, their shared tokenizer and the target's fixed split."""

    source_name: str
    source_origin: str
    source_ids: np.ndarray  # (N_source,) token ids of the whole source text
    source_sha256: str
    target_name: str
    target_origin: str
    target_ids: np.ndarray  # (N_target,) token ids of the whole target text
    target_sha256: str
    tokenizer: Any  # the character tokenizer of both texts
    vocabulary_sha256: str

    @property
    def val_chars(self) -> int:
        return len(self.target_ids) - self.pool_chars

    @property
    def pool_chars(self) -> int:
        """Characters of target training text available (the first 90%)."""
        return int(len(self.target_ids) * (1.0 - VAL_FRACTION))

    def target_train(self, chars: int) -> np.ndarray:
        return self.target_ids[:chars]

    def target_val(self) -> np.ndarray:
        return self.target_ids[self.pool_chars :]


def _sha256(text: str) -> str:
    return hashlib.sha256(text.encode("utf-8", "surrogatepass")).hexdigest()


def default_target() -> str:
    """`shakespeare` when tiny Shakespeare is already in attnlab's cache, else `licenses` (never downloads)."""
    from attnlab.data.text import CORPORA
    from attnlab.utils import cache_dir

    corpus = CORPORA["shakespeare"]
    return "shakespeare" if (cache_dir() / "corpora" / str(corpus.filename)).is_file() else LICENSES


def load_target(name: str | None) -> Any:
    """The target text: a corpus name, a file, `licenses` (`license_text`) or None (`default_target`).

    Returns:
        An `attnlab.data.text.TextSource`.
    Raises:
        DataError / DownloadError: an unreadable file, an unknown name, a failed download.
    """
    from attnlab.data.text import TextSource, load_text

    name = default_target() if name is None else str(name)
    if name == LICENSES and not Path(name).exists():
        return TextSource(
            license_text(),
            LICENSES,
            "the license texts of the installed packages (" + ", ".join(LICENSE_DISTRIBUTIONS) + ")",
        )
    try:
        return load_text(name)
    except DataError as e:
        raise DataError(
            f"--target: {e}" + (f"; or use the built-in {LICENSES!r}" if "known corpus" in str(e) else "")
        ) from None


def _load_source(name: str | None) -> Any:
    from attnlab.data.text import load_text

    try:
        return load_text(name)
    except DataError as e:
        raise DataError(f"--source: {e}") from None


def load_texts(config: TransferConfig) -> Texts:
    """Load both texts, build their shared character vocabulary and encode them.

    Raises:
        DataError: a text cannot be read, or the target is too short to split.
    """
    from attnlab.tokenizers.char import CharTokenizer, distinct_chars
    from attnlab.train.recipes import encode_corpus

    source = _load_source(config.source)
    target = load_target(config.target)
    chars = sorted(set(distinct_chars(source.text)) | set(distinct_chars(target.text)))
    tokenizer = CharTokenizer(chars)
    texts = Texts(
        source_name=source.name,
        source_origin=source.origin,
        source_ids=encode_corpus(tokenizer, source.text, source.name),
        source_sha256=_sha256(source.text),
        target_name=target.name,
        target_origin=target.origin,
        target_ids=encode_corpus(tokenizer, target.text, target.name),
        target_sha256=_sha256(target.text),
        tokenizer=tokenizer,
        vocabulary_sha256=_sha256("".join(chars)),
    )
    need = config.context + 1
    if texts.val_chars < need or texts.pool_chars < need:
        raise DataError(
            f"the target text {target.name!r} has {len(texts.target_ids):,} characters: too short to hold out its "
            f"last {VAL_FRACTION:.0%} for validation and train on the rest with a context of {config.context} "
            f"(each part needs at least {need}); give a longer --target"
        )
    source_split = int(len(texts.source_ids) * (1.0 - VAL_FRACTION))
    if source_split < need or len(texts.source_ids) - source_split < need:
        raise DataError(
            f"the source text {source.name!r} has {len(texts.source_ids):,} characters: too short for a context of "
            f"{config.context} (its first 90% and last 10% each need at least {need}); give a longer --source"
        )
    return texts


def target_sizes(config: TransferConfig, texts: Texts) -> tuple[int, ...]:
    """The target sizes of the study, small to large, checked against the target text.

    Without `config.target_sizes`, the default sizes that fit the target's training text
    (all of it when none does).

    Raises:
        ConfigError: a size larger than the target's training text, or too small for one context window.
    """
    pool, need = texts.pool_chars, config.context + 1
    if config.target_sizes is None:
        defaults = QUICK_TARGET_SIZES if config.quick else DEFAULT_TARGET_SIZES
        sizes = tuple(s for s in defaults if need <= s <= pool) or (pool,)
        if len(sizes) < len(defaults):
            logger.info(
                "transfer: the target %s has %s training characters; target sizes %s",
                texts.target_name,
                f"{pool:,}",
                ", ".join(map(token_label, sizes)),
            )
        return sizes
    for s in config.target_sizes:
        if s > pool:
            raise ConfigError(
                f"target size {token_label(s)} ({s:,} characters) is more than the target {texts.target_name!r} holds "
                f"for training: {pool:,} characters (its first {1 - VAL_FRACTION:.0%}; the last "
                f"{VAL_FRACTION:.0%} is the validation set); give sizes up to {pool:,}"
            )
        if s < need:
            raise ConfigError(
                f"target size {s:,} is too small for a context of {config.context}: give at least {need} characters"
            )
    return tuple(sorted(config.target_sizes))


class _SplitData(LMData):
    """Given train and validation token ids, served as `LMData` serves them.

    Evaluation windows are drawn with one fixed seed whatever the run's seed, so every run
    of a study is evaluated on exactly the same validation windows.
    """

    def __init__(self, train_ids: np.ndarray, val_ids: np.ndarray, seq_len: int):
        self.seq_len = seq_len
        self.splits = {"train": train_ids, "val": val_ids}
        for name, part in self.splits.items():
            if len(part) < seq_len + 1:
                raise DataError(
                    f"the {name} text has {len(part)} characters; a context of {seq_len} needs {seq_len + 1}"
                )

    def eval_batches(
        self, batch_size: int, num_batches: int, split: str = "val", seed: int = 0
    ) -> list[dict[str, np.ndarray]]:
        return super().eval_batches(batch_size, num_batches, split, seed=0)


# ---------------------------------------------------------------------------
# The runs
# ---------------------------------------------------------------------------


@dataclass(frozen=True)
class TransferRun:
    """One run of the study."""

    kind: str  # pretrain, finetune or scratch
    seed: int
    steps: int
    target_chars: int | None = None  # None for the pretraining

    @property
    def name(self) -> str:
        if self.kind == "pretrain":
            return f"pretrain-seed{self.seed}"
        return f"{self.kind}-{token_label(int(self.target_chars or 0))}-seed{self.seed}"


def plan_runs(config: TransferConfig, sizes: Sequence[int]) -> list[TransferRun]:
    """Every run, in training order: a seed's pretraining, then its fine-tuning and scratch runs, small to large."""
    runs = []
    for seed in config.run_seeds:
        runs.append(TransferRun("pretrain", seed, config.pretrain_steps))
        for chars in sorted(sizes):
            for kind in KINDS:
                runs.append(TransferRun(kind, seed, config.steps, chars))
    return runs


def _configs(run: TransferRun, config: TransferConfig, device: str, vocab_size: int) -> tuple[Any, Any]:
    """(model config, train config) of a run: the scaling study's, at this study's settings."""
    if run.kind == "pretrain":
        scale = config.scale_config(config.lr, evaluations=4)
    else:
        scale = config.scale_config(config.finetune_lr if run.kind == "finetune" else config.lr, config.curve_points)
    point = GridPoint(config.model_size, run.steps * config.batch * config.context, run.seed, run.steps)
    return model_config(config.model_size, scale, vocab_size), train_config(point, scale, device)


def _flatten(prefix: str, value: Any, out: dict[str, Any]) -> dict[str, Any]:
    if isinstance(value, dict):
        for k, v in value.items():
            _flatten(f"{prefix}.{k}" if prefix else str(k), v, out)
    else:
        out[prefix] = value
    return out


def _settings(run: TransferRun, model: Any, train: Any, texts: Texts, init: dict[str, Any] | None) -> dict[str, Any]:
    """What makes a run this run (compared with a finished run's, key by key)."""
    if run.kind == "pretrain":
        data = {"text": "source", "name": texts.source_name, "sha256": texts.source_sha256}
    else:
        data = {
            "text": "target",
            "name": texts.target_name,
            "sha256": texts.target_sha256,
            "train_chars": run.target_chars,
            "val_chars": texts.val_chars,
        }
    return {
        "kind": run.kind,
        "model": to_dict(model),
        "train": {k: v for k, v in to_dict(train).items() if k not in _FREE_TRAIN_FIELDS},
        "data": data,
        "vocabulary_sha256": texts.vocabulary_sha256,
        "init": init,
    }


def _settings_differ(folder: Path, want: dict[str, Any]) -> list[str]:
    """What the run in `folder` was trained with that differs from `want` (empty: agrees or never trained)."""
    from attnlab import checkpoint as ckpt

    marker = read_marker(folder) or {}
    saved = marker.get("transfer")
    if not isinstance(saved, dict):
        if ckpt.is_checkpoint(folder):
            return ["it is not a run of a transfer study"]
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
    logger.warning(
        "transfer: %s was trained with other settings; kept it as %s and training it again", folder, dest.name
    )
    return dest


def _read_point(folder: Path) -> dict[str, Any]:
    try:
        data = json.loads((folder / POINT_FILE).read_text(encoding="utf-8"))
        return data if isinstance(data, dict) else {}
    except (OSError, ValueError):
        return {}


def _fit(
    folder: Path,
    *,
    model: Any,
    train: Any,
    data: LMData,
    tokenizer: Any,
    init_from: Path | None,
    resume: bool,
    run_info: dict[str, Any],
    description: str,
) -> dict[str, Any]:
    """Train (or resume) one run with the Trainer of `attnlab train`, optionally from pretrained weights."""
    from attnlab.train.recipes import make_engine
    from attnlab.train.trainer import Trainer

    engine = make_engine("torch", model, train, init_from=folder if resume else init_from)
    trainer = Trainer(
        engine,
        data,
        train,
        folder,
        tokenizer=tokenizer,
        metadata={"data_source": run_info["data"]["source"], "tokenizer_kind": "char"},
        run_info=run_info,
        description=description,
    )
    try:
        return trainer.fit(resume=resume)
    finally:
        close = getattr(engine, "close", None)
        if close is not None:
            close()


def run_one(
    folder: str | Path,
    run: TransferRun,
    config: TransferConfig,
    texts: Texts,
    device: str,
    *,
    pretrained: str | Path | None = None,
    force: bool = False,
) -> dict[str, Any]:
    """Train one run in `folder` (skipped when finished, resumed when interrupted).

    Args:
        folder: the run folder.
        run: which run.
        config, texts, device: the study's settings, texts and device.
        pretrained: the finished pretraining run a fine-tuning run starts from.
        force: set a folder trained with other settings aside (NAME.replaced) and train again.
    Returns:
        Its row of runs.csv.
    Raises:
        ConfigError: the folder holds a run trained with other settings (and not `force`).
    """
    from attnlab import checkpoint as ckpt
    from attnlab.utils import sha256_file, write_json_atomic

    folder = Path(folder)
    model, train = _configs(run, config, device, texts.tokenizer.vocab_size)
    init = None
    if run.kind == "finetune":
        if pretrained is None or _finished(Path(pretrained), config.pretrain_steps) is None:
            raise ConfigError(f"{run.name}: the pretrained model {str(pretrained)!r} is not finished; pretrain first")
        init = {"run": Path(pretrained).name, "weights_sha256": sha256_file(Path(pretrained) / ckpt.WEIGHTS_FILE)}
    settings = _settings(run, model, train, texts, init)
    if run.kind == "pretrain":
        data = _SplitData(
            texts.source_ids[: int(len(texts.source_ids) * (1.0 - VAL_FRACTION))],
            texts.source_ids[int(len(texts.source_ids) * (1.0 - VAL_FRACTION)) :],
            config.context,
        )
        source = texts.source_origin
    else:
        data = _SplitData(texts.target_train(int(run.target_chars or 0)), texts.target_val(), config.context)
        source = texts.target_origin
    status = "skipped (finished before)"
    differ = _settings_differ(folder, settings) if folder.is_dir() else []
    if differ:
        if not force:
            raise ConfigError(
                f"{str(folder)!r} holds a run trained with other settings ({'; '.join(differ[:4])}); run the study "
                "with its old settings, choose another --out, or pass --force to set that run aside and train it again"
            )
        _set_aside(folder)
        status = "trained (replaced a run of other settings)"
    results = _finished(folder, run.steps)
    if results is None:
        resume = ckpt.is_checkpoint(folder) and ckpt.has_training_state(folder)
        status = "resumed" if resume else status if status.startswith("trained") else "trained"
        run_info = {
            "command": "transfer",
            "engine": "torch",
            "data": {"source": source, "tokenizer": "char", "num_tokens": int(len(data.splits["train"]))},
            "model": to_dict(model),
            "train": to_dict(train),
            "transfer": settings,
        }
        with open_run(folder, command="transfer"):
            record = _read_point(folder)
            start = time.perf_counter()
            try:
                results = _fit(
                    folder,
                    model=model,
                    train=train,
                    data=data,
                    tokenizer=texts.tokenizer,
                    init_from=Path(pretrained) if pretrained is not None else None,
                    resume=resume,
                    run_info=run_info,
                    description=f"transfer {run.name}",
                )
            finally:  # an interrupted run keeps the time it took, for the next session to add to
                record["wall_seconds"] = float(record.get("wall_seconds", 0.0)) + time.perf_counter() - start
                record["sessions"] = int(record.get("sessions", 0)) + 1
                write_json_atomic(folder / POINT_FILE, record)
    curve = run_curve(folder)
    losses = [c["val_loss"] for c in curve]
    best = int(np.argmin(losses)) if losses else None
    return {
        "run": run.name,
        "kind": run.kind,
        "evaluated_on": "source" if run.kind == "pretrain" else "target",
        "target_chars": run.target_chars,
        "seed": run.seed,
        "size": config.model_size.name,
        "params": non_embedding_parameters(model),
        "total_params": results.get("num_parameters"),
        "steps": run.steps,
        "tokens": int(results.get("tokens_seen") or run.steps * config.batch * config.context),
        "epochs": round(run.steps * config.batch * config.context / run.target_chars, 2) if run.target_chars else None,
        "lr": train.lr,
        "first_val_loss": losses[0] if losses else None,
        "best_val_loss": losses[best] if best is not None else None,
        "best_step": curve[best]["step"] if best is not None else None,
        "val_loss": results["val_loss"],
        "train_loss": results.get("train_loss"),
        "train_seconds": results.get("train_seconds"),
        "wall_seconds": round(float(_read_point(folder).get("wall_seconds", math.nan)), 3),
        "device": results.get("device"),
        "status": status,
    }


def run_curve(folder: str | Path) -> list[dict[str, Any]]:
    """A run's evaluations from its metrics.jsonl: [{"step", "tokens", "val_loss"}], by step."""
    from attnlab.runs import read_metrics

    points: dict[int, dict[str, Any]] = {}
    for r in read_metrics(folder):
        if r.get("val_loss") is not None and math.isfinite(float(r["val_loss"])):
            points[int(r["step"])] = {
                "step": int(r["step"]),
                "tokens": int(r.get("tokens") or 0),
                "val_loss": float(r["val_loss"]),
            }
    return [points[s] for s in sorted(points)]


# ---------------------------------------------------------------------------
# The analysis
# ---------------------------------------------------------------------------


def _spread(values: Sequence[float]) -> dict[str, float]:
    v = np.asarray(values, dtype=float)
    return {
        "mean": float(v.mean()),
        "min": float(v.min()),
        "max": float(v.max()),
        "std": float(v.std(ddof=1)) if len(v) > 1 else 0.0,
    }


def gain_rows(rows: Sequence[dict[str, Any]]) -> list[dict[str, Any]]:
    """gains.csv: one row a target size, the losses of both kinds and the gain (scratch - fine-tuned), over seeds.

    The gain of a seed pairs its fine-tuning and scratch runs; the `best` loss is the lowest
    of a run's evaluations (the run stopped early at its best), `final` its last.
    """
    by: dict[tuple[int, int], dict[str, dict[str, Any]]] = defaultdict(dict)
    for r in rows:
        if r["kind"] in KINDS:
            by[(int(r["target_chars"]), int(r["seed"]))][r["kind"]] = r
    out = []
    for chars in sorted({c for c, _ in by}):
        pairs = [v for (c, _), v in sorted(by.items()) if c == chars and len(v) == 2]
        if not pairs:
            continue
        row: dict[str, Any] = {"target_chars": chars, "seeds": len(pairs)}
        row["zero_shot_loss"] = _spread([p["finetune"]["first_val_loss"] for p in pairs])["mean"]
        for which in ("best", "final"):
            key = "best_val_loss" if which == "best" else "val_loss"
            ft = [float(p["finetune"][key]) for p in pairs]
            sc = [float(p["scratch"][key]) for p in pairs]
            gain = _spread([s - f for s, f in zip(sc, ft)])
            row[f"finetune_{which}"] = _spread(ft)["mean"]
            row[f"scratch_{which}"] = _spread(sc)["mean"]
            for stat in ("mean", "min", "max", "std"):
                row[f"gain_{which}_{stat}"] = gain[stat]
        out.append(row)
    return out


def gain_trend(gains: Sequence[dict[str, Any]], which: str = "best") -> dict[str, Any]:
    """Does the gain shrink as target data grows? Computed from the mean gains, small to large.

    Returns:
        {"sizes", "gains", "slope_per_decade" (least squares of gain on log10 size; None with one
        size), "falls" (steps of the size ladder where the gain falls), "steps", "shrinks" (True:
        the slope is negative and the largest size's gain is below the smallest's; None: one size),
        "monotone" (the gain falls at every step), "beyond_spread" (the smallest size's gain minus
        the largest's exceeds both sizes' seed ranges)}.
    """
    sizes = [int(g["target_chars"]) for g in gains]
    means = [float(g[f"gain_{which}_mean"]) for g in gains]
    out: dict[str, Any] = {"which": which, "sizes": sizes, "gains": means}
    if len(sizes) < 2:
        out.update(slope_per_decade=None, falls=0, steps=0, shrinks=None, monotone=None, beyond_spread=None)
        return out
    slope = float(np.polyfit(np.log10(sizes), means, 1)[0])
    falls = sum(b < a for a, b in zip(means, means[1:]))
    first, last = gains[0], gains[-1]
    ranges = (first[f"gain_{which}_max"] - first[f"gain_{which}_min"]) + (
        last[f"gain_{which}_max"] - last[f"gain_{which}_min"]
    )
    out.update(
        slope_per_decade=slope,
        falls=int(falls),
        steps=len(sizes) - 1,
        shrinks=bool(slope < 0 and means[-1] < means[0]),
        monotone=bool(falls == len(sizes) - 1),
        beyond_spread=bool(means[0] - means[-1] > ranges) if min(int(first["seeds"]), int(last["seeds"])) > 1 else None,
    )
    return out


def _trend_sentence(trend: dict[str, Any]) -> str:
    sizes, gains = trend["sizes"], trend["gains"]
    if trend["shrinks"] is None:
        return "One target size only: no trend of the gain with target size to compute."
    span = (
        f"the mean gain goes from {gains[0]:+.3f} nats at {token_label(sizes[0])} characters to {gains[-1]:+.3f} "
        f"at {token_label(sizes[-1])} (least-squares slope {trend['slope_per_decade']:+.3f} nats per tenfold more "
        f"target data; it falls at {trend['falls']} of {trend['steps']} steps)"
    )
    if trend["shrinks"]:
        verdict = "The transfer gain shrinks as target data grows" + (
            "" if trend["monotone"] else ", though not at every step"
        )
    else:
        verdict = "The transfer gain does not shrink as target data grows"
    seeds = ""
    if trend["beyond_spread"] is not None:
        seeds = (
            "; the fall from the smallest to the largest size is larger than the seeds' spread at both"
            if trend["beyond_spread"]
            else "; the difference between the smallest and the largest size is within the seeds' spread"
        )
    return f"{verdict}: {span}{seeds}."


def format_report(
    rows: Sequence[dict[str, Any]], gains: Sequence[dict[str, Any]], trend: dict[str, Any], info: dict[str, Any]
) -> str:
    """The study as markdown: the settings, the gains table, the trend, and every run."""
    lines = [
        f"- source: {info['source']} ({info['source_origin']}); pretrained on {info['pretrain_tokens']:,} "
        f"characters ({info['pretrain_steps']:,} steps, peak lr {info['lr']:g})",
        f"- target: {info['target']} ({info['target_origin']}), {info['target_chars_total']:,} characters; "
        f"validation set: its last {info['val_chars']:,}, the same windows for every run",
        f"- every run: GPT {info['size']} ({info['params']:,} non-embedding parameters), vocabulary of "
        f"{info['vocab_size']} characters (both texts); each fine-tuning and scratch run {info['steps']:,} steps "
        f"of {info['batch_size']} x {info['seq_len']} characters (peak lr {info['finetune_lr']:g} fine-tuning, "
        f"{info['lr']:g} from scratch); seeds {', '.join(map(str, info['seeds']))}",
        "",
        "Validation loss (nats/character) on the target's validation set; `best` is a run's lowest evaluation, "
        "`final` its last; the gain is scratch minus fine-tuned, per seed, as mean [lowest, highest] over seeds.",
        "",
        "| target chars | epochs | pretrained, before fine-tuning | fine-tuned best | scratch best | gain (best) | "
        "fine-tuned final | scratch final | gain (final) |",
        "|---:|---:|---:|---:|---:|---|---:|---:|---|",
    ]
    tokens = info["steps"] * info["batch_size"] * info["seq_len"]
    for g in gains:
        cells = [f"{g['target_chars']:,}", f"{tokens / g['target_chars']:.3g}", f"{g['zero_shot_loss']:.4f}"]
        for which in ("best", "final"):
            gain = f"{g[f'gain_{which}_mean']:+.4f}"
            if g["seeds"] > 1:
                gain += f" [{g[f'gain_{which}_min']:+.4f}, {g[f'gain_{which}_max']:+.4f}]"
            cells += [f"{g[f'finetune_{which}']:.4f}", f"{g[f'scratch_{which}']:.4f}", gain]
        lines.append("| " + " | ".join(cells) + " |")
    lines += ["", _trend_sentence(trend), "", "Every run:", ""]
    lines += [
        "| run | evaluated on | steps | first val loss | best (step) | final | train s | status |",
        "|---|---|---:|---:|---:|---:|---:|---|",
    ]
    for r in rows:
        lines.append(
            f"| {r['run']} | {r['evaluated_on']} | {r['steps']:,} | {r['first_val_loss']:.4f} | "
            f"{r['best_val_loss']:.4f} ({r['best_step']}) | {r['val_loss']:.4f} | {r['train_seconds'] or 0:.1f} | "
            f"{r['status']} |"
        )
    return "\n".join(lines) + "\n"


# ---------------------------------------------------------------------------
# The study
# ---------------------------------------------------------------------------


def _check_device(device: str) -> str:
    from attnlab.utils import select_device

    try:
        return select_device(device)
    except ConfigError as e:
        raise ConfigError(str(e).replace("--train.device=", "--device ")) from None


def run_transfer_study(
    out_dir: str | Path, config: TransferConfig | None = None, *, force: bool = False
) -> dict[str, Any]:
    """Pretrain, fine-tune and train from scratch at every target size and seed; write the tables and figures.

    Args:
        out_dir: the study folder (an attnlab run folder; `open_run` claims and locks it).
        config: the settings (default: the default study).
        force: write into a folder that holds files attnlab did not write (they are kept), and
            set aside and retrain runs trained with other settings.
    Returns:
        {"out_dir", "rows" (runs.csv), "curves" (curves.csv), "gains" (gains.csv), "trend"
        (`gain_trend` of the best losses), "report" (markdown), "files", "seconds"}.
    Raises:
        ConfigError / DataError: bad settings, sizes, device or texts, or a run of other settings.
        TrainingInterrupted: Ctrl-C; the finished runs and the interrupted run's checkpoint are kept.
    """
    from attnlab.models.memory import check_training_memory
    from attnlab.utils import write_json_atomic, write_text_atomic

    config = config or TransferConfig()
    started = time.perf_counter()
    device = _check_device(config.device)
    _ = config.pretrain_steps  # a budget below one optimizer step is one line before anything is written
    out_dir = Path(out_dir)
    info = {"command": "transfer", "transfer": to_dict(config)}
    with open_run(out_dir, command="transfer", force=force, info=info):
        texts = load_texts(config)
        sizes = target_sizes(config, texts)
        runs = plan_runs(config, sizes)
        model, _ = _configs(runs[0], config, device, texts.tokenizer.vocab_size)
        check_training_memory(
            model,
            config.batch,
            device=device,
            what=f"the GPT of size {config.model_size.name}",
            eval_batches=config.eval_batches,
        )
        rows: list[dict[str, Any]] = []
        curves: list[dict[str, Any]] = []
        for i, run in enumerate(runs, 1):
            logger.info("transfer: run %d of %d: %s (%s optimizer steps)", i, len(runs), run.name, f"{run.steps:,}")
            folder = out_dir / RUNS_DIR / run.name
            pretrained = out_dir / RUNS_DIR / f"pretrain-seed{run.seed}" if run.kind == "finetune" else None
            row = run_one(folder, run, config, texts, device, pretrained=pretrained, force=force)
            rows.append(row)
            for c in run_curve(folder):
                curves.append(
                    {"run": run.name, "kind": run.kind, "target_chars": run.target_chars, "seed": run.seed, **c}
                )
            logger.info("transfer: %s: best validation loss %.4f (%s)", run.name, row["best_val_loss"], row["status"])
            # The tables grow run by run, so a long study can be watched (and survives a stop).
            write_tidy_csv(out_dir / "runs.csv", rows, "one training run of the transfer study a row")
            write_tidy_csv(out_dir / "curves.csv", curves, "one evaluation of one run of the transfer study a row")
        files = [str(out_dir / "runs.csv"), str(out_dir / "curves.csv")]
        gains = gain_rows(rows)
        write_tidy_csv(out_dir / "gains.csv", gains, "one target size of the transfer study a row")
        files.append(str(out_dir / "gains.csv"))
        trend = gain_trend(gains, "best")
        summary = {
            "source": texts.source_name,
            "source_origin": texts.source_origin,
            "target": texts.target_name,
            "target_origin": texts.target_origin,
            "target_chars_total": int(len(texts.target_ids)),
            "val_chars": texts.val_chars,
            "pretrain_tokens": config.pretrain_steps * config.batch * config.context,
            "pretrain_steps": config.pretrain_steps,
            "size": config.model_size.name,
            "params": rows[0]["params"],
            "steps": config.steps,
            "batch_size": config.batch,
            "seq_len": config.context,
            "lr": config.lr,
            "finetune_lr": config.finetune_lr,
            "vocab_size": texts.tokenizer.vocab_size,
            "seeds": list(config.run_seeds),
            "target_sizes": list(sizes),
            "source_sha256": texts.source_sha256,
            "target_sha256": texts.target_sha256,
            "device": device,
        }
        report = format_report(rows, gains, trend, summary)
        write_text_atomic(out_dir / "report.md", "# Transfer study: pretrain, then fine-tune\n\n" + report)
        files.append(str(out_dir / "report.md"))
        if config.figures:
            files += [str(f) for f in write_figures(out_dir, curves, gains)]
        seconds = time.perf_counter() - started
        write_json_atomic(
            out_dir / "results.json",
            {
                "settings": summary,
                "runs": len(rows),
                "gains": gains,
                "trend": {"best": trend, "final": gain_trend(gains, "final")},
                "conclusion": _trend_sentence(trend),
                "seconds": round(seconds, 1),
                "files": [Path(f).name for f in files] + ["results.json"],
            },
        )
        files.append(str(out_dir / "results.json"))
    return {
        "out_dir": str(out_dir),
        "rows": rows,
        "curves": curves,
        "gains": gains,
        "trend": trend,
        "report": report,
        "files": files,
        "seconds": seconds,
    }


# ---------------------------------------------------------------------------
# Figures
# ---------------------------------------------------------------------------


def write_figures(out_dir: Path, curves: Sequence[dict[str, Any]], gains: Sequence[dict[str, Any]]) -> list[Path]:
    """transfer_curves.png and transfer_gain.png (both only when there are target runs)."""
    target = [c for c in curves if c["kind"] in KINDS]
    if not target or not gains:
        return []
    return [
        plot_transfer_curves(target, Path(out_dir) / "transfer_curves.png"),
        plot_transfer_gain(gains, Path(out_dir) / "transfer_gain.png"),
    ]


def plot_transfer_curves(curves: Sequence[dict[str, Any]], out: str | Path | None = None, *, dpi: int | None = None):
    """Validation loss vs fine-tuning steps, one panel a target size: fine-tuned (solid) vs scratch (dashed).

    Each seed is a thin line, the mean over seeds a thick one. Returns the figure when `out` is None,
    else the written path.
    """
    from attnlab.viz._mpl import BLUE, DEFAULT_DPI, VERMILION, finish, new_figure, projector_style

    sizes = sorted({int(c["target_chars"]) for c in curves})
    with projector_style():
        cols = min(len(sizes), 4)
        rows_n = math.ceil(len(sizes) / cols)
        fig = new_figure(4.2 * cols + 1, 3.8 * rows_n + 0.6)
        axes = np.atleast_1d(fig.subplots(rows_n, cols, sharey=True, squeeze=False)).ravel()
        for ax, chars in zip(axes, sizes):
            for kind, colour, style in (("finetune", BLUE, "-"), ("scratch", VERMILION, "--")):
                by_seed: dict[int, list[tuple[int, float]]] = defaultdict(list)
                for c in curves:
                    if c["kind"] == kind and int(c["target_chars"]) == chars:
                        by_seed[int(c["seed"])].append((int(c["step"]), float(c["val_loss"])))
                series = [sorted(v) for v in by_seed.values()]
                for s in series:
                    ax.plot(*zip(*s), color=colour, ls=style, lw=1.0, alpha=0.35)
                steps = sorted(set.intersection(*(set(x for x, _ in s) for s in series))) if series else []
                if steps:
                    mean = [np.mean([dict(s)[x] for s in series]) for x in steps]
                    label = "pretrained, fine-tuned" if kind == "finetune" else "from scratch"
                    ax.plot(steps, mean, color=colour, ls=style, lw=2.4, label=label)
            ax.set_title(f"{token_label(chars)} target characters")
            ax.set_xlabel("fine-tuning steps")
            ax.grid(True, alpha=0.3)
        for ax in axes[len(sizes) :]:
            ax.set_visible(False)
        for ax in axes[::cols]:
            ax.set_ylabel("target validation loss")
        axes[0].legend(fontsize=10)
        fig.suptitle("Fine-tuned vs from scratch, by target size")
        return finish(fig, out, dpi or DEFAULT_DPI)


def plot_transfer_gain(gains: Sequence[dict[str, Any]], out: str | Path | None = None, *, dpi: int | None = None):
    """Best target loss vs target size for both (left), and the transfer gain with its seed range (right).

    Returns the figure when `out` is None, else the written path.
    """
    from matplotlib.ticker import NullLocator

    from attnlab.viz._mpl import BLACK, BLUE, DEFAULT_DPI, VERMILION, finish, new_figure, projector_style

    x = np.array([g["target_chars"] for g in gains], dtype=float)
    with projector_style():
        fig = new_figure(12, 5)
        left, right = fig.subplots(1, 2)
        left.plot(
            x, [g["finetune_best"] for g in gains], color=BLUE, marker="o", lw=2.4, label="pretrained, fine-tuned"
        )
        left.plot(
            x, [g["scratch_best"] for g in gains], color=VERMILION, marker="s", ls="--", lw=2.4, label="from scratch"
        )
        zero_shot = np.mean([g["zero_shot_loss"] for g in gains])
        left.axhline(zero_shot, color=BLACK, ls=":", lw=1.4, label="pretrained, before fine-tuning")
        left.set_ylabel("best target validation loss")
        left.set_title("Target loss vs target data")
        mean = np.array([g["gain_best_mean"] for g in gains])
        low = np.array([g["gain_best_min"] for g in gains])
        high = np.array([g["gain_best_max"] for g in gains])
        right.errorbar(
            x,
            mean,
            yerr=[mean - low, high - mean],
            color=BLUE,
            marker="o",
            lw=2.4,
            capsize=4,
            label="mean over seeds (bar: lowest to highest)",
        )
        right.axhline(0.0, color=BLACK, lw=1.0)
        right.set_ylabel("gain = scratch - fine-tuned (nats)")
        right.set_title("Transfer gain vs target data")
        for ax in (left, right):
            ax.set_xscale("log")
            ax.xaxis.set_minor_locator(NullLocator())
            ax.set_xticks(x, [token_label(int(v)) for v in x])
            ax.set_xlabel("target training characters")
            ax.grid(True, which="both", alpha=0.3)
            ax.legend(fontsize=10)
        return finish(fig, out, dpi or DEFAULT_DPI)


def read_study(out_dir: str | Path, table: str = "runs") -> list[dict[str, Any]]:
    """The rows of a study's runs.csv, curves.csv or gains.csv (numbers as numbers), for notebooks and the app.

    Raises:
        ConfigError: `table` is not one of the three.
        DataError: the folder has no such table.
    """
    import csv

    if table not in ("runs", "curves", "gains"):
        raise ConfigError(f"table is runs, curves or gains, got {table!r}")
    path = Path(out_dir) / f"{table}.csv"
    try:
        lines = [ln for ln in path.read_text(encoding="utf-8").splitlines() if not ln.startswith("#")]
    except OSError as e:
        raise DataError(f"{str(out_dir)!r} holds no {table}.csv of a transfer study ({e.strerror or e})") from None
    rows = []
    for row in csv.DictReader(lines):
        parsed: dict[str, Any] = {}
        for k, v in row.items():
            for convert in (int, float):
                try:
                    parsed[k] = convert(v)
                    break
                except (TypeError, ValueError):
                    continue
            else:
                parsed[k] = v if v != "" else None
        rows.append(parsed)
    return rows


__all__ = [
    "DEFAULT_TARGET_SIZES",
    "LICENSES",
    "TransferConfig",
    "TransferRun",
    "default_target",
    "format_report",
    "gain_rows",
    "gain_trend",
    "license_text",
    "load_target",
    "load_texts",
    "parse_target_size",
    "plan_runs",
    "plot_transfer_curves",
    "plot_transfer_gain",
    "read_study",
    "run_curve",
    "run_one",
    "run_transfer_study",
    "target_sizes",
]

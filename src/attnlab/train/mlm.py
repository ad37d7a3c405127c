"""Masked-language-model pretraining of an `Encoder` (BERT, Devlin et al. 2019; ESM-2).

BERT's rule: choose 15% of the (non-special) tokens; replace 80% of the chosen ones with
[MASK], 10% with a random token and leave 10% unchanged; the model is scored only on the
chosen positions (labels -100 elsewhere). Random replacements are drawn uniformly from
the non-special tokens that occur in the training data. Every row with a maskable token
gets at least one chosen position (as BERT's own data pipeline ensures), so no batch
row is ever unscored.

Two kinds of data, both served as `BatchSource`s for the model-agnostic `Trainer`:
  * a text corpus (`attnlab.data.text.load_text`: pydoc, shakespeare, a file) cut into
    windows `[CLS] t_1 ... t_{T-2} [SEP]` (`TextMLMData`), train/val = first 90% / last 10%;
  * a list of sequences (proteins from FASTA/CSV via `attnlab.bio.data`, or one per line),
    one example each `<cls> seq <eos>`, cropped to the context (a random crop in training,
    the start at evaluation) and right-padded with an attention mask (`SequenceMLMData`).
Training batches are masked afresh from the Trainer's per-step generator (exact resume);
evaluation batches are fixed (same windows, same masks) so validation curves are smooth.
`train_masked_lm` is the library call behind `attnlab train --objective mlm`
(`attnlab.cli.mlm` turns its flags into the configs).

Notation: B batch, T context length (max_seq_len).
"""

from __future__ import annotations

import dataclasses
import logging
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from attnlab import checkpoint as ckpt
from attnlab.config import from_dict, to_dict
from attnlab.configs.data import DataConfig
from attnlab.errors import CheckpointError, ConfigError, DataError, TokenizerError
from attnlab.models.encoder import IGNORE_INDEX, EncoderConfig, special_token_ids
from attnlab.runs import writes_run
from attnlab.train.trainer import TrainConfig, Trainer, read_metrics

logger = logging.getLogger(__name__)

BERT_SPECIALS = ("[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]")  # ids 0-4 of char and bpe MLM tokenizers
SEQUENCE_TOKENIZERS = ("protein", "dna", "rna")  # tokenizers whose data is a list of sequences
SEQUENCE_SUFFIXES = (".fasta", ".fa", ".faa", ".fna", ".fas", ".ffn", ".frn", ".mpfa", ".csv", ".tsv")
EVAL_SEED_SALT = 7919  # keeps evaluation masks apart from the training generator's streams


@dataclass(frozen=True)
class MaskingConfig:
    """BERT's masking rule (`--mask.FIELD=V` on the command line)."""

    mask_prob: float = 0.15  # share of maskable tokens chosen for prediction
    mask_token_share: float = 0.8  # of the chosen: replaced by [MASK]
    random_token_share: float = 0.1  # of the chosen: replaced by a random token (the rest stay unchanged)

    def __post_init__(self) -> None:
        if not 0.0 < self.mask_prob < 1.0:
            raise ConfigError(f"mask.mask_prob must be between 0 and 1, got {self.mask_prob}")
        for name in ("mask_token_share", "random_token_share"):
            if not 0.0 <= getattr(self, name) <= 1.0:
                raise ConfigError(f"mask.{name} must be between 0 and 1, got {getattr(self, name)}")
        if self.mask_token_share + self.random_token_share > 1.0 + 1e-12:
            raise ConfigError("mask.mask_token_share + mask.random_token_share must not exceed 1")


def mask_tokens(
    input_ids: np.ndarray,
    rng: np.random.Generator,
    *,
    mask_id: int,
    special_ids: Sequence[int],
    random_ids: Sequence[int],
    masking: MaskingConfig = MaskingConfig(),
    ensure_one: bool = True,
) -> tuple[np.ndarray, np.ndarray]:
    """Apply BERT's 15% / 80-10-10 masking rule.

    Deterministic given the state of `rng`. Special and padding tokens (`special_ids`)
    are never chosen.

    Args:
        input_ids: (B, T) int token ids.
        rng: the NumPy generator to draw from.
        mask_id: id of [MASK].
        special_ids: ids that are never chosen ([CLS], [SEP], [PAD], [MASK], ...).
        random_ids: ids the "random token" replacements are drawn from (uniformly).
        masking: the probabilities.
        ensure_one: choose one maskable position in any row where the coin flips chose none.
    Returns:
        (masked input ids (B, T), labels (B, T): the original id where chosen, -100 elsewhere).
    """
    ids = np.asarray(input_ids, dtype=np.int64)
    if ids.ndim != 2:
        raise ValueError(f"input_ids must be (batch, seq_len), got shape {ids.shape}")
    maskable = ~np.isin(ids, np.asarray(list(special_ids), dtype=np.int64))  # (B, T)
    chosen = (rng.random(ids.shape) < masking.mask_prob) & maskable
    if ensure_one:
        empty = np.flatnonzero(maskable.any(axis=1) & ~chosen.any(axis=1))
        for row in empty:  # rare for realistic lengths (0.85^T); one uniform pick per row
            candidates = np.flatnonzero(maskable[row])
            chosen[row, candidates[rng.integers(len(candidates))]] = True
    u = rng.random(ids.shape)
    to_mask = chosen & (u < masking.mask_token_share)
    to_random = chosen & (u >= masking.mask_token_share) & (u < masking.mask_token_share + masking.random_token_share)
    labels = np.where(chosen, ids, IGNORE_INDEX)
    out = ids.copy()
    out[to_mask] = mask_id
    n_random = int(to_random.sum())
    if n_random:
        pool = np.asarray(list(random_ids), dtype=np.int64)
        if pool.size == 0:
            raise ValueError("random_ids is empty: nothing to draw random replacement tokens from")
        out[to_random] = pool[rng.integers(0, pool.size, size=n_random)]
    return out, labels


@dataclass(frozen=True)
class MLMSpecials:
    """The special-token ids masked-LM data needs."""

    cls_id: int  # [CLS] / <cls>: starts every example
    sep_id: int  # [SEP] / <eos>: ends every example
    pad_id: int | None  # [PAD] / <pad>: fills short sequences (None for text windows)
    mask_id: int  # [MASK] / <mask>
    special_ids: tuple[int, ...]  # never chosen for prediction

    @classmethod
    def from_tokenizer(cls, tokenizer: Any, need_pad: bool = True) -> MLMSpecials:
        """Read the ids from a tokenizer's special tokens.

        Raises:
            TokenizerError: a needed special token is missing (e.g. no [MASK]).
        """
        ids = special_token_ids(tokenizer)
        name = getattr(tokenizer, "kind", type(tokenizer).__name__)
        for role, spelled in (
            ("mask", "[MASK] or <mask>"),
            ("cls", "[CLS], <cls> or <bos>"),
            ("sep", "[SEP], <eos> or </s>"),
        ):
            if ids[role] is None:
                raise TokenizerError(
                    f"the {name} tokenizer has no {spelled} token, which masked-LM training needs; "
                    "train the tokenizer with MLM specials (attnlab.train.mlm.build_mlm_tokenizer)"
                )
        if need_pad and ids["pad"] is None:
            raise TokenizerError(f"the {name} tokenizer has no [PAD] / <pad> token, which padded sequences need")
        specials = set(tokenizer.special_tokens.values()) | {v for v in ids.values() if v is not None}
        return cls(ids["cls"], ids["sep"], ids["pad"], ids["mask"], tuple(sorted(specials)))


class _MLMSource:
    """Shared masking and fixed evaluation batches of the two data sources."""

    def __init__(self, specials: MLMSpecials, random_ids: np.ndarray, masking: MaskingConfig):
        if random_ids.size == 0:
            raise DataError("the training data holds no ordinary (non-special) tokens to learn from")
        self.specials = specials
        self.random_ids = random_ids
        self.masking = masking
        self._eval_cache: dict[tuple, list[dict[str, np.ndarray]]] = {}

    def _mask(self, input_ids: np.ndarray, rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
        return mask_tokens(
            input_ids,
            rng,
            mask_id=self.specials.mask_id,
            special_ids=self.specials.special_ids,
            random_ids=self.random_ids,
            masking=self.masking,
        )

    def _examples(self, split: str, batch_size: int, batch_index: int) -> tuple[np.ndarray, np.ndarray | None]:
        raise NotImplementedError

    def eval_batches(
        self, batch_size: int, num_batches: int, split: str = "val", seed: int = 0
    ) -> list[dict[str, np.ndarray]]:
        """Fixed evaluation batches: the same examples and masks on every call."""
        key = (batch_size, num_batches, split, seed)
        if key not in self._eval_cache:
            batches = []
            for b in range(num_batches):
                rng = np.random.default_rng((seed, EVAL_SEED_SALT, b))
                input_ids, attention_mask = self._examples(split, batch_size, b)
                masked, labels = self._mask(input_ids, rng)
                batch = {"input_ids": masked, "labels": labels}
                if attention_mask is not None:
                    batch["attention_mask"] = attention_mask
                batches.append(batch)
            self._eval_cache[key] = batches
        return self._eval_cache[key]


class TextMLMData(_MLMSource):
    """Windows `[CLS] t_1 .. t_{T-2} [SEP]` of one token stream, split 90/10 (first/last).

    Args:
        ids: (N,) token ids of the whole text (no special tokens).
        max_seq_len: T, the window length including [CLS] and [SEP].
        specials: the tokenizer's special ids.
        val_fraction: share of the text (at its end) held out for validation.
        masking: the masking rule.
    """

    def __init__(
        self,
        ids: np.ndarray,
        max_seq_len: int,
        specials: MLMSpecials,
        val_fraction: float = 0.1,
        masking: MaskingConfig = MaskingConfig(),
    ):
        if max_seq_len < 3:
            raise DataError(f"masked-LM windows need model.max_seq_len >= 3 ([CLS] token [SEP]), got {max_seq_len}")
        # compact ids (uint8/16/32, maybe a memory map) stay as they are; windows become int64 in _frame
        ids = ids if isinstance(ids, np.ndarray) and ids.dtype.kind in "ui" else np.asarray(ids, dtype=np.int64)
        self.span = max_seq_len - 2  # tokens between [CLS] and [SEP]
        split = int(len(ids) * (1.0 - val_fraction))
        self.splits = {"train": ids[:split], "val": ids[split:]}
        for name, part in self.splits.items():
            if len(part) < self.span:
                raise DataError(
                    f"the text is too short: its {name} split has {len(part)} tokens but a window of "
                    f"{max_seq_len} (with [CLS] and [SEP]) needs {self.span}; use more text or a smaller --model.max_seq_len"
                )
        random_ids = np.setdiff1d(np.unique(self.splits["train"]), np.asarray(specials.special_ids))
        super().__init__(specials, random_ids, masking)

    def _frame(self, part: np.ndarray, starts: np.ndarray) -> np.ndarray:
        rows = part[starts[:, None] + np.arange(self.span)[None, :]]  # (B, T-2)
        B = len(starts)
        cls = np.full((B, 1), self.specials.cls_id, dtype=np.int64)
        sep = np.full((B, 1), self.specials.sep_id, dtype=np.int64)
        return np.concatenate([cls, rows.astype(np.int64), sep], axis=1)  # (B, T)

    def train_batch(self, batch_size: int, rng: np.random.Generator) -> dict[str, np.ndarray]:
        """Random windows of the train split, freshly masked from `rng`."""
        part = self.splits["train"]
        starts = rng.integers(0, len(part) - self.span + 1, size=batch_size)
        masked, labels = self._mask(self._frame(part, starts), rng)
        return {"input_ids": masked, "labels": labels}

    def _examples(self, split: str, batch_size: int, batch_index: int) -> tuple[np.ndarray, None]:
        part = self.splits[split]
        # evenly spread windows; batch b takes a shifted comb so batches differ
        last = len(part) - self.span
        grid = np.linspace(0, last, num=batch_size, dtype=np.float64)
        shift = (batch_index * 0.5 * self.span) % max(last, 1)
        starts = ((grid + shift) % (last + 1)).astype(np.int64)
        return self._frame(part, starts), None


class SequenceMLMData(_MLMSource):
    """One example per sequence: `[CLS] crop(seq) [SEP]`, right-padded, with an attention mask.

    Args:
        train: token id lists (no special tokens) of the training sequences.
        val: token id lists of the validation sequences.
        max_seq_len: T, the most tokens per example (specials included); longer sequences
            are cropped: a random window in training, their start at evaluation.
        specials: the tokenizer's special ids (a pad id is required).
        masking: the masking rule.
    """

    def __init__(
        self,
        train: Sequence[Sequence[int]],
        val: Sequence[Sequence[int]],
        max_seq_len: int,
        specials: MLMSpecials,
        masking: MaskingConfig = MaskingConfig(),
    ):
        if max_seq_len < 3:
            raise DataError(f"masked-LM examples need model.max_seq_len >= 3 ([CLS] token [SEP]), got {max_seq_len}")
        if specials.pad_id is None:
            raise TokenizerError("padded sequence batches need a tokenizer with a [PAD] / <pad> token")
        self.span = max_seq_len - 2
        self.splits = {
            "train": [np.asarray(s, dtype=np.int64) for s in train if len(s)],
            "val": [np.asarray(s, dtype=np.int64) for s in val if len(s)],
        }
        for name, part in self.splits.items():
            if not part:
                raise DataError(f"the {name} split holds no sequences; give more sequences (at least 2)")
        random_ids = np.setdiff1d(np.unique(np.concatenate(self.splits["train"])), np.asarray(specials.special_ids))
        super().__init__(specials, random_ids, masking)

    def _frame(self, crops: list[np.ndarray]) -> tuple[np.ndarray, np.ndarray]:
        width = max(len(c) for c in crops) + 2
        input_ids = np.full((len(crops), width), self.specials.pad_id, dtype=np.int64)
        attention_mask = np.zeros((len(crops), width), dtype=np.int64)
        for b, c in enumerate(crops):
            input_ids[b, 0] = self.specials.cls_id
            input_ids[b, 1 : 1 + len(c)] = c
            input_ids[b, 1 + len(c)] = self.specials.sep_id
            attention_mask[b, : len(c) + 2] = 1
        return input_ids, attention_mask

    def train_batch(self, batch_size: int, rng: np.random.Generator) -> dict[str, np.ndarray]:
        """Random sequences (random crops when too long), freshly masked from `rng`."""
        part = self.splits["train"]
        crops = []
        for i in rng.integers(0, len(part), size=batch_size):
            seq = part[i]
            start = int(rng.integers(0, len(seq) - self.span + 1)) if len(seq) > self.span else 0
            crops.append(seq[start : start + self.span])
        input_ids, attention_mask = self._frame(crops)
        masked, labels = self._mask(input_ids, rng)
        return {"input_ids": masked, "attention_mask": attention_mask, "labels": labels}

    def _examples(self, split: str, batch_size: int, batch_index: int) -> tuple[np.ndarray, np.ndarray]:
        part = self.splits[split]
        index = [(batch_index * batch_size + k) % len(part) for k in range(batch_size)]  # cycle through in order
        return self._frame([part[i][: self.span] for i in index])


# ---------------------------------------------------------------------------
# Tokenizers and data loading
# ---------------------------------------------------------------------------


def build_mlm_tokenizer(data: DataConfig, text: str) -> Any:
    """Train the tokenizer `data.tokenizer` on `text`, with the special tokens MLM needs.

    char / bpe get `[PAD] [UNK] [CLS] [SEP] [MASK]` as ids 0-4, word gets `[CLS] [SEP] [MASK]`
    after its `<pad> <unk> <bos> <eos>`; protein / dna / rna have ESM-style specials already.
    """
    from attnlab.tokenizers import BPETokenizer, CharTokenizer, WordTokenizer, build_tokenizer, registered_kinds

    kind = data.tokenizer
    if kind == "char":
        if data.vocab_size is not None:
            raise ConfigError("data.vocab_size applies to the word and bpe tokenizers, not 'char'")
        return CharTokenizer.train(text, specials=BERT_SPECIALS)
    if kind == "word":
        return WordTokenizer.train(text, max_vocab=data.vocab_size or 2000, specials=("[CLS]", "[SEP]", "[MASK]"))
    if kind == "bpe":
        return BPETokenizer.train(text, vocab_size=data.vocab_size or 1024, specials=BERT_SPECIALS)
    if kind not in registered_kinds():
        raise ConfigError(
            f"unknown tokenizer {kind!r}; choose one of: char, word, bpe, {', '.join(SEQUENCE_TOKENIZERS)}"
        )
    if data.vocab_size is not None:
        raise ConfigError(f"data.vocab_size applies to the word and bpe tokenizers, not {kind!r}")
    return build_tokenizer(kind, text)


def is_sequence_source(data: DataConfig) -> bool:
    """Whether `data` names a list of sequences (FASTA/CSV, the "amp" set, or a bio tokenizer)."""
    source = str(data.source)
    return (
        data.tokenizer in SEQUENCE_TOKENIZERS
        or source.lower() == "amp"
        or Path(source).suffix.lower() in SEQUENCE_SUFFIXES
    )


def load_sequences(source: str, tokenizer_kind: str) -> tuple[list[str], list[str] | None, str]:
    """Sequences of a FASTA/CSV file, the "amp" set or a text file with one sequence per line.

    Returns:
        (sequences, split names or None, a description of the origin).
    """
    path = Path(source).expanduser()
    alphabet = tokenizer_kind if tokenizer_kind in SEQUENCE_TOKENIZERS else None
    if source.lower() == "amp" or path.suffix.lower() in SEQUENCE_SUFFIXES:
        from attnlab.bio.data import load_dataset

        options: dict[str, Any] = {} if source.lower() == "amp" else {"alphabet": alphabet}
        dataset = load_dataset(source, **options)
        origin = "modlamp antimicrobial peptides" if source.lower() == "amp" else str(path.resolve())
        return list(dataset.sequences), dataset.splits, origin
    from attnlab.data.text import read_text_file

    lines = [line.strip() for line in read_text_file(path).splitlines()]
    sequences = [line for line in lines if line and not line.startswith((">", "#"))]
    if not sequences:
        raise DataError(f"{str(path)!r} holds no sequences (one per line)")
    return sequences, None, str(path.resolve())


def split_sequences(
    ids: list[list[int]], splits: list[str] | None, val_fraction: float, seed: int
) -> tuple[list, list]:
    """Train and validation id lists: the data set's own splits when it has them, else a seeded random split."""
    if splits is not None and "train" in splits and any(s in ("valid", "test") for s in splits):
        held = "valid" if "valid" in splits else "test"
        train = [x for x, s in zip(ids, splits) if s == "train"]
        val = [x for x, s in zip(ids, splits) if s == held]
        return train, val
    if len(ids) < 2:
        raise DataError(f"masked-LM training needs at least 2 sequences (one to validate on), got {len(ids)}")
    order = np.random.default_rng(seed).permutation(len(ids))
    n_val = min(len(ids) - 1, max(1, int(round(len(ids) * val_fraction))))
    val_idx = set(order[:n_val].tolist())
    return [x for i, x in enumerate(ids) if i not in val_idx], [x for i, x in enumerate(ids) if i in val_idx]


def sequence_mlm_data(
    sequences: Sequence[str],
    tokenizer: Any,
    max_seq_len: int,
    *,
    val_fraction: float = 0.1,
    seed: int = 0,
    splits: Sequence[str] | None = None,
    masking: MaskingConfig = MaskingConfig(),
) -> SequenceMLMData:
    """Masked-LM batches from a list of sequences (proteins, DNA, sentences), one example each.

    Args:
        sequences: the sequences as strings.
        tokenizer: their tokenizer (with cls/sep/pad/mask specials, e.g. `ProteinTokenizer`).
        max_seq_len: the model's context (longer sequences are cropped).
        val_fraction: share held out for validation when `splits` is not given.
        seed: seed of the random train/validation split.
        splits: per sequence "train" / "valid" / "test" to use instead of a random split.
        masking: the masking rule.
    """
    from attnlab.errors import UnknownCharactersError

    specials = MLMSpecials.from_tokenizer(tokenizer, need_pad=True)
    ids = []
    for i, seq in enumerate(sequences):
        try:
            ids.append(list(tokenizer.encode(seq)))
        except UnknownCharactersError as e:
            raise DataError(f"sequence {i + 1}: {e}") from None
    train, val = split_sequences(ids, list(splits) if splits is not None else None, val_fraction, seed)
    return SequenceMLMData(train, val, max_seq_len, specials, masking)


# ---------------------------------------------------------------------------
# Metrics
# ---------------------------------------------------------------------------


def masked_accuracy(model: Any, batches: Sequence[dict[str, np.ndarray]], device: Any = "cpu") -> float:
    """Share of scored (label != -100) positions whose arg-max prediction is the original token."""
    import torch

    correct, total = 0, 0
    was_training = model.training
    model.eval()
    with torch.no_grad():
        for batch in batches:
            tensors = {k: torch.as_tensor(v, device=device) for k, v in batch.items() if k != "labels"}
            logits = model(**tensors).logits  # (B, T, V)
            labels = torch.as_tensor(batch["labels"], device=device)
            scored = labels != IGNORE_INDEX
            correct += int((logits.argmax(-1)[scored] == labels[scored]).sum())
            total += int(scored.sum())
    model.train(was_training)
    return correct / total if total else float("nan")


# ---------------------------------------------------------------------------
# The recipe
# ---------------------------------------------------------------------------


@writes_run("train")
def train_masked_lm(
    out_dir: str | Path,
    *,
    data: DataConfig,
    model: EncoderConfig,
    train: TrainConfig,
    masking: MaskingConfig = MaskingConfig(),
    resume: bool = False,
    write_plots: bool = True,
) -> dict[str, Any]:
    """Pretrain an `Encoder` with masked-LM; the run folder becomes a checkpoint.

    Args:
        out_dir: run folder (metrics.jsonl, results.json, run.json, checkpoint files, loss_curve.png).
        data: a text corpus (pydoc, shakespeare, a text file) or sequences (a FASTA/CSV file,
            "amp", or a text file with one sequence per line when the tokenizer is protein/dna/rna).
        model: encoder architecture (vocab_size and pad/mask ids come from the tokenizer).
        train: optimisation settings.
        masking: BERT's masking probabilities.
        resume: continue the run in `out_dir` exactly where its checkpoint stopped.
        write_plots: write loss_curve.png at the end.
    Returns:
        The results dict (also written to out_dir/results.json), with `val_loss` and
        `val_masked_accuracy`.
    """
    from attnlab.models.encoder import Encoder
    from attnlab.models.registry import load_model
    from attnlab.train.engine import TorchEngine
    from attnlab.utils import seed_everything

    out_dir = Path(out_dir)
    if out_dir.exists() and not out_dir.is_dir():
        raise ConfigError(f"--out {str(out_dir)!r} is a file; pass a folder for the run")
    tokenizer = None
    if resume:
        saved = ckpt.read_model(out_dir)
        if saved.model_type != "encoder":
            raise CheckpointError(
                f"cannot resume {str(out_dir)!r}: it holds a {saved.model_type} model, not an encoder"
            )
        tokenizer = saved.tokenizer
        model = from_dict(EncoderConfig, saved.config, section="model")
    elif out_dir.is_dir() and ckpt.is_checkpoint(out_dir):
        raise ConfigError(
            f"{str(out_dir)!r} already holds a trained model; pass --resume to continue it, or choose a new --out"
        )
    if model.head != "mlm":
        raise ConfigError(f"masked-LM training needs model.head=mlm, got {model.head!r}")

    if is_sequence_source(data):
        sequences, splits, origin = load_sequences(str(data.source), data.tokenizer)
        if tokenizer is None:
            tokenizer = build_mlm_tokenizer(data, "\n".join(sequences))
        source = sequence_mlm_data(
            sequences,
            tokenizer,
            model.max_seq_len,
            val_fraction=train.val_fraction,
            seed=train.seed,
            splits=splits,
            masking=masking,
        )
        specials = source.specials
        data_info = {
            "kind": "sequences",
            "num_sequences": len(sequences),
            "num_train": len(source.splits["train"]),
            "num_val": len(source.splits["val"]),
        }
        name = Path(str(data.source)).name
    else:
        from attnlab.data.text import load_text
        from attnlab.train.recipes import encode_corpus

        text = load_text(data.source)
        if tokenizer is None:
            tokenizer = build_mlm_tokenizer(data, text.text)
        ids = encode_corpus(tokenizer, text.text, text.name)
        specials = MLMSpecials.from_tokenizer(tokenizer, need_pad=False)
        source = TextMLMData(ids, model.max_seq_len, specials, train.val_fraction, masking)
        origin, name = text.origin, text.name
        data_info = {"kind": "text", "num_tokens": int(len(ids))}
    if not resume:
        model = dataclasses.replace(
            model,
            vocab_size=tokenizer.vocab_size,
            pad_token_id=specials.pad_id if specials.pad_id is not None else model.pad_token_id,
            mask_token_id=specials.mask_id,
        )
        if model.pad_token_id is not None and model.pad_token_id >= model.vocab_size:
            model = dataclasses.replace(model, pad_token_id=None)

    # Before the encoder is allocated: a model (or batch) that cannot fit is one line, not a crash.
    # The evaluation batches are held twice: the Trainer's and the accuracy hook's.
    from attnlab.models.memory import check_training_memory

    check_training_memory(
        model, train.batch_size, device=train.device, what="the encoder", eval_batches=2 * train.eval_iters
    )
    seed_everything(train.seed)
    encoder = load_model(out_dir, expect="encoder")[0] if resume else Encoder(model)
    engine = TorchEngine(
        encoder,
        lr=train.lr,
        betas=(train.beta1, train.beta2),
        eps=train.eps,
        weight_decay=train.weight_decay,
        grad_clip=train.grad_clip,
        device=train.device,
        precision=train.precision,
    )

    def eval_hook() -> dict[str, float]:
        batches = source.eval_batches(train.batch_size, train.eval_iters, "val", train.seed)
        return {"val_masked_accuracy": masked_accuracy(engine.module, batches, engine.device)}

    run_info = {
        "command": "train",
        "objective": "mlm",
        "data": {**to_dict(data), "origin": origin, **data_info},
        "model": to_dict(model),
        "train": to_dict(train),
        "mask": to_dict(masking),
    }
    logger.info(
        "masked-LM training of a %s-parameter encoder on %s (%s tokenizer, vocab %d)",
        f"{engine.num_parameters():,}",
        name,
        data.tokenizer,
        tokenizer.vocab_size,
    )
    trainer = Trainer(
        engine,
        source,
        train,
        out_dir,
        tokenizer=tokenizer,
        metadata={"data_source": name, "tokenizer_kind": getattr(tokenizer, "kind", None), "objective": "mlm"},
        eval_hook=eval_hook,
        run_info=run_info,
    )
    try:
        results = trainer.fit(resume=resume)
    finally:
        if write_plots and trainer.is_main and out_dir.is_dir():
            records = read_metrics(out_dir)
            if records:
                from attnlab.viz.curves import plot_loss_curves

                plot_loss_curves({out_dir.name: records}, out_dir / "loss_curve.png")
        close = getattr(engine, "close", None)
        if close is not None:
            close()
    return results

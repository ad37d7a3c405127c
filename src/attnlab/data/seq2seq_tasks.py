"""Sequence-to-sequence tasks generated on the fly: reverse, sort, and number words -> digits.

Small algorithmic tasks on which an encoder-decoder learns in minutes on a CPU, and
whose answers can be checked exactly:

    reverse   "hello"                        -> "olleh"
    sort      "hello"                        -> "ehllo"
    numbers   "three hundred forty-two"      -> "342"

Reversal is the classic first seq2seq exercise (Sutskever et al. 2014 reversed their
*source* sentences; the UvA deep-learning course's transformer tutorial trains on
reversing digit strings and reaches 100% accuracy). Sorting needs the model to count
symbols; reading written-out numbers needs it to attend to the right words for each
digit (a scale word like "thousand" changes where every following digit goes).

Held-out examples are disjoint from training ones by construction: a source string
is "held out" when a hash of it falls below `held_out_fraction`; training never draws
a held-out source and evaluation never draws anything else. The held-out examples of
a task are the same on every run (a fixed seed), so exact-match numbers compare.

Both sides share one character vocabulary (`task_tokenizer`): `<pad> <bos> <eos> <unk>`
(ids 0-3), then the task's characters. Sources get `<eos>` appended (T5 style: it
marks where the source ends, which reversal needs); the decoder reads `<bos> y` and
is scored on `y <eos>`.

Notation: B batch, S source length, T target length.
"""

from __future__ import annotations

import hashlib
import logging
import string
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, ClassVar

import numpy as np

from attnlab.configs.base import IGNORE_INDEX  # label value that is not scored
from attnlab.errors import ConfigError, DataError

logger = logging.getLogger(__name__)

__all__ = [
    "TaskConfig",
    "TASK_PRESETS",
    "TASK_NAMES",
    "Task",
    "ReverseTask",
    "SortTask",
    "NumbersTask",
    "make_task",
    "number_to_words",
    "task_tokenizer",
    "TaskData",
    "SPECIAL_TOKENS",
    "IGNORE_INDEX",
]

SPECIAL_TOKENS = ("<pad>", "<bos>", "<eos>", "<unk>")  # ids 0, 1, 2, 3 of every task tokenizer
EVAL_SEED = 20240601  # fixed: the held-out examples are the same on every run
MAX_NUMBER_DIGITS = 9  # numbers: up to 999,999,999 ("... million ... thousand ...")


@dataclass(frozen=True)
class TaskConfig:
    """Which generated task to train on, and its sizes."""

    name: str = "reverse"  # reverse, sort or numbers
    min_length: int = 1  # shortest source: symbols (reverse, sort) or digits of the number (numbers)
    max_length: int | None = None  # longest source, same unit; None = the task's default (TASK_PRESETS)
    symbols: str | None = None  # reverse/sort: source alphabet (None = "a".."z"); numbers takes none
    held_out_fraction: float = 0.1  # share of all possible sources reserved for evaluation (hash split)
    num_eval_examples: int = 500  # held-out examples decoded for exact match at every evaluation

    def __post_init__(self) -> None:
        if self.name not in TASK_NAMES:
            raise ConfigError(f"unknown task {self.name!r}; choose one of: {', '.join(TASK_NAMES)}")
        if self.max_length is None:  # frozen: fill in the task's default once, here
            object.__setattr__(self, "max_length", max(TASK_PRESETS[self.name]["max_length"], self.min_length))
        if self.min_length < 1:
            raise ConfigError(f"task.min_length must be at least 1, got {self.min_length}")
        if self.max_length < self.min_length:
            raise ConfigError(f"task.max_length ({self.max_length}) must be >= task.min_length ({self.min_length})")
        if self.name == "numbers":
            if self.max_length > MAX_NUMBER_DIGITS:
                raise ConfigError(
                    f"task.max_length for numbers counts digits and must be at most {MAX_NUMBER_DIGITS}, "
                    f"got {self.max_length}"
                )
            if self.symbols is not None:
                raise ConfigError("task.symbols applies to the reverse and sort tasks, not numbers")
        elif self.symbols is not None:
            if len(self.symbols) < 2 or len(set(self.symbols)) != len(self.symbols):
                raise ConfigError(f"task.symbols must hold at least 2 distinct characters, got {self.symbols!r}")
            if any(c in self.symbols for c in "<>") or any(c.isspace() for c in self.symbols):
                raise ConfigError("task.symbols must not contain '<', '>' or whitespace")
        if not 0.0 < self.held_out_fraction < 1.0:
            raise ConfigError(f"task.held_out_fraction must be between 0 and 1, got {self.held_out_fraction}")
        if self.num_eval_examples < 1:
            raise ConfigError(f"task.num_eval_examples must be at least 1, got {self.num_eval_examples}")

    @classmethod
    def from_name(cls, name: str, **overrides: Any) -> TaskConfig:
        """The default settings of task `name` (reverse, sort, numbers), with fields overridden."""
        if name not in TASK_PRESETS:
            raise ConfigError(f"unknown task {name!r}; choose one of: {', '.join(TASK_NAMES)}")
        return cls(**{**TASK_PRESETS[name], **overrides, "name": name})


TASK_NAMES = ("reverse", "sort", "numbers")

TASK_PRESETS: dict[str, dict[str, Any]] = {
    # strings of 1-12 lowercase letters (26^12 sources: never memorised)
    "reverse": dict(min_length=1, max_length=12),
    "sort": dict(min_length=1, max_length=12),
    # whole numbers of 1-6 digits (0 .. 999,999), up to 64 characters when written out
    "numbers": dict(min_length=1, max_length=6),
}


# ---------------------------------------------------------------------------
# Number words
# ---------------------------------------------------------------------------

_ONES = (
    "zero one two three four five six seven eight nine ten eleven twelve thirteen fourteen "
    "fifteen sixteen seventeen eighteen nineteen"
).split()
_TENS = "_ _ twenty thirty forty fifty sixty seventy eighty ninety".split()
_SCALES = ("", "thousand", "million")


def _group_words(n: int) -> str:
    """0 < n < 1000 in words: 'three hundred forty-two'."""
    parts = []
    hundreds, rest = divmod(n, 100)
    if hundreds:
        parts.append(f"{_ONES[hundreds]} hundred")
    if rest >= 20:
        tens, ones = divmod(rest, 10)
        parts.append(_TENS[tens] + (f"-{_ONES[ones]}" if ones else ""))
    elif rest:
        parts.append(_ONES[rest])
    return " ".join(parts)


def number_to_words(n: int) -> str:
    """0 <= n < 10**9 in American English words, without 'and'.

    Examples: 0 -> 'zero', 42 -> 'forty-two', 1001 -> 'one thousand one',
    342506 -> 'three hundred forty-two thousand five hundred six'.
    """
    if not 0 <= n < 10**MAX_NUMBER_DIGITS:
        raise ValueError(f"number_to_words handles 0 <= n < 10**{MAX_NUMBER_DIGITS}, got {n}")
    if n == 0:
        return "zero"
    parts = []
    for scale in range(len(_SCALES) - 1, -1, -1):  # millions, thousands, units
        group = (n // 1000**scale) % 1000
        if group:
            parts.append(_group_words(group) + (f" {_SCALES[scale]}" if _SCALES[scale] else ""))
    return " ".join(parts)


# ---------------------------------------------------------------------------
# Tasks
# ---------------------------------------------------------------------------


class Task:
    """A generated task: draws (source, target) string pairs.

    Args:
        config: the `TaskConfig`.
    """

    name: ClassVar[str] = "base"
    description: ClassVar[str] = ""

    def __init__(self, config: TaskConfig):
        self.config = config

    def sample(self, rng: np.random.Generator) -> tuple[str, str]:
        """One (source, target) pair, drawn from all possible sources."""
        source = self.sample_source(rng)
        return source, self.target(source)

    def sample_source(self, rng: np.random.Generator) -> str:
        """One source string."""
        raise NotImplementedError

    def target(self, source: str) -> str:
        """The correct output for `source`."""
        raise NotImplementedError

    def source_alphabet(self) -> str:
        """Every character a source may hold."""
        raise NotImplementedError

    def target_alphabet(self) -> str:
        """Every character a target may hold."""
        raise NotImplementedError

    def max_source_chars(self) -> int:
        """Length of the longest possible source, in characters."""
        raise NotImplementedError

    def max_target_chars(self) -> int:
        """Length of the longest possible target, in characters."""
        raise NotImplementedError

    def is_held_out(self, source: str) -> bool:
        """True when `source` belongs to the evaluation split (a stable hash, not Python's `hash`)."""
        digest = hashlib.blake2b(f"{self.name}\0{source}".encode(), digest_size=8).digest()
        return int.from_bytes(digest, "big") / 2.0**64 < self.config.held_out_fraction


class _SymbolTask(Task):
    """A task on strings of symbols whose output has the same length as the input."""

    @property
    def symbols(self) -> str:
        return self.config.symbols or string.ascii_lowercase

    def sample_source(self, rng: np.random.Generator) -> str:
        length = int(rng.integers(self.config.min_length, self.config.max_length + 1))
        picks = rng.integers(0, len(self.symbols), length)
        return "".join(self.symbols[i] for i in picks)

    def source_alphabet(self) -> str:
        return self.symbols

    def target_alphabet(self) -> str:
        return self.symbols

    def max_source_chars(self) -> int:
        return self.config.max_length

    def max_target_chars(self) -> int:
        return self.config.max_length


class ReverseTask(_SymbolTask):
    """'hello' -> 'olleh'."""

    name = "reverse"
    description = "reverse a string of letters"

    def target(self, source: str) -> str:
        return source[::-1]


class SortTask(_SymbolTask):
    """'hello' -> 'ehllo' (by the order of `symbols`)."""

    name = "sort"
    description = "sort the letters of a string"

    def target(self, source: str) -> str:
        rank = {c: i for i, c in enumerate(self.symbols)}
        return "".join(sorted(source, key=rank.__getitem__))


class NumbersTask(Task):
    """'three hundred forty-two' -> '342'."""

    name = "numbers"
    description = "turn a number written out in English words into digits"

    def sample_source(self, rng: np.random.Generator) -> str:
        return number_to_words(self._sample_value(rng))

    def _sample_value(self, rng: np.random.Generator) -> int:
        # a digit count uniform in [min_length, max_length], then a value with that many digits
        digits = int(rng.integers(self.config.min_length, self.config.max_length + 1))
        low = 0 if digits == 1 else 10 ** (digits - 1)
        return int(rng.integers(low, 10**digits))

    def sample(self, rng: np.random.Generator) -> tuple[str, str]:
        value = self._sample_value(rng)
        return number_to_words(value), str(value)

    def target(self, source: str) -> str:
        value = self._words_to_number(source)
        return str(value)

    @staticmethod
    def _words_to_number(words: str) -> int:
        values = {w: i for i, w in enumerate(_ONES)} | {w: 10 * i for i, w in enumerate(_TENS) if w != "_"}
        total, group = 0, 0
        for word in words.replace("-", " ").split():
            if word in values:
                group += values[word]
            elif word == "hundred":
                group *= 100
            elif word in ("thousand", "million"):
                total += group * (1000 if word == "thousand" else 1_000_000)
                group = 0
            else:
                raise DataError(f"{word!r} is not a number word of the numbers task")
        return total + group

    def source_alphabet(self) -> str:
        return "".join(sorted(set(" -".join(_ONES + _TENS[2:] + ["hundred", "thousand", "million"]))))

    def target_alphabet(self) -> str:
        return string.digits

    def max_source_chars(self) -> int:
        # Groups of three digits are spelled independently, so the longest number of d
        # digits joins the longest spelling of each group (the leading group has fewer digits).
        d = self.config.max_length
        longest = [len(_group_words(g)) for g in range(1000)]
        parts = []
        for scale in range((d - 1) // 3, -1, -1):
            if scale == (d - 1) // 3:  # the leading group: 1..3 digits
                top = d - 3 * scale
                low = 10 ** (top - 1) if top > 1 else 1
                width = max(longest[low : 10**top])
            else:
                width = max(longest[1:])
            parts.append(width + (len(_SCALES[scale]) + 1 if scale else 0))
        return max(sum(parts) + len(parts) - 1, len("zero"))

    def max_target_chars(self) -> int:
        return self.config.max_length


_TASKS: dict[str, type[Task]] = {"reverse": ReverseTask, "sort": SortTask, "numbers": NumbersTask}


def make_task(config: TaskConfig | str) -> Task:
    """The task described by `config` (or the preset of that name)."""
    if isinstance(config, str):
        config = TaskConfig.from_name(config)
    return _TASKS[config.name](config)


def task_tokenizer(task: Task) -> Any:
    """The shared source/target character tokenizer of `task`: `<pad> <bos> <eos> <unk>`, then
    the task's characters in sorted order."""
    from attnlab.tokenizers import CharTokenizer

    chars = sorted(set(task.source_alphabet()) | set(task.target_alphabet()))
    return CharTokenizer(chars, specials=SPECIAL_TOKENS)


# ---------------------------------------------------------------------------
# Batches
# ---------------------------------------------------------------------------


class TaskData:
    """A task as a `BatchSource` for the Trainer, plus its fixed held-out examples.

    Batches are dicts of NumPy arrays named after `Seq2Seq.forward`'s arguments:
    input_ids (B, S) and attention_mask (B, S) for the source (`<eos>` appended, padded
    with `<pad>`), decoder_input_ids (B, T) = `<bos> y`, labels (B, T) = `y <eos>` with
    -100 on padding. Batches are padded to their longest row.

    Args:
        task: a `Task`.
        tokenizer: its tokenizer (`task_tokenizer(task)`, or one loaded from a checkpoint).
    """

    def __init__(self, task: Task, tokenizer: Any):
        self.task = task
        self.tokenizer = tokenizer
        self.pad_id, self.bos_id, self.eos_id = tokenizer.pad_id, tokenizer.bos_id, tokenizer.eos_id
        if None in (self.pad_id, self.bos_id, self.eos_id):
            raise DataError("the tokenizer of a seq2seq task needs <pad>, <bos> and <eos> tokens")
        known = set(getattr(tokenizer, "chars", []))
        missing = (set(task.source_alphabet()) | set(task.target_alphabet())) - known if known else set()
        if missing:
            raise DataError(
                f"the tokenizer does not know the task characters {''.join(sorted(missing))!r}; "
                "train a new model for this task instead of reusing this checkpoint"
            )
        self._eval_examples: list[tuple[str, str]] | None = None

    # -- examples ------------------------------------------------------------

    def _draw(self, rng: np.random.Generator, held_out: bool) -> tuple[str, str]:
        # rejection sampling; a task whose sources are (almost) all on one side cannot be split
        for _ in range(10_000):
            source, target = self.task.sample(rng)
            if self.task.is_held_out(source) == held_out:
                return source, target
        side = "held-out" if held_out else "training"
        raise DataError(
            f"the {self.task.name} task found no {side} source in 10,000 draws: it has too few distinct "
            "sources to split; raise task.max_length (or use more task.symbols)"
        )

    def train_examples(self, n: int, rng: np.random.Generator) -> list[tuple[str, str]]:
        """`n` random training pairs (never a held-out source)."""
        return [self._draw(rng, held_out=False) for _ in range(n)]

    @property
    def eval_examples(self) -> list[tuple[str, str]]:
        """The task's fixed held-out pairs (`num_eval_examples` distinct sources when the
        task has that many; fewer for tiny tasks)."""
        if self._eval_examples is None:
            rng = np.random.default_rng(EVAL_SEED)
            want = self.task.config.num_eval_examples
            seen: dict[str, str] = {}
            attempts = 0
            while len(seen) < want and attempts < 50 * want:
                source, target = self._draw(rng, held_out=True)
                seen.setdefault(source, target)
                attempts += 1
            if len(seen) < want:
                logger.warning(
                    "the %s task has only %d distinct held-out sources (asked for %d)", self.task.name, len(seen), want
                )
            self._eval_examples = list(seen.items())
        return self._eval_examples

    # -- batches ---------------------------------------------------------------

    def encode_sources(self, sources: Sequence[str]) -> dict[str, np.ndarray]:
        """input_ids (B, S) and attention_mask (B, S) of source strings (`<eos>` appended)."""
        rows = [self.tokenizer.encode(s) + [self.eos_id] for s in sources]
        width = max(len(r) for r in rows)
        ids = np.full((len(rows), width), self.pad_id, dtype=np.int64)
        mask = np.zeros((len(rows), width), dtype=bool)
        for i, r in enumerate(rows):
            ids[i, : len(r)] = r
            mask[i, : len(r)] = True
        return {"input_ids": ids, "attention_mask": mask}

    def encode_pairs(self, pairs: Sequence[tuple[str, str]]) -> dict[str, np.ndarray]:
        """A padded training/evaluation batch of (source, target) pairs."""
        batch = self.encode_sources([s for s, _ in pairs])
        targets = [self.tokenizer.encode(t) for _, t in pairs]
        width = max(len(t) for t in targets) + 1
        decoder_input_ids = np.full((len(pairs), width), self.pad_id, dtype=np.int64)
        labels = np.full((len(pairs), width), IGNORE_INDEX, dtype=np.int64)
        for i, t in enumerate(targets):
            decoder_input_ids[i, : len(t) + 1] = [self.bos_id] + t  # <bos> y1 .. yn
            labels[i, : len(t) + 1] = t + [self.eos_id]  # y1 .. yn <eos>
        batch["decoder_input_ids"] = decoder_input_ids
        batch["labels"] = labels
        return batch

    def train_batch(self, batch_size: int, rng: np.random.Generator) -> dict[str, np.ndarray]:
        """A random batch of training pairs."""
        return self.encode_pairs(self.train_examples(batch_size, rng))

    def eval_batches(
        self, batch_size: int, num_batches: int, split: str = "val", seed: int = 0
    ) -> list[dict[str, np.ndarray]]:
        """Fixed batches: the held-out examples for "val", a seeded training sample for "train"."""
        if split == "val":
            examples = self.eval_examples
        elif split == "train":
            examples = self.train_examples(batch_size * num_batches, np.random.default_rng(seed))
        else:
            raise ConfigError(f"unknown split {split!r}; choose val or train")
        examples = examples[: batch_size * num_batches]
        return [self.encode_pairs(examples[i : i + batch_size]) for i in range(0, len(examples), batch_size)]

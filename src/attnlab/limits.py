"""Bounds on every number a user types: seeds, counts and finite floats, in one place.

Each count a command takes (tokens to generate, samples, steps, epochs, batch sizes,
beam widths, figure sizes) has a documented upper bound here, so a typo such as
`--max-new-tokens 10000000000` is refused at once with one line instead of running for
days or exhausting memory. Config dataclasses call the `check_*` functions from their
`__post_init__`; the CLI uses the argparse types `int_arg`, `float_arg` and `seed_arg`,
which turn the same checks into argparse's one-line usage error (exit code 2).

Seeds are whole numbers from 0 to 2**32 - 1 (`SEED_MAX`): NumPy's legacy seeding
(`np.random.seed`, used by `attnlab.utils.seed_everything` and many libraries) accepts
exactly that range, `torch.manual_seed` rejects values outside [-2**63, 2**64), and a
negative or larger seed would otherwise be folded (`seed % 2**32`) onto a seed that some
other run already used. One range that every generator accepts keeps a seed meaning one
run, on both engines.

Torch-free on purpose: the NumPy engine and the config dataclasses import it.
"""

from __future__ import annotations

import argparse
import math
from collections.abc import Callable
from typing import Any

from attnlab.errors import ConfigError

SEED_MAX = 2**32 - 1  # largest seed: NumPy's legacy seeding takes 0 .. 2**32 - 1

# Upper bounds of the counts a user types (each documented in the flag's --help).
MAX_NEW_TOKENS = 100_000  # generate / translate: tokens per sample
MAX_NUM_SAMPLES = 1_000  # generate --num-samples
MAX_ITERS = 10_000_000  # optimizer steps of one run (train.max_iters and the other step counts)
MAX_BATCH_SIZE = 65_536  # sequences (or images) per micro-batch while training
MAX_EVAL_BATCH_SIZE = 4_096  # windows / texts per forward pass when evaluating or embedding
MAX_GRAD_ACCUM = 10_000  # train.grad_accum_steps
MAX_EVAL_ITERS = 100_000  # train.eval_iters
MAX_EPOCHS = 100_000  # compare / probe epochs
MAX_BEAM = 64  # translate --beam
MAX_SECONDS = 7 * 24 * 3600.0  # demo --seconds, train.max_time: one week
MAX_DPI = 1_200  # figure resolution
MIN_DPI = 20  # = the figure writers own bound (viz._mpl, foundations.figures)
MAX_VOCAB = 1_000_000  # data.vocab_size (word / BPE targets)
MAX_TOP_K = 1_000_000  # generate --top-k (larger than the vocabulary keeps every token)
MAX_LR = 100.0  # learning rates
MIN_TEMPERATURE = 1e-20  # a smaller positive one is a typo for greedy (0 means greedy): refused by name
MAX_TEMPERATURE = 1_000.0
MAX_INDEX = 100_000  # layer / head indices (negative ones count from the end)
MAX_PORT = 65_535  # app --port: TCP ports are 1 .. 65,535
MAX_IMAGES = 10_000_000  # compare mnist --num-train / --num-test
MAX_SEQUENCES = 10_000_000  # probe --max-sequences, --max-train-residues
MAX_COMPARE_SEQ_LEN = 4_096  # compare sequence --seq-len and --timing-lengths (attention is T x T)
MAX_SYMBOLS = 100_000  # compare sequence --num-symbols
MAX_CROP = 100_000  # probe --crop-length (residues)
MAX_PROBE_SEEDS = 100  # probe --seeds
MAX_TABLE_POSITIONS = 100_000  # viz positions --positions (positions x --dim is bounded again when drawn)
MAX_TABLE_DIM = 100_000  # viz positions --dim, --head-dim
MAX_RANDOM_DIM = 4_096  # viz embeddings --random-dims (2,000 pairs of vectors a dimension)
MAX_RANDOM_DIMS = 64  # how many --random-dims
MAX_PLOT_RANGE = 1e6  # viz activations --x-min / --x-max, viz positions --period
MAX_ROPE_BASE = 1e9  # RoPE frequency bases (Llama 3 uses 500,000)
MAX_LENGTH_PENALTY = 100.0  # translate --length-penalty (its absolute value)

_MAX_DIGITS = 40  # longer digit strings are refused before int() parses them


def _fmt(value: float) -> str:
    if isinstance(value, int) or (isinstance(value, float) and value.is_integer() and abs(value) < 1e16):
        return f"{int(value):,}"
    return f"{value:g}"


def _range_text(low: float | None, high: float | None) -> str:
    if low is not None and high is not None:
        return f"from {_fmt(low)} to {_fmt(high)}"
    if low is not None:
        return f"at least {_fmt(low)}"
    if high is not None:
        return f"at most {_fmt(high)}"
    return "any finite number"


def check_int(value: Any, name: str, low: int | None = None, high: int | None = None, *, hint: str = "") -> int:
    """Return `value` when it is a whole number in [low, high]; else raise `ConfigError` naming `name`.

    Args:
        value: the number (bool is refused: `True` is not a count).
        name: what the user typed, e.g. `--max-new-tokens` or `train.max_iters`.
        low, high: inclusive bounds (None = unbounded on that side).
        hint: appended to the message (how to fix it).
    """
    if isinstance(value, bool) or not isinstance(value, int):
        raise ConfigError(f"{name} must be a whole number {_range_text(low, high)}, got {value!r}")
    if (low is not None and value < low) or (high is not None and value > high):
        shown = _fmt(value) if len(str(abs(value))) <= _MAX_DIGITS else f"a {len(str(abs(value)))}-digit number"
        raise ConfigError(f"{name} must be {_range_text(low, high)}, got {shown}" + (f"; {hint}" if hint else ""))
    return value


def check_float(
    value: Any,
    name: str,
    low: float | None = None,
    high: float | None = None,
    *,
    low_open: bool = False,
    high_open: bool = False,
    hint: str = "",
) -> float:
    """Return `value` as a float when it is finite and within the bounds; else raise `ConfigError`.

    Args:
        low_open, high_open: exclude the bound itself (e.g. a learning rate must be > 0).
    """
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise ConfigError(f"{name} must be a number, got {value!r}")
    try:
        out = float(value)
    except OverflowError:  # an int too large for a float
        out = math.inf if value > 0 else -math.inf
    if not math.isfinite(out):
        raise ConfigError(f"{name} must be a finite number, got {out}" + (f"; {hint}" if hint else ""))
    bad_low = low is not None and (out <= low if low_open else out < low)
    bad_high = high is not None and (out >= high if high_open else out > high)
    if bad_low or bad_high:
        parts = []
        if low is not None:
            parts.append(f"{'greater than' if low_open else 'at least'} {_fmt(low)}")
        if high is not None:
            parts.append(f"{'less than' if high_open else 'at most'} {_fmt(high)}")
        text = " and ".join(parts)
        raise ConfigError(f"{name} must be {text}, got {out:g}" + (f"; {hint}" if hint else ""))
    return out


def check_seed(value: Any, name: str = "seed") -> int:
    """A seed: a whole number from 0 to `SEED_MAX` (2**32 - 1); see the module docstring for why."""
    return check_int(
        value,
        name,
        0,
        SEED_MAX,
        hint="seeds are 0 .. 4,294,967,295 (2**32 - 1), the range every random generator accepts",
    )


def parse_int(text: str, name: str) -> int:
    """A whole number typed on the command line (`1000`, `1_000`, `+5`, `-3`)."""
    stripped = text.strip()
    if len(stripped) > _MAX_DIGITS:
        raise ConfigError(f"{name} expects a whole number, got a {len(stripped)}-character value")
    try:
        return int(stripped)
    except ValueError:
        raise ConfigError(f"{name} expects a whole number, got {text!r}") from None


def parse_float(text: str, name: str) -> float:
    """A finite number typed on the command line; `nan` and `inf` are refused."""
    stripped = text.strip()
    if len(stripped) > 100:
        raise ConfigError(f"{name} expects a number, got a {len(stripped)}-character value")
    try:
        value = float(stripped)
    except ValueError:
        raise ConfigError(f"{name} expects a number, got {text!r}") from None
    if not math.isfinite(value):
        raise ConfigError(f"{name} must be a finite number, got {text.strip()!r}")
    return value


def _argparse_type(check: Callable[[str], Any], label: str) -> Callable[[str], Any]:
    def convert(text: str) -> Any:
        try:
            return check(text)
        except ConfigError as e:
            raise argparse.ArgumentTypeError(str(e)) from None

    convert.__name__ = label  # argparse names the type in some messages
    return convert


def int_arg(low: int | None = None, high: int | None = None, *, name: str = "the value") -> Callable[[str], int]:
    """An argparse `type=` for a whole number in [low, high] (argparse prefixes the flag's name)."""
    return _argparse_type(lambda t: check_int(parse_int(t, name), name, low, high), "whole number")


def float_arg(
    low: float | None = None,
    high: float | None = None,
    *,
    low_open: bool = False,
    high_open: bool = False,
    name: str = "the value",
) -> Callable[[str], float]:
    """An argparse `type=` for a finite number within the bounds (nan and inf are refused)."""
    return _argparse_type(
        lambda t: check_float(parse_float(t, name), name, low, high, low_open=low_open, high_open=high_open),
        "number",
    )


def seed_arg(text: str) -> int:
    """argparse `type=` for a seed (0 .. 2**32 - 1)."""
    try:
        return check_seed(parse_int(text, "the seed"), "the seed")
    except ConfigError as e:
        raise argparse.ArgumentTypeError(str(e)) from None


seed_arg.__name__ = "seed"

SEED_HELP = "0 to 4,294,967,295"

"""attnlab.limits: the bounds of every number a user types, and their argparse types."""

import argparse
import math

import pytest

from attnlab import limits
from attnlab.errors import ConfigError

# --- check_int -------------------------------------------------------------------------------


def test_check_int_accepts_whole_numbers_in_range():
    assert limits.check_int(5, "n", 1, 10) == 5
    assert limits.check_int(1, "n", 1, 10) == 1 and limits.check_int(10, "n", 1, 10) == 10
    assert limits.check_int(-(10**50), "n") == -(10**50)  # unbounded on both sides


@pytest.mark.parametrize("value", [True, False, 1.0, 2.5, "3", None, [1]])
def test_check_int_refuses_what_is_not_an_int(value):
    with pytest.raises(ConfigError, match=r"^n must be a whole number from 1 to 10, got"):
        limits.check_int(value, "n", 1, 10)


def test_check_int_names_the_range_and_the_hint():
    with pytest.raises(ConfigError) as e:
        limits.check_int(0, "--num-samples", 1, 1_000, hint="ask for fewer")
    assert str(e.value) == "--num-samples must be from 1 to 1,000, got 0; ask for fewer"
    with pytest.raises(ConfigError, match=r"must be at least 1, got -3"):
        limits.check_int(-3, "x", 1)
    with pytest.raises(ConfigError, match=r"must be at most 7, got 8"):
        limits.check_int(8, "x", None, 7)


def test_check_int_shows_a_huge_number_by_its_length():
    with pytest.raises(ConfigError) as e:
        limits.check_int(10**60, "n", 0, 10)
    assert "a 61-digit number" in str(e.value)
    assert len(str(e.value)) < 100


# --- check_float -----------------------------------------------------------------------------


@pytest.mark.parametrize("value", [math.nan, math.inf, -math.inf])
def test_check_float_refuses_nan_and_inf(value):
    with pytest.raises(ConfigError, match=r"must be a finite number"):
        limits.check_float(value, "lr")


def test_check_float_bounds_open_and_closed():
    assert limits.check_float(1, "lr", 0.0, 1.0) == 1.0 and isinstance(limits.check_float(1, "lr"), float)
    with pytest.raises(ConfigError, match=r"lr must be greater than 0 and at most 100, got 0"):
        limits.check_float(0.0, "lr", 0.0, 100.0, low_open=True)
    with pytest.raises(ConfigError, match=r"less than 1"):
        limits.check_float(1.0, "p", 0.0, 1.0, high_open=True)
    with pytest.raises(ConfigError, match=r"at least 0"):
        limits.check_float(-1e-300, "wd", 0.0)


def test_check_float_handles_ints_too_large_for_a_float():
    with pytest.raises(ConfigError, match=r"finite"):
        limits.check_float(10**400, "x")
    with pytest.raises(ConfigError, match=r"finite"):
        limits.check_float(-(10**400), "x")


@pytest.mark.parametrize("value", [True, "1.0", None])
def test_check_float_refuses_non_numbers(value):
    with pytest.raises(ConfigError, match=r"must be a number"):
        limits.check_float(value, "x")


# --- seeds -----------------------------------------------------------------------------------


@pytest.mark.parametrize("seed", [0, 1337, 2**32 - 1])
def test_check_seed_accepts_the_range_every_generator_takes(seed):
    assert limits.check_seed(seed) == seed


@pytest.mark.parametrize("seed", [-1, 2**32, 2**40, 2**64, -(2**63)])
def test_check_seed_refuses_the_rest_naming_the_range(seed):
    with pytest.raises(ConfigError) as e:
        limits.check_seed(seed, "train.seed")
    assert "train.seed must be from 0 to 4,294,967,295" in str(e.value)


def test_every_seed_the_check_accepts_seeds_numpy_and_torch():
    import numpy as np
    import torch

    for seed in (0, limits.SEED_MAX):
        np.random.seed(limits.check_seed(seed))
        torch.manual_seed(limits.check_seed(seed))
    with pytest.raises(ValueError):
        np.random.seed(limits.SEED_MAX + 1)  # why the range ends where it does


# --- parsing text ----------------------------------------------------------------------------


@pytest.mark.parametrize("text, value", [("12", 12), (" 7 ", 7), ("+5", 5), ("-3", -3), ("1_000", 1000)])
def test_parse_int(text, value):
    assert limits.parse_int(text, "n") == value


@pytest.mark.parametrize("text", ["", "1.5", "1e3", "abc", "0x10", "nan", "inf", "1 000"])
def test_parse_int_refuses_what_is_not_a_whole_number(text):
    with pytest.raises(ConfigError, match=r"n expects a whole number"):
        limits.parse_int(text, "n")


def test_parse_int_refuses_40_plus_digits_before_parsing():
    with pytest.raises(ConfigError, match=r"got a 41-character value"):
        limits.parse_int("9" * 41, "n")
    with pytest.raises(ConfigError, match=r"got a 5000-character value"):  # beyond Python's int() digit limit
        limits.parse_int("9" * 5000, "n")
    assert limits.parse_int("9" * 40, "n") == int("9" * 40)


@pytest.mark.parametrize("text, value", [("0.5", 0.5), ("1e-3", 1e-3), (" -2 ", -2.0), ("1e308", 1e308)])
def test_parse_float(text, value):
    assert limits.parse_float(text, "x") == value


@pytest.mark.parametrize("text", ["nan", "NaN", "inf", "-inf", "Infinity", "1e309", "-1e400"])
def test_parse_float_refuses_nan_and_inf(text):
    with pytest.raises(ConfigError, match=r"x must be a finite number"):
        limits.parse_float(text, "x")


@pytest.mark.parametrize("text", ["", "one", "1,5", "0x1p3"])
def test_parse_float_refuses_non_numbers(text):
    with pytest.raises(ConfigError, match=r"x expects a number"):
        limits.parse_float(text, "x")


# --- argparse types --------------------------------------------------------------------------


def _parser() -> argparse.ArgumentParser:
    class Raising(argparse.ArgumentParser):
        def error(self, message):
            raise ValueError(message)

    p = Raising(prog="t")
    p.add_argument("--n", type=limits.int_arg(1, 10))
    p.add_argument("--x", type=limits.float_arg(0.0, 1.0, low_open=True))
    p.add_argument("--seed", type=limits.seed_arg)
    return p


def test_argparse_types_convert_good_values():
    args = _parser().parse_args(["--n", "10", "--x", "1", "--seed", "4294967295"])
    assert (args.n, args.x, args.seed) == (10, 1.0, 2**32 - 1)


@pytest.mark.parametrize(
    "argv, expected",
    [
        (["--n", "0"], "argument --n: the value must be from 1 to 10, got 0"),
        (["--n", "11"], "argument --n: the value must be from 1 to 10, got 11"),
        (["--n", "2.5"], "argument --n: the value expects a whole number, got '2.5'"),
        (["--n", "True"], "argument --n: the value expects a whole number, got 'True'"),
        (["--n", "1" * 45], "argument --n: the value expects a whole number, got a 45-character value"),
        (["--x=nan"], "argument --x: the value must be a finite number, got 'nan'"),
        (["--x=inf"], "argument --x: the value must be a finite number, got 'inf'"),
        (["--x", "0"], "argument --x: the value must be greater than 0 and at most 1, got 0"),
        (["--x", "1e308"], "argument --x: the value must be greater than 0 and at most 1, got 1e+308"),
        (["--seed", "-5"], "argument --seed: the seed must be from 0 to 4,294,967,295, got -5"),
        (["--seed", str(2**40)], "argument --seed: the seed must be from 0 to 4,294,967,295, got 1,099,511,627,776"),
    ],
)
def test_argparse_types_refuse_bad_values_in_one_line(argv, expected):
    with pytest.raises(ValueError) as e:
        _parser().parse_args(argv)
    assert str(e.value).startswith(expected), str(e.value)
    assert "\n" not in str(e.value)


def test_argparse_types_refuse_bool_objects():
    # A Python caller can hand a parsed value back to the checks: True is not a count.
    with pytest.raises(ConfigError):
        limits.check_int(True, "--num-samples", 1, 10)
    with pytest.raises(ConfigError):
        limits.check_seed(False)
    with pytest.raises(ConfigError):
        limits.check_float(True, "--lr")


def test_every_bound_is_a_positive_number():
    names = [n for n in dir(limits) if n.startswith(("MAX_", "MIN_"))]
    assert len(names) > 15
    for n in names:
        value = getattr(limits, n)
        assert isinstance(value, (int, float)) and not isinstance(value, bool) and value > 0, n

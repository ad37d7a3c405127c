"""`attnlab scale`: the scaling study (model size x data), its fitted law and figures.

    attnlab scale --out DIR [--data FILE] [--quick] [--sizes 1x32,2x48,...] [--tokens 250k,1M,...]
                  [--seeds 0,1,2] [--device auto] [--bootstrap 100]

The work happens in `attnlab.train.scale.run_scaling_study`; this module turns flags into
its `ScaleConfig` and prints the report and the files written.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Callable
from typing import Any

from attnlab import limits
from attnlab.cli.train_common import add_force_flag
from attnlab.errors import ConfigError

EXIT_INTERRUPTED = 130


def _list_of(parse: Callable[[str], Any], what: str, example: str) -> Callable[[str], tuple[Any, ...]]:
    """argparse `type=` for a comma-separated list of `parse`d values."""
    from attnlab.train.scale import MAX_GRID

    def convert(text: str) -> tuple[Any, ...]:
        parts = [p for p in text.split(",")]
        if len(parts) > MAX_GRID:
            raise argparse.ArgumentTypeError(f"give at most {MAX_GRID} {what}, got {len(parts)}")
        if any(not p.strip() for p in parts):
            shown = text if len(text) <= 60 else text[:57] + "..."
            raise argparse.ArgumentTypeError(f"expected comma-separated {what} such as {example}, got {shown!r}")
        try:
            values = tuple(parse(p) for p in parts)
        except ConfigError as e:
            raise argparse.ArgumentTypeError(str(e)) from None
        if len(set(values)) != len(values):
            raise argparse.ArgumentTypeError(f"each of the {what} may be given once, got {text.strip()!r}")
        return values

    convert.__name__ = what
    return convert


def _seed(text: str) -> int:
    return limits.check_seed(limits.parse_int(text, "a seed"), "a seed")


def register(sub: argparse._SubParsersAction) -> None:
    """Add the `scale` command to the top-level parser."""
    from attnlab.train.scale import (
        DEFAULT_SIZES,
        DEFAULT_TOKENS,
        MAX_BOOTSTRAP,
        QUICK_SIZES,
        QUICK_TOKENS,
        parse_size,
        parse_tokens,
        token_label,
    )

    p = sub.add_parser(
        "scale",
        help="scaling study: GPT sizes x token budgets, the fitted L(N, D) and its held-out prediction",
        description=(
            "Train a grid of GPT sizes x token budgets on one corpus (each an ordinary, resumable run folder in "
            "DIR/runs; finished ones are skipped when the study runs again), fit L(N, D) = E + A/N^alpha + "
            "B/D^beta (Hoffmann et al. 2022, approach 3) with bootstrap intervals, predict the largest-compute "
            "run from the others, and write DIR/runs.csv, fit.csv, report.md, results.json and figures of loss "
            "against parameters, tokens and compute."
        ),
    )
    p.add_argument("--out", required=True, metavar="DIR", help="the study folder (created; run again to resume)")
    add_force_flag(p)
    p.add_argument(
        "--data", default=None, help="corpus name (pydoc [default], shakespeare) or a UTF-8 text file to train on"
    )
    p.add_argument(
        "--quick",
        action="store_true",
        help=f"the tiny grid ({','.join(QUICK_SIZES)} x {','.join(map(token_label, QUICK_TOKENS))} tokens, "
        "context 32): a smoke test in seconds",
    )
    p.add_argument(
        "--sizes",
        type=_list_of(parse_size, "model sizes", "1x32,2x48"),
        default=None,
        help=f"model sizes LAYERSxWIDTH, comma-separated (default {','.join(DEFAULT_SIZES)}; heads of 16 channels)",
    )
    p.add_argument(
        "--tokens",
        type=_list_of(parse_tokens, "token budgets", "250k,1M"),
        default=None,
        help=f"training-token budgets, comma-separated, e.g. 250k,1M (default {','.join(map(token_label, DEFAULT_TOKENS))})",
    )
    p.add_argument(
        "--seeds",
        type=_list_of(_seed, "seeds", "0,1,2"),
        default=(0,),
        help=f"seeds, comma-separated, each {limits.SEED_HELP}: one run per seed at every grid point (default 0)",
    )
    p.add_argument("--device", default="auto", help="auto [default], cpu, cuda, cuda:N or mps")
    p.add_argument(
        "--bootstrap",
        type=limits.int_arg(0, MAX_BOOTSTRAP),
        default=None,
        help=f"bootstrap refits for the confidence intervals, 0 to {MAX_BOOTSTRAP:,} (default 100; --quick 20)",
    )
    p.add_argument("--no-figures", action="store_true", help="skip the three figures")
    p.add_argument("--no-progress", action="store_true", help="hide the progress bars")
    p.set_defaults(func=cmd_scale)


def cmd_scale(args: argparse.Namespace) -> int:
    from attnlab.train.scale import ScaleConfig, run_scaling_study
    from attnlab.train.trainer import TrainingInterrupted

    config = ScaleConfig(
        sizes=args.sizes,
        tokens=args.tokens,
        seeds=args.seeds,
        data=args.data,
        quick=args.quick,
        device=args.device,
        bootstrap=args.bootstrap,
        progress=not args.no_progress,
        figures=not args.no_figures,
    )
    try:
        out = run_scaling_study(args.out, config, force=args.force)
    except TrainingInterrupted as e:
        print(f"attnlab: {e}; run the same `attnlab scale` again to continue the study", file=sys.stderr)
        return EXIT_INTERRUPTED
    print()
    print(out["report"], end="")
    print()
    print(f"study folder: {out['out_dir']} ({len(out['rows'])} runs, {out['seconds']:.0f} s)")
    for f in out["files"]:
        print(f"  {f}")
    return 0

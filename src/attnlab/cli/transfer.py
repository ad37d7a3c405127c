"""`attnlab transfer`: pretrain a GPT on one corpus, fine-tune it on another, against training from scratch.

    attnlab transfer --out DIR [--target FILE|shakespeare|licenses] [--source FILE|pydoc]
                     [--target-sizes 5k,20k,80k,320k] [--seeds 0,1] [--size 2x48]
                     [--pretrain-tokens 2M] [--finetune-steps 500] [--quick] [--force] [--device auto]

The work happens in `attnlab.train.transfer.run_transfer_study`; this module turns flags into
its `TransferConfig` and prints the report and the files written.
"""

from __future__ import annotations

import argparse
import sys

from attnlab import limits
from attnlab.cli.scale import _list_of, _seed

EXIT_INTERRUPTED = 130
FORCE_HELP = (
    "write into --out even if it holds files attnlab did not write (they are kept), and set aside "
    "(as NAME.replaced) and train again any run of the study trained with other settings"
)


def _one(parse, what: str):
    """argparse `type=` for one value of `parse` (its ConfigError becomes argparse's one-line error)."""
    from attnlab.errors import ConfigError

    def convert(text: str):
        try:
            return parse(text)
        except ConfigError as e:
            raise argparse.ArgumentTypeError(str(e)) from None

    convert.__name__ = what
    return convert


def register(sub: argparse._SubParsersAction) -> None:
    """Add the `transfer` command to the top-level parser."""
    from attnlab.train.scale import parse_size, parse_tokens, token_label
    from attnlab.train.transfer import (
        DEFAULT_FINETUNE_STEPS,
        DEFAULT_PRETRAIN_TOKENS,
        DEFAULT_SEEDS,
        DEFAULT_SIZE,
        DEFAULT_TARGET_SIZES,
        LICENSES,
        QUICK_FINETUNE_STEPS,
        QUICK_PRETRAIN_TOKENS,
        QUICK_SIZE,
        QUICK_TARGET_SIZES,
        parse_target_size,
    )

    p = sub.add_parser(
        "transfer",
        help="transfer study: pretrain, fine-tune on a second corpus at several data sizes, vs from scratch",
        description=(
            "Pretrain a GPT on a source corpus, then fine-tune it on the first S characters of a target corpus for "
            "several sizes S, against the same model trained from scratch on those S characters for the same "
            "steps; both are evaluated on one fixed validation set of the target (its last 10%). Every run is an "
            "ordinary, resumable run folder in DIR/runs (finished ones are skipped when the study runs again). "
            "Writes DIR/runs.csv, curves.csv (validation loss vs steps), gains.csv (the transfer gain, scratch "
            "minus fine-tuned, per size with its spread over seeds), report.md, results.json and two figures."
        ),
    )
    p.add_argument("--out", required=True, metavar="DIR", help="the study folder (created; run again to resume)")
    p.add_argument("--force", action="store_true", help=FORCE_HELP)
    p.add_argument(
        "--target",
        default=None,
        metavar="FILE|CORPUS",
        help="the text to fine-tune on: a UTF-8 file, shakespeare (downloaded once) or licenses (the license "
        f"texts the installed packages ship; offline); default shakespeare when it is cached, else {LICENSES}",
    )
    p.add_argument(
        "--source", default=None, metavar="FILE|CORPUS", help="the text to pretrain on (default: the embedded pydoc)"
    )
    p.add_argument(
        "--quick",
        action="store_true",
        help=f"the tiny study (size {QUICK_SIZE}, context 32, {token_label(QUICK_PRETRAIN_TOKENS)} pretraining "
        f"characters, {QUICK_FINETUNE_STEPS} steps, sizes {','.join(map(token_label, QUICK_TARGET_SIZES))}, "
        "seed 0): a smoke test in seconds",
    )
    p.add_argument(
        "--target-sizes",
        type=_list_of(parse_target_size, "target sizes", "5k,20k,80k"),
        default=None,
        help=f"characters of target training text, comma-separated (default "
        f"{','.join(map(token_label, DEFAULT_TARGET_SIZES))}, those that fit the target)",
    )
    p.add_argument(
        "--seeds",
        type=_list_of(_seed, "seeds", "0,1,2"),
        default=None,
        help=f"seeds, comma-separated, each {limits.SEED_HELP}: one pretraining, fine-tuning and scratch run a "
        f"seed (default {','.join(map(str, DEFAULT_SEEDS))})",
    )
    p.add_argument(
        "--size",
        type=_one(parse_size, "model size"),
        default=None,
        help=f"the GPT size LAYERSxWIDTH of every run (default {DEFAULT_SIZE}; heads of 16 channels)",
    )
    p.add_argument(
        "--pretrain-tokens",
        type=_one(parse_tokens, "token budget"),
        default=None,
        help=f"pretraining characters, e.g. 2M (default {token_label(DEFAULT_PRETRAIN_TOKENS)})",
    )
    p.add_argument(
        "--finetune-steps",
        type=limits.int_arg(1, limits.MAX_ITERS),
        default=None,
        help=f"optimizer steps of every fine-tuning and scratch run (default {DEFAULT_FINETUNE_STEPS})",
    )
    p.add_argument(
        "--finetune-lr",
        type=limits.float_arg(0.0, limits.MAX_LR, low_open=True),
        default=1e-3,
        help="peak learning rate of fine-tuning (default 1e-3)",
    )
    p.add_argument(
        "--lr",
        type=limits.float_arg(0.0, limits.MAX_LR, low_open=True),
        default=3e-3,
        help="peak learning rate of pretraining and of the scratch runs (default 3e-3)",
    )
    p.add_argument("--device", default="auto", help="auto [default], cpu, cuda, cuda:N or mps")
    p.add_argument("--no-figures", action="store_true", help="skip the two figures")
    p.add_argument("--no-progress", action="store_true", help="hide the progress bars")
    p.set_defaults(func=cmd_transfer)


def cmd_transfer(args: argparse.Namespace) -> int:
    from attnlab.train.trainer import TrainingInterrupted
    from attnlab.train.transfer import TransferConfig, run_transfer_study

    config = TransferConfig(
        source=args.source,
        target=args.target,
        target_sizes=args.target_sizes,
        seeds=args.seeds,
        size=args.size.name if args.size is not None else None,
        pretrain_tokens=args.pretrain_tokens,
        finetune_steps=args.finetune_steps,
        quick=args.quick,
        lr=args.lr,
        finetune_lr=args.finetune_lr,
        device=args.device,
        progress=not args.no_progress,
        figures=not args.no_figures,
    )
    try:
        out = run_transfer_study(args.out, config, force=args.force)
    except TrainingInterrupted as e:
        print(f"attnlab: {e}; run the same `attnlab transfer` again to continue the study", file=sys.stderr)
        return EXIT_INTERRUPTED
    print()
    print(out["report"], end="")
    print()
    print(f"study folder: {out['out_dir']} ({len(out['rows'])} runs, {out['seconds']:.0f} s)")
    for f in out["files"]:
        print(f"  {f}")
    return 0

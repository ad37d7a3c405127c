"""`attnlab figures ...`: write the figures of a lab into a folder.

    attnlab figures foundations --out figures/foundations [--dpi 150] [--no-svg] [--only NAME ...]

Prints one written path a line. Registering the commands imports nothing heavy;
NumPy and matplotlib load only when figures are drawn.
"""

from __future__ import annotations

import argparse

from attnlab import limits
from attnlab.cli.train_common import add_force_flag
from attnlab.errors import ConfigError
from attnlab.foundations import DEFAULT_DPI, FIGURE_NAMES


def register(subparsers) -> None:
    """Add the `figures` command group to the top-level parser."""
    parser = subparsers.add_parser(
        "figures",
        help="write the figures of a lab (PNG, and SVG for line plots)",
        description="Write the figures of a lab into a folder and print the files written.",
    )
    labs = parser.add_subparsers(dest="lab", metavar="LAB", parser_class=type(parser))
    parser.set_defaults(func=_no_lab)

    foundations = labs.add_parser(
        "foundations",
        help="vectors, regression and regularisation, activations, optimizers on loss surfaces",
        description=(
            "Write the foundations lab's figures: nearest neighbours, ridge/lasso paths and weight decay, "
            "activation functions, optimizer trajectories and loss curves, mini-batch SGD, the lr schedule."
        ),
    )
    foundations.add_argument("--out", required=True, metavar="DIR", help="folder to write into (created if missing)")
    add_force_flag(foundations)
    foundations.add_argument(
        "--dpi",
        type=limits.int_arg(limits.MIN_DPI, limits.MAX_DPI),
        default=DEFAULT_DPI,
        help=f"PNG resolution, {limits.MIN_DPI} to {limits.MAX_DPI:,} (default {DEFAULT_DPI})",
    )
    foundations.add_argument(
        "--no-svg", action="store_true", help="write PNG only (by default line plots also get an SVG)"
    )
    foundations.add_argument(
        "--only",
        nargs="+",
        choices=FIGURE_NAMES,
        metavar="NAME",
        help=f"write only these figures: {', '.join(FIGURE_NAMES)}",
    )
    foundations.set_defaults(func=_run_foundations)


def _no_lab(args: argparse.Namespace) -> int:
    raise ConfigError("choose a lab, e.g. `attnlab figures foundations --out DIR` (see attnlab figures --help)")


def _run_foundations(args: argparse.Namespace) -> int:
    from attnlab.foundations.figures import write_all_figures

    write_all_figures(
        args.out,
        dpi=args.dpi,
        svg=not args.no_svg,
        names=args.only,
        on_written=lambda path: print(path, flush=True),
        force=args.force,
    )
    return 0

"""The `attnlab` command line: arguments -> config dataclasses -> library calls.

Each command group lives in its own module of this package and exposes
`register(subparsers)`; this file only wires them together and turns user
errors (`AttnlabError`) into one line on stderr and exit code 2.
"""

from __future__ import annotations

import argparse
import importlib
import logging
import os
import sys

from attnlab import __version__
from attnlab.errors import AttnlabError

# Command modules, in the order their commands appear in `attnlab --help`.
COMMAND_MODULES = [
    "attnlab.cli.lm",  # demo, train, generate, eval
    "attnlab.cli.interop",  # convert, embed
    "attnlab.cli.seq2seq",  # translate
    "attnlab.cli.figures",  # figures foundations
    "attnlab.cli.compare",  # compare mnist|sequence
    "attnlab.cli.probe",  # probe
    "attnlab.cli.viz",  # viz attention|positions|embeddings|activations|curves
    "attnlab.cli.app",  # app
    "attnlab.cli.data",  # data list|fetch|import
]

EXIT_USER_ERROR = 2
EXIT_INTERRUPTED = 130


class _Parser(argparse.ArgumentParser):
    """argparse that reports usage errors in attnlab's one-line style (exit code 2)."""

    def error(self, message: str) -> None:  # type: ignore[override]
        self.exit(EXIT_USER_ERROR, f"{self.prog}: error: {message} (see {self.prog} --help)\n")


def build_parser() -> argparse.ArgumentParser:
    parser = _Parser(
        prog="attnlab",
        description="Build, train and look inside transformers: GPT, encoders, seq2seq, ViT, protein models.",
    )
    parser.add_argument("--version", action="version", version=f"attnlab {__version__}")
    parser.add_argument("-v", "--verbose", action="store_true", help="log debug messages")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND", parser_class=_Parser)
    for name in COMMAND_MODULES:
        try:
            module = importlib.import_module(name)
        except ModuleNotFoundError as e:
            if e.name == name:  # that command group is not built yet
                continue
            raise
        module.register(sub)
    return parser


def main(argv: list[str] | None = None) -> int:
    """Entry point of the `attnlab` console script. Returns the exit code."""
    argv = list(sys.argv[1:] if argv is None else argv)
    parser = build_parser()
    try:
        args, extra = parser.parse_known_args(argv)
    except SystemExit as e:  # --help, --version, or a usage error already printed
        return int(e.code or 0)
    logging.basicConfig(
        level=logging.DEBUG if args.verbose else logging.INFO,
        format="%(message)s" if not args.verbose else "%(levelname)s %(name)s: %(message)s",
    )
    if not getattr(args, "func", None):
        parser.print_help()
        return EXIT_USER_ERROR if not argv else 0
    accepts_extra = getattr(args, "accepts_extra", False)
    if extra and not accepts_extra:
        print(f"attnlab {args.command}: error: unrecognized arguments: {' '.join(extra)} "
              f"(see attnlab {args.command} --help)", file=sys.stderr)
        return EXIT_USER_ERROR
    try:
        result = args.func(args, extra) if accepts_extra else args.func(args)
    except AttnlabError as e:
        msg = " ".join(str(e).split())  # one line, always
        print(f"attnlab: error: {msg}", file=sys.stderr)
        return EXIT_USER_ERROR
    except KeyboardInterrupt:
        print("attnlab: interrupted", file=sys.stderr)
        return EXIT_INTERRUPTED
    except BrokenPipeError:  # e.g. `attnlab generate ... | head`
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())
        return 0
    return int(result or 0)


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())

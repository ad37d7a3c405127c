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
from attnlab.errors import AttnlabError, describe_os_error

# Command modules, in the order their commands appear in `attnlab --help`.
COMMAND_MODULES = [
    "attnlab.cli.lm",  # demo, train, generate, eval
    "attnlab.cli.interop",  # convert, embed
    "attnlab.cli.seq2seq",  # translate
    "attnlab.cli.figures",  # figures foundations
    "attnlab.cli.compare",  # compare mnist|sequence
    "attnlab.cli.scale",  # scale
    "attnlab.cli.transfer",  # transfer
    "attnlab.cli.finetune",  # finetune
    "attnlab.cli.probe",  # probe
    "attnlab.cli.viz",  # viz attention|alignment|positions|embeddings|activations|curves
    "attnlab.cli.interp",  # interp cache|patch|ablate|attribute|heads|induction
    "attnlab.cli.app",  # app
    "attnlab.cli.data",  # data list|fetch|import
    "attnlab.cli.doctor",  # doctor
    "attnlab.cli.room",  # room pack|check|build|install
]

EXIT_USER_ERROR = 2
EXIT_INTERRUPTED = 130


class _Parser(argparse.ArgumentParser):
    """argparse that reports usage errors in attnlab's one-line style (exit code 2)."""

    def error(self, message: str) -> None:  # type: ignore[override]
        self.exit(EXIT_USER_ERROR, f"{self.prog}: error: {_one_line(message)} (see {self.prog} --help)\n")

    def _get_values(self, action: argparse.Action, arg_strings: list[str]):  # type: ignore[override]
        # argparse before Python 3.13 drops the value of `--flag=--` as if it were the
        # end-of-options marker and stores [] (a list, bypassing `type=`) for a flag that
        # takes one value. Only an explicit `=--` gets here with ["--"]: it is the text "--".
        if action.nargs is None and action.option_strings and arg_strings == ["--"]:
            value = self._get_value(action, "--")
            self._check_value(action, value)
            return value
        return super()._get_values(action, arg_strings)


def _one_line(text: str) -> str:
    """`text` with every run of whitespace (newlines included) as one space."""
    return " ".join(str(text).split())


def _is_out_of_memory(e: BaseException) -> bool:
    """PyTorch's allocators report a failed allocation as RuntimeError (CPU) or OutOfMemoryError (GPU)."""
    return type(e).__name__ == "OutOfMemoryError" or "can't allocate memory" in str(e)


LATEST = "latest"  # `--checkpoint latest`: the newest checkpoint in the runs folder


def _resolve_latest(args: argparse.Namespace) -> None:
    """Replace `--checkpoint latest` by the newest checkpoint folder of the runs folder.

    The runs folder is ./runs (or $ATTNLAB_APP_RUNS_DIR, as for `attnlab app`); `attnlab demo`
    names its folders runs/demo-TIMESTAMP, so docs and lab sheets can say `--checkpoint latest`.
    A folder actually named `latest` in the current directory wins. The choice is printed.
    """
    if getattr(args, "checkpoint", None) != LATEST or os.path.exists(LATEST):
        return
    from attnlab.app.runs_folder import find_checkpoints, runs_root
    from attnlab.errors import ConfigError

    root = runs_root()
    entries = find_checkpoints(root)
    if not entries:
        where = "does not exist" if not root.exists() else "holds no checkpoint"
        raise ConfigError(
            f"--checkpoint latest: the runs folder {str(root)!r} {where} yet; train a model first "
            "(`attnlab demo`, about 2 minutes) or give a checkpoint folder"
        )
    newest = entries[0]
    args.checkpoint = str(root / newest.relative)
    print(f"--checkpoint latest: {newest.label()} (in {root})", file=sys.stderr)


def build_parser() -> argparse.ArgumentParser:
    parser = _Parser(
        prog="attnlab",
        description="Build, train and look inside transformers: GPT, encoders, seq2seq, ViT, protein models.",
    )
    parser.add_argument("--version", action="version", version=f"attnlab {__version__}")
    parser.add_argument("-v", "--verbose", action="store_true", help="log debug messages")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND", parser_class=_Parser)
    for name in COMMAND_MODULES:
        importlib.import_module(name).register(sub)
    return parser


def main(argv: list[str] | None = None) -> int:
    """Entry point of the `attnlab` console script. Returns the exit code."""
    argv = list(sys.argv[1:] if argv is None else argv)
    for i, a in enumerate(argv):
        if not isinstance(a, str):
            raise TypeError(f"main() takes a list of strings; argument {i} is {type(a).__name__}")
        if "\0" in a:  # a real command line cannot hold one; a Python caller can
            print(
                f"attnlab: error: argument {i + 1} ({a!r}) contains a NUL character, which no file name "
                "or text can hold",
                file=sys.stderr,
            )
            return EXIT_USER_ERROR
    # Text the user typed may hold characters the terminal cannot show (or undecodable
    # bytes, as surrogates); print them escaped instead of failing with UnicodeEncodeError.
    for stream in (sys.stdout, sys.stderr):
        if hasattr(stream, "reconfigure") and getattr(stream, "errors", "strict") == "strict":
            stream.reconfigure(errors="backslashreplace")
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
        if not argv:  # a user error like any other: its one line on stderr too
            print("attnlab: error: choose a command, e.g. `attnlab demo` (see attnlab --help)", file=sys.stderr)
            return EXIT_USER_ERROR
        return 0
    accepts_extra = getattr(args, "accepts_extra", False)
    if extra and not accepts_extra:
        print(
            f"attnlab {args.command}: error: unrecognized arguments: {_one_line(' '.join(extra))} "
            f"(see attnlab {args.command} --help)",
            file=sys.stderr,
        )
        return EXIT_USER_ERROR
    try:
        _resolve_latest(args)
        result = args.func(args, extra) if accepts_extra else args.func(args)
    except AttnlabError as e:
        msg = " ".join(str(e).split())  # one line, always
        print(f"attnlab: error: {msg}", file=sys.stderr)
        return EXIT_USER_ERROR
    except KeyboardInterrupt as e:  # a stopped training says what it saved; a bare Ctrl-C has nothing to say
        print(f"attnlab: {_one_line(str(e))}" if str(e) else "attnlab: interrupted", file=sys.stderr)
        return EXIT_INTERRUPTED
    except BrokenPipeError:  # e.g. `attnlab generate ... | head`
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())
        return 0
    except OSError as e:  # a path the operating system refused: read-only disk, no permission, ...
        print(f"attnlab: error: {_one_line(describe_os_error(e))}", file=sys.stderr)
        return EXIT_USER_ERROR
    except MemoryError:
        print(
            "attnlab: error: this machine ran out of memory; choose a smaller model (--model.embed_dim, "
            "--model.num_layers), a smaller batch (--train.batch_size) or a shorter context",
            file=sys.stderr,
        )
        return EXIT_USER_ERROR
    except RuntimeError as e:
        if not _is_out_of_memory(e):
            raise  # a bug in attnlab: keep the traceback
        print(
            f"attnlab: error: out of memory ({_one_line(str(e))[:200]}); choose a smaller model "
            "(--model.embed_dim, --model.num_layers), a smaller batch (--train.batch_size) or a shorter context",
            file=sys.stderr,
        )
        return EXIT_USER_ERROR
    return int(result or 0)


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())

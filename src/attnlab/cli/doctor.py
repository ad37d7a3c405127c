"""`attnlab doctor [--json] [--no-probe] [--port P] [--runs-dir DIR]`: is this laptop ready for the workshop?

Prints the table of `attnlab.doctor.run_checks` (each row pass / warn / fail, with the fix
for each that did not pass), or with `--json` the report itself for an instructor
collecting a room's results. Exit code 0 when no row failed, 1 otherwise, 2 for a bad flag.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

from attnlab import limits
from attnlab.cli.app import DEFAULT_PORT, check_port
from attnlab.errors import ConfigError


def register(sub: argparse._SubParsersAction) -> None:
    """Add the `doctor` command to the top-level parser."""
    p = sub.add_parser(
        "doctor",
        help="check this laptop for the workshop: versions, cores, memory, disk, data, models, speed, app port",
        description=(
            "Check this laptop for the workshop and print a table, each row pass / warn / fail with the fix: "
            "Python, attnlab and torch (CPU or CUDA build), CPU cores and torch threads, memory, free disk, "
            "the lab packages, the embedded data and models, the data cache, trained models, a ~5-second "
            "speed probe that predicts the demo's and each notebook's time here, whether the app's port is "
            "free and whether a browser can be found. Exit code 0 when nothing failed, 1 otherwise."
        ),
    )
    p.add_argument(
        "--json", action="store_true", help="print the results as JSON (for an instructor collecting a room's)"
    )
    p.add_argument("--no-probe", action="store_true", help="skip the ~5-second speed probe and the time predictions")
    p.add_argument(
        "--port",
        type=int,
        default=DEFAULT_PORT,
        help=f"the port `attnlab app` will serve on, 1 to {limits.MAX_PORT:,} (default {DEFAULT_PORT})",
    )
    p.add_argument(
        "--runs-dir",
        default="runs",
        help="folder of trained models to look in, and whose disk to check (default ./runs, where `attnlab demo` writes)",
    )
    p.set_defaults(func=_run)


def _runs_dir(text: str) -> Path:
    path = Path(text).expanduser()
    try:
        is_file = path.exists() and not path.is_dir()
    except OSError as e:  # a name too long, a loop of links, ...
        raise ConfigError(f"--runs-dir {text!r} cannot be used ({e.strerror or e}); give a folder") from None
    if is_file:
        raise ConfigError(f"--runs-dir {text!r} is a file; pass the folder that holds your runs")
    return path


def _run(args: argparse.Namespace) -> int:
    from attnlab import doctor

    port = check_port(args.port)
    runs_dir = _runs_dir(args.runs_dir)
    if not args.no_probe:
        print("attnlab doctor: checking this laptop (the speed probe takes about 5 s) ...", file=sys.stderr, flush=True)
    report = doctor.run_checks(probe=not args.no_probe, port=port, runs_dir=runs_dir)
    if args.json:
        print(json.dumps(report, indent=2, ensure_ascii=False))
    else:
        print(doctor.format_report(report))
    return report["exit_code"]

"""`attnlab room build | install`: the pre-trained lab models (library: `attnlab.room.models`)."""

from __future__ import annotations

import argparse
import sys


def register(room_sub: argparse._SubParsersAction) -> None:
    """Add `build` and `install` to the `room` group's subparsers."""
    from attnlab.pretrained import CATALOGUE, MODELS_ENV, TRAIN_ENV

    p = room_sub.add_parser(
        "build",
        help="train every model the labs and the app use, once, for a whole room",
        description=(
            "Train, once on the instructor's machine, every model the labs and the app use, each with its lab's "
            "own recipe, into --out/NAME (a checkpoint folder plus room.json: what it is, how long it trained, "
            "its headline metric). A finished model is skipped when the command runs again; an interrupted one "
            "is retrained. About 30 minutes on 2 cores (a speed probe prints the estimate for this machine). "
            f"Models: {', '.join(CATALOGUE)}."
        ),
    )
    p.add_argument(
        "--out",
        default=None,
        help=f"folder of the models (default: the installed models folder, ${MODELS_ENV} or <cache>/models)",
    )
    p.add_argument("--only", default=None, metavar="NAMES", help="comma-separated model names to build (default all)")
    p.add_argument("--quick", action="store_true", help="tiny versions, seconds each (for tests, not for a room)")
    p.set_defaults(func=cmd_build)

    p = room_sub.add_parser(
        "install",
        help="put a kit's (or a build folder's) models where the notebooks and the app look first",
        description=(
            f"Copy the pre-trained models of KIT_OR_DIR (a kit of `attnlab room pack`, or the --out folder of "
            f"`attnlab room build`) into the models folder (${MODELS_ENV}, else <cache>/models). Each model is "
            "verified (sha256 of every file), copied under a temporary name and renamed into place; a broken one "
            f"is refused and never replaces a working one. Notebooks then use them (set {TRAIN_ENV}=1 to train "
            "your own) and every app page has a model on first start."
        ),
    )
    p.add_argument("source", metavar="KIT_OR_DIR", help="a kit folder or a build folder")
    p.set_defaults(func=cmd_install)


def cmd_build(args: argparse.Namespace) -> int:
    from attnlab.room.models import build_models

    def done(name: str, room: dict) -> None:
        metric = room.get("metric") or {}
        value = metric.get("value")
        shown = f"{value:.4g}" if isinstance(value, (int, float)) else "n/a"
        print(f"{name}: {room.get('train_seconds', 0):.0f} s of training, {metric.get('name', 'metric')} {shown}")

    result = build_models(args.out, only=args.only, quick=args.quick, on_done=done)
    for name in result["skipped"]:
        print(f"{name}: already built, skipped")
    print(
        f"room build: {len(result['built'])} model(s) trained, {len(result['skipped'])} already there, "
        f"in {result['seconds']:.0f} s; models in {result['out']}"
    )
    if result["built"] or result["skipped"]:
        print(f"next: attnlab room install {result['out']}   (on each laptop, from the kit)")
    return 0


def cmd_install(args: argparse.Namespace) -> int:
    from attnlab.errors import CheckpointError
    from attnlab.room.models import install_models

    result = install_models(args.source)
    for name in result["installed"]:
        print(f"{name}: installed")
    for name in result["unchanged"]:
        print(f"{name}: already installed, unchanged")
    print(f"models folder: {result['dest']}", file=sys.stderr if result["broken"] else sys.stdout)
    if result["broken"]:
        names = ", ".join(f"{n} ({why})" for n, why in result["broken"].items())
        raise CheckpointError(
            f"installed {len(result['installed'])} model(s) but refused {len(result['broken'])} broken one(s), "
            f"which were not copied (an installed copy of the same name is kept): {names}; rebuild them with "
            "`attnlab room build --only NAMES` or copy the kit again"
        )
    return 0

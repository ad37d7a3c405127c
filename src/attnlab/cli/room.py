"""`attnlab room pack|check|build|install`: prepare a workshop room of offline laptops.

`pack` and `check` (the offline kit: wheelhouses, data, notebooks, install scripts and a
sha256 manifest) live in `attnlab.cli.room_kit`; `build` and `install` (the pre-trained
lab models) in `attnlab.cli.room_models`. This module only makes the `room` group.
"""

from __future__ import annotations

import argparse


def register(sub: argparse._SubParsersAction) -> None:
    """Add the `room` command group to the top-level parser."""
    from attnlab.cli import room_kit, room_models

    p = sub.add_parser(
        "room",
        help="prepare a workshop room: an offline install kit and pre-trained models for every lab",
        description=(
            "Prepare a room of laptops for a workshop, once, on the instructor's machine: `room build` trains "
            "every model the labs and the app use, `room pack` writes an offline kit (wheels per platform, "
            "data, notebooks, the models, install scripts and a sha256 manifest), `room check` verifies a kit, "
            "and `room install` puts a kit's models where the notebooks and the app look first."
        ),
    )
    room_sub = p.add_subparsers(dest="room_command", metavar="{pack,check,build,install}")
    room_sub.required = True
    room_kit.register(room_sub)
    room_models.register(room_sub)

"""`attnlab room pack` and `attnlab room check`: the offline install kit (`attnlab.room.kit`).

`pack` writes a kit folder (wheels per platform and Python, data, models, notebooks, install
scripts, a sha256 manifest written last); `check` verifies a kit: exit 0 when every file
matches the manifest, 1 when one is missing, extra or changed, 2 when the folder is not a kit.
"""

from __future__ import annotations

import argparse
import sys
import time

from attnlab.room import kit


def register(room_sub: argparse._SubParsersAction) -> None:
    """Add `pack` and `check` to the `room` command group."""
    here = kit.this_platform() or "linux-x86_64"
    p = room_sub.add_parser(
        "pack",
        help="write an offline install kit: wheels per platform and Python, data, models, notebooks, scripts",
        description=(
            "Write an offline install kit into --out, on a machine with the network: a wheelhouse per platform "
            "and Python (attnlab, its labs/app/JupyterLab extra and CPU-only torch, from pip download), the "
            "data cache, the pre-trained lab models (`attnlab room build`), the notebooks, install.sh / "
            "install.ps1 and a manifest.json with every file's sha256. Nothing is left looking complete "
            "until it is: the kit is written into OUT.partial and renamed at the end."
        ),
    )
    p.add_argument("--out", required=True, metavar="KIT", help="the kit folder (new, empty, or an earlier kit)")
    p.add_argument(
        "--platform",
        default=here,
        metavar="LIST",
        help=f"comma-separated platforms: {', '.join(kit.PLATFORMS)} (default: this machine's, {here})",
    )
    p.add_argument(
        "--python",
        default=",".join(kit.DEFAULT_PYTHONS),
        metavar="LIST",
        help=f"comma-separated Python versions the laptops have (default {','.join(kit.DEFAULT_PYTHONS)})",
    )
    p.add_argument(
        "--torch-index",
        default=None,
        metavar="URL",
        help=f"where CPU torch comes from for Linux and Windows: an index URL or a local folder of wheels "
        f"(default {kit.TORCH_CPU_INDEX}; macOS torch comes from --index-url)",
    )
    p.add_argument(
        "--torch",
        default=None,
        metavar="VERSIONS",
        help="torch version where requirements/constraints.txt's pin is not published: 2.11.0 (every "
        "platform) or PLATFORM=VERSION, comma-separated (e.g. macos-arm64=2.11.0)",
    )
    p.add_argument(
        "--index-url",
        default=None,
        metavar="URL",
        help="the package index for everything else, e.g. a mirror (default: pip's own configuration)",
    )
    p.add_argument("--source", default=None, metavar="DIR", help="the attnlab source checkout (default: this one)")
    p.add_argument("--archive", action="store_true", help="also write KIT.zip of the finished kit")
    p.set_defaults(func=_pack)

    c = room_sub.add_parser(
        "check",
        help="verify a kit against its manifest (missing, extra or changed files); exit 0 good, 1 not",
        description=(
            "Verify every file of a kit against its manifest.json: missing files, extra files, and files whose "
            "size or sha256 changed. Exit code 0 when the kit is good, 1 when not, 2 when KIT is not a kit."
        ),
    )
    c.add_argument("kit", metavar="KIT", help="the kit folder")
    c.set_defaults(func=_check)


def _pack(args: argparse.Namespace) -> int:
    platforms = kit.parse_platforms(args.platform)
    pythons = kit.parse_pythons(args.python)
    torch_versions = kit.parse_torch_versions(args.torch)
    start = time.monotonic()
    result = kit.pack(
        args.out,
        platforms,
        pythons,
        torch_index=args.torch_index,
        torch_versions=torch_versions,
        index_url=args.index_url,
        source=args.source,
        archive=args.archive,
    )
    print(f"kit: {result.kit} ({result.files} files, {kit.human_size(result.bytes)}, {time.monotonic() - start:.0f} s)")
    for key, size in result.wheelhouses.items():
        print(f"  wheels/{key}: {kit.human_size(size)}")
    if result.archive is not None:
        print(f"archive: {result.archive} ({kit.human_size(result.archive.stat().st_size)})")
    print(f"check it with: attnlab room check {result.kit}")
    return 0


def _check(args: argparse.Namespace) -> int:
    result = kit.check(args.kit, progress=sys.stderr.isatty())
    m = result.manifest
    print(
        f"kit: {args.kit} (attnlab {m.get('attnlab_version', '?')}, created {m.get('created', '?')}, "
        f"platforms {', '.join(m.get('platforms') or []) or '?'}, Python {', '.join(m.get('pythons') or []) or '?'})"
    )
    rows = (
        [("missing", path, "") for path in result.missing]
        + [("changed", path, why) for path, why in result.changed]
        + [("extra", path, "not in the manifest") for path in result.extra]
    )
    if rows:
        width = max(len(r[1]) for r in rows)
        for status, path, why in rows:
            print(f"  {status:<8} {path:<{width}}  {why}".rstrip())
    total = sum(int(f["size"]) for f in m["files"].values())
    print(
        f"{len(result.ok)} of {len(m['files'])} files good ({kit.human_size(total)}); "
        f"{len(result.missing)} missing, {len(result.changed)} changed, {len(result.extra)} extra"
    )
    if result.good:
        print("the kit is good")
        return 0
    print("the kit is NOT good: copy it again from the original, or pack it again")
    return 1

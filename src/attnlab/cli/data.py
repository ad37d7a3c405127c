"""`attnlab data list | fetch | import`: see and prepare the offline data cache."""

from __future__ import annotations

import argparse


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(
        "data",
        help="list the named data sets and prepare the offline cache",
        description="Embedded data sets ship with the install; downloadable ones are fetched once into the "
        "cache (ATTNLAB_CACHE, default ~/.cache/attnlab) and checked against pinned sha256 digests. "
        "To prepare laptops without internet: `attnlab data fetch shakespeare mnist fashion` on one machine, "
        "then copy the cache folder to the others.",
    )
    actions = p.add_subparsers(dest="action", metavar="ACTION")
    actions.required = True
    a = actions.add_parser("list", help="every named data set and whether it is ready offline")
    a.set_defaults(func=cmd_list)
    a = actions.add_parser("fetch", help="download data sets into the cache")
    a.add_argument("names", nargs="+", help="e.g. shakespeare mnist fashion")
    a.set_defaults(func=cmd_fetch)
    a = actions.add_parser("import", help="copy files you already have into the cache (checked by sha256)")
    a.add_argument("name", help="data set name, e.g. mnist")
    a.add_argument("files", nargs="+", help="its files, e.g. train-images-idx3-ubyte.gz ...")
    a.set_defaults(func=cmd_import)


def cmd_list(args: argparse.Namespace) -> int:
    from attnlab.data.catalog import catalog, status
    from attnlab.utils import cache_dir

    rows = [(i.name, i.kind, status(i), i.description) for i in catalog()]
    width = [max(len(r[k]) for r in rows) for k in range(3)]
    for r in rows:
        print(f"{r[0]:<{width[0]}}  {r[1]:<{width[1]}}  {r[2]:<{width[2]}}  {r[3]}")
    print(f"\ncache folder: {cache_dir()}")
    return 0


def cmd_fetch(args: argparse.Namespace) -> int:
    from attnlab.data.catalog import fetch_dataset, get, status

    infos = [get(n) for n in args.names]  # every name is checked before anything downloads
    for info in infos:
        fetch_dataset(info.name)
        print(f"{info.name}: {status(info)}")
    return 0


def cmd_import(args: argparse.Namespace) -> int:
    from attnlab.data.catalog import get, import_files, status

    for path in import_files(args.name, args.files):
        print(f"cached {path}")
    print(f"{args.name}: {status(get(args.name))}")
    return 0

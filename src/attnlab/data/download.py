"""Download a file once into the user cache, verified by sha256.

`fetch(url, sha256, filename)` returns the cached path when a verified copy is there;
otherwise it downloads to a temporary file (with a progress bar), checks the digest,
and only then renames it into the cache. A wrong digest never lands in the cache.
`file://` URLs work too, which is how the tests exercise this code offline.
Set `ATTNLAB_OFFLINE=1` to forbid network access (a clear error instead).
"""

from __future__ import annotations

import logging
import os
import shutil
import urllib.error
import urllib.request
from pathlib import Path

from attnlab.errors import DownloadError
from attnlab.utils import atomic_path, cache_dir, sha256_file

logger = logging.getLogger(__name__)

USER_AGENT = "attnlab (https://pypi.org/project/attnlab)"


def _offline() -> bool:
    return os.environ.get("ATTNLAB_OFFLINE", "").lower() in ("1", "true", "yes")


def fetch(url: str, sha256: str | None, filename: str, *, subdir: str = "downloads", timeout: float = 60.0) -> Path:
    """Return a local, verified copy of `url`, downloading it into the cache if needed.

    Args:
        url: http(s):// or file:// address.
        sha256: expected hex digest; None skips the check (only for local experiments).
        filename: name of the cached file.
        subdir: folder under the cache directory.
        timeout: socket timeout in seconds.
    Returns:
        Path of the cached file.
    Raises:
        DownloadError: no network / offline mode, HTTP error, or checksum mismatch.
    """
    target = cache_dir() / subdir / filename
    if target.is_file():
        if sha256 is None or sha256_file(target) == sha256:
            return target
        logger.warning("cached %s failed its checksum; downloading it again", target)
        target.unlink()
    if _offline() and not url.startswith("file://"):
        raise DownloadError(
            f"{filename} is not in the cache ({target}) and ATTNLAB_OFFLINE is set; "
            f"download {url} on a machine that is online, or pass a local file path instead"
        )
    logger.info("downloading %s -> %s", url, target)
    with atomic_path(target) as tmp:
        try:
            request = urllib.request.Request(url, headers={"User-Agent": USER_AGENT})
            with urllib.request.urlopen(request, timeout=timeout) as response, open(tmp, "wb") as out:
                total = int(response.headers.get("Content-Length") or 0) or None
                _copy_with_progress(response, out, total, filename)
        except (urllib.error.URLError, OSError, ValueError) as e:
            reason = getattr(e, "reason", e)
            raise DownloadError(
                f"could not download {filename} from {url} ({reason}); check your connection, "
                "or pass a local file path instead"
            ) from None
        if sha256 is not None:
            digest = sha256_file(tmp)
            if digest != sha256:
                raise DownloadError(
                    f"checksum mismatch for {filename} from {url}: expected sha256 {sha256}, got {digest}; "
                    "the file was not kept (the source may have changed or the download was corrupted)"
                )
    return target


def _copy_with_progress(src, dst, total: int | None, label: str) -> None:
    from tqdm.auto import tqdm

    with tqdm(
        total=total, unit="B", unit_scale=True, desc=label, leave=False, disable=total is not None and total < 1 << 20
    ) as bar:
        while chunk := src.read(1 << 16):
            dst.write(chunk)
            bar.update(len(chunk))


def copy_into_cache(path: str | Path, filename: str, *, subdir: str = "downloads") -> Path:
    """Put a local file into the cache (for preparing offline laptops)."""
    target = cache_dir() / subdir / filename
    with atomic_path(target) as tmp:
        shutil.copyfile(path, tmp)
    return target

"""Run folders: whose they are, and who is writing them.

Every command that writes a folder (`train`, `demo`, `compare`, `probe`, `convert`,
`figures`, the app's own training) and every figure `viz` writes follows two rules, the
way git refuses to clobber a work tree and a database takes a lock:

**Ownership.** A folder is attnlab's when it carries the marker `run.json` with
`"format": "attnlab-run"` (older run folders: an attnlab checkpoint's `config.json`).
A missing or empty folder is created and marked; a folder that holds anything else is
refused with one line (`OutputFolderError`) unless `force=True` (`--force`). Even then
attnlab never deletes or overwrites a file it did not write: the marker lists the files
that were there before (`foreign_files`), and when attnlab has to write a file of the
same name, the user's file is first renamed to `NAME.orig` (`NAME.orig.1`, ...), which
`run.json` records under `set_aside`. A single output file (`viz --out FILE`) is ours when
it carries attnlab's marker in its metadata (`OUTPUT_MARK`, see `attnlab.viz._mpl`).

**One writer.** `run_lock(folder)` holds an exclusive operating-system lock on
`folder/.attnlab.lock` (through `filelock`: `fcntl.flock` on Linux and macOS,
`msvcrt.locking` on Windows) for the whole run, and writes who holds it (PID, host,
command, start time) to `folder/.attnlab.lock.json`. The operating system drops the
lock when its process ends, however it ends, so a lock left by a killed process is
stale by construction and the next writer simply takes it. A second writer gets
`RunLockedError` naming the PID that holds the run. Within one process the lock is
re-entrant (`attnlab demo` locks its folder and calls the training recipe, which locks
it again); `lock_holder(folder)` tells readers such as the app whether a run is being
written.

`open_run(folder, command=..., force=...)` does both, in the safe order: check ownership
(read only), create the folder, take the lock, then write the marker.
"""

from __future__ import annotations

import contextlib
import json
import logging
import os
import socket
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from attnlab.errors import AttnlabError, ConfigError

logger = logging.getLogger(__name__)

RUN_FILE = "run.json"
RUN_FORMAT = "attnlab-run"
RUN_FORMAT_VERSION = 1
LOCK_FILE = ".attnlab.lock"
LOCK_INFO_FILE = ".attnlab.lock.json"
CHECKPOINT_FORMAT = "attnlab-checkpoint"  # the format tag of attnlab's config.json (attnlab.checkpoint.FORMAT)
METRICS_FILE = "metrics.jsonl"  # one JSON record a line, appended by the Trainer (attnlab.train.trainer)
OUTPUT_MARK = "attnlab-output"  # written into the metadata of every figure and page attnlab writes
# Names attnlab itself leaves in a run folder besides its outputs: never counted as the user's.
_OWN_HIDDEN_PREFIXES = (LOCK_FILE, ".ckpt-")


class OutputFolderError(ConfigError):
    """--out names a folder (or file) that holds something attnlab did not write."""


class RunLockedError(AttnlabError):
    """Another process is writing this run folder."""


def _now() -> str:
    return time.strftime("%Y-%m-%dT%H:%M:%S%z")


def _is_own_hidden(name: str) -> bool:
    return name.startswith(_OWN_HIDDEN_PREFIXES) or (name.startswith(".") and name.endswith(".tmp"))


def read_marker(folder: str | os.PathLike) -> dict[str, Any] | None:
    """The folder's `run.json` when it is attnlab's marker, else None."""
    path = Path(folder) / RUN_FILE
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None
    return data if isinstance(data, dict) and data.get("format") == RUN_FORMAT else None


def _has_legacy_checkpoint(folder: Path) -> bool:
    try:
        data = json.loads((folder / "config.json").read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return False
    return isinstance(data, dict) and data.get("format") == CHECKPOINT_FORMAT


def _legacy_run_info(folder: Path) -> dict[str, Any]:
    """run.json of a run written before markers (it sits beside an attnlab checkpoint)."""
    if not _has_legacy_checkpoint(folder):
        return {}
    try:
        data = json.loads((folder / RUN_FILE).read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return {}
    return data if isinstance(data, dict) else {}


def user_entries(folder: str | os.PathLike) -> list[str]:
    """Names in `folder` other than attnlab's lock and temporary files (sorted)."""
    try:
        return sorted(n for n in os.listdir(folder) if not _is_own_hidden(n))
    except FileNotFoundError:
        return []


def is_ours(folder: str | os.PathLike) -> bool:
    """True when `folder` carries attnlab's marker (or is an attnlab checkpoint written before markers)."""
    folder = Path(folder)
    return read_marker(folder) is not None or _has_legacy_checkpoint(folder)


def _shown(names: list[str], limit: int = 4) -> str:
    shown = ", ".join(names[:limit])
    return shown + (f" and {len(names) - limit} more" if len(names) > limit else "")


def check_output_dir(folder: str | os.PathLike, *, force: bool = False, flag: str = "--out") -> list[str]:
    """Check (without writing anything) that attnlab may write into `folder`.

    Returns:
        The names of the user's files that are there (only non-empty with `force`).
    Raises:
        OutputFolderError: `folder` is a file, or holds files attnlab did not write and
            `force` is False.
    """
    folder = Path(folder)
    if folder.exists() and not folder.is_dir():
        raise OutputFolderError(f"{flag} {str(folder)!r} is a file, not a folder; pass a folder for the output")
    if not folder.is_dir():
        return []
    entries = user_entries(folder)
    if not entries or is_ours(folder):
        return []
    if not force:
        raise OutputFolderError(
            f"{flag} {str(folder)!r} already holds files attnlab did not write ({_shown(entries)}); "
            f"choose another {flag}, or pass --force to write into it anyway (attnlab then keeps your files: "
            "it never deletes one, and renames one it must replace to NAME.orig)"
        )
    return entries


def write_marker(
    folder: str | os.PathLike, *, command: str, foreign: list[str] | None = None, info: dict[str, Any] | None = None
) -> dict[str, Any]:
    """Write (or update) the folder's `run.json` marker; keeps what an earlier command recorded.

    Args:
        folder: the run folder (must exist).
        command: the attnlab command writing it now (e.g. "train").
        foreign: the user's files found in the folder when `--force` took it over.
        info: more JSON-ready fields to record (the Trainer's description of the run).
    """
    from attnlab import __version__
    from attnlab.utils import write_json_atomic

    folder = Path(folder)
    old = read_marker(folder) or _legacy_run_info(folder)
    foreign = sorted(set(old.get("foreign_files", [])) | set(foreign or []))
    if RUN_FILE in (foreign or []) and (folder / RUN_FILE).exists() and read_marker(folder) is None:
        _set_aside(folder / RUN_FILE, old)  # the user's own run.json
        foreign.remove(RUN_FILE)
    marker = {
        **old,
        **(info or {}),
        "format": RUN_FORMAT,
        "format_version": RUN_FORMAT_VERSION,
        "attnlab_version": __version__,
        "created": old.get("created", _now()),
        "created_by": old.get("created_by", command),
        "last_command": command,
        "updated": _now(),
        "foreign_files": foreign,
    }
    write_json_atomic(folder / RUN_FILE, marker)
    return marker


def _unique_aside(path: Path) -> Path:
    candidate = path.with_name(path.name + ".orig")
    n = 1
    while candidate.exists():
        candidate = path.with_name(f"{path.name}.orig.{n}")
        n += 1
    return candidate


def _set_aside(path: Path, marker: dict[str, Any]) -> Path:
    dest = _unique_aside(path)
    os.rename(path, dest)
    marker.setdefault("set_aside", {})[path.name] = dest.name
    logger.warning("kept your %s as %s (attnlab writes its own %s there)", path, dest.name, path.name)
    return dest


def set_aside_if_foreign(path: str | os.PathLike) -> Path | None:
    """Before attnlab replaces or deletes `path`: rename it to NAME.orig if it is the user's file.

    A file is the user's when the folder's marker lists it in `foreign_files` (it was there
    when `--force` took the folder over). Returns the new path, or None when `path` is ours.
    Called by `attnlab.utils.atomic_path` and by every place that deletes a file of a run.
    """
    path = Path(path)
    if not path.exists() or path.name == RUN_FILE:
        return None
    marker = read_marker(path.parent)
    if not marker or path.name not in marker.get("foreign_files", []):
        return None
    from attnlab.utils import write_json_atomic

    dest = _set_aside(path, marker)
    marker["foreign_files"] = [n for n in marker["foreign_files"] if n != path.name]
    write_json_atomic(path.parent / RUN_FILE, marker)
    return dest


def remove_own(path: str | os.PathLike) -> None:
    """Delete `path` if attnlab wrote it; a file of the user's is renamed to NAME.orig instead."""
    path = Path(path)
    if set_aside_if_foreign(path) is None:
        path.unlink(missing_ok=True)


# ---------------------------------------------------------------------------
# Single output files (viz --out FILE)
# ---------------------------------------------------------------------------


def output_metadata(fmt: str) -> dict[str, str]:
    """Matplotlib `savefig(metadata=...)` that marks a figure as attnlab's (PNG, SVG, PDF)."""
    from attnlab import __version__

    value = f"{OUTPUT_MARK} (attnlab {__version__}, matplotlib)"
    if fmt == "png":
        return {"Software": value}
    if fmt in ("svg", "pdf"):
        return {"Creator": value}
    return {}


def write_tidy_csv(path: str | os.PathLike, rows: list[dict[str, Any]], what: str) -> Path:
    """Write tidy rows as CSV (atomically), a first comment line marking the file as attnlab's.

    The columns are the union of the rows' keys in first-seen order; `what` says what a row is.
    """
    import csv

    from attnlab import __version__
    from attnlab.utils import atomic_path

    path = Path(path)
    columns: list[str] = []
    for row in rows:
        columns += [k for k in row if k not in columns]
    with atomic_path(path) as tmp, open(tmp, "w", newline="", encoding="utf-8") as f:
        f.write(f"# {OUTPUT_MARK} (attnlab {__version__}): {what}\n")
        writer = csv.DictWriter(f, fieldnames=columns)
        writer.writeheader()
        writer.writerows(rows)
    return path


def is_our_file(path: str | os.PathLike, limit: int = 64 << 20) -> bool:
    """True when the file carries attnlab's `OUTPUT_MARK` (in its PNG/SVG/PDF metadata or HTML head)."""
    path = Path(path)
    try:
        if path.stat().st_size > limit:
            return False
        return OUTPUT_MARK.encode() in path.read_bytes()
    except OSError:
        return False


def check_output_file(path: str | os.PathLike, *, force: bool = False, flag: str = "--out") -> None:
    """Refuse to replace a file attnlab did not write (unless `force`, which keeps it as NAME.orig).

    Raises:
        OutputFolderError: `path` is a folder, or an existing file that is not attnlab's.
    """
    path = Path(path)
    if path.is_dir():
        raise OutputFolderError(
            f"{flag} {str(path)!r} is a folder; give a file name such as {str(path / 'figure.png')!r}"
        )
    if not path.exists() or is_our_file(path):
        return
    if not force:
        raise OutputFolderError(
            f"{flag} {str(path)!r} already exists and attnlab did not write it; choose another name, or pass "
            "--force to write anyway (your file is then kept as NAME.orig)"
        )
    dest = _unique_aside(path)
    os.rename(path, dest)
    logger.warning("kept your %s as %s", path, dest.name)


# ---------------------------------------------------------------------------
# One writer per run folder
# ---------------------------------------------------------------------------

_held: dict[str, list[Any]] = {}  # resolved folder -> [FileLock, count, info]
_held_guard = threading.Lock()


def _key(folder: Path) -> str:
    return str(folder.resolve())


def _read_lock_info(folder: Path) -> dict[str, Any]:
    try:
        info = json.loads((folder / LOCK_INFO_FILE).read_text(encoding="utf-8"))
        return info if isinstance(info, dict) else {}
    except (OSError, ValueError):
        return {}


def _describe(info: dict[str, Any]) -> str:
    if not info:
        return "another process (it has not yet said which)"
    what = f"PID {info.get('pid', '?')} on {info.get('host', '?')}"
    if info.get("command"):
        what += f" (attnlab {info['command']}, since {info.get('started', '?')})"
    return what


@contextlib.contextmanager
def run_lock(folder: str | os.PathLike, *, command: str) -> Iterator[dict[str, Any]]:
    """Hold the exclusive writer's lock of `folder` (which must exist) for the `with` block.

    Raises:
        RunLockedError: another process holds it (the message names its PID and host).
    """
    from filelock import FileLock, Timeout

    folder = Path(folder)
    key = _key(folder)
    with _held_guard:
        if key in _held:  # re-entrant within this process
            _held[key][1] += 1
            entry = _held[key]
        else:
            entry = None
    if entry is not None:
        try:
            yield entry[2]
        finally:
            with _held_guard:
                entry[1] -= 1
        return
    lock = FileLock(str(folder / LOCK_FILE), timeout=0)
    try:
        lock.acquire(timeout=0)
    except Timeout:
        info = _read_lock_info(folder)
        pid = info.get("pid")
        hint = f"wait for it to finish, or stop it (kill {pid})" if pid else "wait for it to finish"
        raise RunLockedError(
            f"{str(folder)!r} is being written by {_describe(info)}; {hint}, or choose another --out"
        ) from None
    info = {"pid": os.getpid(), "host": socket.gethostname(), "command": command, "started": _now()}
    try:
        from attnlab.utils import write_json_atomic

        write_json_atomic(folder / LOCK_INFO_FILE, info)
        with _held_guard:
            _held[key] = [lock, 1, info]
        try:
            yield info
        finally:
            with _held_guard:
                _held.pop(key, None)
            with contextlib.suppress(OSError):
                (folder / LOCK_INFO_FILE).unlink()
    finally:
        lock.release()


def lock_holder(folder: str | os.PathLike) -> dict[str, Any] | None:
    """Who is writing `folder` now ({"pid", "host", "command", "started"}), or None.

    Never blocks and never creates anything in a folder that has no lock file yet.
    """
    from filelock import FileLock, Timeout

    folder = Path(folder)
    if not (folder / LOCK_FILE).exists():
        return None
    with _held_guard:
        entry = _held.get(_key(folder))
    if entry is not None:
        return dict(entry[2])
    lock = FileLock(str(folder / LOCK_FILE), timeout=0)
    try:
        lock.acquire(timeout=0)
    except Timeout:
        return _read_lock_info(folder) or {"pid": None}
    except OSError:  # a read-only folder: nobody can be writing it
        return None
    lock.release()
    return None


@contextlib.contextmanager
def open_run(
    folder: str | os.PathLike,
    *,
    command: str,
    force: bool = False,
    info: dict[str, Any] | None = None,
    flag: str = "--out",
) -> Iterator[Path]:
    """Claim `folder` as an attnlab run folder and hold its writer's lock for the block.

    Order: check ownership (writes nothing), create the folder, take the lock, write the
    marker. Re-entrant within one process.

    Raises:
        OutputFolderError: the folder holds files attnlab did not write and `force` is False.
        RunLockedError: another process is writing it.
    """
    folder = Path(folder)
    with _held_guard:
        already = _key(folder) in _held if folder.is_dir() else False
    foreign = [] if already else check_output_dir(folder, force=force, flag=flag)
    tidy = None if already or read_marker(folder) is not None else not folder.exists()
    with _claimed(folder, command, foreign, info, flag, already, tidy) as path:
        yield path


def _tidy_unused(folder: Path, created: bool) -> None:
    """After a run failed before writing anything: remove what claiming the folder added.

    (So a bad flag or data file leaves no empty run folder behind.)
    """
    try:
        if user_entries(folder) not in ([], [RUN_FILE]):
            return  # it wrote something: keep it all
        for name in (RUN_FILE, LOCK_INFO_FILE, LOCK_FILE):
            (folder / name).unlink(missing_ok=True)
        if created and not any(folder.iterdir()):
            folder.rmdir()
    except OSError:
        pass


@contextlib.contextmanager
def _claimed(
    folder: Path,
    command: str,
    foreign: list[str],
    info: dict[str, Any] | None,
    flag: str,
    already: bool,
    tidy: bool | None,
) -> Iterator[Path]:
    """open_run's work once ownership is checked; `tidy` (None = never) says whether we created the folder."""
    with contextlib.ExitStack() as stack:
        try:
            folder.mkdir(parents=True, exist_ok=True)
            stack.enter_context(run_lock(folder, command=command))
            if not already:
                if foreign:
                    foreign = check_output_dir(folder, force=True, flag=flag)  # again, under the lock
                write_marker(folder, command=command, foreign=foreign, info=info)
        except OSError as e:  # read-only file system, no permission, a path through a file ...
            from attnlab.errors import describe_os_error

            e.filename = e.filename if e.filename is not None else str(folder)
            raise OutputFolderError(f"cannot write into {flag} {describe_os_error(e)}") from None
        try:
            yield folder
        except BaseException:
            if tidy is not None:  # the folder was not a run before this call: take back what we added
                _tidy_unused(folder, tidy)
            raise


def writes_run(command: str, folder: str = "out_dir") -> Any:
    """Decorator for a library function that writes a run folder: `open_run` around the call.

    The decorated function gains a keyword argument `force` (see `open_run`). `folder` names
    the argument that holds the folder, or `"config.out"` for an attribute of an argument.
    A folder of None, and every data-parallel rank but 0 (which does not write), skip it.
    """
    import functools
    import inspect

    def decorate(fn: Any) -> Any:
        signature = inspect.signature(fn)
        arg, _, attr = folder.partition(".")

        @functools.wraps(fn)
        def wrapper(*args: Any, force: bool = False, **kwargs: Any) -> Any:
            bound = signature.bind_partial(*args, **kwargs)
            value = bound.arguments.get(arg)
            if attr and value is not None:
                value = getattr(value, attr)
            if value is None or int(os.environ.get("RANK", "0") or 0) != 0:
                return fn(*args, **kwargs)
            with open_run(value, command=command, force=force):
                return fn(*args, **kwargs)

        return wrapper

    return decorate


def read_metrics(folder: str | Path) -> list[dict[str, Any]]:
    """The records of a run's metrics.jsonl (skipping broken lines, e.g. one cut short by a crash)."""
    path = Path(folder) / METRICS_FILE
    records = []
    if path.is_file():
        for line in path.read_text(encoding="utf-8").splitlines():
            try:
                records.append(json.loads(line))
            except json.JSONDecodeError:
                continue
    return records

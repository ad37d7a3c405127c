"""The offline room kit: everything a laptop needs to install attnlab and run the labs with no network.

`pack()` writes a kit folder on the instructor's machine (which has the network):

    KIT/
      manifest.json                 every other file with its size and sha256 (written last)
      install.sh, install.ps1       create a venv and install from the kit (no index), then `attnlab doctor`
      wheels/<platform>-py<X.Y>/    a wheelhouse per platform and Python: attnlab, the `labs` extra, CPU torch
      data/                         the downloaded data sets of the cache (`attnlab.utils.cache_dir()`)
      models/                       the pre-trained lab models (`attnlab.pretrained.models_dir()`), if built
      notebooks/                    the lab notebooks (.ipynb)

`check()` verifies a kit against its manifest (missing, extra and changed files);
`install_payload()` (run by the install scripts) copies the kit's data and models into a laptop's cache.

Wheels come from `pip download --only-binary=:all: --platform ... --python-version ...`, so one machine packs
for every platform. pip evaluates environment markers (`; sys_platform == "win32"`, `; python_version < "3.11"`)
for the machine it runs on, not the target, so after each download the wheelhouse's own metadata is walked
with the target's markers and whatever is missing is downloaded too. torch comes first and alone: on Linux and
Windows from PyTorch's CPU wheel index (PyPI's Linux torch is the CUDA build, GBs of nvidia-* wheels; a torch
wheel that needs nvidia-* is refused), on macOS from the ordinary index (macOS wheels are CPU-only).
"""

from __future__ import annotations

import dataclasses
import datetime
import hashlib
import json
import logging
import os
import re
import shutil
import subprocess
import sys
import zipfile
from collections.abc import Callable, Iterable
from email.parser import HeaderParser
from pathlib import Path
from typing import Any

from attnlab.errors import AttnlabError
from attnlab.pretrained import ROOM_FILE

log = logging.getLogger(__name__)

MANIFEST = "manifest.json"
KIT_FORMAT = 1
EXTRA = "labs"  # the one extra that covers the labs, the app and JupyterLab (pyproject.toml)
TORCH_CPU_INDEX = "https://download.pytorch.org/whl/cpu"
DEFAULT_PYTHONS = ("3.10", "3.11", "3.12")
SUPPORTED_PYTHONS = ("3.10", "3.11", "3.12", "3.13")


class KitError(AttnlabError):
    """A kit could not be packed, or a folder is not a kit."""


@dataclasses.dataclass(frozen=True)
class Platform:
    """A laptop platform a kit can hold wheels for."""

    name: str  # the kit's name for it: linux-x86_64, macos-arm64, windows-amd64
    pip_platforms: tuple[str, ...]  # pip download --platform values (wheel platform tags)
    markers: dict[str, str]  # environment-marker values of the target (PEP 508), Python version aside
    torch_cpu_index: bool  # True: torch from the CPU wheel index; False: macOS, whose ordinary wheels are CPU-only
    script: str  # the install script for it


# manylinux_2_17 (CentOS 7) ... manylinux_2_28 (torch's own floor); every current Linux laptop has glibc >= 2.28.
_MANYLINUX = tuple(f"manylinux_2_{m}_x86_64" for m in range(28, 16, -1)) + (
    "manylinux2014_x86_64",
    "manylinux2010_x86_64",
    "manylinux1_x86_64",
)
PLATFORMS: dict[str, Platform] = {
    "linux-x86_64": Platform(
        "linux-x86_64",
        _MANYLINUX,
        {"os_name": "posix", "sys_platform": "linux", "platform_system": "Linux", "platform_machine": "x86_64"},
        True,
        "install.sh",
    ),
    "macos-arm64": Platform(
        "macos-arm64",
        ("macosx_12_0_arm64",),  # pip adds every older macOS 11+ arm64 tag and universal2
        {"os_name": "posix", "sys_platform": "darwin", "platform_system": "Darwin", "platform_machine": "arm64"},
        False,
        "install.sh",
    ),
    "windows-amd64": Platform(
        "windows-amd64",
        ("win_amd64",),
        {"os_name": "nt", "sys_platform": "win32", "platform_system": "Windows", "platform_machine": "AMD64"},
        True,
        "install.ps1",
    ),
}


def this_platform() -> str | None:
    """The kit name of the machine this runs on, or None when a kit cannot hold it."""
    import platform

    machine = platform.machine().lower()
    if sys.platform.startswith("linux") and machine in ("x86_64", "amd64"):
        return "linux-x86_64"
    if sys.platform == "darwin" and machine == "arm64":
        return "macos-arm64"
    if sys.platform == "win32" and machine in ("amd64", "x86_64"):
        return "windows-amd64"
    return None


def parse_platforms(text: str) -> list[str]:
    """`linux-x86_64,windows-amd64` -> the names, checked (KitError names the known ones)."""
    names = [p.strip() for p in str(text).split(",") if p.strip()]
    if not names:
        raise KitError(f"--platform: give one or more of {', '.join(PLATFORMS)}, separated by commas")
    for n in names:
        if n not in PLATFORMS:
            raise KitError(f"--platform: unknown platform {n!r}; known: {', '.join(PLATFORMS)}")
    return list(dict.fromkeys(names))


def parse_pythons(text: str) -> list[str]:
    """`3.10,3.12` -> the versions, checked (X.Y, a CPython the kit's wheels exist for)."""
    versions = [v.strip() for v in str(text).split(",") if v.strip()]
    if not versions:
        raise KitError(f"--python: give one or more Python versions like {','.join(DEFAULT_PYTHONS)}")
    for v in versions:
        if not re.fullmatch(r"3\.\d{1,2}", v):
            raise KitError(f"--python: {v!r} is not a Python version like 3.11 (major.minor)")
        if v not in SUPPORTED_PYTHONS:
            raise KitError(f"--python: attnlab's kit supports Python {', '.join(SUPPORTED_PYTHONS)}, not {v}")
    return list(dict.fromkeys(versions))


def parse_torch_versions(text: str | None) -> dict[str, str]:
    """`--torch`: `2.11.0` (every platform) and/or `macos-arm64=2.11.0` (one) -> {platform or "": version}."""
    out: dict[str, str] = {}
    for item in [t.strip() for t in str(text or "").split(",") if t.strip()]:
        name, _, version = item.rpartition("=")
        name = name.strip()
        version = version.strip()
        if name and name not in PLATFORMS:
            raise KitError(f"--torch: unknown platform {name!r} in {item!r}; valid: {', '.join(PLATFORMS)}")
        if not re.fullmatch(r"\d+\.\d+(\.\d+)?", version):
            raise KitError(f"--torch: {version!r} is not a torch version like 2.11.0 (in {item!r})")
        if name in out:
            raise KitError(f"--torch: two versions for {name or 'every platform'} ({out[name]} and {version})")
        out[name] = version
    return out


# --------------------------------------------------------------------------- pip


def run_pip(args: list[str], what: str) -> str:
    """Run `python -m pip ARGS`; return its output. KitError with pip's ERROR lines when it fails.

    Every pip call of the kit goes through here (the tests replace it).
    """
    cmd = [sys.executable, "-m", "pip", "--disable-pip-version-check", *args]
    log.debug("running %s", " ".join(cmd))
    try:
        proc = subprocess.run(cmd, capture_output=True, text=True, errors="replace")
    except OSError as e:
        raise KitError(f"{what}: could not run pip ({e})") from e
    if proc.returncode != 0:
        errors = [line.strip() for line in proc.stderr.splitlines() if line.strip().startswith("ERROR")]
        detail = " ".join(errors[:3]) or " ".join(proc.stderr.strip().splitlines()[-3:])
        raise KitError(f"{what} failed: {detail[:800]}")
    return proc.stdout


def _target_args(platform: Platform, python: str) -> list[str]:
    args = ["--only-binary=:all:", "--implementation", "cp", "--python-version", python]
    for tag in platform.pip_platforms:
        args += ["--platform", tag]
    return args


def _index_args(url: str | None) -> list[str]:
    """pip options for an index URL, or for a local folder of wheels (then with no index at all)."""
    if not url:
        return []
    if "://" not in url and Path(url).is_dir():
        return ["--no-index", "--find-links", str(Path(url).resolve())]
    return ["--index-url", url]


def _wheel_name(path: Path) -> tuple[str, str]:
    """(canonical name, version) from a wheel's file name."""
    name, version = path.name.split("-")[:2]
    return re.sub(r"[-_.]+", "-", name).lower(), version


def _wheel_requires(path: Path) -> list[str]:
    """The Requires-Dist lines of a wheel's METADATA."""
    with zipfile.ZipFile(path) as z:
        meta = next((n for n in z.namelist() if n.endswith(".dist-info/METADATA") and n.count("/") == 1), None)
        if meta is None:
            return []
        headers = HeaderParser().parsestr(z.read(meta).decode("utf-8", "replace"))
    return headers.get_all("Requires-Dist") or []


def missing_requirements(wheelhouse: Path, root: str, extras: Iterable[str], env: dict[str, str]) -> list[str]:
    """Requirements reachable from `root[extras]` under the target's markers `env` with no wheel in `wheelhouse`.

    Returns requirement strings without markers (`colorama`, `tomli>=2.0`), sorted.
    """
    from packaging.requirements import Requirement
    from packaging.utils import canonicalize_name

    wheels = {_wheel_name(p)[0]: p for p in wheelhouse.glob("*.whl")}
    seen: set[tuple[str, frozenset[str]]] = set()
    todo = [(canonicalize_name(root), frozenset(extras))]
    missing: dict[str, str] = {}
    while todo:
        name, wanted = todo.pop()
        if (name, wanted) in seen:
            continue
        seen.add((name, wanted))
        if name not in wheels:
            continue
        for line in _wheel_requires(wheels[name]):
            req = Requirement(line)
            if req.marker is not None and not any(
                req.marker.evaluate({**env, "extra": e}) for e in ("", *sorted(wanted))
            ):
                continue
            dep = canonicalize_name(req.name)
            if dep not in wheels:
                missing.setdefault(
                    dep, f"{req.name}{'[' + ','.join(sorted(req.extras)) + ']' if req.extras else ''}{req.specifier}"
                )
            todo.append((dep, frozenset(req.extras)))
    return sorted(missing.values())


def _marker_env(platform: Platform, python: str) -> dict[str, str]:
    return {
        **platform.markers,
        "python_version": python,
        "python_full_version": f"{python}.0",
        "implementation_name": "cpython",
        "implementation_version": f"{python}.0",
        "platform_python_implementation": "CPython",
        "platform_release": "",
        "platform_version": "",
    }


# --------------------------------------------------------------------------- pack


@dataclasses.dataclass
class PackResult:
    kit: Path
    files: int
    bytes: int
    wheelhouses: dict[str, int]  # "<platform>-py<X.Y>" -> bytes
    archive: Path | None = None


def source_checkout() -> Path | None:
    """The attnlab source folder (with pyproject.toml and notebooks/) this package runs from, if any."""
    root = Path(__file__).resolve().parents[3]
    return root if (root / "pyproject.toml").is_file() and (root / "src" / "attnlab").is_dir() else None


def _torch_pin(source: Path) -> str:
    """The `torch==X` line of requirements/constraints.txt (the CPU build the room installs)."""
    path = source / "requirements" / "constraints.txt"
    if path.is_file():
        for line in path.read_text().splitlines():
            if re.match(r"\s*torch\s*==", line):
                return line.split("#")[0].strip()
    import torch

    return f"torch=={torch.__version__.split('+')[0]}"


def _check_out(out: Path) -> None:
    if out.is_file() or (out.exists() and not out.is_dir()):
        raise KitError(f"--out {str(out)!r} is a file; give a new folder (or an existing kit to replace)")
    if out.is_dir() and any(out.iterdir()) and not (out / MANIFEST).is_file():
        raise KitError(
            f"--out {str(out)!r} is a folder with files that is not a kit (no {MANIFEST}); "
            "give a new or empty folder, so that nothing else is overwritten"
        )


def _step(steps: list[int], total: int, text: str) -> None:
    steps[0] += 1
    log.info("[%d/%d] %s", steps[0], total, text)


def pack(
    out: str | os.PathLike,
    platforms: list[str],
    pythons: list[str],
    *,
    torch_index: str | None = None,
    torch_versions: dict[str, str] | None = None,
    index_url: str | None = None,
    source: str | os.PathLike | None = None,
    archive: bool = False,
    pip: Callable[[list[str], str], str] | None = None,
) -> PackResult:
    """Write an offline kit into `out` for `platforms` x `pythons`.

    Args:
        out: the kit folder: new, empty, or an earlier kit (replaced once the new one is complete).
        platforms: names from PLATFORMS; pythons: versions like "3.11".
        torch_index: where torch comes from for Linux and Windows: an index URL (default PyTorch's CPU
            index) or a local folder of wheels; macOS torch comes from `index_url`.
        torch_versions: `parse_torch_versions`' result: the torch version per platform ("" = every
            platform) where it differs from requirements/constraints.txt's pin (a platform the
            pinned version is not published for).
        index_url: the index for everything else (default: pip's own configuration).
        source: the attnlab source checkout to build the wheel from (default: the one running).
        archive: also write `out.zip` of the finished kit.
        pip: replaces `run_pip` (tests).
    """
    run = pip or run_pip
    out = Path(out).expanduser()
    platforms = parse_platforms(",".join(platforms))
    pythons = parse_pythons(",".join(pythons))
    _check_out(out)
    src = Path(source) if source is not None else source_checkout()
    if src is None or not (src / "pyproject.toml").is_file():
        raise KitError(
            "room pack builds attnlab's wheel from its source checkout (pyproject.toml, notebooks/), and this "
            f"attnlab is installed without one; give --source DIR of a clone ({str(src)!r} has no pyproject.toml)"
        )
    partial = out.with_name(out.name + ".partial")
    if partial.exists():
        shutil.rmtree(partial)
    partial.mkdir(parents=True)
    total = 1 + 2 * len(platforms) * len(pythons) + 3
    steps = [0]
    try:
        _step(steps, total, f"building attnlab's wheel from {src}")
        build = partial / ".build"
        build.mkdir()
        build_args = ["wheel", "--no-deps", "-w", str(build), str(src)]
        if _has_setuptools():
            build_args.insert(2, "--no-build-isolation")  # offline: use this environment's setuptools
        run(build_args, "building attnlab's wheel (pip wheel --no-deps .)")
        own = sorted(build.glob("attnlab-*.whl"))
        if not own:
            raise KitError(f"building attnlab's wheel: pip wrote no attnlab-*.whl into {build}")
        own_wheel = own[-1]
        default_pin = _torch_pin(src)
        versions = dict(torch_versions or {})
        wheelhouses: dict[str, int] = {}
        for plat_name in platforms:
            plat = PLATFORMS[plat_name]
            for py in pythons:
                key = f"{plat_name}-py{py}"
                wh = partial / "wheels" / key
                wh.mkdir(parents=True)
                target = _target_args(plat, py)
                where = f"for {plat_name}, Python {py}"
                # torch alone first, from the CPU index.
                t_index = (torch_index or TORCH_CPU_INDEX) if plat.torch_cpu_index else index_url
                version = versions.get(plat_name) or versions.get("")
                pin = f"torch=={version}" if version else default_pin
                _step(steps, total, f"{key}: {pin} (CPU build) from {t_index or 'the default index'}")
                try:
                    run(
                        ["download", "--no-deps", "-d", str(wh), *target, *_index_args(t_index), pin],
                        f"downloading {pin} {where} from {t_index or 'the default index'}",
                    )
                except KitError as e:
                    raise KitError(
                        f"{e}. If {pin} is not published for {plat_name} (see `pip index versions torch "
                        f"--platform {plat.pip_platforms[0]} --python-version {py} --only-binary=:all:`), "
                        f"give one that is: --torch {plat_name}=VERSION"
                    ) from e
                torch_wheel = _only_torch(wh, plat_name, t_index, _marker_env(plat, py))
                constraints = partial / ".build" / f"constraints-{key}.txt"
                constraints.write_text(f"torch=={_wheel_name(torch_wheel)[1]}\n")
                _step(steps, total, f"{key}: attnlab[{EXTRA}] and its dependencies")
                shutil.copy2(own_wheel, wh / own_wheel.name)
                env = _marker_env(plat, py)
                common = ["download", "-d", str(wh), *target, "--find-links", str(wh), "-c", str(constraints)]
                # pip resolves torch's requirements with *this* machine's markers: from Linux, a macOS or
                # Windows torch would pull in its Linux-only CUDA packages (which have no wheel there).
                # Resolve against a stand-in with only the target's requirements, then put torch back.
                stand_in = _resolution_stand_in(torch_wheel, env, build / f"stand-in-{key}")
                real = build / f"real-{key}" / torch_wheel.name
                if stand_in is not None:
                    real.parent.mkdir()
                    torch_wheel.rename(real)
                try:
                    extra_links = ["--find-links", str(stand_in.parent)] if stand_in is not None else []
                    run(
                        [*common, *extra_links, *_index_args(index_url), f"{wh / own_wheel.name}[{EXTRA}]"],
                        f"downloading attnlab[{EXTRA}]'s dependencies {where}",
                    )
                finally:
                    if stand_in is not None:
                        (wh / stand_in.name).unlink(missing_ok=True)
                        real.rename(torch_wheel)
                for _ in range(5):  # markers pip evaluated for this machine instead of the target
                    missing = missing_requirements(wh, "attnlab", [EXTRA], env)
                    if not missing:
                        break
                    log.info("        %s: %s (needed there, not here)", key, ", ".join(missing))
                    run([*common, *_index_args(index_url), *missing], f"downloading {', '.join(missing)} {where}")
                else:
                    raise KitError(f"{where}: still missing after 5 rounds of downloads: {', '.join(missing)}")
                wheelhouses[key] = sum(p.stat().st_size for p in wh.iterdir())
        shutil.rmtree(build)
        _step(steps, total, "copying the data cache, the pre-trained models and the notebooks")
        _copy_payload(partial, src)
        _step(steps, total, "writing the install scripts")
        _write_scripts(partial, platforms, pythons)
        _step(steps, total, f"writing {MANIFEST} (sha256 of every file)")
        manifest = write_manifest(partial, platforms=platforms, pythons=pythons)
    except BaseException:
        shutil.rmtree(partial, ignore_errors=True)
        raise
    if out.exists():
        old = out.with_name(out.name + ".old")
        shutil.rmtree(old, ignore_errors=True)
        out.rename(old)
        partial.rename(out)
        shutil.rmtree(old, ignore_errors=True)
    else:
        partial.rename(out)
    size = sum(f["size"] for f in manifest["files"].values())
    result = PackResult(out, len(manifest["files"]), size, wheelhouses)
    if archive:
        _step(steps, total + 1, f"writing {out.name}.zip")
        tmp = shutil.make_archive(str(out.with_name(out.name + ".zip.partial")), "zip", out.parent, out.name)
        final = out.with_name(out.name + ".zip")
        os.replace(tmp, final)
        result.archive = final
    return result


def _resolution_stand_in(torch_wheel: Path, env: dict[str, str], folder: Path) -> Path | None:
    """A metadata-only copy of `torch_wheel` listing only the requirements the target needs.

    None when every requirement holds on the target (nothing to hide from pip). The copy has
    build tag 1, so pip prefers it to the same version on an index; it never reaches the kit.
    """
    from packaging.requirements import InvalidRequirement, Requirement

    requires = _wheel_requires(torch_wheel)
    keep = []
    for line in requires:
        try:
            req = Requirement(line)
        except InvalidRequirement:
            keep.append(line)
            continue
        if req.marker is None or "extra" in str(req.marker) or req.marker.evaluate({**env, "extra": ""}):
            keep.append(line)
    if len(keep) == len(requires):
        return None
    parts = torch_wheel.name[: -len(".whl")].split("-")
    name, version, tags = parts[0], parts[1], parts[-3:]
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / f"{name}-{version}-1-{'-'.join(tags)}.whl"
    dist = f"{name}-{version}.dist-info"
    meta = f"Metadata-Version: 2.1\nName: {name}\nVersion: {version}\n" + "".join(
        f"Requires-Dist: {line}\n" for line in keep
    )
    with zipfile.ZipFile(path, "w") as z:
        z.writestr(f"{dist}/METADATA", meta)
        z.writestr(f"{dist}/WHEEL", "Wheel-Version: 1.0\nGenerator: attnlab\nRoot-Is-Purelib: false\nBuild: 1\n")
        z.writestr(f"{dist}/RECORD", "")
    return path


def _has_setuptools() -> bool:
    import importlib.util

    return importlib.util.find_spec("setuptools") is not None


def _only_torch(wheelhouse: Path, platform: str, index: str | None, env: dict[str, str] | None = None) -> Path:
    """The torch wheel pip just downloaded; KitError when it is a CUDA build *for the target*.

    PyPI's macOS and Windows wheels list the `nvidia-*` packages too, behind a Linux marker:
    only requirements whose markers hold for the target (`env`) count.
    """
    from packaging.requirements import InvalidRequirement, Requirement

    found = sorted(wheelhouse.glob("torch-*.whl"))
    if not found:
        raise KitError(f"downloading torch for {platform}: pip wrote no torch wheel into {wheelhouse}")
    wheel = found[-1]

    def needed(line: str) -> bool:
        try:
            req = Requirement(line)
        except InvalidRequirement:
            return True
        return env is None or req.marker is None or req.marker.evaluate({**env, "extra": ""})

    if any(r.lower().startswith("nvidia-") and needed(r) for r in _wheel_requires(wheel)):
        raise KitError(
            f"the torch wheel for {platform} from {index or 'the default index'} ({wheel.name}) is a CUDA build "
            f"(it needs nvidia-* packages, several GB); point --torch-index at a CPU wheel index like {TORCH_CPU_INDEX}"
        )
    return wheel


def _copy_payload(kit: Path, source: Path) -> None:
    from attnlab.data.catalog import catalog
    from attnlab.pretrained import models_dir
    from attnlab.utils import cache_dir

    cache = cache_dir()
    for info in catalog():
        if info.kind == "embedded":
            continue
        for rel in info.files:
            if (cache / rel).is_file():
                (kit / "data" / rel).parent.mkdir(parents=True, exist_ok=True)
                shutil.copy2(cache / rel, kit / "data" / rel)
    models = models_dir()
    if models.is_dir():
        for folder in sorted(models.iterdir()):
            # a checkpoint (config.json) or any model of `room build` (room.json; the AMP probe has no config.json)
            if not folder.name.startswith(".") and any((folder / f).is_file() for f in ("config.json", ROOM_FILE)):
                shutil.copytree(folder, kit / "models" / folder.name)
    notebooks = sorted((source / "notebooks").glob("*.ipynb"))
    if notebooks:
        (kit / "notebooks").mkdir()
        for nb in notebooks:
            shutil.copy2(nb, kit / "notebooks" / nb.name)


def install_payload(kit: str | os.PathLike) -> dict[str, int]:
    """Copy a kit's data and models into this laptop's cache and models folder (existing files are kept).

    Run by the kit's install scripts, in the new environment. Returns {"data": files, "models": folders}.
    """
    from attnlab.pretrained import models_dir
    from attnlab.utils import cache_dir

    kit = Path(kit)
    counts = {"data": 0, "models": 0}
    data = kit / "data"
    if data.is_dir():
        for f in sorted(p for p in data.rglob("*") if p.is_file()):
            target = cache_dir() / f.relative_to(data)
            if not target.exists():
                target.parent.mkdir(parents=True, exist_ok=True)
                shutil.copy2(f, target)
                counts["data"] += 1
    models = kit / "models"
    if models.is_dir():
        room_models = [p for p in models.iterdir() if p.is_dir() and (p / ROOM_FILE).is_file()]
        if room_models:  # `room build`'s models: each verified (sha256) and swapped in whole, never merged
            from attnlab.room.models import install_models

            report = install_models(models, models_dir(), progress=False)
            counts["models"] += len(report["installed"]) + len(report["unchanged"])
            for name, reason in report["broken"].items():
                log.warning("model %s in the kit is broken and was not installed: %s", name, reason)
        for folder in sorted(p for p in models.iterdir() if p.is_dir() and p not in room_models):
            if not (models_dir() / folder.name).exists():  # other checkpoints: copied once, existing ones kept
                shutil.copytree(folder, models_dir() / folder.name)
                counts["models"] += 1
    return counts


# --------------------------------------------------------------------------- install scripts

_INSTALL_SH = """\
#!/bin/sh
# Install attnlab from this kit, with no network: sh install.sh [VENV]   (default VENV: .venv)
# Uses python3 (or $PYTHON); the kit holds wheels for {platforms} and Python {pythons}.
set -eu
KIT=$(cd "$(dirname "$0")" && pwd)
VENV=${{1:-.venv}}
PYTHON=${{PYTHON:-python3}}
case "$(uname -s)-$(uname -m)" in
  Linux-x86_64) PLATFORM=linux-x86_64 ;;
  Darwin-arm64) PLATFORM=macos-arm64 ;;
  *) echo "install.sh: this kit has no wheels for $(uname -s) $(uname -m) (it holds {platforms})" >&2; exit 1 ;;
esac
VERSION=$("$PYTHON" -c 'import sys; print("%d.%d" % sys.version_info[:2])')
WHEELS="$KIT/wheels/$PLATFORM-py$VERSION"
if [ ! -d "$WHEELS" ]; then
  echo "install.sh: this kit has no wheels for $PLATFORM with Python $VERSION ($PYTHON); it holds: $(ls "$KIT/wheels" | tr '\\n' ' ')" >&2
  echo "  use one of those Pythons (PYTHON=python3.11 sh install.sh) or pack the kit again with --python $VERSION" >&2
  exit 1
fi
echo "[1/4] creating $VENV with $PYTHON (Python $VERSION)"
"$PYTHON" -m venv "$VENV"
echo "[2/4] installing attnlab[{extra}] from $WHEELS (no network)"
PIP_NO_INDEX=1 "$VENV/bin/python" -m pip install --disable-pip-version-check --no-index --find-links "$WHEELS" "attnlab[{extra}]=={version}"
echo "[3/4] copying the kit's data and pre-trained models into the cache"
"$VENV/bin/python" -c 'import sys; from attnlab.room.kit import install_payload; print(install_payload(sys.argv[1]))' "$KIT"
echo "[4/4] attnlab doctor --no-probe"
"$VENV/bin/attnlab" doctor --no-probe || echo "install.sh: attnlab is installed; fix the rows doctor marked fail above"
echo "Done. Activate with: . $VENV/bin/activate   then: attnlab demo   (notebooks: jupyter lab $KIT/notebooks)"
"""

_INSTALL_PS1 = """\
# Install attnlab from this kit, with no network (Windows PowerShell):
#   powershell -ExecutionPolicy Bypass -File install.ps1 [-Venv .venv] [-Python python]
# The kit holds wheels for {platforms} and Python {pythons}.
param([string]$Venv = ".venv", [string]$Python = "python")
$ErrorActionPreference = "Stop"
$Kit = Split-Path -Parent $MyInvocation.MyCommand.Path
$Version = & $Python -c "import sys; print('%d.%d' % sys.version_info[:2])"
if ($LASTEXITCODE -ne 0) {{ Write-Host "install.ps1: could not run $Python; install Python {pythons} first"; exit 1 }}
$Wheels = Join-Path $Kit "wheels\\windows-amd64-py$Version"
if (-not (Test-Path $Wheels)) {{
  Write-Host "install.ps1: this kit has no wheels for windows-amd64 with Python $Version; it holds: $((Get-ChildItem (Join-Path $Kit 'wheels')).Name -join ' ')"
  exit 1
}}
Write-Host "[1/4] creating $Venv with $Python (Python $Version)"
& $Python -m venv $Venv
if ($LASTEXITCODE -ne 0) {{ exit 1 }}
$Py = Join-Path $Venv "Scripts\\python.exe"
Write-Host "[2/4] installing attnlab[{extra}] from $Wheels (no network)"
$env:PIP_NO_INDEX = "1"
& $Py -m pip install --disable-pip-version-check --no-index --find-links $Wheels "attnlab[{extra}]=={version}"
if ($LASTEXITCODE -ne 0) {{ exit 1 }}
Write-Host "[3/4] copying the kit's data and pre-trained models into the cache"
& $Py -c "import sys; from attnlab.room.kit import install_payload; print(install_payload(sys.argv[1]))" $Kit
if ($LASTEXITCODE -ne 0) {{ exit 1 }}
Write-Host "[4/4] attnlab doctor --no-probe"
& (Join-Path $Venv "Scripts\\attnlab.exe") doctor --no-probe
if ($LASTEXITCODE -ne 0) {{ Write-Host "install.ps1: attnlab is installed; fix the rows doctor marked fail above" }}
Write-Host "Done. Activate with: $Venv\\Scripts\\Activate.ps1   then: attnlab demo"
"""


def install_script_text(kind: str, platforms: list[str], pythons: list[str]) -> str:
    """The text of `install.sh` or `install.ps1` for a kit of `platforms` x `pythons`."""
    from attnlab import __version__

    template = {"install.sh": _INSTALL_SH, "install.ps1": _INSTALL_PS1}[kind]
    return template.format(platforms=", ".join(platforms), pythons=", ".join(pythons), extra=EXTRA, version=__version__)


def _write_scripts(kit: Path, platforms: list[str], pythons: list[str]) -> None:
    for script in sorted({PLATFORMS[p].script for p in platforms}):
        path = kit / script
        newline = "\r\n" if script.endswith(".ps1") else "\n"
        with open(path, "w", newline=newline) as f:
            f.write(install_script_text(script, platforms, pythons))
        if script.endswith(".sh"):
            path.chmod(0o755)


# --------------------------------------------------------------------------- manifest and check


def _sha256(path: Path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            h.update(block)
    return h.hexdigest()


def _kit_files(kit: Path) -> list[str]:
    """Every file of the kit but the manifest, as POSIX paths relative to it."""
    return sorted(p.relative_to(kit).as_posix() for p in kit.rglob("*") if p.is_file() and p.name != MANIFEST)


def write_manifest(kit: str | os.PathLike, *, platforms: list[str], pythons: list[str]) -> dict[str, Any]:
    """Write `kit/manifest.json` (every file's size and sha256, platforms, pythons, version, time); return it."""
    from attnlab import __version__

    kit = Path(kit)
    files = {rel: {"size": (kit / rel).stat().st_size, "sha256": _sha256(kit / rel)} for rel in _kit_files(kit)}
    manifest = {
        "format": KIT_FORMAT,
        "attnlab_version": __version__,
        "created": datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds"),
        "platforms": list(platforms),
        "pythons": list(pythons),
        "files": files,
    }
    tmp = kit / (MANIFEST + ".tmp")
    tmp.write_text(json.dumps(manifest, indent=1, sort_keys=True) + "\n")
    os.replace(tmp, kit / MANIFEST)
    return manifest


def read_manifest(kit: str | os.PathLike) -> dict[str, Any]:
    """The manifest of a kit; KitError when `kit` is not a kit or its manifest is unreadable."""
    kit = Path(kit)
    if not kit.is_dir():
        raise KitError(f"{str(kit)!r} is not a kit folder (it {'is a file' if kit.exists() else 'does not exist'})")
    path = kit / MANIFEST
    if not path.is_file():
        raise KitError(f"{str(kit)!r} is not a kit: it has no {MANIFEST} (pack one with `attnlab room pack`)")
    try:
        manifest = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as e:
        raise KitError(f"{path}: the manifest cannot be read ({e}); pack the kit again") from e
    files = manifest.get("files") if isinstance(manifest, dict) else None
    if not isinstance(files, dict) or not all(
        isinstance(v, dict) and isinstance(v.get("size"), int) and isinstance(v.get("sha256"), str)
        for v in files.values()
    ):
        raise KitError(f"{path}: not an attnlab kit manifest (no 'files' with size and sha256); pack the kit again")
    return manifest


@dataclasses.dataclass
class CheckResult:
    manifest: dict[str, Any]
    ok: list[str]
    missing: list[str]
    extra: list[str]
    changed: list[tuple[str, str]]  # (path, "size 10 != 12" | "sha256 differs")

    @property
    def good(self) -> bool:
        return not (self.missing or self.extra or self.changed)


def check(kit: str | os.PathLike, progress: bool = False) -> CheckResult:
    """Verify every file of a kit against its manifest: missing, extra, changed size or sha256."""
    kit = Path(kit)
    manifest = read_manifest(kit)
    expected: dict[str, dict[str, Any]] = manifest["files"]
    present = set(_kit_files(kit))
    ok, missing, changed = [], [], []
    items = sorted(expected.items())
    if progress:
        from tqdm.auto import tqdm

        items = tqdm(items, desc="checking", unit="file", leave=False)
    for rel, info in items:
        path = kit / rel
        if rel not in present:
            missing.append(rel)
            continue
        size = path.stat().st_size
        if size != info["size"]:
            changed.append((rel, f"size {size} != {info['size']}"))
        elif _sha256(path) != info["sha256"]:
            changed.append((rel, "sha256 differs"))
        else:
            ok.append(rel)
    extra = sorted(present - set(expected))
    return CheckResult(manifest, ok, missing, extra, changed)


def human_size(n: int) -> str:
    for unit in ("B", "KB", "MB", "GB"):
        if n < 1024 or unit == "GB":
            return f"{n:.0f} {unit}" if unit == "B" else f"{n:.1f} {unit}"
        n /= 1024
    return f"{n} B"  # pragma: no cover

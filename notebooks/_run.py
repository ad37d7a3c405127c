"""Execute lab notebooks headless, the way the test suite does, and report their run times.

Each notebook runs in a fresh Jupyter kernel of *this* Python interpreter (a kernel
spec pointing at `sys.executable` is written to a temporary folder, so no
`ipykernel install` step is needed), in a temporary working directory (nothing is
written next to the notebooks), with the Agg matplotlib backend and Hugging Face
offline. Outputs are kept in memory only; the .ipynb files are never modified.

    python notebooks/_run.py                          # every notebook, fast mode
    python notebooks/_run.py --normal 05_gpt          # one notebook at full size
    python notebooks/_run.py --solutions --normal     # instructor mode, full size
    python notebooks/_run.py --save-executed /tmp/out # keep copies with outputs (outside the repo)

Used by tests/notebooks/test_notebooks.py (`execute_notebook`, `exercise_results`).
"""

from __future__ import annotations

import argparse
import json
import math
import os
import re
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import nbformat

NOTEBOOKS_DIR = Path(__file__).resolve().parent
KERNEL_NAME = "attnlab-notebook-runner"
EXERCISE_MARK = "@labs.exercise"  # an exercise cell defines the learner's function with this decorator
CHECK_CALL = re.compile(r"\bcheck\.(\w+)\(")
PASSED = "✅ {name}: correct!"
NOT_YET = "❌ {name}: not yet."


def notebooks() -> list[Path]:
    """Every lab notebook, in order (notebooks/*.ipynb)."""
    return sorted(NOTEBOOKS_DIR.glob("*.ipynb"))


def kernel_env(*, fast: bool, solutions: bool, threads: int = 1, extra: dict[str, str] | None = None) -> dict[str, str]:
    """The environment a notebook kernel runs with.

    Args:
        fast: set ATTNLAB_FAST=1.
        solutions: set ATTNLAB_SOLUTIONS=1 (instructor mode).
        threads: OpenMP / MKL threads of the kernel (1 on a shared machine: more threads
            than free cores make PyTorch's CPU kernels spin and run many times slower).
        extra: more variables (they win over the above).
    """
    env = dict(os.environ)
    for name in ("ATTNLAB_FAST", "ATTNLAB_SOLUTIONS"):
        env.pop(name, None)
    if fast:
        env["ATTNLAB_FAST"] = "1"
    if solutions:
        env["ATTNLAB_SOLUTIONS"] = "1"
    env.update(
        MPLBACKEND="Agg",
        HF_HUB_OFFLINE="1",
        TRANSFORMERS_OFFLINE="1",
        OMP_NUM_THREADS=str(threads),
        MKL_NUM_THREADS=str(threads),
        PYDEVD_DISABLE_FILE_VALIDATION="1",  # silences a debugger warning printed by the kernel
    )
    env.update(extra or {})
    return env


def _kernel_manager(spec_root: Path) -> Any:
    """A kernel manager whose kernel is this interpreter (no registered kernel needed)."""
    from jupyter_client.kernelspec import KernelSpecManager
    from jupyter_client.manager import AsyncKernelManager

    folder = spec_root / "kernels" / KERNEL_NAME
    folder.mkdir(parents=True, exist_ok=True)
    spec = {
        "argv": [sys.executable, "-m", "ipykernel_launcher", "-f", "{connection_file}"],
        "display_name": f"attnlab ({sys.executable})",
        "language": "python",
    }
    (folder / "kernel.json").write_text(json.dumps(spec), encoding="utf-8")
    specs = KernelSpecManager(kernel_dirs=[str(spec_root / "kernels")])
    return AsyncKernelManager(kernel_name=KERNEL_NAME, kernel_spec_manager=specs)


@dataclass
class Execution:
    """An executed notebook (in memory) and how long it took."""

    path: Path
    notebook: Any  # nbformat.NotebookNode with outputs
    seconds: float


def execute_notebook(
    path: str | os.PathLike,
    *,
    cwd: str | os.PathLike,
    env: dict[str, str],
    cell_timeout: int = 600,
    notebook_timeout: int | None = None,
    startup_timeout: int = 120,
) -> Execution:
    """Run every cell of a notebook in a fresh kernel; raise on the first cell error.

    Args:
        path: the .ipynb file (read, never written).
        cwd: the kernel's working directory (files the notebook writes go here).
        env: the kernel's environment (see `kernel_env`).
        cell_timeout: seconds one cell may take.
        notebook_timeout: seconds all cells together may take (None = no limit beyond the cells').
        startup_timeout: seconds the kernel may take to start.
    Returns:
        `Execution` with the notebook and its outputs.
    Raises:
        nbclient.exceptions.CellExecutionError: a cell raised (its traceback is in the message).
        nbclient.exceptions.CellTimeoutError: a cell ran longer than `cell_timeout`, or the
            notebook longer than `notebook_timeout`.
    """
    from nbclient import NotebookClient

    path = Path(path)
    nb = nbformat.read(path, as_version=4)
    deadline: list[float] = []  # set when the first cell starts (kernel start-up has its own limit)

    def timeout_for(cell: Any) -> int:
        # nbclient asks before every cell: what is left of the notebook's budget, at most cell_timeout
        if notebook_timeout is None:
            return cell_timeout
        if not deadline:
            deadline.append(time.monotonic() + notebook_timeout)
        return max(1, min(cell_timeout, math.ceil(deadline[0] - time.monotonic())))

    with tempfile.TemporaryDirectory(prefix="attnlab-kernelspec-") as spec_root:
        client = NotebookClient(
            nb,
            km=_kernel_manager(Path(spec_root)),
            timeout=cell_timeout,  # where nbclient asks without a cell
            timeout_func=timeout_for,
            startup_timeout=startup_timeout,
            resources={"metadata": {"path": str(cwd)}},
        )
        start = time.perf_counter()
        # nbclient shuts down only kernels whose manager it made itself; ours it would leave
        # running until this process exits (a pytest-xdist worker then piles up idle kernels).
        client.execute(env=env, cwd=str(cwd), cleanup_kc=True)
        seconds = time.perf_counter() - start
    return Execution(path, nb, seconds)


def cell_text(cell: Any) -> str:
    """Everything a code cell printed or displayed as text."""
    parts = []
    for out in cell.get("outputs", []):
        if out.get("output_type") == "stream":
            parts.append(out.get("text", ""))
        elif "data" in out:
            parts.append(out["data"].get("text/plain", ""))
        elif out.get("output_type") == "error":
            parts.append("\n".join(out.get("traceback", [])))
    return "".join(parts)


@dataclass
class ExerciseResult:
    """What one exercise cell's checks printed."""

    cell_index: int
    names: list[str]  # the exercises checked in the cell (check.<name>(...))
    passed: list[str]  # those that printed "✅ <name>: correct!"
    not_yet: list[str]  # those that printed "❌ <name>: not yet."
    text: str  # the cell's text output


def exercise_results(nb: Any) -> list[ExerciseResult]:
    """The outcome of every exercise cell (a code cell using `@labs.exercise`)."""
    results = []
    for index, cell in enumerate(nb.cells):
        if cell.cell_type != "code" or EXERCISE_MARK not in cell.source:
            continue
        names = CHECK_CALL.findall(cell.source)
        text = cell_text(cell)
        results.append(
            ExerciseResult(
                index,
                names,
                [n for n in names if PASSED.format(name=n) in text],
                [n for n in names if NOT_YET.format(name=n) in text],
                text,
            )
        )
    return results


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("names", nargs="*", help="notebook names or stems (default: all)")
    parser.add_argument("--normal", action="store_true", help="full size (default: fast mode, ATTNLAB_FAST=1)")
    parser.add_argument("--solutions", action="store_true", help="instructor mode (ATTNLAB_SOLUTIONS=1)")
    parser.add_argument("--threads", type=int, default=1, help="OpenMP/MKL threads of the kernel (default 1)")
    parser.add_argument(
        "--save-executed", metavar="DIR", help="also write the executed notebooks (with outputs) into DIR"
    )
    args = parser.parse_args(argv)
    chosen = [p for p in notebooks() if not args.names or p.stem in args.names or p.name in args.names]
    if not chosen:
        print(f"no notebook matches {args.names}; known: {', '.join(p.stem for p in notebooks())}")
        return 2
    env = kernel_env(fast=not args.normal, solutions=args.solutions, threads=args.threads)
    total = 0.0
    for path in chosen:
        with tempfile.TemporaryDirectory(prefix="attnlab-notebook-") as cwd:
            run = execute_notebook(path, cwd=cwd, env=env)
        total += run.seconds
        if args.save_executed:
            Path(args.save_executed).mkdir(parents=True, exist_ok=True)
            nbformat.write(run.notebook, str(Path(args.save_executed) / path.name))
        checks = exercise_results(run.notebook)
        passed = sum(len(r.passed) for r in checks)
        count = sum(len(r.names) for r in checks)
        print(f"{path.name:34s} {run.seconds:7.1f} s   checks passed {passed}/{count}", flush=True)
    mode = "normal" if args.normal else "fast"
    print(
        f"{'total':34s} {total:7.1f} s   ({mode} mode{', instructor' if args.solutions else ''}, {args.threads} thread(s))"
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())

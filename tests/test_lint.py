"""The code is linted and formatted: `ruff check` and `ruff format --check` pass on the tree.

Rules and line length are `[tool.ruff]` in pyproject.toml; ruff's version is pinned in
requirements/constraints.txt so that formatting means the same on every machine.
`ruff format` and `ruff check --fix` repair what these tests report.
"""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
RUFF = Path(sys.executable).with_name("ruff.exe" if sys.platform == "win32" else "ruff")


def _ruff(*args: str) -> subprocess.CompletedProcess:
    if not RUFF.is_file():
        pytest.fail(f"{RUFF} is missing: install the test extra (pip install -e '.[test]')")
    return subprocess.run([str(RUFF), *args], cwd=ROOT, capture_output=True, text=True, timeout=300)


def test_ruff_check_passes():
    result = _ruff("check", "--no-cache", ".")
    assert result.returncode == 0, result.stdout[-6000:] + result.stderr[-2000:]


def test_ruff_format_is_applied():
    result = _ruff("format", "--check", "--no-cache", ".")
    assert result.returncode == 0, "run `ruff format`:\n" + result.stdout[-6000:] + result.stderr[-2000:]


def test_no_format_skip_markers():
    """Formatter markers (fmt skip / off) hide code from the formatter; the tree has none."""
    markers = ("# fmt" + ": skip", "# fmt" + ": off")  # spelled apart so this file is not a hit
    hits = [
        f"{path.relative_to(ROOT)}:{i}"
        for folder in ("src", "tests", "benchmarks", "notebooks")
        for path in sorted((ROOT / folder).glob("**/*.py"))
        for i, line in enumerate(path.read_text(encoding="utf-8").splitlines(), 1)
        if any(m in line for m in markers)
    ]
    assert not hits, "formatter markers: " + ", ".join(hits[:20])

"""The layering of the README's "Design" section holds: `lint-imports` keeps every contract.

The contracts are `[tool.importlinter]` in pyproject.toml (layers from `cli` down to the
torch-free base, and "nothing imports cli or app"), with no `ignore_imports` exceptions.
Also checks the promise that made one of them necessary: loading a checkpoint's tokenizer
does not import the bio lab.
"""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

try:
    import tomllib
except ModuleNotFoundError:  # Python 3.10
    import tomli as tomllib  # type: ignore[no-redef]

ROOT = Path(__file__).resolve().parents[1]
LINT_IMPORTS = Path(sys.executable).with_name("lint-imports.exe" if sys.platform == "win32" else "lint-imports")


def test_import_contracts_are_kept():
    if not LINT_IMPORTS.is_file():
        pytest.fail(f"{LINT_IMPORTS} is missing: install the test extra (pip install -e '.[test]')")
    result = subprocess.run([str(LINT_IMPORTS), "--no-cache"], cwd=ROOT, capture_output=True, text=True, timeout=300)
    assert result.returncode == 0, result.stdout[-4000:] + result.stderr[-2000:]
    assert "0 broken" in result.stdout


def test_contracts_have_no_exceptions():
    config = tomllib.loads((ROOT / "pyproject.toml").read_text(encoding="utf-8"))["tool"]["importlinter"]
    assert config["contracts"], "no import contracts configured"
    for contract in config["contracts"]:
        assert not contract.get("ignore_imports"), f"{contract['name']!r} excuses imports; move them instead"


def test_tokenizers_and_checkpoints_do_not_import_the_bio_lab():
    code = (
        "import sys, attnlab.checkpoint, attnlab.tokenizers\n"
        "assert {'protein', 'dna', 'rna'} <= set(attnlab.tokenizers.registered_kinds())\n"
        "assert 'attnlab.bio' not in sys.modules, 'attnlab.bio was imported'\n"
        "attnlab.tokenizers.build_tokenizer('protein', 'MKV')\n"
        "assert 'attnlab.bio.tokenizers' in sys.modules\n"
    )
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60)
    assert result.returncode == 0, result.stderr

"""The repository contract: two quick-start commands, .ci/run, and the demo itself."""

import json
import re
from pathlib import Path

import pytest

from attnlab.cli import main

ROOT = Path(__file__).resolve().parents[1]


def quickstart_commands() -> list[str]:
    readme = (ROOT / "README.md").read_text(encoding="utf-8")
    section = readme.split("## Quick start", 1)[1].split("\n## ", 1)[0]
    block = re.search(r"```\n(.*?)```", section, re.S).group(1)
    return [line.strip() for line in block.splitlines() if line.strip()]


def test_readme_quick_start_is_exactly_two_commands():
    assert quickstart_commands() == ["make demo", "make test"]


def test_ci_runs_the_readme_test_command():
    ci = (ROOT / ".ci" / "run").read_text()
    assert "make test" in ci.splitlines()[-1]
    makefile = (ROOT / "Makefile").read_text()
    assert re.search(r"^demo:", makefile, re.M) and re.search(r"^test:", makefile, re.M)
    assert "attnlab demo" in makefile and "pytest" in makefile


def test_torch_is_constrained_for_a_cpu_setup():
    assert "torch==2.13.0" in (ROOT / "requirements" / "constraints.txt").read_text()
    assert "-c requirements/constraints.txt" in (ROOT / "Makefile").read_text()


@pytest.mark.slow
def test_demo_end_to_end(tmp_path, capsys):
    out = tmp_path / "demo"
    assert main(["demo", "--seconds", "4", "--out", str(out)]) == 0
    printed = capsys.readouterr().out
    assert "sample at temperature 0.5" in printed and "sample at temperature 1.0" in printed
    assert f"run folder: {out}" in printed
    for name in ("loss_curve.png", "attention.png", "samples.txt", "model.safetensors", "metrics.jsonl"):
        assert (out / name).stat().st_size > 0, name
    assert (out / "loss_curve.png").read_bytes()[:4] == b"\x89PNG"
    results = json.loads((out / "results.json").read_text())
    assert results["step"] >= 5 and results["val_loss"] is not None

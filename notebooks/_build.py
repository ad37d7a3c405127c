"""Build the lab notebooks (notebooks/*.ipynb) from their readable sources (notebooks/sources/*.py).

The sources are plain Python in jupytext's "percent" format, which VS Code, PyCharm and
jupytext itself understand: `# %%` starts a code cell, `# %% [markdown]` a Markdown cell
whose lines are comments (`# text`); in code cells a commented magic (`# %matplotlib
inline`) is uncommented. jupytext reads the cells; this script adds what is ours. Comment
lines before the first cell are a header, not a cell; a header line `# requires:
module_a, module_b` lists optional packages the notebook imports (the test harness skips
it when one is missing, except under CI).

The notebooks are written without outputs and with deterministic cell ids, so a source
change gives a small diff and the test suite can check that every committed notebook
equals what its source builds (tests/notebooks/test_notebooks.py).

    python notebooks/_build.py            # rebuild every notebook from its source
    python notebooks/_build.py --check    # exit 1 and name the notebooks that are stale
"""

from __future__ import annotations

import argparse
import hashlib
import re
import sys
from pathlib import Path

import jupytext
import nbformat

NOTEBOOKS_DIR = Path(__file__).resolve().parent
SOURCES_DIR = NOTEBOOKS_DIR / "sources"
CELL_MARKER = re.compile(r"^# %%")  # where the header ends and jupytext's cells begin
HEADER_FIELD = re.compile(r"^#\s*(\w+):\s*(.*)$")  # "# requires: mod_a, mod_b"
# cell metadata jupytext keeps only to write the text back the same way (blank lines, marker style)
JUPYTEXT_LAYOUT = {"cell_marker", "lines_to_next_cell", "lines_to_end_of_cell_marker", "skipline", "noskipline"}
KERNELSPEC = {"name": "python3", "display_name": "Python 3 (ipykernel)", "language": "python"}


def parse_source(text: str) -> tuple[list[tuple[str, str]], dict[str, list[str]]]:
    """Split a percent-format source into cells (read by jupytext) and its header.

    Args:
        text: the source file's text.
    Returns:
        ([(cell_type, source), ...], header fields such as {"requires": [...]}).
    Raises:
        ValueError: a cell that is neither code nor Markdown (e.g. `# %% [raw]`).
    """
    lines = text.splitlines(keepends=True)
    first = next((i for i, line in enumerate(lines) if CELL_MARKER.match(line)), len(lines))
    header: dict[str, list[str]] = {}
    for line in lines[:first]:
        field = HEADER_FIELD.match(line)
        if field:
            header[field.group(1)] = [v.strip() for v in field.group(2).split(",") if v.strip()]
    notebook = jupytext.reads("".join(lines[first:]), fmt="py:percent")
    cells = []
    for cell in notebook.cells:
        if cell.cell_type not in ("code", "markdown"):
            raise ValueError(f"unknown cell marker for a {cell.cell_type} cell; use '# %%' or '# %% [markdown]'")
        extra = sorted(set(cell.metadata) - JUPYTEXT_LAYOUT)
        if extra:  # the notebooks carry no cell metadata: say so rather than drop it
            raise ValueError(
                f"cell metadata {', '.join(extra)} on a cell marker is not built into the notebook; remove it"
            )
        if cell.source.strip():
            cells.append((cell.cell_type, cell.source))
    return cells, header


def build_notebook(source: Path) -> str:
    """The .ipynb text (nbformat 4.5 JSON, no outputs) that `source` builds."""
    cells, header = parse_source(source.read_text(encoding="utf-8"))
    nb = nbformat.v4.new_notebook()
    nb.metadata = {
        "kernelspec": dict(KERNELSPEC),
        "language_info": {"name": "python"},
        "attnlab": {"source": f"sources/{source.name}", "requires": header.get("requires", [])},
    }
    seen: dict[str, int] = {}
    for kind, text in cells:
        digest = hashlib.sha1(f"{kind}\n{text}".encode()).hexdigest()[:10]
        seen[digest] = seen.get(digest, 0) + 1
        cell_id = digest if seen[digest] == 1 else f"{digest}-{seen[digest]}"  # identical cells stay distinct
        if kind == "markdown":
            cell = nbformat.v4.new_markdown_cell(text, id=cell_id)
        else:
            cell = nbformat.v4.new_code_cell(text, id=cell_id)
        nb.cells.append(cell)
    nbformat.validate(nb)
    return nbformat.writes(nb) + "\n"


def notebook_path(source: Path) -> Path:
    """notebooks/sources/NAME.py -> notebooks/NAME.ipynb."""
    return NOTEBOOKS_DIR / f"{source.stem}.ipynb"


def sources() -> list[Path]:
    """Every notebook source, in order."""
    return sorted(SOURCES_DIR.glob("[0-9]*.py"))


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--check", action="store_true", help="only report notebooks that differ from their source")
    args = parser.parse_args(argv)
    stale = []
    for source in sources():
        target = notebook_path(source)
        text = build_notebook(source)
        current = target.read_text(encoding="utf-8") if target.exists() else None
        if current == text:
            continue
        stale.append(target.name)
        if not args.check:
            from attnlab.utils import write_text_atomic

            write_text_atomic(target, text)
            print(f"wrote {target.relative_to(NOTEBOOKS_DIR.parent)}")
    if args.check and stale:
        print(f"stale notebooks (run python notebooks/_build.py): {', '.join(stale)}")
        return 1
    if not stale:
        print("every notebook is up to date with its source")
    return 0


if __name__ == "__main__":
    sys.exit(main())

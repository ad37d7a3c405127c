"""Build the lab notebooks (notebooks/*.ipynb) from their readable sources (notebooks/sources/*.py).

The sources are plain Python in the "percent" format that VS Code, PyCharm and jupytext
understand: `# %%` starts a code cell, `# %% [markdown]` a Markdown cell whose lines are
comments (`# text`); in code cells a commented magic (`# %matplotlib inline`) is
uncommented. Comment lines before the first cell are a header, not a cell; a
header line `# requires: module_a, module_b` lists optional packages the notebook
imports (the test harness skips it when one is missing, except under CI).

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

import nbformat

NOTEBOOKS_DIR = Path(__file__).resolve().parent
SOURCES_DIR = NOTEBOOKS_DIR / "sources"
CELL_MARKER = re.compile(r"^# %%(?P<rest>.*)$")
MAGIC = re.compile(r"^# (%[A-Za-z].*)$")  # a commented IPython magic, as jupytext writes it
KERNELSPEC = {"name": "python3", "display_name": "Python 3 (ipykernel)", "language": "python"}


def parse_source(text: str) -> tuple[list[tuple[str, str]], dict[str, list[str]]]:
    """Split a percent-format source into cells.

    Args:
        text: the source file's text.
    Returns:
        ([(cell_type, source), ...], header fields such as {"requires": [...]}).
    Raises:
        ValueError: a cell marker this builder does not know.
    """
    cells: list[tuple[str, list[str]]] = []
    header: dict[str, list[str]] = {}
    for line in text.splitlines():
        match = CELL_MARKER.match(line)
        if match:
            rest = match.group("rest").strip()
            if rest == "[markdown]":
                cells.append(("markdown", []))
            elif rest == "":
                cells.append(("code", []))
            else:
                raise ValueError(f"unknown cell marker {line!r}; use '# %%' or '# %% [markdown]'")
            continue
        if not cells:  # the header
            field = re.match(r"^#\s*(\w+):\s*(.*)$", line)
            if field:
                header[field.group(1)] = [v.strip() for v in field.group(2).split(",") if v.strip()]
            continue
        cells[-1][1].append(line)
    out = []
    for kind, lines in cells:
        while lines and not lines[-1].strip():
            lines.pop()
        while lines and not lines[0].strip():
            lines.pop(0)
        if kind == "markdown":
            lines = [_uncomment(line) for line in lines]
        else:
            lines = [MAGIC.sub(r"\1", line) for line in lines]  # "# %matplotlib inline" -> "%matplotlib inline"
        if lines:
            out.append((kind, "\n".join(lines)))
    return out, header


def _uncomment(line: str) -> str:
    if line == "#":
        return ""
    if line.startswith("# "):
        return line[2:]
    raise ValueError(f"a Markdown line must start with '# ' (or be '#'): {line!r}")


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

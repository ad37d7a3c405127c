"""Every shell command in README.md and docs/*.md runs as written.

The test reads each ```bash / ```sh / ```shell / ```console block of the README and of every
page in docs/, and runs the commands of one document in order, in a fresh scratch folder
(HOME points inside it, the data cache is the suite's isolated one, ATTNLAB_OFFLINE=1 and
HF_HUB_OFFLINE=1), so a command that breaks fails with its document, line and command.
There is one test per document (its commands share the folder, so the test is safe under
pytest-xdist), and one skipped test per command that is not run, whose reason `-ra` prints;
a failure lists every failing command as `DOCUMENT:LINE: `COMMAND` exited with code N`.

Lines: `#` comments are ignored; `\\` joins lines; in ```console blocks only `$ ` lines are
commands (the rest is output); `cd DIR` moves within the scratch folder; `pip install`,
`git clone`, `make`, `python -m venv` and `source` are skipped ("installs": the test runs
in the installed venv); `.venv/bin/X` is the venv's X. A command that starts with `attnlab`
and uses no shell syntax runs in-process through `attnlab.cli.main` (the console script's
entry point: no second torch import per command); every other command runs in bash with the
venv's bin/ first on PATH.

Markers: an HTML comment on the lines just above a block's opening fence (blank lines may
separate them), one marker a comment, several comments allowed. TEXT filters to the
commands that contain it; without it a marker applies to every command of the block.

    <!-- doc-test: skip: REASON -->          the block is not run; REASON is the skip reason
    <!-- doc-test: skip "TEXT": REASON -->   the commands containing TEXT are not run
    <!-- doc-test: fast: ARGS -->            run every command with ARGS appended (a short variant)
    <!-- doc-test: fast "TEXT": ARGS -->     ARGS appended to the commands containing TEXT
    <!-- doc-test: replace "X" "Y" -->       run the block with X replaced by Y (e.g. a placeholder)

Use skip for what the test cannot supply (the network, a GPU, a server or browser that never
exits, minutes of work with no short variant) and say why; use fast for long commands. An
unknown marker, a marker with no block under it and an unmarked never-exiting command
(`attnlab app`, `jupyter lab`, `make app`, `make lab`) are errors.
"""

from __future__ import annotations

import contextlib
import io
import os
import re
import shlex
import subprocess
import sys
from dataclasses import dataclass, field
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
DOCUMENTS = [ROOT / "README.md", *sorted((ROOT / "docs").glob("*.md"))]
VENV_BIN = Path(sys.executable).parent
SHELL_LANGUAGES = ("bash", "sh", "shell", "console")
FENCE = re.compile(r"^\s*```\s*([\w+-]*)")
MARKER = re.compile(r"^\s*<!--\s*doc-test:\s*(.*?)\s*-->\s*$")
MARKER_FORMS = (
    ("skip", re.compile(r'^skip(?:\s+"([^"]+)")?:\s*(\S.*)$')),
    ("fast", re.compile(r'^fast(?:\s+"([^"]+)")?:\s*(\S.*)$')),
    ("replace", re.compile(r'^replace\s+"([^"]*)"\s+"([^"]*)"$')),
)
INSTALLS = re.compile(r"^(pip3?\s+install|python3?\s+-m\s+(pip\s+install|venv)|git\s+clone|make(\s|$)|source\s|\.\s)")
NEVER_EXITS = re.compile(r"^(attnlab\s+app\b|jupyter\s+(lab|notebook)\b|make\s+(app|lab)\b|streamlit\s+run\b)")
SHELL_SYNTAX = re.compile(r"\$[({\w]|(^|\s)~|[*?]")
COMMAND_TIMEOUT_S = 120


@dataclass
class Marker:
    kind: str  # skip | fast | replace
    first: str | None  # skip/fast: the TEXT filter (None = every command); replace: X
    second: str  # skip: the reason; fast: the arguments; replace: Y
    line: int


@dataclass
class Command:
    document: str  # relative to the repository root
    line: int  # 1-based line of the command's first line
    text: str  # as written in the document, comments stripped, continuations joined
    run_text: str | None  # what runs (after replace and fast); None = skipped
    skip_reason: str = ""


@dataclass
class _Block:
    language: str
    line: int  # line of the opening fence
    lines: list[tuple[int, str]] = field(default_factory=list)
    markers: list[Marker] = field(default_factory=list)


def parse_marker(text: str, line: int, where: str) -> Marker:
    for kind, pattern in MARKER_FORMS:
        match = pattern.match(text)
        if match:
            return Marker(kind, match.group(1), match.group(2), line)
    raise ValueError(
        f"{where}:{line}: unknown doc-test marker {text!r}; the forms are skip: REASON, "
        'skip "TEXT": REASON, fast: ARGS, fast "TEXT": ARGS, replace "X" "Y" (see tests/test_doc_commands.py)'
    )


def _blocks(path: Path, where: str) -> list[_Block]:
    blocks: list[_Block] = []
    pending: list[Marker] = []
    current: _Block | None = None
    in_other_fence = False
    for number, raw in enumerate(path.read_text(encoding="utf-8").splitlines(), start=1):
        fence = FENCE.match(raw)
        if current is not None:
            if fence and not fence.group(1):
                blocks.append(current)
                current = None
            else:
                current.lines.append((number, raw))
            continue
        if in_other_fence:
            in_other_fence = not (fence and not fence.group(1))
            continue
        if fence:
            if fence.group(1).lower() in SHELL_LANGUAGES:
                current = _Block(fence.group(1).lower(), number, markers=pending)
            else:
                if pending:
                    raise ValueError(f"{where}:{pending[0].line}: a doc-test marker above a non-shell block")
                in_other_fence = True
            pending = []
            continue
        marker = MARKER.match(raw)
        if marker:
            pending.append(parse_marker(marker.group(1), number, where))
        elif raw.strip() and pending:
            raise ValueError(f"{where}:{pending[0].line}: a doc-test marker with no shell block right under it")
    if pending:
        raise ValueError(f"{where}:{pending[0].line}: a doc-test marker with no shell block under it")
    return blocks


def strip_comment(line: str) -> str:
    """The line without its `# comment` (a # outside quotes, at the start or after a space)."""
    quote = ""
    for i, char in enumerate(line):
        if quote:
            if char == quote:
                quote = ""
        elif char in "'\"":
            quote = char
        elif char == "#" and (i == 0 or line[i - 1].isspace()):
            return line[:i].rstrip()
    return line.rstrip()


def _block_commands(block: _Block) -> list[tuple[int, str]]:
    commands: list[tuple[int, str]] = []
    pending_line, pending = 0, ""
    for number, raw in block.lines:
        text = raw.strip()
        if block.language == "console":
            if pending:
                pass  # a continuation of a `$ ` line
            elif text.startswith("$ "):
                text = text[2:]
            else:
                continue  # output
        if not pending:
            pending_line = number
        text = strip_comment(text) if not text.endswith("\\") else text
        if text.endswith("\\"):
            pending += strip_comment(text[:-1]) + " "
            continue
        text = (pending + text).strip()
        pending = ""
        if text:
            commands.append((pending_line, text))
    if pending.strip():
        commands.append((pending_line, pending.strip()))
    return commands


def _applies(marker: Marker, command: str) -> bool:
    return marker.first is None or marker.first in command


def document_commands(path: Path, root: Path = ROOT) -> list[Command]:
    where = path.relative_to(root).as_posix()
    found: list[Command] = []
    for block in _blocks(path, where):
        skip_block = next((m for m in block.markers if m.kind == "skip" and m.first is None), None)
        for line, text in _block_commands(block):
            command = Command(where, line, text, None)
            run = text
            for marker in block.markers:
                if marker.kind == "replace":
                    run = run.replace(marker.first or "", marker.second)
            skip = skip_block or next((m for m in block.markers if m.kind == "skip" and _applies(m, text)), None)
            if skip is not None:
                command.skip_reason = skip.second
            elif INSTALLS.match(run):
                command.skip_reason = "installs (the test runs in the installed venv)"
            elif NEVER_EXITS.match(run):
                raise ValueError(
                    f"{where}:{line}: `{text}` never exits; mark its block "
                    '<!-- doc-test: skip "TEXT": REASON --> (see tests/test_doc_commands.py)'
                )
            else:
                extra = [m.second for m in block.markers if m.kind == "fast" and _applies(m, text)]
                command.run_text = " ".join([run, *extra])
            found.append(command)
    return found


def _all_commands() -> list[Command]:
    return [command for path in DOCUMENTS for command in document_commands(path)]


COMMANDS = _all_commands()
RUN_DOCUMENTS = sorted({c.document for c in COMMANDS if c.run_text is not None})
SKIPPED = [c for c in COMMANDS if c.run_text is None]


def _shell_syntax(text: str) -> bool:
    lexer = shlex.shlex(text, posix=True, punctuation_chars=True)
    lexer.whitespace_split = True
    tokens = list(lexer)
    return any(token and set(token) <= set("|&;<>()") for token in tokens) or bool(SHELL_SYNTAX.search(text))


def _run_in_process(argv: list[str]) -> tuple[int, str]:
    from attnlab.cli import main

    out, err = io.StringIO(), io.StringIO()
    with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
        try:
            code = main(argv)
        except SystemExit as e:  # argparse
            code = e.code if isinstance(e.code, int) else (0 if e.code is None else 2)
    return int(code or 0), out.getvalue() + err.getvalue()


def _run_in_bash(text: str, cwd: Path, env: dict) -> tuple[int, str]:
    try:
        done = subprocess.run(
            ["bash", "-c", text],
            cwd=cwd,
            env=env,
            capture_output=True,
            text=True,
            timeout=COMMAND_TIMEOUT_S,
            stdin=subprocess.DEVNULL,
        )
    except subprocess.TimeoutExpired:
        return 124, f"did not finish in {COMMAND_TIMEOUT_S} s"
    return done.returncode, done.stdout + done.stderr


@pytest.mark.parametrize("document", RUN_DOCUMENTS)
def test_document_commands_run(document: str, tmp_path, monkeypatch):
    """The commands of one document, in order, in one scratch folder (one test: safe under xdist)."""
    (tmp_path / "home").mkdir()
    monkeypatch.setenv("HOME", str(tmp_path / "home"))
    monkeypatch.setenv("ATTNLAB_OFFLINE", "1")
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    monkeypatch.setenv("PATH", str(VENV_BIN) + os.pathsep + os.environ.get("PATH", ""))
    monkeypatch.delenv("ATTNLAB_APP_RUNS_DIR", raising=False)
    monkeypatch.delenv("ATTNLAB_SOLUTIONS", raising=False)
    cwd = tmp_path
    failures: list[str] = []
    for command in (c for c in COMMANDS if c.document == document and c.run_text is not None):
        text = re.sub(r"(^|\s)\.venv/bin/", lambda m: m.group(1) + str(VENV_BIN) + os.sep, command.run_text)
        where = f"{command.document}:{command.line}: `{command.text}`"
        if command.run_text != command.text:
            where += f" (run as `{text}`)"
        monkeypatch.chdir(cwd)
        words = shlex.split(text)
        if words[0] == "cd" and len(words) == 2 and not _shell_syntax(text):
            target = (cwd / os.path.expanduser(words[1])).resolve()
            if not target.is_dir():
                failures.append(f"{where}: no folder {target}")
            else:
                cwd = target
            continue
        if words[0] == "attnlab" and not _shell_syntax(text):
            code, output = _run_in_process(words[1:])
        else:
            code, output = _run_in_bash(text, cwd, dict(os.environ))
        if code != 0:
            tail = "\n  ".join(output.strip().splitlines()[-15:])
            failures.append(f"{where} exited with code {code}:\n  {tail}")
    assert not failures, f"{len(failures)} documented command(s) failed:\n" + "\n".join(failures)


@pytest.mark.parametrize("command", SKIPPED, ids=[f"{c.document}:{c.line}" for c in SKIPPED])
def test_documented_command_skipped(command: Command):
    """A command the test does not run, with the reason its marker (or the rule) gives."""
    assert command.skip_reason
    pytest.skip(f"{command.document}:{command.line} `{command.text}`: {command.skip_reason}")


def test_markers_parse_and_apply(tmp_path):
    """The marker rules on a small document: skips with reasons, fast arguments, replacements."""
    page = tmp_path / "page.md"
    page.write_text(
        "Text.\n\n"
        "<!-- doc-test: skip: needs the network -->\n"
        "```bash\nattnlab data fetch shakespeare\n```\n\n"
        '<!-- doc-test: fast "train": --max-iters 2 -->\n'
        '<!-- doc-test: replace "DIR" "runs/x" -->\n\n'
        "```bash\nattnlab train --out DIR   # a comment\nattnlab generate --checkpoint DIR \\\n"
        '    --prompt "a # b"\npip install -e .\n```\n\n'
        '<!-- doc-test: skip "attnlab app": starts a server -->\n'
        "```console\n$ attnlab app --port 8600\n(output)\n$ attnlab doctor\n```\n"
        "```python\nprint('not shell')\n```\n",
        encoding="utf-8",
    )
    commands = document_commands(page, tmp_path)
    assert [(c.line, c.text) for c in commands] == [
        (5, "attnlab data fetch shakespeare"),
        (12, "attnlab train --out DIR"),
        (13, 'attnlab generate --checkpoint DIR --prompt "a # b"'),
        (15, "pip install -e ."),
        (20, "attnlab app --port 8600"),
        (22, "attnlab doctor"),
    ]
    assert [c.run_text for c in commands] == [
        None,
        "attnlab train --out runs/x --max-iters 2",
        'attnlab generate --checkpoint runs/x --prompt "a # b"',
        None,
        None,
        "attnlab doctor",
    ]
    assert [c.skip_reason for c in commands if c.run_text is None] == [
        "needs the network",
        "installs (the test runs in the installed venv)",
        "starts a server",
    ]
    page.write_text("<!-- doc-test: skipp: typo -->\n```bash\nattnlab doctor\n```\n", encoding="utf-8")
    with pytest.raises(ValueError, match="unknown doc-test marker"):
        document_commands(page, tmp_path)
    page.write_text("```bash\nattnlab app\n```\n", encoding="utf-8")
    with pytest.raises(ValueError, match="never exits"):
        document_commands(page, tmp_path)
    assert _shell_syntax("attnlab doctor --json > $(hostname).json")
    assert _shell_syntax("attnlab app --runs-dir ~/runs")
    assert not _shell_syntax('attnlab viz attention --text "it was tired." --out a.png')

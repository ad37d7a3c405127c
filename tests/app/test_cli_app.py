"""`attnlab app`: flags, errors and the Streamlit command it runs (without starting a server)."""

from __future__ import annotations

import subprocess
import sys

import pytest

from attnlab.app import RUNS_ENV, main_script
from attnlab.cli import app as cli_app
from attnlab.cli import main


def test_help_lists_the_options(capsys):
    assert main(["app", "--help"]) == 0
    out = capsys.readouterr().out
    for flag in ("--port", "--host", "--runs-dir"):
        assert flag in out


@pytest.mark.parametrize(
    "argv, message",
    [
        (["app", "--port", "0"], "--port must be between 1 and 65535"),
        (["app", "--port", "70000"], "--port must be between 1 and 65535"),
        (["app", "--host", "my laptop"], "--host must be an IP address"),
    ],
)
def test_bad_flags_are_one_line_errors(argv, message, capsys):
    assert main(argv) == 2
    err = capsys.readouterr().err
    assert err.startswith("attnlab: error:") and message in err and err.count("\n") == 1


def test_runs_dir_that_is_a_file(tmp_path, capsys):
    (tmp_path / "runs").write_text("not a folder")
    assert main(["app", "--runs-dir", str(tmp_path / "runs")]) == 2
    assert "is a file" in capsys.readouterr().err


def test_streamlit_command_is_headless_local_and_private():
    cmd = cli_app.streamlit_command("127.0.0.1", 8600)
    assert cmd[:5] == [sys.executable, "-m", "streamlit", "run", str(main_script())]
    options = dict(zip(cmd[5::2], cmd[6::2]))
    assert options["--server.address"] == "127.0.0.1" and options["--server.port"] == "8600"
    assert options["--server.headless"] == "true" and options["--browser.gatherUsageStats"] == "false"
    assert main_script().is_file() and (main_script().parent / "pages" / "generate.py").is_file()


def test_app_starts_streamlit_with_the_runs_folder(monkeypatch, tmp_path, capsys):
    calls = {}

    class FakeProcess:
        def __init__(self, cmd, env, **options):
            calls["cmd"], calls["env"], calls["options"] = cmd, env, options

        def wait(self, timeout=None):
            return 0

        def poll(self):
            return 0

    monkeypatch.setattr(subprocess, "Popen", FakeProcess)
    monkeypatch.chdir(tmp_path)
    assert main(["app", "--port", "8611"]) == 0
    out = capsys.readouterr().out
    assert "http://localhost:8611" in out and "not created yet" in out
    assert calls["env"][RUNS_ENV] == str(tmp_path / "runs")  # default: ./runs, where `attnlab demo` writes
    assert calls["env"]["STREAMLIT_BROWSER_GATHER_USAGE_STATS"] == "false"
    assert "8611" in calls["cmd"] and "127.0.0.1" in calls["cmd"]
    assert calls["options"].get("start_new_session") is True  # its own session: signals come through us
    (tmp_path / "mine").mkdir()
    assert main(["app", "--runs-dir", "mine", "--host", "0.0.0.0"]) == 0
    out = capsys.readouterr().out
    assert calls["env"][RUNS_ENV] == str(tmp_path / "mine") and "other computers" in out

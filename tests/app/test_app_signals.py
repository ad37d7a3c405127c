"""`attnlab app` stops the server it started: SIGTERM/SIGINT to the launcher reach Streamlit.

Before, a launcher stopped with SIGTERM by a script left its Streamlit server running,
re-parented to init and still holding the port.
"""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import textwrap
import time
import urllib.request

import pytest

from attnlab.cli import app as cli_app

pytestmark = pytest.mark.skipif(os.name != "posix", reason="POSIX signals")


def _free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _port_is_free(port: int) -> bool:
    """Nothing listens on the port, and a new server could bind it (as Streamlit does, with SO_REUSEADDR)."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.settimeout(1)
        if s.connect_ex(("127.0.0.1", port)) == 0:
            return False
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)  # connections in TIME_WAIT do not count
        try:
            s.bind(("127.0.0.1", port))
        except OSError:
            return False
        return True


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    return True


def _wait_for(predicate, timeout: float) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return True
        time.sleep(0.1)
    return predicate()


CHILD = textwrap.dedent(
    """
    import os, signal, sys, time
    out = sys.argv[1]
    def stop(signum, frame):
        with open(out, "a") as f:
            f.write(f"stopped by {signum}\\n")
        sys.exit(3)
    signal.signal(signal.SIGTERM, stop)
    signal.signal(signal.SIGINT, stop)
    with open(out, "a") as f:
        f.write(f"pid {os.getpid()}\\n")
    while True:
        time.sleep(0.05)
    """
)

LAUNCHER = textwrap.dedent(
    """
    import sys
    from attnlab.cli.app import run_child
    sys.exit(run_child([sys.executable, "-c", sys.argv[1], sys.argv[2]], grace=float(sys.argv[3])))
    """
)


def _start_launcher(tmp_path, child: str = CHILD, grace: float = 10.0):
    log = tmp_path / "child.log"
    launcher = subprocess.Popen([sys.executable, "-c", LAUNCHER, child, str(log), str(grace)])
    assert _wait_for(lambda: log.is_file() and "pid" in log.read_text(), 30), "the child did not start"
    child_pid = int(log.read_text().split()[1])
    return launcher, log, child_pid


@pytest.mark.parametrize("sig", [signal.SIGTERM, signal.SIGINT])
def test_a_signal_to_the_launcher_stops_the_child_and_returns_its_status(tmp_path, sig):
    launcher, log, child_pid = _start_launcher(tmp_path)
    launcher.send_signal(sig)  # to the launcher alone, as a script or systemd would
    assert launcher.wait(timeout=20) == 3  # the child's own exit status
    assert f"stopped by {int(sig)}" in log.read_text()
    assert _wait_for(lambda: not _alive(child_pid), 5)


def test_a_child_that_ignores_the_signal_is_killed_after_the_grace_period(tmp_path):
    stubborn = CHILD.replace("signal.signal(signal.SIGTERM, stop)", "signal.signal(signal.SIGTERM, signal.SIG_IGN)")
    launcher, log, child_pid = _start_launcher(tmp_path, stubborn, grace=1.0)
    launcher.send_signal(signal.SIGTERM)
    assert launcher.wait(timeout=20) == 128 + signal.SIGKILL
    assert _wait_for(lambda: not _alive(child_pid), 5)


def test_the_child_runs_in_its_own_session(tmp_path):
    launcher, log, child_pid = _start_launcher(tmp_path)
    try:
        assert os.getsid(child_pid) == child_pid != os.getsid(launcher.pid)
    finally:
        launcher.send_signal(signal.SIGTERM)
        launcher.wait(timeout=20)


def test_run_child_restores_the_signal_handlers(tmp_path):
    before = {sig: signal.getsignal(sig) for sig in cli_app.FORWARDED_SIGNALS}
    assert cli_app.run_child([sys.executable, "-c", "import sys; sys.exit(5)"]) == 5
    assert {sig: signal.getsignal(sig) for sig in cli_app.FORWARDED_SIGNALS} == before


@pytest.mark.slow
def test_sigterm_to_attnlab_app_frees_the_port(tmp_path):
    """The real thing: `attnlab app` with Streamlit, stopped by SIGTERM to the launcher only."""
    pytest.importorskip("streamlit")
    port = _free_port()
    log = tmp_path / "server.log"
    with open(log, "wb") as out:
        launcher = subprocess.Popen(
            [sys.executable, "-m", "attnlab", "app", "--port", str(port), "--runs-dir", str(tmp_path / "runs")],
            stdout=out,
            stderr=subprocess.STDOUT,
            env={**os.environ, "PYTHONUNBUFFERED": "1"},
        )
    try:

        def healthy() -> bool:
            assert launcher.poll() is None, log.read_text(errors="replace")
            try:
                with urllib.request.urlopen(f"http://127.0.0.1:{port}/_stcore/health", timeout=2) as r:
                    return r.status == 200
            except OSError:
                return False

        assert _wait_for(healthy, 90), log.read_text(errors="replace")
        assert not _port_is_free(port)
        launcher.send_signal(signal.SIGTERM)
        code = launcher.wait(timeout=30)
        assert code in (0, 128 + signal.SIGTERM), log.read_text(errors="replace")
        assert _wait_for(lambda: _port_is_free(port), 10), "Streamlit still holds the port after the launcher exited"
    finally:
        if launcher.poll() is None:
            launcher.kill()
            launcher.wait()

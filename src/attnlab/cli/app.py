"""`attnlab app [--port P] [--host 127.0.0.1] [--runs-dir DIR]`: start the Streamlit web app.

Runs `python -m streamlit run <installed attnlab/app/main.py>` headless, bound to
127.0.0.1 by default (only this computer can open it), with Streamlit's usage
statistics off. The runs folder reaches the app through the environment variable
`attnlab.app.RUNS_ENV`; the app reads models only from inside it.
"""

from __future__ import annotations

import argparse
import ipaddress
import os
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path
from typing import Any

from attnlab import limits
from attnlab.errors import ConfigError

DEFAULT_PORT = 8501
DEFAULT_HOST = "127.0.0.1"


def register(sub: argparse._SubParsersAction) -> None:
    """Add the `app` command to the top-level parser."""
    p = sub.add_parser(
        "app",
        help="the interactive web app: generate step by step, attention, inside the block, positions, vision, proteins",
        description=(
            "Start attnlab's web app (Streamlit) and print its address; open it in a browser. "
            "It reads trained models from the runs folder only. Stop it with Ctrl-C."
        ),
    )
    p.add_argument(
        "--port",
        type=int,
        default=DEFAULT_PORT,  # check_port refuses the rest in attnlab's words
        help=f"port to serve on, 1 to {limits.MAX_PORT:,} (default {DEFAULT_PORT})",
    )
    p.add_argument(
        "--host",
        default=DEFAULT_HOST,
        help=f"address to bind (default {DEFAULT_HOST}: this computer only; 0.0.0.0 shares it on the network)",
    )
    p.add_argument(
        "--runs-dir",
        default="runs",
        help="folder of trained models the app may read (default ./runs, where `attnlab demo` writes)",
    )
    p.set_defaults(func=_run)


def check_port(port: int) -> int:
    """Validate a TCP port number."""
    if not 1 <= port <= 65535:
        raise ConfigError(f"--port must be between 1 and 65535, got {port}")
    return port


def check_host(host: str) -> str:
    """Validate the bind address (an IP address or `localhost`)."""
    if host == "localhost":
        return host
    try:
        ipaddress.ip_address(host)
    except ValueError:
        raise ConfigError(
            f"--host must be an IP address such as 127.0.0.1 (this computer only) or 0.0.0.0, got {host!r}"
        ) from None
    return host


def streamlit_command(host: str, port: int) -> list[str]:
    """The command line that serves the app."""
    from attnlab.app import main_script

    return [
        sys.executable,
        "-m",
        "streamlit",
        "run",
        str(main_script()),
        "--server.address",
        host,
        "--server.port",
        str(port),
        "--server.headless",
        "true",
        "--server.fileWatcherType",
        "none",
        "--server.runOnSave",
        "false",
        "--browser.gatherUsageStats",
        "false",
        "--client.toolbarMode",
        "minimal",
        "--client.showErrorDetails",
        "type",  # an unexpected bug shows its type; the traceback goes to the terminal
        "--theme.base",
        "light",
        "--theme.primaryColor",
        "#0072B2",
    ]


def app_environment(runs_dir: Path) -> dict[str, str]:
    """The environment of the Streamlit process: the runs folder, telemetry off."""
    from attnlab.app import RUNS_ENV

    env = dict(os.environ)
    env[RUNS_ENV] = str(runs_dir)
    env["STREAMLIT_BROWSER_GATHER_USAGE_STATS"] = "false"
    env["STREAMLIT_SERVER_HEADLESS"] = "true"
    return env


def _run(args: argparse.Namespace) -> int:
    port = check_port(args.port)
    host = check_host(args.host)
    try:
        import streamlit  # noqa: F401
    except ImportError:
        raise ConfigError(
            "the app needs Streamlit, which is not installed; install it with `pip install 'attnlab[labs]'`"
        ) from None
    runs_dir = Path(args.runs_dir).expanduser().absolute()
    if runs_dir.exists() and not runs_dir.is_dir():
        raise ConfigError(f"--runs-dir {str(runs_dir)!r} is a file; pass the folder that holds your runs")
    shown = "localhost" if host in ("127.0.0.1", "localhost") else host
    print(f"attnlab app: open http://{shown}:{port} in a browser (Ctrl-C stops it)")
    print(
        f"runs folder: {runs_dir}"
        + ("" if runs_dir.is_dir() else " (not created yet: the Generate page can train a model)")
    )
    if host not in ("127.0.0.1", "localhost", "::1"):
        print(f"note: bound to {host}: other computers on the network can open the app")
    sys.stdout.flush()
    return run_child(streamlit_command(host, port), env=app_environment(runs_dir))


# Signals the launcher passes on to the server it started (SIGHUP: the terminal closed).
FORWARDED_SIGNALS = tuple(getattr(signal, name) for name in ("SIGINT", "SIGTERM", "SIGHUP") if hasattr(signal, name))
STOP_GRACE_SECONDS = 10.0  # how long the server may take to stop before it is killed


def run_child(command: list[str], *, env: dict[str, str] | None = None, grace: float = STOP_GRACE_SECONDS) -> int:
    """Run `command` until it exits; forward SIGINT/SIGTERM/SIGHUP to it and wait for it.

    The child runs in its own process group (its own session on POSIX), so a Ctrl-C in
    the terminal reaches it exactly once, through this launcher, and a SIGTERM sent to the
    launcher alone (by a script, systemd, a test) stops the server too instead of leaving
    it running re-parented to init and holding the port. A child that has not stopped
    `grace` seconds after the first signal is killed. If the launcher itself fails, the
    child is killed before the error propagates.

    Returns:
        The child's exit status; 128 + N when it ended by signal N (the shell's convention).
    """
    popen_options: dict[str, Any] = {}
    if os.name == "posix":
        popen_options["start_new_session"] = True
    else:  # Windows: a new process group, stopped with terminate() (TerminateProcess)
        popen_options["creationflags"] = getattr(subprocess, "CREATE_NEW_PROCESS_GROUP", 0)
    process = subprocess.Popen(command, env=env, **popen_options)
    received: list[int] = []

    def forward(signum: int, frame: Any) -> None:  # noqa: ARG001
        received.append(signum)
        if process.poll() is None:
            if os.name == "posix":
                process.send_signal(signum)
            else:
                process.terminate()

    previous = {}
    if threading.current_thread() is threading.main_thread():
        for sig in FORWARDED_SIGNALS:
            previous[sig] = signal.signal(sig, forward)
    try:
        deadline = None
        while True:
            try:
                code = process.wait(timeout=0.2)
                break
            except subprocess.TimeoutExpired:
                pass
            if received and deadline is None:
                deadline = time.monotonic() + grace
            if deadline is not None and time.monotonic() > deadline:
                process.kill()
                code = process.wait()
                break
    except BaseException:
        if process.poll() is None:
            process.kill()
            process.wait()
        raise
    finally:
        for sig, handler in previous.items():
            signal.signal(sig, handler)
    return 128 - code if code < 0 else code

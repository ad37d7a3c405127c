"""End to end: `attnlab app` in a real headless Chromium, driven by Playwright.

Starts `python -m attnlab app` on a free port with a temporary runs folder holding a
tiny trained GPT, waits for Streamlit's health endpoint, then: types a prompt, moves
the temperature slider with the keyboard, presses Generate, waits for the generated
text and the attention figure, switches to the Attention page and to the Experiments page
(both patching heatmaps), and saves screenshots
under the test's temporary folder. The server is always terminated.

Needs Debian's chromium (`apt-get install chromium`) and Playwright's Python package
(`pip install playwright`; no `playwright install` needed: the system Chromium is
used). Without them the test skips saying so, except under CI (CI=true), where it fails.
"""

from __future__ import annotations

import os
import shutil
import signal
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import pytest

HOW_TO_ENABLE = "install Chromium with `apt-get install chromium` and Playwright with `pip install playwright`"
CHROMIUM_ARGS = ["--no-sandbox", "--disable-gpu", "--disable-background-networking", "--disable-dev-shm-usage"]


def _in_ci() -> bool:
    return os.environ.get("CI", "").lower() in ("1", "true", "yes")


def _chromium(candidates: list[str | None] | None = None) -> str:
    """Path of the system Chromium; skips (fails under CI) when it or Playwright is missing."""
    if candidates is None:
        candidates = [
            os.environ.get("ATTNLAB_CHROMIUM"),
            "/usr/bin/chromium",
            shutil.which("chromium"),
            shutil.which("chromium-browser"),
        ]
    executable = next((c for c in candidates if c and Path(c).is_file()), None)
    missing = []
    if executable is None:
        missing.append("Chromium (/usr/bin/chromium)")
    try:
        import playwright.sync_api  # noqa: F401
    except ImportError:
        missing.append("the playwright Python package")
    if missing:
        message = f"the browser test needs {' and '.join(missing)}: {HOW_TO_ENABLE}"
        if _in_ci():
            pytest.fail(message + "; under CI it must run (.ci/run installs chromium)")
        pytest.skip(message)
    return executable


def _free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _wait_healthy(url: str, process: subprocess.Popen, log: Path, timeout: float = 90.0) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if process.poll() is not None:
            pytest.fail(f"`attnlab app` exited with code {process.returncode}:\n{log.read_text(errors='replace')}")
        try:
            with urllib.request.urlopen(f"{url}/_stcore/health", timeout=2) as response:
                if response.status == 200:
                    return
        except OSError:
            pass
        time.sleep(0.3)
    pytest.fail(f"`attnlab app` did not answer on {url} within {timeout:.0f} s:\n{log.read_text(errors='replace')}")


@pytest.fixture
def chromium() -> str:
    """The Chromium executable (checked before any server starts)."""
    return _chromium()


@pytest.fixture
def server(chromium, full_runs, tmp_path):
    """`attnlab app` serving the runs folder on a free port; yields its URL."""
    port = _free_port()
    log = tmp_path / "server.log"
    env = {**os.environ, "PYTHONUNBUFFERED": "1"}
    with open(log, "wb") as out:
        process = subprocess.Popen(
            [sys.executable, "-m", "attnlab", "app", "--port", str(port), "--runs-dir", str(full_runs)],
            stdout=out,
            stderr=subprocess.STDOUT,
            env=env,
            start_new_session=True,  # its own process group
        )
    url = f"http://127.0.0.1:{port}"
    try:
        _wait_healthy(url, process, log)
        yield url
    finally:
        if process.poll() is None:
            process.send_signal(signal.SIGTERM)  # the launcher passes it on to Streamlit and waits for it
            try:
                process.wait(timeout=20)
            except subprocess.TimeoutExpired:
                os.killpg(process.pid, signal.SIGKILL)
                process.wait()


def test_missing_chromium_skips_with_instructions_but_fails_under_ci(monkeypatch, tmp_path):
    missing = [str(tmp_path / "no-chromium")]
    monkeypatch.delenv("CI", raising=False)
    with pytest.raises(pytest.skip.Exception, match="apt-get install chromium"):
        _chromium(missing)
    monkeypatch.setenv("CI", "true")
    with pytest.raises(pytest.fail.Exception, match="under CI it must run"):
        _chromium(missing)


@pytest.mark.browser
@pytest.mark.slow
def test_generate_and_switch_pages_in_chromium(chromium, server, tmp_path):
    from playwright.sync_api import expect, sync_playwright

    from attnlab.app import figures as app_figures

    with sync_playwright() as p:
        expect.set_options(timeout=30_000)  # every wait below: a loaded 2-core CI machine is slow
        browser = p.chromium.launch(executable_path=chromium, args=CHROMIUM_ARGS)
        try:
            page = browser.new_page(viewport={"width": 1400, "height": 2000})
            page.set_default_timeout(60_000)
            page.goto(server)

            prompt = page.get_by_role("textbox", name="Prompt")
            prompt.fill("The ")
            temperature = page.get_by_role("slider", name="Temperature")
            expect(temperature).to_have_attribute("aria-valuetext", "0.80")
            temperature.focus()
            for _ in range(6):  # 6 steps of 0.05 to the left
                page.keyboard.press("ArrowLeft")
            expect(temperature).to_have_attribute("aria-valuetext", "0.50")
            page.get_by_role("button", name="Generate").click()

            generated = page.locator('[data-testid="generated-text"]')
            # generating takes seconds on a loaded 2-core machine: wait longer than expect's default 5 s
            expect(generated).to_be_visible(timeout=60_000)
            text = generated.inner_text()
            assert text.startswith("The ") and len(text) > len("The ")
            expect(page.get_by_text("Attention of the last step")).to_be_visible(timeout=30_000)
            # the step close-up and the attention of the last step; the layers x heads grid waits
            # in a collapsed expander, whose image the browser may or may not have attached yet
            figures = page.locator('[data-testid="stImage"] img:visible')
            expect(figures).to_have_count(2, timeout=30_000)
            # the image element appears before its bytes have loaded: wait until it has decoded
            page.wait_for_function("img => img.complete && img.naturalWidth > 100", arg=figures.nth(1).element_handle())
            # the heatmap's smallest token label, in screen pixels, at this 1400 px wide window
            shown, natural = figures.nth(1).evaluate("img => [img.clientWidth, img.naturalWidth]")
            label_px = app_figures.LABEL_POINTS * 110 / 72 * shown / natural  # drawn at 110 dpi
            assert label_px >= app_figures.MIN_LABEL_PX, (shown, natural, label_px)
            (tmp_path / "heatmap_label_px.txt").write_text(
                f"shown {shown} px of {natural} px: labels {label_px:.1f} px\n"
            )
            assert page.locator('[data-testid="stException"]').count() == 0
            page.screenshot(path=str(tmp_path / "generate.png"), full_page=True)

            page.locator('[data-testid="stSidebarNav"] a', has_text="Attention").click()
            expect(page.get_by_role("heading", name="Attention", exact=True)).to_be_visible()
            expect(page.locator('[data-testid="stImage"] img')).to_have_count(1)  # one head's heatmap
            assert page.locator('[data-testid="stException"]').count() == 0
            page.screenshot(path=str(tmp_path / "attention.png"), full_page=True)

            page.locator('[data-testid="stSidebarNav"] a', has_text="Experiments").click()
            expect(page.get_by_role("heading", name="Experiments", exact=True)).to_be_visible()
            # residual stream and heads: (L + 1) x T + L x H patched forwards first, so allow more than 5 s
            expect(page.locator('[data-testid="stImage"] img')).to_have_count(2, timeout=60_000)
            errors = page.locator('[data-testid="stException"]')
            assert errors.count() == 0, errors.all_inner_texts()
            page.screenshot(path=str(tmp_path / "experiments.png"), full_page=True)
        finally:
            browser.close()
    assert (tmp_path / "generate.png").stat().st_size > 10_000
    assert (tmp_path / "attention.png").stat().st_size > 10_000
    assert (tmp_path / "experiments.png").stat().st_size > 10_000

"""Real-browser harness: a live ``streamlit run`` server and headless Chromium driven by Playwright.

Fixtures (all browser tests are marked ``@pytest.mark.browser``):

* ``app_server`` (session): starts ``python -m streamlit run streamlit_app.py`` on a free port from the
  repository root, waits for ``/_stcore/health`` to answer ``ok`` (90 s), yields the base URL
  (``http://127.0.0.1:PORT``) and kills the server's process group at the end.
* ``browser`` (session): Debian's Chromium (``/usr/bin/chromium``, or ``$CHROMIUM_PATH``) through Playwright's sync API.
* ``page`` (per test): a fresh context + page at 1400 x 1000. ``page.js_errors`` collects uncaught page errors.
* ``open_app`` (per test): ``open_app("?model=digits-mlp")`` -> the page, navigated and rendered (``wait_for_app``).
* ``wait_for_app`` / ``screenshot``: the helper functions below, as fixtures (test files need not import conftest).

Without Chromium or the ``playwright`` package every test in this folder is skipped with the reason.
Screenshots go to ``$ARTIFACTS_DIR`` (default ``<repo>/artifacts/screenshots``; ``artifacts/`` is gitignored).
"""

from __future__ import annotations

import importlib.util
import os
import signal
import socket
import subprocess
import sys
import time
import urllib.request
from collections.abc import Iterator
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
HERE = Path(__file__).resolve().parent
CHROMIUM = os.environ.get("CHROMIUM_PATH", "/usr/bin/chromium")
CHROMIUM_ARGS = [
    "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage", "--disable-background-networking",
    "--disable-component-update", "--no-first-run", "--disable-sync",
]
VIEWPORT = {"width": 1400, "height": 1000}
HEALTH_TIMEOUT_S = 90.0
RENDER_TIMEOUT_MS = 90_000  # first render trains/loads a model and imports torch on 2 shared cores


def missing_prerequisite() -> str | None:
    """Why the browser suite cannot run here, or None."""
    if not Path(CHROMIUM).is_file():
        return f"Chromium not found at {CHROMIUM} (apt-get install chromium, or set CHROMIUM_PATH)"
    if importlib.util.find_spec("playwright") is None:
        return "the playwright package is not installed (pip install playwright; its bundled browsers are not needed)"
    return None


def pytest_collection_modifyitems(config, items):
    reason = missing_prerequisite()
    if reason is None:
        return
    skip = pytest.mark.skip(reason=reason)
    for item in items:
        if HERE in Path(str(item.path)).resolve().parents:
            item.add_marker(skip)


# --------------------------------------------------------------------------------------------- server

def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def streamlit_command(port: int, script: str = "streamlit_app.py") -> list[str]:
    return [sys.executable, "-m", "streamlit", "run", script, "--server.port", str(port),
            "--server.headless", "true", "--server.address", "127.0.0.1",
            "--browser.gatherUsageStats", "false"]


def health_ok(base_url: str) -> bool:
    try:
        with urllib.request.urlopen(f"{base_url}/_stcore/health", timeout=2) as resp:
            return resp.status == 200 and resp.read().strip() == b"ok"
    except OSError:
        return False


def wait_for_health(base_url: str, proc: subprocess.Popen, timeout: float = HEALTH_TIMEOUT_S) -> float:
    """Seconds until ``/_stcore/health`` answers ``ok``; raises if the server dies or the timeout passes."""
    start = time.perf_counter()
    while time.perf_counter() - start < timeout:
        if proc.poll() is not None:
            raise RuntimeError(f"streamlit exited with code {proc.returncode} before answering /_stcore/health")
        if health_ok(base_url):
            return time.perf_counter() - start
        time.sleep(0.05)
    raise TimeoutError(f"/_stcore/health did not answer 'ok' within {timeout:.0f} s")


def start_server(port: int | None = None, log_path: Path | None = None) -> tuple[subprocess.Popen, str]:
    """Launch ``streamlit run`` from the repository root in its own process group (environment inherited)."""
    port = port or free_port()
    log = open(log_path, "wb") if log_path else subprocess.DEVNULL  # noqa: SIM115 - closed with the process
    proc = subprocess.Popen(streamlit_command(port), cwd=ROOT, stdout=log, stderr=subprocess.STDOUT,
                            stdin=subprocess.DEVNULL, start_new_session=True)
    proc._log = log  # type: ignore[attr-defined]
    return proc, f"http://127.0.0.1:{port}"


def stop_server(proc: subprocess.Popen, grace: float = 10.0) -> None:
    """Terminate the server's whole process group (SIGTERM, then SIGKILL after ``grace`` seconds)."""
    if proc.poll() is None:
        try:
            os.killpg(proc.pid, signal.SIGTERM)
        except ProcessLookupError:
            pass
        try:
            proc.wait(timeout=grace)
        except subprocess.TimeoutExpired:
            try:
                os.killpg(proc.pid, signal.SIGKILL)
            except ProcessLookupError:
                pass
            proc.wait(timeout=grace)
    log = getattr(proc, "_log", None)
    if log not in (None, subprocess.DEVNULL):
        log.close()


def artifacts_dir() -> Path:
    d = Path(os.environ.get("ARTIFACTS_DIR", ROOT / "artifacts" / "screenshots"))
    d.mkdir(parents=True, exist_ok=True)
    return d


@pytest.fixture(scope="session")
def app_server() -> Iterator[str]:
    reason = missing_prerequisite()
    if reason:
        pytest.skip(reason)
    log_path = artifacts_dir() / "streamlit-server.log"
    proc, base_url = start_server(log_path=log_path)
    try:
        try:
            wait_for_health(base_url, proc)
        except (RuntimeError, TimeoutError) as exc:
            tail = log_path.read_text(errors="replace")[-3000:] if log_path.exists() else ""
            pytest.fail(f"{exc}\n--- server log tail ---\n{tail}", pytrace=False)
        yield base_url
    finally:
        stop_server(proc)


# --------------------------------------------------------------------------------------------- browser

def launch_chromium(playwright):
    return playwright.chromium.launch(executable_path=CHROMIUM, headless=True, args=CHROMIUM_ARGS)


@pytest.fixture(scope="session")
def browser():
    reason = missing_prerequisite()
    if reason:
        pytest.skip(reason)
    from playwright.sync_api import sync_playwright

    with sync_playwright() as pw:
        b = launch_chromium(pw)
        try:
            yield b
        finally:
            b.close()


@pytest.fixture
def page(browser):
    context = browser.new_context(viewport=VIEWPORT)
    pg = context.new_page()
    pg.set_default_timeout(RENDER_TIMEOUT_MS)
    pg.js_errors = []  # uncaught exceptions in the page (a test may assert it stays empty)
    pg.on("pageerror", lambda exc: pg.js_errors.append(str(exc)))
    try:
        yield pg
    finally:
        context.close()


# --------------------------------------------------------------------------------------------- helpers

# True once the last script run finished and its output is on screen: the app ran at least once and is idle,
# no "Running..." status widget, no stale (greyed, from a previous run) elements, no skeletons/spinners,
# and the main block holds at least one element.
_READY_JS = """
() => {
  const app = document.querySelector('[data-testid="stApp"]');
  if (!app || app.getAttribute('data-test-script-state') !== 'notRunning') return false;
  const visible = (el) => !!el && el.getClientRects().length > 0 && getComputedStyle(el).visibility !== 'hidden';
  for (const el of document.querySelectorAll('[data-testid="stStatusWidget"]')) {
    if (visible(el) && /running/i.test(el.textContent || '')) return false;
  }
  if (document.querySelector('[data-stale="true"]')) return false;
  for (const sel of ['[data-testid="stAppSkeleton"]', '[data-testid="stSkeleton"]', '[data-testid="stSpinner"]']) {
    for (const el of document.querySelectorAll(sel)) if (visible(el)) return false;
  }
  const main = document.querySelector('[data-testid="stMainBlockContainer"]');
  return !!main && !!main.querySelector('[data-testid="stElementContainer"]');
}
"""

# Every visible Plotly chart has drawn its SVG (Streamlit loads the Plotly bundle lazily after the script
# ends; charts inside a collapsed expander or an inactive tab draw only when shown, so they are not waited for).
_CHARTS_JS = """
() => Array.from(document.querySelectorAll('[data-testid="stPlotlyChart"]'))
        .filter((c) => c.getClientRects().length > 0)
        .every((c) => !!c.querySelector('.main-svg'))
"""


def wait_for_app(page, timeout: float = RENDER_TIMEOUT_MS, charts: bool = True, allow_exceptions: bool = False,
                 settle_ms: int = 300) -> None:
    """Wait until Streamlit finished running and the main block has rendered.

    The ready condition must hold twice, ``settle_ms`` apart, so a rerun that a widget change has just
    requested (but whose "running" state has not reached the page yet) is not mistaken for the end.
    With ``charts``, also waits for Plotly charts to draw. Unless ``allow_exceptions``, fails on a
    Streamlit exception box (``stException``) with its text.
    """
    deadline = time.monotonic() + timeout / 1000
    while True:
        left_ms = max(1.0, (deadline - time.monotonic()) * 1000)
        page.wait_for_function(_READY_JS, timeout=left_ms)
        page.wait_for_timeout(settle_ms)
        if page.evaluate(_READY_JS):
            break
        if time.monotonic() > deadline:
            raise TimeoutError("Streamlit app did not settle")
    if charts:
        page.wait_for_function(_CHARTS_JS, timeout=max(1.0, (deadline - time.monotonic()) * 1000))
    if not allow_exceptions:
        boxes = page.locator('[data-testid="stException"]')
        if boxes.count():
            pytest.fail("Streamlit exception on the page:\n" + "\n---\n".join(boxes.all_inner_texts()),
                        pytrace=False)


def screenshot(page, name: str, full_page: bool = True) -> Path:
    """Save a PNG of the page under $ARTIFACTS_DIR (default <repo>/artifacts/screenshots) and return its path."""
    stem = "".join(c if c.isalnum() or c in "-_." else "_" for c in name)
    path = artifacts_dir() / (stem if stem.endswith(".png") else f"{stem}.png")
    page.screenshot(path=str(path), full_page=full_page)
    return path


@pytest.fixture(name="wait_for_app")
def _wait_for_app_fixture():
    return wait_for_app


@pytest.fixture(name="screenshot")
def _screenshot_fixture():
    return screenshot


@pytest.fixture
def open_app(page, app_server):
    """``open_app(query="", path="")`` -> the page at ``{app_server}/{path}{query}``, fully rendered."""

    def _open(query: str = "", path: str = "", **wait_kwargs):
        page.goto(f"{app_server}/{path.lstrip('/')}{query}")
        wait_for_app(page, **wait_kwargs)
        return page

    return _open

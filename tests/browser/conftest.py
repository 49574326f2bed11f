"""Shared browser fixtures: system Chromium via Playwright, static-export pages, JupyterLab server.

Never runs ``playwright install``: Chromium comes from the system (``chromium`` on PATH, or
``DTW_CHROMIUM=/path``). Tests are skipped with a clear reason when Playwright or Chromium is
missing; set ``DTW_REQUIRE_BROWSER=1`` (CI) to turn those skips into failures.
Set ``DTW_SCREENSHOTS=dir`` to save a PNG of every widget.
"""

from __future__ import annotations

import os
import pathlib
import shutil
import socket
import subprocess
import sys
import tempfile
import time
import urllib.request
from typing import Any, Callable, Iterator

import pytest

REPO = pathlib.Path(__file__).resolve().parents[2]
CHROMIUM_ARGS = ["--no-sandbox", "--disable-gpu", "--disable-background-networking",
                 "--disable-component-update", "--disable-sync", "--no-first-run",
                 "--disable-default-apps", "--disable-extensions"]
LOCAL_SCHEMES = ("file:", "blob:", "data:", "about:")

# JS: RGBA of a canvas pixel at CSS coordinates (x, y) (device-pixel-ratio aware).
PIXEL_JS = """([c, x, y]) => {
  const k = c.width / parseFloat(c.style.width || c.width);
  return Array.from(c.getContext('2d').getImageData(Math.floor(x * k), Math.floor(y * k), 1, 1).data);
}"""


def _unavailable(reason: str) -> None:
    if os.environ.get("DTW_REQUIRE_BROWSER"):
        pytest.fail(f"browser tests required (DTW_REQUIRE_BROWSER=1) but {reason}")
    pytest.skip(reason)


@pytest.fixture(scope="session")
def chromium_path() -> str:
    try:
        import playwright.sync_api  # noqa: F401
    except ImportError:
        _unavailable("python package 'playwright' is not installed (pip install playwright; no browser download needed)")
    path = os.environ.get("DTW_CHROMIUM") or shutil.which("chromium") or shutil.which("chromium-browser")
    if not path:
        _unavailable("no system Chromium found (apt-get install chromium, or set DTW_CHROMIUM)")
    return path


@pytest.fixture(scope="session")
def browser(chromium_path: str) -> Iterator[Any]:
    from playwright.sync_api import sync_playwright

    with sync_playwright() as pw:
        b = pw.chromium.launch(executable_path=chromium_path, headless=True, args=CHROMIUM_ARGS)
        yield b
        b.close()


class PageRecorder:
    """Wraps a Playwright page: records every request URL, console error and page error."""

    def __init__(self, page: Any, allow: Callable[[str], bool]) -> None:
        self.page, self.requests, self.errors = page, [], []
        self._allow = allow
        page.on("request", lambda r: self.requests.append(r.url))
        page.on("pageerror", lambda e: self.errors.append(f"pageerror: {e}"))
        page.on("console", lambda m: m.type == "error" and self.errors.append(f"console: {m.text}"))

        def route(r: Any) -> None:
            self.requests.append(r.request.url)
            if allow(r.request.url):
                r.continue_()
            else:
                r.abort()

        page.route("**/*", route)

    @property
    def foreign(self) -> list[str]:
        return [u for u in self.requests if not self._allow(u)]

    def pixel(self, canvas: Any, x: float, y: float) -> list[int]:
        return self.page.evaluate(PIXEL_JS, [canvas.element_handle(), x, y])


@pytest.fixture
def static_page(browser: Any, tmp_path: pathlib.Path) -> Iterator[Callable[..., PageRecorder]]:
    """``open(widget_or_layout) -> PageRecorder`` for a ``to_html`` export loaded from file://."""
    from dtwidgets.widgets import to_html

    pages: list[Any] = []

    def open_(w: Any, name: str = "page", viewport: tuple[int, int] = (1100, 900)) -> PageRecorder:
        path = to_html(w, tmp_path / f"{name}.html", title=name)
        page = browser.new_page(viewport={"width": viewport[0], "height": viewport[1]})
        pages.append(page)
        rec = PageRecorder(page, lambda u: u.startswith(LOCAL_SCHEMES))
        page.goto(path.as_uri())
        page.wait_for_selector("body[data-dtw-ready]", timeout=15_000)
        assert page.get_attribute("body", "data-dtw-ready") == "1", rec.errors
        return rec

    yield open_
    for p in pages:
        p.close()


@pytest.fixture(scope="session")
def screenshot_dir() -> pathlib.Path | None:
    d = os.environ.get("DTW_SCREENSHOTS")
    if not d:
        return None
    p = pathlib.Path(d).expanduser().resolve()
    p.mkdir(parents=True, exist_ok=True)
    return p


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture(scope="session")
def jupyter_lab(chromium_path: str) -> Iterator[dict]:
    """A JupyterLab server on a free localhost port serving a temp dir (kernel sees this repo)."""
    if shutil.which("jupyter") is None:
        _unavailable("jupyter is not installed")
    try:
        import jupyterlab  # noqa: F401
    except ImportError:
        _unavailable("jupyterlab is not installed")
    root = pathlib.Path(tempfile.mkdtemp(prefix="dtw-lab-"))
    port = _free_port()
    env = dict(os.environ, PYTHONPATH=os.pathsep.join([str(REPO), os.environ.get("PYTHONPATH", "")]).rstrip(os.pathsep),
               JUPYTER_CONFIG_DIR=str(root / ".jupyter-config"), JUPYTER_RUNTIME_DIR=str(root / ".runtime"))
    cmd = [sys.executable, "-m", "jupyter", "lab", "--allow-root", "--no-browser", "--ip=127.0.0.1",
           f"--port={port}", "--port-retries=0", "--IdentityProvider.token=", "--ServerApp.password=",
           f"--ServerApp.root_dir={root}", "--LabApp.expose_app_in_browser=True", "--LabApp.news_url=None",
           "--ServerApp.disable_check_xsrf=True"]
    log = open(root / "server.log", "wb")
    proc = subprocess.Popen(cmd, cwd=root, env=env, stdout=log, stderr=subprocess.STDOUT)
    base = f"http://127.0.0.1:{port}"
    deadline = time.time() + 60
    while time.time() < deadline:
        if proc.poll() is not None:
            break
        try:
            urllib.request.urlopen(base + "/api", timeout=2).read()
            break
        except Exception:  # noqa: BLE001
            time.sleep(0.3)
    else:
        proc.terminate()
    if proc.poll() is not None:
        log.close()
        pytest.fail("jupyter lab did not start:\n" + (root / "server.log").read_text()[-3000:])
    try:
        yield {"base": base, "root": root, "port": port}
    finally:
        proc.terminate()
        try:
            proc.wait(timeout=15)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(timeout=5)
        log.close()
        shutil.rmtree(root, ignore_errors=True)

"""Shared browser fixtures: system Chromium via Playwright, static-export pages, real Jupyter front-ends.

Never runs ``playwright install``: Chromium comes from the system (``DTW_CHROMIUM=/path``, else
Debian's ``/usr/bin/chromium``, else ``chromium`` on PATH). Every Python tool (``jupyter lab``,
``jupyter notebook``, nbclient) starts through this interpreter (``sys.executable -m ...``), never
through PATH: on a fresh machine the venv's ``bin/`` is not on PATH. Tests are skipped with a clear reason when Playwright or Chromium is
missing; set ``DTW_REQUIRE_BROWSER=1`` (CI) to turn those skips into failures.
Set ``DTW_SCREENSHOTS=dir`` to save a PNG of every widget.

Real front-ends: :func:`jupyter_server` (``kind="lab"`` or ``"notebook"``; session fixtures
``jupyter_lab`` / ``jupyter_notebook``), :func:`open_notebook` (a page with localhost-only network)
and :func:`exec_in_kernel`. See ``test_jupyterlab.py`` for a complete example.
"""

from __future__ import annotations

import contextlib
import dataclasses
import importlib
import importlib.util
import json
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
from urllib.parse import urlparse

import pytest

REPO = pathlib.Path(__file__).resolve().parents[2]
CHROMIUM_ARGS = ["--no-sandbox", "--disable-gpu", "--disable-background-networking",
                 "--disable-component-update", "--disable-sync", "--no-first-run",
                 "--disable-default-apps", "--disable-extensions"]
LOCAL_SCHEMES = ("file:", "blob:", "data:", "about:")
SYSTEM_CHROMIUMS = ("/usr/bin/chromium", "/usr/bin/chromium-browser", "/snap/bin/chromium")


def find_chromium() -> str | None:
    """Path of the system Chromium: ``$DTW_CHROMIUM``, else a Debian/Ubuntu install path, else PATH."""
    env = os.environ.get("DTW_CHROMIUM")
    if env:
        return env
    for p in SYSTEM_CHROMIUMS:
        if os.access(p, os.X_OK):
            return p
    return shutil.which("chromium") or shutil.which("chromium-browser")

# JS: RGBA of a canvas pixel at CSS coordinates (x, y) (device-pixel-ratio aware).
PIXEL_JS = """([c, x, y]) => {
  const k = c.width / parseFloat(c.style.width || c.width);
  return Array.from(c.getContext('2d').getImageData(Math.floor(x * k), Math.floor(y * k), 1, 1).data);
}"""


def _unavailable(reason: str) -> None:
    if os.environ.get("DTW_REQUIRE_BROWSER"):
        pytest.fail(f"browser tests required (DTW_REQUIRE_BROWSER=1) but {reason}")
    pytest.skip(reason)


# ``chromium_path`` and ``browser`` live in tests/conftest.py: one Playwright session for the whole
# run (a second concurrent sync_playwright() refuses to start inside the first one's event loop).


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


# ----------------------------------------------------------------------------------------------
# Real Jupyter front-ends (JupyterLab 4 / Notebook 7)
# ----------------------------------------------------------------------------------------------
JUPYTER_KINDS = {
    # kind: (python module to import, jupyter subcommand, app class for config, notebook URL path)
    # "?reset": a fresh workspace, so notebooks opened by earlier tests are not restored beside this one
    "lab": ("jupyterlab", "lab", "LabApp", "/lab/tree/{name}?reset"),
    "notebook": ("notebook", "notebook", "JupyterNotebookApp", "/notebooks/{name}"),
}
LOCAL_HOSTS = ("127.0.0.1", "localhost")

# JS, argument `code`: execute in the kernel of the current notebook; resolves to the reply content.
KERNEL_EXEC_JS = """async (code) => {
  const k = window.jupyterapp.shell.currentWidget.sessionContext.session.kernel;
  const r = await k.requestExecute({code, store_history: false}).done;
  return {status: r.content.status, ename: r.content.ename || '', evalue: r.content.evalue || '',
          traceback: (r.content.traceback || []).join('\\n')};
}"""
# JS: true once the current notebook's kernel is connected and idle.
KERNEL_IDLE_JS = """() => { const a = window.jupyterapp; const w = a && a.shell.currentWidget;
  const k = w && w.sessionContext && w.sessionContext.session && w.sessionContext.session.kernel;
  return !!k && k.status === 'idle' && k.connectionStatus === 'connected'; }"""


def is_local_url(url: str) -> bool:
    """True for localhost http(s)/ws URLs and data:/blob: URLs."""
    return url.startswith(("data:", "blob:")) or urlparse(url).hostname in LOCAL_HOSTS


def exec_in_kernel(page: Any, code: str, check: bool = True) -> str:
    """Run ``code`` in the kernel of the notebook open in ``page`` (window.jupyterapp must be exposed).

    Returns the reply status (``"ok"`` / ``"error"``); with ``check`` an error raises
    AssertionError with the exception name, value and traceback.
    """
    r = page.evaluate(KERNEL_EXEC_JS, code)
    if check and r["status"] != "ok":
        raise AssertionError(f"kernel error running {code!r}: {r['ename']}: {r['evalue']}\n{r['traceback']}")
    return r["status"]


def event_writer(filename: str) -> str:
    """Notebook-cell code defining ``write(name, value)``: it appends ``{"name", "value"}`` JSON lines to
    ``filename`` in the kernel's cwd (the server root), which :meth:`JupyterServer.events` and
    :meth:`JupyterServer.wait_event` read back."""
    return ("import json, pathlib\n"
            f"def write(name, v, _out=pathlib.Path({filename!r})):\n"
            "    with _out.open('a') as f:\n"
            "        f.write(json.dumps({'name': name, 'value': v}) + '\\n')\n")


@dataclasses.dataclass
class JupyterServer:
    """A running ``jupyter lab`` / ``jupyter notebook`` serving ``root`` on ``base``."""

    kind: str
    base: str
    root: pathlib.Path
    port: int
    log: pathlib.Path

    def url(self, notebook: str) -> str:
        """Browser URL opening ``notebook`` (a path relative to root) in this front-end."""
        return self.base + JUPYTER_KINDS[self.kind][3].format(name=notebook)

    def write_notebook(self, name: str, cells: list[str]) -> pathlib.Path:
        """Write code ``cells`` as ``root/name`` with a python3 kernelspec; returns the path."""
        import nbformat

        nb = nbformat.v4.new_notebook(cells=[nbformat.v4.new_code_cell(c) for c in cells])
        nb.metadata["kernelspec"] = {"name": "python3", "display_name": "Python 3", "language": "python"}
        path = self.root / name
        nbformat.write(nb, path)
        return path

    def events(self, name: str = "events.jsonl") -> list[dict]:
        """JSON lines appended by the kernel to ``root/name`` (the kernel's cwd is root)."""
        p = self.root / name
        return [json.loads(line) for line in p.read_text().splitlines() if line.strip()] if p.exists() else []

    def wait_event(self, pred: Callable[[dict], bool], timeout: float = 20.0, name: str = "events.jsonl") -> dict:
        """First event of ``events(name)`` with ``pred(event)``; AssertionError after ``timeout`` s."""
        deadline = time.time() + timeout
        while True:
            for e in self.events(name):
                if pred(e):
                    return e
            if time.time() > deadline:
                raise AssertionError(f"no matching Python event within {timeout}s; got {self.events(name)}")
            time.sleep(0.1)

    def wait_values(self, event: str, expected: list, timeout: float = 20.0, name: str = "events.jsonl") -> None:
        """Wait until the ``value``s of the events whose ``name`` is ``event`` equal ``expected``.

        For event files written as JSON lines ``{"name": ..., "value": ...}`` (see test_jupyterlab.py).
        """
        deadline = time.time() + timeout
        while True:
            got = [e.get("value") for e in self.events(name) if e.get("name") == event]
            if got == expected:
                return
            if time.time() > deadline:
                raise AssertionError(f"{event!r} events within {timeout}s: {got}, expected {expected}")
            time.sleep(0.1)

    def __getitem__(self, key: str) -> Any:  # old dict-style access: server["base"], server["root"]
        return getattr(self, key)


@contextlib.contextmanager
def jupyter_server(kind: str = "lab", startup_timeout: float = 90.0) -> Iterator[JupyterServer]:
    """Start ``jupyter lab`` or ``jupyter notebook`` (Notebook 7) on a free localhost port.

    Serves a fresh temp dir (also the kernels' cwd) with no token/password, XSRF off and
    ``window.jupyterapp`` exposed; the kernel imports dtwidgets from this checkout (PYTHONPATH).
    Skips (or fails under DTW_REQUIRE_BROWSER=1) when jupyter / the front-end is not installed.
    """
    if kind not in JUPYTER_KINDS:
        raise ValueError(f"kind must be one of {sorted(JUPYTER_KINDS)}, got {kind!r}")
    module, sub, app, _ = JUPYTER_KINDS[kind]
    if importlib.util.find_spec("jupyter") is None:  # started as `sys.executable -m jupyter`, never via PATH
        _unavailable(f"jupyter (jupyter_core) is not installed in {sys.executable}")
    try:
        importlib.import_module(module)
    except ImportError:
        _unavailable(f"{module} is not installed (pip install {module})")
    root = pathlib.Path(tempfile.mkdtemp(prefix=f"dtw-{kind}-"))
    port = _free_port()
    env = dict(os.environ, PYTHONPATH=os.pathsep.join([str(REPO), os.environ.get("PYTHONPATH", "")]).rstrip(os.pathsep),
               JUPYTER_CONFIG_DIR=str(root / ".jupyter-config"), JUPYTER_RUNTIME_DIR=str(root / ".runtime"))
    cmd = [sys.executable, "-m", "jupyter", sub, "--allow-root", "--no-browser", "--ip=127.0.0.1",
           f"--port={port}", "--port-retries=0", "--IdentityProvider.token=", "--ServerApp.password=",
           f"--ServerApp.root_dir={root}", f"--{app}.expose_app_in_browser=True",
           "--ServerApp.disable_check_xsrf=True"]
    if kind == "lab":
        cmd.append("--LabApp.news_url=None")
    log_path = root / "server.log"
    log = open(log_path, "wb")
    proc = subprocess.Popen(cmd, cwd=root, env=env, stdout=log, stderr=subprocess.STDOUT)
    base = f"http://127.0.0.1:{port}"
    try:
        deadline = time.time() + startup_timeout
        while proc.poll() is None and time.time() < deadline:
            try:
                urllib.request.urlopen(base + "/api", timeout=2).read()
                break
            except Exception:  # noqa: BLE001
                time.sleep(0.3)
        else:
            log.flush()
            pytest.fail(f"jupyter {sub} did not start:\n" + log_path.read_text(errors="replace")[-3000:])
        yield JupyterServer(kind=kind, base=base, root=root, port=port, log=log_path)
    finally:
        stop_process(proc)
        log.close()
        shutil.rmtree(root, ignore_errors=True)


@pytest.fixture(scope="session")
def jupyter_lab(chromium_path: str) -> Iterator[JupyterServer]:
    """Session JupyterLab server (see :func:`jupyter_server`)."""
    with jupyter_server("lab") as server:
        yield server


@pytest.fixture(scope="session")
def jupyter_notebook(chromium_path: str) -> Iterator[JupyterServer]:
    """Session Jupyter Notebook 7 server (see :func:`jupyter_server`)."""
    with jupyter_server("notebook") as server:
        yield server


class NotebookPage(PageRecorder):
    """A notebook open in a real front-end; requests leaving localhost are recorded and aborted."""

    def __init__(self, page: Any, server: JupyterServer) -> None:
        super().__init__(page, is_local_url)
        self.server = server

    def exec(self, code: str, check: bool = True) -> str:
        """:func:`exec_in_kernel` on this page."""
        return exec_in_kernel(self.page, code, check=check)

    def wait_kernel_idle(self, timeout: float = 60.0) -> None:
        self.page.wait_for_function(KERNEL_IDLE_JS, timeout=timeout * 1000, polling=250)

    def run_all(self, wait_for: str, timeout: float = 30.0, attempts: int = 3) -> Any:
        """Run all cells until ``wait_for`` (a CSS selector) is visible; returns its locator.

        Retries: the first run command can race the front-end's start-up.
        """
        loc = self.page.locator(wait_for).first
        for attempt in range(attempts):
            self.page.evaluate("window.jupyterapp.commands.execute('notebook:run-all-cells')")
            try:
                loc.wait_for(state="visible", timeout=timeout * 1000)
                return loc
            except Exception:  # noqa: BLE001
                if attempt == attempts - 1:
                    raise
                self.wait_kernel_idle(timeout)
        return loc


@contextlib.contextmanager
def open_notebook(browser: Any, server: JupyterServer, name: str, viewport: tuple[int, int] = (1280, 900),
                  timeout: float = 90.0) -> Iterator[NotebookPage]:
    """Open ``server.root/name`` in a fresh browser context and wait for its kernel to be idle.

    Usage::

        def test_x(browser, jupyter_notebook):
            jupyter_notebook.write_notebook("x.ipynb", [CELL])
            with open_notebook(browser, jupyter_notebook, "x.ipynb") as nb:
                canvas = nb.run_all(".jp-OutputArea .dtw-gridview canvas")
                nb.exec("w.agent_dir = 2")
                nb.server.wait_event(lambda e: e["name"] == "key")
            assert nb.foreign == []
    """
    ctx = browser.new_context(viewport={"width": viewport[0], "height": viewport[1]})
    try:
        nb = NotebookPage(ctx.new_page(), server)
        nb.page.goto(server.url(name), timeout=timeout * 1000)
        nb.wait_kernel_idle(timeout)
        yield nb
    finally:
        ctx.close()


def stop_process(proc) -> None:
    """Terminate a server started by a fixture, killing it when it does not stop within 15 s."""
    proc.terminate()
    try:
        proc.wait(timeout=15)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait(timeout=5)


# JS: move the RTG slider of the page to `value` (an "input" event: a drag in progress), and release it
# (a "change" event) when `release` is true.
DRAG_JS = """([value, release]) => {
  const el = document.querySelector('.dtw-rtgslider input[type=range]');
  el.value = String(value);
  el.dispatchEvent(new Event('input', {bubbles: true}));   // the slider moves: a preview
  if (release) el.dispatchEvent(new Event('change', {bubbles: true}));
}"""

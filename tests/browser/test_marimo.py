"""examples/marimo_explorer.py under ``marimo run`` (issue 26: in marimo no widget CSS applied, arrow keys
never reached Python and the Explorer showed "Jupyter widgets are not supported"): the Explorer's
dtwidgets parts, each in ``mo.ui.anywidget``, draw (grid, view, preferences, RTG scan; the QK
ChannelHeatmap once its panel is chosen in a marimo dropdown), and a click, an arrow key and the RTG
slider reach Python: the texts checked are computed in Python (a marimo cell reading the synced value,
the Explorer's status line after its step). Network limited to localhost, no console error."""
from __future__ import annotations

import contextlib
import importlib.util
import os
import socket
import subprocess
import sys
import time
import urllib.request

import pytest

from .conftest import stop_process, REPO, PageRecorder, _unavailable, is_local_url

pytestmark = [pytest.mark.browser, pytest.mark.slow]
APP = REPO / "examples" / "marimo_explorer.py"
CELL = 34  # the Explorer's grid cell size (CSS px)


@contextlib.contextmanager
def marimo_run(app, timeout: float = 120.0):
    """``marimo run --headless`` serving ``app`` on a free localhost port; yields its URL."""
    if importlib.util.find_spec("marimo") is None:
        _unavailable(f"marimo is not installed in {sys.executable} (pip install marimo)")
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    env = dict(os.environ, PYTHONPATH=os.pathsep.join([str(REPO), os.environ.get("PYTHONPATH", "")]).rstrip(os.pathsep))
    proc = subprocess.Popen([sys.executable, "-m", "marimo", "run", "--headless", "--host", "127.0.0.1", "--port", str(port),
                             "--no-token", str(app)], cwd=REPO, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
    url = f"http://127.0.0.1:{port}"
    try:
        deadline = time.time() + timeout
        while True:
            try:
                urllib.request.urlopen(url, timeout=2).read()
                break
            except OSError:
                if proc.poll() is not None or time.time() > deadline:
                    out = proc.stdout.read().decode(errors="replace") if proc.poll() is not None else ""
                    pytest.fail(f"marimo run did not start: {out[-2000:]}")
                time.sleep(0.3)
        yield url
    finally:
        stop_process(proc)


def test_marimo_explorer_parts_draw_and_reach_python(browser) -> None:
    with marimo_run(APP) as url:
        ctx = browser.new_context(viewport={"width": 1400, "height": 1200})
        try:
            rec = PageRecorder(ctx.new_page(), is_local_url)
            page = rec.page
            page.goto(url)
            grid = page.locator(".dtw-gridview canvas.dtw-grid").first  # Playwright's CSS pierces marimo's shadow roots
            grid.wait_for(timeout=90_000)
            for cls in ("dtw-gridview", "dtw-actionprefs", "dtw-rtgscan"):
                page.locator(f".{cls} canvas").first.wait_for(timeout=60_000)
            style = page.evaluate("() => getComputedStyle(document.querySelector('marimo-anywidget').shadowRoot"
                                  ".querySelector('.dtw-root')).position")
            assert style == "relative", "the widget's stylesheet applies inside marimo's shadow root"
            status = page.locator(".dtw-status-line")
            page.wait_for_function("() => [...document.querySelectorAll('marimo-anywidget')].some(h => h.shadowRoot"
                                   " && /step 0/.test(h.shadowRoot.textContent))", timeout=60_000)
            # a click: the selected cell reaches Python (a marimo cell re-runs with it)
            grid.click(position={"x": 4 * CELL + CELL / 2, "y": 5 * CELL + CELL / 2})
            page.get_by_text("python sees selected cell: (4, 5)").wait_for(timeout=30_000)
            # a key: the Explorer steps the environment in Python; its status line says step 1
            page.keyboard.press("ArrowUp")
            page.wait_for_function("() => [...document.querySelectorAll('marimo-anywidget')].some(h => h.shadowRoot"
                                   " && /step 1\\b/.test(h.shadowRoot.textContent))", timeout=60_000)
            # the RTG slider: its value reaches Python
            page.locator(".dtw-rtgslider input[type=range]").first.fill("0.3")
            page.get_by_text("python sees RTG: +0.30").wait_for(timeout=30_000)
            # a panel chosen in a marimo dropdown is shown and computed: the QK map is a ChannelHeatmap
            page.locator("marimo-dropdown select").select_option(label="QK / OV circuits")
            page.locator(".dtw-channelheatmap canvas").first.wait_for(timeout=60_000)
            assert status.count() >= 1
            assert rec.errors == [], rec.errors
            assert rec.foreign == [], rec.foreign
        finally:
            ctx.close()

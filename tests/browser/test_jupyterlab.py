"""One real JupyterLab session: a GridView renders, Python updates reach the canvas, and
canvas clicks / edits reach Python. All requests must stay on localhost."""

from __future__ import annotations

import json
import pathlib
import shutil
import time
from urllib.parse import urlparse

import pytest

from .conftest import CHROMIUM_ARGS, PIXEL_JS

pytestmark = [pytest.mark.browser, pytest.mark.slow]
nbformat = pytest.importorskip("nbformat")

CELL = '''\
import json, pathlib
import numpy as np
from dtwidgets.widgets import GridView
OUT = pathlib.Path("events.jsonl")
g = np.zeros((8, 8, 3), np.uint8); g[..., 0] = 1
g[0, :] = g[-1, :] = g[:, 0] = g[:, -1] = (2, 5, 0)
g[6, 6] = (8, 1, 0)
w = GridView(g, agent_pos=(1, 1), agent_dir=0, cell_size=24)
def log(change):
    v = change["new"]
    with OUT.open("a") as f:
        f.write(json.dumps({"name": change["name"], "value": v.tolist() if hasattr(v, "tolist") else v}) + "\\n")
w.observe(log, names=["selected_cell", "grid"])
w
'''

KERNEL_EXEC = """async (code) => {
  const k = window.jupyterapp.shell.currentWidget.sessionContext.session.kernel;
  const r = await k.requestExecute({code, store_history: false}).done;
  return r.content.status;
}"""
KERNEL_IDLE = """() => { const a = window.jupyterapp; const w = a && a.shell.currentWidget;
  const k = w && w.sessionContext && w.sessionContext.session && w.sessionContext.session.kernel;
  return !!k && k.status === 'idle' && k.connectionStatus === 'connected'; }"""
CS = 24


def _events(root: pathlib.Path) -> list[dict]:
    p = root / "events.jsonl"
    return [json.loads(line) for line in p.read_text().splitlines()] if p.exists() else []


def _wait_event(root: pathlib.Path, pred, timeout: float = 20.0) -> dict:
    deadline = time.time() + timeout
    while time.time() < deadline:
        for e in _events(root):
            if pred(e):
                return e
        time.sleep(0.1)
    raise AssertionError(f"no matching Python event within {timeout}s; got {_events(root)}")


def test_gridview_in_jupyterlab(jupyter_lab, chromium_path, screenshot_dir) -> None:
    from playwright.sync_api import sync_playwright

    root: pathlib.Path = jupyter_lab["root"]
    nb = nbformat.v4.new_notebook(cells=[nbformat.v4.new_code_cell(CELL)])
    nb.metadata["kernelspec"] = {"name": "python3", "display_name": "Python 3", "language": "python"}
    nbformat.write(nb, root / "grid.ipynb")
    (root / "events.jsonl").unlink(missing_ok=True)
    requests: list[str] = []
    with sync_playwright() as pw:
        b = pw.chromium.launch(executable_path=chromium_path, headless=True, args=CHROMIUM_ARGS)
        try:
            page = b.new_page(viewport={"width": 1280, "height": 900})
            page.on("request", lambda r: requests.append(r.url))
            page.route("**/*", lambda r: r.continue_() if urlparse(r.request.url).hostname in ("127.0.0.1", "localhost")
                       or r.request.url.startswith(("data:", "blob:")) else r.abort())
            t0 = time.time()
            page.goto(f"{jupyter_lab['base']}/lab/tree/grid.ipynb", timeout=60_000)
            page.wait_for_function(KERNEL_IDLE, timeout=60_000, polling=250)
            print(f'kernel idle {time.time()-t0:.1f}s')
            # run all; retry once if the output does not appear (first command can race the UI)
            canvas = page.locator(".jp-OutputArea .dtw-gridview canvas.dtw-grid")
            for attempt in range(3):
                page.evaluate("window.jupyterapp.commands.execute('notebook:run-all-cells')")
                try:
                    canvas.wait_for(state="visible", timeout=20_000)
                    print(f'rendered {time.time()-t0:.1f}s attempt {attempt}')
                    break
                except Exception:  # noqa: BLE001
                    if attempt == 2:
                        raise
                    page.wait_for_function(KERNEL_IDLE, timeout=30_000, polling=250)

            def px(x: int, y: int) -> list[int]:
                return page.evaluate(PIXEL_JS, [canvas.element_handle(), x * CS + CS / 2, y * CS + CS / 2])

            assert px(6, 6)[:3] == [0, 255, 0], "goal drawn green"
            assert px(0, 0)[:3] == [100, 100, 100], "wall drawn grey"
            assert px(3, 3)[:3] != [255, 128, 0]
            # Python -> canvas
            assert page.evaluate(KERNEL_EXEC, "g2 = w.grid.copy(); g2[3, 3] = (9, 0, 0); w.grid = g2") == "ok"
            page.wait_for_function(f"([c]) => ({PIXEL_JS})([c, {3 * CS + CS / 2}, {3 * CS + 2}]).slice(0, 3).join() === '255,128,0'",
                                   arg=[canvas.element_handle()], timeout=15_000, polling=100)
            # canvas click -> Python
            canvas.click(position={"x": 2 * CS + CS / 2, "y": 5 * CS + CS / 2})
            _wait_event(root, lambda e: e["name"] == "selected_cell" and e["value"] == [2, 5])
            # edit mode: click places a goal, Python receives the edited grid
            assert page.evaluate(KERNEL_EXEC, "w.editable = True; w.edit_tool = 'goal'") == "ok"
            page.locator(".dtw-gridview .dtw-controls").wait_for(state="visible", timeout=10_000)
            canvas.click(position={"x": 4 * CS + CS / 2, "y": 2 * CS + CS / 2})
            e = _wait_event(root, lambda e: e["name"] == "grid" and e["value"][4][2] == [8, 1, 0])
            assert e["value"][3][3] == [9, 0, 0] and len(e["value"]) == 8
            assert page.evaluate(KERNEL_EXEC, "assert w.grid.dtype == np.uint8 and tuple(w.grid[4, 2]) == (8, 1, 0)") == "ok"
            print(f'done {time.time()-t0:.1f}s')
            if screenshot_dir is not None:
                page.locator(".jp-OutputArea .dtw-gridview").screenshot(path=str(screenshot_dir / "jupyterlab_grid_view.png"))
        finally:
            b.close()
    foreign = [u for u in requests if not u.startswith(("data:", "blob:"))
               and urlparse(u).hostname not in ("127.0.0.1", "localhost")]
    assert foreign == [], f"non-localhost requests: {foreign}"
    assert shutil.which("jupyter")

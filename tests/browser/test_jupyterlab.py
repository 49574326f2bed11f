"""Real Jupyter front-ends (JupyterLab 4 and Notebook 7): a GridView renders, Python updates
reach the canvas, canvas clicks / edits / key presses reach Python, notebook shortcuts do not
fire while the widget has focus. All requests must stay on localhost."""

from __future__ import annotations

import time

import pytest

from .conftest import PIXEL_JS, JupyterServer, open_notebook

pytestmark = [pytest.mark.browser, pytest.mark.slow]
pytest.importorskip("nbformat")

CELL = '''\
import json, pathlib
import numpy as np
from dtwidgets.widgets import GridView
OUT = pathlib.Path("events.jsonl")
def write(name, v):
    with OUT.open("a") as f:
        f.write(json.dumps({"name": name, "value": v.tolist() if hasattr(v, "tolist") else v}) + "\\n")
g = np.zeros((8, 8, 3), np.uint8); g[..., 0] = 1
g[0, :] = g[-1, :] = g[:, 0] = g[:, -1] = (2, 5, 0)
g[6, 6] = (8, 1, 0)
w = GridView(g, agent_pos=(1, 1), agent_dir=0, cell_size=24)
w.observe(lambda ch: write(ch["name"], ch["new"]), names=["selected_cell", "grid"])
w.on_key(lambda key: write("key", key))
w.on_cell_click(lambda x, y: write("click", [x, y]))
w
'''
CS = 24
CANVAS = ".jp-OutputArea .dtw-gridview canvas.dtw-grid"


def _roundtrip(browser, server: JupyterServer, screenshot_dir, tag: str) -> None:
    name = f"grid_{tag}.ipynb"
    server.write_notebook(name, [CELL])
    (server.root / "events.jsonl").unlink(missing_ok=True)
    t0 = time.time()
    with open_notebook(browser, server, name) as nb:
        page = nb.page
        print(f"{tag}: kernel idle {time.time() - t0:.1f}s")
        canvas = nb.run_all(CANVAS)
        print(f"{tag}: rendered {time.time() - t0:.1f}s")

        def px(x: int, y: int) -> list[int]:
            return page.evaluate(PIXEL_JS, [canvas.element_handle(), x * CS + CS / 2, y * CS + CS / 2])

        assert px(6, 6)[:3] == [0, 255, 0], "goal drawn green"
        assert px(0, 0)[:3] == [100, 100, 100], "wall drawn grey"
        assert px(3, 3)[:3] != [255, 128, 0]
        # Python -> canvas
        nb.exec("g2 = w.grid.copy(); g2[3, 3] = (9, 0, 0); w.grid = g2")
        page.wait_for_function(f"([c]) => ({PIXEL_JS})([c, {3 * CS + CS / 2}, {3 * CS + 2}]).slice(0, 3).join() === '255,128,0'",
                               arg=[canvas.element_handle()], timeout=15_000, polling=100)
        # canvas click -> Python (selected_cell once; the click callback on every click)
        for _ in range(2):
            canvas.click(position={"x": 2 * CS + CS / 2, "y": 5 * CS + CS / 2})
        server.wait_event(lambda e: e["name"] == "selected_cell" and e["value"] == [2, 5])
        server.wait_values("click", [[2, 5], [2, 5]])
        # keyboard -> Python; the click focused the widget. Notebook shortcuts ("a" inserts a
        # cell, arrows move the active cell) must not fire while it has focus.
        root = page.locator(".jp-OutputArea .dtw-gridview")
        root.focus()
        n_cells = page.locator(".jp-Notebook .jp-Cell").count()
        for key in ["ArrowRight", "a", "ArrowDown", "Space"]:
            page.keyboard.press(key)
        server.wait_values("key", ["ArrowRight", "a", "ArrowDown", "Space"])
        assert page.locator(".jp-Notebook .jp-Cell").count() == n_cells, "notebook shortcut fired inside the widget"
        assert page.evaluate("() => document.activeElement && document.activeElement.classList.contains('dtw-gridview')")
        # edit mode: click places a goal, Python receives the edited grid
        nb.exec("w.editable = True; w.edit_tool = 'goal'")
        page.locator(".dtw-gridview .dtw-controls").wait_for(state="visible", timeout=10_000)
        canvas.click(position={"x": 4 * CS + CS / 2, "y": 2 * CS + CS / 2})
        e = server.wait_event(lambda e: e["name"] == "grid" and e["value"][4][2] == [8, 1, 0])
        assert e["value"][3][3] == [9, 0, 0] and len(e["value"]) == 8
        nb.exec("assert w.grid.dtype == np.uint8 and tuple(w.grid[4, 2]) == (8, 1, 0) and w.error == ''")
        assert not page.locator(".dtw-gridview .dtw-error").is_visible()
        print(f"{tag}: done {time.time() - t0:.1f}s")
        if screenshot_dir is not None:
            root.screenshot(path=str(screenshot_dir / f"{tag}_grid_view.png"))
    # Notebook 7.6 itself raises "Cannot read properties of undefined (reading 'schema')" on every
    # page load (also without any widget), so only errors reported by dtwidgets fail the test.
    ours = [e for e in nb.errors if "dtwidgets" in e or "dtw-" in e or "grid_view" in e]
    assert ours == [], ours
    assert nb.requests, "no requests recorded"
    assert nb.foreign == [], f"non-localhost requests: {nb.foreign}"


def test_gridview_in_jupyterlab(browser, jupyter_lab, screenshot_dir) -> None:
    _roundtrip(browser, jupyter_lab, screenshot_dir, "jupyterlab")


def test_gridview_in_notebook7(browser, jupyter_notebook, screenshot_dir) -> None:
    _roundtrip(browser, jupyter_notebook, screenshot_dir, "notebook7")

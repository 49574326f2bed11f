"""The Explorer on the shipped demo model in real JupyterLab: a move key changes the grid and the
preference bars; an edit in the browser makes the patching view appear. No request leaves localhost."""
from __future__ import annotations

import time

import pytest

from .conftest import event_writer, open_notebook

pytestmark = [pytest.mark.browser, pytest.mark.slow]

CELL = event_writer('events.jsonl') + '''\
import numpy as np
from dtwidgets import Explorer
e = Explorer.demo(seed=1)
e.grid.observe(lambda ch: write("agent_dir", int(ch["new"])), names="agent_dir")
e.prefs.observe(lambda ch: write("logits", [round(float(v), 6) for v in ch["new"]]), names="logits")
e
'''
GRID = ".jp-OutputArea .dtw-gridview canvas.dtw-grid"
PREFS = ".jp-OutputArea .dtw-actionprefs canvas"
DATA_URL = "([c]) => c.toDataURL()"
CS = 34  # the Explorer's full-grid cell size


def test_explorer_in_jupyterlab(browser, jupyter_lab, screenshot_dir):
    server = jupyter_lab
    server.write_notebook("explorer.ipynb", [CELL])
    (server.root / "events.jsonl").unlink(missing_ok=True)
    with open_notebook(browser, server, "explorer.ipynb", viewport=(1400, 1000)) as nb:
        page = nb.page
        grid = nb.run_all(GRID, timeout=60)
        prefs = page.locator(PREFS).first
        prefs.wait_for(state="visible", timeout=30_000)
        page.wait_for_timeout(500)
        grid_before = page.evaluate(DATA_URL, [grid.element_handle()])
        prefs_before = page.evaluate(DATA_URL, [prefs.element_handle()])
        nb.exec("write('start', [int(e.env.agent_dir), e.session.n_steps])")
        d0 = server.wait_event(lambda ev: ev["name"] == "start")["value"][0]

        # focus the grid (a click on a wall cell selects it) and press a move key
        grid.click(position={"x": CS / 2, "y": CS / 2})
        t = time.perf_counter()
        page.keyboard.press("ArrowLeft")
        page.wait_for_function("([c, before]) => c.toDataURL() !== before", arg=[grid.element_handle(), grid_before],
                               timeout=20_000, polling=20)
        click_to_redraw = time.perf_counter() - t
        server.wait_event(lambda ev: ev["name"] == "agent_dir" and ev["value"] == (d0 - 1) % 4)
        server.wait_event(lambda ev: ev["name"] == "logits")
        page.wait_for_function("([c, before]) => c.toDataURL() !== before", arg=[prefs.element_handle(), prefs_before],
                               timeout=20_000, polling=50)
        print(f"key press -> redrawn grid: {click_to_redraw * 1000:.0f} ms")

        # edit mode: place a ball on an empty cell the agent can see, from the browser
        nb.exec(
            "x, y = e.env.agent_pos; dx, dy = [(1, 0), (0, 1), (-1, 0), (0, -1)][e.env.agent_dir]\n"
            "g = e.env.full_grid()[0]\n"
            "cands = [(x + k * dx, y + k * dy) for k in (1, 2, 3)] + [(i, j) for i in range(1, 7) for j in range(1, 7)]\n"
            "in_view = lambda c: e.env.unwrapped.relative_coords(*c) is not None\n"
            "tx, ty = next(c for c in cands if 0 < c[0] < 7 and 0 < c[1] < 7 and g[c][0] == 1 and c != (x, y) and in_view(c))\n"
            "write('target', [int(tx), int(ty)])")
        tx, ty = server.wait_event(lambda ev: ev["name"] == "target")["value"]
        page.get_by_role("button", name="edit grid").click()
        page.locator(".jp-OutputArea .dtw-gridview .dtw-controls").first.wait_for(state="visible", timeout=10_000)
        grid.click(position={"x": tx * CS + CS / 2, "y": ty * CS + CS / 2})
        nb.exec("import time\nfor _ in range(100):\n    if e.session.clean_observation is not None: break\n    time.sleep(0.1)\n"
                "write('edited', [e.session.clean_observation is not None, int(e.env.full_grid()[0][%d, %d, 0]), e.error.value])" % (tx, ty))
        edited = server.wait_event(lambda ev: ev["name"] == "edited")["value"]
        assert edited[0] and edited[1] == 6 and edited[2] == "", edited
        page.locator(".jp-OutputArea .lm-TabBar-tab", has_text="Patching").first.click()
        heat = page.locator(".jp-OutputArea .dtw-matrix canvas:visible").first  # the Patching tab's
        heat.wait_for(state="visible", timeout=20_000)
        if screenshot_dir is not None:  # without JupyterLab's news toast over the Explorer
            page.evaluate("() => document.querySelectorAll('.Toastify, .jp-toast-container').forEach((e) => e.remove())")
            page.locator(".jp-OutputArea").first.screenshot(path=str(screenshot_dir / "explorer_patching.png"))
    assert nb.foreign == [], f"non-localhost requests: {nb.foreign}"
    ours = [er for er in nb.errors if "dtwidgets" in er or "dtw-" in er]
    assert ours == [], ours

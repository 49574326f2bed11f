"""dtwidgets under another widget manager: @jupyter-widgets/html-manager with anywidget's own front-end
(js/harness/, built with the devDependencies), the manager of nbconvert and Sphinx pages and the closest
installable stand-in for VS Code's and Colab's (docs/frontends.md lists what stays unverified).
The widget state comes from ipywidgets' own ``embed_data``; the page has no network. Checked: the widgets
draw and answer hover; a 300x300 float32 array (360 KB buffer) arrives intact (hover reads numpy's value);
a StatusLine reads the ActionPreferences it references although that widget is never displayed, and the
RTG slider previews from its scan (expected computed here); the UpdateFeed resolves its target through
this manager's ``get_model`` and says ready; no console error."""
from __future__ import annotations

import os
import pathlib
import shutil
import subprocess

import numpy as np
import pytest

from dtwidgets.widgets import ActionPreferences, MatrixHeatmap, RTGSlider, StatusLine, UpdateFeed

from .conftest import LOCAL_SCHEMES, REPO, PageRecorder, _unavailable

pytestmark = pytest.mark.browser
JS = REPO / "js"
NAMES = ["left", "right", "forward"]


@pytest.fixture(scope="module")
def harness(tmp_path_factory) -> pathlib.Path:
    """The harness page folder (harness.js built from js/harness/)."""
    node = shutil.which("node")
    modules = pathlib.Path(os.environ.get("DTW_HARNESS_NODE_MODULES", JS / "node_modules"))
    if node is None or not (modules / "@jupyter-widgets" / "html-manager").is_dir() or not (modules / "anywidget").is_dir():
        _unavailable(f"the html-manager harness needs node and js's devDependencies (cd js && npm ci); looked in {modules}")
    d = tmp_path_factory.mktemp("harness")
    r = subprocess.run([node, str(JS / "harness" / "build_harness.mjs"), str(d / "harness.js")], cwd=JS,
                       capture_output=True, text=True, timeout=180)
    assert r.returncode == 0, r.stderr[-2000:]
    return d


def _hover(page, canvas, col: float, row: float) -> str:
    cs, ox, oy = (float(canvas.get_attribute(a)) for a in ("data-cell", "data-ox", "data-oy"))
    canvas.hover(position={"x": ox + (col + 0.5) * cs, "y": oy + (row + 0.5) * cs})
    return page.locator(".dtw-tip:visible").first.text_content() or ""


def test_widgets_under_the_html_manager(browser, harness) -> None:
    from ipywidgets.embed import embed_data

    small = MatrixHeatmap(values=np.array([[0.5, -2.0]], np.float32), row_labels=["r"], col_labels=["a", "b"], title="small")
    big_values = np.random.default_rng(0).normal(size=(300, 300)).astype(np.float32)
    big = MatrixHeatmap(values=big_values, title="big", cell_size=2)
    rtgs = np.linspace(-1, 1, 5, dtype=np.float32)
    scan = np.stack([np.zeros(5), np.zeros(5), 4 * rtgs], 1).astype(np.float32)
    prefs = ActionPreferences(logits=np.array([2.0, 0.0, 0.0], np.float32), action_names=NAMES, rtg=0.0,
                              scan_rtgs=rtgs, scan_logits=scan, follow_group="g")
    status = StatusLine(lead=["step 2"], rtg=0.0, preferences=prefs, follow_group="g")  # prefs: never displayed
    slider = RTGSlider(value=0.0, min=-1, max=1, step=0.05, follow_group="g")
    feed = UpdateFeed()
    feed.targets = ["IPY_MODEL_" + small.model_id]
    views = [small, big, slider, status, feed]
    # drop_defaults=False: with ipywidgets' default (True) the anywidget models lose their _view_name and
    # the html-manager cannot create their views ("Class null not found"; see docs/frontends.md)
    data = embed_data(views=views, drop_defaults=False)
    (harness / "page.html").write_text("<!DOCTYPE html><html><head><meta charset='utf-8'><script src='harness.js'></script>"
                                       "</head><body>" + "".join(f"<div id='v{i}'></div>" for i in range(len(views)))
                                       + "</body></html>", encoding="utf-8")
    page = browser.new_page(viewport={"width": 1300, "height": 1000})
    rec = PageRecorder(page, lambda u: u.startswith(LOCAL_SCHEMES))
    page.goto((harness / "page.html").as_uri())
    page.evaluate("() => { window.__sent = []; window.dtwBase.WidgetModel.prototype.send = function (c) { window.__sent.push(c); }; }")
    n = page.evaluate("async ([s, ids]) => dtwRender(s, ids.map((id, i) => [id, document.getElementById('v' + i)]))",
                      [data["manager_state"], [w.model_id for w in views]])
    assert n >= len(views) + 1, "every model, the never-displayed preferences included"
    heats = page.locator(".dtw-matrix canvas.dtw-heat")
    heats.nth(1).wait_for(timeout=30_000)
    tip = _hover(page, heats.nth(0), 1, 0)
    assert "col: b" in tip and "value: -2" in tip, tip
    r, c = 123, 77
    tip = _hover(page, heats.nth(1), c, r)
    assert f"value: {big_values[r, c]:.4g}"[:12] in tip or f"{big_values[r, c]:.3f}" in tip, (tip, big_values[r, c])
    line = page.locator(".dtw-status-line")
    page.wait_for_function("() => document.querySelector('.dtw-status-line').textContent.includes('prefers')", timeout=10_000)
    p = np.exp([2.0, 0.0, 0.0])
    assert f"model prefers left ({round(p[0] / p.sum() * 100)}%)" in line.inner_text()
    page.locator(".dtw-rtgslider input[type=range]").fill("0.8")
    page.wait_for_function("() => document.querySelector('.dtw-status-line').textContent.includes('preview')", timeout=10_000)
    q = np.exp([0.0, 0.0, 3.2])
    assert f"model prefers forward ({round(q[2] / q.sum() * 100)}%)" in line.inner_text()
    page.wait_for_function("() => window.__sent.some((m) => m && m.ready === 1)", timeout=10_000)
    assert rec.errors == [] and rec.foreign == [], (rec.errors, rec.foreign)
    page.close()

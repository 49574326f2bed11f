"""The spaces views of issue 27 in real JupyterLab: the Explorer's Spaces, Congruence, NMF and Directions
tabs draw (non-blank canvases), hover and legends name what they show, the state shown moves in the PCA after
a key press on the grid and nothing spills out of the output area at 1100 and 1600 px; a 3-D ScatterView
rotates on drag and a saved-directions cosine heatmap hovers. No request leaves localhost."""
from __future__ import annotations

import pytest

from .conftest import event_writer, open_notebook
from .test_scatter_view import _screen

pytestmark = [pytest.mark.browser, pytest.mark.slow]

EXPLORER = event_writer("events.jsonl") + '''\
from dtwidgets import Explorer
from dtwidgets.adapters import TrajectoryWindow
from dtwidgets.compositions.session import PlaySession
from dtwidgets.demo import load_demo
adapter, env = load_demo("post")
s = PlaySession(adapter, load_demo("post")[1], rtg=0.9, seed=3)
ws = []
for _ in range(24):  # the reference states: the model's own episode from another seed
    ws.append(s.window())
    if s.done:
        break
    s.act()
e = Explorer(adapter, env, seed=1, reference_windows=TrajectoryWindow.cat(ws))
panel = lambda key: next(p for p in e.ui.panels if p.key == key)
e
'''
VIEWS = event_writer("events2.jsonl") + '''\
import ipywidgets as W
from dtwidgets.analysis import DirectionStore, embedding_pca
from dtwidgets.demo import load_demo
from dtwidgets.widgets.space_views import cosine_heatmap, pca_scatter
adapter = load_demo("post")[0]
store = DirectionStore()
for a, b in ((2, 1), (2, 0), (0, 1)):
    store.add(f"{adapter.action_names[a]} - {adapter.action_names[b]}",
              (adapter.W_action[a] - adapter.W_action[b]).detach().numpy(), "residual", source="vector")
W.VBox([pca_scatter(embedding_pca(adapter, "time", n_components=3), dims=3, colour_name="t"), cosine_heatmap(store)])
'''
GRID = ".jp-OutputArea .dtw-gridview canvas.dtw-grid"
INKED = """([c]) => { const d = c.getContext('2d').getImageData(0, 0, c.width, c.height).data; let n = 0;
  for (let i = 0; i < d.length; i += 4) if (d[i + 3] > 0 && (d[i] < 235 || d[i + 1] < 235 || d[i + 2] < 235)) n++;
  return n; }"""
SPILL = """([root]) => { const r = root.getBoundingClientRect(); const out = [];
  root.querySelectorAll('canvas, .dtw-legend, .dtw-title, .widget-html').forEach((el) => {
    const b = el.getBoundingClientRect();
    if (b.width > 0 && b.height > 0 && b.right > r.right + 1) out.push(`${el.className}: ${Math.round(b.right)} > ${Math.round(r.right)}`);
  }); return out; }"""
TABS = (("Spaces", "canvas.dtw-scatter-plot"), ("Congruence", "canvas.dtw-heat"), ("NMF", "canvas.dtw-bars"),
        ("Directions", "canvas.dtw-bars"))


def _open_tab(page, title: str, canvas: str):
    page.locator(".jp-OutputArea .lm-TabBar-tab", has_text=title).first.click()
    cv = page.locator(f".jp-OutputArea .widget-tab-contents {canvas}:visible").first
    cv.wait_for(state="visible", timeout=30_000)
    page.wait_for_function(f"([c]) => ({INKED})([c]) > 200", arg=[cv.element_handle()], timeout=30_000, polling=100)
    return cv


def _hover_text(page, cv, points) -> str:
    """The tooltip after hovering each of ``points`` (canvas CSS px) in turn, joined."""
    texts = []
    for x, y in points:
        cv.hover(position={"x": x, "y": y})
        tip = page.locator(".jp-OutputArea .dtw-tip:visible")
        if tip.count():
            texts.append(tip.first.inner_text())
    return "\n".join(texts)


def _check_spaces(nb, server, cv) -> None:
    page = nb.page
    legend = page.locator(".jp-OutputArea .dtw-scatter .dtw-legend:visible").first.inner_text()
    assert "the model's action" in legend and "forward" in legend, legend
    nb.exec("write('pt', panel('spaces').view.points[-1].tolist())")
    pt = server.wait_event(lambda ev: ev["name"] == "pt")["value"]
    assert "the state shown" in _hover_text(page, cv, [_screen(cv, pt)])
    before = page.evaluate("([c]) => c.toDataURL()", [cv.element_handle()])
    page.locator(GRID).first.click(position={"x": 17, "y": 17})  # focus the grid (a wall cell), then a key
    page.keyboard.press("ArrowLeft")
    page.wait_for_function("([c, b]) => c.toDataURL() !== b", arg=[cv.element_handle(), before], timeout=30_000)
    nb.exec("write('pt2', panel('spaces').view.points[-1].tolist())")
    pt2 = server.wait_event(lambda ev: ev["name"] == "pt2")["value"]
    assert pt2 != pt, "the state shown did not move in the PCA after a key press"
    assert "the state shown" in _hover_text(page, cv, [_screen(cv, pt2)])


def _check_tab(nb, title: str, cv) -> None:
    page = nb.page
    box = cv.bounding_box()
    grid = [(box["width"] * fx, box["height"] * fy) for fx in (0.3, 0.5, 0.7) for fy in (0.3, 0.5, 0.7)]
    if title == "Congruence":
        text = _hover_text(page, cv, grid)
        assert "row: L" in text and "col: " in text, text
    elif title == "NMF":
        info = page.locator(".jp-OutputArea .widget-tab-contents .widget-html:visible").first.inner_text()
        assert "components of blocks." in info and "The state shown is component" in info, info
        assert page.locator(".jp-OutputArea .dtw-fb-card .dtw-fb-thumb:visible").count() > 0
    elif title == "Directions":
        page.get_by_role("button", name="save the preference direction").click()
        page.get_by_role("button", name="save this state's residual").click()
        heat = page.locator(".jp-OutputArea .widget-tab-contents canvas.dtw-heat:visible").first
        heat.wait_for(state="visible", timeout=30_000)
        page.wait_for_function(f"([c]) => ({INKED})([c]) > 200", arg=[heat.element_handle()], timeout=30_000)
        nb.exec("import time\nfor _ in range(100):\n    if len(panel('directions').cosines.row_labels) == 2: break\n"
                "    time.sleep(0.1)\nwrite('saved', list(panel('directions').cosines.row_labels))")
        assert len(nb.server.wait_event(lambda ev: ev["name"] == "saved")["value"]) == 2
        text = ""
        for _ in range(20):  # until the browser has drawn the 2 x 2 matrix
            hb = heat.bounding_box()
            cells = [(hb["width"] * fx, hb["height"] * fy) for fx in (0.5, 0.7, 0.9) for fy in (0.5, 0.7, 0.9)]
            text = _hover_text(page, heat, cells)
            if "residual at t = " in text:
                break
            page.wait_for_timeout(250)
        assert "row: " in text and "residual at t = " in text and "value: " in text, text


def test_space_tabs_in_jupyterlab(browser, jupyter_lab, screenshot_dir):
    server = jupyter_lab
    server.write_notebook("spaces.ipynb", [EXPLORER])
    (server.root / "events.jsonl").unlink(missing_ok=True)
    with open_notebook(browser, server, "spaces.ipynb", viewport=(1600, 1000)) as nb:
        page = nb.page
        nb.run_all(GRID, timeout=90)
        page.evaluate("() => document.querySelectorAll('.Toastify, .jp-toast-container').forEach((e) => e.remove())")
        for title, canvas in TABS:
            cv = _open_tab(page, title, canvas)
            if title == "Spaces":
                _check_spaces(nb, server, cv)
            else:
                _check_tab(nb, title, cv)
            for width in (1100, 1600):
                page.set_viewport_size({"width": width, "height": 2000})  # tall: the whole tab in view
                page.wait_for_timeout(600)
                out = page.locator(".jp-OutputArea-output").first
                assert page.evaluate(SPILL, [out.element_handle()]) == [], (title, width)
                assert page.evaluate(INKED, [cv.element_handle()]) > 200, (title, width)
                if screenshot_dir is not None:
                    page.mouse.move(0, 0)  # no tooltip left over the tab
                    tab = page.locator(".jp-OutputArea .widget-tab-contents > .widget-box:visible").first
                    tab.scroll_into_view_if_needed()
                    tab.screenshot(path=str(screenshot_dir / f"lab_{title.lower()}_{width}.png"))
        nb.exec("write('error', e.error.value)")
        assert server.wait_event(lambda ev: ev["name"] == "error")["value"] == ""
    assert nb.foreign == [], f"non-localhost requests: {nb.foreign}"
    ours = [er for er in nb.errors if "dtwidgets" in er or "dtw-" in er]
    assert ours == [], ours


def test_scatter_3d_and_cosine_heatmap_in_jupyterlab(browser, jupyter_lab, screenshot_dir):
    server = jupyter_lab
    server.write_notebook("views.ipynb", [VIEWS])
    with open_notebook(browser, server, "views.ipynb", viewport=(1100, 1000)) as nb:
        page = nb.page
        cv = nb.run_all(".jp-OutputArea canvas.dtw-scatter-plot", timeout=90)
        page.wait_for_function(f"([c]) => ({INKED})([c]) > 200", arg=[cv.element_handle()], timeout=30_000)
        assert "drag to rotate" in page.locator(".jp-OutputArea .dtw-scatter .dtw-note").first.inner_text()
        before = page.evaluate("([c]) => c.toDataURL()", [cv.element_handle()])
        box = cv.bounding_box()
        page.mouse.move(box["x"] + 100, box["y"] + 100)
        page.mouse.down()
        page.mouse.move(box["x"] + 180, box["y"] + 130, steps=6)
        page.mouse.up()
        page.wait_for_function("([c, b]) => c.toDataURL() !== b", arg=[cv.element_handle(), before], timeout=10_000)
        heat = page.locator(".jp-OutputArea canvas.dtw-heat").first
        heat.wait_for(state="visible", timeout=30_000)
        assert page.evaluate(INKED, [heat.element_handle()]) > 200
        hb = heat.bounding_box()
        text = _hover_text(page, heat, [(hb["width"] * fx, hb["height"] * fy) for fx in (0.4, 0.6) for fy in (0.4, 0.6)])
        assert "forward - right" in text and "value: " in text, text
        if screenshot_dir is not None:
            page.evaluate("() => document.querySelectorAll('.Toastify, .jp-toast-container').forEach((e) => e.remove())")
            page.locator(".jp-OutputArea-output").first.screenshot(path=str(screenshot_dir / "lab_scatter3d_cosines.png"))
    assert nb.foreign == [], f"non-localhost requests: {nb.foreign}"
    ours = [er for er in nb.errors if "dtwidgets" in er or "dtw-" in er]
    assert ours == [], ours

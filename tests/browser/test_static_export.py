"""Every widget exported with to_html and opened from file:// in system Chromium.

Checks: no non-file request, canvases exist, pixel colours at known cells, hover tooltips,
client-side interaction (clicks, edits, slider scrubbing without a kernel), robustness inputs.
"""

from __future__ import annotations

import json
import time

import ipywidgets
import numpy as np
import pytest

from dtwidgets.widgets import (
    ActionPreferences, AttentionView, CalibrationCurve, ChannelHeatmap, ContributionBars,
    GridView, MatrixHeatmap, RTGScanView, array_from_json,
)

from .examples import LONG, dynamic_obstacles_grid, examples, partial_obs

pytestmark = pytest.mark.browser

SAVED = "() => (window.__dtw_saved || []).map(e => ({id: e.id, state: Object.fromEntries(Object.entries(e.state || {}).filter(([k, v]) => !(v && v.view))), msg: e.msg || null}))"
# decode the last saved `grid` (DataView) of a GridView into a nested list
SAVED_GRID = """() => { const s = (window.__dtw_saved || []).filter(e => e.state && e.state.grid).pop();
  if (!s) return null; const g = s.state.grid; return Array.from(new Uint8Array(g.buffer, g.byteOffset, g.byteLength)); }"""


def close(px, rgb, tol=12) -> bool:
    return all(abs(int(a) - int(b)) <= tol for a, b in zip(px[:3], rgb))


def saved(rec) -> list[dict]:
    return rec.page.evaluate(SAVED)


def test_all_widgets_render_offline(static_page, screenshot_dir) -> None:
    ex = examples()
    rec = static_page(ipywidgets.VBox(list(ex.values())), name="all_widgets", viewport=(1200, 900))
    hosts = rec.page.locator(".dtw-x-widget")
    assert hosts.count() == len(ex)
    for i, name in enumerate(ex):
        host = hosts.nth(i)
        assert host.locator(".dtw-root").count() == 1, name
        assert host.locator("canvas").count() >= 1, f"{name}: no canvas"
        assert not host.locator(".dtw-error").is_visible(), f"{name}: error box shown"
        assert not host.locator(".dtw-nodata").is_visible(), f"{name}: shows no data"
        if screenshot_dir is not None:
            host.scroll_into_view_if_needed()
            host.screenshot(path=str(screenshot_dir / f"{name}.png"))
    assert rec.foreign == [], f"non-file requests: {rec.foreign}"
    assert not [r for r in rec.requests if r.startswith(("http:", "https:", "ws:"))]
    assert rec.errors == []
    # one module per widget class, each inlined once
    html = rec.page.evaluate("document.querySelector('script[data-dtw-page]').textContent")
    data = json.loads(html)
    assert len(data["modules"]) == 8 and len(data["models"]) == len(ex)


def test_gridview_pixels(static_page) -> None:
    cs = 20
    full = GridView(dynamic_obstacles_grid(), agent_pos=(1, 1), agent_dir=0, cell_size=cs)
    part = GridView(partial_obs(), mode="partial", cell_size=cs)
    left = GridView(np.ones((3, 3, 3), np.uint8), agent_pos=(1, 1), agent_dir=2, cell_size=cs)
    rec = static_page(ipywidgets.HBox([full, part, left]), name="grid_pixels")
    c_full, c_part, c_left = (rec.page.locator("canvas.dtw-grid").nth(i) for i in range(3))
    mid = lambda x, y: (x * cs + cs / 2, y * cs + cs / 2)  # noqa: E731
    assert close(rec.pixel(c_full, *mid(6, 6)), (0, 255, 0)), "goal is green"
    assert close(rec.pixel(c_full, *mid(0, 0)), (100, 100, 100)), "wall is grey"
    assert close(rec.pixel(c_full, *mid(3, 2)), (0, 0, 255)), "ball is blue"
    assert close(rec.pixel(c_full, *mid(1, 1)), (255, 0, 0)), "agent is a red triangle"
    assert close(rec.pixel(c_full, 1 * cs + 0.65 * cs, 1 * cs + cs / 2), (255, 0, 0)), "agent tip points right"
    # partial observation: agent implicitly at (3, 6) facing up; unseen black; lava orange
    assert close(rec.pixel(c_part, 3 * cs + cs / 2, 6 * cs + 0.35 * cs), (255, 0, 0)), "agent tip up at (3, 6)"
    assert close(rec.pixel(c_part, *mid(0, 0)), (0, 0, 0)), "unseen is black"
    assert close(rec.pixel(c_part, 2 * cs + 0.5 * cs, 2 * cs + 0.1 * cs), (255, 128, 0)), "lava is orange"
    assert close(rec.pixel(c_part, *mid(3, 3)), (255, 0, 0)), "red ball"
    # facing left: tip on the left, nothing on the right edge
    assert close(rec.pixel(c_left, cs + 0.35 * cs, cs + cs / 2), (255, 0, 0))
    assert not close(rec.pixel(c_left, cs + 0.9 * cs, cs + cs / 2), (255, 0, 0))
    assert rec.foreign == [] and rec.errors == []


def test_gridview_channels_mode_and_hover(static_page) -> None:
    w = GridView(partial_obs(), mode="channels")
    rec = static_page(w, name="grid_channels")
    cvs = rec.page.locator("canvas.dtw-ch")
    assert cvs.count() == 3 and rec.page.locator(".dtw-gridview .dtw-ptitle").all_text_contents() == ["object", "colour", "state"]
    cs = float(cvs.nth(0).get_attribute("data-cell"))
    cvs.nth(0).hover(position={"x": 1 * cs + cs / 2, "y": 4 * cs + cs / 2})
    tip = rec.page.locator(".dtw-tip")
    assert tip.is_visible()
    assert "(x=1, y=4)" in tip.text_content() and "object: 5 key" in tip.text_content()


def test_gridview_click_select_and_edit(static_page) -> None:
    cs = 24
    sel = GridView(dynamic_obstacles_grid(), cell_size=cs)
    ed = GridView(dynamic_obstacles_grid(), cell_size=cs, editable=True, edit_tool="goal")
    rec = static_page(ipywidgets.HBox([sel, ed]), name="grid_edit")
    c0, c1 = rec.page.locator("canvas.dtw-grid").nth(0), rec.page.locator("canvas.dtw-grid").nth(1)
    c0.click(position={"x": 2 * cs + 5, "y": 5 * cs + 5})
    assert {"id": "w0", "selected_cell": [2, 5]} in [{"id": e["id"], "selected_cell": e["state"].get("selected_cell")} for e in saved(rec)]
    assert not close(rec.pixel(c1, 3 * cs + cs / 2, 3 * cs + cs / 2), (0, 255, 0))
    c1.click(position={"x": 3 * cs + cs / 2, "y": 3 * cs + cs / 2})
    # an edit is an intent: the page sends {x, y, tool} for Python to apply; the browser never edits the
    # grid itself (on a page without a kernel nothing changes, and nothing pretends to)
    sent = [e["msg"] for e in saved(rec) if isinstance(e.get("msg"), dict) and e["msg"].get("event") == "click"]
    assert sent[-1] == {"event": "click", "x": 3, "y": 3, "tool": "goal"}
    assert not close(rec.pixel(c1, 3 * cs + cs / 2, 3 * cs + cs / 2), (0, 255, 0)), "no edit without Python"
    arr = array_from_json(bytes(rec.page.evaluate(SAVED_GRID)))  # the state the page would send: unedited
    np.testing.assert_array_equal(arr, dynamic_obstacles_grid())


def test_channel_heatmap_colours_hover_vmax(static_page) -> None:
    v = np.zeros((2, 7, 7), np.float32)
    v[0, 1, 2], v[0, 4, 5], v[1, 0, 0], v[1, 6, 6] = 2.0, -2.0, np.nan, np.inf
    w = ChannelHeatmap(values=v, titles=["pos/neg", LONG], cell_size=20, agent_cell=(3, 6))
    rec = static_page(w, name="heat")
    c0, c1 = rec.page.locator("canvas.dtw-heat").nth(0), rec.page.locator("canvas.dtw-heat").nth(1)
    # display is x horizontal, y vertical: value[0, x=1, y=2] at column 1, row 2
    r, g, b, _ = rec.pixel(c0, 1 * 20 + 10, 2 * 20 + 10)
    assert r > 150 and b < 80, "positive is red"
    r, g, b, _ = rec.pixel(c0, 4 * 20 + 10, 5 * 20 + 10)
    assert b > 150 and r < 80, "negative is blue"
    assert close(rec.pixel(c0, 0 * 20 + 10, 0 * 20 + 10), (247, 247, 247)), "zero is white"
    r, g, b, _ = rec.pixel(c1, 5, 14)
    assert abs(r - g) < 10 and abs(g - b) < 10 and 100 < r < 215, "NaN is hatched grey"
    r, g, b, _ = rec.pixel(c1, 6 * 20 + 14, 6 * 20 + 14)
    assert r > 150 and b < 80, "+Inf clamped to the positive end"
    assert "1 cell has no value (NaN" in rec.page.locator(".dtw-note").text_content()
    title = rec.page.locator(".dtw-ptitle").nth(1)
    assert title.get_attribute("title") == LONG
    assert rec.page.evaluate("e => e.scrollWidth > e.clientWidth", title.element_handle()), "long title truncated"
    c0.hover(position={"x": 1 * 20 + 10, "y": 2 * 20 + 10})
    tip = rec.page.locator(".dtw-tip")
    assert tip.is_visible()
    text = tip.text_content()
    assert "pos/neg" in text and "x=1, y=2" in text and "value: 2" in text
    c0.click(position={"x": 4 * 20 + 10, "y": 5 * 20 + 10})
    assert any(e["state"].get("selected_cell") == [4, 5] for e in saved(rec))
    # user vmax through the number input
    inp = rec.page.locator(".dtw-channelheatmap input[type=number]")
    inp.fill("4")
    inp.press("Enter")
    inp.blur()
    assert any(e["state"].get("vmax") == 4 for e in saved(rec))
    r, g, b, _ = rec.pixel(c0, 1 * 20 + 10, 2 * 20 + 10)
    assert r > 200 and g > 100, "vmax 4 makes value 2 lighter"


def test_matrix_heatmap_colours_and_hover(static_page) -> None:
    w = MatrixHeatmap(values=np.array([[1.0, -1.0], [0.0, np.nan]]), row_labels=["L0", "L1"], col_labels=["R1", "s1"], title="t")
    rec = static_page(w, name="matrix")
    cv = rec.page.locator(".dtw-matrix canvas.dtw-heat")
    cs, ox, oy = (float(cv.get_attribute(a)) for a in ("data-cell", "data-ox", "data-oy"))
    at = lambda r, c: (ox + c * cs + cs / 2, oy + r * cs + cs / 4)  # noqa: E731  (above annotation text)
    r, g, b, _ = rec.pixel(cv, *at(0, 0))
    assert r > 150 and b < 80
    r, g, b, _ = rec.pixel(cv, *at(0, 1))
    assert b > 150 and r < 80
    cv.hover(position=dict(zip("xy", at(0, 1))))
    text = rec.page.locator(".dtw-tip").text_content()
    assert "row: L0" in text and "col: s1" in text and "value: -1" in text


def test_attention_view_select_head_and_hover(static_page) -> None:
    pat = np.tril(np.ones((3, 4, 4), np.float32))
    pat /= pat.sum(-1, keepdims=True)
    w = AttentionView(patterns=pat, head_labels=["L0H0", "L0H1", "L1H0"], token_labels=["R1", "s1", "a1", "R2"])
    rec = static_page(w, name="attention")
    assert rec.page.locator("canvas.dtw-attn").count() == 3
    rec.page.locator("canvas.dtw-attn").nth(2).click(position={"x": 5, "y": 5})
    assert any(e["state"].get("selected_head") == 2 for e in saved(rec))
    big = rec.page.locator("canvas.dtw-attn-big")
    assert big.is_visible()
    cs, ox, oy = (float(big.get_attribute(a)) for a in ("data-cell", "data-ox", "data-oy"))
    assert rec.page.locator(".dtw-attention select").input_value() == "2"
    r, g, b, _ = rec.pixel(big, ox + cs / 2, oy + cs / 4)  # query 0 -> key 0 = 1.0: darkest
    assert r < 100 and b > 90
    assert rec.pixel(big, ox + 3 * cs + cs / 2, oy + cs / 2)[:3] == [252, 251, 253]  # masked = 0
    big.hover(position={"x": ox + 1 * cs + cs / 2, "y": oy + 3 * cs + cs / 2})
    text = rec.page.locator(".dtw-tip").text_content()
    assert "L1H0" in text and "query: R2 (3)" in text and "key: s1 (1)" in text and "value: 0.25" in text
    rec.page.locator(".dtw-attention select").select_option("-1")
    assert rec.page.locator("canvas.dtw-attn").first.is_visible()


def test_action_preferences_pair_dropdowns(static_page) -> None:
    w = ActionPreferences(logits=[0.0, 1.0, 3.0], action_names=["left", "right", "forward"], pair=(2, 0))
    rec = static_page(w, name="prefs")
    txt = rec.page.locator(".dtw-actionprefs .dtw-readout")
    assert txt.text_content() == "logit[forward] − logit[left] = 3"
    rec.page.locator(".dtw-actionprefs select").nth(1).select_option("1")
    assert txt.text_content() == "logit[forward] − logit[right] = 2"
    assert any(e["state"].get("pair") == [2, 1] for e in saved(rec))
    cv = rec.page.locator("canvas.dtw-probs")
    cv.hover(position={"x": 150, "y": 2 * 20 + 10})
    assert "forward" in rec.page.locator(".dtw-tip").text_content()


def test_rtg_scan_slider_scrubs_without_kernel(static_page) -> None:
    r = np.linspace(0, 1, 11, dtype=np.float32)
    w = RTGScanView(rtgs=r, series=np.stack([r, 1 - r, r**2]), series_names=["P(a)", "P(b)", "c"],
                    series_groups=["probability", "probability", "contribution"], index=2)
    rec = static_page(w, name="rtg")
    readout = rec.page.locator(".dtw-rtgscan .dtw-controls .dtw-readout")
    assert "index 2 of 10" in readout.text_content()
    over = rec.page.locator("canvas.dtw-marker").first
    before = over.screenshot()
    slider = rec.page.locator(".dtw-rtgscan input[type=range]")
    slider.focus()
    t0 = time.time()
    for _ in range(5):
        slider.press("ArrowRight")
    assert "index 7 of 10" in readout.text_content() and "0.7" in readout.text_content()
    assert over.screenshot() != before, "marker moved"
    vals = rec.page.locator(".dtw-rtgscan .dtw-legend .dtw-readout").all_text_contents()
    assert vals[:2] == ["0.7", "0.3"]
    idx = [e["state"].get("index") for e in saved(rec)]
    if time.time() - t0 < 0.14:
        assert 7 not in idx, "index sync should be debounced"
    rec.page.wait_for_function("() => (window.__dtw_saved || []).some(e => e.state && e.state.index === 7)", timeout=3000)
    assert [e["state"]["index"] for e in saved(rec) if "index" in e["state"]][-1] == 7
    over.hover(position={"x": 60, "y": 50})
    assert "RTG" in rec.page.locator(".dtw-tip").text_content()


def test_contribution_bars_and_calibration_hover(static_page) -> None:
    cb = ContributionBars(values=[[1.0, -2.0]], labels=["L0H0", LONG], groups=["attn", "mlp"], series_names=["dla"])
    cc = CalibrationCurve(targets=[0, 0.5, 1], mean=[0, 0.4, 0.9], lo=[0, 0.3, 0.8], hi=[0.1, 0.5, 1],
                          outcome_counts=[[1, 0, 0], [5, 5, 0], [9, 0, 1]], outcome_names=["goal", "collision", "timeout"])
    rec = static_page(ipywidgets.VBox([cb, cc]), name="bars_calib")
    bars = rec.page.locator("canvas.dtw-bars")
    bars.hover(position={"x": 40, "y": 18 + 18 + 18 + 10 + 18 + 5})  # second component's row (after 2 headers)
    assert LONG in rec.page.locator(".dtw-contrib .dtw-tip").text_content()
    cal = rec.page.locator("canvas.dtw-calib")
    box = cal.bounding_box()
    cal.hover(position={"x": 52 + 200, "y": 100})
    text = rec.page.locator(".dtw-calibration .dtw-tip").text_content()
    assert "target: 0.5" in text and "collision: 5" in text
    assert box["height"] > 300


ROBUST = {
    "empty_grid": lambda: GridView(),
    "grid_1x1": lambda: GridView(np.array([[[8, 1, 0]]], np.uint8), agent_pos=(0, 0), agent_dir=1),
    "grid_20x20_edit": lambda: GridView(np.random.default_rng(0).integers(0, 11, (20, 20, 3)).astype(np.uint8) % 11,
                                        agent_pos=(19, 19), agent_dir=3, editable=True),
    "grid_odd_codes": lambda: GridView(np.full((2, 3, 3), 250, np.uint8), agent_pos=(5, 5)),
    "heat_48": lambda: ChannelHeatmap(values=np.random.default_rng(1).normal(size=(48, 7, 7)), titles=[LONG] * 48),
    "heat_all_nan": lambda: ChannelHeatmap(values=np.full((2, 3, 3), np.nan)),
    "heat_inf": lambda: ChannelHeatmap(values=np.array([[[np.inf, -np.inf]]]), annotate=True),
    "heat_empty": lambda: ChannelHeatmap(),
    "heat_1x1": lambda: ChannelHeatmap(values=np.ones((1, 1, 1))),
    "heat_20x20": lambda: ChannelHeatmap(values=np.random.default_rng(2).normal(size=(3, 20, 20)), annotate=True),
    "prefs_nan": lambda: ActionPreferences(logits=[np.nan, np.inf, 1.0], pair=(5, 9), action_names=[LONG, "b", "c"]),
    "prefs_empty": lambda: ActionPreferences(),
    "attn_big": lambda: AttentionView(patterns=np.random.default_rng(3).random((12, 60, 60)), token_labels=[LONG] * 60),
    "attn_neg_nan": lambda: AttentionView(patterns=np.array([[[np.nan, -1.0], [2.0, np.inf]]]), selected_head=0),
    "attn_bad_head": lambda: AttentionView(patterns=np.ones((1, 2, 2)), selected_head=7),
    "attn_empty": lambda: AttentionView(),
    "bars_nan": lambda: ContributionBars(values=[[np.nan, np.inf, -np.inf, 0.0]], labels=[LONG, "b", "c", "d"]),
    "bars_empty": lambda: ContributionBars(),
    "matrix_nan": lambda: MatrixHeatmap(values=np.full((3, 40), np.nan), row_labels=[LONG] * 3),
    "matrix_1x1": lambda: MatrixHeatmap(values=[[np.inf]], annotate=True),
    "matrix_empty": lambda: MatrixHeatmap(),
    "rtg_mismatch": lambda: RTGScanView(rtgs=[0, 1, 2], series=np.ones((2, 5))),
    "rtg_nan": lambda: RTGScanView(rtgs=[0, np.nan, 2], series=[[np.nan, np.inf, 1]], index=9),
    "rtg_one": lambda: RTGScanView(rtgs=[1.0], series=[[0.5]]),
    "rtg_empty": lambda: RTGScanView(),
    "calib_nan": lambda: CalibrationCurve(targets=[0, 1, 2], mean=[np.nan, 1, np.inf], lo=[0, np.nan, 1], hi=[1, 1, 1],
                                          outcome_counts=np.zeros((3, 2))),
    "calib_partial": lambda: CalibrationCurve(targets=[1.0], mean=[0.5]),
    "calib_empty": lambda: CalibrationCurve(),
}
EMPTY = {"empty_grid", "heat_empty", "prefs_empty", "attn_empty", "bars_empty", "matrix_empty", "rtg_empty", "calib_empty", "rtg_mismatch"}


def test_robust_inputs_never_blank_never_throw(static_page) -> None:
    names = list(ROBUST)
    rec = static_page(ipywidgets.VBox([ROBUST[n]() for n in names]), name="robust", viewport=(1400, 1000))
    hosts = rec.page.locator(".dtw-x-widget")
    for i, n in enumerate(names):
        host = hosts.nth(i)
        assert not host.locator(".dtw-error").is_visible(), f"{n}: {host.locator('.dtw-error').text_content()}"
        if n in EMPTY:
            nd = host.locator(".dtw-nodata")
            assert nd.is_visible() and nd.text_content(), f"{n}: placeholder missing"
        else:
            assert host.locator("canvas:visible").count() >= 1, f"{n}: nothing drawn"
            box = host.bounding_box()
            assert box["width"] > 20 and box["height"] > 20, n
    assert rec.errors == [] and rec.foreign == []


def test_python_error_box_rendered(static_page) -> None:
    w = GridView(dynamic_obstacles_grid())
    w.observe_guarded(lambda ch: 1 / 0, names="selected_cell")
    w.selected_cell = (1, 1)
    w2 = MatrixHeatmap(values=np.eye(2), title="<img src=x onerror=alert(1)>")
    rec = static_page(ipywidgets.HBox([w, w2]), name="errorbox")
    box = rec.page.locator(".dtw-gridview .dtw-error")
    assert box.is_visible() and "ZeroDivisionError" in box.text_content()
    color = rec.page.evaluate("e => getComputedStyle(e).borderTopColor", box.element_handle())
    assert color == "rgb(198, 40, 40)"
    box.locator("button").click()
    assert not box.is_visible()
    assert any(e["state"].get("error") == "" for e in saved(rec))
    assert rec.page.locator(".dtw-matrix .dtw-title").text_content() == "<img src=x onerror=alert(1)>"
    assert rec.page.locator(".dtw-matrix img").count() == 0


def test_gridview_keyboard_and_repeated_clicks_without_kernel(static_page) -> None:
    """Focused GridView: keys become {event: "key"} messages (logged by the export shim's send),
    arrows / space do not scroll the page, other keys are left alone; repeated clicks on one cell
    each send a click message."""
    cs = 24
    rec = static_page(GridView(dynamic_obstacles_grid(), cell_size=cs), name="grid_keys", viewport=(600, 300))
    page = rec.page
    page.evaluate("() => { const d = document.createElement('div'); d.style.height = '3000px'; document.body.appendChild(d); }")
    root, canvas = page.locator(".dtw-gridview"), page.locator("canvas.dtw-grid")
    msgs = lambda: [e["msg"] for e in saved(rec) if e["msg"]]  # noqa: E731
    assert root.get_attribute("tabindex") == "0"
    # not focused: keys are ignored by the widget (and Space scrolls the page as usual)
    page.keyboard.press("ArrowLeft")
    assert msgs() == []
    root.focus()
    assert page.evaluate("() => document.activeElement.classList.contains('dtw-gridview')")
    outline = page.evaluate("e => getComputedStyle(e).outlineStyle + ' ' + getComputedStyle(e).outlineWidth", root.element_handle())
    assert outline == "solid 2px", "visible focus outline"
    for k in ["ArrowLeft", "ArrowRight", "ArrowUp", "ArrowDown", " ", "Enter", "Backspace", "a", "Shift+B", "7"]:
        page.keyboard.press(k)
    page.wait_for_timeout(300)  # any (smooth) scrolling would have started by now
    assert page.evaluate("() => window.scrollY") == 0, "arrows / space must not scroll while the widget has focus"
    page.keyboard.press("Tab")  # not handled: focus leaves the widget
    assert not page.evaluate("() => document.activeElement.classList.contains('dtw-gridview')")
    page.keyboard.press("Space")  # control: without focus the page scrolls and nothing is sent
    page.wait_for_function("() => window.scrollY > 0", timeout=5_000)
    keys = [m for m in msgs() if m["event"] == "key"]
    assert [m["key"] for m in keys] == ["ArrowLeft", "ArrowRight", "ArrowUp", "ArrowDown", "Space", "Enter",
                                        "Backspace", "a", "B", "7"]
    assert keys[8]["shift"] is True and keys[0] == {"event": "key", "key": "ArrowLeft", "shift": False, "ctrl": False, "alt": False}
    # clicks: each one is reported, also on the same cell, and focuses the widget
    page.evaluate("() => document.activeElement.blur()")
    for _ in range(2):
        canvas.click(position={"x": 2 * cs + cs / 2, "y": 3 * cs + cs / 2})
    clicks = [m for m in msgs() if m["event"] == "click"]
    assert clicks == [{"event": "click", "x": 2, "y": 3, "tool": None}] * 2
    assert page.evaluate("() => document.activeElement.classList.contains('dtw-gridview')")
    page.keyboard.press("ArrowLeft")
    assert msgs()[-1]["key"] == "ArrowLeft"
    assert rec.errors == [] and rec.foreign == []

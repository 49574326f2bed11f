"""ScatterView in a real browser (static to_html page, network blocked): a PCA of the demo model's time
embedding draws one dot per finite point (pixels in the point colours where the page says each point is),
hover names the point under the mouse (a hostile label stays text), the scree is drawn, and dragging
the 3-D view rotates it."""
from __future__ import annotations

import numpy as np
import pytest

from dtwidgets.widgets import ScatterView

from tests.widgets.hostile import FLAG, IMG

pytestmark = pytest.mark.browser
PAL0 = (0x4E, 0x79, 0xA7)  # lib/colors.js PALETTE[0], class 0
PAL1 = (0xF2, 0x8E, 0x2B)  # PALETTE[1], class 1


def _screen(cv, xy):
    """CSS-pixel position of data point ``xy`` from the canvas' data-map (cx, cy, scale, centre, half)."""
    m = [float(v) for v in cv.get_attribute("data-map").split(",")]
    cx, cy, s, mx, my, half = m[0], m[1], m[2], m[3], m[4], m[6]
    return float(cx + s * (xy[0] - mx) / half), float(cy - s * (xy[1] - my) / half)


def test_scatter_draws_points_and_hover_names_them(static_page) -> None:
    from dtwidgets.analysis import embedding_pca
    from dtwidgets.demo import load_demo

    adapter = load_demo("post")[0]
    t = np.arange(0, 40, 3)
    parity = np.where(t % 2 == 0, "even", "odd")
    res = embedding_pca(adapter, "time", t, n_components=2, colour=parity)
    labels = list(res.point_labels)
    labels[4] = IMG
    pts = res.coordinates.copy()
    pts[7] = np.nan  # one point without coordinates: not drawn, and the page says so
    view = ScatterView.from_pca(res, point_labels=labels, points=pts, colour_name="parity", point_size=5)
    rec = static_page(view, "scatter")
    cv = rec.page.locator("canvas.dtw-scatter-plot")
    N = len(t)
    assert cv.get_attribute("data-drawn") == str(N - 1)
    assert "1 point(s) with non-finite coordinates not drawn" in rec.page.locator(".dtw-scatter .dtw-note").inner_text()
    for i in [0, 1, 4, 12]:
        x, y = _screen(cv, pts[i])
        r, g, b, _ = rec.pixel(cv, x, y)
        want = PAL0 if res.colour_classes[int(res.colour[i])] == "even" else PAL1
        assert max(abs(r - want[0]), abs(g - want[1]), abs(b - want[2])) <= 40, (i, (r, g, b), want)
    x, y = _screen(cv, pts[4])
    cv.hover(position={"x": x, "y": y})
    tip = rec.page.locator(".dtw-tip:visible").first
    text = tip.inner_text()
    assert IMG in text and "parity: even" in text and "PC1" in text, text
    assert rec.page.evaluate(f"() => !!window.{FLAG}") is False
    x, y = _screen(cv, pts[9])
    cv.hover(position={"x": x, "y": y})
    assert labels[9] in rec.page.locator(".dtw-tip:visible").first.inner_text()
    legend = rec.page.locator(".dtw-scatter .dtw-legend").inner_text()
    assert "even" in legend and "odd" in legend
    assert rec.page.locator("canvas.dtw-scree").is_visible()
    assert not rec.errors and not rec.foreign


def test_scatter_3d_rotates_on_drag(static_page) -> None:
    rng = np.random.default_rng(0)
    pts = rng.normal(size=(30, 3)).astype(np.float32)
    rec = static_page(ScatterView(points=pts, axis_labels=["x", "y", "z"]), "scatter3d")
    cv = rec.page.locator("canvas.dtw-scatter-plot")
    assert cv.get_attribute("data-drawn") == "30"
    before = cv.screenshot()
    box = cv.bounding_box()
    page = rec.page
    page.mouse.move(box["x"] + 100, box["y"] + 100)
    page.mouse.down()
    page.mouse.move(box["x"] + 180, box["y"] + 130, steps=6)
    page.mouse.up()
    assert cv.get_attribute("data-drawn") == "30"
    assert cv.screenshot() != before, "dragging did not rotate the 3-D view"
    assert not rec.errors

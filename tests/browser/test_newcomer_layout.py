"""Issue #26, newcomer list, layout jumps: entering edit mode never moves a full grid (its caption
moved it 20 px down), and the status line shows its whole text (it was clamped to one line, the rest in a
tooltip) yet keeps its height during an RTG drag (it wrapped and moved the tabs below by 17 px)."""
from __future__ import annotations

import ipywidgets
import numpy as np
import pytest

from dtwidgets.widgets import GridView, RTGSlider, StatusLine

from .conftest import DRAG_JS
from .examples import dynamic_obstacles_grid

pytestmark = pytest.mark.browser
LONG_NOTE = "edited outside the agent's view: the model cannot see this cell · " * 4


def _grid_offset(root) -> float:
    """CSS px from the widget root's top to its grid canvas' top."""
    return root.evaluate("(r) => r.querySelector('canvas.dtw-grid').getBoundingClientRect().top - r.getBoundingClientRect().top")


def test_edit_mode_does_not_move_the_grid(static_page) -> None:
    g = dynamic_obstacles_grid()
    views = [GridView(g, agent_pos=(1, 1), agent_dir=0, editable=e, edit_tool="wall") for e in (False, True)]
    rec = static_page(ipywidgets.HBox(views), name="grid_edit_caption")
    roots = rec.page.locator(".dtw-gridview")
    plain, editing = _grid_offset(roots.nth(0)), _grid_offset(roots.nth(1))
    assert abs(plain - editing) < 0.5, (plain, editing)
    captions = [roots.nth(i).locator(".dtw-controls").first for i in range(2)]
    assert not captions[0].is_visible() and captions[1].is_visible()
    assert "edit tool:" in captions[1].text_content()
    assert rec.errors == []


def test_status_line_shows_everything_and_keeps_its_height_while_dragging(static_page) -> None:
    rtgs = np.linspace(-1, 1, 5, dtype=np.float32)
    scan = np.stack([np.zeros(5), np.zeros(5), 4 * rtgs], 1).astype(np.float32)  # forward wins for RTG > 0
    kw = dict(lead=["step 3"], rtg=0.0, logits=np.array([2.0, 0.0, 0.0], np.float32), action_names=["left", "right", "forward"],
              scan_rtgs=rtgs, scan_logits=scan, follow_group="g")
    long = StatusLine(**kw, notes=[LONG_NOTE])
    slider = RTGSlider(value=0.0, min=-1, max=1, step=0.05, follow_group="g")
    below_it = StatusLine(lead=["the widget below"])
    rec = static_page(ipywidgets.VBox([slider, long, below_it]), name="status_whole", viewport=(700, 600))
    line, page = rec.page.locator(".dtw-status .dtw-status-line").first, rec.page
    page.wait_for_function("() => document.querySelector('.dtw-status-line').textContent.includes('prefers')", timeout=10_000)
    whole = line.evaluate("(e) => [e.scrollHeight <= e.clientHeight + 1, getComputedStyle(e).webkitLineClamp, e.innerText]")
    assert whole[0] and whole[1] == "none", whole  # nothing cut, no clamp
    assert LONG_NOTE.strip() in whole[2] and "model prefers left" in whole[2], whole[2]
    assert line.bounding_box()["height"] > 40  # the long note wraps onto several lines, all shown
    below = lambda: page.locator(".dtw-status .dtw-status-line").nth(1).bounding_box()["y"]  # noqa: E731
    y0, h0 = below(), line.bounding_box()["height"]
    for v in (0.8, -0.35, 1.0, 0.05):  # a drag: the line previews (longer text) and keeps its height
        page.evaluate(DRAG_JS, [v, False])
        page.wait_for_function("() => document.querySelector('.dtw-status-line').textContent.includes('preview')", timeout=10_000)
        assert f"RTG {v:+.2f}" in line.inner_text(), line.inner_text()
        assert abs(line.bounding_box()["height"] - h0) < 0.5 and abs(below() - y0) < 0.5, (v, line.inner_text())
    page.evaluate(DRAG_JS, [0.05, True])  # released (no kernel: back to the page's own state)
    page.wait_for_function("() => !document.querySelector('.dtw-status-line').textContent.includes('preview')", timeout=10_000)
    assert abs(line.bounding_box()["height"] - h0) < 0.5 and abs(below() - y0) < 0.5
    assert rec.errors == []

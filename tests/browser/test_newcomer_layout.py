"""Issue #26, newcomer list, layout jumps: entering edit mode never moves a full grid (its caption
moved it 20 px down), and the status line keeps one line's height whatever it says (it wrapped during
an RTG drag and moved the tabs below by 17 px): the rest is cut with an ellipsis and in its title."""
from __future__ import annotations

import ipywidgets
import numpy as np
import pytest

from dtwidgets.widgets import GridView, StatusLine

from .examples import dynamic_obstacles_grid

pytestmark = pytest.mark.browser
LONG_NOTE = "preview from the RTG scan, interpolated: confirmed on release · " * 4


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


def test_status_line_keeps_one_line(static_page) -> None:
    kw = dict(lead=["step 3"], rtg=0.9, logits=np.array([0.2, 0.1, 1.5], np.float32), action_names=["left", "right", "forward"])
    short, long = StatusLine(**kw), StatusLine(**kw, notes=[LONG_NOTE])
    rec = static_page(ipywidgets.VBox([short, long]), name="status_one_line", viewport=(700, 600))
    lines = rec.page.locator(".dtw-status .dtw-status-line")
    boxes = [lines.nth(i).bounding_box() for i in range(2)]
    assert abs(boxes[0]["height"] - boxes[1]["height"]) < 0.5, boxes
    assert boxes[1]["width"] <= 700
    cut = lines.nth(1).evaluate("(e) => [e.scrollHeight > e.clientHeight + 2, e.title]")
    assert cut[0], "the long line is cut (ellipsis), not wrapped"
    assert LONG_NOTE.strip() in cut[1] and "model prefers forward" in cut[1], cut[1]
    assert rec.errors == []

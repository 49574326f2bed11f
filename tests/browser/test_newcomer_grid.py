"""Issue #26, newcomer list, the grid's hover card: it is hidden by the focusing click and by every key
(it covered the agent while playing), it stays inside the viewport at the page's bottom edge (it was
cut), and an empty or unseen cell shows only its object (it read "colour: 0 red")."""
from __future__ import annotations

import pytest

from dtwidgets.widgets import GridView

from .examples import dynamic_obstacles_grid, partial_obs

pytestmark = pytest.mark.browser
TIP = ".dtw-tip"


def _cell_point(canvas, x: int, y: int) -> dict:
    cs = float(canvas.get_attribute("data-cell"))
    return {"x": (x + 0.5) * cs, "y": (y + 0.5) * cs}


def _tip(page) -> tuple[bool, str]:
    loc = page.locator(TIP).first
    return loc.is_visible(), loc.text_content() or ""


def test_grid_tip_shows_only_the_object_of_empty_and_unseen_cells(static_page) -> None:
    g = dynamic_obstacles_grid()
    rec = static_page(GridView(g, agent_pos=(1, 1), agent_dir=0), name="grid_tip_text")
    cv = rec.page.locator(".dtw-gridview canvas.dtw-grid")
    cv.hover(position=_cell_point(cv, 3, 3))  # empty cell: code (1, 0, 0)
    vis, text = _tip(rec.page)
    assert g[3, 3].tolist() == [1, 0, 0]
    assert vis and "object: 1 empty" in text and "colour" not in text and "state" not in text, text
    cv.hover(position=_cell_point(cv, 3, 2))  # blue ball: code (6, 2, 0)
    vis, text = _tip(rec.page)
    assert "object: 6 ball" in text and "colour: 2 blue" in text, text
    rec2 = static_page(GridView(partial_obs(), mode="partial"), name="grid_tip_unseen")
    cv2 = rec2.page.locator(".dtw-gridview canvas.dtw-grid")
    cv2.hover(position=_cell_point(cv2, 0, 0))  # unseen
    vis, text = _tip(rec2.page)
    assert vis and "object: 0 unseen" in text and "colour" not in text, text
    assert rec.errors == [] and rec2.errors == []


def test_grid_tip_hides_on_click_and_on_keys(static_page) -> None:
    rec = static_page(GridView(dynamic_obstacles_grid(), agent_pos=(1, 1), agent_dir=0), name="grid_tip_keys")
    page, cv = rec.page, rec.page.locator(".dtw-gridview canvas.dtw-grid")
    cv.hover(position=_cell_point(cv, 2, 1))
    assert _tip(page)[0]
    cv.click(position=_cell_point(cv, 2, 1))
    assert not _tip(page)[0], "the focusing click left the card over the grid"
    assert page.evaluate("() => document.activeElement.classList.contains('dtw-gridview')")
    cv.hover(position=_cell_point(cv, 2, 2))
    assert _tip(page)[0], "the card comes back when the pointer moves"
    page.keyboard.press("ArrowUp")
    assert not _tip(page)[0], "a key press (playing) left the card over the agent"
    assert rec.errors == []


def test_grid_tip_stays_inside_the_viewport_at_the_bottom_edge(static_page) -> None:
    rec = static_page(GridView(dynamic_obstacles_grid(), agent_pos=(1, 1), agent_dir=0), name="grid_tip_edge")
    page, cv = rec.page, rec.page.locator(".dtw-gridview canvas.dtw-grid")
    box = cv.bounding_box()
    # the page ends 4 px below the grid: the bottom row's card cannot fit below the pointer
    page.set_viewport_size({"width": 1100, "height": int(box["y"] + box["height"] + 4)})
    page.wait_for_timeout(50)
    vh = page.evaluate("() => innerHeight")
    for x, y in ((0, 7), (7, 7), (0, 6), (3, 6)):  # walls (3 lines) and an empty cell (2 lines), last two rows
        p = _cell_point(cv, x, y)
        cv.hover(position=p)
        t = page.locator(TIP).first.bounding_box()
        assert t is not None and t["height"] > 20
        assert t["y"] >= 0 and t["y"] + t["height"] <= vh + 0.5, (t, vh)
        assert t["x"] >= 0 and t["x"] + t["width"] <= 1100 + 0.5, t
        pointer_y = box["y"] + p["y"]
        assert t["y"] + t["height"] <= pointer_y or t["y"] >= pointer_y, "the card covers the pointer instead of flipping above"
    assert rec.errors == []

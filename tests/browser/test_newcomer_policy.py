"""Issue #26, newcomer list, policy maps: arrows scale with the cell (they were ~8 px), a steering view
opens at a non-zero coefficient (it opened blank at 0), the difference title reads "(steered: forward −
right) minus clean" (not "steered: forward − right − clean"), and after switching to difference mode
the hover card shows the signed changes, labelled so (it showed probabilities)."""
from __future__ import annotations

import numpy as np
import torch
import pytest

from dtwidgets import MiniGridEnv
from dtwidgets.analysis.policy_map import agent_placements, policy_map
from dtwidgets.analysis.steering import steering_scan
from dtwidgets.widgets import PolicyMapView
from tests.analysis.helpers import CONFIGS, make_adapter

from .examples import dynamic_obstacles_grid

pytestmark = pytest.mark.browser
NAMES = ["left", "right", "forward"]

# JS [canvas, y]: CSS x of every pixel in the row at CSS y drawn in the forward arrow's red (antialiased
# edges included: much more red than green or blue; the grey walls and dark floor are not)
ROW_JS = """([c, y]) => {
  const k = c.width / parseFloat(c.style.width), d = c.getContext('2d').getImageData(0, Math.floor(y * k), c.width, 1).data;
  const xs = [];
  for (let i = 0; i < c.width; i++) if (d[4 * i] > 90 && d[4 * i] > 1.4 * d[4 * i + 1] && d[4 * i] > 1.4 * d[4 * i + 2]) xs.push(i / k);
  return xs;
}"""


def _one_arrow(**kw) -> PolicyMapView:
    """The agent facing right on (3, 3) of an 8x8 grid, surely going forward."""
    return PolicyMapView(grid=dynamic_obstacles_grid(), cells=np.array([[3, 3]], np.int32),
                         facings=np.array([0], np.int32), probs=np.array([[[0, 0, 1]]], np.float32),
                         action_names=NAMES, **kw)


def test_arrows_scale_with_the_cell(static_page) -> None:
    rec = static_page(_one_arrow(), name="pmap_arrow")
    cv = rec.page.locator("canvas.dtw-pmap")
    cs = cv.bounding_box()["width"] / 8
    assert cs >= 60, f"an 8x8 map at 1100 px gets {cs} px cells"
    xs = rec.page.evaluate(ROW_JS, [cv.element_handle(), 3.5 * cs])
    assert xs and all(3 * cs <= x < 4 * cs for x in xs)
    length = max(xs) - min(xs) + 1
    assert length >= 0.15 * cs and length >= 11, f"forward arrow {length:.1f} px long in a {cs:.0f} px cell"
    # a given small cell size still draws a readable arrow
    rec2 = static_page(_one_arrow(cell_size=24), name="pmap_arrow_small")
    cv2 = rec2.page.locator("canvas.dtw-pmap")
    xs2 = rec2.page.evaluate(ROW_JS, [cv2.element_handle(), 3.5 * 24])
    assert xs2 and max(xs2) - min(xs2) + 1 >= 4.5, xs2
    assert rec.errors == [] and rec2.errors == []


def test_steering_view_opens_at_a_nonzero_coefficient_with_a_readable_title(static_page) -> None:
    a = make_adapter(**CONFIGS["lnpre-8tok"])
    p = agent_placements(MiniGridEnv(seed=0), facings=(0, 1))
    clean = policy_map(a, p, 0.9)
    scan = steering_scan(a, None, (torch.randn(a.cfg.d_model, generator=torch.Generator().manual_seed(0)) * 3, "forward − right"),
                         coefficients=[-2, 0, 1, 2], placements=p, rtg=0.9)
    w = PolicyMapView.from_scan(scan, reference=clean)
    assert w.index == 3 and w.frame_values[w.index] == 2
    # what the page must show: the steered map differs from the clean one at this coefficient
    assert np.abs(w.probs[w.index] - w.probs_b[w.index]).max() > 0.01
    rec = static_page(w, name="pmap_steer")
    root = rec.page.locator(".dtw-policymap")
    assert root.locator(".dtw-readout").text_content() == "= 2"
    title = root.locator(".dtw-ptitle").text_content()
    assert title == f"(steered: forward − right) minus {clean.label}", title
    colours = rec.page.evaluate("""(c) => { const d = c.getContext('2d').getImageData(0, 0, c.width, c.height).data;
      let n = 0; for (let i = 0; i < d.length; i += 4) if ((d[i] > 180 && d[i + 1] < 90) || (d[i + 2] > 180 && d[i] < 60)) n++;
      return n; }""", root.locator("canvas.dtw-pmap").element_handle())
    assert colours > 50, "the difference map opens blank"
    assert rec.errors == []


def test_hover_shows_differences_after_switching_to_difference_mode(static_page) -> None:
    w = _one_arrow(probs_b=np.array([[[0.25, 0, 0.5]]], np.float32), map_labels=["steered", "clean"])
    rec = static_page(w, name="pmap_modes")
    page, cv = rec.page, rec.page.locator("canvas.dtw-pmap")
    box = cv.bounding_box()
    cs = box["width"] / 8
    cv.hover(position={"x": 3.5 * cs, "y": 3.5 * cs})
    text = page.locator(".dtw-policymap .dtw-tip").text_content()
    assert "probability: steered" in text and "left 0  right 0  forward 1" in text, text
    page.evaluate("() => Object.values(window.__dtw_models).find(m => m.get('mode') !== undefined).set('mode', 'difference')")
    page.wait_for_timeout(50)
    cv = page.locator("canvas.dtw-pmap")
    assert cv.get_attribute("data-panel") == "2"
    page.mouse.move(0, 0)
    cv.hover(position={"x": 3.5 * cs, "y": 3.5 * cs})
    text = page.locator(".dtw-policymap .dtw-tip").text_content()
    # probs − probs_b = (0 − 0.25, 0 − 0, 1 − 0.5)
    assert "change in probability: steered − clean" in text and "left -0.25  right +0  forward +0.5" in text, text
    assert rec.errors == []

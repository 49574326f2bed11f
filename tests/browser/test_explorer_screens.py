"""Widget-level regressions found by looking at the Explorer's screenshots (issue 13), on offline pages."""
from __future__ import annotations

import ipywidgets
import numpy as np
import pytest

from dtwidgets.widgets import AttentionView, ChannelHeatmap, ContributionBars

pytestmark = pytest.mark.browser


def test_value_columns_do_not_overlap(static_page) -> None:
    """The ablation tab's "before / after" bars printed "-9.01e-4-9.01e-4": two 44 px value columns."""
    cb = ContributionBars(values=[[-9.01e-4, 1.0], [-9.01e-4, -2.5e-5]], labels=["L0 b_O", "L0H0"],
                          series_names=["clean", "ablated"])
    rec = static_page(ipywidgets.VBox([cb]), name="bars_values")
    cv = rec.page.locator("canvas.dtw-bars")
    col = float(cv.get_attribute("data-vcol"))
    text = rec.page.evaluate("() => { const c = document.createElement('canvas').getContext('2d'); "
                             "c.font = '10px sans-serif'; return Math.max(c.measureText('-9.01e-4').width, "
                             "c.measureText('-2.5e-5').width); }")
    assert col >= text + 4, (col, text)


def test_unused_channel_is_greyed_and_left_out_of_the_scale(static_page) -> None:
    v = np.zeros((3, 4, 4), np.float32)
    v[0, 1, 1], v[1, 2, 2], v[2, 0, 0] = 1.0, -0.5, 10.0  # the unused channel's 10 must not set the scale
    w = ChannelHeatmap(values=v, titles=["object", "colour", "state"], unused=[2])
    rec = static_page(w, name="heat_unused")
    assert rec.page.locator(".dtw-controls").first.text_content().count("(auto 1)") == 1
    titles = rec.page.locator(".dtw-ptitle").all_text_contents()
    assert titles == ["object", "colour", "state (unused)"]
    cvs = rec.page.locator("canvas.dtw-heat")
    cs = float(cvs.nth(0).get_attribute("data-cell"))
    r, g, b, _ = rec.pixel(cvs.nth(0), 1 * cs + cs / 2, 1 * cs + cs / 2)  # value 1 = vmax: full red
    assert r > 150 and b < 80
    r, g, b, _ = rec.pixel(cvs.nth(2), 0 * cs + cs / 4, 0 * cs + cs / 4)  # value 10 in the unused map: grey
    assert max(r, g, b) - min(r, g, b) < 8 and r > 180, (r, g, b)


def test_short_context_attention_maps_are_readable(static_page) -> None:
    """The demo model's 2-token attention was drawn as two 32 px squares with no values."""
    pat = np.array([[[1, 0], [0.3, 0.7]], [[1, 0], [0.9, 0.1]]], np.float32)
    w = AttentionView(patterns=pat, head_labels=["L0H0", "L0H1"], token_labels=["R₀", "s₀"])
    rec = static_page(w, name="attn_short")
    box = rec.page.locator("canvas.dtw-attn").first.bounding_box()
    assert box["width"] >= 2 * 36 and box["height"] >= 2 * 36, box

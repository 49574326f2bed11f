"""Data shared between widgets instead of sent twice, in an exported page opened from file://:
a StatusLine reads its preference (and the RTG preview while the slider moves) from the
ActionPreferences it references; ContributionBars draws ``labels[rows[n]]`` for row n."""
from __future__ import annotations

import ipywidgets
import numpy as np
import pytest

from .conftest import DRAG_JS

from dtwidgets.widgets import ActionPreferences, ContributionBars, RTGSlider, StatusLine

pytestmark = pytest.mark.browser

NAMES = ["left", "right", "forward"]


def _prefs(group="g1"):
    rtgs = np.linspace(-1, 1, 5, dtype=np.float32)
    scan = np.stack([np.zeros(5), np.zeros(5), 4 * rtgs], 1).astype(np.float32)  # forward wins for RTG > 0
    return ActionPreferences(logits=np.array([2.0, 0.0, 0.0], np.float32), action_names=NAMES, rtg=0.0,
                             scan_rtgs=rtgs, scan_logits=scan, follow_group=group)


@pytest.mark.parametrize("laid_out", [True, False])
def test_status_line_reads_the_referenced_preferences(static_page, laid_out) -> None:
    prefs = _prefs()
    status = StatusLine(lead=["step 2"], rtg=0.0, preferences=prefs, follow_group="g1")
    slider = RTGSlider(value=0.0, min=-1, max=1, step=0.05, follow_group="g1")
    rec = static_page(ipywidgets.VBox([slider, prefs, status] if laid_out else [slider, status]), name=f"status_ref_{laid_out}")
    line = rec.page.locator(".dtw-status-line")
    rec.page.wait_for_function("() => document.querySelector('.dtw-status-line').textContent.includes('prefers')", timeout=10_000)
    p = np.exp([2.0, 0.0, 0.0])
    assert line.inner_text() == f"step 2 · RTG +0.00 · model prefers left ({round(p[0] / p.sum() * 100)}%)"
    # the slider moves: the status previews from the referenced widget's scan, no kernel needed
    rec.page.evaluate(DRAG_JS, [0.8, False])  # dragging (not released)
    rec.page.wait_for_function("() => document.querySelector('.dtw-status-line').textContent.includes('preview')", timeout=10_000)
    text = line.inner_text()
    q = np.exp([0.0, 0.0, 3.2])
    assert "RTG +0.80" in text and f"model prefers forward ({round(q[2] / q.sum() * 100)}%)" in text, text
    # released on a page without a kernel: nothing can confirm RTG 0.8, so the page returns to its own state
    rec.page.evaluate(DRAG_JS, [0.8, True])
    rec.page.wait_for_function("() => !document.querySelector('.dtw-status-line').textContent.includes('preview')", timeout=10_000)
    assert line.inner_text() == f"step 2 · RTG +0.00 · model prefers left ({round(p[0] / p.sum() * 100)}%)"
    assert rec.page.locator(".dtw-rtgslider input[type=range]").input_value() == "0"
    assert rec.errors == [] and rec.foreign == []


def test_status_line_without_preferences_keeps_its_own_logits(static_page) -> None:
    status = StatusLine(lead=["step 1"], logits=np.array([0.0, 3.0, 0.0], np.float32), action_names=NAMES)
    rec = static_page(status, name="status_own")
    assert "model prefers right" in rec.page.locator(".dtw-status-line").inner_text()
    assert rec.errors == []


def test_contribution_bars_rows_pick_labels(static_page) -> None:
    labels = [f"L0N{i}" for i in range(200)]
    bars = ContributionBars(values=np.array([[0.9, -0.4, 0.1]], np.float32), labels=labels, rows=[150, 3, 77])
    rec = static_page(bars, name="rows")
    cv = rec.page.locator("canvas.dtw-bars")
    box = cv.bounding_box()
    tip = rec.page.locator(".dtw-tip")
    seen = []
    for y in range(20, int(box["height"]) - 2, 4):  # hover down the rows: each row's tooltip names its label
        cv.hover(position={"x": 40, "y": y})
        if tip.is_visible():
            first = tip.inner_text().splitlines()[0]
            if not seen or seen[-1] != first:
                seen.append(first)
    assert seen == ["L0N150", "L0N3", "L0N77"], seen
    assert rec.errors == []


TEMPLATES = ["a{0} b{1} {{x}} c{5} d{2}", "L{{0}}H1 }{", "state embed (s{2})", "no fields"]


def test_step_templates_filled_like_python(static_page) -> None:
    """The front-end fills ``{k}`` with the episode step of token k exactly as ``fill_steps`` does."""
    from dtwidgets.widgets import MatrixHeatmap
    from dtwidgets.widgets._traits import fill_steps

    steps = np.array([3, -1, 12], np.int16)
    bars = [ContributionBars(values=[[1.0]], labels=["x"], title=t, steps=steps) for t in TEMPLATES]
    heat = MatrixHeatmap(values=np.ones((1, 3), np.float32), col_labels=["R{0}", "s{1}", "a{2}"], row_labels=["L{{0}}"],
                         title=TEMPLATES[0], steps=steps, cell_size=30)
    rec = static_page(ipywidgets.VBox([*bars, heat]), name="steps")
    titles = rec.page.locator(".dtw-title").all_inner_texts()
    assert titles[:len(TEMPLATES)] == [fill_steps(t, steps) for t in TEMPLATES], titles
    assert titles[-1] == fill_steps(TEMPLATES[0], steps) == "a₃ b·pad {x} c? d₁₂"
    # a heatmap cell's tooltip names its row and column as shown
    cv = rec.page.locator(".dtw-matrix canvas.dtw-heat")
    box = cv.bounding_box()
    tip = rec.page.locator(".dtw-matrix .dtw-tip")
    texts = set()
    for x in range(4, int(box["width"]) - 2, 6):
        cv.hover(position={"x": x, "y": box["height"] - 12})
        if tip.is_visible():
            texts.add(tip.inner_text())
    joined = "\n".join(texts)
    assert "s·pad" in joined and "a₁₂" in joined and "R₃" in joined and "{" not in joined.replace("L{0}", ""), joined
    assert rec.errors == []


def test_attention_and_rtg_scan_views_fill_step_templates(static_page) -> None:
    """AttentionView's token names (tooltip) and RTGScanView's series names (legend) are filled from
    ``steps`` in the browser exactly as ``fill_steps`` does."""
    from dtwidgets.widgets import AttentionView, RTGScanView
    from dtwidgets.widgets._traits import fill_steps

    steps = np.array([-1, 4, 9], np.int16)
    names = ["P(left)", "state embed (s{2})", "L{{0}}H1 → R", "R{0} vs R{1}"]
    scan = RTGScanView(rtgs=np.linspace(-1, 1, 5, dtype=np.float32), series=np.ones((4, 5), np.float32) * 0.5,
                       series_names=names, series_groups=["a"] * 4, steps=steps)
    attn = AttentionView(patterns=np.full((1, 3, 3), 1 / 3, np.float32), head_labels=["L0H0"],
                         token_labels=["R{0}", "s{1}", "a{2}"], steps=steps, selected_head=0)
    assert scan.shown_series_names == [fill_steps(n, steps) for n in names]
    assert attn.shown_token_labels == ["R·pad", "s₄", "a₉"]
    rec = static_page(ipywidgets.VBox([scan, attn]), name="steps_views")
    legend = rec.page.locator(".dtw-legend").first.inner_text()
    for n in scan.shown_series_names:
        assert n in legend, (n, legend)
    assert "{" not in legend.replace("L{0}", ""), legend
    cv = rec.page.locator("canvas.dtw-attn-big")
    box = cv.bounding_box()
    tip = rec.page.locator(".dtw-attention .dtw-tip, .dtw-tip").last
    texts = set()
    for x in range(4, int(box["width"]) - 2, 5):
        for y in range(4, int(box["height"]) - 2, 7):
            cv.hover(position={"x": x, "y": y})
            if tip.is_visible():
                texts.add(tip.inner_text())
    joined = "\n".join(texts)
    assert "query: a₉" in joined and "key: R·pad" in joined and "s₄" in joined, joined
    assert rec.errors == []

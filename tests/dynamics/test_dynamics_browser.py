"""TrainingDynamics and ProbeMatrix in Chromium from an offline to_html export: scrubbing redraws the
selected checkpoint's panels with no message to a kernel (the export's model logs every
save_changes/send), no network request, no JS error."""
from __future__ import annotations

import numpy as np
import pytest

from dtwidgets.compositions import TrainingDynamics
from dtwidgets.widgets import ProbeMatrix
from tests.browser.conftest import static_page  # noqa: F401  (fixture)

from .helpers import synthetic_dynamics

pytestmark = pytest.mark.browser

SAVED = "() => (window.__dtw_saved || []).length"
CANVAS = "(sel) => document.querySelector(sel).toDataURL()"


def test_training_dynamics_scrubs_without_kernel(static_page):  # noqa: F811
    dyn = synthetic_dynamics()
    assert any(j["metric"] == "probe b selectivity" and j["index"] == 6 for j in dyn.phase_transitions())
    td = TrainingDynamics(dyn, index=0)
    rec = static_page(td, name="training_dynamics", viewport=(1300, 1000))
    page = rec.page
    root = page.locator(".dtw-dynamics")
    assert root.count() == 1 and not page.locator(".dtw-error").is_visible()
    n_metrics = len(dyn.metrics())
    assert page.locator(".dtw-dynamics .dtw-line").count() == n_metrics
    readout = page.locator(".dtw-dynamics .dtw-step")
    assert "step 0 " in readout.text_content()
    before = {s: page.evaluate(CANVAS, f".dtw-dynamics canvas.{s}") for s in ("dtw-bars", "dtw-heat", "dtw-calib")}
    slider = page.locator(".dtw-dynamics input[type=range]")
    for i in (3, 7, 9):
        slider.evaluate(f"(el) => {{ el.value = '{i}'; el.dispatchEvent(new Event('input')); }}")
        assert f"step {dyn.steps[i]} " in readout.text_content()
    after = {s: page.evaluate(CANVAS, f".dtw-dynamics canvas.{s}") for s in before}
    assert all(before[s] != after[s] for s in before), "selected checkpoint panels redrawn"
    slider.evaluate("(el) => { el.value = '6'; el.dispatchEvent(new Event('input')); }")
    assert "probe b selectivity" in page.locator(".dtw-dynamics .dtw-note").first.text_content()
    page.wait_for_timeout(400)  # anything debounced would have been sent by now
    assert page.evaluate(SAVED) == 0, "scrubbing must not send anything to a kernel"
    assert rec.foreign == [] and rec.errors == []


def test_probe_matrix_hover_and_click(static_page):  # noqa: F811
    sel = np.array([[0.1, 0.4], [0.0, -0.2]], np.float32)
    metrics = np.stack([sel + 0.5, sel + 0.6, sel * 0 + 0.5, sel * 0 + 0.4, sel])
    w = ProbeMatrix(selectivity=sel, metrics=metrics, metric_names=["score", "auc", "baseline", "control",
                                                                     "selectivity"],
                    concepts=["ball ahead", "<b>x</b>"], sites=["L0 resid_pre @ state", "L0 resid_post @ state"])
    rec = static_page(w, name="probe_matrix")
    page = rec.page
    cv = page.locator(".dtw-probes canvas.dtw-heat")
    g = cv.evaluate("(c) => c.getBoundingClientRect().toJSON()")
    html = page.content()
    assert "<b>x</b>" not in html.split('data-dtw-page=')[0]
    # hover the (0, 1) cell: the tooltip lists every metric
    cs = 40
    box = cv.bounding_box()
    ox = box["width"] - 2 * cs - 2
    oy = box["height"] - 2 * cs - 2
    page.mouse.move(box["x"] + ox + 1.5 * cs, box["y"] + oy + 0.5 * cs)
    tip = page.locator(".dtw-tip").text_content()
    assert "ball ahead" in tip and "auc: 1" in tip and "selectivity: 0.4" in tip, tip
    page.mouse.click(box["x"] + ox + 1.5 * cs, box["y"] + oy + 0.5 * cs)
    saved = page.evaluate("() => window.__dtw_saved.map(e => e.state && e.state.selected_cell)")
    assert saved[-1] == [0, 1]
    assert rec.foreign == [] and rec.errors == [] and g["width"] > 0

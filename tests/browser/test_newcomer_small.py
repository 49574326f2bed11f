"""Issue #26, newcomer list, small things: the Attention view's all-heads grids name their rows and
columns (no token labels before), heatmaps say what a NaN cell means ("19 NaN (hatched)" before), 15
RTG-scan series in one panel never share a look (colours repeated after ten), the dynamics charts
space checkpoints by their training step (they spaced them by index under a "step" label), and a
metric's analysis part is a heading, not "held-out accuracy (loss)"."""
from __future__ import annotations

import numpy as np
import pytest

from dtwidgets.widgets import MatrixHeatmap, RTGScanView, TrainingDynamicsView

from .examples import examples

pytestmark = pytest.mark.browser
ML, PW = 40, 200  # js/training_dynamics.js: left margin and plot width of a metric chart (CSS px)


def test_attention_all_heads_caption_names_rows_and_columns(static_page) -> None:
    attn = examples()["attention_view"]
    rec = static_page(attn, name="attn_axes")
    axes = rec.page.locator(".dtw-attention .dtw-attn-axes")
    assert axes.is_visible()
    text = axes.text_content()
    assert "rows = query, columns = key" in text and " ".join(attn.token_labels) in text, text
    rec.page.locator(".dtw-attention canvas.dtw-attn").first.click()  # zoom into one head: its own labels
    rec.page.wait_for_timeout(50)
    assert not axes.is_visible()
    assert rec.errors == []


def test_heatmap_says_what_nan_means(static_page) -> None:
    v = np.arange(24, dtype=np.float32).reshape(4, 6)
    v[1, 2:5] = np.nan
    w = MatrixHeatmap(values=v, row_labels=list("abcd"), col_labels=list("uvwxyz"))
    rec = static_page(w, name="nan_note")
    note = rec.page.locator(".dtw-matrix .dtw-note").all_text_contents()
    n = int(np.isnan(v).sum())
    assert any(f"{n} cells have no value (NaN: not computed or undefined; hatched)" in t for t in note), note
    assert rec.errors == []


def test_fifteen_rtg_series_look_distinct(static_page) -> None:
    r = np.linspace(-1, 1, 21).astype(np.float32)
    series = np.stack([np.sin(r * (k + 1)) for k in range(15)]).astype(np.float32)
    w = RTGScanView(rtgs=r, series=series, series_names=[f"L{k // 4}H{k % 4}" for k in range(15)],
                    series_groups=["contribution"] * 15)
    rec = static_page(w, name="rtg_looks")
    looks = rec.page.locator(".dtw-rtgscan .dtw-legend .dtw-sw").evaluate_all(
        "(s) => s.map(e => getComputedStyle(e).backgroundColor + '|' + getComputedStyle(e).backgroundImage + '|' + e.dataset.dash)")
    assert len(looks) == 15 and len(set(looks)) == 15, looks
    assert rec.errors == []


def test_dynamics_spaces_checkpoints_by_step_and_heads_groups(static_page) -> None:
    steps = np.array([0, 10, 20, 1000], np.float32)
    metrics = np.array([[1.0, 0.8, 0.7, 0.1], [0.2, 0.3, 0.5, 0.9]], np.float32)
    w = TrainingDynamicsView(steps=steps, metrics=metrics, metric_names=["held-out loss", "held-out accuracy"],
                             metric_groups=["loss", "loss"], index=2)
    rec = static_page(w, name="dyn_steps")
    page = rec.page
    heads = page.locator(".dtw-dynamics .dtw-dyn-group").all_text_contents()
    assert heads == ["loss (analysis part)"], heads
    title = page.locator(".dtw-dynamics [data-metric='held-out accuracy'] .dtw-ptitle").first.text_content()
    assert "(loss)" not in title and "held-out accuracy" in title
    # the marker of checkpoint 2 (step 20 of 0..1000) sits at 2 % of the plot width, not at 2/3
    col = page.locator(".dtw-dynamics canvas.dtw-marker").first.evaluate("""(c) => {
      const k = c.width / parseFloat(c.style.width), d = c.getContext('2d').getImageData(0, 0, c.width, c.height).data;
      let best = -1, n = 0;
      for (let x = 0; x < c.width; x++) { let m = 0; for (let y = 0; y < c.height; y++) m += d[4 * (y * c.width + x) + 3] > 100;
        if (m > n) { n = m; best = x; } }
      return best / k; }""")
    expect = ML + PW * (20 - 0) / (1000 - 0)
    assert abs(col - expect) <= 2, (col, expect)
    assert rec.errors == []

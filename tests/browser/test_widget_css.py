"""Per-widget CSS in Chromium: each bundle carries only the rules of js/lib/style.css its code uses
(js/build.mjs), injected as one <style> per widget class in whatever order the widgets render.

The check is independent of the build's rule picking: every element of every widget must have the
same computed style before and after the complete js/lib/style.css is appended to the page (it would
fill in a rule a bundle lacks, and restore the file's order where two sheets fought by order).
"""

from __future__ import annotations

import pathlib

import ipywidgets
import numpy as np
import pytest

from dtwidgets.widgets import CircuitDiagram, ProbeMatrix, RTGSlider, StatusLine

from .examples import examples

pytestmark = pytest.mark.browser
STYLE = pathlib.Path(__file__).resolve().parents[2] / "js" / "lib" / "style.css"

# computed style of every element inside a widget, keyed by "widget index / element index"
COMPUTED_JS = """() => {
  const out = {};
  document.querySelectorAll('.dtw-root').forEach((root, i) => {
    [root, ...root.querySelectorAll('*')].forEach((el, j) => {
      const cs = getComputedStyle(el), props = {};
      for (const p of cs) props[p] = cs.getPropertyValue(p);
      out[`${i}/${j} ${el.tagName.toLowerCase()}.${el.className}`] = props;
    });
  });
  return out;
}"""


def _page() -> ipywidgets.Widget:
    ex = examples()
    # the two full-width line widgets first: their sheets are injected before the ones of the
    # boxes, whose .dtw-root and .dtw-controls rules come later in the page
    slider = RTGSlider(value=0.5, description="return-to-go")
    status = StatusLine(headline="episode over", lead=["step 3"], rtg=0.9, logits=np.array([0.2, 0.1, 1.5], np.float32),
                        action_names=["left", "right", "forward"], notes=["an edit outside the view"])
    circuit = CircuitDiagram(node_labels=["L0H0", "L1H0", "action head"], node_layers=[0, 1, 2],
                             edges=[[0, 1, 1.5], [1, 2, -0.5]], edge_labels=["q", "direct"], title="paths")
    sel = np.array([[0.1, 0.4], [0.0, -0.2]], np.float32)
    probes = ProbeMatrix(selectivity=sel, metrics=np.stack([sel + 0.5, sel + 0.6, sel * 0 + 0.5, sel * 0 + 0.4, sel]),
                         metric_names=["score", "auc", "baseline", "control", "selectivity"],
                         concepts=["ball ahead", "wall ahead"], sites=["L0 resid_pre", "L0 resid_post"])
    return ipywidgets.VBox([slider, status, *ex.values(), circuit, probes])


def test_each_widget_has_exactly_the_styles_of_the_full_stylesheet(static_page) -> None:
    rec = static_page(_page(), name="widget_css", viewport=(1200, 900))
    page = rec.page
    sheets = page.evaluate("() => [...document.querySelectorAll('style[id^=dtwidgets-style-]')].map(s => s.id)")
    classes = page.evaluate("() => [...new Set([...document.querySelectorAll('.dtw-root')].map(r => r.className))]")
    assert len(sheets) == len(set(sheets)) == len(classes) == 12, (sheets, classes)
    full = STYLE.read_text()
    assert all(len(page.evaluate("(id) => document.getElementById(id).textContent", s)) < len(full) for s in sheets)
    before = page.evaluate(COMPUTED_JS)
    assert len(before) > 100
    page.add_style_tag(content=full)
    page.wait_for_timeout(100)
    after = page.evaluate(COMPUTED_JS)
    assert after.keys() == before.keys()
    diffs = [f"{el}: {p} {before[el][p]!r} -> {after[el][p]!r}"
             for el in before for p in before[el] if before[el][p] != after[el].get(p)]
    assert diffs == [], "styles that depend on the missing rules or on sheet order:\n" + "\n".join(diffs[:30])
    # the RTG slider's range input grows with its row instead of the 260 px of other control rows
    w = page.locator(".dtw-rtgslider input[type=range]").evaluate("(e) => getComputedStyle(e).width")
    assert w != "260px"
    assert rec.errors == []

"""The Explorer's hidden tabs are created on first show (issue 26: the page loads only the shown panels'
widget modules): in real JupyterLab, clicking a tab never shown before draws its panel (its canvases
hold a drawing, no "no data", no placeholder left), and the kernel had not created it before the click.
No request leaves localhost; no console error."""
from __future__ import annotations

import pytest

from dtwidgets.compositions.panels.registry import PLACEHOLDER

from .conftest import event_writer, open_notebook

pytestmark = [pytest.mark.browser, pytest.mark.slow]

CELL = event_writer('events.jsonl') + '''\
from dtwidgets import Explorer
e = Explorer.demo(seed=1)
write("built", [e.ui.panels.is_built(i) for i in range(len(e.panels))])
write("keys", e.ui.panels.keys())
e
'''
OUT = ".jp-OutputArea"
# coloured (neither transparent nor near-white) pixels summed over the visible canvases of the visible `sel`
# widgets, whether a "no data" note shows there, and whether the placeholder text is on screen anywhere
DRAWN_JS = """([sel, placeholder]) => {
  let coloured = 0, canvases = 0, nodata = false;
  for (const w of document.querySelectorAll(sel)) {
    if (!w.offsetParent) continue;
    const nd = w.querySelector('.dtw-nodata');
    if (nd && nd.offsetParent) nodata = true;
    for (const c of w.querySelectorAll('canvas')) {
      if (!c.offsetParent || !c.width || !c.height) continue;
      canvases += 1;
      const d = c.getContext('2d').getImageData(0, 0, c.width, c.height).data;
      for (let i = 0; i < d.length; i += 4) if (d[i + 3] > 0 && Math.min(d[i], d[i + 1], d[i + 2]) < 235) coloured += 1;
    }
  }
  const shown = [...document.querySelectorAll('.jp-OutputArea .widget-html')]
    .some((e) => e.offsetParent && e.textContent.includes(placeholder));
  return {coloured, canvases, nodata, placeholder: shown};
}"""

TABS = (("Attention", ".dtw-attention"), ("RTG scan", ".dtw-rtgscan"))


def test_a_tab_never_shown_draws_on_first_click(browser, jupyter_lab, screenshot_dir):
    server = jupyter_lab
    server.write_notebook("lazy_tabs.ipynb", [CELL])
    (server.root / "events.jsonl").unlink(missing_ok=True)
    with open_notebook(browser, server, "lazy_tabs.ipynb", viewport=(1400, 1000)) as nb:
        page = nb.page
        nb.run_all(f"{OUT} .dtw-gridview canvas.dtw-grid", timeout=60)
        keys = server.wait_event(lambda ev: ev["name"] == "keys")["value"]
        built = server.wait_event(lambda ev: ev["name"] == "built")["value"]
        assert built[0] and not any(built[1:]), built  # only the first tab's panel exists
        assert page.locator(f"{OUT} .dtw-attention").count() == 0  # no view of a hidden panel on the page
        for title, sel in TABS:
            i = keys.index({"Attention": "attention", "RTG scan": "rtg_scan"}[title])
            page.locator(f"{OUT} .lm-TabBar-tab", has_text=title).first.click()
            page.locator(f"{OUT} {sel} canvas:visible").first.wait_for(state="visible", timeout=30_000)
            page.wait_for_function(f"(a) => ({DRAWN_JS})(a).coloured > 200", arg=[f"{OUT} {sel}", PLACEHOLDER],
                                   timeout=30_000, polling=100)
            drawn = page.evaluate(DRAWN_JS, [f"{OUT} {sel}", PLACEHOLDER])
            assert drawn["canvases"] >= 1 and not drawn["nodata"] and not drawn["placeholder"], (title, drawn)
            nb.exec(f"write('after_{i}', [e.ui.panels.is_built({i}), e.error.value])")
            ok, err = server.wait_event(lambda ev, i=i: ev["name"] == f"after_{i}")["value"]
            assert ok and err == "", (title, err)
            if screenshot_dir is not None:
                page.locator(OUT).first.screenshot(path=str(screenshot_dir / f"lazy_tab_{keys[i]}.png"))
    assert nb.foreign == [], f"non-localhost requests: {nb.foreign}"
    ours = [er for er in nb.errors if "dtwidgets" in er or "dtw-" in er]
    assert ours == [], ours

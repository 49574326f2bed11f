"""Widgets drawn inside a shadow root (marimo and Panel draw each anywidget there; document styles do not
reach in): each widget's stylesheet is injected into its own shadow root, its CSS applies there, and an
arrow key pressed on the focused grid reaches the model (the event target seen from the window is the
shadow host, so the grid reads the composed path). Each widget module is mounted with the page's own
model into a fresh open shadow root."""
from __future__ import annotations

import numpy as np
import pytest

from dtwidgets.widgets import ChannelHeatmap, GridView, to_html

from .conftest import LOCAL_SCHEMES, PageRecorder

pytestmark = pytest.mark.browser

MOUNT_JS = """
async ([module, index]) => {
  const data = JSON.parse(document.querySelector('script[data-dtw-page]').textContent);
  const url = URL.createObjectURL(new Blob([data.modules[module]], {type: 'text/javascript'}));
  const mod = await import(url);
  const def = mod.default || mod;
  const model = Object.values(window.__dtw_models)[index];
  window.__dtw_sent = [];
  const send = model.send;
  model.send = (m) => { window.__dtw_sent.push(m); if (send) try { send.call(model, m); } catch (e) {} };
  const host = document.createElement('div');
  host.id = 'shadow-host';
  document.body.appendChild(host);
  const sr = host.attachShadow({mode: 'open'});
  const el = document.createElement('div');
  sr.appendChild(el);
  if (def.initialize) await def.initialize({model});
  await def.render({model, el});
  const root = sr.querySelector('.dtw-root');
  return {styles: [...sr.querySelectorAll('style')].map((s) => s.id),
          rootClass: root.className,
          position: getComputedStyle(root).position,
          display: getComputedStyle(root).display};
}
"""


def _open(browser, tmp_path, w, name):
    path = to_html(w, tmp_path / f"{name}.html", title=name)
    page = browser.new_page(viewport={"width": 1100, "height": 900})
    rec = PageRecorder(page, lambda u: u.startswith(LOCAL_SCHEMES))
    page.goto(path.as_uri())
    page.wait_for_selector("body[data-dtw-ready]", timeout=15_000)
    return rec


def _light_dom_rule(rec, selector: str, prop: str) -> str:
    return rec.page.evaluate(f"() => getComputedStyle(document.querySelector('.dtw-x-root {selector}')).{prop}")


def test_styles_apply_inside_a_shadow_root_and_keys_reach_the_model(browser, tmp_path) -> None:
    grid = np.zeros((7, 7, 3), np.uint8)
    grid[:, :, 0] = 1
    rec = _open(browser, tmp_path, GridView(grid=grid, mode="partial"), "grid")
    want = _light_dom_rule(rec, ".dtw-root", "position")
    info = rec.page.evaluate(MOUNT_JS, ["grid_view", 0])
    assert [s for s in info["styles"] if s.startswith("dtwidgets-style-")], "no stylesheet in the shadow root"
    assert info["position"] == want != "static", info  # the widget's own rule, not the browser default
    focus = rec.page.locator("#shadow-host .dtw-root")  # Playwright's CSS pierces open shadow roots
    focus.focus()
    rec.page.keyboard.press("ArrowUp")
    sent = rec.page.evaluate("() => window.__dtw_sent")
    assert {"event": "key", "key": "ArrowUp"}.items() <= sent[-1].items(), sent
    assert rec.errors == [] and rec.foreign == []


def test_heatmap_channels_lay_out_in_a_shadow_root_as_in_the_page(browser, tmp_path) -> None:
    w = ChannelHeatmap(values=np.random.default_rng(0).normal(size=(3, 7, 7)).astype(np.float32),
                       titles=["object", "colour", "state"])
    rec = _open(browser, tmp_path, w, "heat")
    light = rec.page.evaluate("() => [...document.querySelectorAll('.dtw-x-root canvas')].map(c => Math.round(c.getBoundingClientRect().top))")
    rec.page.evaluate(MOUNT_JS, ["channel_heatmap", 0])
    shadow = rec.page.evaluate("""() => [...document.querySelector('#shadow-host').shadowRoot.querySelectorAll('canvas')]
                                      .map(c => Math.round(c.getBoundingClientRect().top))""")
    assert len(shadow) == len(light) >= 3
    # the same layout: canvases that share a row in the page share one in the shadow root (not one column)
    assert len(set(shadow)) == len(set(light)), (light, shadow)
    assert rec.errors == []

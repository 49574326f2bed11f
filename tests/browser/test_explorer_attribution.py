"""The Explorer's Attribution tab in real JupyterLab: the logit-lens chart and the per-neuron list are
drawn (with the kernel's values), the list filters from the browser, the lens follows the "vs" pair
chosen in the preferences widget, and nothing clips at 1100 px and 1600 px. Also (issue 13): an unused
input channel's maps are drawn greyed out."""
from __future__ import annotations

import json

import pytest

from .conftest import event_writer, open_notebook
from .test_explorer_layout import CLIP_JS

pytestmark = [pytest.mark.browser, pytest.mark.slow]

CELL = event_writer('attribution_events.jsonl') + '''\
from dtwidgets import Explorer
e = Explorer.demo(seed=1)
att = e.show_panel("attribution")
e
'''
OUT = ".jp-OutputArea-output"
EVENTS = "attribution_events.jsonl"
# titles and canvas sizes of the visible ContributionBars, in page order
BARS_JS = f"""() => [...document.querySelectorAll('{OUT} .dtw-contrib')].filter((e) => e.offsetParent).map((e) => {{
  const c = e.querySelector('canvas.dtw-bars'), t = e.querySelector('.dtw-title');
  return {{title: t ? t.textContent : '', w: c ? c.getBoundingClientRect().width : 0,
           h: c ? c.getBoundingClientRect().height : 0, nodata: !!(e.querySelector('.dtw-nodata') && e.querySelector('.dtw-nodata').offsetParent)}};
}})"""

# mean saturation (max - min of r, g, b over 255) of every visible channel map, split by the "unused" flag
SATURATION_JS = f"""() => {{
  const out = {{used: [], unused: [], unused_titles: []}};
  for (const p of document.querySelectorAll('{OUT} .dtw-channelheatmap .dtw-panel')) {{
    if (!p.offsetParent) continue;
    const c = p.querySelector('canvas'), d = c.getContext('2d').getImageData(0, 0, c.width, c.height).data;
    let s = 0;
    for (let i = 0; i < d.length; i += 4) s += (Math.max(d[i], d[i + 1], d[i + 2]) - Math.min(d[i], d[i + 1], d[i + 2])) / 255;
    const off = p.classList.contains('dtw-unused');
    out[off ? 'unused' : 'used'].push(s / (d.length / 4));
    if (off) out.unused_titles.push(p.querySelector('.dtw-ptitle').textContent);
  }}
  return out;
}}"""


def _bars(page, needle):
    return [b for b in page.evaluate(BARS_JS) if needle in b["title"]]


def test_attribution_tab_shows_lens_and_neurons(browser, jupyter_lab, screenshot_dir):
    server = jupyter_lab
    server.write_notebook("explorer_attribution.ipynb", [CELL])
    (server.root / EVENTS).unlink(missing_ok=True)
    with open_notebook(browser, server, "explorer_attribution.ipynb", viewport=(1100, 1400)) as nb:
        page = nb.page
        page.evaluate("() => window.jupyterapp.commands.execute('application:toggle-left-area')")
        nb.run_all(f"{OUT} .dtw-contrib canvas.dtw-bars", timeout=90)
        page.wait_for_function(f"() => ({BARS_JS})().some((b) => b.title.includes('logit lens'))", timeout=30_000)
        nb.exec("write('kernel', {'lens': att.lens.values[0].tolist(), 'lens_labels': att.lens.labels, "
                "'neurons': att.neurons.row_labels, 'title': att.lens.title})")
        k = server.wait_event(lambda ev: ev["name"] == "kernel", name=EVENTS)["value"]
        assert k["lens_labels"] == ["embeddings", "L0 attn", "L0 MLP"] and len(k["neurons"]) == 30
        lens = _bars(page, "logit lens")
        assert len(lens) == 1 and not lens[0]["nodata"] and lens[0]["h"] > 3 * 20, lens
        assert "logit difference" in lens[0]["title"]
        readout = page.locator(f"{OUT} .dtw-actionprefs .dtw-readout").first.text_content()
        assert float(readout.rsplit("=", 1)[1]) == pytest.approx(k["lens"][-1], abs=1e-3), readout
        share = _bars(page, "direct share and activation")  # one list, an axis each for shares and activations
        assert len(share) == 1 and share[0]["h"] > 30 * 15 and not share[0]["nodata"], share
        assert "MLP neurons" in page.locator(f"{OUT} .widget-html:visible", has_text="MLP neurons").first.inner_text()

        # filter from the browser: the kernel re-sorts and the list redraws shorter
        h0 = share[0]["h"]
        box = page.locator(f"{OUT} input[placeholder='e.g. L0 or N12']:visible").first
        box.fill("N18")
        box.press("Enter")
        page.wait_for_function(f"() => ({BARS_JS})().some((b) => b.title.includes('direct share') && b.h < {h0} - 100)",
                               timeout=20_000)
        nb.exec("write('filtered', att.neurons.row_labels)")
        filtered = server.wait_event(lambda ev: ev["name"] == "filtered", name=EVENTS)["value"]
        assert filtered and all("N18" in lab for lab in filtered), filtered

        # the lens follows the "vs" pair chosen in the preferences widget
        nb.exec("e.prefs.pair = (0, 2)\ne.flush()\nwrite('pair', att.lens.title)")
        title = server.wait_event(lambda ev: ev["name"] == "pair", name=EVENTS)["value"]
        assert "left − forward" in title, title
        page.wait_for_function(f"() => ({BARS_JS})().some((b) => b.title.includes('logit lens: left − forward'))",
                               timeout=20_000)

        # nothing clipped at either width
        problems = {}
        for width in (1100, 1600):
            page.set_viewport_size({"width": width, "height": 1400})
            page.evaluate("() => document.querySelectorAll('.Toastify, .jp-toast-container').forEach((e) => e.remove())")
            page.wait_for_timeout(900)
            bad = page.evaluate(CLIP_JS)
            if bad:
                problems[width] = bad
            lens = _bars(page, "logit lens")[0]
            assert lens["w"] > 200, (width, lens)
        assert problems == {}, json.dumps(problems, indent=1)

        # issue 13: a channel the model never uses is drawn greyed out and labelled, not in full colour
        page.locator(f"{OUT} .lm-TabBar-tab", has_text="QK / OV circuits").first.click()
        page.locator(f"{OUT} .dtw-panel.dtw-unused canvas").first.wait_for(state="visible", timeout=20_000)
        sat = page.evaluate(SATURATION_JS)
        assert sat["unused"] and sat["used"], sat
        assert max(sat["unused"]) < 0.05 < min(sat["used"]), sat  # colourless vs coloured maps
        assert all("unused" in t for t in sat["unused_titles"]), sat
    assert nb.foreign == [], f"non-localhost requests: {nb.foreign}"
    ours = [er for er in nb.errors if "dtwidgets" in er or "dtw-" in er]
    assert ours == [], ours

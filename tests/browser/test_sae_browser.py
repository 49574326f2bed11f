"""The SAE feature browser in a real browser: a static export from file:// (click a feature, its
card and example grids draw, no request leaves the page) and in real JupyterLab (renders, a click
opens the card and reaches Python)."""
from __future__ import annotations

import pytest

from .conftest import event_writer, open_notebook

pytestmark = [pytest.mark.browser]

DRAWN_JS = """(sel) => Array.from(document.querySelectorAll(sel)).map(c => {
  if (!c.width || !c.height) return false;
  const d = c.getContext('2d').getImageData(0, 0, c.width, c.height).data;
  for (let i = 3; i < d.length; i += 4) if (d[i]) return true;
  return false;
})"""


@pytest.fixture(scope="module")
def small_browser():
    from dtwidgets.compositions.feature_browser import FeatureBrowser
    from dtwidgets.data import collect_trajectories
    from dtwidgets.demo import load_demo
    from dtwidgets.sae import collect_activations, demo_sae

    adapter, _ = load_demo("post")
    sae = demo_sae("post")
    traj = collect_trajectories(n_episodes=6, seed=3, policy_mix={"bfs": 1, "suicidal": 1}, progress=False)
    store = collect_activations(adapter, traj, sae.cfg.hook_name, progress=False)
    return FeatureBrowser(adapter, sae, store)


def test_static_export_click_opens_card(static_page, small_browser, screenshot_dir):
    fb = small_browser
    rec = static_page(fb, "sae_browser", viewport=(1300, 1000))
    page = rec.page
    rows = page.locator(".dtw-fb-row[data-feature]")
    assert rows.count() == min(fb.features.size, 300)
    assert all(page.evaluate(DRAWN_JS, ".dtw-fb-spark")[:20])
    assert page.locator(".dtw-fb-card").get_attribute("data-feature") is None
    target = rows.nth(2)
    fid = target.get_attribute("data-feature")
    target.click()
    page.wait_for_selector(f".dtw-fb-card[data-feature='{fid}']", timeout=5_000)
    thumbs = page.evaluate(DRAWN_JS, ".dtw-fb-card canvas.dtw-fb-thumb")
    assert thumbs and all(thumbs), thumbs
    assert all(page.evaluate(DRAWN_JS, ".dtw-fb-card canvas.dtw-fb-hist"))
    assert all(page.evaluate(DRAWN_JS, ".dtw-fb-card canvas.dtw-fb-bars"))
    assert page.locator(".dtw-fb-card canvas.dtw-fb-map").count() == 3
    # sorting by feature index, ascending, reorders the list in the page
    page.locator(".dtw-featurebrowser select").first.select_option(label="feature")
    page.locator(".dtw-featurebrowser input[type=checkbox]").first.uncheck()
    ids = [int(rows.nth(i).get_attribute("data-feature")) for i in range(5)]
    assert ids == sorted(int(f) for f in fb.features)[:5]
    if screenshot_dir is not None:
        page.screenshot(path=str(screenshot_dir / "sae_browser_static.png"), full_page=True)
    assert rec.foreign == [] and rec.errors == []
    assert all(u.startswith("file:") for u in rec.requests), rec.requests


CELL = event_writer('sae_events.jsonl') + '''\
from dtwidgets import FeatureBrowser
b = FeatureBrowser.demo(n_episodes=5)
b.view.observe(lambda ch: write("selected", b.selected_feature), names="selected")
b
'''


@pytest.mark.slow
def test_feature_browser_in_jupyterlab(browser, jupyter_lab, screenshot_dir):
    server = jupyter_lab
    server.write_notebook("sae_browser.ipynb", [CELL])
    (server.root / "sae_events.jsonl").unlink(missing_ok=True)
    with open_notebook(browser, server, "sae_browser.ipynb", viewport=(1400, 1100)) as nb:
        page = nb.page
        row = nb.run_all(".jp-OutputArea .dtw-fb-row[data-feature]", timeout=120)
        fid = row.get_attribute("data-feature")
        row.click()
        page.wait_for_selector(f".jp-OutputArea .dtw-fb-card[data-feature='{fid}']", timeout=20_000)
        ev = server.wait_event(lambda e: e["name"] == "selected", name="sae_events.jsonl")
        assert ev["value"] == int(fid)
        thumbs = page.evaluate(DRAWN_JS, ".jp-OutputArea .dtw-fb-card canvas.dtw-fb-thumb")
        assert thumbs and all(thumbs)
        # Python opens another feature's card
        nb.exec("other = int(b.features[-1]); b.select(other); write('other', other)")
        other = server.wait_event(lambda e: e["name"] == "other", name="sae_events.jsonl")["value"]
        page.wait_for_selector(f".jp-OutputArea .dtw-fb-card[data-feature='{other}']", timeout=20_000)
        if screenshot_dir is not None:
            page.locator(".jp-OutputArea").first.screenshot(path=str(screenshot_dir / "sae_browser_lab.png"))
    assert nb.foreign == []

"""NMF components shown by the existing FeatureBrowserView (no new JS) in a static export: one list row
per component, a click opens its card, whose example grid states are drawn; no request leaves the page."""
from __future__ import annotations

import pytest

from .test_sae_browser import DRAWN_JS

pytestmark = [pytest.mark.browser]


def test_nmf_components_open_as_cards(static_page):
    from dtwidgets.adapters import hooks
    from dtwidgets.analysis import activation_nmf, nmf_browser_data
    from dtwidgets.data import collect_trajectories
    from dtwidgets.demo import load_demo
    from dtwidgets.sae import collect_activations
    from dtwidgets.widgets import FeatureBrowserView

    adapter, _ = load_demo("post")
    traj = collect_trajectories(n_episodes=4, seed=3, policy_mix={"bfs": 1, "suicidal": 1}, progress=False)
    store = collect_activations(adapter, traj, hooks.mlp_post(0), progress=False)
    res = activation_nmf(store, 5)
    view = FeatureBrowserView(**nmf_browser_data(adapter, res, store, n_top=4))
    rec = static_page(view, "nmf_cards", viewport=(1300, 1000))
    page = rec.page
    rows = page.locator(".dtw-fb-row[data-feature]")
    assert rows.count() == 5
    rows.nth(1).click()
    fid = rows.nth(1).get_attribute("data-feature")
    page.wait_for_selector(f".dtw-fb-card[data-feature='{fid}']", timeout=5_000)
    thumbs = page.evaluate(DRAWN_JS, ".dtw-fb-card canvas.dtw-fb-thumb")
    assert len(thumbs) >= 4 and all(thumbs), thumbs
    assert "NMF components" in page.locator(".dtw-featurebrowser").inner_text()
    assert rec.foreign == [] and rec.errors == []

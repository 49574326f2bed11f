"""FeatureBrowser summaries against plain numpy, and the Explorer's SAE panel (Python side)."""
from __future__ import annotations

import numpy as np
import pytest
import torch


@pytest.fixture(scope="module")
def setup():
    from dtwidgets.data import collect_trajectories
    from dtwidgets.demo import load_demo
    from dtwidgets.sae import collect_activations, demo_sae

    adapter, env = load_demo("post")
    sae = demo_sae("post")
    traj = collect_trajectories(n_episodes=5, seed=21, policy_mix={"bfs": 1, "suicidal": 1}, progress=False)
    store = collect_activations(adapter, traj, sae.cfg.hook_name, progress=False)
    return adapter, env, sae, store


def test_feature_summary_against_numpy(setup):
    from dtwidgets.sae import summarize_features

    adapter, _, sae, store = setup
    s = summarize_features(adapter, sae, store, n_top=4, quantiles=(0.5,), n_bins=10, batch_size=37)
    with torch.no_grad():
        f = sae.encode(store.acts).double().numpy()  # [N, F]
    assert np.allclose(s.frequency, (f > 0).mean(0))
    assert np.allclose(s.max_act, f.max(0), atol=1e-5)
    for i in np.flatnonzero(f.std(0) > 0)[:20]:
        assert s.rtg_corr[i] == pytest.approx(np.corrcoef(f[:, i], store.rtg)[0, 1], abs=1e-4)
        assert s.time_corr[i] == pytest.approx(np.corrcoef(f[:, i], store.step)[0, 1], abs=1e-4)
        top = np.sort(f[:, i])[::-1][:4]
        assert np.allclose(np.sort(s.top_acts[i])[::-1][: (top > 0).sum()], top[top > 0], atol=1e-5)
        rows = s.top_rows[i][s.top_rows[i] >= 0]
        assert np.allclose(f[rows, i], s.top_acts[i][: len(rows)], atol=1e-5)
        assert s.hist[i].sum() == (f[:, i] > 0).sum()
        q = s.quantile_rows[i, 0]
        assert q >= 0 and f[q, i] > 0
    bars = (sae.W_dec.detach().double() @ adapter.W_action.double().T).numpy()  # post: no LayerNorm
    assert np.allclose(s.action_bars, bars, atol=1e-5)
    maps = (sae.W_enc.detach().T @ adapter.W_state).numpy().reshape(sae.d_sae, 3, 7, 7)
    assert np.allclose(s.write_maps, maps, atol=1e-5)


def test_browser_selection_and_errors(setup):
    from dtwidgets.compositions.feature_browser import FeatureBrowser

    adapter, _, sae, store = setup
    fb = FeatureBrowser(adapter, sae, store, pair=("left", "forward"))
    assert fb.view.pair == (0, 2) and fb.view.examples_obs.shape[1:] == (9, 7, 7, 3)
    fid = int(fb.features[3])
    fb.select(fid)
    assert fb.selected_feature == fid and fb.view.selected == 3
    dead = np.setdiff1d(np.arange(sae.d_sae), fb.features)
    if dead.size:
        with pytest.raises(ValueError, match="not in this browser"):
            fb.select(int(dead[0]))
    other = store.select(np.arange(10))
    other.hook_name = "blocks.0.hook_resid_pre"
    with pytest.raises(ValueError, match="store read at the SAE's hook"):
        FeatureBrowser(adapter, sae, other)


def test_sae_panel_shares_and_edits(setup):
    from dtwidgets.compositions.panels import AnalysisContext
    from dtwidgets.compositions.sae_panel import SAEPanel
    from dtwidgets.sae import edited_logits

    adapter, env, sae, _ = setup
    ctx = AnalysisContext(adapter, pair=("forward", "right"))
    w = adapter.make_window(env.reset(seed=4)[None], [0.9])
    panel = SAEPanel.for_sae(sae, n_show=3)(ctx)
    panel.update(ctx.compute(w))
    s = panel.shares
    vals = panel.shares_bars.values[0].astype(np.float64)
    assert vals.sum() == pytest.approx(s.hook_share, abs=1e-4)
    assert panel.shares_bars.labels[-2:] == ["decoder bias", "error"]
    assert np.allclose(panel.probs.values[0], panel.probs.values[1])  # no edit: clean
    i = int(s.active[0])
    panel.feature.value = i
    panel.mode.value = "clamp"
    panel.value.value = 0.5
    panel.enabled.value = True
    want = torch.softmax(edited_logits(adapter, sae, w, {i: 0.5})[0].double(), -1).numpy()
    assert np.allclose(panel.probs.values[1], want, atol=1e-5)
    assert panel.edits() == {i: 0.5}
    with pytest.raises(ValueError, match="needs an SAE"):
        SAEPanel(ctx)

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
    with pytest.raises(ValueError, match="read where the SAE reads"):
        FeatureBrowser(adapter, sae, other)


def test_browser_refuses_activations_of_another_token_kind(setup):
    """An SAE trained on state tokens is not shown on RTG-token activations, nor the reverse."""
    import copy

    from dtwidgets.compositions.feature_browser import FeatureBrowser
    from dtwidgets.data import collect_trajectories
    from dtwidgets.sae import collect_activations, reconstruction_metrics, summarize_features

    adapter, _, sae, _ = setup
    traj = collect_trajectories(n_episodes=2, seed=3, policy_mix={"bfs": 1}, progress=False)
    rtg_store = collect_activations(adapter, traj, sae.cfg.hook_name, "rtg", progress=False)
    assert rtg_store.d_in == sae.d_in  # same hook and width: only the token kind differs
    for call in (lambda: FeatureBrowser(adapter, sae, rtg_store), lambda: summarize_features(adapter, sae, rtg_store),
                 lambda: reconstruction_metrics(sae, rtg_store)):
        with pytest.raises(ValueError, match=r"'state' tokens.*got a store at .*'rtg' tokens"):
            call()
    rtg_sae = copy.deepcopy(sae)
    rtg_sae.cfg.token = "rtg"
    state_store = collect_activations(adapter, traj, sae.cfg.hook_name, "state", progress=False)
    with pytest.raises(ValueError, match=r"'rtg' tokens.*got a store at .*'state' tokens"):
        FeatureBrowser(adapter, rtg_sae, state_store)
    assert FeatureBrowser(adapter, rtg_sae, rtg_store).features.size > 0


def test_demos_can_be_called_again_in_one_process():
    """FeatureBrowser.demo() imports the training module; that must not replace dtwidgets.sae.demo_sae."""
    import dtwidgets.sae
    from dtwidgets.compositions.feature_browser import FeatureBrowser

    first = dtwidgets.sae.demo_sae()
    browsers = [FeatureBrowser.demo(n_episodes=2), FeatureBrowser.demo(n_episodes=2)]
    again = dtwidgets.sae.demo_sae("post")
    assert callable(dtwidgets.sae.demo_sae)
    assert torch.equal(first.W_enc, again.W_enc) and first.cfg.to_dict() == again.cfg.to_dict()
    assert np.array_equal(browsers[0].features, browsers[1].features) and browsers[0].features.size > 0
    with pytest.raises(FileNotFoundError, match="no shipped SAE"):
        dtwidgets.sae.demo_sae("../post")


def test_sae_panel_shares_and_edits(setup):
    from dtwidgets.compositions.panels import AnalysisContext, SAEPanel
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

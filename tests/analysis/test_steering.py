"""Steering: coefficient 0 is the clean run; adding c·v to resid_pre of layer 0 equals an independent
forward with c·v added to the positional embedding rows; directions from every source."""
from __future__ import annotations

import numpy as np
import pytest
import torch

from dtwidgets import MiniGridEnv
from dtwidgets.adapters import TrajectoryWindow
from dtwidgets.analysis.policy_map import agent_placements, placement_windows, policy_map
from dtwidgets.analysis.steering import patch_hooks, steering_direction, steering_hooks, steering_scan
from dtwidgets.model.checkpoint import state_dict_of
from tests.analysis.helpers import CONFIGS, independent_logits, make_adapter, random_window


def _tol(x):
    return 2e-4 * max(1.0, float(np.abs(np.asarray(x)).max()))


@pytest.mark.parametrize("name", ["raw-2tok-noLN", "ln-gated-onehot-26tok", "lnpre-8tok"])
def test_scan_equals_independent_forward_with_shifted_positional_embedding(name):
    a = make_adapter(**CONFIGS[name])
    w = random_window(a, seed=2)
    v = torch.randn(a.cfg.d_model, generator=torch.Generator().manual_seed(0))
    ks = [-2.0, 0.0, 1.5]
    P = a.layout.n_tokens
    for positions in (None, [P - 1]):
        s = steering_scan(a, w, (v, "v"), hook="blocks.0.hook_resid_pre", coefficients=ks, positions=positions)
        np.testing.assert_allclose(s.logits[1], a.forward(w)[0].numpy(), atol=1e-6)  # coefficient 0 == clean
        for k, got in zip(ks, s.logits):
            sd = {kk: vv.clone() for kk, vv in state_dict_of(a.model).items()}
            rows = slice(None) if positions is None else positions
            sd["transformer.pos_embed.W_pos"][:P][rows] += k * v
            want = independent_logits(a, w, sd=sd)[0].numpy()
            np.testing.assert_allclose(got, want, atol=_tol(want))
        np.testing.assert_allclose(s.probs.sum(1), 1, atol=1e-5)


def test_scan_policy_maps_match_per_coefficient_maps():
    a = make_adapter(**CONFIGS["ln-gated-onehot-26tok"])
    env = MiniGridEnv(seed=1)
    p = agent_placements(env, facings=(0, 3))
    v = steering_direction(a, action=("forward", "left"), normalize=True)
    s = steering_scan(a, None, v, hook="blocks.1.hook_resid_pre", coefficients=[0.0, 2.0], placements=p, rtg=0.4)
    assert s.map_probs.shape == (2, len(p), a.n_actions) and np.isnan(s.logits).all()
    np.testing.assert_allclose(s.maps[0].logits, policy_map(a, p, 0.4).logits, atol=1e-5)
    steered = policy_map(a, p, 0.4, fwd_hooks=steering_hooks("blocks.1.hook_resid_pre", v[0], 2.0))
    np.testing.assert_allclose(s.maps[1].logits, steered.logits, atol=1e-5)
    rows = [0, 11]
    want = independent_logits(a, placement_windows(a, p, 0.4).index(rows))
    np.testing.assert_allclose(s.maps[0].logits[rows], want.numpy(), atol=_tol(want))
    assert np.abs(s.map_probs[1] - s.map_probs[0]).max() > 1e-3


def test_direction_sources():
    a = make_adapter(**CONFIGS["lnpre-8tok"])
    with_w = TrajectoryWindow.cat([random_window(a, seed=s, rtg=0.9) for s in range(4)])
    without_w = TrajectoryWindow.cat([random_window(a, seed=s + 10, rtg=-0.5) for s in range(3)])
    hook, pos = "blocks.0.hook_resid_pre", 2
    v, label = steering_direction(a, contrast=(with_w, without_w), hook=hook, position=pos)
    with pytest.warns(DeprecationWarning, match="renamed contrast="):
        old, _ = steering_direction(a, pair=(with_w, without_w), hook=hook, position=pos)
    torch.testing.assert_close(old, v, atol=0, rtol=0)
    W_pos = a.backbone.W_pos.detach()
    want = (a.embed(with_w)[:, pos] + W_pos[pos]).double().mean(0) - (a.embed(without_w)[:, pos] + W_pos[pos]).double().mean(0)
    torch.testing.assert_close(v.double(), want, atol=1e-5, rtol=0)
    assert "mean difference" in label
    W_dec = np.random.default_rng(0).normal(size=(5, a.cfg.d_model)).astype(np.float32)
    v2, l2 = steering_direction(a, sae_decoder=W_dec, feature=3)
    np.testing.assert_array_equal(v2.numpy(), W_dec[3])
    assert l2 == "SAE feature 3"
    v3, _ = steering_direction(a, action=("forward", "left"))
    torch.testing.assert_close(v3, a.W_action[a.action_index("forward")] - a.W_action[a.action_index("left")])
    v4, _ = steering_direction(a, probe=np.ones(a.cfg.d_model) * 2, normalize=True)
    assert abs(float(v4.norm()) - 1) < 1e-6


def test_errors():
    a = make_adapter(**CONFIGS["raw-2tok-noLN"])
    with pytest.raises(ValueError, match="exactly one"):
        steering_direction(a, probe=np.ones(a.cfg.d_model), vector=np.ones(a.cfg.d_model))
    with pytest.raises(ValueError, match=r"shape \(32,\)"):
        steering_direction(a, vector=np.ones(5))
    with pytest.raises(ValueError, match="feature="):
        steering_direction(a, sae_decoder=np.ones((4, 32)), feature=9)
    with pytest.raises(ValueError, match="token positions"):
        steering_scan(a, random_window(a), np.ones(32), positions=[7])


def test_patch_hooks_write_the_source_activation_into_every_row():
    a = make_adapter(**CONFIGS["ln-gated-onehot-26tok"])
    env = MiniGridEnv(seed=2)
    p = agent_placements(env, facings=(1,))
    src = random_window(a, seed=5)
    # the whole layer-0 input replaced: every placement gives the source's own logits
    m = policy_map(a, p, 0.3, fwd_hooks=patch_hooks(a, src, "blocks.0.hook_resid_pre"))
    want = independent_logits(a, src)[0].numpy()
    np.testing.assert_allclose(m.logits, np.broadcast_to(want, m.logits.shape), atol=_tol(want))
    # one head at one position: rows still differ, and equal patched_logits' single-row patch
    from dtwidgets.analysis import patched_logits

    hp = patch_hooks(a, src, "blocks.1.attn.hook_z", positions=[a.layout.prediction_position], head=2)
    m2 = policy_map(a, p, 0.3, fwd_hooks=hp)
    w = placement_windows(a, p, 0.3)
    one = patched_logits(a, w.index(3), src, [("blocks.1.attn.hook_z", a.layout.prediction_position, 2)])
    np.testing.assert_allclose(m2.logits[3], one[0].numpy(), atol=1e-5)


@pytest.mark.parametrize("name", ["demo-post", "ln-gated-onehot-26tok"])
def test_steering_at_resid_mid_equals_steering_at_attn_out(name):
    """``resid_mid = resid_pre + attn_out``: steering either is one intervention, under both TL majors
    (TL 4.3's bridge fed a resid_mid edit to the MLP only: 0.89 apart on the demo model), and equals the
    plain-torch forward with ``c·v`` added to ``resid_mid`` (every later layer reads it)."""
    from dtwidgets.adapters import hooks
    from tests.reference_forward import raw_to_features, reference_run

    if name == "demo-post":
        from dtwidgets.demo import load_demo

        a = load_demo("post")[0]
    else:
        a = make_adapter(**CONFIGS[name])
    w = random_window(a, seed=4)
    v = torch.randn(a.cfg.d_model, generator=torch.Generator().manual_seed(1))
    ks = [-2.0, 0.0, 1.0, 3.0]
    sd, cfg = state_dict_of(a.model), a.cfg
    feats = raw_to_features(w.observations, cfg.one_hot_obs)
    for l in range(cfg.n_layers):
        mid = steering_scan(a, w, (v, "v"), hook=hooks.resid_mid(l), coefficients=ks)
        out = steering_scan(a, w, (v, "v"), hook=hooks.attn_out(l), coefficients=ks)
        np.testing.assert_allclose(mid.logits, out.logits, atol=1e-5)
        assert np.abs(mid.logits[-1] - mid.logits[1]).max() > 1e-2  # the steering matters
        for k, got in zip(ks, mid.logits):
            want = reference_run(sd, {"d_model": cfg.d_model, "n_heads": cfg.n_heads, "n_layers": cfg.n_layers}, feats,
                                 w.rtgs, w.timesteps, w.actions, act_fn=cfg.act_fn, layer_norm=cfg.layer_norm,
                                 gated=cfg.gated_mlp, time_type=cfg.time_embedding_type,
                                 edits={hooks.resid_mid(l): lambda x, k=k: x + k * v.double()})[0][0, -1].numpy()
            np.testing.assert_allclose(got, want, atol=_tol(want))

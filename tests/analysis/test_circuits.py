"""QK/OV maps == brute-force forward differences on one-feature observations (linear, no-LN, 1 layer)."""
from __future__ import annotations

import numpy as np
import pytest
import torch

from dtwidgets.adapters import TrajectoryWindow
from dtwidgets.analysis import ov_map, qk_map
from dtwidgets.analysis._common import run_with_cache
from dtwidgets.model import tl_major
from tests.analysis.helpers import CONFIGS, make_adapter

LINEAR = dict(n_layers=1, n_heads=2, d_model=32, d_mlp=64, n_ctx=2, n_actions=3)


def _one_feature_windows(a, rtg=0.7, t=5):
    """Row 0: all-zero observation; row 1+i: only flattened feature i set to 1 (raw or one-hot input)."""
    C = a.schema.n_channels
    obs = np.zeros((a.schema.n_features + 1, 7, 7, C), np.float32)
    for i in range(a.schema.n_features):
        c, x, y = i // 49, (i % 49) // 7, i % 7
        obs[i + 1, x, y, c] = 1
    return TrajectoryWindow.cat([a.make_window(o, rtg, [t]) for o in obs])


@pytest.mark.parametrize("one_hot", [False, True])
def test_qk_and_ov_maps_equal_forward_differences(one_hot):
    a = make_adapter(one_hot=one_hot, **LINEAR)
    w = _one_feature_windows(a)
    w0 = w.index(0)
    _, cache = a.run_with_cache(w)
    _, c0 = a.run_with_cache(w0)
    pat = c0["blocks.0.attn.hook_pattern"]
    freeze = [("blocks.0.attn.hook_pattern", lambda p, hook: pat.expand_as(p).clone())]
    _, cf = run_with_cache(a, w, None, fwd_hooks=freeze)  # attention frozen at the all-zero obs pattern
    d = a.W_action[2] - a.W_action[1]
    for h in range(2):
        # QK: score of the state query (pos 1) towards the RTG key (pos 0), feature on minus off
        q, k = cache["blocks.0.attn.hook_q"][:, 1, h], cache["blocks.0.attn.hook_k"][:, 0, h]
        score = (q * k).sum(-1) / a.cfg.d_head ** 0.5
        if tl_major() < 4:  # TL 3 caches real scores (TL 4.3's bridge caches the pattern under this name)
            torch.testing.assert_close(score, cache["blocks.0.attn.hook_attn_scores"][:, h, 1, 0])
        brute = (score[1:] - score[0]).numpy()
        m = qk_map(a, 0, h, window=w0, key_position=0)
        assert m.values.shape == (a.schema.n_channels, 7, 7) and m.kind == "qk" and m.in_context
        np.testing.assert_allclose(m.flat, brute, atol=2e-6 * max(1, np.abs(brute).max()))
        # weight-only with the same key vector (rtg·w_rtg + time(t) + W_pos[0]) gives the same map
        key = c0["blocks.0.hook_resid_pre"][0, 0]
        np.testing.assert_allclose(qk_map(a, 0, h, key).flat, m.flat, atol=1e-6)
        # OV: head output along forward − right per unit attention on the state token, feature on minus off
        res = cf["blocks.0.attn.hook_z"][:, 1, h] @ a.backbone.W_O[0, h].detach() @ d
        brute_ov = ((res[1:] - res[0]) / pat[0, h, 1, 1]).numpy()
        o = ov_map(a, 0, h, "forward", "right")
        np.testing.assert_allclose(o.flat, brute_ov, atol=2e-6 * max(1, np.abs(brute_ov).max()))
        oc = ov_map(a, 0, h, "forward", "right", window=w0)
        np.testing.assert_allclose(oc.flat, o.flat, atol=1e-7)
        assert oc.attention == pytest.approx(float(pat[0, h, 1, 1]))


def test_weight_only_rtg_key_and_labels():
    a = make_adapter(**LINEAR)
    m = qk_map(a, 0, 1, "rtg", 0.5)
    w_rtg = a.model.reward_embedding[0].weight.detach()[:, 0]
    bb = a.backbone
    want = (a.W_state.T @ bb.W_Q[0, 1].detach()) @ (bb.W_K[0, 1].detach().T @ (0.5 * w_rtg) + bb.b_K[0, 1].detach())
    np.testing.assert_allclose(m.flat, (want / 4).numpy(), atol=1e-6)
    assert m.key == "rtg × 0.5" and m.values.shape == (3, 7, 7)
    assert qk_map(a, 0, 0, "pos", 1).key == "pos 1 (s₁)" and qk_map(a, 0, 0, "action", "left").key == "action left"
    with pytest.raises(ValueError, match="expected key in"):
        qk_map(a, 0, 0, "banana")


@pytest.mark.parametrize("name", ["ln-gated-onehot-26tok", "lnpre-8tok"])
def test_layer_norm_models_give_finite_maps(name):
    a = make_adapter(**CONFIGS[name])
    from tests.analysis.helpers import random_window

    w = random_window(a)
    for m in (qk_map(a, 1, 2, "time", 3), qk_map(a, 0, 1, window=w), ov_map(a, 1, 0, "forward", "left"),
              ov_map(a, 0, 3, "forward", "left", window=w, source_position=a.layout.state_positions[0])):
        assert m.values.shape == (a.schema.n_channels, 7, 7) and np.isfinite(m.values).all() and m.terms
    with pytest.raises(ValueError, match="expected a state token as query"):
        qk_map(a, 0, 0, window=w, query_position=0)

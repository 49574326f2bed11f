"""Embedding projections: the (channel, x, y) layout and values against the raw checkpoint tensors."""
from __future__ import annotations

import json

import numpy as np
import torch

from dtwidgets.analysis import (logit_attribution, rtg_embedding_projection, state_embedding_projection,
                                time_embedding_projection)
from tests.analysis.helpers import CONFIGS, make_adapter


def test_state_embedding_projection_layout(reference_ckpt_path, reference_adapter):
    sd = torch.load(reference_ckpt_path, weights_only=True)["model_state_dict"]
    W, E = sd["action_predictor.weight"], sd["state_embedding.weight"]
    p = state_embedding_projection(reference_adapter, "forward", "right")
    assert p.values.shape == (3, 7, 7) and p.channel_names == ("object", "colour", "state")
    d = W[2] - W[1]
    for c, x, y in [(0, 3, 5), (1, 3, 5), (0, 0, 6), (1, 6, 0)]:
        assert abs(p.values[c, x, y] - float(d @ E[:, c * 49 + x * 7 + y])) < 1e-6
    assert p.at(3, 5)["object"] == p.values[0, 3, 5]
    # the state channel is never used in Dynamic Obstacles: its columns are ~0, excluded from the histogram
    assert not p.nonzero[2].any() and p.nonzero[:2].sum() > 80
    assert p.hist_counts.sum() == p.nonzero.sum() and len(p.hist_edges) == len(p.hist_counts) + 1


def test_rtg_and_time_projections(reference_ckpt_path, reference_adapter):
    sd = torch.load(reference_ckpt_path, weights_only=True)["model_state_dict"]
    d = sd["action_predictor.weight"][2] - sd["action_predictor.weight"][1]
    r = rtg_embedding_projection(reference_adapter, "forward", "right")
    assert len(r.rtgs) == 101 and r.rtgs[0] == -1 and r.rtgs[-1] == 1
    assert abs(r.slope - float(sd["reward_embedding.0.weight"][:, 0] @ d)) < 1e-6
    np.testing.assert_allclose(r.values, r.rtgs * r.slope, atol=1e-7)
    t = time_embedding_projection(reference_adapter, "forward", "right")
    assert t.values.shape == (1001,)
    np.testing.assert_allclose(t.values, (sd["time_embedding.weight"] @ d).numpy(), atol=1e-5)
    assert json.loads(torch.load(reference_ckpt_path, weights_only=True)["model_config"])["n_ctx"] == 2


def test_projection_matches_the_attribution_of_a_one_feature_observation():
    """No-LN model: an observation with one raw code at (c, x, y) puts exactly that projection into
    the attribution's state-embedding term."""
    a = make_adapter(**CONFIGS["raw-2tok-noLN"])
    obs = np.zeros((7, 7, 3), np.uint8)
    obs[2, 4, 0] = 5  # object code 5 at (x=2, y=4)
    r = logit_attribution(a, a.make_window(obs, 0.0, [0]), "left", "right", per_source=False)
    p = state_embedding_projection(a, "left", "right")
    assert abs(r.value("state embed (s₁)") - 5 * p.values[0, 2, 4]) < 1e-6


def test_ln_weight_is_folded_and_linear_time_embedding():
    a = make_adapter(**CONFIGS["ln-3layers-linear-time-5tok"])
    w_ln = a.backbone.ln_final.w.detach()
    d = (a.W_action[2] - a.W_action[0]) * w_ln
    p = state_embedding_projection(a, "forward", "left")
    np.testing.assert_allclose(p.flat, (d @ a.W_state).numpy(), atol=1e-6)
    raw = state_embedding_projection(a, "forward", "left", fold_ln=False)
    np.testing.assert_allclose(raw.flat, ((a.W_action[2] - a.W_action[0]) @ a.W_state).numpy(), atol=1e-6)
    t = time_embedding_projection(a, "forward", "left", timesteps=[0, 10])
    emb = a.model.time_embedding
    want = (emb(torch.tensor([[0.0], [10.0]])) @ d).detach().numpy()
    np.testing.assert_allclose(t.values, want, atol=1e-5)

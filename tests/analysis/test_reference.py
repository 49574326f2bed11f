"""The reference post's numbers on the real checkpoint, each checked against the raw checkpoint
tensors and an independent forward."""
from __future__ import annotations

import json

import numpy as np
import torch

from dtwidgets.analysis import reference_numbers
from dtwidgets.data.scenarios import scenario_observation
from tests.reference_forward import raw_to_features, reference_logits


def _independent_probs(path, obs, rtg, zero_head=None):
    ck = torch.load(path, weights_only=True)
    sd, mcfg = dict(ck["model_state_dict"]), json.loads(ck["model_config"])
    if zero_head is not None:
        sd["transformer.blocks.0.attn.W_O"] = sd["transformer.blocks.0.attn.W_O"].clone()
        sd["transformer.blocks.0.attn.W_O"][zero_head] = 0
    feats = raw_to_features(torch.as_tensor(obs)[None, None], False)
    lg = reference_logits(sd, mcfg, feats, torch.tensor([[rtg]]), torch.tensor([[0]]), torch.zeros(1, 0, dtype=torch.long))
    return torch.softmax(lg[0, -1].double(), -1).numpy()


def test_reference_numbers(reference_ckpt_path, reference_adapter):
    r = reference_numbers(reference_adapter)
    sd = torch.load(reference_ckpt_path, weights_only=True)["model_state_dict"]
    W, E, w_rtg = sd["action_predictor.weight"], sd["state_embedding.weight"], sd["reward_embedding.0.weight"][:, 0]
    fr = W[2] - W[1]
    assert abs(r.rtg_embedding_dot["forward − right"] - float(w_rtg @ fr)) < 1e-6
    assert abs(r.rtg_embedding_dot["left − right"] - float(w_rtg @ (W[0] - W[1]))) < 1e-6
    for c, name in enumerate(("object", "colour", "state")):
        assert abs(r.front_cell_state_embedding[name] - float(fr @ E[:, c * 49 + 3 * 7 + 5])) < 1e-6
    assert r.front_cell_state_embedding["state"] == 0 or abs(r.front_cell_state_embedding["state"]) < 1e-30
    assert r.scenarios["obstacle"].front_cell == (6, 2, 0)  # blue ball
    assert r.scenarios["goal"].front_cell[0] == 8  # goal
    for kind, s in r.scenarios.items():
        np.testing.assert_allclose(s.probs, _independent_probs(reference_ckpt_path, s.observation, s.rtg), atol=1e-5)
        for h in range(2):
            want = _independent_probs(reference_ckpt_path, s.observation, s.rtg, zero_head=h)
            np.testing.assert_allclose(s.ablated_probs[h], want, atol=1e-5)
            assert abs(s.p_forward_ablated[f"L0H{h}"] - want[2]) < 1e-5
    np.testing.assert_allclose([r.attention_s_to_r["L0H0"], r.attention_s_to_r["L0H1"]], [0.392, 0.053], atol=5e-4)
    assert "P(forward)" in r.summary()


def test_scenario_observations_put_the_object_in_front():
    ob, goal = scenario_observation("obstacle"), scenario_observation("goal")
    assert tuple(ob[3, 5]) == (6, 2, 0) and goal[3, 5, 0] == 8
    assert (ob[..., 0] == 6).sum() == 1 and (goal[..., 0] == 6).sum() == 0  # the moving balls were removed

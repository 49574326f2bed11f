"""Attention patterns: shapes, labels, causality, and scores consistent with the pattern."""
from __future__ import annotations

import numpy as np
import torch

from dtwidgets.analysis import attention_patterns
from tests.analysis.helpers import CONFIGS, make_adapter, random_window


def test_patterns_shapes_labels_and_causality():
    a = make_adapter(**CONFIGS["ln-gated-onehot-26tok"])
    res = attention_patterns(a, random_window(a), scores=True)
    L, H, P = a.cfg.n_layers, a.cfg.n_heads, 26
    assert res.values.shape == (L * H, P, P) and res.scores.shape == (L * H, P, P)
    assert res.head_labels == [f"L{l}H{h}" for l in range(L) for h in range(H)]
    assert res.token_labels[:4] == ["R₁", "s₁", "a₁", "R₂"] and res.token_labels[-1] == "s₉"
    assert res.prediction_position == 25
    np.testing.assert_allclose(res.values.sum(-1), 1, atol=1e-5)
    assert np.all(np.triu(res.values, 1) == 0)
    # softmax of the (q·k) scores is the pattern; masked scores are NaN
    s = torch.tensor(np.nan_to_num(res.scores, nan=-np.inf))
    np.testing.assert_allclose(torch.softmax(s, -1).numpy(), res.values, atol=1e-5)
    assert np.isnan(res.scores[0, 0, 1])
    assert res.from_prediction().shape == (L * H, P)
    np.testing.assert_array_equal(res.head("L1H2"), res.values[6])


def test_reference_model_attention_from_state_to_rtg(reference_adapter):
    """Published with the reference notes: L0 attention s→R on the seed-0 reset obs at RTG 1."""
    import gymnasium as gym
    import minigrid  # noqa: F401

    img = gym.make("MiniGrid-Dynamic-Obstacles-8x8-v0", max_steps=1000).reset(seed=0)[0]["image"]
    res = attention_patterns(reference_adapter, reference_adapter.make_window(img, 1.0, [0]))
    np.testing.assert_allclose(res.from_prediction()[:, 0], [0.392, 0.053], atol=5e-4)

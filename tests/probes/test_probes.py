"""Probes: recovery of a planted concept direction, controls at chance, the demo model's "ball ahead",
and probe directions used for attribution, steering and cosines (checked against plain torch)."""
from __future__ import annotations

import numpy as np
import pytest
import torch

from dtwidgets.adapters.schema import OBJECTS
from dtwidgets.probes import (action_cosines, site_activations, concept_table, cosines, direction_attribution,
                              direction_over_observation, fit_probe, probe_concepts, sae_cosines, steer)

BALL = OBJECTS.index("ball")


def _planted_model(seed=0):
    """A one-hot DT whose state embedding writes a known unit vector u for 'ball in the cell ahead'."""
    from dtwidgets.model import DecisionTransformer, DTAdapter, DTConfig

    cfg = DTConfig(d_model=32, n_heads=2, d_mlp=64, n_layers=1, n_ctx=2, one_hot_obs=True, seed=seed)
    model = DecisionTransformer(cfg)
    g = torch.Generator().manual_seed(seed)
    u = torch.randn(32, generator=g)
    u /= u.norm()
    W, H = cfg.obs_shape[:2]
    feat = BALL * W * H + (W // 2) * H + (H - 2)  # (channel object=ball, x=3, y=5)
    with torch.no_grad():
        model.state_embedding.weight.mul_(0.1)
        model.state_embedding.weight[:, feat] = 3 * u
    return DTAdapter(model), u.numpy()


def test_planted_direction_recovered_and_controls_at_chance(small_traj, small_env):
    adapter, u = _planted_model()
    table = concept_table(small_traj, small_env, ["ball ahead"])
    acts = site_activations(adapter, small_traj, hooks=["blocks.0.hook_resid_pre"])
    X = acts.values[("blocks.0.hook_resid_pre", "state")]
    y = table.values["ball ahead"]
    assert 0.05 < y.mean() < 0.5, "the data needs both classes"
    res = fit_probe(X, y, table.episodes, "categorical", observation_ids=table.observation_ids,
                    class_names=table.classes["ball ahead"])
    assert res.auc >= 0.95 and res.score > res.baseline
    for method in ("fitted", "dom"):
        d = res.direction("True", method=method)
        assert abs(float(cosines(u, d[None])[0])) > 0.5, method
    assert float(cosines(u, res.direction(method="dom")[None])[0]) > 0.9  # dom ~ 3u + noise
    shuffled = fit_probe(X, np.random.default_rng(1).permutation(y), table.episodes, "categorical")
    assert abs(shuffled.auc - 0.5) < 0.12, shuffled.auc
    assert shuffled.score <= shuffled.baseline + 0.03
    assert res.selectivity > shuffled.selectivity + 0.05


def test_splits_are_by_episode():
    from sklearn.model_selection import GroupKFold

    # memorisable labels: one random label per episode, constant inside it; a step split would leak
    rng = np.random.default_rng(0)
    groups = np.repeat(np.arange(40), 10)
    ep_label = rng.integers(0, 2, 40)
    X = np.eye(40)[groups] + 0.01 * rng.normal(size=(400, 40))
    res = fit_probe(X, ep_label[groups], groups, "categorical", control="shuffle")
    assert res.score < 0.7, "episode identity must not leak across folds"
    for tr, te in GroupKFold(5).split(X, groups=groups):
        assert not set(groups[tr]) & set(groups[te])


def test_scalar_probe_r2(small_traj, small_env):
    rng = np.random.default_rng(0)
    table = concept_table(small_traj, small_env, ["obstacles in view"])
    y = table.values["obstacles in view"]
    w = rng.normal(size=16)
    X = np.outer(y, w) + rng.normal(size=(len(y), 16))
    res = fit_probe(X, y, table.episodes, "scalar", observation_ids=table.observation_ids)
    assert res.score > 0.8 and abs(res.baseline) < 0.1 and res.control_score < 0.2
    pred = X @ res.directions[0] + res.intercepts[0]
    assert np.corrcoef(pred, y)[0, 1] > 0.9


def test_concept_table_matches_env(small_traj, small_env):
    table = concept_table(small_traj, small_env)
    assert len(table) == small_traj.n_steps
    # agent direction and distance to goal recomputed from a fresh replay of episode 3
    ep = small_traj.episode(3)
    small_env.reset(seed=int(ep.seed))
    rows = np.flatnonzero(table.episodes == 3)
    for t, r in enumerate(rows):
        grid, pos, d = small_env.full_grid()
        gx, gy = np.argwhere(grid[:, :, 0] == OBJECTS.index("goal"))[0]
        assert table.labels("agent direction")[r] == ("right", "down", "left", "up")[d]
        assert table.values["distance to goal"][r] == abs(gx - pos[0]) + abs(gy - pos[1])
        assert table.labels("ball ahead")[r] == str(bool(ep.observations[t][3, 5, 0] == BALL))
        if t + 1 < len(rows):
            small_env.step(int(ep.actions[t]))
    user = concept_table(small_traj, None, {"late": lambda s: s.timestep > 5, "t": lambda s: s.timestep + 0.5})
    assert user.kinds == {"late": "categorical", "t": "scalar"}
    np.testing.assert_array_equal(user.values["t"], small_traj.timesteps + 0.5)
    with pytest.raises(ValueError, match="need the full grid"):
        concept_table(small_traj, None, ["agent direction"])
    with pytest.raises(ValueError, match="unknown built-in concept"):
        concept_table(small_traj, None, ["ball behind"])


def test_demo_ball_ahead_selective(post_adapter, small_traj, small_env):
    suite = probe_concepts(post_adapter, small_traj, small_env, ["ball ahead"])
    r = suite.get("ball ahead", ("blocks.0.hook_resid_post", "state"))
    print(f"demo post, ball ahead @ L0 resid_post/state: acc {r.score:.3f} baseline {r.baseline:.3f} "
          f"control {r.control_score:.3f} selectivity {r.selectivity:.3f} AUC {r.auc:.3f}")
    assert r.auc >= 0.95
    assert r.score - r.control_score > 0.05 and r.score > r.baseline + 0.05
    assert suite.matrix().shape == (1, 2)


def test_probe_direction_attribution_and_steering(post_adapter, small_traj):
    ad = post_adapter
    hook = "blocks.0.hook_resid_post"
    d = np.random.default_rng(0).normal(size=ad.W_action.shape[1]).astype(np.float32)
    win, _ = small_traj.windows([5], ad.layout.n_timesteps, ad.pad_action)
    att = direction_attribution(ad, win, d, hook)
    _, cache = ad.run_with_cache(win, names_filter=lambda n: n == hook)
    assert np.isclose(att.values.sum(), float(cache[hook][0, -1] @ torch.from_numpy(d)), atol=1e-3)
    assert "L0H0" in att.labels and "L0MLP" in att.labels
    pre = direction_attribution(ad, win, d, "blocks.0.hook_resid_pre")
    assert not any(k in ("head", "mlp") for k in pre.kinds)
    # steering the final residual of a no-LN model: logits move by exactly coeff * W_action @ d
    s = steer(ad, win, d, 2.0, hook)
    expected = s.logits_before + 2.0 * (ad.W_action.numpy() @ d)
    np.testing.assert_allclose(s.logits_after, expected, rtol=1e-4, atol=1e-4)
    np.testing.assert_allclose(steer(ad, win, d, 0.0, hook).logits_after, s.logits_before, atol=1e-6)
    cs = action_cosines(ad, ad.W_action[2].numpy())
    assert np.isclose(cs[ad.action_names[2]], 1.0, atol=1e-5)
    W_dec = np.stack([d, -d, np.zeros_like(d)])
    np.testing.assert_allclose(sae_cosines(d, W_dec)[:2], [1, -1], atol=1e-6)
    maps = direction_over_observation(ad, d)
    np.testing.assert_allclose(maps.reshape(-1), d @ ad.W_state.numpy(), rtol=1e-5, atol=1e-5)

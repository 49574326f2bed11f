"""Behaviour under intervention: the intervened model equals a plain-torch forward with the component
zeroed, a no-op intervention plays exactly the clean episodes, visit maps and goal-entry sides equal a
hand count from replayed episodes, outcome fractions sum to 1."""
from __future__ import annotations

import numpy as np
import pytest
import torch

from dtwidgets.adapters import ModelAdapter, TrajectoryWindow
from dtwidgets.analysis.intervention import (Intervened, ablated, behaviour_under_intervention, claims_table,
                                             episode_positions, post_claims)
from dtwidgets.model.checkpoint import state_dict_of
from tests.analysis.helpers import CONFIGS, make_adapter, random_window
from tests.reference_forward import raw_to_features, reference_run

ENV_ID = "MiniGrid-Dynamic-Obstacles-8x8-v0"


def _zero_head(h):
    def edit(z):
        z = z.clone()
        z[:, :, h] = 0
        return z
    return edit


def _reference(adapter, window, edits):
    cfg = adapter.cfg
    T = adapter.layout.n_timesteps
    feats = raw_to_features(window.observations, cfg.one_hot_obs)
    feats = feats * (torch.arange(T)[None] >= window.n_pad[:, None])[..., None]
    mcfg = {"d_model": cfg.d_model, "n_heads": cfg.n_heads, "n_layers": cfg.n_layers}
    logits, _ = reference_run(state_dict_of(adapter.model), mcfg, feats, window.rtgs, window.timesteps, window.actions,
                              act_fn=cfg.act_fn, layer_norm=cfg.layer_norm, gated=cfg.gated_mlp,
                              time_type=cfg.time_embedding_type, edits=edits)
    return logits[:, -1].double()


@pytest.mark.parametrize("model, component", [("demo-post", c) for c in ("L0H0", "L0H1", "L0MLP", "L0N3")]
                         + [("ln-gated-onehot-26tok", c) for c in ("L0H1", "L1H0", "L0MLP", "L1MLP", "L0N3")])
def test_ablated_model_equals_plain_torch_with_the_component_zeroed(model, component):
    if model == "demo-post":
        from dtwidgets.demo import load_demo

        adapter = load_demo("post")[0]
    else:
        adapter = make_adapter(**CONFIGS[model])
    T = adapter.layout.n_timesteps
    w = TrajectoryWindow.cat([random_window(adapter, seed=s, n_steps=max(1, T - s)) for s in range(3)])
    l = int(component[1])
    if "H" in component:
        edits = {f"blocks.{l}.attn.hook_z": _zero_head(int(component.split("H")[1]))}
    elif component.endswith("MLP"):
        edits = {f"blocks.{l}.hook_mlp_out": torch.zeros_like}
    else:
        n = int(component.split("N")[1])

        def edits_post(x):
            x = x.clone()
            x[..., n] = 0
            return x
        edits = {f"blocks.{l}.mlp.hook_post": edits_post}
    iv = ablated(adapter, component)
    assert isinstance(iv, ModelAdapter)
    want = _reference(adapter, w, edits)
    torch.testing.assert_close(iv.forward(w).double(), want, atol=2e-5, rtol=0)
    clean = _reference(adapter, w, {})
    assert float((want - clean).abs().max()) > 1e-3, "the ablation must change something for the test to mean it"
    # run_with_cache reads the intervened activations; caller hooks run after the intervention
    logits, cache = iv.run_with_cache(w, names_filter=lambda n: n.endswith("hook_resid_post"))
    torch.testing.assert_close(logits.double(), want, atol=2e-5, rtol=0)
    seen = []
    iv.run_with_hooks(w, [(f"blocks.{l}.hook_mlp_out" if "MLP" in component else f"blocks.{l}.attn.hook_z",
                           lambda x, hook: seen.append(float(x.abs().sum())))])
    if component.endswith("MLP"):
        assert seen == [0.0]


def test_no_op_intervention_plays_the_clean_episodes_exactly():
    from dtwidgets.demo import load_demo

    adapter, env = load_demo("post")
    noop = Intervened(adapter, [("blocks.0.hook_resid_post", lambda x, hook: x)], label="no-op")
    res = behaviour_under_intervention(adapter, env, {"no-op": noop}, rtgs=(0.9, -1.0), n_episodes=6, max_steps=None)
    for r in (0.9, -1.0):
        a, b = res.row("clean", r), res.row("no-op", r)
        assert a.fractions == b.fractions and a.mean_length == b.mean_length
        np.testing.assert_array_equal(a.visits, b.visits)
        assert sum(a.fractions.values()) == pytest.approx(1.0)


def test_visits_and_goal_sides_equal_a_hand_count():
    from dtwidgets.data.rollouts import model_rollouts
    from dtwidgets.demo import load_demo

    adapter, env = load_demo("post")
    res = behaviour_under_intervention(adapter, env, {}, rtgs=(0.9,), n_episodes=8)
    row = res.row("clean", 0.9)
    traj = model_rollouts(adapter, env, rtgs=(0.9,), n_episodes=8, seed=3_000_000, n_envs=16, progress=False)
    visits = np.zeros_like(row.visits)
    sides = {"above": 0, "below": 0, "left": 0, "right": 0}
    from dtwidgets.adapters.schema import OBJECTS

    env.reset(seed=3_000_000)
    goal = tuple(int(v) for v in np.argwhere(env.full_grid()[0][:, :, 0] == OBJECTS.index("goal"))[0])
    for ep, outcome in zip(traj.episodes(), traj.outcomes()):
        pos = episode_positions(env, ep)
        assert len(pos) == ep.length + 1
        for x, y in pos:
            visits[x, y] += 1
        if outcome == "goal":
            assert pos[-1] == goal
            (px, py), (gx, gy) = pos[-2], pos[-1]
            sides[{(0, 1): "above", (0, -1): "below", (1, 0): "left", (-1, 0): "right"}[(gx - px, gy - py)]] += 1
    np.testing.assert_array_equal(row.visits, visits)
    assert row.goal_entries == sides
    assert visits.sum() == traj.n_steps + traj.n_episodes
    assert sum(sides.values()) == int(round(row.fractions["goal"] * 8)) > 0


def test_post_claims_table_shape_and_honesty():
    from dtwidgets.demo import load_demo

    adapter, env = load_demo("post")
    claims = post_claims(adapter, env, n_episodes=4)
    assert [c["component"] for c in claims] == ["L0H0", "L0H1", "L0MLP"]
    for c in claims:
        for which in ("clean", "intervened"):
            assert sum(c[which].fractions.values()) == pytest.approx(1.0)
        assert isinstance(c["holds"], bool)
    rows = claims_table(claims)
    assert len(rows) == 6 and {r["model"] for r in rows} == {"clean", "intervened"}
    with pytest.raises(ValueError, match="expected a component like 'L0H1'"):
        ablated(adapter, "head0")

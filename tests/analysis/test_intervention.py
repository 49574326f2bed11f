"""Behaviour under intervention: the intervened adapter == an independent forward with the weights
zeroed; a no-op intervention rolls out exactly like the clean model; heat maps, entry sides and
outcome fractions == hand counts from an independent replay in raw gymnasium."""
from __future__ import annotations

import gymnasium as gym
import minigrid  # noqa: F401  (registers the MiniGrid envs)
import numpy as np
import pytest
import torch

from dtwidgets.adapters import ModelAdapter, TrajectoryWindow
from dtwidgets.analysis import ablate, ablation_hooks, component_ablation_hooks
from dtwidgets.analysis.intervention import IntervenedAdapter, ablated, as_intervention, intervened, steered
from dtwidgets.data.behaviour import behaviour_under_intervention, replay_paths
from dtwidgets.data.rollouts import record_rollouts
from dtwidgets.model.checkpoint import state_dict_of
from tests.analysis.helpers import CONFIGS, independent_logits, make_adapter, random_window
from tests.analysis.test_ablation import _zeroed

DO = "MiniGrid-Dynamic-Obstacles-8x8-v0"
SMALL = CONFIGS["raw-2tok-noLN"]  # 1 layer, 2 heads, 3 actions, raw 7x7x3 views: plays Dynamic Obstacles


def _batch(a, n: int, seed: int = 0) -> TrajectoryWindow:
    return TrajectoryWindow.cat([random_window(a, seed=seed + i, rtg=0.9 - 0.4 * i) for i in range(n)])


def _tol(want: np.ndarray) -> float:
    return 2e-5 * max(1.0, float(np.abs(want).max()))


@pytest.mark.parametrize("name", ["raw-2tok-noLN", "ln-gated-onehot-26tok", "lnpre-8tok"])
def test_intervened_forward_equals_independent_forward_with_weights_zeroed(name):
    a = make_adapter(**CONFIGS[name])
    sd = state_dict_of(a.model)
    L = a.cfg.n_layers
    cases = {"L0H1": [("head", 0, 1)], f"L{L - 1}MLP": [("mlp", L - 1, None)],
             ("L0H0", f"L{L - 1}MLP"): [("head", 0, 0), ("mlp", L - 1, None)]}
    for comps, edits in cases.items():
        model = ablated(a, comps)
        assert isinstance(model, ModelAdapter)
        for n in (3, 1, 2):  # one intervened adapter serves batches of any size (rollouts shrink the batch)
            w = _batch(a, n, seed=10 * n)
            want = independent_logits(a, w, _zeroed(sd, edits)).numpy()
            got = model.forward(w).numpy()
            np.testing.assert_allclose(got, want, atol=_tol(want))
            assert np.abs(got - independent_logits(a, w).numpy()).max() > 1e-4  # the ablation changes the logits


def test_run_with_hooks_composes_and_run_with_cache_shows_the_intervention():
    a = make_adapter(**CONFIGS["lnpre-8tok"])
    sd = state_dict_of(a.model)
    w = _batch(a, 2, seed=3)
    model = ablated(a, "L0H0")
    both = model.run_with_hooks(w, component_ablation_hooks(a, "L1MLP")).numpy()
    want = independent_logits(a, w, _zeroed(sd, [("head", 0, 0), ("mlp", 1, None)])).numpy()
    np.testing.assert_allclose(both, want, atol=_tol(want))
    nested = ablated(model, "L1MLP").forward(w).numpy()  # interventions compose by wrapping too
    np.testing.assert_allclose(nested, want, atol=_tol(want))
    logits, cache = model.run_with_cache(w, names_filter=["blocks.0.attn.hook_z", "blocks.0.hook_mlp_out"])
    np.testing.assert_allclose(logits.numpy(), model.forward(w).numpy(), atol=1e-6)
    z = cache["blocks.0.attn.hook_z"]
    assert torch.all(z[:, :, 0] == 0) and torch.any(z[:, :, 1] != 0)
    # the clean adapter's own runs are untouched afterwards (hooks are temporary)
    np.testing.assert_allclose(a.forward(w).numpy(), independent_logits(a, w).numpy(), atol=_tol(want))


def test_steering_intervention_equals_shifting_the_positional_embedding():
    """``resid_pre(0) = tokens + W_pos``: adding ``c·v`` there at every position is ``W_pos += c·v``."""
    a = make_adapter(**CONFIGS["ln-gated-onehot-26tok"])
    sd = state_dict_of(a.model)
    v = torch.randn(a.cfg.d_model, generator=torch.Generator().manual_seed(4))
    w = _batch(a, 2, seed=5)
    sd2 = {k: t.clone() for k, t in sd.items()}
    sd2["transformer.pos_embed.W_pos"] += 0.7 * v
    want = independent_logits(a, w, sd2).numpy()
    got = steered(a, "blocks.0.hook_resid_pre", v, 0.7).forward(w).numpy()
    np.testing.assert_allclose(got, want, atol=_tol(want))


def test_ablate_uses_the_every_window_builder_and_agrees_with_per_row_hooks():
    a = make_adapter(**CONFIGS["lnpre-8tok"])
    w = random_window(a, seed=7)
    per_row = a.run_with_hooks(w.repeat(2), ablation_hooks(a, [(None, "L1H2")], 2))
    every = a.run_with_hooks(w.repeat(2), component_ablation_hooks(a, "L1H2"))
    np.testing.assert_array_equal(per_row.numpy(), every.numpy())
    np.testing.assert_allclose(ablate(a, w, "L1H2").logits_after, every[0].numpy(), atol=1e-6)


def test_noop_intervention_rolls_out_exactly_like_the_clean_model():
    a = make_adapter(**SMALL)
    kw = dict(rtgs=(-1.0, 0.9), n_episodes=3, seed=11, n_envs=4, max_steps=30, progress=False)
    clean = record_rollouts(a, DO, **kw)
    keep = [("blocks.0.attn.hook_z", lambda t, hook: None), ("blocks.0.hook_mlp_out", lambda t, hook: t)]
    for noop in (intervened(a, []), intervened(a, keep), steered(a, "blocks.0.hook_resid_pre", torch.ones(32), 0.0)):
        got = record_rollouts(noop, DO, **kw)
        for f in ("observations", "actions", "rewards", "terminated", "truncated", "episode_lengths", "seeds", "rtgs"):
            np.testing.assert_array_equal(getattr(got, f), getattr(clean, f), err_msg=f)
        if noop.hooks:  # hooked runs take the whole-sequence path: equal logits up to float rounding
            np.testing.assert_allclose(got.logits, clean.logits, atol=_tol(clean.logits))
        else:  # no hooks at all: the clean forward itself, bit for bit
            np.testing.assert_array_equal(got.logits, clean.logits)
    # a real ablation is what the rollouts ran: recorded logits == the zeroed-weights forward on the record
    abl = record_rollouts(ablated(a, "L0MLP"), DO, **kw)
    win, _ = abl.windows(np.arange(abl.n_steps), a.layout.n_timesteps, a.pad_action, rtgs=abl.rtgs)
    want = independent_logits(a, win, _zeroed(state_dict_of(a.model), [("mlp", 0, None)])).numpy()
    np.testing.assert_allclose(abl.logits, want, atol=_tol(want))


def _gym_replay(traj, max_steps: int):
    """Independent of dtwidgets' env adapter: raw gymnasium, ``unwrapped.agent_pos`` per step."""
    env = gym.make(DO, max_steps=max_steps)
    out = []
    for ep in traj.episodes():
        env.reset(seed=int(ep.seed))
        u = env.unwrapped
        goal = next((x, y) for x in range(u.width) for y in range(u.height)
                    if u.grid.get(x, y) is not None and u.grid.get(x, y).type == "goal")
        pos = [tuple(int(v) for v in u.agent_pos)]
        ahead = None
        for t, act in enumerate(ep.actions):
            if t == ep.length - 1:
                cell = u.grid.get(*u.front_pos)
                ahead = "empty" if cell is None else cell.type
            env.step(int(act))
            pos.append(tuple(int(v) for v in u.agent_pos))
        out.append((pos, ahead, goal))
    return out


@pytest.fixture(scope="module")
def demo():
    from dtwidgets import load_demo

    return load_demo("post")


def test_heat_map_entry_sides_and_outcomes_equal_hand_counts_from_an_independent_replay(demo):
    a, env = demo
    res = behaviour_under_intervention(a, env, {"head 1 off": "L0H1", "mlp off": {"ablate": ["L0MLP"]}},
                                       rtgs=(-1.0, 0.9), n_episodes=5, seed=21, n_envs=3)
    assert res.names == ("clean", "head 1 off", "mlp off") and res.grid_shape == (8, 8)
    seen_sides: set = set()
    seen_outcomes: set = set()
    for (name, r), c in res.cells.items():
        replay = _gym_replay(c.trajectories, env.max_steps)
        hand = np.zeros((8, 8), np.int64)
        sides = {"above": 0, "left": 0, "below": 0, "right": 0, "none": 0}
        for (pos, ahead, goal), ep in zip(replay, c.trajectories.episodes()):
            for x, y in pos:
                hand[x, y] += 1
            if ep.terminated[-1] and ep.rewards[-1] > 0:
                assert pos[-1] == goal
                (px, py), (gx, gy) = pos[-2], pos[-1]
                side = {(gx, gy - 1): "above", (gx - 1, gy): "left", (gx, gy + 1): "below", (gx + 1, gy): "right"}
                sides[side.get((px, py), "none")] += 1
        np.testing.assert_array_equal(c.heat_map, hand)
        assert c.heat_map.sum() == c.trajectories.episode_lengths.sum() + c.n_episodes
        assert c.goal_entries == sides
        seen_sides |= {s for s, k in sides.items() if k}
        hits = [ahead for (_, ahead, _), o in zip(replay, c.trajectories.outcomes()) if o == "collision"]
        assert c.collisions_with == {o: hits.count(o) for o in sorted(set(hits))}
        # outcome fractions: from the rewards by hand, summing to 1
        ends = [(float(e.rewards[-1]), bool(e.terminated[-1]), bool(e.truncated[-1])) for e in c.trajectories.episodes()]
        hand_counts = {"goal": sum(t and rw > 0 for rw, t, _ in ends), "collision": sum(t and rw <= 0 for rw, t, _ in ends),
                       "timeout": sum((not t) and tr for _, t, tr in ends)}
        assert c.outcome_counts == hand_counts
        seen_outcomes |= {k for k, v in hand_counts.items() if v}
        assert abs(sum(c.outcome_fractions.values()) - 1) < 1e-12
        assert c.mean_length == pytest.approx(np.mean([e.length for e in c.trajectories.episodes()]))
        assert c.mean_return == pytest.approx(np.mean([e.ret for e in c.trajectories.episodes()]))
    assert {"goal", "collision"} <= seen_outcomes and seen_sides  # the counts above were exercised
    rows = res.table()
    assert [(r["intervention"], r["rtg"]) for r in rows] == [(n, rt) for rt in (-1.0, 0.9) for n in res.names]
    fig = res.figure()
    assert len(fig.data) == 6 and np.asarray(fig.data[0].z).shape == (8, 8)


def test_bad_interventions_and_replays_raise_clear_errors():
    a = make_adapter(**SMALL)
    with pytest.raises(ValueError, match="reserved"):
        behaviour_under_intervention(a, DO, {"clean": "L0H0"}, n_episodes=1)
    with pytest.raises(ValueError, match="expected a component"):
        as_intervention(a, "L0X3")
    with pytest.raises(ValueError, match="exactly one of"):
        as_intervention(a, {"ablate": "L0H0", "steer": "blocks.0.hook_resid_pre"})
    with pytest.raises(ValueError, match="unknown keys"):
        as_intervention(a, {"ablate": "L0H0", "coeff": 2})
    with pytest.raises(TypeError, match="forward hooks"):
        intervened(a, [("blocks.0.attn.hook_z", 3)])
    with pytest.raises(TypeError, match="ModelAdapter"):
        IntervenedAdapter(object(), [])  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="every row"):
        ablation_hooks(a, [(0, "L0H0")], None)
    with pytest.raises(ValueError, match="at least one component"):
        component_ablation_hooks(a, [])
    dt = intervened(a, [("dt.hook_state_embed", lambda t, hook: t * 0)])
    w = random_window(a)
    assert np.abs(dt.forward(w).numpy() - a.forward(w).numpy()).max() > 1e-4  # forward supports dt.* hooks
    with pytest.raises(ValueError, match="backbone hooks only"):
        dt.run_with_cache(w)
    traj = record_rollouts(a, DO, rtgs=(0.9,), n_episodes=2, seed=3, max_steps=30, progress=False)
    with pytest.raises(ValueError, match="differs from the recorded one"):
        replay_paths("MiniGrid-Dynamic-Obstacles-6x6-v0", traj)


def test_post_claims_verdicts_follow_their_stated_criteria(demo):
    from dtwidgets.data.post_claims import post_claims

    a, env = demo
    pc = post_claims(a, env, n_episodes=4, seed=5)
    assert [c.key for c in pc.claims] == ["A", "B", "C"]
    assert [(c.component, c.rtg) for c in pc.claims] == [("L0H0", -1.0), ("L0H1", 0.9), ("L0MLP", -1.0)]
    low, high = pc.behaviour[-1.0], pc.behaviour[0.9]
    assert low.names == ("clean", "L0H0 ablated", "L0MLP ablated") and high.names == ("clean", "L0H1 ablated")
    for claim, res, name in zip(pc.claims, (low, high, low), ("L0H0 ablated", "L0H1 ablated", "L0MLP ablated")):
        cell, clean = res.cell(name, claim.rtg), res.cell("clean", claim.rtg)
        n, goals = cell.n_episodes, cell.outcome_counts["goal"]
        above = cell.goal_entries["above"] / goals if goals else float("nan")
        left = cell.goal_entries["left"] / goals if goals else float("nan")
        balls = sum(p.ahead == "ball" for p, o in zip(cell.paths, cell.trajectories.outcomes()) if o == "collision")
        clean_balls = sum(p.ahead == "ball" for p, o in zip(clean.paths, clean.trajectories.outcomes())
                          if o == "collision")
        assert claim.measures["goal"] == goals / n and claim.measures["obstacle collision"] == balls / n
        want = {"A": goals / n > 0.5 and above > 0.5, "B": balls / n > 0.5 and balls > clean_balls,
                "C": goals / n > 0.5 and left > 0.5}[claim.key]
        assert claim.holds == want
    rows = pc.table()
    assert len(rows) == 3 and all(isinstance(r["holds"], bool) for r in rows)
    assert len(pc.figure(-1.0).data) == 3 and len(pc.figure(0.9).data) == 2


def test_post_claims_mean_ablation_uses_the_dataset_means(demo):
    from dtwidgets.analysis import mean_activations
    from dtwidgets.data.post_claims import post_claims

    a, env = demo
    ref = record_rollouts(a, env, rtgs=(0.9,), n_episodes=2, seed=1, progress=False)
    win, _ = ref.windows(np.arange(ref.n_steps), a.layout.n_timesteps, a.pad_action, rtgs=ref.rtgs)
    means = mean_activations(a, win)
    pc = post_claims(a, env, n_episodes=2, seed=5, mode="mean", means=means)
    assert pc.mode == "mean" and pc.behaviour[0.9].labels["L0H1 ablated"] == "L0H1 mean-ablated"
    mean_run = record_rollouts(ablated(a, "L0H1", mode="mean", means=means), env, rtgs=(0.9,), n_episodes=2, seed=5,
                              progress=False)
    np.testing.assert_array_equal(pc.behaviour[0.9].cell("L0H1 ablated", 0.9).trajectories.actions, mean_run.actions)
    with pytest.raises(ValueError, match="means"):
        post_claims(a, env, n_episodes=1, mode="mean")

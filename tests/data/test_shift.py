"""Distribution shift: outcome counts against episodes replayed here step by step in plain code (a
fresh env, the edits by set_cell, the model's greedy action, the step rule written out), the edits read
back from full_grid(), a shift that matters (goal moved to the middle: the shipped demo model keeps
walking to the corner), determinism with seeds, matched-state maps/attributions against plain forwards,
and clear errors for bad specs."""
from __future__ import annotations

from collections import Counter

import numpy as np
import pytest
import torch

from dtwidgets.adapters import EnvAdapter, MiniGridEnv
from dtwidgets.data.shift import EditedEnv, EnvShift, distribution_shift, parse_shifts

ENV_ID = "MiniGrid-Dynamic-Obstacles-8x8-v0"
MAX_STEPS, N_EP, SEED, RTG = 30, 4, 123, 0.9
SHIFTS = [
    {"name": "goal middle", "edits": [(6, 6, None), (3, 3, "goal")]},
    {"name": "extra ball", "edits": [{"x": 2, "y": 1, "obj": "ball"}]},
    {"name": "new seeds", "seed": 5000},
    {"name": "6x6", "env_id": "MiniGrid-Dynamic-Obstacles-6x6-v0"},
]


@pytest.fixture(scope="module")
def demo():
    from dtwidgets.demo import load_demo

    return load_demo("post")[0]


@pytest.fixture(scope="module")
def result(demo):
    env = MiniGridEnv(ENV_ID, MAX_STEPS, seed=None)
    return distribution_shift(demo, env, SHIFTS, rtgs=(RTG,), n_episodes=N_EP, seed=SEED, n_envs=3)


def _replay(adapter, env_id: str, edits, seed: int, n: int, rtg: float):
    """Outcome counts and action lists of ``n`` greedy episodes, played here one step at a time."""
    lo, hi = adapter.rtg_range
    T = adapter.layout.n_timesteps
    counts, actions = Counter(), []
    for j in range(n):
        env = MiniGridEnv(env_id, MAX_STEPS, seed=None)
        obs = env.reset(seed=seed + j)
        for x, y, o in edits:
            obs = env.set_cell(x, y, o)
        seen, rtgs, ts, acts = [obs], [rtg], [0], []
        while True:
            k = min(T, len(seen))
            w = adapter.make_window(np.stack(seen[-k:]), np.array(rtgs[-k:]), np.array(ts[-k:]),
                                    np.array(acts[len(acts) - (k - 1):]) if k > 1 else None)
            with torch.inference_mode():
                a = int(adapter.forward(w)[0].argmax())
            acts.append(a)
            res = env.step(a)
            if res.terminated:
                counts["goal" if res.reward > 0 else "collision"] += 1
                break
            if res.truncated:
                counts["timeout"] += 1
                break
            seen.append(res.observation)
            rtgs.append(min(max(rtgs[-1] - res.reward, lo), hi))
            ts.append(min(ts[-1] + 1, adapter.max_timestep))
        actions.append(acts)
    return {k: counts.get(k, 0) for k in ("goal", "collision", "timeout")}, actions


def _edits(spec) -> list:
    return [(e.x, e.y, e.obj) for e in EnvShift.of(spec).edits]


@pytest.mark.parametrize("name", ["train"] + [s["name"] for s in SHIFTS])
def test_outcome_counts_equal_independently_replayed_episodes(demo, result, name):
    spec = next((s for s in SHIFTS if s["name"] == name), {"name": "x"})
    want_counts, want_actions = _replay(demo, spec.get("env_id", ENV_ID), _edits(spec), spec.get("seed", SEED), N_EP, RTG)
    cell = result.cell(name, RTG)
    assert cell.outcome_counts == want_counts
    got_actions = [ep.actions.tolist() for ep in cell.trajectories.episodes()]
    assert got_actions == want_actions
    assert result.seeds[name] == spec.get("seed", SEED)


def test_edits_are_applied_at_every_episode_start(demo, result):
    env = EditedEnv(MiniGridEnv(ENV_ID, MAX_STEPS, seed=None), _edits(SHIFTS[0]), "goal middle")
    for j in range(N_EP):
        obs = env.reset(seed=SEED + j)
        grid, pos, _ = env.full_grid()
        assert grid[3, 3, 0] == 8 and grid[6, 6, 0] == 1  # object codes: 8 goal, 1 empty
        assert (np.argwhere(grid[..., 0] == 8) == [[3, 3]]).all()
        plain = MiniGridEnv(ENV_ID, MAX_STEPS, seed=None)
        plain.reset(seed=SEED + j)
        plain.set_cell(6, 6, None)
        np.testing.assert_array_equal(obs, plain.set_cell(3, 3, "goal"))
    ball = EditedEnv(MiniGridEnv(ENV_ID, MAX_STEPS, seed=None), _edits(SHIFTS[1]))
    ball.reset(seed=SEED)
    assert ball.full_grid()[0][2, 1, 0] == 6  # 6 ball
    # the rollouts started from the edited layouts: recorded first observations are the edited ones
    for name, spec in (("goal middle", SHIFTS[0]), ("extra ball", SHIFTS[1])):
        first = [ep.observations[0] for ep in result.cell(name, RTG).trajectories.episodes()]
        e = EditedEnv(MiniGridEnv(ENV_ID, MAX_STEPS, seed=None), _edits(spec))
        for j, o in enumerate(first):
            np.testing.assert_array_equal(o, e.reset(seed=SEED + j))
    train_first = [ep.observations[0] for ep in result.cell("train", RTG).trajectories.episodes()]
    ball_first = [ep.observations[0] for ep in result.cell("extra ball", RTG).trajectories.episodes()]
    assert sum(not np.array_equal(t, b) for t, b in zip(train_first, ball_first)) >= 2  # seed 123 has a ball there


def test_a_shift_that_matters_changes_the_outcome_rates(result):
    """The demo model was trained with the goal in the bottom-right corner: with it in the middle it
    does not reach it in these episodes, while it does in the training layout."""
    train, moved = result.cell("train", RTG).outcome_fractions, result.cell("goal middle", RTG).outcome_fractions
    assert train["goal"] >= 0.5 and moved["goal"] < train["goal"]
    row = next(r for r in result.table() if r["environment"] == "goal middle")
    assert row["goal_change"] == pytest.approx(moved["goal"] - train["goal"])
    fig = result.figure()
    assert len(fig.data) == 3 and list(fig.data[0].x) == list(result.names)
    assert list(fig.data[0].y) == [result.cell(n, RTG).outcome_fractions["goal"] for n in result.names]


def test_deterministic_with_seeds(demo, result):
    env = MiniGridEnv(ENV_ID, MAX_STEPS, seed=None)
    again = distribution_shift(demo, env, SHIFTS[:1], rtgs=(RTG,), n_episodes=N_EP, seed=SEED, n_envs=2)
    for name in again.names:
        a, b = again.cell(name, RTG), result.cell(name, RTG)
        assert a.outcome_counts == b.outcome_counts
        np.testing.assert_array_equal(a.trajectories.actions, b.trajectories.actions)
        np.testing.assert_array_equal(a.heat_map, b.heat_map)


def test_matched_states_against_plain_forwards(demo, result):
    m = result.matched["goal middle"]
    assert result.matched["6x6"] is None or result.matched["6x6"].train_seed == SEED
    train, moved = MiniGridEnv(ENV_ID, MAX_STEPS, seed=None), MiniGridEnv(ENV_ID, MAX_STEPS, seed=None)
    obs_t, _ = train.reset(seed=SEED), moved.reset(seed=SEED)
    moved.set_cell(6, 6, None)
    obs_s = moved.set_cell(3, 3, "goal")
    free = lambda g: {(x, y) for x in range(g.shape[0]) for y in range(g.shape[1]) if g[x, y, 0] in (1, 3, 10)}  # noqa: E731
    common = free(train.full_grid()[0]) & free(moved.full_grid()[0])
    assert {tuple(c) for c in m.difference.cells.tolist()} == common
    for row in range(0, len(m.difference.cells), 7):
        (x, y), d = m.difference.cells[row], int(m.difference.facings[row])
        with torch.inference_mode():
            pt = demo.forward(demo.make_window(train.observation_at(int(x), int(y), d), RTG, [0]))[0].softmax(-1)
            ps = demo.forward(demo.make_window(moved.observation_at(int(x), int(y), d), RTG, [0]))[0].softmax(-1)
        np.testing.assert_allclose(m.difference.probs[row], (ps - pt).numpy(), atol=1e-5)
    ia, ib = (demo.action_names.index(s.strip()) for s in m.pair_label.split("−"))
    with torch.inference_mode():
        lt, ls = demo.forward(demo.make_window(obs_t, RTG, [0]))[0], demo.forward(demo.make_window(obs_s, RTG, [0]))[0]
    assert float(m.attribution_change.astype(np.float64).sum()) == pytest.approx(
        float((ls[ia] - ls[ib]) - (lt[ia] - lt[ib])), abs=1e-4)


@pytest.mark.parametrize("spec, err, match", [
    ([{"name": "train"}], ValueError, "reserved"),
    ([{"name": "a"}, {"name": "a"}], ValueError, "unique"),
    ([{"name": "a", "edit": []}], ValueError, "keys"),
    ([{"name": "a", "edits": "goal"}], TypeError, "edits"),
    ([{"name": "a", "edits": [(1.5, 2, "goal")]}], TypeError, "integer x"),
    ([{"name": "a", "edits": [{"x": 1, "y": 2}]}], ValueError, "x, y, obj"),
    ({"name": "a"}, TypeError, "list"),
])
def test_bad_specs_are_refused_clearly(spec, err, match):
    with pytest.raises(err, match=match):
        parse_shifts(spec)


@pytest.mark.parametrize("edits, match", [([(7, 7, "goal")], "outer wall"), ([(3, 3, "dragon")], "dragon"),
                                          ([(1, 1, "goal")], "agent's own cell")])
def test_edits_the_env_refuses_name_the_shift_and_edit_before_any_rollout(demo, edits, match):
    env = MiniGridEnv(ENV_ID, MAX_STEPS, seed=None)
    with pytest.raises(ValueError, match=f"shift 'bad', edit 0 .*{match}"):
        distribution_shift(demo, env, [{"name": "bad", "edits": edits}], n_episodes=1, seed=SEED)


def test_edited_env_keeps_what_the_wrapped_env_declares():
    """An EditedEnv is the wrapped env but for reset: its action table (absolute moves in FrozenLake) and
    anything else it declares pass through, so policies, key maps and placements stay right."""
    from dtwidgets.adapters import GridWorldEnv, action_table

    lake = GridWorldEnv("FrozenLake-v1", is_slippery=False, max_steps=20)
    edited = EditedEnv(lake, [], name="none")
    assert action_table(edited).kinds == action_table(lake).kinds and not action_table(edited).has_facing
    assert edited.env_id == lake.env_id and edited.schema == lake.schema
    assert isinstance(edited, EnvAdapter)

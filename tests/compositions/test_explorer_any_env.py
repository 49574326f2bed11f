"""The Explorer on environments that are not egocentric MiniGrid: a grid world with absolute moves
(FrozenLake: arrows are moves, ArrowDown moves down, the default pair is two moves, one policy-map
placement per cell) and a fully observed MiniGrid (the view is the whole grid, the agent drawn from
its own cell)."""
from __future__ import annotations

import numpy as np
from minigrid.wrappers import FullyObsWrapper

from dtwidgets.adapters import GridWorldEnv
from dtwidgets.adapters.minigrid_env import MiniGridEnv
from dtwidgets.compositions import Explorer
from dtwidgets.model import DecisionTransformer, DTAdapter, DTConfig


def _tiny_dt(env, obs_shape) -> DTAdapter:
    cfg = DTConfig(d_model=16, n_heads=2, d_mlp=32, n_ctx=2, obs_shape=obs_shape, n_actions=len(env.action_names),
                   action_names=env.action_names, env_id=env.env_id, max_timestep=env.max_steps)
    return DTAdapter(DecisionTransformer(cfg))


def test_frozen_lake_keys_pair_and_policy_map():
    env = GridWorldEnv("FrozenLake-v1", is_slippery=False, max_steps=20)
    e = Explorer(_tiny_dt(env, env.observation().shape), env, coalesce_s=0)
    names = list(env.action_names)
    a, b = e.ctx.pair
    assert {names[a], names[b]} <= set(names) and a != b
    assert e.key_map["ArrowDown"] != e.key_map["ArrowUp"] and e.grid.bindings == e.key_map
    y0 = env.full_grid()[1][1]
    e.press("ArrowDown")  # an absolute move: the agent goes one row down (FrozenLake's start is the top-left)
    assert e.session.n_steps == 1 and env.full_grid()[1][1] == y0 + 1, e.error.value
    pm = e.show_panel("policy_map")
    assert e.error.value == ""
    grid = env.full_grid()[0]
    assert pm.view.probs.shape[1] == len(np.unique(pm.view.cells, axis=0))  # one placement per cell, no facings
    assert list(pm.view.action_kinds) == list(e.actions.kinds) and "no facing" in pm.note.value
    assert grid.shape[:2] == (4, 4)


def test_fully_observed_minigrid_draws_the_whole_grid():
    env = MiniGridEnv("MiniGrid-Empty-5x5-v0", max_steps=20, wrappers=[FullyObsWrapper])
    obs = env.observation()
    e = Explorer(_tiny_dt(env, obs.shape), env, coalesce_s=0)
    assert e.view.mode == "full" and np.array_equal(e.view.grid, obs)
    assert e.view.agent_pos is None  # the agent is drawn from its own cell, not placed a second time
    e.press("ArrowLeft")
    assert e.session.n_steps == 1 and e.error.value == ""
    np.testing.assert_array_equal(e.view.grid, env.observation())

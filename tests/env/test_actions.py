"""Actions with meaning: action kinds, key maps, default pairs, placements and behaviour policies
follow the env's ActionTable; names that do not fit are refused with a clear error."""
from __future__ import annotations

import numpy as np
import pytest

from dtwidgets.adapters.actions import MINIGRID_ACTIONS, ActionTable, action_table
from dtwidgets.adapters.minigrid_env import MiniGridEnv
from dtwidgets.analysis.policy_map import agent_placements, free_cells
from dtwidgets.data.policies import make_policy, policy_for
from dtwidgets.widgets.grid_view import GridView

FROZEN = ("left", "down", "right", "up")  # FrozenLake's order


def test_kinds_from_names_follow_the_world():
    mg = ActionTable.from_names(MINIGRID_ACTIONS.names)
    assert mg == MINIGRID_ACTIONS and mg.has_facing
    fl = ActionTable.from_names(FROZEN)
    assert fl.kinds == ("move_left", "move_down", "move_right", "move_up") and not fl.has_facing
    assert ActionTable.from_names(("up", "stay", "jump")).kinds == ("move_up", "noop", "other")
    with pytest.raises(ValueError, match="either relative actions"):
        ActionTable(("a", "b"), ("forward", "move_up"))
    with pytest.raises(ValueError, match="action kinds in"):
        ActionTable(("a",), ("fly",))


def test_key_maps_and_default_pairs():
    assert MINIGRID_ACTIONS.key_map() == {"ArrowLeft": "left", "ArrowRight": "right", "ArrowUp": "forward",
                                          "p": "pickup", "d": "drop", "t": "toggle", "Enter": "done"}
    assert "ArrowDown" not in MINIGRID_ACTIONS.key_map()  # no backwards move in MiniGrid
    assert ActionTable.from_names(FROZEN).key_map() == {"ArrowLeft": "left", "ArrowDown": "down",
                                                        "ArrowRight": "right", "ArrowUp": "up"}
    assert MINIGRID_ACTIONS.default_pair() == ("forward", "right")
    assert ActionTable.from_names(FROZEN).default_pair() == ("right", "down")
    assert ActionTable.from_names(("up", "right", "down", "left")).default_pair() == ("right", "down")


def test_minigrid_env_declares_actions_and_deadly_contact_from_its_world():
    do = MiniGridEnv("MiniGrid-Dynamic-Obstacles-5x5-v0", max_steps=10)
    dk = MiniGridEnv("MiniGrid-DoorKey-5x5-v0", max_steps=10)
    assert action_table(do).kinds == ("turn_left", "turn_right", "forward")
    assert action_table(dk) == MINIGRID_ACTIONS
    assert "ball" in do.deadly_objects and "wall" in do.deadly_objects and "goal" not in do.deadly_objects
    assert dk.deadly_objects == ("lava",)
    # a facing: four placements per free cell
    pl = agent_placements(dk)
    assert len(pl) == 4 * len(free_cells(dk.full_grid()[0]))


def test_policies_refuse_actions_they_cannot_use():
    with pytest.raises(ValueError, match=r"needs actions of kinds \['move_right', 'move_down', 'move_left', 'move_up'\]"):
        make_policy("bfs", 0, 2, ActionTable.from_names(("up", "down")))
    with pytest.raises(ValueError, match="indices 0, 1, 2"):
        make_policy("bfs", 0, 3, ActionTable.from_names(("forward", "left", "right")))
    make_policy("random", 0, 2, ActionTable.from_names(("up", "down")))  # random needs nothing
    env = MiniGridEnv("MiniGrid-Empty-5x5-v0", max_steps=30, seed=0)
    pi = policy_for("bfs", env, 0)
    steps = 0
    while not env.done:
        env.step(pi(env))
        steps += 1
    assert env.outcome == "goal" and steps <= 8  # agent (1,1) facing right, goal (3,3): 6 steps


def test_grid_view_bindings_report_the_mapped_action():
    gv = GridView(np.zeros((3, 3, 3), np.uint8), bindings=ActionTable.from_names(FROZEN).key_map())
    got, keys = [], []
    gv.on_action(got.append)
    gv.on_key(keys.append)
    for k in ("ArrowDown", "x", "ArrowUp"):
        gv.press(k)
    assert keys == ["ArrowDown", "x", "ArrowUp"] and got == ["down", "up"]
    with pytest.raises(Exception, match="bindings"):
        gv.bindings = {"Tab": "left"}


def test_user_policies_plug_into_the_mix():
    from dtwidgets.data import collect_trajectories

    env = MiniGridEnv("MiniGrid-Empty-5x5-v0", max_steps=6, seed=0)

    def spinner(env, rng):  # a user's policy: turn by name, reproducibly from the episode's rng
        return "left" if rng.random() < 0.5 else "right"

    traj = collect_trajectories(env, n_episodes=4, policy_mix={"spinner": 1, "bfs": 1}, progress=False, n_envs=1,
                                user_policies={"spinner": spinner})
    mine = [ep for ep in traj.episodes() if ep.policy == "spinner"]
    assert len(mine) == 2 and all(set(ep.actions.tolist()) <= {0, 1} and ep.outcome == "timeout" for ep in mine)
    assert all(ep.outcome == "goal" for ep in traj.episodes() if ep.policy == "bfs")
    again = collect_trajectories(env, n_episodes=4, policy_mix={"spinner": 1, "bfs": 1}, progress=False, n_envs=2,
                                 user_policies={"spinner": spinner})
    assert np.array_equal(again.actions, traj.actions)  # reproducible whatever n_envs
    with pytest.raises(ValueError, match="shadow built-in"):
        collect_trajectories(env, n_episodes=1, policy_mix="bfs", progress=False, user_policies={"bfs": spinner})
    with pytest.raises(ValueError, match="unknown behaviour policy 'mine'"):
        collect_trajectories(env, n_episodes=1, policy_mix="mine", progress=False)

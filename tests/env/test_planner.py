"""The planner behaviour policy picks up keys and opens doors: DoorKey is solved, checked by
replaying the recorded actions in a plain gymnasium MiniGrid env; deadly contact comes from the
env's world, not from its id."""
from __future__ import annotations

import gymnasium as gym
import minigrid  # noqa: F401  (registers the ids)
import numpy as np
import pytest

from dtwidgets.adapters.minigrid_env import MiniGridEnv
from dtwidgets.adapters.schema import COLOURS, OBJECTS, STATES
from dtwidgets.data import collect_trajectories
from dtwidgets.data.planner import plan
from dtwidgets.data.policies import GridState


@pytest.mark.parametrize("env_id", ["MiniGrid-DoorKey-5x5-v0", "MiniGrid-DoorKey-6x6-v0"])
def test_planner_solves_doorkey(env_id):
    env = MiniGridEnv(env_id, max_steps=100)
    traj = collect_trajectories(env, n_episodes=10, policy_mix="planner", progress=False, n_envs=1)
    solved = 0
    for ep in traj.episodes():
        plain = gym.make(env_id, max_steps=100)
        plain.reset(seed=int(ep.seed))
        for a in ep.actions:
            _, r, term, trunc, _ = plain.step(int(a))
        solved += bool(term and r > 0)
        assert ep.outcome == ("goal" if term and r > 0 else ep.outcome)
        if term and r > 0:  # it had to pick up the key (3) and open the door (5)
            assert 3 in ep.actions and 5 in ep.actions
    assert solved >= 9, traj.outcome_counts()
    assert traj.outcome_counts().get("goal", 0) == solved


def _room(door_colour: str, key_colour: str) -> np.ndarray:
    """A 7x3 grid, row 1 a corridor: agent at x=1 (facing right), key x=2, locked door x=4, goal
    x=5; walls elsewhere but (2, 2) and (3, 2)."""
    g = np.zeros((7, 3, 3), np.uint8)
    g[..., 0] = OBJECTS.index("wall")
    g[1:6, 1, 0] = OBJECTS.index("empty")
    g[2, 1] = (OBJECTS.index("key"), COLOURS.index(key_colour), 0)
    g[4, 1] = (OBJECTS.index("door"), COLOURS.index(door_colour), STATES.index("locked"))
    g[5, 1] = (OBJECTS.index("goal"), COLOURS.index("green"), 0)
    g[2, 2, 0] = g[3, 2, 0] = OBJECTS.index("empty")  # room to step around the picked-up key's cell
    return g


def test_plan_rules_keys_and_locked_doors():
    path = plan(_room("yellow", "yellow"), (1, 1), 0)
    assert path[0] == "pickup" and "toggle" in path and path[-1] == "forward"
    assert path.index("pickup") < path.index("toggle")
    assert plan(_room("yellow", "blue"), (1, 1), 0) is None  # the wrong key opens nothing
    assert plan(_room("yellow", "yellow"), (1, 1), 0, interact=("toggle",)) is None  # no pickup action


def test_deadly_contact_comes_from_the_world_not_the_id():
    dk = MiniGridEnv("MiniGrid-DoorKey-5x5-v0", max_steps=10)
    dk.env_id = "MiniGrid-Dynamic-Obstacles-pretend"  # the old rule read this string
    s = GridState(dk)
    assert not s.deadly(OBJECTS.index("wall")) and s.deadly(OBJECTS.index("lava"))
    do = MiniGridEnv("MiniGrid-Dynamic-Obstacles-5x5-v0", max_steps=10)
    do.env_id = "renamed"
    assert GridState(do).deadly(OBJECTS.index("ball")) and GridState(do).deadly(OBJECTS.index("wall"))

"""GridWorldEnv: FrozenLake, CliffWalking and a user's own grid world bind in a few lines, collect
trajectories with the behaviour policies (absolute moves), and get the right outcomes, checked by
replaying the recorded actions in a fresh gymnasium env (independent of the adapter)."""
from __future__ import annotations

import gymnasium as gym
import numpy as np
import pytest

from dtwidgets.adapters import EnvAdapter, GridWorldEnv, action_table
from dtwidgets.adapters.schema import OBJECTS
from dtwidgets.analysis.policy_map import agent_placements
from dtwidgets.data import Trajectories, collect_trajectories

MIX = {"bfs": 1, "suicidal": 1, "survivor": 1, "random": 1}


def _replay(env_id, kwargs, seed, actions):
    """States visited, rewards and flags of ``actions`` in a plain gymnasium env."""
    e = gym.make(env_id, **kwargs)
    s, _ = e.reset(seed=int(seed))
    states, rewards, term = [s], [], False
    for a in actions:
        s, r, term, trunc, _ = e.step(int(a))
        states.append(s)
        rewards.append(r)
    return states, rewards, term


def test_frozen_lake_outcomes_and_observations(tmp_path):
    env = GridWorldEnv("FrozenLake-v1", is_slippery=False, max_steps=30)
    assert isinstance(env, EnvAdapter) and env.schema.view == "full" and not action_table(env).has_facing
    traj = collect_trajectories(env, n_episodes=12, policy_mix=MIX, progress=False, n_envs=2)
    desc = ["SFFF", "FHFH", "FFFH", "HFFG"]
    assert set(traj.outcomes()) == {"goal", "collision", "timeout"}
    for ep in traj.episodes():
        states, rewards, term = _replay("FrozenLake-v1", {"is_slippery": False}, ep.seed, ep.actions)
        last = desc[states[-1] // 4][states[-1] % 4]
        assert ep.outcome == {"G": "goal", "H": "collision"}.get(last, "timeout"), (ep.policy, states)
        assert (ep.outcome == "timeout") == (ep.length == 30 and not term)
        for t, s in enumerate(states[:-1]):  # the observation: the map with the agent at (s % 4, s // 4)
            x, y = s % 4, s // 4
            assert ep.observations[t][x, y, 0] == OBJECTS.index("agent")
            assert (ep.observations[t][..., 0] == OBJECTS.index("lava")).sum() == 4  # the 4 holes (the agent never stands on one before the end)
    bfs = [ep for ep in traj.episodes() if ep.policy == "bfs"]
    assert all(ep.outcome == "goal" and ep.length == 6 for ep in bfs)  # the shortest path is 6 moves
    back = Trajectories.load(traj.save(tmp_path / "fl.npz"))
    assert list(back.outcomes()) == list(traj.outcomes())
    # no facing: one policy-map placement per free cell (16 cells - 4 holes - the goal)
    assert len(agent_placements(env)) == 11


def test_cliff_walking_goal_is_goal_and_the_cliff_is_a_collision():
    env = GridWorldEnv("CliffWalking-v1", max_steps=40)
    assert env.desc[3] == "SCCCCCCCCCCG" and env.action_names == ("up", "right", "down", "left")
    traj = collect_trajectories(env, n_episodes=8, policy_mix={"bfs": 1, "suicidal": 1}, progress=False, n_envs=1)
    for ep in traj.episodes():
        states, rewards, term = _replay("CliffWalking-v1", {}, ep.seed, ep.actions)
        if ep.policy == "bfs":  # up, 11 x right, down: 13 steps of -1, terminated at the goal (state 47)
            assert ep.outcome == "goal" and states[-1] == 47 and term and ep.ret == -13 == sum(rewards)
        else:  # walked off the cliff: reward -100 on the last step, the episode ends there
            assert ep.outcome == "collision" and rewards[-1] == -100 and -100 not in rewards[:-1]
    assert traj.outcome_counts() == {"goal": 4, "collision": 4}


class _Corridor(gym.Env):
    """A user's own world: a 1x4 corridor, move left/right; reaching x=3 says info["outcome"]."""

    observation_space = gym.spaces.Discrete(4)
    action_space = gym.spaces.Discrete(2)

    def reset(self, seed=None, options=None):
        super().reset(seed=seed)
        self.s = 0
        return 0, {}

    def step(self, a):
        self.s = max(0, min(3, self.s + (1 if a == 1 else -1)))
        done = self.s == 3
        return self.s, 0.0, done, False, {"outcome": "goal"} if done else {}


def test_a_users_own_world_in_a_few_lines():
    env = GridWorldEnv(_Corridor(), desc=["S..G"], action_names=("left", "right"), outcome="info", max_steps=10)
    assert env.step("right").outcome is None and env.agent_pos == (1, 0)
    env.step(1)
    r = env.step(1)
    assert r.done and r.outcome == "goal" and r.reward == 0.0  # the env's verdict, not "reward > 0"
    with pytest.raises(ValueError, match="needs actions of kinds"):  # no up/down moves for bfs
        collect_trajectories(env, n_episodes=1, policy_mix="bfs", progress=False)
    traj = collect_trajectories(env, n_episodes=3, policy_mix="random", progress=False, n_envs=1)
    assert traj.n_episodes == 3


def test_snapshot_restore_and_clear_errors():
    env = GridWorldEnv("FrozenLake-v1", max_steps=50, seed=4)  # slippery: the RNG matters
    env.step(2)
    snap = env.snapshot()
    a = [env.step(1).observation for _ in range(3) if not env.done]
    env.restore(snap)
    b = [env.step(1).observation for _ in range(len(a))]
    assert all(np.array_equal(x, y) for x, y in zip(a, b))
    with pytest.raises(ValueError, match="action_names"):
        GridWorldEnv(_Corridor(), desc=["S..G"])
    with pytest.raises(ValueError, match=r"unknown chars \['Z'\]"):
        GridWorldEnv(_Corridor(), desc=["S.ZG"], action_names=("left", "right"))
    with pytest.raises(ValueError, match="editing cells is not supported"):
        env.set_cell(1, 1, "wall")
    bad = GridWorldEnv(_Corridor(), desc=["S..G"], action_names=("left", "right"), outcome=lambda *a: "won")
    with pytest.raises(ValueError, match="outcome rule to give one of"):
        bad.step(1)

"""Shared ``SyncVectorEnv`` helpers for collection and calibration.

When an env has no episodes left to run, :func:`retire` swaps it for an idle stub (same spaces,
constant observation, never done), so the tail of a run where a few long episodes are still going
does not pay for stepping finished environments.
"""
from __future__ import annotations

import gymnasium as gym

from ..adapters.minigrid_env import make_minigrid


class IdleEnv(gym.Env):
    """A stand-in for a retired sub-env: returns its last observation, reward 0, never done."""

    def __init__(self, observation_space, action_space, obs):
        self.observation_space = observation_space
        self.action_space = action_space
        self._obs = obs

    def step(self, action):
        return self._obs, 0.0, False, False, {}

    def reset(self, *, seed=None, options=None):
        return self._obs, {}


def make_vector_env(env_id: str, max_steps: int, n: int) -> gym.vector.SyncVectorEnv:
    """``n`` MiniGrid envs (no rendering) in a ``SyncVectorEnv`` (gymnasium's default next-step autoreset)."""
    return gym.vector.SyncVectorEnv([lambda: make_minigrid(env_id, max_steps, render_mode=None)] * n)


def retire(vec: gym.vector.SyncVectorEnv, i: int) -> None:
    """Replace sub-env ``i`` by an :class:`IdleEnv` (its result is ignored from now on)."""
    env = vec.envs[i]
    if isinstance(env, IdleEnv):
        return
    obs = env.unwrapped.gen_obs()
    vec.envs[i] = IdleEnv(env.observation_space, env.action_space, obs)
    env.close()

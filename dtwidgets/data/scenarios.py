"""The reference post's MiniGrid scenarios, built with MiniGrid itself (the data side of
:func:`dtwidgets.analysis.reference_numbers`).

``MiniGrid-Dynamic-Obstacles-8x8-v0``, ``max_steps=1000``, ``reset(seed=0)``; all four moving balls
are removed from the grid. Then:

* ``"obstacle"``: the agent stays at its start (1, 1) facing east, with a blue ball placed directly
  in front at (2, 1).
* ``"goal"``: the agent is moved to (5, 6) facing east, so the goal at (6, 6) is directly in front.
* ``"reset"``: the seed-0 reset observation, untouched.

In the agent's egocentric view the cell in front is ``(x, y) = (3, 5)`` (:data:`FRONT`).
"""
from __future__ import annotations

from typing import Any

import numpy as np

ENV_ID = "MiniGrid-Dynamic-Obstacles-8x8-v0"
FRONT = (3, 5)
KINDS = ("obstacle", "goal", "reset")


def scenario_observation(kind: str, seed: int = 0) -> np.ndarray:
    """The agent's partial observation ``[7, 7, 3]`` uint8 for ``"obstacle"``, ``"goal"`` or ``"reset"``."""
    import gymnasium as gym
    import minigrid  # noqa: F401  (registers the MiniGrid envs)
    from minigrid.core.world_object import Ball

    env = gym.make(ENV_ID, max_steps=1000)
    obs, _ = env.reset(seed=seed)
    if kind == "reset":
        return obs["image"]
    u: Any = env.unwrapped  # minigrid.MiniGridEnv
    for o in u.obstacles:
        if o.cur_pos is not None and u.grid.get(*o.cur_pos) is o:
            u.grid.set(*o.cur_pos, None)
    if kind == "obstacle":
        u.agent_pos, u.agent_dir = (1, 1), 0
        u.grid.set(2, 1, Ball("blue"))
    elif kind == "goal":
        u.agent_pos, u.agent_dir = (5, 6), 0
        if u.grid.get(6, 6) is None or u.grid.get(6, 6).type != "goal":
            raise RuntimeError("expected the Dynamic Obstacles goal at (6, 6)")
    else:
        raise ValueError(f"expected kind 'obstacle', 'goal' or 'reset', got {kind!r}")
    img = u.gen_obs()["image"]
    env.close()
    return img


def reference_observations(seed: int = 0) -> dict[str, np.ndarray]:
    """``{"obstacle" | "goal" | "reset": [7, 7, 3] uint8}``: every scenario's partial observation."""
    return {k: scenario_observation(k, seed) for k in KINDS}

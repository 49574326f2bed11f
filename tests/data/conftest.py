"""Small shared trajectory sets for the data tests (collected once per session, a few seconds)."""
from __future__ import annotations

import pytest

DO = "MiniGrid-Dynamic-Obstacles-8x8-v0"


@pytest.fixture(scope="session")
def small_traj():
    """24 episodes covering goal / collision / timeout (max_steps 60 keeps timeouts short)."""
    from dtwidgets.data.collect import collect_trajectories

    mix = {"bfs": 0.3, "bfs:0.2": 0.1, "survivor": 0.2, "suicidal": 0.3, "random": 0.1}
    return collect_trajectories(DO, n_episodes=24, policy_mix=mix, seed=7, n_envs=5, max_steps=60, progress=False)

"""Small shared data for probe tests: a few short Dynamic-Obstacles episodes and the demo model."""
from __future__ import annotations

import pytest

ENV_ID = "MiniGrid-Dynamic-Obstacles-8x8-v0"
MAX_STEPS = 120


@pytest.fixture(scope="session")
def small_traj():
    from dtwidgets.data import collect_trajectories

    return collect_trajectories(ENV_ID, 60, {"bfs:0.2": 0.5, "random": 0.5}, seed=0, n_envs=8, max_steps=MAX_STEPS,
                                progress=False)


@pytest.fixture(scope="session")
def small_env():
    from dtwidgets.adapters import MiniGridEnv

    return MiniGridEnv(ENV_ID, max_steps=MAX_STEPS)


@pytest.fixture(scope="session")
def post_adapter():
    from dtwidgets.demo import load_demo

    return load_demo("post")[0]  # package data: missing means a broken install, a failure, not a skip

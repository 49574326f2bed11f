"""A tiny training run with 10+ checkpoints (log-spaced then linear), shared by the dynamics tests."""
from __future__ import annotations

import pytest

ENV_ID = "MiniGrid-Dynamic-Obstacles-8x8-v0"


@pytest.fixture(scope="session")
def run_dir(tmp_path_factory):
    from dtwidgets.data import TrainConfig, collect_trajectories, train
    from dtwidgets.model import DTConfig

    traj = collect_trajectories(ENV_ID, 40, {"bfs": 0.4, "bfs:0.2": 0.2, "suicidal": 0.2, "random": 0.2}, seed=0,
                                n_envs=8, max_steps=60, progress=False)
    mcfg = DTConfig(d_model=32, n_heads=2, d_mlp=64, n_layers=1, n_ctx=5, one_hot_obs=True, layer_norm="LN")
    out = tmp_path_factory.mktemp("run")
    train(mcfg, traj, TrainConfig(n_steps=120, batch_size=64, lr=3e-3, warmup_steps=10, n_checkpoints=10, seed=0),
          out_dir=out, progress=False)
    return out


@pytest.fixture(scope="session")
def held_out():
    from dtwidgets.data import collect_trajectories

    return collect_trajectories(ENV_ID, 12, {"bfs:0.2": 0.5, "random": 0.5}, seed=10_000, n_envs=6, max_steps=60,
                                progress=False)


@pytest.fixture(scope="session")
def env():
    from dtwidgets.adapters import MiniGridEnv

    return MiniGridEnv(ENV_ID, max_steps=60)


FAST = dict(concepts=("ball ahead", "agent direction"), scenarios=4, rtgs=(-1.0, 0.9), n_episodes=3,
            probe_splits=3, probe_hooks=["blocks.0.hook_resid_post"], progress=False)

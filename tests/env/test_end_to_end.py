"""End to end through the library's own pipeline, per environment row of issue 25 that the model
already reads as [W, H, 3] codes: collect with behaviour policies -> train a tiny DT -> policy map,
the map's logits checked against the independent plain-torch forward (tests/reference_forward.py)
of a reference-format checkpoint on the same placements."""
from __future__ import annotations

import numpy as np
import pytest
import torch
from minigrid.wrappers import FullyObsWrapper

from dtwidgets.adapters import GridWorldEnv, action_table
from dtwidgets.adapters.minigrid_env import MiniGridEnv
from dtwidgets.analysis.policy_map import agent_placements, policy_map
from dtwidgets.data import collect_trajectories
from dtwidgets.training.dt import TrainConfig, train
from dtwidgets.model.checkpoint import load_checkpoint
from dtwidgets.model.config import DTConfig
from dtwidgets.model.dt import DecisionTransformer
from tests.reference_forward import random_reference_checkpoint, raw_to_features, reference_logits

ENVS = {
    "frozen-lake": (lambda: GridWorldEnv("FrozenLake-v1", is_slippery=False, max_steps=20), {"bfs": 1, "suicidal": 1}),
    "cliff-walking": (lambda: GridWorldEnv("CliffWalking-v1", max_steps=30), {"bfs": 1, "suicidal": 1}),
    "fully-observed": (lambda: MiniGridEnv("MiniGrid-DoorKey-5x5-v0", max_steps=30, wrappers=[FullyObsWrapper]),
                       {"planner": 1, "random": 1}),
    "view-5": (lambda: MiniGridEnv("MiniGrid-DoorKey-5x5-v0", max_steps=30, agent_view_size=5), {"planner": 1}),
}


@pytest.mark.parametrize("name", sorted(ENVS))
def test_collect_train_policy_map(tmp_path, name):
    make, mix = ENVS[name]
    env = make()
    traj = collect_trajectories(env, n_episodes=6, policy_mix=mix, progress=False, n_envs=1)
    assert "goal" in traj.outcome_counts(), traj.outcome_counts()
    W, H, C = traj.observations.shape[1:]
    r = traj.rtg()
    cfg = DTConfig(d_model=16, n_heads=2, d_mlp=32, n_ctx=2, obs_shape=(W, H, C), n_actions=len(env.action_names),
                   action_names=env.action_names, env_id=env.env_id, max_timestep=env.max_steps,
                   rtg_range=(min(float(r.min()), -1.0), max(float(r.max()), 1.0)))
    res = train(DecisionTransformer(cfg), traj, TrainConfig(n_steps=4, batch_size=8, warmup_steps=1), progress=False)
    assert np.isfinite(res.losses).all()
    pl = agent_placements(env)
    facings = 4 if action_table(env).has_facing else 1
    assert len(pl) % facings == 0 and len(set(map(tuple, pl.cells))) == len(pl) // facings
    if W != H:  # the reference-format checkpoint writer makes square views only
        return
    sd, mcfg = random_reference_checkpoint(tmp_path / "m.pt", d_model=16, n_heads=2, d_mlp=32, n_layers=1, n_ctx=2,
                                           n_actions=len(env.action_names), view=W, max_steps=env.max_steps)
    adapter = load_checkpoint(tmp_path / "m.pt")
    pm = policy_map(adapter, pl, rtg=0.5)
    want = reference_logits(sd, mcfg, raw_to_features(torch.as_tensor(pl.observations)[:, None], False),
                            torch.full((len(pl), 1), 0.5), torch.zeros(len(pl), 1, dtype=torch.long),
                            torch.zeros(len(pl), 0, dtype=torch.long))[:, -1]
    torch.testing.assert_close(torch.as_tensor(pm.logits), want, atol=1e-5, rtol=0)

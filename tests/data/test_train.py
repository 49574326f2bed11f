"""train(): window sampling, RTG-conditioned cross-entropy, deterministic seeds, checkpoints, quick evals."""
from __future__ import annotations

import json

import numpy as np
import pytest

from dtwidgets.training.dt import TrainConfig, sample_ends, step_weights, train


def tiny_cfg(**kw):
    from dtwidgets.model import DTConfig

    return DTConfig(d_model=32, n_heads=2, d_mlp=64, n_layers=1, **{"n_ctx": 5, "one_hot_obs": True, **kw})


def test_sampling(small_traj):
    t = small_traj
    w = step_weights(t, {"goal": 1, "collision": 1, "timeout": 1})
    out = np.repeat(t.outcomes(), t.episode_lengths)
    for k in ("goal", "collision", "timeout"):
        assert w[out == k].sum() == pytest.approx(1 / 3)
    rng = np.random.default_rng(0)
    ends = sample_ends(t, np.cumsum(w), 500, 1.0, rng)
    assert set(ends.tolist()) <= set(t.episode_ends().tolist())
    only_goal = sample_ends(t, np.cumsum(step_weights(t, {"goal": 1})), 200, 0.0, rng)
    assert set(out[only_goal]) == {"goal"}
    with pytest.raises(ValueError, match="outcome_weights"):
        step_weights(t, {"win": 1})


def test_train_learns_deterministic_with_checkpoints(small_traj, tmp_path):
    from dtwidgets.model import load_model

    cfg = TrainConfig(n_steps=40, batch_size=64, lr=3e-3, warmup_steps=5, checkpoint_every=20, eval_every=40,
                      eval_rtgs=(-1.0, 0.9), eval_episodes=2, eval_n_envs=4, seed=3)
    a = train(tiny_cfg(), small_traj, cfg, out_dir=tmp_path, progress=False)
    assert a.losses[-10:].mean() < a.losses[:5].mean()
    assert [c["step"] for c in a.checkpoints] == [0, 20, 40]
    index = json.loads((tmp_path / "checkpoints" / "index.json").read_text())
    assert [c["path"] for c in index["checkpoints"]] == ["step_000000.safetensors", "step_000020.safetensors",
                                                         "step_000040.safetensors"]
    assert len(a.evals) == 1 and a.evals[0]["step"] == 40 and len(index["evals"]) == 1
    m = load_model(tmp_path / "checkpoints" / "step_000040.safetensors")
    sd_a = a.model.state_dict()
    assert all(np.array_equal(v.numpy(), sd_a[k].numpy()) for k, v in m.state_dict().items() if k in sd_a)
    b = train(tiny_cfg(), small_traj, TrainConfig(**{**cfg.__dict__, "checkpoint_every": 0, "eval_every": 0}),
              progress=False)
    assert np.array_equal(a.losses, b.losses)


def test_train_errors(small_traj):
    with pytest.raises(ValueError, match="env"):
        train(tiny_cfg(env_id="MiniGrid-Empty-8x8-v0"), small_traj, TrainConfig(n_steps=1), progress=False)
    with pytest.raises(ValueError, match="timestep"):
        train(tiny_cfg(max_timestep=10), small_traj, TrainConfig(n_steps=1), progress=False)

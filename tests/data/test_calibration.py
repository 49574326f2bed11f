"""calibrate(): batched greedy rollouts, make_window-consistent per-env windows, partial results."""
from __future__ import annotations

import numpy as np
import pytest
import torch

from dtwidgets.adapters import make_window
from dtwidgets.adapters.minigrid_env import MiniGridEnv
from dtwidgets.adapters.layout import TokenLayout
from dtwidgets.data.calibration import calibrate

DO = "MiniGrid-Dynamic-Obstacles-8x8-v0"


def policy(obs: np.ndarray, rtg: float) -> int:
    """A deterministic function of the observation and RTG (safe-ish forward, turns otherwise)."""
    if rtg < 0:
        return 2
    h = int(obs.astype(np.int64).sum())
    return 2 if (obs[3, 5, 0] == 1 and h % 3 != 0) else h % 2


class FakeAdapter:
    """Acts with ``policy`` on the window's last observation and records every window row."""

    def __init__(self, n_timesteps=3, interrupt_after=None):
        self.layout = TokenLayout(n_timesteps)
        self.n_actions, self.pad_action, self.rtg_range, self.max_timestep = 3, 3, (-1.0, 1.0), 1000
        self.action_names = ("left", "right", "forward")
        self.rows, self.calls, self.interrupt_after = [], 0, interrupt_after

    def forward(self, w):
        self.calls += 1
        if self.interrupt_after and self.calls > self.interrupt_after:
            raise KeyboardInterrupt
        out = torch.full((w.batch_size, 3), -1.0)
        for b in range(w.batch_size):
            self.rows.append(_key(w, b))
            out[b, policy(w.observations[b, -1].numpy(), float(w.rtgs[b, -1]))] = 1.0
        return out


def _key(w, b):
    return tuple(getattr(w, f)[b].numpy().tobytes() for f in ("observations", "actions", "rtgs", "timesteps")) + (
        int(w.n_pad[b]),)


def replay(rtg, seed, max_steps, T):
    env = MiniGridEnv(DO, max_steps=max_steps)
    obs = [env.reset(seed=seed)]
    acts, rows, ret = [], [], 0.0
    while True:
        t = len(obs)
        w = make_window(np.stack(obs), np.full(t, rtg, np.float32), np.arange(t), np.array(acts, np.int64),
                        n_timesteps=T, pad_action=3)
        rows.append(_key(w, 0))
        a = policy(obs[-1], rtg)
        r = env.step(a)
        ret += r.reward
        if r.done:
            return rows, ret, len(obs), env.outcome
        obs.append(r.observation)
        acts.append(a)


@pytest.mark.parametrize("T", [1, 3])
def test_windows_and_results_match_replays(T):
    ad = FakeAdapter(T)
    rtgs, E, max_steps = [-0.5, 0.5], 3, 25
    res = calibrate(ad, DO, rtgs=rtgs, n_episodes=E, n_envs=4, max_steps=max_steps, seed=100, progress=False)
    assert not res.partial and res.n_finished.tolist() == [E, E]
    expected = []
    for i, r in enumerate(rtgs):
        for j in range(E):
            rows, ret, length, outcome = replay(r, 100 + j, max_steps, T)
            expected += rows
            assert res.returns[i, j] == pytest.approx(ret)
            assert res.lengths[i, j] == length
            assert res.outcome_labels[res.outcomes[i, j]] == outcome
    assert sorted(ad.rows) == sorted(expected)
    assert res.env_steps == len(expected)
    d = res.to_dict()
    assert d["rtgs"] == rtgs and sum(v[0] for v in d["outcome_counts"].values()) == E
    assert "RTG" in res.summary()


def test_partial_on_keyboard_interrupt():
    ad = FakeAdapter(1, interrupt_after=40)
    res = calibrate(ad, DO, rtgs=[-1.0, 0.5], n_episodes=20, n_envs=4, max_steps=30, seed=0, progress=False)
    assert res.partial
    assert 0 < res.n_finished.sum() < 40
    fin = res.outcomes >= 0
    assert np.isfinite(res.returns[fin]).all() and np.isnan(res.returns[~fin]).all()
    assert "partial" in res.summary()


def test_real_model_batched_forward():
    from dtwidgets.model import DTAdapter, DTConfig, DecisionTransformer

    ad = DTAdapter(DecisionTransformer(DTConfig(d_model=32, n_heads=2, d_mlp=64, n_ctx=5, one_hot_obs=True)))
    res = calibrate(ad, DO, rtgs=[-1, 0.9], n_episodes=4, n_envs=8, max_steps=20, seed=0, progress=False)
    assert res.n_finished.tolist() == [4, 4]
    assert res.return_low.shape == (2,) and np.all(res.return_low <= res.return_high)


def test_errors():
    ad = FakeAdapter(1)
    with pytest.raises(ValueError, match="'MiniGrid-Nope-v0'"):
        calibrate(ad, "MiniGrid-Nope-v0", progress=False)
    with pytest.raises(ValueError, match="env_id"):
        calibrate(ad, None, progress=False)
    with pytest.raises(TypeError, match="EnvAdapter"):
        calibrate(ad, object(), progress=False)
    with pytest.raises(ValueError, match="range"):
        calibrate(ad, DO, rtgs=[2.0], progress=False)
    with pytest.raises(ValueError, match="7"):
        calibrate(ad, "MiniGrid-DoorKey-5x5-v0", n_episodes=1, progress=False)


def test_an_env_adapter_instance_equals_the_env_id():
    ad = FakeAdapter(3)
    kw = dict(rtgs=[-0.5, 0.5], n_episodes=3, n_envs=3, seed=100, progress=False)
    by_id = calibrate(ad, DO, max_steps=25, **kw)
    env = MiniGridEnv(DO, max_steps=25)
    by_env = calibrate(ad, env, **kw)
    for f in ("returns", "outcomes", "lengths"):
        np.testing.assert_array_equal(getattr(by_env, f), getattr(by_id, f))
    assert by_env.env_id == DO and by_env.max_steps == 25
    with pytest.raises(ValueError, match="max_steps"):
        calibrate(ad, env, max_steps=10, **kw)

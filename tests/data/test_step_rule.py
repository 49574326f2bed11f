"""The one step rule (issue 24): the Explorer's session and lockstep rollouts condition on the same
timesteps and windows, also over an episode longer than the model's ``max_timestep`` (clamped there,
never raising), and record_rollouts records what the model was conditioned on."""
from __future__ import annotations

import numpy as np
import pytest
import torch

from dtwidgets.adapters.minigrid_env import MiniGridEnv
from dtwidgets.compositions.session import PlaySession
from dtwidgets.data.lockstep import Episodes, next_step, run_lockstep
from dtwidgets.data.rollouts import record_rollouts
from dtwidgets.model import DecisionTransformer, DTAdapter, DTConfig

MAX_T, STEPS = 5, 14  # the episode (14 steps) runs well past the model's last timestep (5)
SCRIPT = [0, 0, 1, 0, 1, 1, 0, 0, 0, 1, 0, 1, 1, 0]  # turns only: Dynamic Obstacles never ends an episode on a turn


@pytest.fixture(scope="module")
def short_dt():
    return DTAdapter(DecisionTransformer(DTConfig(d_model=32, n_heads=2, d_mlp=64, n_ctx=8, n_layers=1, seed=4,
                                                  max_timestep=MAX_T)))


class Recording:
    """The adapter, recording every window it is asked about (one row per call here)."""

    def __init__(self, adapter):
        self._a, self.windows = adapter, []

    def __getattr__(self, name):
        return getattr(self._a, name)

    def forward(self, window):
        self.windows.append(window)
        return self._a.forward(window)


class Scripted(Episodes):
    def __init__(self):
        self.k = 0

    def choose(self, i, logits):
        self.k += 1
        return SCRIPT[self.k - 1]


def test_next_step_clips_the_rtg_and_clamps_the_timestep():
    assert next_step(0.9, 0.99, 3, (-1.0, 1.0), 10) == (pytest.approx(-0.09), 4)
    assert next_step(0.9, -1.0, 3, (-1.0, 1.0), 10) == (1.0, 4)  # a collision's -1 clipped to the range
    assert next_step(0.5, 0.0, 10, (-1.0, 1.0), 10) == (0.5, 10)  # the last timestep the model knows
    assert next_step(0.5, 0.0, 9, (-1.0, 1.0), 10) == (0.5, 10)


def test_session_and_lockstep_condition_on_the_same_steps_past_max_timestep(short_dt):
    rec = Recording(short_dt)
    run_lockstep(rec, [MiniGridEnv(max_steps=STEPS)], np.array([0.9]), [(0, 0)], 7, Scripted())
    assert len(rec.windows) == STEPS  # every step ran (no raise past max_timestep)
    s = PlaySession(short_dt, MiniGridEnv(max_steps=STEPS), rtg=0.9, seed=7)
    for k, a in enumerate(SCRIPT):
        want = s.window()
        got = rec.windows[k]
        for f in ("observations", "actions", "rtgs", "timesteps", "n_pad"):
            assert torch.equal(getattr(got, f), getattr(want, f)), (k, f)
        assert s.timestep == min(k, MAX_T)
        np.testing.assert_allclose(short_dt.forward(got)[0].numpy(), s.logits().numpy(), atol=1e-6)
        s.step(a)
    assert s.done and s.outcome == "timeout"
    assert s.record()["timesteps"].tolist() == [min(t, MAX_T) for t in range(STEPS + 1)]


def test_rollouts_record_the_conditioning_timesteps(short_dt):
    traj = record_rollouts(short_dt, MiniGridEnv(max_steps=STEPS), rtgs=(0.9,), n_episodes=4, seed=0, n_envs=2,
                          epsilon=0.5, progress=False)
    assert traj.episode_lengths.max() > MAX_T + 1  # some episode ran past the model's last timestep
    for e in traj.episodes():
        assert e.timesteps.tolist() == [min(t, MAX_T) for t in range(e.length)]
    # the recorded logits are the model's on the windows rebuilt from the record (timesteps included)
    win, _ = traj.windows(np.arange(traj.n_steps), short_dt.layout.n_timesteps, short_dt.pad_action, rtgs=traj.rtgs)
    np.testing.assert_allclose(traj.logits, short_dt.forward(win).numpy(), atol=1e-5)


def test_lockstep_keeps_float_codes_exactly_and_refuses_fractions(short_dt):
    from tests.compositions.test_session import FloatEnv

    kw = dict(rtgs=(0.9,), n_episodes=2, seed=3, n_envs=2, progress=False)
    ref = record_rollouts(short_dt, MiniGridEnv(max_steps=STEPS), **kw)
    same = record_rollouts(short_dt, FloatEnv(1.0, max_steps=STEPS), **kw)
    np.testing.assert_array_equal(same.observations, ref.observations)
    np.testing.assert_array_equal(same.logits, ref.logits)
    with pytest.raises(ValueError, match=r"env 0: reset observation: expected uint8 observation codes .*got dtype "
                                         r"float32 with value 0\.\d"):
        record_rollouts(short_dt, FloatEnv(0.1, max_steps=STEPS), **kw)

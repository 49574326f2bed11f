"""PlaySession: stepping, RTG bookkeeping, step back, edits, bookmarks, lossless recording and replay."""
from __future__ import annotations

import numpy as np
import pytest
import torch

from dtwidgets.adapters.minigrid_env import MiniGridEnv
from dtwidgets.compositions.session import PlaySession
from dtwidgets.data.trajectories import Trajectories
from dtwidgets.model import DecisionTransformer, DTAdapter, DTConfig


@pytest.fixture(scope="module")
def model():
    return DTAdapter(DecisionTransformer(DTConfig(d_model=32, n_heads=2, d_mlp=64, n_ctx=8, seed=1)))


def test_play_records_and_replays_losslessly(model, tmp_path):
    s = PlaySession(model, MiniGridEnv(), rtg=0.9, seed=3)
    s.step("left")
    s.step("right")
    s.act()
    w = s.window()
    assert w.observations.shape == (1, 3, 7, 7, 3) and int(w.n_pad[0]) == 0
    assert w.actions[0].tolist() == s.h.actions[-2:]
    logits_now = s.logits().clone()
    traj = s.to_trajectories()
    path = traj.save(tmp_path / "play.npz")
    s2 = PlaySession(model, MiniGridEnv(), rtg=0.1, seed=9)
    s2.load_episode(Trajectories.load(path))
    r1, r2 = s.record(), s2.record()
    for k in ("observations", "actions", "rewards", "rtgs", "timesteps"):
        np.testing.assert_array_equal(r1[k], r2[k])
    np.testing.assert_array_equal(r1["logits"], r2["logits"])
    torch.testing.assert_close(s2.logits(), logits_now)
    s2.seek(1)
    assert s2.n_steps == 1 and np.array_equal(s2.observation, r1["observations"][1])
    with pytest.raises(RuntimeError, match="replayed"):
        s2.step(0)


def test_step_back_restores_state(model):
    s = PlaySession(model, MiniGridEnv(), rtg=0.9, seed=0)
    first = s.observation.copy()
    s.step("left")
    s.step("forward") if not s.done else None
    while s.step_back():
        pass
    np.testing.assert_array_equal(s.observation, first)
    assert s.n_steps == 0 and s.rtg == pytest.approx(0.9)


def test_rtg_decrements_by_reward(model):
    env = MiniGridEnv()
    s = PlaySession(model, env, rtg=0.5, seed=0)
    # drive forward until something happens; collisions give -1, which raises the RTG (clipped to range)
    for _ in range(30):
        if s.done:
            break
        s.step("forward")
    assert s.done
    expected = np.clip(0.5 - np.cumsum(s.h.rewards), -1, 1)
    np.testing.assert_allclose(s.h.rtgs[1:], expected, atol=1e-6)


def test_edit_keeps_clean_scenario(model):
    env = MiniGridEnv()
    s = PlaySession(model, env, rtg=0.9, seed=0)
    (gx, gy), d = env.agent_pos, env.agent_dir
    dx, dy = [(1, 0), (0, 1), (-1, 0), (0, -1)][d]
    before = s.observation.copy()
    s.edit_cell(gx + dx, gy + dy, "wall")
    assert s.clean_observation is not None and np.array_equal(s.clean_observation, before)
    assert s.observation[3, 5, 0] == 2  # the cell in front of the agent is now a wall
    assert not torch.equal(s.window().observations, s.clean_window().observations)


def test_bookmarks(model):
    s = PlaySession(model, MiniGridEnv(), seed=0)
    s.step("left")
    b = s.bookmark("after one turn")
    obs = s.observation.copy()
    s.step("right")
    s.step("right")
    s.goto_bookmark(b)
    assert s.n_steps == 1 and np.array_equal(s.observation, obs)
    assert s.bookmarks[b].note == "after one turn"
    with pytest.raises(IndexError):
        s.goto_bookmark(5)


class FloatEnv(MiniGridEnv):
    """MiniGrid returning its observations as float32, scaled by ``scale`` (1.0: the same codes as floats)."""

    def __init__(self, scale: float = 1.0, **kw):
        self.scale = scale  # before MiniGridEnv's constructor resets
        super().__init__(**kw)

    def reset(self, seed=None):
        return super().reset(seed) * np.float32(self.scale)

    def step(self, action):
        r = super().step(action)
        r.observation = r.observation * np.float32(self.scale)
        return r


def test_float_observations_are_kept_exactly_or_refused(model):
    ref = PlaySession(model, MiniGridEnv(), rtg=0.9, seed=2)
    s = PlaySession(model, FloatEnv(1.0), rtg=0.9, seed=2)  # whole-number floats: exactly the codes
    for a in ("left", "left", "right"):
        ref.step(a)
        s.step(a)
    assert s.observation.dtype == np.uint8
    np.testing.assert_array_equal(s.record()["observations"], ref.record()["observations"])
    torch.testing.assert_close(s.logits(), ref.logits())
    with pytest.raises(ValueError, match=r"FloatEnv reset observation: expected uint8 observation codes \(whole "
                                         r"numbers 0\.\.255.*got dtype float32 with value 0\.(5|2)"):
        PlaySession(model, FloatEnv(0.1), rtg=0.9, seed=2)  # 5 * 0.1 would be cast to 0 (a wall becomes unseen)
    s2 = PlaySession(model, MiniGridEnv(), rtg=0.9, seed=2)
    obs = s2.observation.astype(np.float64)
    obs[3, 5, 0] = 0.8
    with pytest.raises(ValueError, match=r"set_observation\(obs\): .*value 0\.8 at index \[3, 5, 0\]"):
        s2.set_observation(obs)
    np.testing.assert_array_equal(s2.observation, ref.h.observations[0])  # unchanged


def test_set_rtg_mid_episode_is_the_next_episodes_target(model):
    s = PlaySession(model, MiniGridEnv(), rtg=0.9, seed=0)
    s.step("left")
    s.set_rtg(0.4)
    s.step("left")
    s.reset()
    assert s.rtg == pytest.approx(0.4) and s.target_rtg == pytest.approx(0.4)
    s.reset(rtg=-0.2)
    s.step("left")
    s.reset(seed=3)
    assert s.rtg == pytest.approx(-0.2) and s.seed == 3

"""Behaviour-policy collection through the EnvAdapter protocol."""
from __future__ import annotations

import numpy as np
import pytest

from dtwidgets.adapters.minigrid_env import MiniGridEnv
from dtwidgets.data.collect import assign_policies, collect_trajectories, normalise_mix
from dtwidgets.data.policies import make_policy, parse_spec

DO = "MiniGrid-Dynamic-Obstacles-8x8-v0"


def test_returns_cover_all_outcomes(small_traj):
    t = small_traj
    assert t.n_episodes == 24 and t.env_id == DO and t.max_steps == 60
    counts = t.outcome_counts()
    assert counts.get("goal", 0) > 0 and counts.get("collision", 0) > 0 and counts.get("timeout", 0) > 0
    rets = t.returns()
    out = t.outcomes()
    assert np.all(rets[out == "collision"] == -1) and np.all(rets[out == "timeout"] == 0)
    goal = out == "goal"
    # time-discounted goal reward 1 - 0.9 * steps / max_steps
    np.testing.assert_allclose(rets[goal], 1 - 0.9 * t.episode_lengths[goal] / t.max_steps, rtol=1e-6)
    np.testing.assert_allclose(t.rtg(), np.repeat(rets, t.episode_lengths), rtol=1e-6)
    # per-episode timesteps restart at 0 and the autoreset step is never recorded
    for e in t.episodes():
        assert e.timesteps.tolist() == list(range(e.length))


def test_policies_behave(small_traj):
    pol = np.array(small_traj.policies)
    out = small_traj.outcomes()
    assert set(out[pol == "bfs"]) == {"goal"}
    assert set(out[pol == "survivor"]) == {"timeout"}
    assert set(out[pol == "suicidal"]) == {"collision"}


def test_episodes_replay_exactly(small_traj):
    env = MiniGridEnv(DO, max_steps=small_traj.max_steps)
    for e in small_traj.episodes():
        obs = env.reset(seed=e.seed)
        assert np.array_equal(obs, e.observations[0])
        for t, a in enumerate(e.actions):
            r = env.step(int(a))
            assert (r.reward, r.terminated, r.truncated) == pytest.approx(
                (e.rewards[t], e.terminated[t], e.truncated[t]))
            if t + 1 < e.length:
                assert np.array_equal(r.observation, e.observations[t + 1])
        assert env.done


def test_deterministic_and_independent_of_n_envs(small_traj):
    mix = {"bfs": 0.3, "bfs:0.2": 0.1, "survivor": 0.2, "suicidal": 0.3, "random": 0.1}
    again = collect_trajectories(DO, n_episodes=24, policy_mix=mix, seed=7, n_envs=3, max_steps=60, progress=False)
    for name in ("observations", "actions", "rewards", "terminated", "truncated", "episode_lengths", "seeds"):
        assert np.array_equal(getattr(again, name), getattr(small_traj, name)), name
    assert again.policies == small_traj.policies


def test_policy_mix_quota():
    mix = normalise_mix({"bfs": 2, "random": 1, "suicidal": 1})
    specs = assign_policies(mix, 10, np.random.default_rng(0))
    assert sorted(specs).count("bfs") == 5 and len(specs) == 10
    assert normalise_mix(["bfs", "random"]) == {"bfs": 0.5, "random": 0.5}
    assert parse_spec("bfs:0.25") == ("bfs", 0.25)


@pytest.mark.parametrize("bad, match", [("teleport", "unknown behaviour policy"), ("bfs:2", r"\[0, 1\]"),
                                        ("bfs:x", "noise level")])
def test_policy_errors(bad, match):
    with pytest.raises(ValueError, match=match):
        make_policy(bad)


def test_collect_errors():
    with pytest.raises(ValueError, match="'MiniGrid-Nope-v0'"):
        collect_trajectories("MiniGrid-Nope-v0", n_episodes=2, progress=False)
    with pytest.raises(ValueError, match="n_episodes"):
        collect_trajectories(DO, n_episodes=0, progress=False)
    with pytest.raises(ValueError, match="weight"):
        collect_trajectories(DO, n_episodes=2, policy_mix={"bfs": -1}, progress=False)


def test_other_env():
    t = collect_trajectories("MiniGrid-Empty-5x5-v0", n_episodes=4, policy_mix="bfs", seed=0, n_envs=2,
                             max_steps=40, progress=False)
    assert t.outcome_counts() == {"goal": 4}


def test_an_env_adapter_instance_equals_the_env_id(small_traj):
    mix = {"bfs": 0.3, "bfs:0.2": 0.1, "survivor": 0.2, "suicidal": 0.3, "random": 0.1}
    env = MiniGridEnv(DO, max_steps=60)
    again = collect_trajectories(env, n_episodes=24, policy_mix=mix, seed=7, n_envs=2, progress=False)
    for name in ("observations", "actions", "rewards", "episode_lengths", "seeds"):
        assert np.array_equal(getattr(again, name), getattr(small_traj, name)), name
    with pytest.raises(TypeError, match="EnvAdapter"):
        collect_trajectories(42, n_episodes=2, progress=False)

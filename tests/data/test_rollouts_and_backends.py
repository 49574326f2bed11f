"""record_rollouts(): recorded model episodes; collect_trajectories / calibrate with backend= (local == chunked,
no Ray import on the local path; the Ray runs are compared in tests/dynamics/test_scale.py)."""
from __future__ import annotations

import subprocess
import sys

import numpy as np
import pytest

from dtwidgets.data.calibration import calibrate
from dtwidgets.data.collect import collect_trajectories
from dtwidgets.data.rollouts import record_rollouts

from .test_calibration import DO, FakeAdapter, policy, replay


@pytest.mark.parametrize("T", [1, 3])
def test_greedy_rollouts_replay_and_match_calibration(T):
    traj = record_rollouts(FakeAdapter(T), DO, rtgs=(-1.0, 0.5), n_episodes=3, seed=40, n_envs=4, max_steps=30,
                          progress=False)
    cal = calibrate(FakeAdapter(T), DO, rtgs=(-1.0, 0.5), n_episodes=3, seed=40, n_envs=2, max_steps=30, progress=False)
    assert traj.n_episodes == 6 and traj.policies == ("dt rtg=-1",) * 3 + ("dt rtg=0.5",) * 3
    np.testing.assert_allclose(traj.returns(), cal.returns.reshape(-1))
    for k, e in enumerate(traj.episodes()):
        rtg, j = (-1.0, 0.5)[k // 3], k % 3
        rows, ret, length, outcome = replay(rtg, 40 + j, 30, T)
        assert e.seed == 40 + j and e.length == length and e.outcome == outcome
        assert e.actions.tolist() == [policy(o, rtg) for o in e.observations]
        np.testing.assert_allclose(e.rtgs, rtg)  # sparse reward: the conditioning RTG is constant until the end
    # the recorded logits are the model's output on the windows rebuilt from the record
    win, _ = traj.windows(np.arange(traj.n_steps), T, 3, rtgs=traj.rtgs)
    np.testing.assert_array_equal(traj.logits, FakeAdapter(T).forward(win).numpy())


def test_exploring_rollouts_do_not_depend_on_n_envs():
    kw = dict(rtgs=(0.0, 0.9), n_episodes=3, seed=5, max_steps=25, epsilon=0.3, progress=False)
    a = record_rollouts(FakeAdapter(2), DO, n_envs=1, **kw)
    b = record_rollouts(FakeAdapter(2), DO, n_envs=5, **kw)
    np.testing.assert_array_equal(a.actions, b.actions)
    np.testing.assert_array_equal(a.observations, b.observations)
    greedy = np.array([policy(o, r) for o, r in zip(a.observations, a.rtgs)])
    off = (a.actions != greedy).mean()
    assert 0.05 < off < 0.4  # about epsilon * 2/3 of the steps take another action than the greedy one
    with pytest.raises(ValueError, match="epsilon"):
        record_rollouts(FakeAdapter(2), DO, epsilon=1.5, progress=False)


def test_old_name_model_rollouts_warns_and_records_the_same():
    from dtwidgets.data.rollouts import model_rollouts

    kw = dict(rtgs=(0.9,), n_episodes=2, seed=7, max_steps=15, n_envs=2, progress=False)
    with pytest.warns(DeprecationWarning, match="renamed record_rollouts"):
        old = model_rollouts(FakeAdapter(2), DO, **kw)
    new = record_rollouts(FakeAdapter(2), DO, **kw)
    np.testing.assert_array_equal(old.actions, new.actions)
    np.testing.assert_array_equal(old.observations, new.observations)


def test_collect_episode_range_is_a_slice_of_the_full_run(small_traj):
    mix = {"bfs": 0.3, "bfs:0.2": 0.1, "survivor": 0.2, "suicidal": 0.3, "random": 0.1}
    part = collect_trajectories(DO, n_episodes=24, policy_mix=mix, seed=7, n_envs=2, max_steps=60, progress=False,
                                episodes=range(5, 9))
    full = small_traj.select(np.arange(5, 9))
    assert part.policies == full.policies and part.seeds.tolist() == [12, 13, 14, 15]
    np.testing.assert_array_equal(part.actions, full.actions)
    np.testing.assert_array_equal(part.observations, full.observations)
    with pytest.raises(ValueError, match="episodes"):
        collect_trajectories(DO, n_episodes=4, progress=False, episodes=range(2, 9))


def test_chunked_local_collection_equals_one_call(small_traj):
    from dtwidgets.scale import collect_many

    mix = {"bfs": 0.3, "bfs:0.2": 0.1, "survivor": 0.2, "suicidal": 0.3, "random": 0.1}
    c = collect_many(DO, 24, mix, seed=7, n_envs=3, max_steps=60, chunk_episodes=7, progress=False)
    assert c.policies == small_traj.policies
    for name in ("observations", "actions", "rewards", "episode_lengths", "seeds"):
        np.testing.assert_array_equal(getattr(c, name), getattr(small_traj, name))


def test_backend_argument_is_checked():
    with pytest.raises(ValueError, match="backend"):
        collect_trajectories(DO, 2, "random", max_steps=10, backend="dask", progress=False)
    with pytest.raises(ValueError, match="backend"):
        calibrate(FakeAdapter(1), DO, rtgs=(0.0,), n_episodes=1, max_steps=10, backend="dask", progress=False)

    class OtherEnv(type(FakeAdapter(1))):  # not an EnvAdapter the workers could rebuild
        pass
    with pytest.raises(TypeError, match="MiniGrid id"):
        from dtwidgets.scale import env_id_and_steps

        env_id_and_steps(OtherEnv(), None)


def test_local_backend_imports_no_ray():
    code = ("import sys; sys.modules['ray'] = None\n"  # any `import ray` now raises ImportError
            "from dtwidgets.data import collect_trajectories, calibrate\n"
            "from tests.data.test_calibration import FakeAdapter\n"
            "t = collect_trajectories('MiniGrid-Dynamic-Obstacles-8x8-v0', 2, 'random', max_steps=10, progress=False, "
            "backend='local')\n"
            "c = calibrate(FakeAdapter(1), 'MiniGrid-Dynamic-Obstacles-8x8-v0', rtgs=(0.0,), n_episodes=2, max_steps=10, "
            "progress=False, backend='local')\n"
            "print(t.n_episodes, c.n_finished.tolist())")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert out.returncode == 0, out.stderr[-2000:]
    assert out.stdout.split() == ["2", "[2]"]

"""Scale-out backends: chunked local runs equal one plain run; Ray gives identical results for the same
seeds. The Ray tests skip when Ray is not installed, unless DTW_REQUIRE_RAY=1 (CI), where they fail."""
from __future__ import annotations

import os

import numpy as np
import pytest

from dtwidgets.scale import calibrate_many, check_backend, collect_many, map_tasks

from .conftest import ENV_ID, FAST


def _ray():
    if os.environ.get("DTW_REQUIRE_RAY") == "1":
        import ray  # noqa: F401  (must be installed in CI)

        return ray
    return pytest.importorskip("ray")


def _square(x, shared):
    return x * x + shared


@pytest.fixture(scope="module")
def two_models(run_dir):
    from dtwidgets.dynamics import load_series

    s = load_series(run_dir)
    return [s[len(s) // 2].path, s[-1].path]


def test_local_chunked_calibration_equals_one_run(two_models):
    from dtwidgets.data import calibrate
    from dtwidgets.scale import model_from_bytes, model_bytes

    res = calibrate_many(two_models, ENV_ID, rtgs=(-1.0, 0.9), n_episodes=5, seed=123, n_envs=8, max_steps=40,
                         chunk_episodes=2, progress=False)
    for path, r in zip(two_models, res):
        ref = calibrate(model_from_bytes(model_bytes(path)), ENV_ID, rtgs=(-1.0, 0.9), n_episodes=5, n_envs=8,
                        max_steps=40, seed=123, progress=False)
        np.testing.assert_array_equal(r.outcomes, ref.outcomes)
        np.testing.assert_array_equal(r.lengths, ref.lengths)
        np.testing.assert_allclose(r.returns, ref.returns)


def test_local_chunked_collection_is_reproducible():
    a = collect_many(ENV_ID, 6, "random", seed=3, n_envs=2, max_steps=20, chunk_episodes=4, progress=False)
    b = collect_many(ENV_ID, 6, "random", seed=3, n_envs=2, max_steps=20, chunk_episodes=4, progress=False)
    assert a.n_episodes == 6 and list(a.seeds) == [3 + k for k in range(6)]
    np.testing.assert_array_equal(a.actions, b.actions)
    np.testing.assert_array_equal(a.observations, b.observations)


def test_backend_validation():
    with pytest.raises(ValueError, match="backend"):
        check_backend("dask")
    assert map_tasks(_square, [1, 2, 3], 10, progress=False) == [11, 14, 19]


def test_ray_matches_local(two_models, run_dir, held_out, env):
    _ray()
    from dtwidgets.dynamics import CheckpointSeries, dynamics, load_series

    assert map_tasks(_square, [1, 2, 3], 10, backend="ray", progress=False, num_cpus=2) == [11, 14, 19]
    kw = dict(rtgs=(-1.0, 0.9), n_episodes=4, seed=7, n_envs=8, max_steps=40, chunk_episodes=2, progress=False)
    loc = calibrate_many(two_models, ENV_ID, backend="local", **kw)
    ray_ = calibrate_many(two_models, ENV_ID, backend="ray", **kw)
    for a, b in zip(loc, ray_):
        np.testing.assert_array_equal(a.outcomes, b.outcomes)
        np.testing.assert_allclose(a.returns, b.returns)
    ca = collect_many(ENV_ID, 4, "random", seed=1, n_envs=2, max_steps=20, chunk_episodes=2, progress=False)
    cb = collect_many(ENV_ID, 4, "random", seed=1, n_envs=2, max_steps=20, chunk_episodes=2, backend="ray",
                      progress=False)
    np.testing.assert_array_equal(ca.actions, cb.actions)
    # the public functions take backend= directly: the same result as one local call with the same seeds
    from dtwidgets.data import calibrate, collect_trajectories
    from dtwidgets.scale import model_from_bytes, model_bytes

    mix = {"bfs:0.2": 0.5, "random": 0.5}
    la, ra = (collect_trajectories(env, 5, mix, seed=4, n_envs=2, progress=False, backend=b) for b in ("local", "ray"))
    assert la.policies == ra.policies
    np.testing.assert_array_equal(la.actions, ra.actions)
    np.testing.assert_array_equal(la.observations, ra.observations)
    m = model_from_bytes(model_bytes(two_models[1]))
    lc, rc = (calibrate(m, env, rtgs=(-1.0, 0.9), n_episodes=3, seed=9, n_envs=4, progress=False, backend=b)
              for b in ("local", "ray"))
    np.testing.assert_array_equal(lc.outcomes, rc.outcomes)
    np.testing.assert_array_equal(lc.lengths, rc.lengths)
    np.testing.assert_allclose(lc.returns, rc.returns)
    s = load_series(run_dir)
    two = CheckpointSeries(s.checkpoints[-2:], s.directory)
    fast = {**FAST, "n_episodes": 2}
    d_loc = dynamics(two, held_out, env, parts=("loss", "attribution", "calibration", "probes"), **fast)
    d_ray = dynamics(two, held_out, env, parts=("loss", "attribution", "calibration", "probes"), backend="ray", **fast)
    for ra, rb in zip(d_loc.records, d_ray.records):
        assert ra["calibration"] == rb["calibration"] and ra["probes"] == rb["probes"]
        assert ra["loss"]["loss"] == pytest.approx(rb["loss"]["loss"], rel=1e-6)
        np.testing.assert_allclose(ra["attribution"]["values"], rb["attribution"]["values"], atol=1e-5)


def test_ray_start_is_retried_with_a_long_agent_timeout(monkeypatch):
    """A Ray start that times out (a loaded machine) is shut down and retried; a local start gets a long
    agent timeout. A stand-in ``ray`` module records the calls (no Ray needed)."""
    import sys
    import types

    from dtwidgets import scale

    calls = []

    def init(**kw):
        calls.append(("init", kw))
        if sum(c[0] == "init" for c in calls) < 3:
            raise Exception("The current node timed out during startup.")

    fake = types.SimpleNamespace(is_initialized=lambda: False, init=init, shutdown=lambda: calls.append(("shutdown",)))
    monkeypatch.setitem(sys.modules, "ray", fake)
    monkeypatch.delenv("RAY_ADDRESS", raising=False)
    scale.ray_init(num_cpus=2)
    assert [c[0] for c in calls] == ["init", "shutdown", "init", "shutdown", "init"]
    kw = calls[-1][1]
    assert kw["num_cpus"] == 2 and kw["_system_config"]["agent_register_timeout_ms"] >= 60_000
    calls.clear()
    fake.init = lambda **kw: (calls.append(("init", kw)), (_ for _ in ()).throw(Exception("no node")))
    with pytest.raises(RuntimeError, match="3 attempts.*no node"):
        scale.ray_init()
    monkeypatch.setenv("RAY_ADDRESS", "127.0.0.1:6379")  # joining a cluster: no local-only settings
    calls.clear()
    fake.init = lambda **kw: calls.append(("init", kw))
    scale.ray_init()
    assert "_system_config" not in calls[0][1]

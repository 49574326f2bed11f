"""Trajectories: offsets, returns/RTG, windows (make_window convention), bit-exact versioned .npz files."""
from __future__ import annotations

import json
import zipfile

import numpy as np
import pytest
import torch

from dtwidgets.adapters import make_window
from dtwidgets.adapters.schema import CODE_LIMITS
from dtwidgets.data.trajectories import FORMAT_VERSION, Trajectories, TrajectoryFileError


def toy(rtgs=False, logits=False) -> Trajectories:
    rng = np.random.default_rng(0)
    lengths = [3, 1, 4]
    eps = []
    for k, n in enumerate(lengths):
        rew = np.zeros(n, np.float32)
        term = np.zeros(n, bool)
        trunc = np.zeros(n, bool)
        if k == 0:
            rew[-1], term[-1] = 0.973, True
        elif k == 1:
            rew[-1], term[-1] = -1.0, True
        else:
            trunc[-1] = True
        eps.append({"observations": rng.integers(0, CODE_LIMITS, (n, 7, 7, 3)), "actions": rng.integers(0, 3, n),
                    "rewards": rew, "terminated": term, "truncated": trunc, "seed": 10 + k, "policy": f"p{k}",
                    "rtgs": np.full(n, 0.9) if rtgs else None, "logits": rng.normal(size=(n, 3)) if logits else None})
    return Trajectories.from_episodes(eps, env_id="MiniGrid-Dynamic-Obstacles-8x8-v0", max_steps=1000,
                                      metadata={"note": "toy"})


def test_offsets_returns_rtg_outcomes():
    t = toy()
    assert t.n_steps == 8 and t.n_episodes == 3
    assert t.episode_starts.tolist() == [0, 3, 4] and t.episode_lengths.tolist() == [3, 1, 4]
    assert t.observations.dtype == np.uint8 and t.actions.dtype == np.int64 and t.rewards.dtype == np.float32
    assert t.timesteps.tolist() == [0, 1, 2, 0, 0, 1, 2, 3]
    np.testing.assert_allclose(t.returns(), [0.973, -1.0, 0.0])
    np.testing.assert_allclose(t.rtg(), [0.973] * 3 + [-1.0] + [0.0] * 4)
    assert t.outcomes().tolist() == ["goal", "collision", "timeout"]
    eps = list(t.episodes())
    assert [e.length for e in eps] == [3, 1, 4] and eps[0].seed == 10 and eps[2].policy == "p2"
    assert eps[0].outcome == "goal" and eps[1].ret == -1.0
    assert t.select([2, 0]).returns().tolist() == pytest.approx([0.0, 0.973])


def test_rtg_is_reward_to_go_for_dense_rewards():
    t = toy()
    t.rewards[4:8] = [0.5, 0.25, 0.0, 1.0]
    np.testing.assert_allclose(t.rtg()[4:], [1.75, 1.25, 1.0, 1.0])


def test_save_load_bit_exact(tmp_path):
    for kw in ({}, {"rtgs": True, "logits": True}):
        t = toy(**kw)
        p = t.save(tmp_path / "x.npz")
        u = Trajectories.load(p)
        for name in ("observations", "actions", "rewards", "terminated", "truncated", "timesteps",
                     "episode_starts", "episode_lengths", "seeds", "rtgs", "logits"):
            a, b = getattr(t, name), getattr(u, name)
            if a is None:
                assert b is None
                continue
            assert a.dtype == b.dtype and a.shape == b.shape and a.tobytes() == b.tobytes(), name
        assert (u.env_id, u.max_steps, u.policies, u.metadata) == (t.env_id, t.max_steps, t.policies, t.metadata)
    # no pickled objects in the archive
    with np.load(p, allow_pickle=False) as z:
        assert all(z[k].dtype != object for k in z.files)


def test_load_errors(tmp_path):
    with pytest.raises(FileNotFoundError, match="no such file"):
        Trajectories.load(tmp_path / "missing.npz")
    bad = tmp_path / "bad.npz"
    bad.write_bytes(b"not a zip")
    with pytest.raises(TrajectoryFileError, match="could not read"):
        Trajectories.load(bad)
    other = tmp_path / "other.npz"
    np.savez(other, a=np.zeros(3))
    with pytest.raises(TrajectoryFileError, match="'meta'"):
        Trajectories.load(other)
    # a newer format version is refused with a clear message
    p = toy().save(tmp_path / "v.npz")
    with np.load(p, allow_pickle=False) as z:
        data = {k: z[k] for k in z.files}
    meta = json.loads(str(data["meta"][0]))
    meta["version"] = FORMAT_VERSION + 1
    data["meta"] = np.array([json.dumps(meta)])
    np.savez(tmp_path / "v2.npz", **data)
    with pytest.raises(TrajectoryFileError, match="version"):
        Trajectories.load(tmp_path / "v2.npz")
    meta["version"], meta["format"] = FORMAT_VERSION, "something-else"
    data["meta"] = np.array([json.dumps(meta)])
    np.savez(tmp_path / "v3.npz", **data)
    with pytest.raises(TrajectoryFileError, match="format"):
        Trajectories.load(tmp_path / "v3.npz")
    # pickled object arrays are refused, not executed
    np.savez(tmp_path / "obj.npz", meta=np.array([{"a": 1}], dtype=object))
    with pytest.raises(TrajectoryFileError):
        Trajectories.load(tmp_path / "obj.npz")
    # missing arrays are named
    meta["format"] = "dtwidgets-trajectories"
    data["meta"] = np.array([json.dumps(meta)])
    del data["actions"]
    np.savez(tmp_path / "v4.npz", **data)
    with pytest.raises(TrajectoryFileError, match="actions"):
        Trajectories.load(tmp_path / "v4.npz")
    assert zipfile.is_zipfile(p)


def test_validation_errors():
    t = toy()
    with pytest.raises(ValueError, match="contiguous"):
        Trajectories(**{**_fields(t), "episode_starts": np.array([0, 2, 4])})
    with pytest.raises(ValueError, match="last step"):
        term = t.terminated.copy()
        term[0] = True
        Trajectories(**{**_fields(t), "terminated": term})


def _fields(t):
    return {k: getattr(t, k) for k in ("observations", "actions", "rewards", "terminated", "truncated", "timesteps",
                                       "episode_starts", "episode_lengths", "seeds", "env_id", "max_steps")}


@pytest.mark.parametrize("T", [1, 3])
def test_windows_match_make_window(T):
    t = toy()
    pad = 3
    rtg = t.rtg()
    ends = np.arange(t.n_steps)
    win, targets = t.windows(ends, T, pad)
    for b, e in enumerate(ends):
        ep = int(np.searchsorted(t.episode_starts, e, side="right") - 1)
        s = int(t.episode_starts[ep])
        ref = make_window(t.observations[s:e + 1], rtg[s:e + 1], t.timesteps[s:e + 1], t.actions[s:e],
                          n_timesteps=T, pad_action=pad)
        for f in ("observations", "actions", "rtgs", "timesteps", "n_pad"):
            assert torch.equal(getattr(win, f)[b], getattr(ref, f)[0]), (f, e)
        k = min(T, e - s + 1)
        want = [-100] * (T - k) + t.actions[e - k + 1:e + 1].tolist()
        assert targets[b].tolist() == want


def test_windows_errors():
    t = toy()
    with pytest.raises(IndexError, match="step indices"):
        t.windows([99], 1, 3)


def _rewrite(src, dst, meta_fn=None, arrays_fn=None):
    """Copy a saved trajectories file, editing its metadata dict and/or arrays (a hostile or broken file)."""
    with np.load(src, allow_pickle=False) as z:
        data = {k: z[k] for k in z.files}
    meta = json.loads(str(data.pop("meta")[0]))
    if meta_fn:
        meta_fn(meta)
    if arrays_fn:
        arrays_fn(data)
    np.savez(dst, meta=np.array([json.dumps(meta)]), **data)
    return dst


def _final(t: Trajectories, **over) -> dict:
    f = {"observation": t.observations[-1].tolist(), "rtg": 0.5, "timestep": 3, "done": False, "outcome": None,
         "logits": [0.1, 0.2, 0.3]}
    f.update(over)
    return f


@pytest.mark.parametrize("edit, msg", [
    (lambda f: f.pop("rtg"), r"metadata\[\"final\"\] with keys \['observation', 'rtg', 'timestep', 'done', 'outcome'\], "
                             r"got \[.*\] \(missing \['rtg'\]\)"),
    (lambda f: f.update(rtg="high"), r"metadata\[\"final\"\]\[\"rtg\"\] to be a finite number, got 'high'"),
    (lambda f: f.update(timestep=-2), r"metadata\[\"final\"\]\[\"timestep\"\] to be an integer >= 0, got -2"),
    (lambda f: f.update(outcome="<img src=x onerror=alert(1)>", done=True),
     r"metadata\[\"final\"\]\[\"outcome\"\] in \('goal', 'collision', 'timeout'\) or null, got '<img"),
    (lambda f: f.update(done=True), r"metadata\[\"final\"\]\[\"outcome\"\] set exactly when done, got done=True, outcome=None"),
    (lambda f: f.update(observation=np.zeros((5, 5, 3), int).tolist()),
     r"metadata\[\"final\"\]\[\"observation\"\] of shape \(7, 7, 3\) \(the observations' grid\), got \(5, 5, 3\)"),
    (lambda f: f["observation"][2][4].__setitem__(0, 300),
     r"metadata\[\"final\"\]\[\"observation\"\] to hold integer MiniGrid codes .*got object code 300 \(too large: object codes are 0\.\.10\) at cell \[x=2, y=4, channel 0\]"),
    (lambda f: f.update(logits=[1.0, None]), r"metadata\[\"final\"\]\[\"logits\"\] to be null or \S+ finite numbers, got \[1\.0, None\]"),
])
def test_malformed_final_state_is_refused_at_load(tmp_path, edit, msg):
    t = toy(rtgs=True, logits=True)
    good = Trajectories(**{**_fields(t), "metadata": {"final": _final(t)}})  # a well-formed one is accepted
    src = good.save(tmp_path / "good.npz")
    assert Trajectories.load(src).metadata["final"]["rtg"] == 0.5

    def hostile(meta):
        edit(meta["metadata"]["final"])

    bad = _rewrite(src, tmp_path / "bad.npz", meta_fn=hostile)
    with pytest.raises(TrajectoryFileError, match=r"inconsistent trajectories in bad\.npz: invalid Trajectories: expected "
                                                  r"(.*; expected )?" + msg):
        Trajectories.load(bad)


def test_file_observations_with_invalid_codes_or_values(tmp_path):
    src = toy(rtgs=True).save(tmp_path / "t.npz")

    def codes(d):
        d["observations"][4, 1, 2, 1] = 9  # colour 9

    with pytest.raises(TrajectoryFileError, match=r"codes\.npz: .*observations to hold integer MiniGrid codes .*got colour "
                                                  r"code 9 \(too large: colour codes are 0\.\.5\) at cell \[x=1, y=2, channel 1\] "
                                                  r"of observation \[4\]"):
        Trajectories.load(_rewrite(src, tmp_path / "codes.npz", arrays_fn=codes))

    def nan_rtg(d):
        d["rtgs"][2] = np.nan

    with pytest.raises(TrajectoryFileError, match=r"nanrtg\.npz: .*expected finite rtgs, got 1 NaN/Inf values"):
        Trajectories.load(_rewrite(src, tmp_path / "nanrtg.npz", arrays_fn=nan_rtg))


def test_malformed_top_level_metadata_names_the_file(tmp_path):
    src = toy().save(tmp_path / "t.npz")
    bad = _rewrite(src, tmp_path / "m.npz", meta_fn=lambda m: (m.pop("env_id"), m.update(max_steps="1000")))
    with pytest.raises(TrajectoryFileError, match=r"invalid metadata in m\.npz: expected env_id to be a string, got None; "
                                                  r"expected max_steps to be an integer, got '1000'"):
        Trajectories.load(bad)


def test_grid_shape_is_checked_against_a_model_view():
    t = toy()
    t.check_grid((7, 7))
    with pytest.raises(ValueError, match=r"replay\.npz: expected observations on a \(5, 5\) grid \(the model's view\), "
                                         r"got \(7, 7\)"):
        t.check_grid((5, 5), where="replay.npz")


def test_lossy_casts_are_refused_not_made():
    t = toy()
    obs = t.observations.astype(np.float32)
    assert Trajectories(**{**_fields(t), "observations": obs}).observations.tobytes() == t.observations.tobytes()
    obs[2, 3, 5, 0] = 0.8  # uint8 would make it 0
    with pytest.raises(ValueError, match=r"Trajectories observations: .*value 0\.8.* at index \[2, 3, 5, 0\]"):
        Trajectories(**{**_fields(t), "observations": obs})
    for name, value, what in (("actions", 1.5, "whole numbers"), ("timesteps", 2.5, "whole numbers"),
                              ("terminated", 2, "0/1")):
        a = getattr(t, name).astype(np.float64 if name != "terminated" else np.int64)
        a[0] = value
        with pytest.raises(ValueError, match=rf"Trajectories {name}: expected .*\({what}\), got {value}"):
            Trajectories(**{**_fields(t), name: a})
    eps = [{"observations": np.full((2, 7, 7, 3), 0.5), "actions": [0, 1], "rewards": [0, 0],
            "terminated": [False, False], "truncated": [False, True]}]
    with pytest.raises(ValueError, match=r"episode 0 observations: expected uint8 observation codes"):
        Trajectories.from_episodes(eps, env_id="MiniGrid-Dynamic-Obstacles-8x8-v0", max_steps=10)

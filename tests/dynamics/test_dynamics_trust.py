"""The dynamics cache and checkpoint series are untrusted: an edited, corrupted or wrong-typed cache
entry is recomputed (never shown), a failure at checkpoint k keeps what was measured, and errors name
the real checkpoint file and step."""
from __future__ import annotations

import json
import shutil

import numpy as np
import pytest

from dtwidgets.dynamics import dynamics, load_series
from dtwidgets.model.checkpoint import CheckpointError

from .conftest import ENV_ID

LOSS_ONLY = dict(parts=("loss",), progress=False)


def _loss_entries(cache):
    return sorted(cache.glob("*/loss-*.json"))


def test_an_edited_cached_number_is_recomputed_not_shown(run_dir, held_out, env, tmp_path):
    cache = tmp_path / "cache"
    first = dynamics(run_dir, held_out, env, cache_dir=cache, **LOSS_ONLY)
    entries = _loss_entries(cache)
    assert len(entries) == len(first.steps)
    entry = json.loads(entries[3].read_text())
    key = next(k for k, v in entry["values"].items() if isinstance(v, float))
    entry["values"][key] = 0.0001  # the edit of the issue: 0.6678 -> 0.0001, digest left as it was
    entries[3].write_text(json.dumps(entry))
    with pytest.warns(UserWarning, match=r"does not match what was computed .*recomputing"):
        again = dynamics(run_dir, held_out, env, cache_dir=cache, **LOSS_ONLY)
    assert again.computed[3] == ["loss"] and all(not c for i, c in enumerate(again.computed) if i != 3)
    assert again.part("loss", 3)[key] == first.part("loss", 3)[key] != 0.0001


@pytest.mark.parametrize("bad", ["hello", {}, [1, 2], None, "{not json"])
def test_wrong_typed_or_corrupt_entries_are_recomputed(run_dir, held_out, env, tmp_path, bad):
    cache = tmp_path / "cache"
    first = dynamics(run_dir, held_out, env, cache_dir=cache, **LOSS_ONLY)
    path = _loss_entries(cache)[0]
    if bad == "{not json":
        path.write_text(bad)
    else:
        entry = json.loads(path.read_text())
        entry["values"] = bad
        path.write_text(json.dumps(entry))
    with pytest.warns(UserWarning, match="recomputing"):
        again = dynamics(run_dir, held_out, env, cache_dir=cache, **LOSS_ONLY)
    assert again.computed[0] == ["loss"]
    m0, m1 = first.metrics(), again.metrics()
    for name in m0:
        np.testing.assert_array_equal(m0[name], m1[name])


def test_an_old_style_cache_entry_without_digest_is_recomputed(run_dir, held_out, env, tmp_path):
    cache = tmp_path / "cache"
    dynamics(run_dir, held_out, env, cache_dir=cache, **LOSS_ONLY)
    path = _loss_entries(cache)[1]
    path.write_text(json.dumps(json.loads(path.read_text())["values"]))  # the bare values, as before
    with pytest.warns(UserWarning, match="recomputing"):
        again = dynamics(run_dir, held_out, env, cache_dir=cache, **LOSS_ONLY)
    assert again.computed[1] == ["loss"]


def test_an_attribution_entry_saved_with_the_old_direction_key_is_still_read(run_dir, held_out, env, tmp_path):
    """Entries are written with ``pair_label``; one a user saved with the old ``direction`` key (and its
    own valid digest) is read as it is, not recomputed, and the view still names the pair."""
    import hashlib

    from dtwidgets.compositions import TrainingDynamics
    from dtwidgets.dynamics import CheckpointSeries

    series = load_series(run_dir)
    last = CheckpointSeries(series.checkpoints[-1:], series.directory)
    cache, opts = tmp_path / "cache", dict(parts=("attribution",), scenarios=2, progress=False)
    first = dynamics(last, held_out, env, cache_dir=cache, **opts)
    (path,) = cache.glob("*/attribution-*.json")
    entry = json.loads(path.read_text())
    values = entry["values"]
    assert "direction" not in values and values["pair_label"] == first.part("attribution", 0)["pair_label"]
    names = last[0].load().action_names
    assert values["pair_label"] == f"{names[-1]} − {names[0]}"  # the default pair: last action vs first
    values["direction"] = values.pop("pair_label")  # as written before the rename
    body = json.dumps(values, sort_keys=True, allow_nan=True)
    entry["sha256"] = hashlib.sha256(f"{entry['format']}\n{path.name}\n{body}".encode()).hexdigest()
    path.write_text(json.dumps(entry))
    again = dynamics(last, held_out, env, cache_dir=cache, **opts)
    assert again.computed == [[]] and again.part("attribution", 0)["direction"] == f"{names[-1]} − {names[0]}"
    assert TrainingDynamics(again).view.attribution_title.startswith(
        f"direct logit attribution of {names[-1]} − {names[0]} (mean over 2 scenarios)")


def _copy_run(run_dir, tmp_path):
    src = run_dir / "checkpoints" if (run_dir / "checkpoints").is_dir() else run_dir
    dst = tmp_path / "run"
    shutil.copytree(src, dst)
    return dst


def test_a_truncated_checkpoint_names_its_step_and_keeps_earlier_results(run_dir, held_out, env, tmp_path):
    run = _copy_run(run_dir, tmp_path)
    series = load_series(run)
    bad = series[4]
    data = bad.path.read_bytes()
    bad.path.write_bytes(data[: len(data) // 2])
    cache = tmp_path / "cache"
    with pytest.raises(CheckpointError, match=rf"^step {bad.step} \({bad.path.name}\): ") as e:
        dynamics(run, held_out, env, cache_dir=cache, **LOSS_ONLY)
    assert "m.safetensors" not in str(e.value)
    measured = {p.parent.name for p in _loss_entries(cache)}
    assert measured == {c.path.stem for c in series.checkpoints[:4]}
    # once the file is restored only the missing checkpoints are computed
    bad.path.write_bytes(data)
    again = dynamics(run, held_out, env, cache_dir=cache, **LOSS_ONLY)
    assert [bool(c) for c in again.computed] == [False] * 4 + [True] * (len(series) - 4)


def _write_index(run, rows):
    index = run / "index.json"
    meta = json.loads(index.read_text())
    meta["checkpoints"] = rows
    index.write_text(json.dumps(meta))


@pytest.mark.parametrize("change, msg", [
    (lambda r: r[1].update(step=True), r"entry 1 expected \{'step': int >= 0"),
    (lambda r: r[1].update(step=20.0), r"entry 1 expected \{'step': int >= 0"),
    (lambda r: r[1].update(step=-3), r"entry 1 expected \{'step': int >= 0"),
    (lambda r: r[2].update(path=r[1]["path"]), r"expected one file per step, got steps naming the same file"),
    (lambda r: r[2].update(loss="hello"), r"entry 2 \(step \d+\) expected 'loss' to be a number or null"),
])
def test_index_entries_are_checked(run_dir, tmp_path, change, msg):
    run = _copy_run(run_dir, tmp_path)
    rows = json.loads((run / "index.json").read_text())["checkpoints"]
    change(rows)
    _write_index(run, rows)
    with pytest.raises(ValueError, match=msg):
        load_series(run)


def test_calibrate_many_names_the_broken_model(run_dir, tmp_path):
    from dtwidgets.scale import calibrate_many

    series = load_series(run_dir)
    cut = tmp_path / "cut.safetensors"
    data = series[0].path.read_bytes()
    cut.write_bytes(data[: len(data) // 3])
    with pytest.raises(CheckpointError, match=r"^model 1 \(cut\.safetensors\): ") as e:
        calibrate_many([series[0].path, cut], ENV_ID, rtgs=(0.9,), n_episodes=2, n_envs=2, max_steps=10,
                       progress=False)
    assert "m.safetensors" not in str(e.value)

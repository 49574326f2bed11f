"""Hostile and broken trajectory files (issue 23 §3-4): every ``.npy`` header is checked against the
archive before anything is read or allocated, nothing is ever unpickled, and each problem is one
TrajectoryFileError naming the file, the array, what was expected and what the file has."""
from __future__ import annotations

import io
import pickle
import zipfile
from pathlib import Path

import numpy as np
import pytest

from dtwidgets.data.trajectories import Trajectories, TrajectoryFileError

from .test_trajectories import toy


def npy(shape, descr: str, data: bytes = b"", fortran_order=False) -> bytes:
    """A ``.npy`` entry with a hand-written header (nothing checks it) followed by ``data``."""
    f = io.BytesIO()
    np.lib.format.write_array_header_2_0(f, {"shape": shape, "fortran_order": fortran_order, "descr": descr})
    return f.getvalue() + data


def arrays_of(path: Path) -> dict[str, bytes]:
    with zipfile.ZipFile(path) as z:
        return {n: z.read(n) for n in z.namelist()}


def rewrite(src: Path, dst: Path, drop=(), **entries) -> Path:
    """A copy of the archive ``src`` with some ``name.npy`` entries replaced (raw bytes or arrays) or dropped."""
    members = {k: v for k, v in arrays_of(src).items() if k[:-4] not in drop}
    for name, value in entries.items():
        if isinstance(value, np.ndarray):
            f = io.BytesIO()
            np.lib.format.write_array(f, value, allow_pickle=False)
            value = f.getvalue()
        members[name + ".npy"] = value
    with zipfile.ZipFile(dst, "w", zipfile.ZIP_DEFLATED) as z:
        for k, v in members.items():
            z.writestr(k, v)
    return dst


@pytest.fixture
def saved(tmp_path) -> Path:
    return toy(rtgs=True, logits=True).save(tmp_path / "good.npz")


def refused(path: Path, pattern: str) -> str:
    with pytest.raises(TrajectoryFileError, match=pattern) as e:
        Trajectories.load(path)
    assert path.name in str(e.value)
    return str(e.value)


def test_a_huge_declared_shape_is_refused_before_allocating(saved, tmp_path):
    bad = rewrite(saved, tmp_path / "huge.npz", observations=npy((10**12, 7, 7, 3), "|u1"))
    refused(bad, r"huge\.npz: array 'observations' declares shape \(1000000000000, 7, 7, 3\) of uint8 "
                 r"\(147,000,000,000,000 bytes of data\), the file holds 0 bytes")


def test_a_declared_shape_larger_than_the_data_says_so(saved, tmp_path):
    held = toy().observations.tobytes()  # 8 steps
    bad = rewrite(saved, tmp_path / "long.npz", observations=npy((1000, 7, 7, 3), "|u1", held))
    msg = refused(bad, r"array 'observations' declares shape \(1000, 7, 7, 3\) of uint8 \(147,000 bytes of data\), "
                       r"the file holds 1,176 bytes")
    assert "pickle" not in msg and "EOF" not in msg
    bad = rewrite(saved, tmp_path / "short.npz", actions=npy((4,), "<i8", held[:64]))  # more data than declared
    refused(bad, r"array 'actions' declares shape \(4,\) of int64 \(32 bytes of data\), the file holds 64 bytes")


def test_negative_dimensions_are_refused(saved, tmp_path):
    bad = rewrite(saved, tmp_path / "neg.npz", rewards=npy((-8,), "<f4"))
    refused(bad, r"array 'rewards': expected non-negative dimensions, got shape \(-8,\)")


def test_zero_dimensions_are_refused(saved, tmp_path):
    bad = rewrite(saved, tmp_path / "w0.npz", observations=npy((8, 0, 7, 3), "|u1"))
    refused(bad, r"w0\.npz.*expected observations \[N=8, W, H, 3\] \(W, H >= 1\), got \(8, 0, 7, 3\)")
    bad = rewrite(saved, tmp_path / "a0.npz", logits=npy((8, 0), "<f4"))
    refused(bad, r"a0\.npz.*expected logits of shape \(8, n_actions >= 1\), got \(8, 0\)")


def test_object_arrays_are_refused_and_never_unpickled(saved, tmp_path):
    marker = tmp_path / "unpickled"
    payload = pickle.dumps(_Touch(marker))  # unpickling it would create the marker file
    for name in ("actions", "meta"):
        bad = rewrite(saved, tmp_path / f"obj_{name}.npz", **{name: npy((1,), "|O", payload)})
        refused(bad, rf"array '{name}': expected plain numeric data, got dtype object holding Python objects")
    assert not marker.exists()


class _Touch:
    def __init__(self, path):
        self.path = path

    def __reduce__(self):
        return (Path.touch, (self.path,))


def test_fortran_order(saved, tmp_path):
    obs = toy().observations
    f_order = rewrite(saved, tmp_path / "fortran.npz",
                      observations=npy(obs.shape, "|u1", np.asfortranarray(obs).tobytes(order="F"), fortran_order=True))
    np.testing.assert_array_equal(Trajectories.load(f_order).observations, obs)  # the values, not the byte order
    bad = rewrite(saved, tmp_path / "fortran_odd.npz", observations=npy(obs.shape, "|u1", obs.tobytes(), fortran_order=1))
    refused(bad, r"array 'observations' has no readable \.npy header \(fortran_order is not a valid bool: 1\)")
    bad = rewrite(saved, tmp_path / "hdr.npz", actions=b"\x93NUMPY\x01\x00\x10\x00{'shape': (8,), '")
    refused(bad, r"array 'actions' has no readable \.npy header")


@pytest.mark.parametrize("name, descr, expected", [
    ("actions", "<i4", "int64"), ("actions", ">i8", "int64"), ("rewards", "<f8", "float32"),
    ("observations", "<i8", "uint8"), ("terminated", "|u1", "bool"), ("meta", "<i8", "a string"),
])
def test_dtype_mismatches_name_the_array(saved, tmp_path, name, descr, expected):
    t = toy(rtgs=True, logits=True)
    a = np.zeros(1) if name == "meta" else getattr(t, name)
    bad = rewrite(saved, tmp_path / "dtype.npz", **{name: a.astype(np.dtype(descr))})
    refused(bad, rf"array '{name}': expected dtype {expected}, got {np.dtype(descr).str}")


def test_lengths_mismatching_across_arrays(saved, tmp_path):
    t = toy(rtgs=True, logits=True)
    for name, a, pattern in (("rewards", t.rewards[:-1], r"rewards of shape \(8,\), got \(7,\)"),
                             ("rtgs", t.rtgs[:5], r"rtgs of shape \(8,\), got \(5,\)"),
                             ("logits", t.logits[:3], r"logits of shape \(8, n_actions >= 1\), got \(3, 3\)"),
                             ("seeds", t.seeds[:1], r"seeds of shape \(3,\) \(one per episode\), got \(1,\)")):
        refused(rewrite(saved, tmp_path / f"len_{name}.npz", **{name: a}), rf"len_{name}\.npz.*expected {pattern}")


def test_non_finite_rewards_rtgs_and_logits(saved, tmp_path):
    t = toy(rtgs=True, logits=True)
    for name, bad_value in (("rewards", np.nan), ("rtgs", np.nan), ("rtgs", np.inf), ("logits", -np.inf)):
        a = getattr(t, name).copy()
        a.flat[2] = bad_value
        what = "finite or NaN logits, got 1 infinite" if name == "logits" else f"finite {name}, got 1 NaN/Inf"
        refused(rewrite(saved, tmp_path / f"nan_{name}.npz", **{name: a}), rf"nan_{name}\.npz.*expected {what}")
    logits = t.logits.copy()
    logits[1] = np.nan  # NaN logits mean "not computed" (PlaySession.record): kept
    assert np.isnan(Trajectories.load(rewrite(saved, tmp_path / "nan_ok.npz", logits=logits)).logits[1]).all()


def test_unknown_or_duplicate_entries(saved, tmp_path):
    refused(rewrite(saved, tmp_path / "typo.npz", rtg=toy().rtg()), r"expected only the arrays \[.*\] \(\.npy entries\), got \['rtg\.npy'\]")
    bad = tmp_path / "txt.npz"
    with zipfile.ZipFile(bad, "w") as z:
        for k, v in arrays_of(saved).items():
            z.writestr(k, v)
        z.writestr("notes.txt", b"hello")
    refused(bad, r"got \['notes\.txt'\]")
    dup = tmp_path / "dup.npz"
    with pytest.warns(UserWarning, match="Duplicate name"), zipfile.ZipFile(dup, "w") as z:
        for k, v in arrays_of(saved).items():
            z.writestr(k, v)
        z.writestr("actions.npy", arrays_of(saved)["actions.npy"])
    refused(dup, r"expected each array once, got entries \['actions\.npy'\]")


def test_missing_meta_and_good_files_still_load(saved, tmp_path):
    refused(rewrite(saved, tmp_path / "nometa.npz", drop=("meta",)), r"with a 'meta' entry, nometa\.npz has \[")
    t, u = toy(rtgs=True, logits=True), Trajectories.load(saved)
    for name in ("observations", "actions", "rewards", "rtgs", "logits", "episode_starts"):
        assert getattr(u, name).tobytes() == getattr(t, name).tobytes(), name

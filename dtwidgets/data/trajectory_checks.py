"""Checks of what enters a trajectory: observations from an env (:func:`observation_codes`, the one
lossless cast to the protocol's uint8 codes, used by the Explorer's session, lockstep rollouts and
:class:`~dtwidgets.data.Trajectories`), exact casts of the other arrays (:func:`exact_array`), and a
trajectory file's metadata: the top-level fields and ``metadata["final"]`` (the on-screen state a
saved Explorer session restores). The metadata checks return a list of ``"what was expected, got
what"`` strings (empty when all is well); :mod:`dtwidgets.data.trajectories` raises them as one error.
:func:`npz_arrays` reads a file's arrays after checking every ``.npy`` header (dtype, shape) against
the bytes the archive holds, so nothing is allocated for a size the file does not have.
"""
from __future__ import annotations

import json
import math
import os
import zipfile
from pathlib import Path

import numpy as np

from ..adapters.schema import OUTCOMES, check_observation_codes


def observation_codes(obs, where: str = "observation") -> np.ndarray:
    """``obs [..., W, H, C]`` as the protocol's uint8 codes (a new array), cast only when nothing is lost.

    Raises one ValueError naming ``where``, the expected dtype and range (whole numbers 0..255) and the
    first value that a uint8 cast would change (``0.8`` would silently become ``0``), with its index;
    TypeError for non-numeric arrays.
    """
    a = np.asarray(obs.detach().cpu().numpy() if hasattr(obs, "detach") else obs)
    if a.dtype == np.uint8:
        return a.copy()
    if a.dtype.kind not in "biuf":
        raise TypeError(f"{where}: expected uint8 observation codes, got an array of dtype {a.dtype}")
    if a.dtype.kind == "b" or a.size == 0:
        return a.astype(np.uint8)
    with np.errstate(invalid="ignore"):
        bad = (a < 0) | (a > 255)
        if a.dtype.kind == "f":
            bad |= ~np.isfinite(a) | (a != np.floor(a))
    if bad.any():
        idx = tuple(int(i) for i in np.argwhere(bad)[0])
        raise ValueError(f"{where}: expected uint8 observation codes (whole numbers 0..255, e.g. MiniGrid's "
                         f"[W, H, 3] (object, colour, state)), got dtype {a.dtype} with value {a[idx].item()!r} at "
                         f"index {list(idx)} ({int(bad.sum())} value(s) a uint8 cast would change); "
                         "float observations are not supported: convert them to the codes the model reads")
    return a.astype(np.uint8)


def exact_array(a, dtype, name: str) -> np.ndarray:
    """``a`` as a C-contiguous array of ``dtype``; integer and bool targets refuse a lossy cast
    (``1.5`` as an action, ``2`` as a flag, ``2**63`` as an int64) with one ValueError naming ``name``."""
    src, dt = np.asarray(a), np.dtype(dtype)
    if dt.kind in "biu" and src.dtype.kind not in "biu" or dt.kind == "b" and src.dtype.kind != "b":
        if src.dtype.kind not in "biuf":
            raise ValueError(f"{name}: expected {dt} values, got an array of dtype {src.dtype}")
        with np.errstate(invalid="ignore"):
            ok = np.isin(src, (0, 1)) if dt.kind == "b" else np.isfinite(src) & (src == np.floor(src))
        if not ok.all():
            idx = tuple(int(i) for i in np.argwhere(~ok)[0])
            raise ValueError(f"{name}: expected {dt} values ({'0/1' if dt.kind == 'b' else 'whole numbers'}), got "
                             f"{src[idx].item()!r} at index {list(idx)} (dtype {src.dtype}); a cast would change it")
    if dt.kind in "iu" and src.size and src.dtype.kind in "iuf":
        info = np.iinfo(dt)
        lo, hi = src.min(), src.max()
        if lo < info.min or hi > info.max:
            raise ValueError(f"{name}: expected {dt} values in [{info.min}, {info.max}], got min {lo}, max {hi}")
    return np.ascontiguousarray(src, dtype=dt)


def meta_problems(meta: dict) -> list[str]:
    """Type problems of a file's top-level metadata (before anything is built from it)."""
    p = []
    if not isinstance(meta.get("env_id"), str):
        p.append(f"env_id to be a string, got {meta.get('env_id')!r}")
    m = meta.get("max_steps")
    if isinstance(m, bool) or not isinstance(m, int):
        p.append(f"max_steps to be an integer, got {m!r}")
    pol = meta.get("policies")
    if pol is not None and not (isinstance(pol, list) and all(isinstance(x, str) for x in pol)):
        p.append(f"policies to be null or a list of strings, got {type(pol).__name__}")
    if not isinstance(meta.get("metadata") or {}, dict):
        p.append(f"metadata to be a JSON object, got {type(meta.get('metadata')).__name__}")
    return p


_FINAL_KEYS = ("observation", "rtg", "timestep", "done", "outcome")


def final_state_problems(final, obs_shape, n_logits: int | None = None, description: dict | None = None) -> list[str]:
    """What is wrong with a ``metadata["final"]`` entry (``[]`` when nothing is).

    Expected: ``{"observation": [W][H][3] integer codes with the observations' grid, "rtg": finite
    number, "timestep": int >= 0, "done": bool, "outcome": None or "goal"/"collision"/"timeout",
    "logits": None or n_actions finite numbers}``. The observation is checked as the observation
    kind ``description`` says (:meth:`~dtwidgets.adapters.ObservationSchema.describe`; None: codes).
    """
    if not isinstance(final, dict):
        return [f'metadata["final"] to be a JSON object, got {type(final).__name__}']
    missing = [k for k in _FINAL_KEYS if k not in final]
    if missing:
        return [f'metadata["final"] with keys {list(_FINAL_KEYS)}, got {sorted(final)} (missing {missing})']
    p = []
    try:
        obs = np.asarray(final["observation"])
        shape_ok = obs.shape == tuple(obs_shape) and obs.dtype.kind in "biuf"
    except (ValueError, TypeError):
        obs, shape_ok = None, False
    if not shape_ok:
        got = getattr(obs, "shape", type(final["observation"]).__name__)
        p.append(f'metadata["final"]["observation"] of shape {tuple(obs_shape)} (the observations\' grid), got {got}')
    else:
        try:
            if description is None:
                check_observation_codes(obs, 'metadata["final"]["observation"]')
            else:
                from ..adapters.schema import ObservationSchema

                ObservationSchema.from_description(description).check(obs, 'metadata["final"]["observation"]')
        except (TypeError, ValueError) as e:
            p.append('metadata["final"]["observation"] to hold ' + str(e).split(": expected ", 1)[-1])
    rtg = final["rtg"]
    if isinstance(rtg, bool) or not isinstance(rtg, (int, float)) or not np.isfinite(rtg):
        p.append(f'metadata["final"]["rtg"] to be a finite number, got {rtg!r}')
    t = final["timestep"]
    if isinstance(t, bool) or not isinstance(t, int) or t < 0:
        p.append(f'metadata["final"]["timestep"] to be an integer >= 0, got {t!r}')
    if not isinstance(final["done"], bool):
        p.append(f'metadata["final"]["done"] to be true or false, got {final["done"]!r}')
    outcome = final["outcome"]
    if outcome is not None and outcome not in OUTCOMES[:3]:
        p.append(f'metadata["final"]["outcome"] in {OUTCOMES[:3]} or null, got {outcome!r}')
    elif isinstance(final["done"], bool) and final["done"] != (outcome is not None):
        p.append(f'metadata["final"]["outcome"] set exactly when done, got done={final["done"]}, outcome={outcome!r}')
    logits = final.get("logits")
    if logits is not None:
        try:
            la = np.asarray(logits, dtype=np.float64)
            ok = la.ndim == 1 and np.isfinite(la).all() and (n_logits is None or la.shape[0] == n_logits)
        except (ValueError, TypeError):
            ok = False
        if not ok:
            p.append(f'metadata["final"]["logits"] to be null or {n_logits or "n_actions"} finite numbers, got {logits!r:.80}')
    return p


_NPY_VERSIONS = {(1, 0): "read_array_header_1_0", (2, 0): "read_array_header_2_0"}


class TrajectoryFileError(ValueError):
    """A trajectory file could not be read (not an archive, wrong format, newer version, missing or malformed
    arrays); the message names the file, the array, what was expected and what the file has."""


def file_meta(path, format_name: str, max_version: int) -> dict:
    """The JSON ``meta`` entry of the archive at ``path``, checked: format ``format_name``, version
    ``1..max_version`` (read before any other array: a newer version may hold arrays this one does not know)."""
    fname = Path(path).name
    entry = npz_arrays(path, {"meta": None}, format_name, only=("meta",)).get("meta")
    if entry is None:
        with zipfile.ZipFile(path) as zf:
            names = sorted(n.removesuffix(".npy") for n in zf.namelist())
        raise TrajectoryFileError(f"expected a {format_name} file with a 'meta' entry, {fname} has {names}")
    try:
        meta = json.loads(str(entry.reshape(-1)[0]))
    except (ValueError, IndexError) as e:
        raise TrajectoryFileError(f"expected JSON metadata in {fname}: {e}") from None
    if not isinstance(meta, dict) or meta.get("format") != format_name:
        got = meta.get("format") if isinstance(meta, dict) else type(meta).__name__
        raise TrajectoryFileError(f"expected format {format_name!r} in {fname}, got {got!r}")
    version = meta.get("version")
    if not isinstance(version, int) or version > max_version or version < 1:
        raise TrajectoryFileError(f"expected a {format_name} file of version 1..{max_version}, {fname} has "
                                  f"version {version!r} (written by a newer dtwidgets? upgrade to read it)")
    return meta


def npz_arrays(path, dtypes: dict, format_name: str, only: tuple[str, ...] | None = None) -> dict[str, np.ndarray]:
    """The arrays of the ``.npz`` at ``path`` (``{name: array}``; with ``only``, just those present), never unpickling.

    Before any data is read, every entry must be a ``.npy`` array named in ``dtypes`` (``{name:
    expected dtype}``, ``None`` for any string dtype) whose header is readable, of that exact dtype
    (byte order included), with non-negative dimensions, holding no Python objects, and whose declared
    size (``prod(shape) * itemsize`` bytes) equals the data the archive holds for it; the declared
    total must fit this machine's memory. Otherwise one :class:`TrajectoryFileError` naming the file,
    the array, what was expected and what the file has (``format_name`` names the archive kind).
    """
    fname = Path(path).name
    try:
        return _npz_arrays(path, dtypes, fname, only)
    except (zipfile.BadZipFile, OSError, EOFError) as e:
        raise TrajectoryFileError(f"expected a {format_name} .npz archive, could not read {fname}: {e}") from None


def _npz_arrays(path, dtypes: dict, fname: str, only) -> dict[str, np.ndarray]:
    with zipfile.ZipFile(path) as zf:
        infos = zf.infolist()
        names = [i.filename for i in infos]
        dupes = sorted({n for n in names if names.count(n) > 1})
        if dupes:
            raise TrajectoryFileError(f"{fname}: expected each array once, got entries {dupes} more than once")
        if only is not None:
            infos = [i for i in infos if i.filename[:-4] in only and i.filename.endswith(".npy")]
        odd = [i.filename for i in infos if not i.filename.endswith(".npy") or i.filename[:-4] not in dtypes]
        if odd:
            raise TrajectoryFileError(f"{fname}: expected only the arrays {sorted(dtypes)} (.npy entries), got {odd}")
        headers = {i.filename[:-4]: _npy_header(zf, i, dtypes[i.filename[:-4]], fname) for i in infos}
        total = sum(h[3] for h in headers.values())
        memory = _physical_memory()
        if memory is not None and total > memory:
            raise TrajectoryFileError(f"{fname}: its arrays declare {total:,} bytes in all, more than this machine's memory "
                           f"({memory:,} bytes)")
        return {name: _npy_data(zf, name, h, fname) for name, h in headers.items()}


def _npy_header(zf: zipfile.ZipFile, info: zipfile.ZipInfo, want, fname: str):
    """``(shape, fortran_order, dtype, n_bytes, offset)`` of one entry, checked (no data read)."""
    from numpy.lib import format as npy

    name = info.filename[:-4]
    with zf.open(info) as f:
        try:
            version = npy.read_magic(f)
            if version not in _NPY_VERSIONS:
                raise ValueError(f"unsupported .npy version {version}")
            shape, fortran, dtype = getattr(npy, _NPY_VERSIONS[version])(f, max_header_size=10_000)
        except Exception as e:  # untrusted bytes: ValueError, SyntaxError, tokenize errors, zipfile's CRC/EOF errors
            raise TrajectoryFileError(f"{fname}: array {name!r} has no readable .npy header ({e})") from None
        offset = f.tell()
    if dtype.hasobject:
        raise TrajectoryFileError(f"{fname}: array {name!r}: expected plain numeric data, got dtype {dtype} holding Python "
                       "objects (it would need unpickling: refused)")
    ok = dtype.kind == "U" and dtype.fields is None if want is None else dtype == np.dtype(want)
    if not ok:
        raise TrajectoryFileError(f"{fname}: array {name!r}: expected dtype {'a string' if want is None else np.dtype(want)}, "
                       f"got {dtype.str} ({dtype})")
    if any(d < 0 for d in shape):
        raise TrajectoryFileError(f"{fname}: array {name!r}: expected non-negative dimensions, got shape {shape}")
    n_bytes = math.prod(shape) * dtype.itemsize
    held = info.file_size - offset
    if n_bytes != held:
        raise TrajectoryFileError(f"{fname}: array {name!r} declares shape {shape} of {dtype} ({n_bytes:,} bytes of data), "
                       f"the file holds {held:,} bytes for it")
    return shape, fortran, dtype, n_bytes, offset


def _npy_data(zf: zipfile.ZipFile, name: str, header, fname: str) -> np.ndarray:
    """Read one entry's data (its header already checked by :func:`_npy_header`)."""
    shape, fortran, dtype, n_bytes, offset = header
    try:
        with zf.open(name + ".npy") as f:
            f.seek(offset)
            buf = f.read(n_bytes)
    except (zipfile.BadZipFile, EOFError, OSError) as e:
        raise TrajectoryFileError(f"{fname}: array {name!r}: could not read its data ({e})") from None
    if len(buf) != n_bytes:
        raise TrajectoryFileError(f"{fname}: array {name!r} declares {n_bytes:,} bytes of data, the file has {len(buf):,}")
    a = np.frombuffer(buf, dtype=dtype)
    return (a.reshape(shape[::-1]).T if fortran else a.reshape(shape)).copy()


def _physical_memory() -> int | None:
    """Bytes of RAM of this machine (None where the OS does not say)."""
    try:
        return int(os.sysconf("SC_PAGE_SIZE")) * int(os.sysconf("SC_PHYS_PAGES"))
    except (AttributeError, ValueError, OSError):
        return None


#: per-episode lists kept in ``metadata["episode"]`` (one entry per episode; sliced by ``select``)
EPISODE_META_KEYS = ("missions", "outcomes")


def observation_problems(observations: np.ndarray, description) -> list[str]:
    """What is wrong with ``observations [N, ...]`` for the observation kind ``description``
    (:meth:`~dtwidgets.adapters.ObservationSchema.describe`; None: MiniGrid's egocentric
    ``[W, H, 3]`` codes on the observations' grid). ``[]`` when nothing is."""
    from ..adapters.schema import ObservationSchema

    a = observations
    if description is None:
        if a.ndim != 4 or a.shape[-1] != 3 or 0 in a.shape[1:3]:
            return [f"observations [N={a.shape[0]}, W, H, 3] (W, H >= 1), got {a.shape}"]
        schema = ObservationSchema(grid_shape=a.shape[1:3])
    else:
        try:
            schema = ObservationSchema.from_description(description)
        except ValueError as e:
            return [f'metadata["observation"] to describe the observations: {e}']
    if tuple(a.shape[1:]) != schema.observation_shape:
        return [f"observations [N={a.shape[0]}, {', '.join(map(str, schema.observation_shape))}] ({schema.kind}, "
                f"{schema.view}), got {a.shape}"]
    if not a.size:
        return []
    try:
        schema.check(a, "observations")
    except (TypeError, ValueError) as e:
        return [str(e).replace("observations: expected ", "observations to hold ", 1)]
    return []


def episode_meta_problems(episode_meta, n_episodes: int) -> list[str]:
    """What is wrong with ``metadata["episode"]``: ``{"missions": [E strings], "outcomes": [E outcome
    names]}`` (either key optional)."""
    if not isinstance(episode_meta, dict):
        return [f'metadata["episode"] to be a JSON object, got {type(episode_meta).__name__}']
    p = []
    for k, v in episode_meta.items():
        if k not in EPISODE_META_KEYS:
            p.append(f'metadata["episode"] keys in {list(EPISODE_META_KEYS)}, got {k!r}')
        elif not (isinstance(v, list) and len(v) == n_episodes and all(isinstance(x, str) for x in v)):
            p.append(f'metadata["episode"]["{k}"] to be a list of {n_episodes} strings (one per episode)')
        elif k == "outcomes" and not set(v) <= set(OUTCOMES):
            p.append(f'metadata["episode"]["outcomes"] in {OUTCOMES}, got {sorted(set(v) - set(OUTCOMES))}')
    return p


def select_metadata(metadata: dict, idx) -> dict:
    """``metadata`` for the episodes ``idx`` (in that order): per-episode lists sliced, the rest kept."""
    out = dict(metadata)
    if isinstance(metadata.get("episode"), dict):
        out["episode"] = {k: [v[int(i)] for i in idx] for k, v in metadata["episode"].items()}
    return out


def concat_metadata(parts_meta: list, n_episodes: list) -> dict:
    """The first part's metadata with per-episode lists joined (kept only if every part has them)."""
    out = dict(parts_meta[0])
    eps = [m.get("episode") if isinstance(m.get("episode"), dict) else {} for m in parts_meta]
    keys = [k for k in EPISODE_META_KEYS if all(k in e for e in eps)]
    out.pop("episode", None)
    if keys:
        out["episode"] = {k: [x for e in eps for x in e[k]] for k in keys}
    return out

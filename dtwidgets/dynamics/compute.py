"""``dynamics(series, traj, env)``: measurements of every checkpoint of a training run, cached on disk.

Per checkpoint (see :mod:`dtwidgets.dynamics.parts`): ``loss`` (held-out cross-entropy and
accuracy), ``calibration`` (RTG asked vs return), ``attribution`` of a fixed scenario set,
single-component ``ablation`` effects, ``probes`` (concept probe metrics) and, when an SAE is given,
``sae`` reconstruction quality. Each (checkpoint, part) is cached as a JSON file under
``cache_dir/<checkpoint>/<part>-<hash>.json``; the hash covers the checkpoint file (name and content
sha256) and the part's settings, so a re-run computes only what is new. Each entry also stores a
sha256 over its inputs and values: an entry edited on disk, truncated or of the wrong shape is
recomputed (with a warning naming it), never shown. Each checkpoint's results are written as soon as
it completes, so a failure at checkpoint k keeps checkpoints already measured. Tasks run per checkpoint on
the ``local`` or ``ray`` backend (:mod:`dtwidgets.scale`).
"""
from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from ..adapters.device import resolve_device
from .parts import PARTS
from .series import CheckpointSeries, load_series

if TYPE_CHECKING:
    from ..data.trajectories import Trajectories
    from ..probes.concepts import ConceptTable

DEFAULT_CONCEPTS = ("ball ahead", "wall ahead", "goal visible", "agent direction", "obstacles in view")


def _digest(*objs) -> str:
    h = hashlib.sha1()
    for o in objs:
        if isinstance(o, np.ndarray):
            h.update(np.ascontiguousarray(o).tobytes())
        else:
            h.update(json.dumps(o, sort_keys=True, default=str).encode())
    return h.hexdigest()[:12]


def _concept_key(c) -> str:
    fn = getattr(c, "fn", c)
    code = getattr(fn, "__code__", None)
    return f"{getattr(c, 'name', c)}:{hashlib.sha1(code.co_code).hexdigest()[:8] if code else ''}"


@dataclass
class DynamicsContext:
    """Everything a part needs besides the model (shipped once to Ray workers)."""

    traj: "Trajectories"
    env_id: str
    loss_steps: np.ndarray
    scenario_steps: np.ndarray
    pair: tuple
    calibration: dict
    concepts: tuple
    probe_hooks: list | None
    probe_positions: tuple
    probe_control: str
    probe_splits: int
    table: "ConceptTable | None" = None
    sae: Any = None
    sae_hook: str | None = None
    sae_key: str | None = None
    device: str = "cpu"
    """Where each checkpoint runs (``dynamics(device=...)``)."""

    def scenario_window(self, adapter):
        rtgs = np.clip(self.traj.rtg(), *adapter.rtg_range)
        return self.traj.windows(self.scenario_steps, adapter.layout.n_timesteps, adapter.pad_action, rtgs=rtgs)[0]

    def concept_table(self):
        if self.table is None:
            raise RuntimeError("the concept table is computed before the probe tasks run")
        return self.table

    def settings(self, part: str) -> str:
        """Hash of what ``part`` depends on besides the checkpoint."""
        t = self.traj
        data = _digest(t.env_id, t.observations, t.actions, t.rewards, t.episode_lengths)
        per = {"loss": (data, self.loss_steps), "calibration": (self.env_id, self.calibration),
               "attribution": (data, self.scenario_steps, list(self.pair)),
               "ablation": (data, self.scenario_steps, list(self.pair)),
               "probes": (data, [_concept_key(c) for c in self.concepts], self.probe_hooks,
                          list(self.probe_positions), self.probe_control, self.probe_splits),
               "sae": (data, self.sae_hook, self.sae_key)}
        return _digest(part, *per[part])


@dataclass
class Dynamics:
    """Measurements of K checkpoints.

    Attributes:
        steps: ``[K]`` optimiser steps; train_loss: ``[K]`` training loss recorded with each checkpoint.
        records: K dicts ``{part: result dict}`` (see :mod:`dtwidgets.dynamics.parts`).
        parts: the parts computed. computed: ``[K]`` lists of the parts computed in this call (not
            read from the cache).
    """

    steps: np.ndarray
    train_loss: np.ndarray
    records: list
    parts: tuple
    computed: list = field(default_factory=list)

    def part(self, name: str, index: int) -> dict:
        return self.records[index].get(name) or {}

    def metrics(self) -> dict[str, np.ndarray]:
        """Line-chart metrics ``{name: [K] float64}`` (NaN where missing), in display order."""
        from .metrics import flat_metrics

        return flat_metrics(self)

    def phase_transitions(self, min_rel: float = 0.3, z: float = 3.0) -> list[dict]:
        """Metric jumps (see :func:`dtwidgets.dynamics.metrics.find_jumps`)."""
        from .metrics import find_jumps

        out = []
        for name, v in self.metrics().items():
            for i in find_jumps(v, min_rel, z):
                out.append({"metric": name, "index": int(i), "step": int(self.steps[i]),
                            "jump": float(v[i] - v[i - 1])})
        return out


def _task(item, ctx):
    """Compute the missing parts of one checkpoint (runs locally or in a Ray worker)."""
    from ..scale import model_from_bytes

    k, weights, parts, label = item
    adapter = model_from_bytes(weights, label).to(ctx.device)
    return k, {p: PARTS[p](adapter, ctx) for p in parts}


def _as_series(series) -> CheckpointSeries:
    if isinstance(series, CheckpointSeries):
        return series
    return load_series(series)


def _cache_path(cache_dir, ck, part, ctx) -> Path | None:
    if cache_dir is None:
        return None
    if part == "sae" and ctx.sae_key is None:
        return None
    return Path(cache_dir) / ck.path.stem / f"{part}-{_digest(ck.key, ctx.settings(part))}.json"


def dynamics(series, traj, env=None, *, concepts=DEFAULT_CONCEPTS, scenarios: int | list = 8, pair=None,
             rtgs=(-1.0, 0.0, 0.5, 0.9), n_episodes: int = 20, calib_seed: int = 1_000_000, max_steps=None,
             n_envs: int = 32, loss_steps: int = 2048, probe_hooks=None, probe_positions=("state",),
             probe_control: str = "type", probe_splits: int = 5, sae=None, sae_hook: str | None = None,
             sae_key: str | None = None, parts=None, cache_dir=None, backend: str = "local",
             progress: bool = True, device="cpu") -> Dynamics:
    """Measure every checkpoint of ``series``.

    Args:
        series: a :class:`CheckpointSeries` or a run directory (:func:`load_series`).
        traj: held-out :class:`~dtwidgets.data.Trajectories` for the loss, the scenarios and probes.
        env: an :class:`~dtwidgets.adapters.EnvAdapter` replaying ``traj`` (full-grid concepts).
        concepts: probed concepts (see :func:`dtwidgets.probes.concept_table`).
        scenarios: number of evenly spaced steps of ``traj`` (or a list of step indices) whose
            attribution and ablations are tracked.
        pair: ``(a, b)`` actions of the attributed preference logit[a] − logit[b] (default: last action minus first).
        rtgs, n_episodes, calib_seed, max_steps, n_envs: calibration settings (episode ``j`` of every
            RTG and checkpoint resets with ``calib_seed + j``; ``max_steps`` default ``traj.max_steps``).
        loss_steps: held-out steps for the loss (evenly spaced).
        probe_hooks, probe_positions, probe_control, probe_splits: probe sites and settings.
        sae, sae_hook: any object with ``encode``/``decode`` callables on ``[N, d]`` tensors and the
            hook it reads; ``sae_key`` identifies it for the cache (default: a hash of ``W_dec`` when
            present, otherwise SAE results are not cached).
        parts: subset of ``("loss", "calibration", "attribution", "ablation", "probes", "sae")``.
        cache_dir: where results are cached (None = no cache).
        backend: ``"local"`` or ``"ray"`` (one task per checkpoint; weights put in the store once).
        device: where every checkpoint runs (``"cpu"``, ``"cuda"``...; checked first, as :func:`dtwidgets.load`).
    """
    from ..scale import map_tasks

    dev = str(resolve_device(device))
    ser = _as_series(series)
    parts = tuple(parts or [p for p in PARTS if p != "sae" or sae is not None])
    unknown = set(parts) - set(PARTS)
    if unknown or ("sae" in parts and (sae is None or sae_hook is None)):
        raise ValueError(f"expected parts among {tuple(PARTS)} (the 'sae' part needs sae= and sae_hook=), got {parts}")
    ctx = _context(ser, traj, concepts, scenarios, pair, rtgs, n_episodes, calib_seed, max_steps, n_envs,
                   loss_steps, probe_hooks, probe_positions, probe_control, probe_splits, sae, sae_hook, sae_key)
    ctx.device = dev
    records, todo = _read_cache(ser, parts, ctx, cache_dir)
    if any("probes" in t for t in todo):
        from ..probes import concept_table

        ctx.table = concept_table(traj, env, list(concepts))
    items = [(k, ser[k].path.read_bytes(), todo[k], ser[k].label) for k in range(len(ser)) if todo[k]]

    def keep(_, result):
        k, res = result
        records[k].update(res)
        for p, v in res.items():
            _write_entry(_cache_path(cache_dir, ser[k], p, ctx), v)

    map_tasks(_task, items, ctx, backend=backend, progress=progress, desc="dynamics", on_result=keep)
    return Dynamics(np.array(ser.steps), np.array(ser.losses, np.float64), records, parts, todo)


def _context(ser, traj, concepts, scenarios, pair, rtgs, n_episodes, calib_seed, max_steps, n_envs, loss_steps,
             probe_hooks, probe_positions, probe_control, probe_splits, sae, sae_hook, sae_key) -> DynamicsContext:
    first = ser[0].load()
    names = first.action_names
    if pair is None:
        pair = (names[-1], names[0])
    a, b = (pair if isinstance(pair, (tuple, list)) else (pair, None))
    for action in (a, b):  # validate the names early (a clear error before any task runs)
        if action is not None:
            first.action_index(action)
    N = traj.n_steps
    sc = np.linspace(0, N - 1, int(scenarios)).round().astype(np.int64) if isinstance(scenarios, int) \
        else np.asarray(scenarios, np.int64)
    if sc.size == 0 or sc.min() < 0 or sc.max() >= N:
        raise ValueError(f"expected scenario steps in [0, {N - 1}], got {sc.tolist()}")
    if sae is not None and sae_key is None and getattr(sae, "W_dec", None) is not None:
        W = sae.W_dec
        sae_key = _digest(np.asarray(W.detach().cpu() if hasattr(W, "detach") else W, np.float32))
    calib = {"rtgs": [float(r) for r in rtgs], "n_episodes": int(n_episodes), "seed": int(calib_seed),
             "max_steps": int(max_steps or traj.max_steps), "n_envs": int(n_envs)}
    return DynamicsContext(traj, traj.env_id, np.linspace(0, N - 1, min(N, int(loss_steps))).round().astype(np.int64),
                           sc, (a, b), calib, tuple(concepts), None if probe_hooks is None else list(probe_hooks),
                           tuple(probe_positions), probe_control, int(probe_splits), None, sae, sae_hook, sae_key)


CACHE_FORMAT = "dtwidgets.dynamics.cache/2"


def _entry_digest(path: Path, values) -> str:
    """sha256 over the entry's inputs (its file name holds the checkpoint + settings hash) and values."""
    body = json.dumps(values, sort_keys=True, allow_nan=True)
    return hashlib.sha256(f"{CACHE_FORMAT}\n{path.name}\n{body}".encode()).hexdigest()


def _write_entry(path: Path | None, values) -> None:
    if path is None:
        return
    path.parent.mkdir(parents=True, exist_ok=True)
    entry = {"format": CACHE_FORMAT, "sha256": _entry_digest(path, values), "values": values}
    tmp = path.with_suffix(".tmp")
    tmp.write_text(json.dumps(entry, allow_nan=True))
    tmp.replace(path)  # a crash mid-write never leaves a half entry under the real name


def _read_entry(path: Path):
    """The values of a cache entry, or None (with a warning) when it is not exactly what was written."""
    import warnings

    try:
        entry = json.loads(path.read_text())
        ok = (isinstance(entry, dict) and entry.get("format") == CACHE_FORMAT and isinstance(entry.get("values"), dict)
              and entry.get("sha256") == _entry_digest(path, entry["values"]))
    except (ValueError, OSError, UnicodeDecodeError):
        ok = False
    if not ok:
        warnings.warn(f"dynamics cache entry {path} does not match what was computed (edited, corrupted or from "
                      f"another version): recomputing it", stacklevel=3)
        return None
    return entry["values"]


def _read_cache(ser, parts, ctx, cache_dir):
    records, todo = [], []
    for ck in ser:
        rec, missing = {}, []
        for p in parts:
            path = _cache_path(cache_dir, ck, p, ctx)
            values = _read_entry(path) if path is not None and path.is_file() else None
            if values is None:
                missing.append(p)
            else:
                rec[p] = values
        records.append(rec)
        todo.append(missing)
    return records, todo

"""Scale-out backends: run independent tasks (checkpoints, seed chunks) locally or on Ray.

``backend="local"`` (default) runs the tasks one after another in this process; ``backend="ray"``
(optional extra ``dtwidgets[ray]``) submits one Ray task per item, puts shared inputs (model
weights, trajectories) in the object store once, and gathers the results with one ``ray.get``.
Both backends run the *same* task function on the *same* items, so results are identical for the
same seeds. Ray's ``local_mode`` is gone, hence the local path is our own loop.

Model weights travel as safetensors bytes (:func:`model_bytes` / :func:`model_from_bytes`), never
pickled torch modules.
"""
from __future__ import annotations

import os
import tempfile
from pathlib import Path
from typing import Any, Callable, Sequence

import numpy as np

BACKENDS = ("local", "ray")


def check_backend(backend: str) -> str:
    if backend not in BACKENDS:
        raise ValueError(f"expected backend in {BACKENDS}, got {backend!r}")
    if backend == "ray":
        try:
            import ray  # noqa: F401
        except ImportError:
            raise ImportError("backend='ray' needs Ray: pip install 'dtwidgets[ray]' (or pip install ray)") from None
    return backend


def ray_init(num_cpus: int | None = None) -> None:
    """Start (or join) a local Ray runtime without the dashboard; no-op when one is running."""
    import ray

    if ray.is_initialized():
        return
    try:
        ray.init(num_cpus=num_cpus, include_dashboard=False, ignore_reinit_error=True, log_to_driver=False)
    except Exception:  # noqa: BLE001 - Ray gives its raylet 30 s to start; a busy machine can miss that once
        ray.shutdown()
        ray.init(num_cpus=num_cpus, include_dashboard=False, ignore_reinit_error=True, log_to_driver=False)


def map_tasks(fn: Callable[[Any, Any], Any], items: Sequence, shared: Any = None, *, backend: str = "local",
              progress: bool = True, desc: str = "tasks", num_cpus: int | None = None) -> list:
    """``[fn(item, shared) for item in items]`` on the chosen backend, results in item order.

    ``fn`` must be a module-level function (Ray ships it to workers). ``shared`` goes to the object
    store once (Ray) and every task receives it.
    """
    from tqdm.auto import tqdm

    check_backend(backend)
    items = list(items)
    if backend == "local":
        return [fn(it, shared) for it in tqdm(items, desc=desc, disable=not progress, leave=False)]
    import ray

    ray_init(num_cpus)
    ref = ray.put(shared)
    remote = ray.remote(num_cpus=1)(fn)
    refs = [remote.remote(it, ref) for it in items]
    bar = tqdm(total=len(refs), desc=f"{desc} (ray)", disable=not progress, leave=False)
    pending = list(refs)
    while pending:  # progress only; results are gathered with one ray.get below
        done, pending = ray.wait(pending, num_returns=1)
        bar.update(len(done))
    bar.close()
    return ray.get(refs)


def model_bytes(model_or_path) -> bytes:
    """A model (``DecisionTransformer``, ``DTAdapter``) or a ``.safetensors`` path -> the file's bytes."""
    if isinstance(model_or_path, (str, os.PathLike)):
        return Path(model_or_path).read_bytes()
    from .model import save_model

    with tempfile.TemporaryDirectory() as d:
        return save_model(model_or_path, Path(d) / "m.safetensors").read_bytes()


def model_from_bytes(data: bytes):
    """Inverse of :func:`model_bytes`: a :class:`~dtwidgets.model.DTAdapter`."""
    from .model import DTAdapter, load_model

    with tempfile.TemporaryDirectory() as d:
        p = Path(d) / "m.safetensors"
        p.write_bytes(data)
        return DTAdapter(load_model(p))


# ---- calibration over checkpoints x seed chunks ------------------------------------------------------
def _chunks(n: int, size: int) -> list[tuple[int, int]]:
    size = max(1, int(size))
    return [(s, min(n, s + size)) for s in range(0, n, size)]


def _calibration_task(item, shared):
    from .data.calibration import calibrate

    k, (start, stop) = item
    adapter = model_from_bytes(shared["models"][k])
    kw = shared["kwargs"]
    res = calibrate(adapter, shared["env_id"], rtgs=kw["rtgs"], n_episodes=stop - start, n_envs=kw["n_envs"],
                    max_steps=kw["max_steps"], seed=kw["seed"] + start, progress=False)
    return k, start, res.returns, res.outcomes, res.lengths


def calibrate_many(models: Sequence, env_id: str, rtgs=(-1.0, 0.0, 0.5, 0.9), n_episodes: int = 100,
                   seed: int = 1_000_000, *, n_envs: int = 64, max_steps: int = 1000, chunk_episodes: int = 50,
                   backend: str = "local", progress: bool = True) -> list:
    """Calibrate several models (adapters, models or ``.safetensors`` paths) in tasks over models x
    episode chunks. Episode ``j`` of every RTG resets with ``seed + j`` whatever the chunking, so
    every model is compared on the same layouts and the result equals one ``calibrate`` call.

    Returns one :class:`~dtwidgets.data.CalibrationResult` per model.
    """
    from .data.calibration import CalibrationResult

    weights = [model_bytes(m) for m in models]
    chunks = _chunks(int(n_episodes), chunk_episodes)
    items = [(k, c) for k in range(len(weights)) for c in chunks]
    shared = {"models": weights, "env_id": env_id,
              "kwargs": {"rtgs": list(map(float, rtgs)), "n_envs": n_envs, "max_steps": max_steps, "seed": seed}}
    parts = map_tasks(_calibration_task, items, shared, backend=backend, progress=progress, desc="calibrate")
    R = len(rtgs)
    out = []
    for k in range(len(weights)):
        ret = np.full((R, n_episodes), np.nan)
        oc = np.full((R, n_episodes), -1, np.int64)
        ln = np.zeros((R, n_episodes), np.int64)
        for kk, start, r, o, l in parts:
            if kk == k:
                w = r.shape[1]
                ret[:, start:start + w], oc[:, start:start + w], ln[:, start:start + w] = r, o, l
        out.append(CalibrationResult(rtgs=np.asarray(rtgs, np.float64), returns=ret, outcomes=oc, lengths=ln,
                                     env_id=env_id, max_steps=int(max_steps), seed=int(seed),
                                     metadata={"backend": backend, "chunk_episodes": chunk_episodes}))
    return out


# ---- trajectory collection over episode chunks -------------------------------------------------------
def _collect_task(item, shared):
    from .data.collect import collect_trajectories

    start, stop = item
    return collect_trajectories(shared["env_id"], stop - start, shared["policy_mix"], seed=shared["seed"] + start,
                                n_envs=shared["n_envs"], max_steps=shared["max_steps"], progress=False)


def collect_many(env_id: str, n_episodes: int, policy_mix=None, seed: int = 0, *, n_envs: int = 8,
                 max_steps: int = 1000, chunk_episodes: int = 100, backend: str = "local",
                 progress: bool = True):
    """:func:`~dtwidgets.data.collect_trajectories` in episode chunks (chunk starting at episode ``s``
    uses seed ``seed + s``, so episode ``k`` still resets with ``seed + k``), joined in order."""
    from .data.trajectories import Trajectories

    shared = {"env_id": env_id, "policy_mix": policy_mix, "seed": int(seed), "n_envs": n_envs, "max_steps": max_steps}
    parts = map_tasks(_collect_task, _chunks(int(n_episodes), chunk_episodes), shared, backend=backend,
                      progress=progress, desc="collect")
    traj = Trajectories.concatenate(parts)
    traj.metadata.update({"backend": backend, "chunk_episodes": chunk_episodes, "seed": int(seed)})
    return traj

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


#: attempts to start a local Ray runtime before giving up (each can take a minute on a loaded machine)
RAY_START_ATTEMPTS = 3
#: how long the raylet waits for its agent processes (Ray's own default is ~15 s, which a loaded 2-core
#: machine misses: the raylet then aborts and ``ray.init`` fails after its fixed 30 s node-start wait)
RAY_AGENT_TIMEOUT_MS = 180_000


def ray_init(num_cpus: int | None = None) -> None:
    """Start (or join) a local Ray runtime without the dashboard; no-op when one is running.

    A new local runtime gets a long agent start-up timeout (:data:`RAY_AGENT_TIMEOUT_MS`) and no usage
    reporting; a failed start is shut down and retried, up to :data:`RAY_START_ATTEMPTS` times. When
    ``RAY_ADDRESS`` names an existing cluster, Ray joins it and these local settings do not apply.
    """
    import ray

    if ray.is_initialized():
        return
    os.environ.setdefault("RAY_USAGE_STATS_ENABLED", "0")  # no network call at start-up
    kw: dict[str, Any] = dict(num_cpus=num_cpus, include_dashboard=False, ignore_reinit_error=True, log_to_driver=False)
    if not os.environ.get("RAY_ADDRESS"):
        kw["_system_config"] = {"agent_register_timeout_ms": RAY_AGENT_TIMEOUT_MS}
    errors = []
    for _ in range(RAY_START_ATTEMPTS):
        try:
            ray.init(**kw)
            return
        except Exception as e:  # noqa: BLE001 - Ray raises a bare Exception when its node start times out
            errors.append(f"{type(e).__name__}: {e}")
            ray.shutdown()
    raise RuntimeError(f"could not start a local Ray runtime in {RAY_START_ATTEMPTS} attempts (a heavily loaded "
                       f"machine? see /tmp/ray/session_latest/logs); last error: {errors[-1]}")


def map_tasks(fn: Callable[[Any, Any], Any], items: Sequence, shared: Any = None, *, backend: str = "local",
              progress: bool = True, desc: str = "tasks", num_cpus: int | None = None,
              on_result: Callable[[int, Any], None] | None = None) -> list:
    """``[fn(item, shared) for item in items]`` on the chosen backend, results in item order.

    ``fn`` must be a module-level function (Ray ships it to workers). ``shared`` goes to the object
    store once (Ray) and every task receives it. ``on_result(i, result)`` is called as each task
    completes (item order locally, completion order on Ray), before any later task can fail, so a
    caller can keep what was computed (e.g. write it to a cache) when task k raises.
    """
    from tqdm.auto import tqdm

    check_backend(backend)
    items = list(items)
    if backend == "local":
        out = []
        for i, it in enumerate(tqdm(items, desc=desc, disable=not progress, leave=False)):
            out.append(fn(it, shared))
            if on_result is not None:
                on_result(i, out[-1])
        return out
    import ray

    ray_init(num_cpus)
    ref = ray.put(shared)
    remote = ray.remote(num_cpus=1)(fn)
    refs = [remote.remote(it, ref) for it in items]
    index = {r: i for i, r in enumerate(refs)}
    results: dict[int, Any] = {}
    bar = tqdm(total=len(refs), desc=f"{desc} (ray)", disable=not progress, leave=False)
    pending = list(refs)
    while pending:
        done, pending = ray.wait(pending, num_returns=1)
        for r in done:
            results[index[r]] = ray.get(r)
            if on_result is not None:
                on_result(index[r], results[index[r]])
        bar.update(len(done))
    bar.close()
    return [results[i] for i in range(len(refs))]


def model_bytes(model_or_path) -> bytes:
    """A model (``DecisionTransformer``, ``DTAdapter``) or a ``.safetensors`` path -> the file's bytes."""
    if isinstance(model_or_path, (str, os.PathLike)):
        return Path(model_or_path).read_bytes()
    from .model import save_model

    with tempfile.TemporaryDirectory() as d:
        return save_model(model_or_path, Path(d) / "m.safetensors").read_bytes()


def model_from_bytes(data: bytes, label: str | None = None):
    """Inverse of :func:`model_bytes`: a :class:`~dtwidgets.model.DTAdapter`. ``label`` (e.g.
    ``"step 20 (step_000020.safetensors)"``) names the model in a load error, instead of the
    temporary file the bytes pass through."""
    from .model import DTAdapter, load_model
    from .model.checkpoint import CheckpointError

    with tempfile.TemporaryDirectory() as d:
        p = Path(d) / "m.safetensors"
        p.write_bytes(data)
        try:
            return DTAdapter(load_model(p))
        except CheckpointError as e:
            if label is None:
                raise
            raise CheckpointError(f"{label}: " + str(e).replace("m.safetensors", "the file")) from None


def model_label(model_or_path, k: int) -> str:
    """How errors name model ``k`` of a list: its file name when it is a path."""
    if isinstance(model_or_path, (str, os.PathLike)):
        return f"model {k} ({Path(model_or_path).name})"
    return f"model {k} ({type(model_or_path).__name__})"


# ---- calibration over checkpoints x seed chunks ------------------------------------------------------
def _chunks(n: int, size: int) -> list[tuple[int, int]]:
    size = max(1, int(size))
    return [(s, min(n, s + size)) for s in range(0, n, size)]


def _calibration_task(item, shared):
    from .data.calibration import calibrate

    k, (start, stop) = item
    adapter = model_from_bytes(shared["models"][k], shared["labels"][k])
    kw = shared["kwargs"]
    res = calibrate(adapter, shared["env_id"], rtgs=kw["rtgs"], n_episodes=stop - start, n_envs=kw["n_envs"],
                    max_steps=kw["max_steps"], seed=kw["seed"] + start, progress=False)
    return k, start, res.returns, res.outcomes, res.lengths


def calibrate_many(models: Sequence, env_id: str, rtgs=(-1.0, 0.0, 0.5, 0.9), n_episodes: int = 100,
                   seed: int = 1_000_000, *, n_envs: int = 64, max_steps: int = 1000, chunk_episodes: int = 50,
                   backend: str = "local", progress: bool = True, quantiles: tuple[float, float] = (0.1, 0.9)) -> list:
    """Calibrate several models (adapters, models or ``.safetensors`` paths) in tasks over models x
    episode chunks. Episode ``j`` of every RTG resets with ``seed + j`` whatever the chunking, so
    every model is compared on the same layouts and the result equals one ``calibrate`` call.

    Returns one :class:`~dtwidgets.data.CalibrationResult` per model.
    """
    from .data.calibration import CalibrationResult

    weights = [model_bytes(m) for m in models]
    chunks = _chunks(int(n_episodes), chunk_episodes)
    items = [(k, c) for k in range(len(weights)) for c in chunks]
    shared = {"models": weights, "labels": [model_label(m, k) for k, m in enumerate(models)], "env_id": env_id,
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
                                     quantiles=(float(quantiles[0]), float(quantiles[1])), metadata={"backend": backend, "chunk_episodes": chunk_episodes}))
    return out


# ---- trajectory collection over episode chunks -------------------------------------------------------
def _collect_task(item, shared):
    from .data.collect import collect_trajectories

    start, stop = item
    return collect_trajectories(shared["env_id"], shared["n_episodes"], shared["policy_mix"], seed=shared["seed"],
                                n_envs=shared["n_envs"], max_steps=shared["max_steps"], progress=False,
                                episodes=range(start, stop))


def collect_many(env_id: str, n_episodes: int, policy_mix=None, seed: int = 0, *, n_envs: int = 8,
                 max_steps: int = 1000, chunk_episodes: int = 100, backend: str = "local",
                 progress: bool = True):
    """:func:`~dtwidgets.data.collect_trajectories` in tasks over episode chunks, joined in order: the
    same episodes (policies, seeds, actions) as one plain call with the same arguments."""
    from .data.trajectories import Trajectories

    shared = {"env_id": env_id, "n_episodes": int(n_episodes), "policy_mix": policy_mix, "seed": int(seed),
              "n_envs": n_envs, "max_steps": max_steps}
    parts = map_tasks(_collect_task, _chunks(int(n_episodes), chunk_episodes), shared, backend=backend,
                      progress=progress, desc="collect")
    traj = Trajectories.concatenate(parts)
    traj.metadata.update({"backend": backend, "chunk_episodes": chunk_episodes, "seed": int(seed)})
    return traj


def env_id_and_steps(env, max_steps: int | None) -> tuple[str, int]:
    """What a Ray task needs to rebuild ``env`` in a worker: a registered MiniGrid id and its step limit
    (``env`` is an id or a :class:`~dtwidgets.adapters.MiniGridEnv`; other EnvAdapters cannot travel)."""
    from .adapters.minigrid_env import DEFAULT_MAX_STEPS, MiniGridEnv

    if isinstance(env, str):
        return env, DEFAULT_MAX_STEPS if max_steps is None else int(max_steps)
    if isinstance(env, MiniGridEnv):
        if max_steps is not None and int(max_steps) != env.max_steps:
            raise ValueError(f"expected max_steps=None or {env.max_steps} (the env's own limit), got {max_steps}")
        if getattr(env, "wrappers", ()) or getattr(env, "env_kwargs", {}):
            raise ValueError(f"backend='ray' rebuilds the environment from its id alone, so the wrappers "
                             f"{[getattr(w, '__name__', repr(w)) for w in env.wrappers]} and options {env.env_kwargs} "
                             f"of this MiniGridEnv would be lost: use backend='local'")
        return env.env_id, int(env.max_steps)
    raise TypeError(f"backend='ray' rebuilds the environment in each worker from a MiniGrid id: expected an env id "
                    f"or a MiniGridEnv, got {type(env).__name__} (use backend='local' for other EnvAdapters)")

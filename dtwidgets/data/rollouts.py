"""Recorded rollouts of a model: the states a Decision Transformer visits when it acts, as :class:`Trajectories`.

``record_rollouts(adapter, env, rtgs, n_episodes)`` runs the model greedily (with an optional
``epsilon`` of uniformly random actions, so states just off its own path are visited too) at each
target RTG, exactly the way :func:`~dtwidgets.data.calibrate` does (lockstep environments, one
batched forward per step, the one padding rule, RTG decremented by each reward and clipped to the
model's range). Every step is recorded with the RTG the model was conditioned on (``rtgs``) and
the model's logits (``logits``). Episode ``j`` of every RTG resets with seed ``seed + j``; the
exploration draws of episode ``(r, j)`` come from their own RNG, so the result does not depend on
``n_envs``.
"""
from __future__ import annotations

import warnings

import numpy as np

from ..adapters.protocol import EnvAdapter, ModelAdapter
from ..adapters.envs import make_envs
from .calibration import _check_targets
from .lockstep import Episodes, run_lockstep
from .trajectories import Trajectories


def record_rollouts(adapter: ModelAdapter, env: EnvAdapter | str, rtgs=(-1.0, 0.0, 0.5, 0.9), n_episodes: int = 10,
                   seed: int = 2_000_000, *, epsilon: float = 0.0, n_envs: int = 32, max_steps: int | None = None,
                   progress: bool = True, torch_threads: int | None = 1) -> Trajectories:
    """``n_episodes`` episodes per target RTG of ``adapter`` acting in ``env``, recorded.

    Args:
        adapter: a :class:`~dtwidgets.adapters.ModelAdapter`.
        env: an :class:`~dtwidgets.adapters.EnvAdapter` or a registered MiniGrid id.
        rtgs: target returns-to-go (within ``adapter.rtg_range``).
        n_episodes: episodes per RTG; episode ``j`` resets with ``seed + j``.
        epsilon: probability of a uniformly random action at each step (0 = greedy).
        n_envs: environments stepped together.
        max_steps: episode step limit for a MiniGrid id (default 1000).

    Returns:
        :class:`Trajectories` of ``len(rtgs) * n_episodes`` episodes in ``(rtg, j)`` order, with
        ``policies`` ``"dt rtg=<r>"`` (``" eps=<epsilon>"`` appended when exploring), ``rtgs`` ``[N]``
        the conditioning RTG, ``timesteps`` ``[N]`` the conditioning timestep (the step rule's:
        clamped at ``adapter.max_timestep``) and ``logits`` ``[N, A]`` the model's logits at every step.
    """
    import torch

    if not 0.0 <= float(epsilon) <= 1.0:
        raise ValueError(f"expected epsilon in [0, 1], got {epsilon}")
    targets = _check_targets(adapter, rtgs, n_episodes, n_envs)
    jobs = [(r, j) for r in range(len(targets)) for j in range(int(n_episodes))]
    envs = make_envs(env, min(int(n_envs), len(jobs)), max_steps)
    if int(adapter.n_actions) != len(envs[0].action_names):
        raise ValueError(f"model has {adapter.n_actions} actions, env {envs[0].env_id} has {len(envs[0].action_names)}")
    threads = torch.get_num_threads()
    if torch_threads:
        torch.set_num_threads(int(torch_threads))
    try:
        episodes = _run(adapter, envs, targets, jobs, int(seed), float(epsilon), progress)
    finally:
        torch.set_num_threads(threads)
    meta = {"collector": "dtwidgets.data.rollouts", "seed": int(seed), "epsilon": float(epsilon),
            "rtgs": targets.tolist(), "source": str(adapter.metadata.get("source", "")) if hasattr(adapter, "metadata") else ""}
    return Trajectories.from_episodes(episodes, env_id=envs[0].env_id, max_steps=envs[0].max_steps, metadata=meta,
                                      obs_shape=tuple(episodes[0]["observations"][0].shape))


def model_rollouts(*args, **kwargs) -> Trajectories:
    """Deprecated name of :func:`record_rollouts` (same arguments); warns once per call site."""
    warnings.warn("dtwidgets.data.rollouts.model_rollouts is renamed record_rollouts (same arguments)",
                  DeprecationWarning, stacklevel=2)
    return record_rollouts(*args, **kwargs)


def _run(adapter, envs, targets, jobs, seed, epsilon, progress) -> list[dict]:
    from tqdm.auto import tqdm

    rec = _Recorder(jobs, seed, epsilon, int(adapter.n_actions))
    bar = tqdm(total=len(jobs), desc="rollouts", unit="ep", disable=not progress, leave=False)
    try:
        run_lockstep(adapter, envs, targets, jobs, seed, rec, bar)
    finally:
        bar.close()
    return [dict(ep, logits=np.asarray(ep["logits"], np.float32)) for ep in rec.records if ep is not None]


class _Recorder(Episodes):
    """Every step of every episode, with the conditioning RTG and the model's logits; epsilon-greedy."""

    def __init__(self, jobs: list, seed: int, epsilon: float, n_actions: int):
        self.jobs, self.seed, self.epsilon, self.A = jobs, seed, epsilon, n_actions
        self.label = " eps=%g" % epsilon if epsilon else ""
        self.records: list[dict | None] = [None] * len(jobs)
        self.running: dict[int, dict] = {}

    def _seen(self, i: int) -> tuple[np.ndarray, int]:
        """Env ``i``'s current observation and timestep as the model sees them (checked codes, the step rule's
        timestep, clamped at ``max_timestep``), from the windows :func:`run_lockstep` plays."""
        assert self.windows is not None  # set by run_lockstep
        return self.windows.obs[i, -1].copy(), int(self.windows.ts[i, -1])

    def start(self, i, k, obs, rtg):
        r, j = self.jobs[k]
        seen, t = self._seen(i)
        self.running[i] = {"k": k, "seed": self.seed + j, "policy": f"dt rtg={rtg:g}{self.label}",
                           "rng": np.random.default_rng([self.seed, r, j]), "observations": [seen], "actions": [],
                           "rewards": [], "terminated": [], "truncated": [], "rtgs": [rtg], "timesteps": [t], "logits": []}

    def choose(self, i, logits):
        ep = self.running[i]
        explore = ep["rng"].random()  # drawn every step: the stream does not depend on the model
        pick = int(ep["rng"].integers(self.A))
        return pick if explore < self.epsilon else int(logits.argmax())

    def step(self, i, action, logits, res, next_rtg):
        ep = self.running[i]
        ep["logits"].append(logits)
        for key, v in (("actions", action), ("rewards", float(res.reward)), ("terminated", bool(res.terminated)),
                       ("truncated", bool(res.truncated))):
            ep[key].append(v)
        if next_rtg is not None:
            seen, t = self._seen(i)
            ep["observations"].append(seen)
            ep["rtgs"].append(next_rtg)
            ep["timesteps"].append(t)

    def end(self, i, k, res):
        ep = self.running.pop(i)
        ep["outcome"] = res.outcome
        self.records[ep.pop("k")] = ep

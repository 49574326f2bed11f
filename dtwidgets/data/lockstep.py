"""Episodes of a model acting in lockstep environments: the one loop behind calibration and rollouts.

``run_lockstep(adapter, envs, targets, jobs, seed, episode)`` plays every job ``(r, j)`` (episode
``j`` at target RTG ``targets[r]``, reset with seed ``seed + j``) on ``len(envs)`` environments
stepped together: one batched forward per step over the running environments, windows built by the
one padding rule, the RTG decremented by each reward and clipped to the model's range. What to do
with each step is the caller's: ``episode`` is an :class:`Episodes` (start / choose / step / end).
"""
from __future__ import annotations

import numpy as np

from ..adapters.window import pad_left
from .trajectory_checks import observation_codes


def next_step(rtg: float, reward: float, timestep: int, rtg_range: tuple[float, float],
              max_timestep: int) -> tuple[float, int]:
    """THE step rule (its one owner): what the model is conditioned on at the step reached by acting.

    Returns ``(next_rtg, next_timestep)``: the RTG decremented by ``reward`` (reward units) and clipped
    to ``rtg_range``, and ``timestep + 1`` clamped at ``max_timestep`` (the last step the model's time
    embedding knows: a longer episode keeps conditioning on it instead of raising). The context window
    rolls by keeping the newest ``T`` steps (:func:`~dtwidgets.adapters.make_window` /
    :class:`Windows`, both padded by :func:`~dtwidgets.adapters.window.pad_left`).
    """
    lo, hi = rtg_range
    return float(np.clip(float(rtg) - float(reward), lo, hi)), min(int(timestep) + 1, int(max_timestep))


class Windows:
    """Per-env rolling windows of the model's context: the real steps right-aligned, padded by
    :func:`~dtwidgets.adapters.window.pad_left` (the one padding rule) when a batch is built."""

    def __init__(self, n: int, T: int, obs_shape: tuple, pad_action: int, rtg_range: tuple[float, float],
                 max_timestep: int):
        self.T, self.pad, self.rtg_range, self.max_timestep = T, pad_action, rtg_range, int(max_timestep)
        self.obs = np.zeros((n, T, *obs_shape), np.uint8)
        self.act = np.zeros((n, max(T - 1, 0)), np.int64)
        self.rtg = np.zeros((n, T), np.float32)
        self.ts = np.zeros((n, T), np.int64)
        self.n_real = np.zeros(n, np.int64)

    def start(self, i: int, obs: np.ndarray, rtg: float) -> None:
        self.obs[i, -1] = observation_codes(obs, f"env {i}: reset observation")
        self.rtg[i, -1], self.ts[i, -1], self.n_real[i] = rtg, 0, 1

    def push(self, i: int, action: int, reward: float, obs: np.ndarray) -> None:
        """Append the step reached by ``action`` (RTG and timestep by :func:`next_step`)."""
        obs = observation_codes(obs, f"env {i}: observation after step {int(self.ts[i, -1])}")
        rtg, t = next_step(float(self.rtg[i, -1]), reward, int(self.ts[i, -1]), self.rtg_range, self.max_timestep)
        if self.T > 1:
            for buf in (self.obs, self.rtg, self.ts, self.act):
                buf[i, :-1] = buf[i, 1:]
            self.act[i, -1] = action
        self.obs[i, -1], self.rtg[i, -1], self.ts[i, -1] = obs, rtg, t
        self.n_real[i] = min(self.n_real[i] + 1, self.T)

    def batch(self, idx: np.ndarray):
        return pad_left(self.obs[idx], self.act[idx], self.rtg[idx], self.ts[idx], self.T - self.n_real[idx], self.pad)


class Episodes:
    """What :func:`run_lockstep` does with each episode (override what you need).

    ``start(i, k, obs, rtg)``: env ``i`` begins job ``k`` at ``obs`` conditioned on ``rtg``;
    ``choose(i, logits [A]) -> action`` (default greedy); ``step(i, action, logits, res, next_rtg)``:
    after ``envs[i].step`` (``next_rtg`` the conditioning RTG of the next step, None when ``res.done``);
    ``end(i, k, res)``: job ``k`` finished on env ``i`` with ``res``. ``forward_steps`` counts the
    batched forwards run so far (also after an interrupt). ``windows`` is the :class:`Windows` being
    played (set by :func:`run_lockstep`): in ``step``, ``windows.ts[i, -1]`` is the conditioning
    timestep of env ``i``'s next step.
    """

    forward_steps: int = 0
    windows: "Windows | None" = None

    def start(self, i: int, k: int, obs: np.ndarray, rtg: float) -> None:
        pass

    def choose(self, i: int, logits: np.ndarray) -> int:
        return int(logits.argmax())

    def step(self, i: int, action: int, logits: np.ndarray, res, next_rtg: float | None) -> None:
        pass

    def end(self, i: int, k: int, res) -> None:
        pass


def run_lockstep(adapter, envs: list, targets: np.ndarray, jobs: list, seed: int, episode: Episodes,
                 bar=None) -> None:
    """Play every job on ``envs`` in lockstep (see the module docstring).

    ``bar``: a tqdm bar updated once per finished episode (optional). A ``KeyboardInterrupt`` stops
    the run and propagates (the caller decides what a partial run means).
    """
    import torch

    n = len(envs)
    first = envs[0].reset(seed=seed + jobs[0][1])
    lo, hi = (float(x) for x in adapter.rtg_range)
    win = Windows(n, int(adapter.layout.n_timesteps), first.shape, int(adapter.pad_action), (lo, hi),
                  int(adapter.max_timestep))
    episode.windows = win
    job_of = np.full(n, -1, np.int64)

    def start(i: int, k: int, obs=None) -> None:
        r, j = jobs[k]
        obs = envs[i].reset(seed=seed + j) if obs is None else obs
        job_of[i] = k
        win.start(i, obs, float(targets[r]))
        episode.start(i, k, obs, float(targets[r]))

    for i in range(min(n, len(jobs))):
        start(i, i, first if i == 0 else None)
    next_k = min(n, len(jobs))
    while (job_of >= 0).any():
        idx = np.flatnonzero(job_of >= 0)
        with torch.inference_mode():
            out = adapter.forward(win.batch(idx))  # the step's one device -> host copy: the envs act on it
            logits = out.detach().float().cpu().numpy() if torch.is_tensor(out) else np.asarray(out, np.float32)
        episode.forward_steps += 1
        for i, lg in zip(idx.tolist(), logits):
            a = episode.choose(i, lg)
            res = envs[i].step(a)
            if not res.done:
                win.push(i, a, float(res.reward), res.observation)
                episode.step(i, a, lg, res, float(win.rtg[i, -1]))
                continue
            episode.step(i, a, lg, res, None)
            episode.end(i, int(job_of[i]), res)
            if bar is not None:
                bar.update(1)
            if next_k < len(jobs):
                start(i, next_k)
                next_k += 1
            else:
                job_of[i] = -1

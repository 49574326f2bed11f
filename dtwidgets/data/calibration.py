"""RTG calibration: how the return a Decision Transformer achieves depends on the return it is asked for.

For each target RTG, ``n_episodes`` episodes run in one ``gymnasium.vector.SyncVectorEnv`` shared by all
RTGs, with ONE batched forward per step over every running env (greedy argmax at the last state
token). Per env, a left-padded window of the model's context is kept (``make_window`` convention:
zero observations, pad action, the RTG of the first real step, timestep 0); after each step the RTG
is decremented by the reward received. Episode ``j`` of every RTG resets with seed ``seed + j``, so
RTGs are compared on the same layouts.

A ``KeyboardInterrupt`` stops the run and returns the finished episodes with ``partial=True``.
"""
from __future__ import annotations

import time
from dataclasses import dataclass, field

import numpy as np

from ..adapters.minigrid_env import DEFAULT_MAX_STEPS, check_env_id

OUTCOME_LABELS = ("goal", "collision", "timeout")
UNFINISHED = -1


@dataclass
class CalibrationResult:
    """Per-RTG behaviour of a model.

    Attributes (R target RTGs, n episodes per RTG):
        rtgs: ``[R]`` target RTGs.
        returns: ``[R, n]`` episode returns (NaN where an episode did not finish).
        outcomes: ``[R, n]`` int codes into :data:`OUTCOME_LABELS` (``-1`` = unfinished).
        lengths: ``[R, n]`` episode lengths in steps (0 where unfinished).
        quantiles: the ``(low, high)`` quantile levels of the band.
        partial: True when the run was interrupted (finished episodes only).
    """

    rtgs: np.ndarray
    returns: np.ndarray
    outcomes: np.ndarray
    lengths: np.ndarray
    env_id: str
    max_steps: int
    seed: int
    quantiles: tuple[float, float] = (0.1, 0.9)
    partial: bool = False
    elapsed_s: float = 0.0
    env_steps: int = 0
    outcome_labels: tuple[str, ...] = OUTCOME_LABELS
    metadata: dict = field(default_factory=dict)

    @property
    def n_finished(self) -> np.ndarray:
        """``[R]`` finished episodes per RTG."""
        return (self.outcomes != UNFINISHED).sum(1)

    @property
    def mean_return(self) -> np.ndarray:
        """``[R]`` mean return over finished episodes (NaN if none)."""
        with np.errstate(invalid="ignore"):
            return np.array([np.nanmean(r) if np.isfinite(r).any() else np.nan for r in self.returns])

    def _q(self, q: float) -> np.ndarray:
        return np.array([np.nanquantile(r, q) if np.isfinite(r).any() else np.nan for r in self.returns])

    @property
    def return_low(self) -> np.ndarray:
        """``[R]`` lower quantile (``quantiles[0]``) of the return."""
        return self._q(self.quantiles[0])

    @property
    def return_high(self) -> np.ndarray:
        """``[R]`` upper quantile (``quantiles[1]``) of the return."""
        return self._q(self.quantiles[1])

    @property
    def outcome_counts(self) -> dict[str, np.ndarray]:
        """``{label: [R] counts}`` for goal / collision / timeout."""
        return {lab: (self.outcomes == i).sum(1) for i, lab in enumerate(self.outcome_labels)}

    @property
    def outcome_fractions(self) -> dict[str, np.ndarray]:
        """``{label: [R] fraction of finished episodes}``."""
        n = np.maximum(self.n_finished, 1)
        return {lab: c / n for lab, c in self.outcome_counts.items()}

    @property
    def mean_length(self) -> np.ndarray:
        fin = self.outcomes != UNFINISHED
        return np.array([self.lengths[i][fin[i]].mean() if fin[i].any() else np.nan for i in range(len(self.rtgs))])

    def row(self, rtg: float) -> dict:
        """Summary of the RTG closest to ``rtg``."""
        i = int(np.argmin(np.abs(self.rtgs - rtg)))
        fr = self.outcome_fractions
        return {"rtg": float(self.rtgs[i]), "n": int(self.n_finished[i]), "mean_return": float(self.mean_return[i]),
                "return_low": float(self.return_low[i]), "return_high": float(self.return_high[i]),
                **{f"frac_{k}": float(v[i]) for k, v in fr.items()}, "mean_length": float(self.mean_length[i])}

    def to_dict(self) -> dict:
        """JSON-serialisable summary (per-RTG arrays as lists), e.g. for a widget."""
        return {
            "env_id": self.env_id, "max_steps": self.max_steps, "seed": self.seed, "partial": self.partial,
            "quantiles": list(self.quantiles), "rtgs": self.rtgs.tolist(), "n_finished": self.n_finished.tolist(),
            "mean_return": _nan_list(self.mean_return), "return_low": _nan_list(self.return_low),
            "return_high": _nan_list(self.return_high), "mean_length": _nan_list(self.mean_length),
            "outcome_labels": list(self.outcome_labels),
            "outcome_counts": {k: v.tolist() for k, v in self.outcome_counts.items()},
            "elapsed_s": self.elapsed_s, "env_steps": self.env_steps,
        }

    def summary(self) -> str:
        """A plain-text table, one line per RTG."""
        lo, hi = (int(round(100 * q)) for q in self.quantiles)
        head = f"{'RTG':>7} {'n':>5} {'mean':>7} {f'q{lo}':>7} {f'q{hi}':>7} {'goal':>6} {'coll':>6} {'tout':>6} {'len':>7}"
        lines = [head]
        fr = self.outcome_fractions
        for i, r in enumerate(self.rtgs):
            lines.append(f"{r:7.3f} {self.n_finished[i]:5d} {self.mean_return[i]:7.3f} {self.return_low[i]:7.3f} "
                         f"{self.return_high[i]:7.3f} {fr['goal'][i]:6.1%} {fr['collision'][i]:6.1%} "
                         f"{fr['timeout'][i]:6.1%} {self.mean_length[i]:7.1f}")
        if self.partial:
            lines.append("(partial: interrupted; finished episodes only)")
        return "\n".join(lines)

    def __repr__(self) -> str:
        return f"CalibrationResult({self.env_id!r}, {len(self.rtgs)} RTGs, partial={self.partial})\n{self.summary()}"


def _nan_list(a) -> list:
    return [None if not np.isfinite(x) else float(x) for x in a]


def calibrate(
    adapter,
    env_id: str | None = None,
    rtgs=(-1.0, 0.0, 0.5, 0.9),
    n_episodes: int = 100,
    n_envs: int = 64,
    max_steps: int = DEFAULT_MAX_STEPS,
    seed: int = 1_000_000,
    quantiles: tuple[float, float] = (0.1, 0.9),
    progress: bool = True,
    torch_threads: int | None = 1,
) -> CalibrationResult:
    """Run the model greedily at each target RTG and summarise the returns and outcomes.

    Args:
        adapter: a :class:`~dtwidgets.adapters.ModelAdapter` (e.g. :class:`~dtwidgets.model.DTAdapter`).
        env_id: MiniGrid id (default: the adapter's ``cfg.env_id``).
        rtgs: target returns-to-go.
        n_episodes: episodes per RTG.
        n_envs: environments stepped together (shared by all RTGs; one forward per step).
        max_steps: episode step limit.
        seed: episode ``j`` (of every RTG) resets with seed ``seed + j``.
        quantiles: levels of the return band.
        progress: tqdm progress bar over episodes.
        torch_threads: torch threads during the run (restored after; None = leave as is). One thread
            is as fast for small models and avoids stalls when other processes share the CPU.
    """
    import torch

    threads = torch.get_num_threads()
    if torch_threads:
        torch.set_num_threads(int(torch_threads))
    try:
        return _calibrate(adapter, env_id, rtgs, n_episodes, n_envs, max_steps, seed, quantiles, progress)
    finally:
        torch.set_num_threads(threads)


def _calibrate(adapter, env_id, rtgs, n_episodes, n_envs, max_steps, seed, quantiles, progress):
    import torch
    from gymnasium.utils import seeding
    from tqdm.auto import tqdm

    from ..adapters.window import TrajectoryWindow
    from ._vec import make_vector_env, retire

    cfg = getattr(adapter, "cfg", None)
    if env_id is None:
        env_id = getattr(cfg, "env_id", None)
        if env_id is None:
            raise ValueError("expected an env_id (the adapter has no cfg.env_id)")
    check_env_id(env_id)
    r_targets = np.atleast_1d(np.asarray(rtgs, dtype=np.float32)).reshape(-1)
    if r_targets.size == 0:
        raise ValueError("expected at least one target RTG, got none")
    if int(n_episodes) < 1 or int(n_envs) < 1:
        raise ValueError(f"expected n_episodes >= 1 and n_envs >= 1, got {n_episodes} and {n_envs}")
    lo_r, hi_r = getattr(cfg, "rtg_range", (-np.inf, np.inf))
    if (r_targets < lo_r).any() or (r_targets > hi_r).any():
        raise ValueError(f"expected target RTGs in the model's range [{lo_r}, {hi_r}], got {r_targets.tolist()}")
    R, E = len(r_targets), int(n_episodes)
    jobs = [(r, j) for j in range(E) for r in range(R)]  # interleaved: partial results stay balanced
    n = min(int(n_envs), len(jobs))
    T = int(adapter.layout.n_timesteps)
    pad = int(adapter.pad_action)

    vec = make_vector_env(env_id, max_steps, n)
    n_env_actions = int(vec.single_action_space.n)
    if int(adapter.n_actions) != n_env_actions:
        vec.close()
        raise ValueError(f"model has {adapter.n_actions} actions {tuple(adapter.action_names)}, env {env_id} has "
                         f"{n_env_actions}")
    W, H, C = vec.single_observation_space["image"].shape
    obs_b = np.zeros((n, T, W, H, C), np.uint8)
    act_b = np.full((n, max(T - 1, 0)), pad, np.int64)
    rtg_b = np.zeros((n, T), np.float32)
    ts_b = np.zeros((n, T), np.int64)
    npad = np.zeros(n, np.int64)
    ret = np.zeros(n, np.float64)
    steps = np.zeros(n, np.int64)
    job_of = np.full(n, -1, np.int64)

    returns = np.full((R, E), np.nan)
    outcomes = np.full((R, E), UNFINISHED, np.int64)
    lengths = np.zeros((R, E), np.int64)

    def start(i, o, k):
        r, _ = jobs[k]
        job_of[i] = k
        obs_b[i] = 0
        obs_b[i, -1] = o
        act_b[i] = pad
        rtg_b[i] = r_targets[r]
        ts_b[i] = 0
        npad[i] = T - 1
        ret[i] = 0.0
        steps[i] = 0

    t0 = time.perf_counter()
    env_steps = 0
    vec_steps = 0
    partial = False
    bar = tqdm(total=len(jobs), desc="calibrate", unit="ep", disable=not progress, leave=False)
    obs, _ = vec.reset(seed=[seed + jobs[k][1] for k in range(n)])
    for i in range(n):
        start(i, obs["image"][i], i)
    next_k = n
    pending = np.zeros(n, bool)
    finished = 0
    try:
        while finished < len(jobs):
            active = (job_of >= 0) & ~pending
            idx = np.flatnonzero(active)
            actions = np.zeros(n, np.int64)
            if idx.size:
                win = TrajectoryWindow(torch.from_numpy(obs_b[idx]), torch.from_numpy(act_b[idx]),
                                       torch.from_numpy(rtg_b[idx]), torch.from_numpy(ts_b[idx]),
                                       torch.from_numpy(npad[idx]))
                with torch.inference_mode():
                    logits = adapter.forward(win)
                actions[idx] = torch.as_tensor(logits).argmax(-1).cpu().numpy()
            for i in np.flatnonzero(pending):
                if next_k < len(jobs):  # seed the coming auto-reset as reset(seed=...) would
                    vec.envs[i].unwrapped.np_random = seeding.np_random(seed + jobs[next_k][1])[0]
                    job_of[i] = next_k
                    next_k += 1
                else:
                    job_of[i] = -1
                    retire(vec, i)
            obs, rew, term, trunc, _ = vec.step(actions)
            vec_steps += 1
            env_steps += int(active.sum())
            img = obs["image"]
            cont = []
            for i in range(n):
                if pending[i]:
                    if job_of[i] >= 0:
                        start(i, img[i], job_of[i])
                    continue
                if not active[i]:
                    continue
                ret[i] += float(rew[i])
                steps[i] += 1
                if term[i] or trunc[i]:
                    r, j = jobs[job_of[i]]
                    returns[r, j] = ret[i]
                    outcomes[r, j] = 0 if (term[i] and rew[i] > 0) else 1 if term[i] else 2
                    lengths[r, j] = steps[i]
                    finished += 1
                    bar.update(1)
                else:
                    cont.append(i)
            if cont:
                c = np.asarray(cont)
                new_rtg = np.clip(rtg_b[c, -1] - rew[c].astype(np.float32), lo_r, hi_r)
                if T > 1:
                    obs_b[c, :-1] = obs_b[c, 1:]
                    act_b[c, :-1] = act_b[c, 1:]
                    rtg_b[c, :-1] = rtg_b[c, 1:]
                    ts_b[c, :-1] = ts_b[c, 1:]
                    act_b[c, -1] = actions[c]
                obs_b[c, -1] = img[c]
                rtg_b[c, -1] = new_rtg
                ts_b[c, -1] = steps[c]
                if T > 1:
                    npad[c] = np.maximum(npad[c] - 1, 0)
                    first = rtg_b[c, npad[c]]
                    rtg_b[c] = np.where(np.arange(T)[None, :] < npad[c][:, None], first[:, None], rtg_b[c])
            pending = np.logical_or(term, trunc)
    except KeyboardInterrupt:
        partial = True
    finally:
        bar.close()
        vec.close()
    return CalibrationResult(
        rtgs=r_targets.astype(np.float64), returns=returns, outcomes=outcomes, lengths=lengths, env_id=env_id,
        max_steps=int(max_steps), seed=int(seed), quantiles=tuple(quantiles), partial=partial,
        elapsed_s=time.perf_counter() - t0, env_steps=env_steps,
        metadata={"n_envs": n, "n_episodes": E, "n_timesteps": T, "vec_steps": vec_steps})

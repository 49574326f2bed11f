"""RTG calibration: how the return a Decision Transformer achieves depends on the return it is asked for.

For each target RTG, ``n_episodes`` episodes run on environments (:class:`EnvAdapter`) shared by all
RTGs and stepped in lockstep, with ONE batched forward per step over every running env (greedy
argmax at the last state token). Per env, a window of the model's context is kept and left-padded
by the one padding rule (:func:`~dtwidgets.adapters.window.pad_left`: zero observations, pad action,
the RTG of the first real step, timestep 0); after each step the RTG is decremented by the reward
received. Episode ``j`` of every RTG resets with seed ``seed + j``, so RTGs are compared on the
same layouts.

A ``KeyboardInterrupt`` stops the run and returns the finished episodes with ``partial=True``.
"""
from __future__ import annotations

import time
from dataclasses import dataclass, field

import numpy as np

from ..adapters.protocol import EnvAdapter, ModelAdapter
from .lockstep import Episodes, run_lockstep
from ..adapters.envs import make_envs

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
    adapter: ModelAdapter,
    env: EnvAdapter | str | None,
    rtgs=(-1.0, 0.0, 0.5, 0.9),
    n_episodes: int = 100,
    n_envs: int = 64,
    max_steps: int | None = None,
    seed: int = 1_000_000,
    quantiles: tuple[float, float] = (0.1, 0.9),
    progress: bool = True,
    torch_threads: int | None = 1,
    backend: str = "local",
) -> CalibrationResult:
    """Run the model greedily at each target RTG and summarise the returns and outcomes.

    Args:
        adapter: a :class:`~dtwidgets.adapters.ModelAdapter` (e.g. :class:`~dtwidgets.model.DTAdapter`).
        env: an :class:`~dtwidgets.adapters.EnvAdapter` (deep-copied for parallel envs) or a
            registered MiniGrid id.
        rtgs: target returns-to-go (within ``adapter.rtg_range``).
        n_episodes: episodes per RTG.
        n_envs: environments stepped together (shared by all RTGs; one forward per step).
        max_steps: episode step limit for a MiniGrid id (default 1000); an EnvAdapter keeps its own.
        seed: episode ``j`` (of every RTG) resets with seed ``seed + j``.
        quantiles: levels of the return band.
        progress: tqdm progress bar over episodes.
        torch_threads: torch threads during the run (restored after; None = leave as is). One thread
            is as fast for small models and avoids stalls when other processes share the CPU.
        backend: ``"local"`` (this process) or ``"ray"`` (tasks over episode chunks on a local Ray
            runtime, :func:`dtwidgets.scale.calibrate_many`; needs a model ``save_model`` can write and
            a MiniGrid id or :class:`~dtwidgets.adapters.MiniGridEnv`). Same result on both.
    """
    from ..analysis._common import require_rtg
    from ..training.loop import torch_threads as threads

    require_rtg(adapter, "calibrate (returns per target RTG)")
    if env is None:
        raise ValueError("expected an env: an EnvAdapter (e.g. dtwidgets.adapters.MiniGridEnv) or a MiniGrid env_id, "
                         "got None")
    r_targets = _check_targets(adapter, rtgs, n_episodes, n_envs)
    if backend != "local":
        from ..scale import check_backend, calibrate_many, env_id_and_steps

        check_backend(backend)
        env_id, steps = env_id_and_steps(env, max_steps)
        return calibrate_many([adapter], env_id, rtgs=r_targets.tolist(), n_episodes=int(n_episodes), seed=int(seed),
                              n_envs=int(n_envs), max_steps=steps, backend=backend, progress=progress,
                              quantiles=quantiles)[0]
    jobs = [(r, j) for j in range(int(n_episodes)) for r in range(len(r_targets))]  # interleaved: balanced partials
    envs = make_envs(env, min(int(n_envs), len(jobs)), max_steps)
    n_env_actions = len(envs[0].action_names)
    if int(adapter.n_actions) != n_env_actions:
        raise ValueError(f"model has {adapter.n_actions} actions {tuple(adapter.action_names)}, env "
                         f"{envs[0].env_id} has {n_env_actions}")
    with threads(torch_threads):  # the one rule for a block's torch thread count
        return _calibrate(adapter, envs, r_targets, jobs, seed, quantiles, progress)


def _check_targets(adapter: ModelAdapter, rtgs, n_episodes, n_envs) -> np.ndarray:
    r_targets = np.atleast_1d(np.asarray(rtgs, dtype=np.float32)).reshape(-1)
    if r_targets.size == 0:
        raise ValueError("expected at least one target RTG, got none")
    if int(n_episodes) < 1 or int(n_envs) < 1:
        raise ValueError(f"expected n_episodes >= 1 and n_envs >= 1, got {n_episodes} and {n_envs}")
    lo, hi = adapter.rtg_range
    if (r_targets < lo).any() or (r_targets > hi).any():
        raise ValueError(f"expected target RTGs in the model's range [{lo}, {hi}], got {r_targets.tolist()}")
    return r_targets


def _calibrate(adapter: ModelAdapter, envs: list, r_targets: np.ndarray, jobs: list, seed: int, quantiles,
               progress: bool) -> CalibrationResult:
    from tqdm.auto import tqdm

    R, E, n = len(r_targets), len(jobs) // len(r_targets), len(envs)
    T = int(adapter.layout.n_timesteps)
    rec = _Returns(R, E, n, jobs)
    t0, partial = time.perf_counter(), False
    bar = tqdm(total=len(jobs), desc="calibrate", unit="ep", disable=not progress, leave=False)
    try:
        run_lockstep(adapter, envs, r_targets, jobs, seed, rec, bar)
    except KeyboardInterrupt:
        partial = True
    finally:
        bar.close()
    returns, outcomes, lengths, env_steps = rec.returns, rec.outcomes, rec.lengths, rec.env_steps
    return CalibrationResult(
        rtgs=r_targets.astype(np.float64), returns=returns, outcomes=outcomes, lengths=lengths, env_id=envs[0].env_id,
        max_steps=int(envs[0].max_steps), seed=int(seed), quantiles=tuple(quantiles), partial=partial,
        elapsed_s=time.perf_counter() - t0, env_steps=env_steps,
        metadata={"n_envs": n, "n_episodes": E, "n_timesteps": T, "forward_steps": rec.forward_steps})


class _Returns(Episodes):
    """Calibration's record of each episode: return, outcome and length per (RTG, episode)."""

    def __init__(self, R: int, E: int, n: int, jobs: list):
        self.jobs = jobs
        self.returns, self.lengths = np.full((R, E), np.nan), np.zeros((R, E), np.int64)
        self.outcomes = np.full((R, E), UNFINISHED, np.int64)
        self.ret, self.steps, self.env_steps = np.zeros(n), np.zeros(n, np.int64), 0

    def start(self, i, k, obs, rtg):
        self.ret[i], self.steps[i] = 0.0, 0

    def step(self, i, action, logits, res, next_rtg):
        self.ret[i] += float(res.reward)
        self.steps[i] += 1
        self.env_steps += 1

    def end(self, i, k, res):
        r, j = self.jobs[k]
        self.returns[r, j], self.lengths[r, j] = self.ret[i], self.steps[i]
        self.outcomes[r, j] = OUTCOME_LABELS.index(res.outcome)

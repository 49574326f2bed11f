"""Episode-major trajectory storage: concatenated steps + episode offsets, saved as a versioned ``.npz``.

Step ``i`` holds the observation seen *before* acting, the action taken, and that action's outcome
(reward, terminated, truncated). Episodes are contiguous: episode ``e`` covers steps
``episode_starts[e] : episode_starts[e] + episode_lengths[e]``.

Files are plain ``numpy.savez_compressed`` archives: arrays only, metadata as a one-element JSON
string array. Loading is bit-exact and never unpickles: every ``.npy`` header is checked against the
archive (exact dtype, non-negative dimensions, declared bytes equal to the data held) before anything
is read or allocated (:func:`~dtwidgets.data.trajectory_checks.npz_arrays`).
"""
from __future__ import annotations

import json
import zipfile
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Iterator, Sequence

import numpy as np

from ..adapters.schema import OUTCOMES, episode_outcome
from .trajectory_checks import (TrajectoryFileError, concat_metadata, exact_array,
                                file_meta, meta_problems, npz_arrays, observation_codes,
                                select_metadata)

FORMAT_NAME = "dtwidgets-trajectories"
FORMAT_VERSION = 1

_STEP_ARRAYS = {  # name -> dtype (per-step arrays, length N)
    "observations": np.uint8, "actions": np.int64, "rewards": np.float32,
    "terminated": np.bool_, "truncated": np.bool_, "timesteps": np.int64,
}
_EPISODE_ARRAYS = {"episode_starts": np.int64, "episode_lengths": np.int64, "seeds": np.int64}
_OPTIONAL_ARRAYS = {"rtgs": np.float32, "logits": np.float32}


@dataclass
class Episode:
    """One episode's steps (views into the parent :class:`Trajectories`)."""

    index: int
    observations: np.ndarray
    actions: np.ndarray
    rewards: np.ndarray
    terminated: np.ndarray
    truncated: np.ndarray
    timesteps: np.ndarray
    seed: int
    policy: str | None = None
    rtgs: np.ndarray | None = None
    logits: np.ndarray | None = None
    recorded_outcome: str | None = None  # as the env decided it (metadata["episode"]["outcomes"])
    mission: str | None = None

    @property
    def length(self) -> int:
        return int(self.actions.shape[0])

    @property
    def ret(self) -> float:
        """Undiscounted return (sum of rewards)."""
        return float(np.sum(self.rewards, dtype=np.float64))

    @property
    def outcome(self) -> str:
        """The recorded outcome, else the reward rule's (:func:`~dtwidgets.adapters.schema.episode_outcome`)."""
        return self.recorded_outcome or _outcome(self.rewards, self.terminated, self.truncated)


def _outcome(rewards, terminated, truncated) -> str:
    """Outcome of a stored episode from its last step (:func:`~dtwidgets.adapters.schema.episode_outcome`)."""
    if len(rewards) == 0:
        return "unfinished"
    return episode_outcome(float(rewards[-1]), bool(terminated[-1]), bool(truncated[-1])) or "unfinished"


@dataclass
class Trajectories:
    """A set of MiniGrid episodes, episode-major.

    Attributes (N steps, E episodes, A actions):
        observations: ``[N, W, H, 3]`` uint8 partial observations (before acting).
        actions: ``[N]`` int64. rewards: ``[N]`` float32. terminated, truncated: ``[N]`` bool.
        timesteps: ``[N]`` int64 episode step index of each observation.
        episode_starts, episode_lengths: ``[E]`` int64 offsets into the step arrays.
        seeds: ``[E]`` int64 reset seed of each episode (``-1`` when unknown).
        env_id, max_steps: the environment the episodes come from.
        policies: ``E`` behaviour-policy labels (e.g. ``"bfs:0.1"``, ``"dt rtg=0.9"``), or None.
        rtgs: optional ``[N]`` float32 RTG a model was conditioned on when the step was recorded.
        logits: optional ``[N, A]`` float32 model action logits recorded at each step.
        metadata: free-form JSON-serialisable dict (collection arguments, notes). Two keys have a
            meaning: ``"observation"``, the observation kind
            (:meth:`~dtwidgets.adapters.ObservationSchema.describe`; absent: MiniGrid's egocentric
            ``[W, H, 3]`` codes), which decides how observations are checked (``[N, W, H, 20]``
            one-hot, ``[N, H, W, 3]`` pixels and full grids are accepted by it); and ``"episode"``:
            per-episode lists ``{"missions": [E], "outcomes": [E]}`` (outcomes as the env decided
            them, which :meth:`outcomes` prefers to the reward rule).
    """

    observations: np.ndarray
    actions: np.ndarray
    rewards: np.ndarray
    terminated: np.ndarray
    truncated: np.ndarray
    timesteps: np.ndarray
    episode_starts: np.ndarray
    episode_lengths: np.ndarray
    seeds: np.ndarray
    env_id: str
    max_steps: int
    policies: tuple[str, ...] | None = None
    rtgs: np.ndarray | None = None
    logits: np.ndarray | None = None
    metadata: dict = field(default_factory=dict)

    def __post_init__(self):
        self.observations = observation_codes(self.observations, "Trajectories observations")
        for name, dt in {**_STEP_ARRAYS, **_EPISODE_ARRAYS, **_OPTIONAL_ARRAYS}.items():
            if name != "observations" and getattr(self, name) is not None:
                setattr(self, name, exact_array(getattr(self, name), dt, f"Trajectories {name}"))
        self.max_steps = int(self.max_steps)
        self.env_id = str(self.env_id)
        if self.policies is not None:
            self.policies = tuple(str(p) for p in self.policies)
        self.metadata = dict(self.metadata or {})
        self.validate()

    # ---- construction ---------------------------------------------------------------------------
    @classmethod
    def from_episodes(cls, episodes: Sequence[dict], env_id: str, max_steps: int, metadata: dict | None = None,
                      obs_shape: tuple[int, int, int] = (7, 7, 3), n_actions: int | None = None) -> "Trajectories":
        """Build from a list of per-episode dicts with keys ``observations, actions, rewards,
        terminated, truncated`` (and optional ``timesteps, seed, policy, rtgs, logits``)."""
        eps = list(episodes)
        lengths = np.array([len(e["actions"]) for e in eps], dtype=np.int64)
        starts = np.concatenate([[0], np.cumsum(lengths)[:-1]]).astype(np.int64) if len(eps) else np.zeros(0, np.int64)

        def cat(key, dtype, shape=()):
            check = (lambda a, w: observation_codes(a, w)) if key == "observations" else (lambda a, w: exact_array(a, dtype, w))
            parts = [check(e[key], f"episode {k} {key}").reshape(-1, *shape) for k, e in enumerate(eps)]
            return np.concatenate(parts) if parts else np.zeros((0, *shape), dtype)

        timesteps = [np.asarray(e["timesteps"]) if e.get("timesteps") is not None else np.arange(n)
                     for e, n in zip(eps, lengths)]
        has_rtg = bool(eps) and all(e.get("rtgs") is not None for e in eps)
        has_logits = bool(eps) and all(e.get("logits") is not None for e in eps)
        n_logits = n_actions if n_actions is not None else (np.asarray(eps[0]["logits"]).shape[-1] if has_logits else 0)
        pols = [e.get("policy") for e in eps]
        return cls(
            observations=cat("observations", np.uint8, tuple(obs_shape)), actions=cat("actions", np.int64),
            rewards=cat("rewards", np.float32), terminated=cat("terminated", np.bool_),
            truncated=cat("truncated", np.bool_),
            timesteps=np.concatenate(timesteps).astype(np.int64) if eps else np.zeros(0, np.int64),
            episode_starts=starts, episode_lengths=lengths,
            seeds=np.array([-1 if e.get("seed") is None else int(e["seed"]) for e in eps], dtype=np.int64),
            env_id=env_id, max_steps=max_steps,
            policies=None if all(p is None for p in pols) else tuple("" if p is None else p for p in pols),
            rtgs=cat("rtgs", np.float32) if has_rtg else None,
            logits=cat("logits", np.float32, (n_logits,)) if has_logits else None,
            metadata=metadata or {},
        )

    @classmethod
    def concatenate(cls, parts: Sequence["Trajectories"]) -> "Trajectories":
        """Join trajectory sets of the same env (optional arrays kept only if every part has them)."""
        parts = list(parts)
        if not parts:
            raise ValueError("expected at least one Trajectories to concatenate, got none")
        envs = {(p.env_id, p.max_steps) for p in parts}
        if len(envs) != 1:
            raise ValueError(f"expected trajectories of one env and max_steps, got {sorted(envs)}")
        offs = np.cumsum([0] + [p.n_steps for p in parts])[:-1]
        opt: dict[str, Any] = {n: np.concatenate([getattr(p, n) for p in parts]) if all(getattr(p, n) is not None for p in parts) else None
               for n in _OPTIONAL_ARRAYS}
        pols = None
        if any(p.policies is not None for p in parts):
            pols = tuple(x for p in parts for x in (p.policies or ("",) * p.n_episodes))
        return cls(**{n: np.concatenate([getattr(p, n) for p in parts]) for n in _STEP_ARRAYS},
                   episode_starts=np.concatenate([p.episode_starts + o for p, o in zip(parts, offs)]),
                   episode_lengths=np.concatenate([p.episode_lengths for p in parts]),
                   seeds=np.concatenate([p.seeds for p in parts]), env_id=parts[0].env_id,
                   max_steps=parts[0].max_steps, policies=pols, **opt,
                   metadata=concat_metadata([p.metadata for p in parts], [p.n_episodes for p in parts]))

    def validate(self) -> None:
        """Raise one ValueError listing every inconsistency (:mod:`.trajectory_validation`)."""
        from .trajectory_validation import problems

        p = problems(self)
        if p:
            raise ValueError("invalid Trajectories: expected " + "; expected ".join(p))

    def check_grid(self, grid_shape, where: str = "trajectories") -> None:
        """Raise one ValueError unless the observations' grid is ``grid_shape`` ``(W, H)`` (e.g. the model's view)."""
        got = tuple(self.observations.shape[1:3])
        if got != tuple(grid_shape):
            raise ValueError(f"{where}: expected observations on a {tuple(grid_shape)} grid (the model's view), "
                             f"got {got} (observations of shape {self.observations.shape})")

    # ---- basic views -------------------------------------------------------------------------
    @property
    def n_steps(self) -> int:
        return int(self.actions.shape[0])

    @property
    def n_episodes(self) -> int:
        return int(self.episode_starts.shape[0])

    def __len__(self) -> int:
        return self.n_episodes

    def __repr__(self) -> str:
        counts = self.outcome_counts()
        return (f"Trajectories({self.env_id!r}, {self.n_episodes} episodes, {self.n_steps} steps, "
                f"max_steps={self.max_steps}, outcomes {counts})")

    def episode_ids(self) -> np.ndarray:
        """``[N]`` episode index of every step."""
        return np.repeat(np.arange(self.n_episodes), self.episode_lengths)

    def episode_ends(self) -> np.ndarray:
        """``[E]`` index of each episode's last step."""
        return self.episode_starts + self.episode_lengths - 1

    def episode(self, i: int) -> Episode:
        i = int(i)
        if not -self.n_episodes <= i < self.n_episodes:
            raise IndexError(f"expected an episode index in [0, {self.n_episodes - 1}], got {i}")
        i %= self.n_episodes
        s = slice(int(self.episode_starts[i]), int(self.episode_starts[i] + self.episode_lengths[i]))
        return Episode(i, self.observations[s], self.actions[s], self.rewards[s], self.terminated[s],
                       self.truncated[s], self.timesteps[s], int(self.seeds[i]),
                       None if self.policies is None else self.policies[i],
                       None if self.rtgs is None else self.rtgs[s], None if self.logits is None else self.logits[s],
                       *((self.metadata.get("episode") or {}).get(k, [None] * (i + 1))[i] for k in ("outcomes", "missions")))

    def episodes(self) -> Iterator[Episode]:
        """Iterate over episodes."""
        for i in range(self.n_episodes):
            yield self.episode(i)

    def returns(self) -> np.ndarray:
        """``[E]`` float32 undiscounted return of each episode."""
        if not self.n_episodes:
            return np.zeros(0, np.float32)
        return np.add.reduceat(self.rewards.astype(np.float64), self.episode_starts).astype(np.float32)

    def outcomes(self) -> np.ndarray:
        """``[E]`` outcome per episode: ``goal``, ``collision``, ``timeout`` or ``unfinished``."""
        ends = self.episode_ends()
        recorded = (self.metadata.get("episode") or {}).get("outcomes")
        if recorded is not None:
            return np.array(recorded, dtype=object).astype(str)
        return np.array([_outcome(self.rewards[e:e + 1], self.terminated[e:e + 1], self.truncated[e:e + 1])
                         for e in ends], dtype="<U10")

    def outcome_counts(self) -> dict[str, int]:
        o = self.outcomes()
        return {k: int((o == k).sum()) for k in OUTCOMES if (o == k).any()}

    def rtg(self) -> np.ndarray:
        """``[N]`` float32 return-to-go: the sum of rewards from each step to its episode's end
        (for sparse-reward MiniGrid envs, the episode's final reward at every step)."""
        if not self.n_steps:
            return np.zeros(0, np.float32)
        r = self.rewards.astype(np.float64)
        total = np.repeat(np.add.reduceat(r, self.episode_starts), self.episode_lengths)
        before = np.cumsum(r) - r  # rewards strictly before each step (global)
        start_before = np.repeat((np.cumsum(r) - r)[self.episode_starts], self.episode_lengths)
        return (total - (before - start_before)).astype(np.float32)

    def select(self, episodes) -> "Trajectories":
        """A new set holding the given episodes (indices or boolean mask), in that order."""
        idx = np.arange(self.n_episodes)[np.asarray(episodes)] if np.asarray(episodes).dtype == bool \
            else np.asarray(episodes, dtype=np.int64).reshape(-1)
        steps = np.concatenate([np.arange(self.episode_starts[i], self.episode_starts[i] + self.episode_lengths[i])
                                for i in idx]) if len(idx) else np.zeros(0, np.int64)
        lengths = self.episode_lengths[idx]
        return Trajectories(
            **{n: getattr(self, n)[steps] for n in _STEP_ARRAYS},
            episode_starts=np.concatenate([[0], np.cumsum(lengths)[:-1]]) if len(idx) else np.zeros(0, np.int64),
            episode_lengths=lengths, seeds=self.seeds[idx], env_id=self.env_id, max_steps=self.max_steps,
            policies=None if self.policies is None else tuple(self.policies[i] for i in idx),
            rtgs=None if self.rtgs is None else self.rtgs[steps],
            logits=None if self.logits is None else self.logits[steps], metadata=select_metadata(self.metadata, idx))

    # ---- model windows --------------------------------------------------------------------------
    def windows(self, ends, n_timesteps: int, pad_action: int, rtgs: np.ndarray | None = None):
        """Training/analysis windows ending at the given global step indices.

        Each window holds the ``n_timesteps`` steps up to and including ``ends[b]`` from the same
        episode, left-padded at the episode start the :func:`~dtwidgets.adapters.make_window` way
        (zero observations, the pad action, the RTG of the first real step, timestep 0).

        Args:
            ends: ``[B]`` global step indices (the step whose action is the decision).
            n_timesteps: the model's context length ``T``.
            pad_action: the model's pad action index (``n_actions``).
            rtgs: ``[N]`` RTG per step (default :meth:`rtg`).

        Returns:
            ``(window, targets)``: a :class:`~dtwidgets.adapters.TrajectoryWindow` of batch ``B``
            and ``targets [B, T]`` int64 actions taken at each window step (``-100`` on padding,
            PyTorch's cross-entropy ignore index).
        """
        import torch

        from ..adapters.window import pad_left

        ends = np.asarray(ends, dtype=np.int64).reshape(-1)
        if ends.size and (ends.min() < 0 or ends.max() >= self.n_steps):
            raise IndexError(f"expected step indices in [0, {self.n_steps - 1}], got min {ends.min()}, max {ends.max()}")
        T = int(n_timesteps)
        if T < 1:
            raise ValueError(f"expected n_timesteps >= 1, got {n_timesteps}")
        r = self.rtg() if rtgs is None else np.asarray(rtgs, dtype=np.float32)
        if r.shape != (self.n_steps,):
            raise ValueError(f"expected rtgs of shape ({self.n_steps},), got {r.shape}")
        ep_start = self.episode_starts[self.episode_ids()[ends]] if ends.size else ends
        idx = ends[:, None] + np.arange(-T + 1, 1)[None, :]  # [B, T]
        real = idx >= ep_start[:, None]
        safe = np.where(real, idx, ends[:, None])
        n_pad = T - real.sum(1)
        act = self.actions[safe]
        targets = np.where(real, act, -100)
        win = pad_left(self.observations[safe], act[:, :-1].astype(np.int64), r[safe], self.timesteps[safe].astype(np.int64),
                       n_pad.astype(np.int64), pad_action)  # the one padding rule (adapters.window)
        return win, torch.from_numpy(targets.astype(np.int64))

    # ---- files ----------------------------------------------------------------------------------
    def save(self, path) -> Path:
        """Write a compressed, versioned ``.npz`` (no pickled objects)."""
        path = Path(path)
        if path.suffix != ".npz":
            path = path.with_suffix(path.suffix + ".npz") if path.suffix else path.with_suffix(".npz")
        meta = {"format": FORMAT_NAME, "version": FORMAT_VERSION, "env_id": self.env_id, "max_steps": self.max_steps,
                "policies": None if self.policies is None else list(self.policies), "metadata": self.metadata}
        arrays = {n: getattr(self, n) for n in (*_STEP_ARRAYS, *_EPISODE_ARRAYS)}
        arrays.update({n: getattr(self, n) for n in _OPTIONAL_ARRAYS if getattr(self, n) is not None})
        arrays["meta"] = np.array([json.dumps(meta)])
        path.parent.mkdir(parents=True, exist_ok=True)
        np.savez_compressed(path, **arrays)
        return path

    @classmethod
    def load(cls, path) -> "Trajectories":
        """Read a file written by :meth:`save` (bit-exact); clear errors for anything else."""
        path = Path(path)
        if not path.is_file():
            raise FileNotFoundError(f"expected a trajectories .npz file, got {str(path)!r} (no such file)")
        if not zipfile.is_zipfile(path):
            raise TrajectoryFileError(f"expected a {FORMAT_NAME} .npz archive, could not read {path.name}: "
                                      f"not a zip archive")
        meta = file_meta(path, FORMAT_NAME, FORMAT_VERSION)  # format and version first (a newer file may hold new arrays)
        data = npz_arrays(path, {**_STEP_ARRAYS, **_EPISODE_ARRAYS, **_OPTIONAL_ARRAYS, "meta": None}, FORMAT_NAME)
        missing = [n for n in (*_STEP_ARRAYS, *_EPISODE_ARRAYS) if n not in data]
        if missing:
            raise TrajectoryFileError(f"{path.name} is missing arrays {missing}")
        problems = meta_problems(meta)
        if problems:
            raise TrajectoryFileError(f"invalid metadata in {path.name}: expected " + "; expected ".join(problems))
        try:
            return cls(**{n: data[n] for n in (*_STEP_ARRAYS, *_EPISODE_ARRAYS)},
                       **{n: data.get(n) for n in _OPTIONAL_ARRAYS},  # type: ignore[arg-type]
                       env_id=meta["env_id"], max_steps=meta["max_steps"],
                       policies=None if meta.get("policies") is None else tuple(meta["policies"]),
                       metadata=meta.get("metadata") or {})
        except (KeyError, ValueError) as e:
            raise TrajectoryFileError(f"inconsistent trajectories in {path.name}: {e}") from None



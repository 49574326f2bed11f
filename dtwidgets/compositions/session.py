"""A play session: the one current state the Explorer's panels are driven by (no widgets here).

It steps an :class:`~dtwidgets.adapters.EnvAdapter`, records everything played (observations,
actions, RTGs, rewards, timesteps, the model's logits), keeps env snapshots for "step back", the
pre-edit ("clean") observation for counterfactual edits, and bookmarks.
RTG and timestep bookkeeping is the one step rule, :func:`dtwidgets.data.lockstep.next_step` (the
reference work's ``rtg <- rtg - reward``, clipped to the model's range; the timestep clamped at the
model's ``max_timestep``), shared with lockstep rollouts and calibration. Every episode, the first and
each one after :meth:`PlaySession.reset`, starts at :attr:`PlaySession.target_rtg`: the RTG the user
asked for, never the one left over after the last episode's rewards.
Observations are kept as the protocol's uint8 codes; one that a uint8 cast would change (a float
``0.8``) raises a ValueError naming it (:func:`~dtwidgets.data.trajectory_checks.observation_codes`).

Memory: every step keeps its observation (``W*H*3`` bytes) and an env snapshot for "step back"
(~11 KB on MiniGrid 8×8, i.e. ~11 MB for a 1,000-step episode). Only the newest ``max_snapshots``
snapshots are kept (default 1,000); stepping back further than that raises
:class:`StepBackLimit` (the recorded history itself stays complete).
"""
from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
import torch

from ..adapters import check_compatible
from ..adapters.schema import resolve_action
from ..data.lockstep import next_step
from ..data.trajectory_checks import observation_codes


class EpisodeOver(RuntimeError):
    """An action was requested after the episode ended (the message is one line for the user)."""


class StepBackLimit(RuntimeError):
    """Stepping back past the oldest kept env snapshot (see ``PlaySession.max_snapshots``)."""


@dataclass
class Bookmark:
    note: str
    snapshot: object
    history: dict


@dataclass
class _History:
    observations: list = field(default_factory=list)  # [W, H, 3] uint8 each
    actions: list = field(default_factory=list)  # action taken after observation i
    rtgs: list = field(default_factory=list)
    timesteps: list = field(default_factory=list)
    rewards: list = field(default_factory=list)  # reward received after action i
    logits: list = field(default_factory=list)  # model logits at observation i
    snapshots: list = field(default_factory=list)  # env snapshot at observation i

    def copy(self) -> "_History":
        return _History(*(list(getattr(self, f)) for f in self.__dataclass_fields__))


class PlaySession:
    """The current episode of a model adapter in an env adapter.

    Args:
        adapter: a :class:`~dtwidgets.adapters.ModelAdapter`.
        env: an :class:`~dtwidgets.adapters.EnvAdapter` (actions and view must match the model).
        rtg: the return-to-go every episode starts at (reward units; :attr:`target_rtg`).
        seed: episode seed.
        max_snapshots: how many of the newest env snapshots "step back" keeps (older ones are dropped).

    Attributes:
        target_rtg: the RTG the user asked for (the constructor's ``rtg``, the last :meth:`set_rtg` or
            ``reset(rtg=)``): every episode starts there.
    """

    def __init__(self, adapter, env, rtg: float = 0.9, seed: int = 0, max_snapshots: int = 1000):
        check_compatible(adapter, env)
        if int(max_snapshots) < 1:
            raise ValueError(f"PlaySession: max_snapshots must be >= 1, got {max_snapshots!r}")
        self.max_snapshots = int(max_snapshots)
        self.adapter, self.env = adapter, env
        self.target_rtg = float(rtg)  # the RTG the user asked for: every episode starts here
        self.seed = int(seed)
        self.bookmarks: list[Bookmark] = []
        self.done = False
        self.outcome: str | None = None
        self.replay = False
        self._clean: np.ndarray | None = None  # the pre-edit observation of the current step
        self.reset(seed)

    # ---- state ----------------------------------------------------------------------------
    @property
    def observation(self) -> np.ndarray:
        return self.h.observations[-1]

    @property
    def rtg(self) -> float:
        return self.h.rtgs[-1]

    @property
    def timestep(self) -> int:
        return self.h.timesteps[-1]

    @property
    def n_steps(self) -> int:
        return len(self.h.actions)

    def window(self, observation: np.ndarray | None = None):
        """The model's input for the current state (last ``T`` steps, left-padded)."""
        obs = list(self.h.observations)
        if observation is not None:
            obs[-1] = observation
        return self.adapter.make_window(np.stack(obs), self.h.rtgs, self.h.timesteps, self.h.actions)

    @property
    def clean_observation(self) -> np.ndarray | None:
        """The observation before counterfactual edits at this step (None when unedited)."""
        return self._clean

    def clean_window(self):
        return None if self._clean is None else self.window(self._clean)

    def logits(self) -> torch.Tensor:
        """Model action logits for the current state, ``[n_actions]``."""
        if self.h.logits[-1] is None:
            self.h.logits[-1] = self.adapter.forward(self.window())[0].detach().cpu().numpy()
        return torch.as_tensor(self.h.logits[-1])

    def record_logits(self, logits) -> None:
        """Keep the logits ``[n_actions]`` an analysis of :meth:`window` computed (the Explorer's one
        forward per state), so acting in this state runs no second forward."""
        if self.h.logits[-1] is None:
            self.h.logits[-1] = np.asarray(logits, np.float32).reshape(-1).copy()

    # ---- actions --------------------------------------------------------------------------
    def reset(self, seed: int | None = None, rtg: float | None = None) -> None:
        """Start a new episode at :attr:`target_rtg` (``rtg`` sets it first), not at the RTG the last
        episode's rewards left over; ``seed`` replaces the episode seed."""
        if seed is not None:
            self.seed = int(seed)
        if rtg is not None:
            self.target_rtg = float(rtg)
        obs = self.env.reset(seed=self.seed)
        self.h = _History()
        self._push(obs, self.target_rtg, 0, self.env.snapshot(), "reset observation")
        self.done, self.outcome, self.replay = False, None, False

    @property
    def initial_rtg(self) -> float:
        """Deprecated name of :attr:`target_rtg`."""
        return self.target_rtg

    def _push(self, obs, rtg, t, snap, where: str):
        self.h.observations.append(observation_codes(obs, f"{type(self.env).__name__} {where}"))
        self.h.rtgs.append(float(rtg))
        self.h.timesteps.append(int(t))
        self.h.logits.append(None)
        self.h.snapshots.append(snap)
        old = len(self.h.snapshots) - self.max_snapshots - 2  # keep the current state + max_snapshots to go back to
        if old >= 0:
            self.h.snapshots[old] = None  # bounded memory: this step can no longer be stepped back to
        self._clean = None

    def step(self, action) -> float:
        """Take an action (name or index); returns the reward. Raises once the episode is over."""
        if self.done:
            raise EpisodeOver(f"episode over ({self.outcome}): reset or step back")
        if self.replay:
            raise RuntimeError("this is a recorded episode being replayed; reset to play from a fresh state")
        a = resolve_action(self.adapter.action_names, action)
        self.logits()  # record the model's prediction for the state acted in
        res = self.env.step(a)
        self.h.actions.append(a)
        self.h.rewards.append(float(res.reward))
        next_rtg, t = next_step(self.rtg, res.reward, self.timestep, self.adapter.rtg_range, self.adapter.max_timestep)
        self._push(res.observation, next_rtg, t, self.env.snapshot(), f"observation after step {self.n_steps}")
        if res.done:
            self.done = True
            self.outcome = res.outcome  # the env decides its world's outcomes (StepResult.outcome)
        return float(res.reward)

    def act(self) -> int:
        """Let the model act greedily; returns the action taken."""
        a = int(torch.argmax(self.logits()))
        self.step(a)
        return a

    def step_back(self) -> bool:
        """Undo the last step (restores the env snapshot); False when at the episode start."""
        if not self.h.actions:
            return False
        if self.replay:
            self.seek(len(self.h.actions) - 1)
            return True
        if self.h.snapshots[-2] is None:
            raise StepBackLimit(f"cannot step back further: only the newest {self.max_snapshots} steps keep an env "
                                "snapshot (PlaySession.max_snapshots)")
        for name in ("observations", "rtgs", "timesteps", "logits", "snapshots"):
            getattr(self.h, name).pop()
        self.h.actions.pop()
        self.h.rewards.pop()
        self.env.restore(self.h.snapshots[-1])
        self.h.observations[-1] = observation_codes(self.env.observation(), f"{type(self.env).__name__} observation")
        self.h.logits[-1] = None
        self.done, self.outcome, self._clean = False, None, None
        return True

    def set_rtg(self, rtg: float) -> None:
        """Change the return-to-go of the current step (earlier steps keep theirs); it becomes the
        :attr:`target_rtg` every later episode starts at."""
        self.h.rtgs[-1] = float(rtg)
        self.target_rtg = float(rtg)
        self.h.logits[-1] = None

    def edit_cell(self, x: int, y: int, obj: str | None, colour: str | None = None, state: str | None = None) -> None:
        """Counterfactual edit of the full grid at ``(x, y)``; the pre-edit observation stays the clean scenario."""
        clean = self.observation.copy() if self._clean is None else self._clean
        obs = observation_codes(self.env.set_cell(x, y, obj, colour, state), f"{type(self.env).__name__} edited observation")
        self.h.observations[-1] = obs
        self.h.snapshots[-1] = self.env.snapshot()
        self.h.logits[-1] = None
        self._clean = None if np.array_equal(clean, obs) else clean

    def set_observation(self, obs: np.ndarray) -> None:
        """Replace the current partial observation directly (an edit made in observation space)."""
        clean = self.observation.copy() if self._clean is None else self._clean
        obs = observation_codes(obs, "set_observation(obs)")
        self.h.observations[-1] = obs
        self.h.logits[-1] = None
        self._clean = None if np.array_equal(clean, obs) else clean

    # ---- bookmarks ------------------------------------------------------------------------
    def bookmark(self, note: str = "") -> int:
        self.bookmarks.append(Bookmark(note or f"step {self.n_steps}", self.env.snapshot(), self._state()))
        return len(self.bookmarks) - 1

    def goto_bookmark(self, i: int) -> None:
        if not 0 <= i < len(self.bookmarks):
            raise IndexError(f"expected a bookmark index in [0, {len(self.bookmarks) - 1}], got {i}")
        b = self.bookmarks[i]
        self.env.restore(b.snapshot)
        self.h = b.history["h"].copy()
        self.done, self.outcome, self._clean = b.history["done"], b.history["outcome"], b.history["clean"]

    def _state(self) -> dict:
        return {"h": self.h.copy(), "done": self.done, "outcome": self.outcome, "clean": self._clean}

    # ---- recording ------------------------------------------------------------------------
    def record(self) -> dict:
        """Everything played this episode as arrays: observations [n+1, W, H, 3] uint8, actions [n],
        rewards [n], rtgs [n+1], timesteps [n+1], logits [n+1, A] (NaN where never computed)."""
        A = self.adapter.n_actions
        logits = np.stack([np.full(A, np.nan, np.float32) if l is None else np.asarray(l, np.float32) for l in self.h.logits])
        return {
            "observations": np.stack(self.h.observations), "actions": np.asarray(self.h.actions, np.int64),
            "rewards": np.asarray(self.h.rewards, np.float32), "rtgs": np.asarray(self.h.rtgs, np.float32),
            "timesteps": np.asarray(self.h.timesteps, np.int64), "logits": logits,
            "done": self.done, "outcome": self.outcome, "seed": self.seed,
        }

    def to_trajectories(self):
        """The played episode as :class:`~dtwidgets.data.Trajectories` (one episode, with RTGs and logits).

        The current (not yet acted in) observation, RTG and timestep are kept in ``metadata["final"]``
        so a saved session restores exactly what was on screen.
        """
        from ..data.trajectories import Trajectories

        r = self.record()
        n = len(r["actions"])
        if n == 0:
            raise ValueError("nothing to save yet: the episode has no step (take an action first)")
        term = np.zeros(n, bool)
        trunc = np.zeros(n, bool)
        if self.done and n:
            term[-1] = self.outcome != "timeout"
            trunc[-1] = self.outcome == "timeout"
        logits = self.logits().numpy() if not self.done else None
        ep = {"observations": r["observations"][:n], "actions": r["actions"], "rewards": r["rewards"],
              "terminated": term, "truncated": trunc, "timesteps": r["timesteps"][:n], "seed": self.seed,
              "policy": "explorer", "rtgs": r["rtgs"][:n], "logits": r["logits"][:n]}
        final = {"observation": r["observations"][-1].tolist(), "rtg": float(r["rtgs"][-1]),
                 "timestep": int(r["timesteps"][-1]), "done": self.done, "outcome": self.outcome,
                 "logits": None if logits is None else logits.tolist()}
        return Trajectories.from_episodes([ep], env_id=self.env.env_id, max_steps=self.env.max_steps,
                                          obs_shape=tuple(r["observations"].shape[1:]), n_actions=self.adapter.n_actions,
                                          metadata={"source": "dtwidgets.Explorer", "final": final})

    def load_episode(self, traj, episode: int = 0) -> None:
        """Replace the history by a recorded episode (for replay); the env is not restored, so
        stepping further is disabled until :meth:`reset`."""
        ep = traj.episode(episode)
        n = ep.length
        want = tuple(self.observation.shape)
        if tuple(ep.observations.shape[1:]) != want:
            raise ValueError(f"episode {episode}: expected observations of shape [n, {', '.join(map(str, want))}] "
                             f"(this model's view), got {tuple(ep.observations.shape)}")
        final = traj.metadata.get("final") if traj.n_episodes == 1 else None
        if final is not None:
            _check_final(final, want)
        h = _History()
        rtgs = ep.rtgs if ep.rtgs is not None else traj.rtg()[traj.episode_starts[episode]:][:n]
        for i in range(n):
            h.observations.append(np.array(ep.observations[i]))  # uint8 codes (Trajectories checks them)
            h.rtgs.append(float(rtgs[i]))
            h.timesteps.append(int(ep.timesteps[i]))
            h.logits.append(None if ep.logits is None or np.isnan(ep.logits[i]).any() else np.asarray(ep.logits[i]))
            h.snapshots.append(None)
        h.actions, h.rewards = [int(a) for a in ep.actions], [float(x) for x in ep.rewards]
        if final is not None:
            h.observations.append(observation_codes(final["observation"], 'trajectory metadata "final" observation'))
            h.rtgs.append(float(final["rtg"]))
            h.timesteps.append(int(final["timestep"]))
            h.logits.append(None if final.get("logits") is None else np.asarray(final["logits"], np.float32))
            h.snapshots.append(None)
            self.done, self.outcome = bool(final["done"]), None if final["outcome"] is None else str(final["outcome"])
        else:  # a training-data episode: the last step's action is part of the data; show up to it
            h.actions.pop()
            h.rewards.pop()
            self.done, self.outcome = False, None
        self._full, self._final_done, self._final_outcome = h, self.done, self.outcome
        self.replay = True
        self.seek(len(h.actions))

    @property
    def replay_length(self) -> int:
        """Number of recorded actions in the replayed episode (0 when not replaying)."""
        return len(self._full.actions) if self.replay else 0

    def seek(self, n_steps: int) -> None:
        """Replay: show the state after the first ``n_steps`` recorded actions (timeline scrubbing)."""
        if not self.replay:
            raise RuntimeError("seek() is for replaying a recorded episode; load one with load_episode()")
        full = self._full
        n = max(0, min(int(n_steps), len(full.actions)))
        h = _History()
        for name in ("observations", "rtgs", "timesteps", "logits", "snapshots"):
            setattr(h, name, list(getattr(full, name)[: n + 1]))
        h.actions, h.rewards = list(full.actions[:n]), list(full.rewards[:n])
        self.h, self._clean = h, None
        end = n == len(full.actions)
        self.done, self.outcome = (self._final_done, self._final_outcome) if end else (False, None)


_FINAL_KEYS = ("observation", "rtg", "timestep", "done", "outcome")


def _check_final(final, obs_shape) -> None:
    """Validate the ``metadata["final"]`` record of a saved Explorer episode (before anything changes)."""
    if not isinstance(final, dict):
        raise ValueError(f"trajectory metadata 'final': expected a dict with keys {_FINAL_KEYS}, got {type(final).__name__}")
    missing = [k for k in _FINAL_KEYS if k not in final]
    if missing:
        raise ValueError(f"trajectory metadata 'final': expected keys {_FINAL_KEYS}, missing {missing}")
    obs = np.asarray(final["observation"])
    if obs.shape != tuple(obs_shape):
        raise ValueError(f"trajectory metadata 'final.observation': expected shape {tuple(obs_shape)}, got {obs.shape}")
    for k, kind in (("rtg", float), ("timestep", int)):
        try:
            v = kind(final[k])
        except (TypeError, ValueError):
            raise ValueError(f"trajectory metadata 'final.{k}': expected a number, got {final[k]!r}") from None
        if not np.isfinite(v):
            raise ValueError(f"trajectory metadata 'final.{k}': expected a finite number, got {final[k]!r}")

"""Concept tables: one row per state token of recorded trajectories, computed through an EnvAdapter.

A *concept* is a plain function of a :class:`Step` (the observation the agent saw, the action it took,
and, when an :class:`~dtwidgets.adapters.EnvAdapter` replays the episode, the full grid and the
agent's pose). Built-ins for MiniGrid are listed in :data:`BUILTIN_CONCEPTS`; user concepts are
plain functions ``fn(step) -> bool | int | str | float``.

Egocentric view (see :mod:`dtwidgets.adapters.schema`): the agent sits at ``(W // 2, H - 1)``
facing up, so the cell in front of it is ``(W // 2, H - 2)``.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Callable, Iterator, Mapping

import numpy as np

from ..adapters.schema import OBJECTS

KINDS = ("categorical", "scalar")
DIRECTIONS = ("right", "down", "left", "up")


@dataclass
class Step:
    """One recorded step, what a concept function sees.

    Attributes:
        observation: ``[W, H, 3]`` uint8 partial view before acting (object, colour, state codes).
        action: action index taken; action_name: its name (when the env names actions).
        reward, terminated, truncated: the action's outcome.
        timestep: episode step index; episode: episode index in the trajectory set.
        steps_to_end: steps left in the episode after this one (0 at the last step).
        outcome: the episode's outcome (``goal`` / ``collision`` / ``timeout`` / ``unfinished``).
        policy: the behaviour-policy label (``""`` when unknown).
        grid, agent_pos, agent_dir: the full grid ``[gW, gH, 3]``, ``(x, y)`` and facing
            (0=right, 1=down, 2=left, 3=up) from the EnvAdapter replay; None without an env.
    """

    observation: np.ndarray
    action: int
    action_name: str
    reward: float
    terminated: bool
    truncated: bool
    timestep: int
    episode: int
    steps_to_end: int
    outcome: str
    policy: str
    grid: np.ndarray | None = None
    agent_pos: tuple[int, int] | None = None
    agent_dir: int | None = None
    facing: bool = True
    """Whether the agent has a facing in this env (False for absolute-move grid worlds)."""

    @property
    def front(self) -> tuple[int, int, int]:
        """``(object, colour, state)`` codes of the cell in front of the agent: read from the full grid
        (the env replay) when there is one, else from an egocentric code view (``[W, H, 3]``, the agent at
        ``(W // 2, H - 1)`` facing up). Raises for an agent without a facing and for pixel observations
        without an env (they hold no object codes): the concept is then reported as not probed."""
        if not self.facing:
            raise ValueError("the agent has no facing in this env (absolute moves): no cell is 'in front'")
        if self.grid is not None and self.agent_pos is not None and self.agent_dir is not None:
            dx, dy = ((1, 0), (0, 1), (-1, 0), (0, -1))[int(self.agent_dir)]
            x, y = self.agent_pos[0] + dx, self.agent_pos[1] + dy
            if not (0 <= x < self.grid.shape[0] and 0 <= y < self.grid.shape[1]):
                raise ValueError(f"the cell in front of the agent ({x}, {y}) is outside the grid")
            return tuple(int(v) for v in self.grid[x, y, :3])  # type: ignore[return-value]
        obs = self.codes
        W, H = obs.shape[:2]
        o, c, st = (int(v) for v in obs[W // 2, H - 2])
        return o, c, st

    @property
    def codes(self) -> np.ndarray:
        """The observation as MiniGrid codes ``[W, H, 3]`` (one-hot cells decoded); raises for pixels and
        vectors, which hold no object codes (concepts reading them are then reported as not probed)."""
        from ..adapters.schema import decode_one_hot

        obs = self.observation
        if obs.ndim == 3 and obs.shape[-1] == 20:
            return decode_one_hot(obs)
        if obs.ndim != 3 or obs.shape[-1] != 3 or obs.max(initial=0) > 10:
            raise ValueError("this concept reads MiniGrid codes: these observations are not a code view (pixels "
                             "or vectors?); write a concept on step.grid (build the table with env=...)")
        return obs

    @property
    def front_object(self) -> str:
        return OBJECTS[self.front[0]] if self.front[0] < len(OBJECTS) else f"object {self.front[0]}"


@dataclass
class Concept:
    """A named function of a :class:`Step`. ``kind``: ``"categorical"``, ``"scalar"`` or ``"auto"``
    (floats with non-integer values -> scalar, everything else -> categorical). ``needs_env``: the
    function reads ``step.grid`` / ``agent_pos`` / ``agent_dir``."""

    name: str
    fn: Callable[[Step], Any]
    kind: str = "auto"
    needs_env: bool = False
    doc: str = ""


def _obj(name: str) -> int:
    return OBJECTS.index(name)


def _needs_env(s: Step) -> tuple[np.ndarray, tuple[int, int], int]:
    if s.grid is None or s.agent_pos is None or s.agent_dir is None:
        raise ValueError("this concept needs the full grid: build the concept table with env=an EnvAdapter")
    return s.grid, s.agent_pos, s.agent_dir


def _goal_distance(s: Step) -> float:
    grid, pos, _ = _needs_env(s)
    goals = np.argwhere(grid[:, :, 0] == _obj("goal"))
    if not len(goals):
        return float("nan")
    return float(np.abs(goals - np.asarray(pos)).sum(1).min())


def _collision_within(k: int) -> Callable[[Step], bool]:
    return lambda s: s.outcome == "collision" and s.steps_to_end < k


BUILTIN_CONCEPTS: dict[str, Concept] = {c.name: c for c in (
    Concept("object in front", lambda s: s.front_object, "categorical", doc="object code of the cell ahead"),
    Concept("wall ahead", lambda s: s.front[0] == _obj("wall"), "categorical"),
    Concept("ball ahead", lambda s: s.front[0] == _obj("ball"), "categorical"),
    Concept("goal ahead", lambda s: s.front[0] == _obj("goal"), "categorical"),
    Concept("goal visible", lambda s: bool((s.codes[:, :, 0] == _obj("goal")).any()), "categorical"),
    Concept("obstacles in view", lambda s: float((s.codes[:, :, 0] == _obj("ball")).sum()), "scalar",
            doc="number of balls in the partial view"),
    Concept("agent direction", lambda s: DIRECTIONS[_needs_env(s)[2]], "categorical", needs_env=True),
    Concept("distance to goal", _goal_distance, "scalar", needs_env=True, doc="Manhattan distance, cells"),
    Concept("collision within 5", _collision_within(5), "categorical",
            doc="the episode ends in a collision within 5 steps"),
    Concept("action taken", lambda s: s.action_name, "categorical"),
    Concept("behaviour policy", lambda s: s.policy or "unknown", "categorical"),
)}


@dataclass
class ConceptTable:
    """Concept values, one row per recorded step (= per state token whose action is decided).

    Attributes (N steps):
        values: ``{name: [N] array}``; categorical concepts as int codes into ``classes[name]``,
            scalar ones as float64 (NaN where undefined).
        kinds: ``{name: "categorical" | "scalar"}``.
        classes: ``{name: tuple of class labels}`` for categorical concepts (code ``i`` is
            ``classes[name][i]``; booleans give ``("False", "True")``).
        episodes: ``[N]`` episode index (the grouping for splits); steps: ``[N]`` global step index.
        observation_ids: ``[N]`` an id per distinct observation (for the control task).
        failed: ``{name: reason}`` concepts whose function raised (named with the episode and step);
            they have no values, and the other concepts are kept.
    """

    values: dict[str, np.ndarray]
    kinds: dict[str, str]
    classes: dict[str, tuple[str, ...]]
    episodes: np.ndarray
    steps: np.ndarray
    observation_ids: np.ndarray
    docs: dict[str, str] = field(default_factory=dict)
    failed: dict[str, str] = field(default_factory=dict)

    @property
    def names(self) -> list[str]:
        return list(self.values)

    def __len__(self) -> int:
        return int(self.episodes.shape[0])

    def labels(self, name: str) -> np.ndarray:
        """``[N]`` the values as labels (class names for categorical concepts)."""
        v = self.values[name]
        return np.asarray(self.classes[name], dtype=object)[v] if self.kinds[name] == "categorical" else v

    def __repr__(self) -> str:
        return f"ConceptTable({len(self)} steps, concepts {self.names})"


def _resolve(concepts) -> list[Concept]:
    if concepts is None:
        return list(BUILTIN_CONCEPTS.values())
    if isinstance(concepts, (str, Concept)) or callable(concepts):
        concepts = [concepts]
    items = concepts.items() if isinstance(concepts, Mapping) else [(None, c) for c in concepts]
    out = []
    for name, c in items:
        if isinstance(c, str) and name is None:
            if c not in BUILTIN_CONCEPTS:
                raise ValueError(f"unknown built-in concept {c!r}: expected one of {sorted(BUILTIN_CONCEPTS)} "
                                 f"or a function of a Step")
            out.append(BUILTIN_CONCEPTS[c])
        elif isinstance(c, Concept):
            out.append(c)
        elif callable(c):
            out.append(Concept(str(name or getattr(c, "__name__", "concept")), c))
        else:
            raise TypeError(f"expected a concept name, a Concept or a function of a Step, got {c!r}")
    kinds = [c.kind for c in out if c.kind not in (*KINDS, "auto")]
    if kinds:
        raise ValueError(f"expected concept kinds in {KINDS + ('auto',)}, got {kinds}")
    return out


def _steps(traj, env, action_names, progress: bool = False) -> Iterator[Step]:
    """Yield a :class:`Step` per recorded step, replaying each episode in ``env`` when given."""
    from tqdm.auto import tqdm

    from ..adapters.actions import action_table

    outcomes = traj.outcomes()
    facing = action_table(env).has_facing if env is not None else True
    for ep in tqdm(traj.episodes(), total=traj.n_episodes, desc="concepts", unit="ep", disable=not progress,
                   leave=False):
        if env is not None:
            if ep.seed < 0:
                raise ValueError(f"episode {ep.index} has no reset seed: it cannot be replayed through the env "
                                 f"(pass env=None to skip concepts that need the full grid)")
            obs = env.reset(seed=int(ep.seed))
        n = ep.length
        for t in range(n):
            grid = pos = facing_now = None
            if env is not None:
                if not np.array_equal(obs, ep.observations[t]):
                    raise ValueError(f"replaying episode {ep.index} (seed {ep.seed}) in {env.env_id}: the env's "
                                     f"observation at step {t} differs from the recorded one (another env or "
                                     f"max_steps?)")
                grid, pos, facing_now = env.full_grid()
            a = int(ep.actions[t])
            yield Step(ep.observations[t], a, action_names[a] if a < len(action_names) else str(a),
                       float(ep.rewards[t]), bool(ep.terminated[t]), bool(ep.truncated[t]), int(ep.timesteps[t]),
                       ep.index, n - 1 - t, str(outcomes[ep.index]), ep.policy or "", grid,
                       None if pos is None else tuple(pos), facing_now, facing)
            if env is not None and t + 1 < n:
                obs = env.step(a).observation


def _encode(name: str, raw: list, kind: str) -> tuple[np.ndarray, str, tuple[str, ...]]:
    if kind == "auto":
        floats = any(isinstance(v, (float, np.floating)) and not float(v).is_integer() for v in raw)
        kind = "scalar" if floats else "categorical"
    if kind == "scalar":
        try:
            return np.asarray(raw, dtype=np.float64), kind, ()
        except (TypeError, ValueError):
            raise ValueError(f"concept {name!r}: expected numbers for a scalar concept, got e.g. {raw[:3]}") from None
    labels = [str(bool(v)) if isinstance(v, (bool, np.bool_)) else str(v) for v in raw]
    classes = tuple(sorted(set(labels), key=lambda s: (s not in ("False", "True"), s)))
    index = {c: i for i, c in enumerate(classes)}
    return np.array([index[v] for v in labels], np.int64), kind, classes


def concept_table(traj, env=None, concepts=None, action_names=None, progress: bool = False) -> ConceptTable:
    """Evaluate concepts at every step of ``traj``.

    Args:
        traj: :class:`~dtwidgets.data.Trajectories`.
        env: an :class:`~dtwidgets.adapters.EnvAdapter` of the trajectories' env; each episode is
            replayed from its seed with the recorded actions (the replayed observations must equal
            the recorded ones). None: concepts that need the full grid are skipped.
        concepts: None (every built-in), names of built-ins, functions of a :class:`Step`,
            :class:`Concept` objects, or ``{name: function}``.
        action_names: names of the action indices (default: ``env.action_names``, else indices).
        progress: a progress bar over episodes.

    Returns:
        :class:`ConceptTable` with one row per step.
    """
    chosen = _resolve(concepts)
    if env is None:
        skipped = [c.name for c in chosen if c.needs_env]
        if concepts is not None and skipped:
            raise ValueError(f"concepts {skipped} need the full grid: pass env=an EnvAdapter of {traj.env_id}")
        chosen = [c for c in chosen if not c.needs_env]
    elif getattr(env, "env_id", traj.env_id) != traj.env_id:
        raise ValueError(f"expected an env of the trajectories' {traj.env_id}, got {env.env_id}")
    names = tuple(action_names or getattr(env, "action_names", None) or ())
    raw, failed = _evaluate(chosen, _steps(traj, env, names, progress))
    values, kinds, classes = {}, {}, {}
    for c in chosen:
        if c.name in failed:
            continue
        try:
            values[c.name], kinds[c.name], classes[c.name] = _encode(c.name, raw[c.name], c.kind)
        except ValueError as e:
            failed[c.name] = str(e)
    if failed:
        import warnings

        warnings.warn("concepts left out of the table: " + "; ".join(f"{k}: {v}" for k, v in failed.items()),
                      stacklevel=2)
    flat = traj.observations.reshape(traj.n_steps, -1)
    _, obs_ids = np.unique(flat, axis=0, return_inverse=True)
    return ConceptTable(values, kinds, classes, traj.episode_ids(), np.arange(traj.n_steps), obs_ids.reshape(-1),
                        {c.name: c.doc for c in chosen}, failed)


def _evaluate(chosen, steps) -> tuple[dict[str, list], dict[str, str]]:
    """Each concept's raw value at every step; a concept whose function raises is recorded in the
    second dict (with the episode and step where it first raised) and evaluated no further."""
    raw: dict[str, list] = {c.name: [] for c in chosen}
    failed: dict[str, str] = {}
    for step in steps:
        for c in chosen:
            if c.name in failed:
                continue
            try:
                raw[c.name].append(c.fn(step))
            except Exception as e:  # noqa: BLE001  a user's concept: report it, keep the others
                failed[c.name] = (f"concept {c.name!r} raised {type(e).__name__}: {e} at episode {step.episode}, "
                                  f"step {step.timestep}")
    return raw, failed

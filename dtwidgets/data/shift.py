"""Distribution shift: a Decision Transformer on its training environment vs a family of edited or
re-seeded ones (the goal-misgeneralisation workflow).

A shift is a small declarative spec, :class:`EnvShift`: a name, a list of cell edits applied after
every episode start (``EnvAdapter.reset(seed)`` then ``EnvAdapter.set_cell`` for each edit, in
order), and optionally another environment id (another size, another layout) and another seed base
(re-seeded episodes). From a dict::

    {"name": "goal moved", "edits": [(6, 6, None), (6, 1, "goal")]}            # clear, then place
    {"name": "extra ball", "edits": [{"x": 3, "y": 4, "obj": "ball"}]}
    {"name": "new seeds", "seed": 9_000_000}
    {"name": "6x6", "env_id": "MiniGrid-Dynamic-Obstacles-6x6-v0"}

:func:`distribution_shift` runs :func:`~dtwidgets.data.record_rollouts` (the one rollout loop and
step rule) on the training environment ("train") and on each shifted one (an :class:`EditedEnv`,
an :class:`~dtwidgets.adapters.EnvAdapter` whose ``reset`` applies the edits), with the same episode
seeds unless the shift re-seeds, and summarises every (environment, RTG) as a
:class:`~dtwidgets.data.behaviour.BehaviourCell` (outcome counts, returns, lengths, heat map), as
:func:`~dtwidgets.data.behaviour_under_intervention` does. At matched states (the start of episode
0: the same seed, the agent on the same cell) it compares the policy maps over the cells free in
both grids (:mod:`dtwidgets.analysis.policy_map`) and the direct logit attributions
(:func:`~dtwidgets.analysis.attribution.logit_attribution`) of train vs shifted.
"""
from __future__ import annotations

import copy
from dataclasses import dataclass, field
from typing import Any, Sequence

import numpy as np

from ..adapters.protocol import EnvAdapter, ModelAdapter
from .behaviour import OUTCOME_LABELS, BehaviourCell, BehaviourResult, _cell, replay_paths
from .rollouts import record_rollouts

TRAIN = "train"


# ---- the spec --------------------------------------------------------------------------------------
@dataclass(frozen=True)
class CellEdit:
    """Put ``obj`` (``"goal"``, ``"ball"``, ``"wall"``, ... or None to clear) on full-grid cell ``(x, y)``;
    the names are the env adapter's (``EnvAdapter.set_cell``), checked when the edit is applied."""

    x: int
    y: int
    obj: str | None
    colour: str | None = None
    state: str | None = None

    def __post_init__(self):
        for k in ("x", "y"):
            v = getattr(self, k)
            if isinstance(v, bool) or not isinstance(v, (int, np.integer)):
                raise TypeError(f"expected an integer {k} in a cell edit, got {v!r}")
        for k in ("obj", "colour", "state"):
            v = getattr(self, k)
            if v is not None and not isinstance(v, str):
                raise TypeError(f"expected {k} a string or None in a cell edit, got {v!r}")

    @classmethod
    def of(cls, spec: Any) -> "CellEdit":
        """From a :class:`CellEdit`, a dict ``{x, y, obj[, colour, state]}`` or a tuple ``(x, y, obj[, colour[, state]])``."""
        if isinstance(spec, CellEdit):
            return spec
        if isinstance(spec, dict):
            extra = set(spec) - {"x", "y", "obj", "colour", "state"}
            if extra or not {"x", "y", "obj"} <= set(spec):
                raise ValueError(f"expected a cell edit dict with keys x, y, obj (and optional colour, state), got "
                                 f"keys {sorted(spec)}")
            return cls(**spec)
        if isinstance(spec, (tuple, list)) and 3 <= len(spec) <= 5:
            return cls(*spec)
        raise TypeError(f"expected a cell edit as CellEdit, dict or (x, y, obj[, colour[, state]]), got {spec!r}")


@dataclass(frozen=True)
class EnvShift:
    """One shifted environment: ``edits`` after every reset, optionally ``env_id`` (another registered
    environment) and ``seed`` (episode ``j`` resets with ``seed + j`` instead of the train seed's)."""

    name: str
    edits: tuple[CellEdit, ...] = ()
    env_id: str | None = None
    seed: int | None = None

    def __post_init__(self):
        if not isinstance(self.name, str) or not self.name.strip():
            raise ValueError(f"expected a shift name (a non-empty string), got {self.name!r}")
        if self.name == TRAIN:
            raise ValueError(f"the name {TRAIN!r} is reserved for the training environment; rename that shift")
        if isinstance(self.edits, (str, bytes, dict)) or not isinstance(self.edits, (tuple, list)):
            raise TypeError(f"shift {self.name!r}: expected edits as a list of cell edits, got {self.edits!r}")
        object.__setattr__(self, "edits", tuple(CellEdit.of(e) for e in self.edits))
        if self.env_id is not None and not isinstance(self.env_id, str):
            raise TypeError(f"shift {self.name!r}: expected env_id a string or None, got {self.env_id!r}")
        if self.seed is not None and (isinstance(self.seed, bool) or not isinstance(self.seed, (int, np.integer))):
            raise TypeError(f"shift {self.name!r}: expected seed an int or None, got {self.seed!r}")

    @classmethod
    def of(cls, spec: Any) -> "EnvShift":
        """From an :class:`EnvShift` or a dict ``{name, edits?, env_id?, seed?}``."""
        if isinstance(spec, EnvShift):
            return spec
        if not isinstance(spec, dict):
            raise TypeError(f"expected a shift as EnvShift or dict {{name, edits, env_id, seed}}, got {spec!r}")
        extra = set(spec) - {"name", "edits", "env_id", "seed"}
        if extra or "name" not in spec:
            raise ValueError(f"expected a shift dict with key name (and optional edits, env_id, seed), got keys "
                             f"{sorted(spec)}")
        return cls(**spec)

    def describe(self) -> str:
        parts = [f"{len(self.edits)} cell edit(s)"] if self.edits else []
        parts += [f"env {self.env_id}"] if self.env_id else []
        parts += [f"seeds from {self.seed}"] if self.seed is not None else []
        return ", ".join(parts) or "unchanged"


def parse_shifts(shifts: Sequence[Any]) -> tuple[EnvShift, ...]:
    """A list of shift specs -> :class:`EnvShift` tuple (unique names)."""
    if isinstance(shifts, (str, dict, EnvShift)) or not isinstance(shifts, (list, tuple)):
        raise TypeError(f"expected shifts as a list of shift specs, got {type(shifts).__name__}")
    out = tuple(EnvShift.of(s) for s in shifts)
    names = [s.name for s in out]
    dup = sorted({n for n in names if names.count(n) > 1})
    if dup:
        raise ValueError(f"expected unique shift names, got {dup} more than once")
    return out


# ---- the edited environment ------------------------------------------------------------------------
class EditedEnv:
    """An :class:`~dtwidgets.adapters.EnvAdapter` whose every ``reset(seed)`` is followed by ``edits``
    (``set_cell`` each, in order); everything else is the wrapped env's. An edit the env refuses
    raises a ValueError naming the shift, the edit and the seed."""

    def __init__(self, env: EnvAdapter, edits: Sequence[CellEdit], name: str = "edited"):
        if not isinstance(env, EnvAdapter):
            raise TypeError(f"expected an EnvAdapter to edit, got {type(env).__name__}")
        self.env, self.edits, self.name = env, tuple(CellEdit.of(e) for e in edits), str(name)

    def __repr__(self) -> str:
        return f"EditedEnv({self.env!r}, {len(self.edits)} edit(s), name={self.name!r})"

    def __getattr__(self, name: str):
        """Everything but ``reset`` is the wrapped env's (its protocol members, and what it declares beyond
        them: ``action_table``, ``deadly_objects``, ``mission``...)."""
        if name == "env":  # not set yet (copy / unpickle): no recursion
            raise AttributeError(name)
        return getattr(self.env, name)

    def reset(self, seed: int | None = None) -> np.ndarray:
        obs = self.env.reset(seed=seed)
        for i, e in enumerate(self.edits):
            try:
                obs = self.env.set_cell(e.x, e.y, e.obj, e.colour, e.state)
            except (ValueError, TypeError) as err:
                raise ValueError(f"shift {self.name!r}, edit {i} {e}: the env refused it after reset(seed={seed}): "
                                 f"{err}") from err
        return obs


def shifted_env(env: EnvAdapter, shift: EnvShift) -> EnvAdapter:
    """The environment of ``shift``: a copy of ``env`` (or a new ``shift.env_id`` one with the same
    ``max_steps``), wrapped in :class:`EditedEnv` when there are edits. ``env`` is not changed."""
    if shift.env_id is not None:
        from ..adapters.minigrid_env import MiniGridEnv, check_env_id

        check_env_id(shift.env_id)
        base: EnvAdapter = MiniGridEnv(shift.env_id, env.max_steps, seed=None)
    else:
        base = copy.deepcopy(env)
    return EditedEnv(base, shift.edits, shift.name) if shift.edits else base


# ---- matched states --------------------------------------------------------------------------------
@dataclass
class MatchedStates:
    """Train vs one shift at matched states: both envs reset (train with ``train_seed``, the shift with
    ``shift_seed``), the agent on the same cell facing the same way.

    Attributes:
        shift: the shift's name; rtg: the RTG both are conditioned on (reward units).
        train_map, shifted_map: :class:`~dtwidgets.analysis.policy_map.PolicyMap` over the cells
            free in BOTH grids (every facing direction), fresh single-step windows at timestep 0.
        difference: ``shifted_map.minus(train_map)`` (probability differences in [-1, 1]).
        pair_label: the attributed preference (``"a − b"``; default the train start state's best
            action minus its runner-up).
        train_attribution, shifted_attribution: :class:`~dtwidgets.analysis.attribution.LogitAttribution`
            at the start state of each env.
        attribution_change: ``[N]`` float32 ``shifted - train`` per component (logit units), in
            ``train_attribution.labels`` order.
    """

    shift: str
    train_seed: int
    shift_seed: int
    rtg: float
    train_map: Any
    shifted_map: Any
    difference: Any
    pair_label: str
    train_attribution: Any
    shifted_attribution: Any
    attribution_change: np.ndarray

    def top_changes(self, k: int = 5) -> list[tuple[str, float]]:
        """The ``k`` components whose direct contribution changed most, ``[(label, shifted - train)]``."""
        order = np.argsort(-np.abs(self.attribution_change))[:k]
        return [(self.train_attribution.labels[i], float(self.attribution_change[i])) for i in order]


def matched_states(adapter: ModelAdapter, train_env: EnvAdapter, shift_env: EnvAdapter, *, train_seed: int,
                   shift_seed: int | None = None, rtg: float = 0.9, a=None, b=None,
                   name: str = "shifted") -> MatchedStates:
    """Policy maps and attributions of train vs shifted at their episode starts (see :class:`MatchedStates`).
    Both envs are reset; a start with the agent elsewhere is no matched state (ValueError)."""
    import torch

    from ..analysis.attribution import logit_attribution
    from ..analysis.policy_map import agent_placements, free_cells, policy_map

    shift_seed = train_seed if shift_seed is None else shift_seed
    obs_t, obs_s = train_env.reset(seed=int(train_seed)), shift_env.reset(seed=int(shift_seed))
    (g_t, p_t, d_t), (g_s, p_s, d_s) = train_env.full_grid(), shift_env.full_grid()
    if (tuple(p_t), int(d_t)) != (tuple(p_s), int(d_s)):
        raise ValueError(f"shift {name!r}: no matched start state: the agent starts at {tuple(p_t)} facing {d_t} in "
                         f"train (seed {train_seed}) and at {tuple(p_s)} facing {d_s} shifted (seed {shift_seed})")
    ft, fs = {tuple(c) for c in free_cells(g_t).tolist()}, {tuple(c) for c in free_cells(g_s).tolist()}
    common = sorted(ft & fs)
    m_t = policy_map(adapter, agent_placements(train_env, cells=common), rtg, label=TRAIN)
    m_s = policy_map(adapter, agent_placements(shift_env, cells=common), rtg, label=name)
    w_t, w_s = adapter.make_window(obs_t, float(rtg), [0]), adapter.make_window(obs_s, float(rtg), [0])
    if a is None:
        with torch.inference_mode():
            order = torch.argsort(adapter.forward(w_t)[0], descending=True).tolist()
        a, b = order[0], (order[1] if b is None else b)
    at_t = logit_attribution(adapter, w_t, a, b, per_source=False)
    at_s = logit_attribution(adapter, w_s, a, b, per_source=False)
    return MatchedStates(name, int(train_seed), int(shift_seed), float(rtg), m_t, m_s,
                         m_s.minus(m_t, label=f"{name} − {TRAIN}"), at_t.pair_label, at_t, at_s,
                         (at_s.values.astype(np.float64) - at_t.values).astype(np.float32))


# ---- the comparison --------------------------------------------------------------------------------
@dataclass
class ShiftResult:
    """Train vs each shifted environment.

    Attributes:
        shifts: the :class:`EnvShift` specs; seeds: ``{environment: seed base}`` (episode ``j`` resets
            with ``seed + j``).
        behaviour: a :class:`~dtwidgets.data.behaviour.BehaviourResult` with ``names`` = ``"train"``
            then the shifts; ``cells[(name, r)]`` the :class:`BehaviourCell` at RTG index ``r``.
        matched: ``{shift: MatchedStates}`` at the start of episode 0 (None where the agent starts
            elsewhere than in train; ``unmatched[shift]`` says why).
    """

    shifts: tuple[EnvShift, ...]
    seeds: dict[str, int]
    behaviour: BehaviourResult
    matched: dict[str, MatchedStates | None]
    unmatched: dict[str, str] = field(default_factory=dict)

    @property
    def names(self) -> tuple[str, ...]:
        return self.behaviour.names

    def cell(self, name: str, rtg: float) -> BehaviourCell:
        """The :class:`BehaviourCell` of environment ``name`` at the target RTG closest to ``rtg``."""
        return self.behaviour.cell(name, rtg)

    def table(self) -> list[dict]:
        """One row per (environment, RTG), train first: ``environment``, ``label``, ``rtg``, ``n``, the
        outcome fractions ``goal`` / ``collision`` / ``timeout``, their ``*_change`` vs train,
        ``mean_return`` (reward units) and ``mean_length`` (steps)."""
        rows = []
        for r, rtg in enumerate(self.behaviour.rtgs):
            base = self.behaviour.cells[(TRAIN, r)].outcome_fractions
            for name in self.names:
                c = self.behaviour.cells[(name, r)]
                f = c.outcome_fractions
                rows.append({"environment": name, "label": self.behaviour.labels[name], "rtg": float(rtg),
                             "n": c.n_episodes, **f, **{f"{k}_change": f[k] - base[k] for k in OUTCOME_LABELS},
                             "mean_return": c.mean_return, "mean_length": c.mean_length})
        return rows

    def summary(self) -> str:
        lines = [f"{'environment':<24} {'RTG':>6} {'n':>4} {'goal':>6} {'Δgoal':>7} {'coll':>6} {'tout':>6} {'len':>6}"]
        for row in self.table():
            lines.append(f"{row['environment'][:24]:<24} {row['rtg']:6.2f} {row['n']:4d} {row['goal']:6.1%} "
                         f"{row['goal_change']:+7.1%} {row['collision']:6.1%} {row['timeout']:6.1%} "
                         f"{row['mean_length']:6.1f}")
        return "\n".join(lines)

    def figure(self, *, title: str | None = None):
        """Static plotly figure of the outcome rates (see :func:`~dtwidgets.analysis.figures.shift_figure`); the heat maps are
        ``self.behaviour.figure()``, the policy maps ``self.matched[name].difference.figure()``."""
        from ..analysis.figures import shift_figure

        return shift_figure(self, title=title)


def distribution_shift(adapter: ModelAdapter, env: EnvAdapter | str, shifts: Sequence[Any], rtgs=(0.9,),
                       n_episodes: int = 20, seed: int = 4_000_000, *, a=None, b=None, n_envs: int = 8,
                       max_steps: int | None = None, progress: bool = False,
                       torch_threads: int | None = 1) -> ShiftResult:
    """Evaluate ``adapter`` on the training env and on each shift; compare (see the module docstring).

    Args:
        env: the training :class:`~dtwidgets.adapters.EnvAdapter` (not changed: copies are run) or a
            MiniGrid id (``max_steps`` default 1000).
        shifts: a list of :class:`EnvShift` or dicts (:meth:`EnvShift.of`); names unique, not ``"train"``.
        rtgs, n_episodes, seed: every environment runs ``n_episodes`` per RTG; episode ``j`` resets
            with ``seed + j`` (a shift's own ``seed`` replaces ``seed``).
        a, b: the preference attributed at matched states (default: train's best minus runner-up).
        n_envs, progress, torch_threads: as :func:`~dtwidgets.data.record_rollouts`.
    """
    from ..adapters.minigrid_env import DEFAULT_MAX_STEPS, MiniGridEnv, check_env_id

    specs = parse_shifts(shifts)
    if isinstance(env, str):
        check_env_id(env)
        env = MiniGridEnv(env, DEFAULT_MAX_STEPS if max_steps is None else int(max_steps), seed=None)
    elif not isinstance(env, EnvAdapter):
        raise TypeError(f"expected env an EnvAdapter or a MiniGrid id, got {type(env).__name__}")
    elif max_steps is not None and int(max_steps) != env.max_steps:
        raise ValueError(f"expected max_steps=None or {env.max_steps} (the env's own limit), got {max_steps}")
    envs = {TRAIN: copy.deepcopy(env), **{s.name: shifted_env(env, s) for s in specs}}
    seeds = {TRAIN: int(seed), **{s.name: int(seed if s.seed is None else s.seed) for s in specs}}
    for name, e in envs.items():  # every edit checked on a real episode start before any rollout
        e.reset(seed=seeds[name])
    targets = np.atleast_1d(np.asarray(rtgs, dtype=np.float64)).reshape(-1)
    labels = {TRAIN: "training environment", **{s.name: s.describe() for s in specs}}
    cells: dict[tuple[str, int], BehaviourCell] = {}
    shapes: dict[str, tuple[int, int]] = {}
    E = int(n_episodes)
    for name, e in envs.items():
        traj = record_rollouts(adapter, e, rtgs=targets.tolist(), n_episodes=E, seed=seeds[name], n_envs=n_envs,
                              progress=progress, torch_threads=torch_threads)
        paths = replay_paths(e, traj)
        shapes[name] = tuple(int(v) for v in e.full_grid()[0].shape[:2])  # type: ignore[assignment]
        for r, rtg in enumerate(targets):
            cells[(name, r)] = _cell(name, labels[name], float(rtg), traj.select(np.arange(r * E, (r + 1) * E)),
                                     paths[r * E:(r + 1) * E], shapes[name])
    behaviour = BehaviourResult(tuple(envs), labels, targets, E, int(seed), cells, shapes[TRAIN], env.env_id)
    matched: dict[str, MatchedStates | None] = {}
    unmatched: dict[str, str] = {}
    for s in specs:
        try:
            matched[s.name] = matched_states(adapter, envs[TRAIN], envs[s.name], train_seed=seeds[TRAIN],
                                             shift_seed=seeds[s.name], rtg=float(targets[0]), a=a, b=b, name=s.name)
        except ValueError as err:
            if "no matched start state" not in str(err):
                raise
            matched[s.name], unmatched[s.name] = None, str(err)
    return ShiftResult(specs, seeds, behaviour, matched, unmatched)

"""Behaviour under intervention: outcome rates and where the agent goes, clean vs ablated / patched / steered.

``behaviour_under_intervention(adapter, env, {name: spec}, rtgs, n_episodes)`` runs
:func:`~dtwidgets.data.record_rollouts` once for the clean model and once per intervention (an
:class:`~dtwidgets.analysis.intervention.IntervenedAdapter`: the analyses' own ablation / steering /
patching hooks, see :func:`~dtwidgets.analysis.intervention.as_intervention`), all with the SAME
seeds, so episode ``j`` of every intervention and RTG starts from the same layout. Each recorded
episode is then replayed through the env adapter (reset with its seed, the recorded actions; the
replayed observations must equal the recorded ones) to read the agent's full-grid position at every
step (:func:`replay_paths`). Per (intervention, RTG) a :class:`BehaviourCell` holds outcome
fractions (``goal`` / ``collision`` / ``timeout``, the env adapter's outcome rule), mean return,
mean length, the trajectory heat map and how the goal was entered and what was hit.
"""
from __future__ import annotations

import copy
from dataclasses import dataclass, field

import numpy as np

from ..adapters.protocol import EnvAdapter, ModelAdapter
from ..vocabulary import OBJECTS
from .policies import _DIR_VEC
from .rollouts import record_rollouts
from .trajectories import Trajectories

OUTCOME_LABELS = ("goal", "collision", "timeout")
#: side of the goal cell the agent came from, by its last move ``final - previous`` (y grows downward)
ENTRY_SIDES = {(0, 1): "above", (1, 0): "left", (0, -1): "below", (-1, 0): "right"}
CLEAN = "clean"


@dataclass
class EpisodePath:
    """Where one episode went, from the env adapter's full grid.

    Attributes:
        positions: ``[L + 1, 2]`` int64 agent cell ``(x, y)`` before each of the ``L`` actions, then
            after the last one (grid cells; x right, y down, as ``EnvAdapter.full_grid``).
        facings: ``[L + 1]`` int64 facing (0 right, 1 down, 2 left, 3 up) at the same times.
        ahead: object name in the cell ahead of the agent just before its last action (what a final
            ``forward`` walked into: ``"ball"``, ``"wall"``, ``"goal"``, ``"empty"``...).
        goal: the goal cell ``(gx, gy)`` at the episode's start (the first in x-major order when
            there are several), None without one.
    """

    positions: np.ndarray
    facings: np.ndarray
    ahead: str
    goal: tuple[int, int] | None = None

    def route(self, side: str) -> bool:
        """Whether the episode visited the goal's column above it (``side="above"``: a cell
        ``(gx, y)`` with ``y < gy``) or the goal's row left of it (``"left"``: ``(x, gy)``, ``x < gx``),
        the goal cell itself excluded; False without a goal."""
        if self.goal is None:
            return False
        gx, gy = self.goal
        x, y = self.positions[:, 0], self.positions[:, 1]
        if side == "above":
            return bool(((x == gx) & (y < gy)).any())
        if side == "left":
            return bool(((y == gy) & (x < gx)).any())
        raise ValueError(f"expected side 'above' or 'left', got {side!r}")

    @property
    def entry_side(self) -> str:
        """Side of its final cell the agent entered it from (``above``/``left``/``below``/``right``),
        ``"none"`` when the last action did not move it."""
        d = tuple(int(v) for v in self.positions[-1] - self.positions[-2])
        return ENTRY_SIDES.get(d, "none")  # type: ignore[arg-type]


def _replay_env(env: EnvAdapter | str, traj: Trajectories) -> EnvAdapter:
    if isinstance(env, str):
        from ..adapters.minigrid_env import MiniGridEnv

        return MiniGridEnv(env, traj.max_steps, seed=None)
    return copy.deepcopy(env)  # the caller's env keeps its state


def replay_paths(env: EnvAdapter | str, traj: Trajectories) -> list[EpisodePath]:
    """Replay every episode of ``traj`` through (a copy of) ``env`` -> one :class:`EpisodePath` each.

    Each episode is reset with its recorded seed and stepped with its recorded actions; a replayed
    observation or outcome that differs from the record raises (another env, another ``max_steps``,
    or an env that is not reproducible from its seed)."""
    sim = _replay_env(env, traj)
    out = []
    for ep in traj.episodes():
        if ep.seed < 0:
            raise ValueError(f"episode {ep.index} has no reset seed: it cannot be replayed through {sim.env_id}")
        obs = sim.reset(seed=int(ep.seed))
        goals = np.argwhere(sim.full_grid()[0][..., 0] == OBJECTS.index("goal"))
        goal = (int(goals[0][0]), int(goals[0][1])) if len(goals) else None
        pos, dirs, ahead = [], [], "empty"
        for t in range(ep.length):
            if not np.array_equal(obs, ep.observations[t]):
                raise ValueError(f"replaying episode {ep.index} (seed {ep.seed}) in {sim.env_id}: the observation at "
                                 f"step {t} differs from the recorded one (another env or max_steps?)")
            grid, p, d = sim.full_grid()
            pos.append(p)
            dirs.append(d)
            if t == ep.length - 1:
                ahead = _object_ahead(grid, p, d)
            res = sim.step(int(ep.actions[t]))
            obs = res.observation
        if ep.length and (res.terminated, res.truncated) != (bool(ep.terminated[-1]), bool(ep.truncated[-1])):
            raise ValueError(f"replaying episode {ep.index} (seed {ep.seed}) in {sim.env_id}: it ended differently "
                             f"from the record")
        _, p, d = sim.full_grid()
        pos.append(p)
        dirs.append(d)
        out.append(EpisodePath(np.asarray(pos, np.int64).reshape(-1, 2), np.asarray(dirs, np.int64), ahead, goal))
    return out


def _object_ahead(grid: np.ndarray, pos, facing: int) -> str:
    x, y = pos[0] + _DIR_VEC[facing][0], pos[1] + _DIR_VEC[facing][1]
    if not (0 <= x < grid.shape[0] and 0 <= y < grid.shape[1]):
        return "outside"
    code = int(grid[x, y, 0])
    return OBJECTS[code] if code < len(OBJECTS) else str(code)


def heat_map(paths: list[EpisodePath], grid_shape: tuple[int, int]) -> np.ndarray:
    """``[W, H]`` int64 visit counts over the full grid: ``counts[x, y]`` = number of (episode, time)
    pairs with the agent in cell ``(x, y)``, counting its start cell and its cell after every action
    (``L + 1`` per episode of ``L`` steps; a turn in place counts the cell again)."""
    W, H = (int(v) for v in grid_shape)
    counts = np.zeros((W, H), np.int64)
    if paths:
        xy = np.concatenate([p.positions for p in paths])
        np.add.at(counts, (xy[:, 0], xy[:, 1]), 1)
    return counts


@dataclass
class BehaviourCell:
    """The behaviour of one model (clean or intervened) at one target RTG over ``n`` episodes.

    Attributes:
        intervention: the intervention's name (``"clean"`` for the baseline); label: what it does.
        rtg: the target RTG; n_episodes: episodes run.
        outcome_counts: ``{goal, collision, timeout: count}``.
        returns, lengths: ``[n]`` episode returns (reward units) and lengths (steps).
        heat_map: ``[W, H]`` int64 visit counts (see :func:`heat_map`; W, H the full grid's size).
        goal_entries: ``{above, left, below, right, none: count}`` over the goal episodes: the side
            of the goal cell the agent entered it from (:attr:`EpisodePath.entry_side`).
        collisions_with: ``{object name: count}`` over the collision episodes: what was in the cell
            ahead just before the last action (``"ball"`` = an obstacle, ``"wall"``...).
        trajectories: the recorded :class:`Trajectories`; paths: one :class:`EpisodePath` per episode.
    """

    intervention: str
    label: str
    rtg: float
    n_episodes: int
    outcome_counts: dict[str, int]
    returns: np.ndarray
    lengths: np.ndarray
    heat_map: np.ndarray
    goal_entries: dict[str, int]
    collisions_with: dict[str, int]
    trajectories: Trajectories = field(repr=False)
    paths: list[EpisodePath] = field(repr=False)

    @property
    def outcome_fractions(self) -> dict[str, float]:
        """``{goal, collision, timeout: fraction of the n episodes}`` (they sum to 1)."""
        return {k: v / max(self.n_episodes, 1) for k, v in self.outcome_counts.items()}

    @property
    def mean_return(self) -> float:
        return float(np.mean(self.returns)) if len(self.returns) else float("nan")

    @property
    def mean_length(self) -> float:
        return float(np.mean(self.lengths)) if len(self.lengths) else float("nan")

    def entry_fraction(self, side: str) -> float:
        """Fraction of the goal arrivals that entered the goal cell from ``side`` (NaN without any)."""
        n = self.outcome_counts["goal"]
        return self.goal_entries.get(side, 0) / n if n else float("nan")

    def route_fraction(self, side: str) -> float:
        """Fraction of ALL n episodes whose path visited the goal's column above it (``"above"``) or
        its row left of it (``"left"``): :meth:`EpisodePath.route`, reached or not."""
        return sum(p.route(side) for p in self.paths) / max(self.n_episodes, 1)

    def collision_fraction(self, obj: str = "ball") -> float:
        """Fraction of ALL n episodes that ended walking into ``obj`` (a collision with it ahead)."""
        return self.collisions_with.get(obj, 0) / max(self.n_episodes, 1)


def _cell(name: str, label: str, rtg: float, traj: Trajectories, paths: list[EpisodePath],
          grid_shape: tuple[int, int]) -> BehaviourCell:
    outcomes = traj.outcomes()
    counts = {k: int((outcomes == k).sum()) for k in OUTCOME_LABELS}
    if sum(counts.values()) != traj.n_episodes:
        raise ValueError(f"{name} at RTG {rtg:g}: {traj.n_episodes - sum(counts.values())} episode(s) did not finish")
    entries = {s: 0 for s in (*ENTRY_SIDES.values(), "none")}
    hits: dict[str, int] = {}
    for o, p in zip(outcomes, paths):
        if o == "goal":
            entries[p.entry_side] += 1
        elif o == "collision":
            hits[p.ahead] = hits.get(p.ahead, 0) + 1
    return BehaviourCell(name, label, float(rtg), traj.n_episodes, counts, traj.returns().astype(np.float64),
                         traj.episode_lengths.copy(), heat_map(paths, grid_shape), entries, dict(sorted(hits.items())),
                         traj, paths)


@dataclass
class BehaviourResult:
    """Behaviour of the clean model and each intervention at each target RTG (same seeds for all).

    Attributes:
        names: ``"clean"`` then the interventions' names; labels: ``{name: what it does}``.
        rtgs: ``[R]`` target RTGs; n_episodes: episodes per (name, RTG); seed: episode ``j`` resets
            with ``seed + j``.
        cells: ``{(name, r): BehaviourCell}`` for RTG index ``r``.
        grid_shape: ``(W, H)`` of the full grid (the heat maps' shape); env_id.
    """

    names: tuple[str, ...]
    labels: dict[str, str]
    rtgs: np.ndarray
    n_episodes: int
    seed: int
    cells: dict[tuple[str, int], BehaviourCell]
    grid_shape: tuple[int, int]
    env_id: str

    def cell(self, name: str, rtg: float) -> BehaviourCell:
        """The cell of intervention ``name`` at the target RTG closest to ``rtg``."""
        if name not in self.names:
            raise KeyError(f"expected an intervention in {self.names}, got {name!r}")
        return self.cells[(name, int(np.argmin(np.abs(self.rtgs - float(rtg)))))]

    def table(self) -> list[dict]:
        """One row per (intervention, RTG), the clean baseline first at each RTG: ``n``, the outcome
        fractions ``goal`` / ``collision`` / ``timeout``, ``mean_return`` (reward units),
        ``mean_length`` (steps), ``goal_from_<side>`` (fractions of goal arrivals), ``route_above`` /
        ``route_left`` and ``collision_<object>`` (fractions of all episodes)."""
        objs = sorted({o for c in self.cells.values() for o in c.collisions_with})
        rows = []
        for r, rtg in enumerate(self.rtgs):
            for name in self.names:
                c = self.cells[(name, r)]
                rows.append({"intervention": name, "label": self.labels[name], "rtg": float(rtg), "n": c.n_episodes,
                             **c.outcome_fractions, "mean_return": c.mean_return, "mean_length": c.mean_length,
                             **{f"goal_from_{s}": c.entry_fraction(s) for s in ENTRY_SIDES.values()},
                             "route_above": c.route_fraction("above"), "route_left": c.route_fraction("left"),
                             **{f"collision_{o}": c.collision_fraction(o) for o in objs}})
        return rows

    def summary(self) -> str:
        lines = [f"{'intervention':<22} {'RTG':>6} {'n':>4} {'goal':>6} {'coll':>6} {'tout':>6} {'return':>7} "
                 f"{'len':>6} {'g↓top':>6} {'g→left':>6}"]
        for row in self.table():
            lines.append(f"{row['intervention'][:22]:<22} {row['rtg']:6.2f} {row['n']:4d} {row['goal']:6.1%} "
                         f"{row['collision']:6.1%} {row['timeout']:6.1%} {row['mean_return']:7.3f} "
                         f"{row['mean_length']:6.1f} {row['goal_from_above']:6.1%} {row['goal_from_left']:6.1%}")
        return "\n".join(lines)

    def figure(self, *, title: str | None = None):
        """Static plotly figure: the heat maps (visits per episode, x across, y down) in a grid,
        one row per RTG, the clean baseline in the first column."""
        return behaviour_figure(self, title=title)


def behaviour_figure(res: BehaviourResult, *, title: str | None = None):
    """See :meth:`BehaviourResult.figure` (a plain ``plotly.graph_objects.Figure``; every label goes
    in as data, escaped by plotly)."""
    import plotly.graph_objects as go
    from plotly.subplots import make_subplots

    R, K = len(res.rtgs), len(res.names)
    subtitles = []
    for r, rtg in enumerate(res.rtgs):
        for name in res.names:
            f = res.cells[(name, r)].outcome_fractions
            subtitles.append(f"{name} · RTG {rtg:g}: goal {f['goal']:.0%}, coll {f['collision']:.0%}")
    fig = make_subplots(R, K, subplot_titles=subtitles, horizontal_spacing=0.03, vertical_spacing=0.08)
    vmax = max(float(c.heat_map.max()) / max(c.n_episodes, 1) for c in res.cells.values()) or 1.0
    for r in range(R):
        for k, name in enumerate(res.names):
            c = res.cells[(name, r)]
            fig.add_trace(go.Heatmap(z=(c.heat_map.T / max(c.n_episodes, 1)).tolist(), zmin=0, zmax=vmax,
                                     colorscale="Viridis", showscale=(r == 0 and k == K - 1),
                                     colorbar=dict(title="visits / episode"),
                                     hovertemplate="(%{x}, %{y}): %{z:.2f} visits/episode<extra></extra>"),
                          r + 1, k + 1)
            fig.update_yaxes(autorange="reversed", scaleanchor=f"x{r * K + k + 1}", row=r + 1, col=k + 1)
    fig.update_layout(title=title or f"where the agent goes ({res.n_episodes} episodes each, {res.env_id})",
                      width=max(500, 260 * K), height=max(320, 280 * R))
    return fig


def behaviour_under_intervention(adapter: ModelAdapter, env: EnvAdapter | str, interventions: dict,
                                 rtgs=(-1.0, 0.9), n_episodes: int = 20, seed: int = 3_000_000, *, n_envs: int = 32,
                                 max_steps: int | None = None, progress: bool = False,
                                 torch_threads: int | None = 1) -> BehaviourResult:
    """Rollouts of the clean model and of each intervention, summarised (see the module docstring).

    Args:
        adapter: the clean :class:`~dtwidgets.adapters.ModelAdapter`.
        env: an :class:`~dtwidgets.adapters.EnvAdapter` (its own state is reset by the rollouts,
            as :func:`~dtwidgets.data.record_rollouts` does) or a MiniGrid id.
        interventions: ``{name: spec}``, each spec as
            :func:`~dtwidgets.analysis.intervention.as_intervention` reads it (component names =
            zero ablation at every position, forward hooks, a dict spec, an ``IntervenedAdapter``).
            ``"clean"`` is reserved for the baseline.
        rtgs: target RTGs (every intervention runs at every one); n_episodes: episodes per
            (intervention, RTG); seed: episode ``j`` resets with ``seed + j`` everywhere.
        n_envs, max_steps, progress, torch_threads: as :func:`~dtwidgets.data.record_rollouts`.
    """
    from ..analysis.intervention import as_intervention

    if not isinstance(interventions, dict):
        raise TypeError(f"expected interventions as a dict {{name: spec}}, got {type(interventions).__name__}")
    if CLEAN in interventions:
        raise ValueError(f"the name {CLEAN!r} is reserved for the baseline; rename that intervention")
    adapters: dict[str, ModelAdapter] = {CLEAN: adapter}
    labels = {CLEAN: "no intervention"}
    for name, spec in interventions.items():
        iv = as_intervention(adapter, spec, str(name))
        adapters[str(name)], labels[str(name)] = iv, iv.label
    targets = np.atleast_1d(np.asarray(rtgs, dtype=np.float64)).reshape(-1)
    cells: dict[tuple[str, int], BehaviourCell] = {}
    grid_shape: tuple[int, int] = (0, 0)
    env_id = ""
    for name, each in adapters.items():
        traj = record_rollouts(each, env, rtgs=targets.tolist(), n_episodes=n_episodes, seed=seed, n_envs=n_envs,
                              max_steps=max_steps, progress=progress, torch_threads=torch_threads)
        paths = replay_paths(env, traj)
        if grid_shape == (0, 0):
            sim = _replay_env(env, traj)
            sim.reset(seed=int(seed))
            grid_shape, env_id = tuple(int(v) for v in sim.full_grid()[0].shape[:2]), traj.env_id  # type: ignore[assignment]
        E = int(n_episodes)
        for r, rtg in enumerate(targets):
            idx = np.arange(r * E, (r + 1) * E)
            cells[(name, r)] = _cell(name, labels[name], float(rtg), traj.select(idx), paths[r * E:(r + 1) * E],
                                     grid_shape)
    return BehaviourResult(tuple(adapters), labels, targets, int(n_episodes), int(seed), cells, grid_shape, env_id)

"""Policy maps: the model's action distribution with the agent placed on every free cell of a grid.

For the current grid (edited or not) the agent is put on every free cell with every facing; each
placement's partial observation comes from the env itself (``EnvAdapter.observation_at``, MiniGrid's
own view, occlusion and carried object) and every placement is one row of ONE batched forward.

**Window convention** (``history``):

* ``history=None`` (default, "fresh"): each row is a single-step window — the placement's
  observation at ``timestep`` (default 0) with ``rtg``, left-padded as
  :func:`~dtwidgets.adapters.window.make_window` pads (so the model sees "an episode that starts here").
* ``history=window`` (a one-row :class:`~dtwidgets.adapters.TrajectoryWindow`, e.g. the Explorer's
  current one): the recorded history is kept and only its **last** observation is replaced by the
  placement's; the RTG of every step is set to ``rtg`` (the RTG-scan convention) unless ``rtg=None``,
  which keeps the window's own RTGs.

Variants (an ablated component, a patched activation, a steering vector, a probe direction, an SAE
feature clamp...) are all forward hooks: pass ``fwd_hooks`` (a list of ``(hook name, fn)``, or a
callable ``n_rows -> list`` for hooks that need the batch size, such as
:func:`~dtwidgets.analysis.ablation_hooks`). Two maps give a difference map with :meth:`PolicyMap.minus`.
"""
from __future__ import annotations

from dataclasses import dataclass, replace
from typing import Callable, Sequence

import numpy as np
import torch

from ..adapters.schema import OBJECTS
from ..adapters.window import TrajectoryWindow
from ..adapters.protocol import ModelAdapter
from . import _common as C

FACING_NAMES = ("right", "down", "left", "up")
#: objects the agent can be placed on (an open door too; see :func:`free_cells`)
FREE_OBJECTS = ("empty", "floor", "agent")


@dataclass
class Placements:
    """The agent placed on cells of a full grid, with the partial observation of each placement.

    Attributes:
        grid: ``[gW, gH, 3]`` uint8 the full grid (``EnvAdapter.full_grid``, the real agent drawn in).
        agent_pos, agent_dir: where the real agent is.
        cells: ``[N, 2]`` int64 ``(x, y)`` of each placement.
        facings: ``[N]`` int64 facing of each placement (0 right, 1 down, 2 left, 3 up).
        observations: ``[N, W, H, 3]`` uint8 partial observation of each placement.
    """

    grid: np.ndarray
    agent_pos: tuple[int, int]
    agent_dir: int
    cells: np.ndarray
    facings: np.ndarray
    observations: np.ndarray

    def __len__(self) -> int:
        return int(self.cells.shape[0])

    def index_of(self, x: int, y: int, facing: int) -> int:
        """Row of placement ``(x, y, facing)`` (ValueError if it is not a placement)."""
        hit = np.flatnonzero((self.cells[:, 0] == x) & (self.cells[:, 1] == y) & (self.facings == facing))
        if not len(hit):
            raise ValueError(f"({x}, {y}) facing {facing} is not a placement (not a free cell?)")
        return int(hit[0])


def free_cells(grid: np.ndarray) -> np.ndarray:
    """``[K, 2]`` cells ``(x, y)`` of a full grid ``[gW, gH, 3]`` the agent can stand on: empty, floor,
    an open door and the agent's own cell; in x-major order."""
    g = np.asarray(grid)
    obj = g[..., 0]
    ok = np.isin(obj, [OBJECTS.index(o) for o in FREE_OBJECTS])
    ok |= (obj == OBJECTS.index("door")) & (g[..., 2] == 0)
    return np.argwhere(ok).astype(np.int64)


def agent_placements(env, facings: Sequence[int] | None = None, cells=None) -> Placements:
    """Every free cell (or the given ``cells`` ``[(x, y), ...]``) × ``facings`` of ``env``'s current grid.

    ``facings=None`` follows the env's actions (:func:`~dtwidgets.adapters.actions.action_table`):
    all four facings when the agent has one (turns / forward), else one placement per cell
    (facing 0, which such an env ignores: FrozenLake, CliffWalking).
    Only reads the env (``full_grid`` and ``observation_at``); the real agent's cell is a placement too.
    """
    from ..adapters.actions import action_table

    if facings is None:
        facings = (0, 1, 2, 3) if action_table(env).has_facing else (0,)
    grid, pos, d = env.full_grid()
    cl = free_cells(grid) if cells is None else np.asarray(cells, dtype=np.int64).reshape(-1, 2)
    dirs = [int(x) for x in facings]
    if any(x not in (0, 1, 2, 3) for x in dirs):
        raise ValueError(f"facings: expected values in 0..3 (0 right, 1 down, 2 left, 3 up), got {list(facings)}")
    cells_n = np.repeat(cl, len(dirs), axis=0)
    dirs_n = np.tile(np.asarray(dirs, dtype=np.int64), len(cl))
    obs = np.stack([env.observation_at(int(x), int(y), int(k)) for (x, y), k in zip(cells_n, dirs_n)]) if len(cl) \
        else np.zeros((0, *env.schema.observation_shape), np.uint8)
    return Placements(np.asarray(grid, np.uint8), (int(pos[0]), int(pos[1])), int(d), cells_n, dirs_n, obs)


def placement_windows(adapter: ModelAdapter, placements: Placements, rtg=1.0, *, history: TrajectoryWindow | None = None,
                      timestep: int = 0) -> TrajectoryWindow:
    """The ``N``-row window of a policy map (see the module docstring for the convention)."""
    obs = torch.as_tensor(placements.observations, device="cpu")  # window data: the adapter moves it
    n = len(placements)
    if n == 0:
        raise ValueError("expected at least one placement, got none (no free cell?)")
    if history is None:
        if rtg is None:
            raise ValueError("rtg=None keeps a history window's RTGs; without history give an RTG value")
        base = adapter.make_window(placements.observations[0], float(rtg), [int(timestep)])
    else:
        if history.batch_size != 1:
            raise ValueError(f"expected a one-row history window, got {history.batch_size} rows")
        base = history if rtg is None else history.with_rtg(float(rtg))
    w = base.repeat(n)
    o = w.observations.clone()
    if o.shape[2:] != obs.shape[1:]:
        raise ValueError(f"expected history observations of shape {tuple(obs.shape[1:])} (raw MiniGrid codes), "
                         f"got {tuple(o.shape[2:])}")
    o[:, -1] = obs.to(o.dtype)
    return TrajectoryWindow(o, w.actions, w.rtgs, w.timesteps, w.n_pad)


@dataclass
class PolicyMap:
    """The action distribution of every placement.

    Attributes:
        grid, agent_pos, agent_dir, cells ``[N, 2]``, facings ``[N]``: as :class:`Placements`.
        action_names: ``A`` names.
        logits: ``[N, A]`` action logits (for a difference map: logit differences).
        probs: ``[N, A]`` softmax probabilities (for a difference map: probability differences, in [-1, 1]).
        rtg: the RTG (None when the history's own RTGs were kept); label: what this map shows.
        kind: ``"policy"`` or ``"difference"``.
    """

    grid: np.ndarray
    agent_pos: tuple[int, int]
    agent_dir: int
    cells: np.ndarray
    facings: np.ndarray
    action_names: tuple[str, ...]
    logits: np.ndarray
    probs: np.ndarray
    rtg: float | None
    label: str
    kind: str = "policy"

    def probs_grid(self) -> np.ndarray:
        """``[gW, gH, 4, A]`` probabilities per cell and facing (NaN where no placement)."""
        out = np.full((*self.grid.shape[:2], 4, self.probs.shape[1]), np.nan, np.float32)
        out[self.cells[:, 0], self.cells[:, 1], self.facings] = self.probs
        return out

    def at(self, x: int, y: int, facing: int) -> dict[str, float]:
        """``{action name: probability}`` of one placement."""
        hit = np.flatnonzero((self.cells[:, 0] == x) & (self.cells[:, 1] == y) & (self.facings == facing))
        if not len(hit):
            raise ValueError(f"({x}, {y}) facing {facing} is not a placement of this map")
        return dict(zip(self.action_names, map(float, self.probs[hit[0]])))

    def minus(self, other: "PolicyMap", label: str | None = None) -> "PolicyMap":
        """Difference map ``self - other`` (probabilities and logits); placements must match."""
        if not (np.array_equal(self.cells, other.cells) and np.array_equal(self.facings, other.facings)):
            raise ValueError("expected two policy maps over the same placements (same grid and facings)")
        return replace(self, logits=self.logits - other.logits, probs=self.probs - other.probs, kind="difference",
                       rtg=self.rtg if self.rtg == other.rtg else None,
                       label=label or f"{self.label} − {other.label}")

    def figure(self, **kw):
        """A static plotly figure (see :func:`dtwidgets.analysis.figures.policy_map_figure`)."""
        from .figures import policy_map_figure

        return policy_map_figure(self, **kw)


def _resolve_hooks(fwd_hooks, n: int) -> list:
    if fwd_hooks is None:
        return []
    return list(fwd_hooks(n)) if callable(fwd_hooks) else list(fwd_hooks)


def maps_from_logits(adapter: ModelAdapter, placements: Placements, logits: torch.Tensor, rtg, label: str) -> PolicyMap:
    """Wrap ``[N, A]`` logits of ``placements`` as a :class:`PolicyMap`."""
    return PolicyMap(placements.grid, placements.agent_pos, placements.agent_dir, placements.cells,
                     placements.facings, tuple(adapter.action_names), C.np32(logits), C.softmax_np(logits),
                     None if rtg is None else float(rtg), label)


@torch.inference_mode()
def policy_map(adapter: ModelAdapter, placements: Placements, rtg=1.0, *, history: TrajectoryWindow | None = None,
               timestep: int = 0, fwd_hooks: Sequence | Callable[[int], Sequence] | None = None,
               label: str | None = None) -> PolicyMap:
    """One batched forward over every placement -> :class:`PolicyMap`.

    Args:
        placements: from :func:`agent_placements` (compute once per grid; reuse for every variant).
        rtg: return-to-go (reward units); see the module docstring for ``history`` and ``timestep``.
        fwd_hooks: forward hooks of the variant (list, or ``n_rows -> list``); none for the plain map.
        label: shown by widgets and figures (default ``"RTG {rtg}"``).
    """
    w = placement_windows(adapter, placements, rtg, history=history, timestep=timestep)
    hooks = _resolve_hooks(fwd_hooks, w.batch_size)
    logits = adapter.run_with_hooks(w, hooks) if hooks else adapter.forward(w)
    return maps_from_logits(adapter, placements, logits, rtg, label or ("history RTGs" if rtg is None else f"RTG {rtg:g}"))


@torch.inference_mode()
def rtg_policy_maps(adapter: ModelAdapter, placements: Placements, rtgs: Sequence[float], *, history=None, timestep: int = 0,
                    fwd_hooks=None) -> list[PolicyMap]:
    """One map per RTG, all in ONE batched forward (``len(rtgs) * N`` rows)."""
    ws = [placement_windows(adapter, placements, r, history=history, timestep=timestep) for r in rtgs]
    w = TrajectoryWindow.cat(ws)
    hooks = _resolve_hooks(fwd_hooks, w.batch_size)
    logits = adapter.run_with_hooks(w, hooks) if hooks else adapter.forward(w)
    n = len(placements)
    return [maps_from_logits(adapter, placements, logits[i * n:(i + 1) * n], r, f"RTG {r:g}")
            for i, r in enumerate(rtgs)]

"""Behaviour policies for collecting grid-world trajectories. They act from the full state of an
:class:`~dtwidgets.adapters.EnvAdapter` (``env.full_grid()``: object codes, agent position and facing)
and look their actions up by kind in the env's :class:`~dtwidgets.adapters.actions.ActionTable`
(relative turns / forward in MiniGrid, absolute moves in FrozenLake or CliffWalking); a policy whose
actions the env does not have is refused with an error naming them. What contact is deadly comes from
the env's world (``env.deadly_objects``, default lava only).

Specs are strings ``"name"`` or ``"name:eps"`` where ``eps`` is the probability of replacing the
policy's action by a uniformly random one (which may be unsafe):

* ``bfs`` — shortest path (breadth-first search over position x facing) to the nearest goal,
  never stepping into an occupied cell or lava (replans every step; turns in place when blocked).
* ``survivor`` — never enters the goal nor an occupied cell, so it survives until the step limit
  (return 0): half of its steps approach the goal along the planner's path (turning away when facing
  it), the others are a safe random walk.
* ``suicidal`` — drives forward into walls/obstacles (lava elsewhere) and avoids the goal (return -1).
* ``random`` — uniformly random actions.
* ``planner`` — plans over (position, facing, carried key, door states): picks up keys, opens
  doors and reaches the goal (solves DoorKey); see :mod:`dtwidgets.data.planner`.
"""
from __future__ import annotations

from collections import deque

import numpy as np

from ..adapters.actions import MOVE_KINDS, MOVE_OFFSETS, RELATIVE_KINDS, ActionTable, action_table
from ..adapters.protocol import EnvAdapter
from ..adapters.schema import OBJECTS, STATES

POLICY_NAMES = ("bfs", "survivor", "suicidal", "random", "planner")
LEFT, RIGHT, FORWARD = 0, 1, 2  # MiniGrid's indices (the planner's own moves are looked up by kind)
_DIR_VEC = ((1, 0), (0, 1), (-1, 0), (0, -1))
#: what kills on contact when the env does not say (``env.deadly_objects``)
DEFAULT_DEADLY = ("lava",)


def parse_spec(spec: str) -> tuple[str, float]:
    """``"bfs:0.1"`` -> ``("bfs", 0.1)``; clear error for unknown names or bad noise levels."""
    if not isinstance(spec, str):
        raise TypeError(f"expected a policy spec string like 'bfs' or 'bfs:0.1', got {spec!r}")
    name, _, eps = spec.partition(":")
    if name not in POLICY_NAMES:
        raise ValueError(f"unknown behaviour policy {spec!r}: expected one of {POLICY_NAMES}, optionally "
                         f"with a noise level, e.g. 'bfs:0.1'")
    try:
        e = float(eps) if eps else 0.0
    except ValueError:
        raise ValueError(f"expected a noise level in [0, 1] after ':' in {spec!r}") from None
    if not 0.0 <= e <= 1.0:
        raise ValueError(f"expected a noise level in [0, 1] in {spec!r}, got {e}")
    return name, e


_GOAL, _LAVA, _DOOR, _AGENT = (OBJECTS.index(n) for n in ("goal", "lava", "door", "agent"))
_OVERLAP = {OBJECTS.index(n) for n in ("unseen", "empty", "floor", "goal")}  # cells an agent can stand on
_OPEN = STATES.index("open")


class GridState:
    """What a policy sees: the full grid of an :class:`~dtwidgets.adapters.EnvAdapter`
    (``full_grid()``: codes ``[gW, gH, 3]``, agent position and facing) and which objects are
    deadly on contact (the env's ``deadly_objects``: Dynamic Obstacles says everything but the goal)."""

    def __init__(self, env: EnvAdapter):
        self.grid, (self.x, self.y), self.dir = env.full_grid()
        self.W, self.H = self.grid.shape[:2]
        names = tuple(getattr(env, "deadly_objects", DEFAULT_DEADLY))
        unknown = [n for n in names if n not in OBJECTS]
        if unknown:
            raise ValueError(f"expected env.deadly_objects to name objects in {OBJECTS}, got {unknown}")
        self.deadly_codes = frozenset(OBJECTS.index(n) for n in names)

    def obj(self, x: int, y: int) -> int:
        """Object code at ``(x, y)`` (the agent's own cell reads as empty)."""
        o = int(self.grid[x, y, 0])
        return OBJECTS.index("empty") if o == _AGENT else o

    def free(self, x: int, y: int) -> bool:
        """Can the agent safely stand on ``(x, y)`` (not lava, not blocked)?"""
        o = self.obj(x, y)
        return o in _OVERLAP or (o == _DOOR and int(self.grid[x, y, 2]) == _OPEN)

    def front(self) -> int | None:
        """Object code in front of the agent (None outside the grid or empty)."""
        dx, dy = _DIR_VEC[self.dir]
        x, y = self.x + dx, self.y + dy
        if not (0 <= x < self.W and 0 <= y < self.H):
            return None
        o = self.obj(x, y)
        return None if o in (OBJECTS.index("empty"), OBJECTS.index("unseen")) else o

    def deadly(self, o: int | None) -> bool:
        """Would moving forward into an object ``o`` end the episode with a penalty?"""
        return o is not None and o in self.deadly_codes

    def move_target(self, x: int, y: int, kind: str) -> tuple[int, int] | None:
        """Where absolute move ``kind`` from ``(x, y)`` leads: the neighbour cell, or None when it is
        outside the grid or not free (the agent stays)."""
        dx, dy = MOVE_OFFSETS[kind]
        nx, ny = x + dx, y + dy
        return (nx, ny) if 0 <= nx < self.W and 0 <= ny < self.H and self.free(nx, ny) else None


def goal_cells(s: GridState) -> set[tuple[int, int]]:
    """Cells ``(x, y)`` holding a goal."""
    return {(int(x), int(y)) for x, y in zip(*np.nonzero(s.grid[..., 0] == _GOAL))}


def bfs_moves(s: GridState, moves: dict[str, int]) -> int | None:
    """First action (an index from ``moves``, ``{move kind: action index}``) of a shortest path of
    absolute moves from the agent to a goal cell through free cells, or None."""
    goals = goal_cells(s)
    if not goals or (s.x, s.y) in goals:
        return None
    seen: dict = {(s.x, s.y): None}
    q = deque([(s.x, s.y)])
    while q:
        x, y = q.popleft()
        for kind, a in moves.items():
            n = s.move_target(x, y, kind)
            if n is None or n in seen:
                continue
            seen[n] = a if seen[(x, y)] is None else seen[(x, y)]
            if n in goals:
                return seen[n]
            q.append(n)
    return None


def bfs_action(s: GridState) -> int | None:
    """First action of a shortest path (MiniGrid's left/right/forward) from the agent to a goal cell, or None."""
    goals = goal_cells(s)
    if not goals or (s.x, s.y) in goals:
        return None
    start = (s.x, s.y, s.dir)
    seen: dict = {start: None}
    q = deque([start])
    while q:
        st = q.popleft()
        x, y, d = st
        dx, dy = _DIR_VEC[d]
        nx, ny = x + dx, y + dy
        succ = []
        if 0 <= nx < s.W and 0 <= ny < s.H and s.free(nx, ny):
            succ.append(((nx, ny, d), FORWARD))
        succ.append(((x, y, (d - 1) % 4), LEFT))
        succ.append(((x, y, (d + 1) % 4), RIGHT))
        for n, a in succ:
            if n in seen:
                continue
            seen[n] = (st, a) if seen[st] is None else seen[st]
            if (n[0], n[1]) in goals:
                return seen[n][1] if seen[n] is not None else a
            q.append(n)
    return None


class Policy:
    """A behaviour policy: ``policy(env) -> action`` for an :class:`~dtwidgets.adapters.EnvAdapter`; ``name`` is its spec.

    ``table`` (default MiniGrid's left/right/forward) says which index does what: with relative
    actions the policies turn and step forward; with absolute moves (FrozenLake, CliffWalking) they
    move. A policy other than ``random`` refuses (ValueError) a table without the actions it needs.
    """

    def __init__(self, spec: str, rng: np.random.Generator, n_actions: int = 3, table: ActionTable | None = None):
        self.name = spec
        self.kind, self.eps = parse_spec(spec)
        self.rng = rng
        self.n_actions = int(n_actions)
        self.table = table or ActionTable.from_names(("left", "right", "forward", "pickup", "drop", "toggle",
                                                      "done")[:max(3, self.n_actions)])
        self.moves: dict[str, int] = {}
        if self.kind == "planner":
            from .planner import _KINDS

            self.table.require(_KINDS if self.table.has_facing else MOVE_KINDS, f"behaviour policy {spec!r}")
        elif self.kind != "random":
            if self.table.has_facing:
                idx = self.table.require(RELATIVE_KINDS, f"behaviour policy {spec!r}")
                if (idx["turn_left"], idx["turn_right"], idx["forward"]) != (LEFT, RIGHT, FORWARD):
                    raise ValueError(f"behaviour policy {spec!r} expects turn left, turn right, forward at indices "
                                     f"0, 1, 2 (MiniGrid's order), got {idx}; reorder the env's actions")
            else:
                self.moves = self.table.require(MOVE_KINDS, f"behaviour policy {spec!r}")

    def __repr__(self) -> str:
        return f"Policy({self.name!r})"

    def __call__(self, env: EnvAdapter) -> int:
        if self.kind == "random" or (self.eps > 0 and self.rng.random() < self.eps):
            return int(self.rng.integers(self.n_actions))
        if self.kind == "planner":
            from .planner import plan_action

            a = plan_action(env, self.table)
            return int(self.rng.integers(self.n_actions)) if a is None else a
        s = GridState(env)
        if self.moves:
            return getattr(self, "_moves_" + self.kind)(s)
        return getattr(self, "_" + self.kind)(s)

    # ---- absolute moves (no facing) ---------------------------------------------------------
    def _neighbours(self, s: GridState) -> list[tuple[int, int | None]]:
        """``(action, object code entered or bumped into)`` of each move (None: empty or off-grid)."""
        out = []
        for kind, a in self.moves.items():
            dx, dy = MOVE_OFFSETS[kind]
            x, y = s.x + dx, s.y + dy
            inside = 0 <= x < s.W and 0 <= y < s.H
            o = s.obj(x, y) if inside else None
            out.append((a, None if o in (None, OBJECTS.index("empty"), OBJECTS.index("unseen")) else o))
        return out

    def _pick(self, options: list[int]) -> int:
        return int(options[int(self.rng.integers(len(options)))])

    def _moves_bfs(self, s: GridState) -> int:
        a = bfs_moves(s, self.moves)
        safe = [b for b, o in self._neighbours(s) if not s.deadly(o)]
        return a if a is not None else self._pick(safe or list(self.moves.values()))

    def _moves_survivor(self, s: GridState) -> int:
        near = self._neighbours(s)
        safe = [a for a, o in near if not s.deadly(o) and o != _GOAL]
        if self.rng.random() < 0.5:
            a = bfs_moves(s, self.moves)
            if a is not None and a in safe:
                return a
        return self._pick(safe or list(self.moves.values()))

    def _moves_suicidal(self, s: GridState) -> int:
        near = self._neighbours(s)
        deadly = [a for a, o in near if s.deadly(o)]
        if deadly:
            return self._pick(deadly)
        return self._pick([a for a, o in near if o != _GOAL] or list(self.moves.values()))

    # ---- relative actions (MiniGrid) --------------------------------------------------------

    def _turn(self) -> int:
        return LEFT if self.rng.random() < 0.5 else RIGHT

    def _bfs(self, s: GridState) -> int:
        a = bfs_action(s)
        return self._turn() if a is None else a

    def _survivor(self, s: GridState) -> int:
        f = s.front()
        if f == _GOAL:
            return self._turn()
        if self.rng.random() < 0.5:  # approach the goal without ever entering it
            a = bfs_action(s)
            if a is not None and (a != FORWARD or f is None):
                return a
        if f is None and self.rng.random() < 0.6:
            return FORWARD
        return self._turn()

    def _suicidal(self, s: GridState) -> int:
        f = s.front()
        if s.deadly(f):
            return FORWARD
        if f == _GOAL:
            return self._turn()
        if f is None and self.rng.random() < 0.75:
            return FORWARD
        return self._turn()


def make_policy(spec: str, rng: np.random.Generator | int | None = None, n_actions: int = 3,
                table: ActionTable | None = None) -> Policy:
    """A :class:`Policy` from a spec string (``"bfs"``, ``"bfs:0.2"``, ``"survivor"``, ``"suicidal"``,
    ``"random"``, ``"planner"``) for actions ``table`` (default MiniGrid's)."""
    if not isinstance(rng, np.random.Generator):
        rng = np.random.default_rng(rng)
    return Policy(spec, rng, n_actions, table)


def policy_for(spec: str, env: EnvAdapter, rng: np.random.Generator | int | None = None) -> Policy:
    """A :class:`Policy` for ``env``'s own actions (its :func:`~dtwidgets.adapters.actions.action_table`)."""
    return make_policy(spec, rng, len(env.action_names), action_table(env))

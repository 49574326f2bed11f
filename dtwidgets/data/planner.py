"""The ``planner`` behaviour policy: breadth-first search over (position, facing, carried key,
keys taken, doors opened), so the agent picks up keys, opens (or unlocks) doors and reaches the goal.

It reads the world through the :class:`~dtwidgets.adapters.EnvAdapter` protocol: ``full_grid()``
(object codes, agent position and facing), the optional ``carrying`` (``(object, colour)`` names
or None) and ``deadly_objects`` (never entered), and its actions by kind from the env's
:class:`~dtwidgets.adapters.actions.ActionTable` (``turn_left``, ``turn_right``, ``forward``,
``pickup``, ``toggle``). Rules are MiniGrid's: a key blocks its cell until picked up, a closed door
opens when toggled, a locked door only with the carried key of its colour; one object is carried
at a time. Balls and boxes are obstacles (they are never moved). Without a facing (absolute moves)
it is the plain shortest path (:func:`~dtwidgets.data.policies.bfs_moves`).
"""
from __future__ import annotations

from collections import deque

import numpy as np

from ..adapters.actions import MOVE_KINDS, ActionTable
from ..adapters.schema import COLOURS, OBJECTS, STATES

_DIR_VEC = ((1, 0), (0, 1), (-1, 0), (0, -1))
_KINDS = ("turn_left", "turn_right", "forward")  # required; "pickup" and "toggle" are used when present
_WALK = {OBJECTS.index(n) for n in ("empty", "floor", "goal", "unseen", "agent")}
_KEY, _DOOR, _GOAL = (OBJECTS.index(n) for n in ("key", "door", "goal"))
_OPEN, _LOCKED = STATES.index("open"), STATES.index("locked")


class _World:
    """The static part of a plan: the grid, its keys and doors (indexed), deadly cells and goals."""

    def __init__(self, grid: np.ndarray, deadly: frozenset, interact: frozenset = frozenset({"pickup", "toggle"})):
        self.grid = grid
        self.interact = interact
        self.W, self.H = grid.shape[:2]
        self.keys = {(int(x), int(y)): i for i, (x, y) in enumerate(np.argwhere(grid[..., 0] == _KEY))}
        self.doors = {(int(x), int(y)): i for i, (x, y) in enumerate(np.argwhere(grid[..., 0] == _DOOR))}
        self.deadly = deadly
        self.goals = {(int(x), int(y)) for x, y in np.argwhere(grid[..., 0] == _GOAL)}

    def walkable(self, x: int, y: int, keys_taken: int, doors_open: int) -> bool:
        if not (0 <= x < self.W and 0 <= y < self.H):
            return False
        o = int(self.grid[x, y, 0])
        if o in self.deadly:
            return False
        if (x, y) in self.keys:
            return bool(keys_taken >> self.keys[(x, y)] & 1)
        if (x, y) in self.doors:
            return int(self.grid[x, y, 2]) == _OPEN or bool(doors_open >> self.doors[(x, y)] & 1)
        return o in _WALK

    def successors(self, st, carry: int | None):
        """``(action kind, next state)`` of plan state ``st = (x, y, d, carry, keys_taken, doors_open)``."""
        x, y, d, carry, keys, doors = st
        yield "turn_left", (x, y, (d - 1) % 4, carry, keys, doors)
        yield "turn_right", (x, y, (d + 1) % 4, carry, keys, doors)
        fx, fy = x + _DIR_VEC[d][0], y + _DIR_VEC[d][1]
        if self.walkable(fx, fy, keys, doors):
            yield "forward", (fx, fy, d, carry, keys, doors)
        k = self.keys.get((fx, fy))
        if k is not None and not keys >> k & 1 and carry is None and "pickup" in self.interact:
            yield "pickup", (x, y, d, int(self.grid[fx, fy, 1]), keys | 1 << k, doors)
        j = self.doors.get((fx, fy))
        if j is not None and not doors >> j & 1 and int(self.grid[fx, fy, 2]) != _OPEN and "toggle" in self.interact:
            locked = int(self.grid[fx, fy, 2]) == _LOCKED
            if not locked or carry == int(self.grid[fx, fy, 1]):
                yield "toggle", (x, y, d, carry, keys, doors | 1 << j)


def plan(grid: np.ndarray, pos, facing: int, carrying=None, deadly=("lava",), interact=("pickup", "toggle"),
         max_states: int = 200_000):
    """Shortest action-kind sequence to a goal (a list of :data:`_KINDS` names), or None.

    Args:
        grid: ``[gW, gH, 3]`` full grid codes; pos ``(x, y)``; facing 0..3 (0 right, 1 down, 2 left, 3 up).
        carrying: ``(object, colour)`` names of the carried object, or None.
        deadly: object names never entered.
        interact: the interactions the env offers (``pickup``, ``toggle``).
    """
    deadly_codes = frozenset(OBJECTS.index(n) for n in deadly)
    world = _World(np.asarray(grid), deadly_codes, frozenset(interact))
    if not world.goals:
        return None
    carry = COLOURS.index(carrying[1]) if carrying and carrying[0] == "key" else (-1 if carrying else None)
    start = (int(pos[0]), int(pos[1]), int(facing), carry, 0, 0)
    if (start[0], start[1]) in world.goals:
        return None
    parent: dict = {start: None}
    q = deque([start])
    while q and len(parent) < max_states:
        st = q.popleft()
        for kind, nxt in world.successors(st, st[3]):
            if nxt in parent:
                continue
            parent[nxt] = (st, kind)
            if kind == "forward" and (nxt[0], nxt[1]) in world.goals:
                path = []
                while parent[nxt] is not None:
                    nxt, k = parent[nxt]
                    path.append(k)
                return path[::-1]
            q.append(nxt)
    return None


def plan_action(env, table: ActionTable) -> int | None:
    """The first action (index in ``table``) of :func:`plan` for ``env``'s current state, or None
    when no plan reaches a goal (the caller then acts at random)."""
    from .policies import GridState, bfs_moves

    if not table.has_facing:
        return bfs_moves(GridState(env), table.require(MOVE_KINDS, "behaviour policy 'planner'"))
    idx = table.require(_KINDS, "behaviour policy 'planner'")
    idx.update({k: int(table.index(k)) for k in ("pickup", "toggle") if table.index(k) is not None})  # type: ignore[arg-type]
    grid, pos, d = env.full_grid()
    path = plan(grid, pos, d, getattr(env, "carrying", None), tuple(getattr(env, "deadly_objects", ("lava",))),
                interact=tuple(k for k in ("pickup", "toggle") if k in idx))
    return None if not path else idx[path[0]]

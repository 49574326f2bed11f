"""Behaviour policies for collecting MiniGrid trajectories. They act from the full state of an
:class:`~dtwidgets.adapters.EnvAdapter` (``env.full_grid()``: object codes, agent position and direction).

Specs are strings ``"name"`` or ``"name:eps"`` where ``eps`` is the probability of replacing the
policy's action by a uniformly random one (which may be unsafe):

* ``bfs`` — shortest path (breadth-first search over position x direction) to the nearest goal,
  never stepping into an occupied cell or lava (replans every step; turns in place when blocked).
* ``survivor`` — never enters the goal nor an occupied cell, so it survives until the step limit
  (return 0): half of its steps approach the goal along the planner's path (turning away when facing
  it), the others are a safe random walk.
* ``suicidal`` — drives forward into walls/obstacles (lava elsewhere) and avoids the goal (return -1).
* ``random`` — uniformly random actions.
"""
from __future__ import annotations

from collections import deque

import numpy as np

from ..adapters.protocol import EnvAdapter
from ..adapters.schema import OBJECTS, STATES

POLICY_NAMES = ("bfs", "survivor", "suicidal", "random")
LEFT, RIGHT, FORWARD = 0, 1, 2
_DIR_VEC = ((1, 0), (0, 1), (-1, 0), (0, -1))


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
    (``full_grid()``: codes ``[gW, gH, 3]``, agent position and direction) and whether touching
    any object is deadly (Dynamic Obstacles: everything but the goal)."""

    def __init__(self, env: EnvAdapter):
        self.grid, (self.x, self.y), self.dir = env.full_grid()
        self.W, self.H = self.grid.shape[:2]
        self.touch_kills = "Dynamic-Obstacles" in env.env_id

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
        return o is not None and (o == _LAVA or (self.touch_kills and o != _GOAL))


def bfs_action(s: GridState) -> int | None:
    """First action of a shortest path (left/right/forward) from the agent to a goal cell, or None."""
    goals = {(int(x), int(y)) for x, y in zip(*np.nonzero(s.grid[..., 0] == _GOAL))}
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
    """A behaviour policy: ``policy(env) -> action`` for an :class:`~dtwidgets.adapters.EnvAdapter`; ``name`` is its spec."""

    def __init__(self, spec: str, rng: np.random.Generator, n_actions: int = 3):
        self.name = spec
        self.kind, self.eps = parse_spec(spec)
        self.rng = rng
        self.n_actions = int(n_actions)

    def __repr__(self) -> str:
        return f"Policy({self.name!r})"

    def __call__(self, env: EnvAdapter) -> int:
        if self.kind == "random" or (self.eps > 0 and self.rng.random() < self.eps):
            return int(self.rng.integers(self.n_actions))
        return getattr(self, "_" + self.kind)(GridState(env))

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


def make_policy(spec: str, rng: np.random.Generator | int | None = None, n_actions: int = 3) -> Policy:
    """A :class:`Policy` from a spec string (``"bfs"``, ``"bfs:0.2"``, ``"survivor"``, ``"suicidal"``, ``"random"``)."""
    if not isinstance(rng, np.random.Generator):
        rng = np.random.default_rng(rng)
    return Policy(spec, rng, n_actions)

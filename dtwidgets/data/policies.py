"""Behaviour policies for collecting MiniGrid trajectories. They act from the full state (``env.unwrapped``).

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


def _is_dynamic_obstacles(u) -> bool:
    return hasattr(u, "obstacles") and isinstance(u.obstacles, list)


def _deadly(u, cell) -> bool:
    """Would moving forward into ``cell`` end the episode with a penalty?"""
    if cell is None:
        return False
    if cell.type == "lava":
        return True
    return _is_dynamic_obstacles(u) and cell.type != "goal"


def _free(cell) -> bool:
    """Can the agent safely stand on ``cell`` (not lava, not blocked)?"""
    return cell is None or (cell.can_overlap() and cell.type != "lava")


def _front(u):
    x, y = u.front_pos
    if 0 <= x < u.grid.width and 0 <= y < u.grid.height:
        return u.grid.get(x, y)
    return None


def bfs_action(u) -> int | None:
    """First action of a shortest path (left/right/forward) from the agent to a goal cell, or None."""
    g = u.grid
    W, H = g.width, g.height
    cells = g.grid
    goals = {(i % W, i // W) for i, c in enumerate(cells) if c is not None and c.type == "goal"}
    if not goals:
        return None
    ax, ay = int(u.agent_pos[0]), int(u.agent_pos[1])
    start = (ax, ay, int(u.agent_dir))
    if (ax, ay) in goals:
        return None
    seen = {start: None}
    q = deque([start])
    while q:
        s = q.popleft()
        x, y, d = s
        dx, dy = _DIR_VEC[d]
        nx, ny = x + dx, y + dy
        succ = []
        if 0 <= nx < W and 0 <= ny < H and _free(cells[ny * W + nx]):
            succ.append(((nx, ny, d), FORWARD))
        succ.append(((x, y, (d - 1) % 4), LEFT))
        succ.append(((x, y, (d + 1) % 4), RIGHT))
        for n, a in succ:
            if n in seen:
                continue
            seen[n] = (s, a) if seen[s] is None else seen[s]
            if (n[0], n[1]) in goals:
                return seen[n][1] if seen[n] is not None else a
            q.append(n)
    return None


class Policy:
    """A behaviour policy: ``policy(env.unwrapped) -> action``; ``name`` is its spec."""

    def __init__(self, spec: str, rng: np.random.Generator, n_actions: int = 3):
        self.name = spec
        self.kind, self.eps = parse_spec(spec)
        self.rng = rng
        self.n_actions = int(n_actions)

    def __repr__(self) -> str:
        return f"Policy({self.name!r})"

    def __call__(self, u) -> int:
        if self.kind == "random" or (self.eps > 0 and self.rng.random() < self.eps):
            return int(self.rng.integers(self.n_actions))
        return getattr(self, "_" + self.kind)(u)

    def _turn(self) -> int:
        return LEFT if self.rng.random() < 0.5 else RIGHT

    def _bfs(self, u) -> int:
        a = bfs_action(u)
        return self._turn() if a is None else a

    def _survivor(self, u) -> int:
        f = _front(u)
        if f is not None and f.type == "goal":
            return self._turn()
        if self.rng.random() < 0.5:  # approach the goal without ever entering it
            a = bfs_action(u)
            if a is not None and (a != FORWARD or f is None):
                return a
        if f is None and self.rng.random() < 0.6:
            return FORWARD
        return self._turn()

    def _suicidal(self, u) -> int:
        f = _front(u)
        if _deadly(u, f):
            return FORWARD
        if f is not None and f.type == "goal":
            return self._turn()
        if f is None and self.rng.random() < 0.75:
            return FORWARD
        return self._turn()


def make_policy(spec: str, rng: np.random.Generator | int | None = None, n_actions: int = 3) -> Policy:
    """A :class:`Policy` from a spec string (``"bfs"``, ``"bfs:0.2"``, ``"survivor"``, ``"suicidal"``, ``"random"``)."""
    if not isinstance(rng, np.random.Generator):
        rng = np.random.default_rng(rng)
    return Policy(spec, rng, n_actions)

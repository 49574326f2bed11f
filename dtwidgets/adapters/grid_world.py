""":class:`GridWorldEnv`: an :class:`~dtwidgets.adapters.EnvAdapter` for discrete gymnasium grid worlds.

FrozenLake and CliffWalking bind with no arguments; a user's own world in a few lines::

    env = GridWorldEnv("FrozenLake-v1", is_slippery=False)
    env = GridWorldEnv(MyMaze(), desc=["S..#", ".#.G"], action_names=("up", "down", "left", "right"))

The state index is a cell (``position(state) -> (x, y)``, default ``(s % W, s // W)``) and a char map
``desc`` (rows, ``desc[y][x]``) gives each cell an object through ``legend`` (:data:`DEFAULT_LEGEND`:
``S``/``F``/``.`` empty, ``H``/``C`` lava (holes, the cliff), ``G`` goal, ``W``/``#`` wall).
Observations are the whole grid in MiniGrid codes ``[W, H, 3]`` uint8 with the agent written into its
cell as ``(agent, red, 0)`` (``schema.view == "full"``); the agent has no facing, its actions are
absolute moves (:mod:`dtwidgets.adapters.actions`).

The outcome rule is configurable (the one place it is decided for this env, reported as
``info["outcome"]``, read by :attr:`~dtwidgets.adapters.protocol.StepResult.outcome`):
``outcome=None`` — terminated on a goal cell is ``"goal"``, terminated elsewhere ``"collision"``,
truncated ``"timeout"``; ``outcome="info"`` — the env's own ``info["outcome"]``; or a callable
``outcome(reward, terminated, truncated, info, cell) -> str | None`` (``cell`` the object name of the
agent's new cell). ``end_on_collision=True`` ends the episode when the rule says ``"collision"``
(CliffWalking: falling off the cliff, reward -100, would otherwise send the agent back to the start).
"""
from __future__ import annotations

import copy
from typing import Any, Callable

import numpy as np

from .actions import ActionTable
from .protocol import StepResult
from .schema import COLOURS, OBJECTS, OUTCOMES, ObservationSchema, resolve_action

#: char -> object name of a char map
DEFAULT_LEGEND = {"S": "empty", "F": "empty", ".": "empty", " ": "empty", "H": "lava", "C": "lava",
                  "G": "goal", "W": "wall", "#": "wall"}
_COLOUR = {"wall": "grey", "goal": "green", "lava": "red", "key": "yellow", "door": "yellow", "ball": "blue",
           "box": "purple", "floor": "blue"}
DEFAULT_MAX_STEPS = 100


def cliff_outcome(reward, terminated, truncated, info, cell) -> str | None:
    """CliffWalking's rule: reward -100 (fell off the cliff) is a collision; reaching the goal
    (reward -1, terminated) is the goal."""
    if reward <= -100:
        return "collision"
    return "goal" if terminated and cell == "goal" else ("collision" if terminated else ("timeout" if truncated else None))


def _cliff_desc(u) -> list[str]:
    rows, cols = u.shape
    out = [["C" if u._cliff[y, x] else "F" for x in range(cols)] for y in range(rows)]
    sy, sx = np.unravel_index(u.start_state_index, u.shape)
    out[rows - 1][cols - 1], out[sy][sx] = "G", "S"
    return ["".join(r) for r in out]


#: unwrapped class name -> defaults (FrozenLake and CliffWalking bind with no arguments)
PRESETS: dict[str, dict[str, Any]] = {
    "FrozenLakeEnv": {"action_names": ("left", "down", "right", "up"),
                      "desc": lambda u: ["".join(c.decode() for c in row) for row in u.desc]},
    "CliffWalkingEnv": {"action_names": ("up", "right", "down", "left"), "desc": _cliff_desc,
                        "outcome": cliff_outcome, "end_on_collision": True},
}


def _make(env, env_kwargs):
    import gymnasium as gym

    if isinstance(env, str):
        if env not in gym.registry:
            raise ValueError(f"unknown gymnasium environment id {env!r}: expected a registered id such as "
                             "'FrozenLake-v1' or 'CliffWalking-v1', or a gymnasium.Env instance")
        return gym.make(env, render_mode="rgb_array", **env_kwargs)
    if not isinstance(env, gym.Env):
        raise TypeError(f"expected a gymnasium id or a gymnasium.Env, got {type(env).__name__}")
    if env_kwargs:
        raise ValueError(f"env options {sorted(env_kwargs)} only apply to an id; pass them to your env's constructor")
    return env


class GridWorldEnv:
    """A discrete gymnasium grid world as an :class:`~dtwidgets.adapters.EnvAdapter` (see the module docstring).

    Args:
        env: a registered gymnasium id or a ``gymnasium.Env`` with a ``Discrete`` state.
        desc: the char map, rows top to bottom (default: the preset's, or ``env.unwrapped.desc``).
        legend: char -> object name (:data:`DEFAULT_LEGEND` updated with it).
        position: state -> ``(x, y)`` (default ``(s % W, s // W)``).
        action_names: names in index order; kinds guessed (``up``/``down``/``left``/``right`` are
            moves) unless ``action_table`` is given.
        outcome, end_on_collision: the outcome rule (module docstring).
        max_steps: episode step limit (default the env's ``max_episode_steps``, else 100).
        seed: seed of the first :meth:`reset`. **env_kwargs: options of ``gym.make`` for an id.
    """

    def __init__(self, env, *, desc=None, legend: dict | None = None, position: Callable | None = None,
                 action_names=None, action_table: ActionTable | None = None,
                 outcome: Callable | str | None = None, end_on_collision: bool | None = None,
                 max_steps: int | None = None, seed: int | None = 0, **env_kwargs):
        self._env = _make(env, env_kwargs)
        u = self._env.unwrapped
        preset = PRESETS.get(type(u).__name__, {})
        spec = getattr(self._env, "spec", None)
        self.env_id = str(spec.id if spec is not None else type(u).__name__)
        desc = desc if desc is not None else preset.get("desc", lambda u: getattr(u, "desc", None))(u)
        if desc is None:
            raise ValueError(f"{self.env_id}: expected desc=[rows of chars] (a char map of the grid): the env has no "
                             "desc and no preset")
        self.desc = tuple("".join(c.decode() if isinstance(c, bytes) else str(c) for c in row) for row in desc)
        if len({len(r) for r in self.desc}) != 1:
            raise ValueError(f"expected desc rows of equal length, got lengths {[len(r) for r in self.desc]}")
        self.legend = {**DEFAULT_LEGEND, **(legend or {})}
        unknown = sorted({c for r in self.desc for c in r} - set(self.legend))
        bad = [o for o in self.legend.values() if o not in OBJECTS]
        if unknown or bad:
            raise ValueError(f"expected every desc char in the legend {self.legend} and objects in {OBJECTS}; "
                             f"got unknown chars {unknown}, unknown objects {bad}; pass legend={{char: object}}")
        names = action_names if action_names is not None else preset.get("action_names")
        if names is None and action_table is None:
            raise ValueError(f"{self.env_id}: expected action_names=(...) in index order (e.g. ('up', 'down', "
                             f"'left', 'right')) or action_table=ActionTable(...)")
        self.action_table = action_table or ActionTable.from_names(names)
        self.action_names = self.action_table.names
        n = getattr(self._env.action_space, "n", None)
        if n is not None and int(n) != len(self.action_names):
            raise ValueError(f"expected {int(n)} action names (the env's action space), got {self.action_names}")
        self._position = position or (lambda s: (int(s) % self.width, int(s) // self.width))
        self._rule = outcome if outcome is not None else preset.get("outcome")
        self.end_on_collision = bool(preset.get("end_on_collision", False) if end_on_collision is None else end_on_collision)
        limit = getattr(spec, "max_episode_steps", None) if spec is not None else None
        self._max_steps = int(max_steps if max_steps is not None else (limit or DEFAULT_MAX_STEPS))
        if self._max_steps < 1:
            raise ValueError(f"expected max_steps >= 1, got {max_steps}")
        self._base = self._encode_desc()
        self.schema = ObservationSchema(grid_shape=(self.width, self.height), kind="codes", view="full")
        self.deadly_objects = ("lava",)
        self._state: Any = None
        self.reset(seed)

    def __repr__(self) -> str:
        return f"GridWorldEnv({self.env_id!r}, grid {self.width}x{self.height}, actions {self.action_names})"

    # ---- world -------------------------------------------------------------------------------
    @property
    def width(self) -> int:
        return len(self.desc[0])

    @property
    def height(self) -> int:
        return len(self.desc)

    @property
    def max_steps(self) -> int:
        return self._max_steps

    @property
    def step_count(self) -> int:
        return self._steps

    @property
    def done(self) -> bool:
        return self._done

    @property
    def outcome(self) -> str | None:
        return self._outcome

    @property
    def agent_pos(self) -> tuple[int, int]:
        x, y = self._position(self._state)
        return int(x), int(y)

    @property
    def unwrapped(self):
        return self._env.unwrapped

    def _encode_desc(self) -> np.ndarray:
        g = np.zeros((self.width, self.height, 3), np.uint8)
        for y, row in enumerate(self.desc):
            for x, ch in enumerate(row):
                obj = self.legend[ch]
                colour = _COLOUR.get(obj)
                g[x, y] = (OBJECTS.index(obj), COLOURS.index(colour) if colour else 0, 0)
        return g

    def cell(self, x: int, y: int) -> str:
        """Object name of cell ``(x, y)`` of the char map."""
        return OBJECTS[int(self._base[int(x), int(y), 0])]

    def _grid_with_agent(self, x: int, y: int) -> np.ndarray:
        if not (0 <= x < self.width and 0 <= y < self.height):
            raise ValueError(f"expected a cell inside the {self.width}x{self.height} grid, got ({x}, {y})")
        g = self._base.copy()
        g[x, y] = (OBJECTS.index("agent"), COLOURS.index("red"), 0)
        return g

    # ---- episode -----------------------------------------------------------------------------
    def reset(self, seed: int | None = None) -> np.ndarray:
        """Start an episode; returns the whole grid ``[W, H, 3]`` uint8 with the agent in its cell."""
        self._state, _ = self._env.reset(seed=None if seed is None else int(seed))
        self._steps, self._done = 0, False
        self._outcome: str | None = None
        return self.observation()

    def action_index(self, action) -> int:
        return resolve_action(self.action_names, action, self.env_id)

    def step(self, action) -> StepResult:
        """Take one action (index or name); the outcome rule decides ``info["outcome"]``."""
        a = self.action_index(action)
        if self._done:
            raise RuntimeError(f"the episode is over ({self._outcome} at step {self._steps}); call reset() first")
        self._state, reward, terminated, truncated, info = self._env.step(a)
        self._steps += 1
        truncated = bool(truncated) or self._steps >= self._max_steps
        terminated, info = bool(terminated), dict(info)
        outcome = self._decide(float(reward), terminated, truncated, info)
        if outcome == "collision" and self.end_on_collision:
            terminated = True
        if terminated:
            truncated = False
        self._done = terminated or truncated
        self._outcome = outcome if self._done else None
        if self._done:
            info["outcome"] = self._outcome or ("timeout" if truncated else "collision")
            self._outcome = info["outcome"]
        return StepResult(self.observation(), float(reward), terminated, truncated, info)

    def _decide(self, reward: float, terminated: bool, truncated: bool, info: dict) -> str | None:
        cell = self.cell(*self.agent_pos)
        if self._rule is None:
            out = ("goal" if cell == "goal" else "collision") if terminated else ("timeout" if truncated else None)
        elif self._rule == "info":
            out = info.get("outcome")
            if out is None and truncated and not terminated:
                out = "timeout"
            if out is None and terminated:
                raise ValueError(f"{self.env_id}: outcome='info' but the env's info has no 'outcome' at the episode's "
                                 f"end (info keys {sorted(info)}); give outcome=callable or None")
        elif callable(self._rule):
            out = self._rule(reward, terminated, truncated, info, cell)
        else:
            raise TypeError(f"expected outcome=None, 'info' or a callable, got {self._rule!r}")
        if out is not None and out not in OUTCOMES[:3]:
            raise ValueError(f"{self.env_id}: expected the outcome rule to give one of {OUTCOMES[:3]} or None, got {out!r}")
        return out

    def observation(self) -> np.ndarray:
        """The whole grid ``[W, H, 3]`` uint8 with the agent ``(agent, red, 0)`` in its cell."""
        return self._grid_with_agent(*self.agent_pos)

    def full_grid(self) -> tuple[np.ndarray, tuple[int, int], int]:
        """``(grid [W, H, 3] uint8, agent_pos (x, y), 0)``: no facing, facing 0."""
        return self.observation(), self.agent_pos, 0

    def observation_at(self, x: int, y: int, facing: int = 0) -> np.ndarray:
        """The observation with the agent at ``(x, y)`` (``facing`` ignored: there is none)."""
        return self._grid_with_agent(int(x), int(y))

    def render(self) -> np.ndarray:
        """RGB frame ``[h, w, 3]`` uint8 (the env's own ``rgb_array`` render)."""
        return np.asarray(self._env.render(), dtype=np.uint8)

    # ---- state -------------------------------------------------------------------------------
    def snapshot(self) -> dict:
        """A copy of the state: the gymnasium env's attributes, the RNG, step count and outcome."""
        u = self.unwrapped
        keep = {k: copy.deepcopy(v) for k, v in vars(u).items() if k in ("s", "lastaction")}
        return {"env_id": self.env_id, "state": copy.deepcopy(self._state), "env": keep, "limit": self._elapsed(),
                "rng": copy.deepcopy(u.np_random.bit_generator.state), "steps": self._steps,
                "done": self._done, "outcome": self._outcome}

    def restore(self, snap: dict) -> np.ndarray:
        """Restore a :meth:`snapshot`; returns the observation."""
        if not isinstance(snap, dict) or snap.get("env_id") != self.env_id:
            raise ValueError(f"expected a snapshot of {self.env_id} from GridWorldEnv.snapshot()")
        u = self.unwrapped
        for k, v in copy.deepcopy(snap["env"]).items():
            setattr(u, k, v)
        u.np_random.bit_generator.state = copy.deepcopy(snap["rng"])
        self._elapsed(snap["limit"])
        self._state, self._steps = copy.deepcopy(snap["state"]), snap["steps"]
        self._done, self._outcome = snap["done"], snap["outcome"]
        return self.observation()

    def _elapsed(self, value: int | None = None) -> int | None:
        """Read (or set) the step count of gymnasium's ``TimeLimit`` wrapper, if there is one."""
        e = self._env
        while hasattr(e, "env"):
            if hasattr(e, "_elapsed_steps"):
                if value is not None:
                    e._elapsed_steps = value
                return e._elapsed_steps
            e = e.env
        return None

    def set_cell(self, x: int, y: int, obj: str | None, colour: str | None = None, state: str | None = None) -> np.ndarray:
        """Not supported: a gymnasium grid world's transitions are fixed when it is built."""
        raise ValueError(f"editing cells is not supported by GridWorldEnv({self.env_id!r}): its transitions are "
                         "fixed when the env is built; build a new env with another map (e.g. desc=... for FrozenLake)")

    def close(self) -> None:
        self._env.close()

""":class:`MiniGridEnv`: any gymnasium MiniGrid environment bound to the :class:`EnvAdapter` protocol.

Observations are MiniGrid's egocentric partial view ``obs["image"]`` (``[W, H, 3]`` uint8, indexed
``[x, y, (object, colour, state)]``, the agent at ``(W//2, H-1)`` facing up), or whatever MiniGrid's own
wrappers make of it (``wrappers=[FullyObsWrapper]``: the whole grid; one-hot; RGB pixels), described
by ``env.schema`` (see :mod:`dtwidgets.adapters.minigrid_wrappers`). The full state can be
snapshotted and restored exactly (grid, agent, step count, carried object, the env's RNG and any
per-episode attributes such as Dynamic Obstacles' moving obstacle list), and edited cell by cell.

``make_minigrid`` is the single place environments are constructed (also used by collection and
calibration), so every part of the project sees the same ``max_steps`` and wrappers.
"""
from __future__ import annotations

import copy
from dataclasses import dataclass
from typing import Any

import numpy as np

from .actions import ActionTable
from .minigrid_wrappers import apply_wrappers, image_of, schema_of, wrapped_observation
from .protocol import StepResult
from .minigrid_ids import DEFAULT_ENV_ID, check_env_id, closest_env_ids, registered_minigrid_ids  # noqa: F401
from .schema import COLOURS, OBJECTS, STATES, ObservationSchema, resolve_action

DEFAULT_MAX_STEPS = 1000  # the reference work's setting (MiniGrid's own default for 8x8 is 256)

# object name -> default colour used by set_cell when none is given (MiniGrid's own defaults, and
# Dynamic Obstacles' blue balls).
EDITABLE_OBJECTS = {
    "empty": None, "wall": "grey", "floor": "blue", "door": "yellow", "key": "yellow",
    "ball": "blue", "box": "purple", "goal": "green", "lava": "red",
}
_BASE_STATE_KEYS = ("grid", "agent_pos", "agent_dir", "step_count", "carrying", "mission")
_NEVER_STATE = {"_np_random", "_np_random_seed", "window", "clock", "render_mode", "spec", "np_random",
                "observation_space", "action_space", "max_steps"}


def make_minigrid(env_id: str = DEFAULT_ENV_ID, max_steps: int = DEFAULT_MAX_STEPS, render_mode: str | None = "rgb_array",
                  wrappers=None, **env_kwargs):
    """``gymnasium.make`` a MiniGrid env with ``max_steps``, the env's own options ``env_kwargs``
    (e.g. ``agent_view_size=5``) and MiniGrid ``wrappers`` applied in order (clear errors for
    unknown ids, options the env does not take and unsupported wrappers)."""
    import gymnasium as gym

    check_env_id(env_id)
    if int(max_steps) < 1:
        raise ValueError(f"expected max_steps >= 1, got {max_steps}")
    try:
        env = gym.make(env_id, max_steps=int(max_steps), render_mode=render_mode, **env_kwargs)
    except TypeError:  # an env whose constructor does not take max_steps: set it afterwards
        try:
            env = gym.make(env_id, render_mode=render_mode, **env_kwargs)
        except TypeError as e:
            raise ValueError(f"{env_id} does not take the options {sorted(env_kwargs)} ({e}); pass only arguments "
                             f"its constructor accepts (e.g. agent_view_size=5, size=...)") from None
    u: Any = env.unwrapped
    u.max_steps = int(max_steps)
    return apply_wrappers(env, wrappers)


@dataclass(frozen=True)
class EnvSnapshot:
    """An opaque copy of a :class:`MiniGridEnv`'s state (see :meth:`MiniGridEnv.snapshot`)."""

    env_id: str
    state: dict
    rng_state: dict
    done: bool
    outcome: str | None


class MiniGridEnv:
    """A MiniGrid environment a user can play, inspect and edit.

    Args:
        env_id: any registered MiniGrid id (default ``MiniGrid-Dynamic-Obstacles-8x8-v0``).
        max_steps: episode step limit (default 1000, as in the reference work).
        seed: seed of the first :meth:`reset` (called by the constructor).
        wrappers: MiniGrid wrappers applied in order, e.g. ``[FullyObsWrapper]``,
            ``[OneHotPartialObsWrapper]``, ``[RGBImgPartialObsWrapper]``, or callables ``env -> env``;
            ``schema`` then describes the wrapped observation (kind, view, shape).
        **env_kwargs: the environment's own options, e.g. ``agent_view_size=5`` or ``size=6``.

    Coordinates are grid cells ``(x, y)``; directions 0=right, 1=down, 2=left, 3=up.
    """

    def __init__(self, env_id: str = DEFAULT_ENV_ID, max_steps: int = DEFAULT_MAX_STEPS, seed: int | None = 0,
                 wrappers=None, **env_kwargs):
        self.env_id = env_id
        self.wrappers = tuple(wrappers or ())
        self.env_kwargs = dict(env_kwargs)
        self._env = make_minigrid(env_id, max_steps, render_mode="rgb_array", wrappers=self.wrappers, **env_kwargs)
        u = self._env.unwrapped
        self._init_keys = set(vars(u))
        n = int(self._env.action_space.n)
        actions: Any = u.actions if isinstance(u.actions, type) else type(u.actions)
        names = [a.name for a in sorted(actions, key=int)]
        self.action_names = tuple(names[:n]) if n <= len(names) else tuple(names) + tuple(
            f"action {i}" for i in range(len(names), n))
        self.action_table = ActionTable.from_names(self.action_names)
        self.schema = ObservationSchema()  # set from the first observation below
        self._done = False
        self._outcome: str | None = None
        self._episode_keys: tuple[str, ...] = _BASE_STATE_KEYS
        self.reset(seed)
        self.schema = schema_of(self._env, self.observation())

    def __repr__(self) -> str:
        return (f"MiniGridEnv({self.env_id!r}, max_steps={self.max_steps}, grid {self.width}x{self.height}, "
                f"actions {self.action_names}, step {self.step_count})")

    # ---- properties ------------------------------------------------------------------------
    @property
    def unwrapped(self):
        """The underlying ``minigrid.MiniGridEnv`` (read-only use recommended)."""
        return self._env.unwrapped

    @property
    def max_steps(self) -> int:
        return int(self.unwrapped.max_steps)

    @property
    def step_count(self) -> int:
        return int(self.unwrapped.step_count)

    @property
    def width(self) -> int:
        return int(self.unwrapped.width)

    @property
    def height(self) -> int:
        return int(self.unwrapped.height)

    @property
    def agent_pos(self) -> tuple[int, int]:
        p = self.unwrapped.agent_pos
        return int(p[0]), int(p[1])

    @property
    def agent_dir(self) -> int:
        return int(self.unwrapped.agent_dir)

    @property
    def deadly_objects(self) -> tuple[str, ...]:
        """Objects whose contact ends the episode with a penalty, read from the env's world: lava
        everywhere; in Dynamic Obstacles (``DynamicObstaclesEnv``) every object but the goal."""
        from minigrid.envs import DynamicObstaclesEnv

        if isinstance(self.unwrapped, DynamicObstaclesEnv):
            return ("wall", "door", "key", "ball", "box", "lava")
        return ("lava",)

    @property
    def carrying(self) -> tuple[str, str] | None:
        """``(object, colour)`` names of what the agent carries (e.g. ``("key", "yellow")``), or None."""
        c = self.unwrapped.carrying
        return None if c is None else (str(c.type), str(c.color))

    @property
    def mission(self) -> str:
        """The episode's mission string (e.g. ``"use the key to open the door and then get to the goal"``)."""
        return str(getattr(self.unwrapped, "mission", ""))

    @property
    def done(self) -> bool:
        """True once the current episode has terminated or been truncated."""
        return self._done

    @property
    def outcome(self) -> str | None:
        """``"goal"``, ``"collision"``, ``"timeout"`` once the episode is over, else None."""
        return self._outcome

    @property
    def n_actions(self) -> int:
        return len(self.action_names)

    # ---- episode ---------------------------------------------------------------------------
    def reset(self, seed: int | None = None) -> np.ndarray:
        """Start an episode; returns the observation (``schema.observation_shape`` uint8)."""
        obs, _ = self._env.reset(seed=None if seed is None else int(seed))
        u = self.unwrapped
        extra = sorted(k for k in set(vars(u)) - self._init_keys if k not in _NEVER_STATE)
        self._episode_keys = tuple(dict.fromkeys(_BASE_STATE_KEYS + tuple(extra)))
        self._done, self._outcome = False, None
        return image_of(obs)

    def action_index(self, action) -> int:
        """An action given by name or index -> index (clear error otherwise)."""
        return resolve_action(self.action_names, action, self.env_id)

    def step(self, action) -> StepResult:
        """Take one action (index or name). Stepping a finished episode raises; call :meth:`reset`."""
        a = self.action_index(action)
        if self._done:
            raise RuntimeError(f"the episode is over ({self._outcome} at step {self.step_count}); call reset() first")
        self._check_on_grid(a)
        obs, reward, terminated, truncated, info = self._env.step(a)
        terminated, truncated = bool(terminated), bool(truncated)
        self._done = terminated or truncated
        info = dict(info)
        info.pop("outcome", None)  # MiniGrid's reward rule decides (StepResult.outcome)
        res = StepResult(image_of(obs), float(reward), terminated, truncated, info)
        self._outcome = res.outcome
        if self._outcome is not None:
            info["outcome"] = self._outcome
        return res

    def _check_on_grid(self, action: int) -> None:
        """Refuse (state unchanged) any step while the cell ahead is off the grid: MiniGrid reads that
        cell for every action and would fail deep inside with a bare AssertionError. Only possible
        when the outer wall was removed through the raw minigrid object (``set_cell`` refuses it)."""
        u = self.unwrapped
        fx, fy = (int(v) for v in u.front_pos)
        if not (0 <= fx < self.width and 0 <= fy < self.height):
            name = self.action_names[action] if action < len(self.action_names) else action
            raise RuntimeError(f"cannot take action {name!r} at {self.agent_pos} facing {self.agent_dir}: "
                               f"expected the cell ahead inside the {self.width}x{self.height} grid, got ({fx}, {fy}) "
                               f"outside it (the outer wall was removed); step back or reset()")

    def observation(self) -> np.ndarray:
        """The current observation (``schema.observation_shape`` uint8; by default the partial view
        ``[W, H, 3]``, x, y, (object, colour, state)), through the env's wrappers."""
        return wrapped_observation(self._env)

    def full_grid(self) -> tuple[np.ndarray, tuple[int, int], int]:
        """``(grid [gW, gH, 3] uint8, agent_pos (x, y), agent_dir)``.

        The grid is ``grid.encode()`` with the agent drawn in its cell as MiniGrid's
        ``FullyObsWrapper`` does: ``(agent, red, facing)``.
        """
        u = self.unwrapped
        g = np.array(u.grid.encode(), dtype=np.uint8)
        x, y = self.agent_pos
        g[x, y] = (OBJECTS.index("agent"), COLOURS.index("red"), self.agent_dir)
        return g, (x, y), self.agent_dir

    def observation_at(self, x: int, y: int, facing: int) -> np.ndarray:
        """The partial observation ``[W, H, 3]`` uint8 the agent would get at cell ``(x, y)`` facing
        ``facing`` (0 right, 1 down, 2 left, 3 up), the rest of the state as it is (MiniGrid's
        own ``gen_obs``: same view size, occlusion and carried object). Nothing is changed."""
        x, y = _int_coord(x, "x"), _int_coord(y, "y")
        d = _int_coord(facing, "facing")
        if not (0 <= x < self.width and 0 <= y < self.height):
            raise ValueError(f"expected a cell inside the {self.width}x{self.height} grid, got ({x}, {y})")
        if not 0 <= d < 4:
            raise ValueError(f"facing: expected 0..3 (0 right, 1 down, 2 left, 3 up), got {facing}")
        u = self.unwrapped
        pos, old_dir = u.agent_pos, u.agent_dir
        try:
            u.agent_pos, u.agent_dir = (x, y), d
            return wrapped_observation(self._env)
        finally:
            u.agent_pos, u.agent_dir = pos, old_dir

    def render(self, tile_size: int | None = None, agent_pov: bool = False) -> np.ndarray:
        """RGB frame ``[h, w, 3]`` uint8 (the whole grid, or the agent's view with ``agent_pov``)."""
        u = self.unwrapped
        if tile_size is None and not agent_pov:
            return np.asarray(self._env.render(), dtype=np.uint8)
        return np.asarray(u.get_frame(highlight=u.highlight, tile_size=tile_size or u.tile_size, agent_pov=agent_pov),
                          dtype=np.uint8)

    # ---- state -------------------------------------------------------------------------------
    def snapshot(self) -> EnvSnapshot:
        """An opaque deep copy of the whole state: grid, agent position/facing, step count,
        carried object, mission, per-episode attributes (e.g. the obstacle list) and the RNG.
        Restoring and stepping with the same actions reproduces the same observations.

        Memory: about 10 KB per snapshot on MiniGrid-Dynamic-Obstacles-8x8 (22 KB on a 16x16 grid;
        measured with tracemalloc over 200 snapshots), so a 1,000-step history of snapshots holds
        about 10 MB: whoever keeps a history of them should bound it."""
        u = self.unwrapped
        state = copy.deepcopy({k: getattr(u, k) for k in self._episode_keys if hasattr(u, k)})
        return EnvSnapshot(self.env_id, state, copy.deepcopy(u.np_random.bit_generator.state), self._done, self._outcome)

    def restore(self, snap: EnvSnapshot) -> np.ndarray:
        """Restore a snapshot taken from an env of the same id; returns the partial observation."""
        if not isinstance(snap, EnvSnapshot):
            raise TypeError(f"expected an EnvSnapshot from MiniGridEnv.snapshot(), got {type(snap).__name__}")
        if snap.env_id != self.env_id:
            raise ValueError(f"expected a snapshot of {self.env_id}, got one of {snap.env_id}")
        u = self.unwrapped
        for k, v in copy.deepcopy(snap.state).items():  # one deepcopy keeps grid <-> obstacle aliasing
            setattr(u, k, v)
        self._episode_keys = tuple(snap.state)
        u.np_random.bit_generator.state = copy.deepcopy(snap.rng_state)
        self._done, self._outcome = snap.done, snap.outcome
        return self.observation()

    # ---- editing -------------------------------------------------------------------------------
    def set_cell(self, x: int, y: int, obj: str | None, colour: str | None = None, state: str | None = None) -> np.ndarray:
        """Place an object or clear the cell ``(x, y)`` of the full grid; returns the new partial observation.

        Args:
            obj: ``"wall"``, ``"ball"`` (a moving obstacle in Dynamic Obstacles), ``"goal"``, ``"key"``,
                ``"door"``, ``"lava"``, ``"box"``, ``"floor"``, or ``None``/``"empty"`` to clear.
            colour: one of :data:`~dtwidgets.adapters.COLOURS` (default: the object's usual colour).
            state: doors only: ``"open"``, ``"closed"`` (default) or ``"locked"``.
        """
        from minigrid.core import world_object as wo

        u = self.unwrapped
        x, y = _int_coord(x, "x"), _int_coord(y, "y")
        if not (0 <= x < self.width and 0 <= y < self.height):
            raise ValueError(f"expected a cell inside the {self.width}x{self.height} grid (0 <= x < {self.width}, "
                             f"0 <= y < {self.height}), got ({x}, {y})")
        if x in (0, self.width - 1) or y in (0, self.height - 1):
            raise ValueError(f"expected an inner cell (1 <= x <= {self.width - 2}, 1 <= y <= {self.height - 2}), got "
                             f"({x}, {y}) on the outer wall: the outer wall keeps the agent on the grid and cannot be edited")
        if (x, y) == self.agent_pos:
            raise ValueError(f"cannot edit the agent's own cell ({x}, {y}); pick another cell")
        name = "empty" if obj is None else str(obj)
        if name not in EDITABLE_OBJECTS:
            raise ValueError(f"expected an object in {tuple(EDITABLE_OBJECTS)} or None, got {obj!r}")
        if colour is not None and colour not in COLOURS:
            raise ValueError(f"expected a colour in {COLOURS}, got {colour!r}")
        if state is not None and state not in STATES:
            raise ValueError(f"expected a state in {STATES}, got {state!r}")
        if state not in (None, "open") and name != "door":
            raise ValueError(f"only doors have a state ('closed' or 'locked'); got state={state!r} for {name!r}")
        if name == "empty" and colour is not None:
            raise ValueError(f"an empty cell has no colour; got colour={colour!r}")
        col = colour or EDITABLE_OBJECTS[name] or ""  # "" only for "empty", which has no colour
        new: Any
        if name == "empty":
            new = None
        elif name == "door":
            st = state or "closed"
            new = wo.Door(col, is_open=st == "open", is_locked=st == "locked")
        elif name == "goal":
            new = wo.Goal(col)
        elif name == "lava":
            if colour not in (None, "red"):
                raise ValueError(f"lava is always red; got colour={colour!r}")
            new = wo.Lava()
        elif name == "box":
            new = wo.Box(col)
        else:
            new = {"wall": wo.Wall, "floor": wo.Floor, "key": wo.Key, "ball": wo.Ball}[name](col)
        old = u.grid.get(x, y)
        obstacles = getattr(u, "obstacles", None)
        if isinstance(obstacles, list) and old is not None:
            u.obstacles = [o for o in obstacles if o is not old]
        if new is not None:
            new.init_pos = (x, y)
            new.cur_pos = (x, y)
            if name == "ball" and isinstance(getattr(u, "obstacles", None), list):
                u.obstacles.append(new)  # a placed ball moves like the others
        u.grid.set(x, y, new)
        return self.observation()

    def cell(self, x: int, y: int) -> tuple[str, str | None, str | None]:
        """``(object, colour, state)`` names of the full-grid cell ``(x, y)`` (``("empty", None, None)`` if clear)."""
        x, y = _int_coord(x, "x"), _int_coord(y, "y")
        if not (0 <= x < self.width and 0 <= y < self.height):
            raise ValueError(f"expected a cell inside the {self.width}x{self.height} grid, got ({x}, {y})")
        o = self.unwrapped.grid.get(x, y)
        if o is None:
            return ("empty", None, None)
        code = o.encode()
        return (o.type, o.color, STATES[code[2]] if o.type == "door" else None)

    def close(self) -> None:
        self._env.close()


def _int_coord(v: Any, name: str) -> int:
    if isinstance(v, (bool, np.bool_)) or not isinstance(v, (int, np.integer)):
        raise TypeError(f"expected an integer {name} coordinate, got {v!r}")
    return int(v)

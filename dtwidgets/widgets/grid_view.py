"""GridView: a MiniGrid state drawn from its integer encoding."""

from __future__ import annotations

import logging
from typing import Any, Callable

import numpy as np
import traitlets

from ._arrays import SyncedArray
from ._base import DTWidget
from ._traits import IntPair
from ..adapters.schema import decode_one_hot
from ..vocabulary import COLOUR_TO_IDX as COLOR_TO_IDX, COLOURS, OBJECT_TO_IDX, OBJECTS, STATE_TO_IDX, STATES

__all__ = ["GridView", "KEYS", "EDIT_TOOLS", "apply_edit", "decode_one_hot", "OBJECT_TO_IDX", "COLOR_TO_IDX",
           "STATE_TO_IDX"]


#: edit tool -> (object, colour, state) written by a click in edit mode (the browser only sends the tool's name)
EDIT_TOOLS: dict[str, tuple[int, int, int]] = {
    "empty": (1, 0, 0),
    "wall": (2, 5, 0),   # grey wall
    "door": (4, 4, 1),   # yellow closed door
    "key": (5, 4, 0),    # yellow key
    "ball": (6, 2, 0),   # blue ball (the Dynamic-Obstacles obstacle)
    "goal": (8, 1, 0),   # green goal
    "lava": (9, 0, 0),
}


def apply_edit(grid: np.ndarray, x: int, y: int, tool: str) -> np.ndarray:
    """Return a copy of ``grid`` [W, H, 3] with ``tool`` placed at (x, y).

    Clicking a cell that already holds the tool's object clears it to empty, exactly as the
    front-end does in edit mode.
    """
    if tool not in EDIT_TOOLS:
        raise ValueError(f"unknown edit tool {tool!r}; expected one of {sorted(EDIT_TOOLS)}")
    out = np.array(grid, dtype=np.uint8, copy=True)
    enc = EDIT_TOOLS[tool]
    if not (0 <= x < out.shape[0] and 0 <= y < out.shape[1]):
        raise IndexError(f"cell ({x}, {y}) outside grid of size {out.shape[0]}x{out.shape[1]}")
    same = int(out[x, y, 0]) == enc[0] and enc[0] != OBJECT_TO_IDX["empty"]
    out[x, y] = EDIT_TOOLS["empty"] if same else enc
    return out


def edit_names(cell, tool: str) -> tuple[str | None, str | None, str | None]:
    """What ``tool`` does to a cell holding codes ``cell`` ``(object, colour, state)``, as the names an
    :meth:`~dtwidgets.adapters.EnvAdapter.set_cell` takes: ``(object or None to clear, colour, state)``
    (the rule of :func:`apply_edit`: the tool's object again clears the cell)."""
    o, c, s = (int(v) for v in apply_edit(np.asarray(cell, np.uint8).reshape(1, 1, 3), 0, 0, tool)[0, 0])
    obj = OBJECTS[o]
    if obj == "empty":
        return None, None, None
    return obj, None if obj in ("wall", "lava") else COLOURS[c], STATES[s] if obj == "door" else None


_UNSET = object()
_log = logging.getLogger("dtwidgets")

#: keys the front-end reports to :meth:`GridView.on_key` (plus single letters and digits)
KEYS = ("ArrowLeft", "ArrowRight", "ArrowUp", "ArrowDown", "Space", "Enter", "Backspace")


class GridView(DTWidget):
    """MiniGrid grid drawn on a canvas from ``Grid.encode()`` / ``obs["image"]``.

    Events (custom comm messages, not synced traits)
    ------------------------------------------------
    :meth:`on_key` -- keys pressed while the widget has keyboard focus (click it or Tab to it;
    a blue outline shows focus). :meth:`on_cell_click` -- every click on a cell, including repeated
    clicks on the already selected cell (``selected_cell`` only notifies on a change).
    """

    _module = "grid_view"
    grid = SyncedArray(3, "uint8", "[W, H, 3]", last_dim=3)
    """uint8 [W, H, 3]: ``grid[x, y] = (object, colour, state)`` with MiniGrid's OBJECT_TO_IDX, COLOR_TO_IDX and
    STATE_TO_IDX (door: open 0, closed 1, locked 2; an encoded agent's state is its facing); 1x1 to ~20x20."""
    agent_pos = IntPair(None, allow_none=True).tag(sync=True)
    """Agent cell (x, y) on a full grid; ``None`` with ``mode="partial"`` puts the agent at (W // 2, H - 1)
    facing up (MiniGrid's egocentric convention), with ``mode="full"`` draws it from its own encoded cell."""
    agent_dir = traitlets.CInt(None, allow_none=True, min=0, max=3).tag(sync=True)
    """0 right, 1 down, 2 left, 3 up, or None."""
    view_size = traitlets.CInt(7, min=1).tag(sync=True)
    """Side of the agent's partial view, highlighted on a full grid."""
    mode = traitlets.Enum(["full", "partial", "channels"], "full").tag(sync=True)
    """"full", "partial" or "channels" (the three integer maps, object / colour / state, with the indices written in)."""
    selected_cell = IntPair(None, allow_none=True).tag(sync=True)
    """The clicked cell (x, y), synced back; None before a click."""
    editable = traitlets.Bool(False).tag(sync=True)
    """Edit mode: a click sends the intent ``(x, y, edit_tool)`` (see :meth:`on_edit`); the browser never edits."""
    edit_tool = traitlets.Enum(list(EDIT_TOOLS), "wall").tag(sync=True)
    """The tool a click in edit mode applies (:data:`EDIT_TOOLS`; the same object again clears the cell)."""
    cell_size = traitlets.CInt(0, min=0).tag(sync=True)
    """Cell size in CSS px (0 = automatic)."""
    image = SyncedArray(3, "uint8", "[H, W, 3]", last_dim=3)
    """RGB pixels, uint8 [H, W, 3]: when not empty drawn as an image instead of the grid, never as codes
    (:meth:`show` sets it for a pixel schema)."""
    bindings = traitlets.Dict(value_trait=traitlets.Unicode(), key_trait=traitlets.Unicode()).tag(sync=True)
    """``{key: action name}``, e.g. ``ActionTable.key_map()`` of the env (ArrowUp = forward for MiniGrid, the
    four arrows = moves for FrozenLake): a key legend under the grid; :meth:`on_action` reports each mapped key."""

    def __init__(self, grid: Any = _UNSET, **kwargs: Any) -> None:
        if grid is not _UNSET:
            kwargs["grid"] = grid
        self._key_callbacks: list[tuple[Callable, Callable]] = []
        self._click_callbacks: list[tuple[Callable, Callable]] = []
        self._action_callbacks: list[tuple[Callable, Callable]] = []
        self._edit_callbacks: list[tuple[Callable, Callable]] = []
        self._last_key_event: dict[str, Any] | None = None
        super().__init__(**kwargs)

    # -- front-end events ---------------------------------------------------------------
    def on_key(self, callback: Callable[[str], Any], remove: bool = False) -> Callable[[str], Any]:
        """Call ``callback(key)`` for each key pressed while the widget has focus.

        ``key`` is the browser's ``KeyboardEvent.key`` for ``"ArrowLeft"``, ``"ArrowRight"``,
        ``"ArrowUp"``, ``"ArrowDown"``, ``"Enter"``, ``"Backspace"`` and single letters / digits
        (``"a"``, ``"A"`` with Shift, ``"7"``), and ``"Space"`` for the space bar. Modifier flags
        of the latest event are in :attr:`last_key_event`. Exceptions raised by ``callback`` are
        shown in the widget's error box. Usable as a decorator; ``remove=True`` unregisters.
        """
        self._register(self._key_callbacks, callback, remove, "on_key")
        return callback

    @traitlets.validate("bindings")
    def _check_bindings(self, proposal):
        km = dict(proposal["value"])
        bad = [k for k in km if not (k in KEYS or (len(k) == 1 and k.isalnum()))]
        if bad:
            raise traitlets.TraitError(f"bindings: expected keys in {KEYS} or single letters/digits, got {bad}")
        empty = [k for k, v in km.items() if not v]
        if empty:
            raise traitlets.TraitError(f"bindings: expected an action name for each key, got none for {empty}")
        return km

    def on_action(self, callback: Callable[[str], Any], remove: bool = False) -> Callable[[str], Any]:
        """Call ``callback(action_name)`` for each key pressed that :attr:`bindings` maps
        (``bindings[key]``, resolved in Python: the browser only reports the key). Errors go to
        the error box. Usable as a decorator; ``remove=True`` unregisters."""
        self._register(self._action_callbacks, callback, remove, "on_action")
        return callback

    def on_edit(self, callback: Callable[[int, int, str], Any], remove: bool = False) -> Callable[[int, int, str], Any]:
        """Call ``callback(x, y, tool)`` for every click on cell (x, y) in edit mode: the browser sends the
        intent (the cell and the tool's name), never an edited grid. With no ``on_edit`` callback the
        widget applies the edit itself (:meth:`place`); with one, the callback decides (e.g. the
        Explorer edits the environment and redraws once). Errors go to the error box."""
        self._register(self._edit_callbacks, callback, remove, "on_edit")
        return callback

    def on_cell_click(self, callback: Callable[[int, int], Any], remove: bool = False) -> Callable[[int, int], Any]:
        """Call ``callback(x, y)`` for every click on cell (x, y), repeated clicks included (in edit mode
        after the edit: see :meth:`on_edit`). Errors go to the error box."""
        self._register(self._click_callbacks, callback, remove, "on_cell_click")
        return callback

    @property
    def last_key_event(self) -> dict[str, Any] | None:
        """``{"key", "shift", "ctrl", "alt"}`` of the latest key event (None before any)."""
        return None if self._last_key_event is None else dict(self._last_key_event)

    def _register(self, callbacks: list, callback: Callable, remove: bool, kind: str) -> None:
        if remove:
            callbacks[:] = [(cb, w) for cb, w in callbacks if cb is not callback]
            return
        if not callable(callback):
            raise TypeError(f"{kind}() needs a callable, got {type(callback).__name__}")
        name = f"{kind} callback {getattr(callback, '__qualname__', repr(callback))}"
        callbacks.append((callback, self._guard(callback, name=name)))

    def click(self, x: int, y: int) -> None:
        """Click cell ``(x, y)`` from Python as a user does in the browser: the cell is selected, in edit mode
        :attr:`edit_tool` is applied (:meth:`on_edit`), then the :meth:`on_cell_click` callbacks run."""
        self.selected_cell = (int(x), int(y))
        self._clicked(int(x), int(y), self.edit_tool if self.editable else None)

    def press(self, key: str, *, shift: bool = False, ctrl: bool = False, alt: bool = False) -> None:
        """Press ``key`` from Python as on the focused grid (``"ArrowUp"``, ``"Space"``, ``"a"``...): the
        :meth:`on_key` callbacks run, then, for a key of :attr:`bindings`, the :meth:`on_action` ones."""
        key = "Space" if key == " " else str(key)
        self._last_key_event = {"key": key, "shift": bool(shift), "ctrl": bool(ctrl), "alt": bool(alt)}
        for _, wrapped in list(self._key_callbacks):
            wrapped(key)
        action = self.bindings.get(key)
        if action is not None:
            for _, wrapped in list(self._action_callbacks):
                wrapped(action)

    def _handle_custom_msg(self, content: Any, buffers: Any) -> None:
        """Dispatch ``{"event": "key" | "click", ...}`` messages from the front-end."""
        event = content.get("event") if isinstance(content, dict) else None
        if event == "key":
            key = content.get("key")
            if isinstance(key, str) and key:
                self.press(key, **{m: bool(content.get(m)) for m in ("shift", "ctrl", "alt")})
            else:
                _log.warning("GridView: ignoring key message without a key: %r", content)
        elif event == "click":
            try:
                x, y = int(content["x"]), int(content["y"])
            except (KeyError, TypeError, ValueError):
                _log.warning("GridView: ignoring malformed click message: %r", content)
            else:
                self._clicked(x, y, content.get("tool"))  # the browser has already selected the cell
        super()._handle_custom_msg(content, buffers)  # on_msg() handlers still see every message

    def _clicked(self, x: int, y: int, tool: Any) -> None:
        self._edit(x, y, tool)
        for _, wrapped in list(self._click_callbacks):
            wrapped(x, y)

    def _edit(self, x: int, y: int, tool: Any) -> None:
        """An edit intent from the browser: ``tool`` None (not in edit mode) or a name of :data:`EDIT_TOOLS`."""
        if tool is None:
            return
        if tool not in EDIT_TOOLS or not self.editable:
            _log.warning("GridView: ignoring an edit with tool %r (editable=%s)", tool, self.editable)
            return
        if self._edit_callbacks:
            for _, wrapped in list(self._edit_callbacks):
                wrapped(x, y, tool)
        else:
            self._guard(lambda: self.place(x, y, tool), name="GridView edit")()

    def show(self, observation, schema) -> None:
        """Draw one observation as its :class:`~dtwidgets.adapters.ObservationSchema` says: an
        egocentric view with the agent at ``(W//2, H-1)``; a full grid with the agent drawn from its
        own cell (its state code is its facing; no second agent); one-hot cells decoded to codes;
        pixels as an image. Vectors are refused (draw them with ContributionBars or ChannelHeatmap)."""
        kind, view = getattr(schema, "kind", None), getattr(schema, "view", "egocentric")
        if kind not in ("codes", "one_hot", "pixels"):
            raise ValueError(f"GridView draws grid or pixel observations, got kind {kind!r}; draw a vector "
                             "observation with ContributionBars or ChannelHeatmap")
        schema.check(observation, "GridView.show observation")
        a = np.asarray(observation)
        if kind == "pixels":
            with self.hold_sync():
                self.image = a.astype(np.uint8)
                self.grid = np.zeros((1, 1, 3), np.uint8)
            return
        codes = decode_one_hot(a) if kind == "one_hot" else a.astype(np.uint8)
        with self.hold_sync():
            self.image = np.zeros((0, 0, 3), np.uint8)
            self.agent_pos, self.agent_dir = None, None
            self.mode = "partial" if view == "egocentric" else "full"
            self.grid = codes

    @property
    def size(self) -> tuple[int, int]:
        """(W, H) of the current grid."""
        return (int(self.grid.shape[0]), int(self.grid.shape[1]))

    def place(self, x: int, y: int, tool: str | None = None) -> None:
        """Apply an edit from Python (same rule as a click in edit mode)."""
        self.grid = apply_edit(self.grid, x, y, tool or self.edit_tool)

"""GridView: a MiniGrid state drawn from its integer encoding."""

from __future__ import annotations

from typing import Any

import numpy as np
import traitlets

from ._arrays import ArrayTrait, array_serialization
from ._base import DTWidget
from ._traits import IntPair

__all__ = ["GridView", "EDIT_TOOLS", "apply_edit", "OBJECT_TO_IDX", "COLOR_TO_IDX", "STATE_TO_IDX"]

OBJECT_TO_IDX = {"unseen": 0, "empty": 1, "wall": 2, "floor": 3, "door": 4, "key": 5,
                 "ball": 6, "box": 7, "goal": 8, "lava": 9, "agent": 10}
COLOR_TO_IDX = {"red": 0, "green": 1, "blue": 2, "purple": 3, "yellow": 4, "grey": 5}
STATE_TO_IDX = {"open": 0, "closed": 1, "locked": 2}

#: edit tool -> (object, colour, state) written by a click in edit mode (mirrors js/lib/minigrid.js)
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


_UNSET = object()


class GridView(DTWidget):
    """MiniGrid grid drawn on a canvas from ``Grid.encode()`` / ``obs["image"]``.

    Traits
    ------
    grid : uint8 array [W, H, 3]
        ``grid[x, y] = (object, colour, state)`` with MiniGrid's OBJECT_TO_IDX, COLOR_TO_IDX and
        STATE_TO_IDX (door: open 0, closed 1, locked 2; an encoded agent's state is its direction).
        Any size from 1x1 to ~20x20.
    agent_pos : (x, y) or None
        Agent cell on a full grid. ``None`` with ``mode="partial"`` puts the agent at
        (W // 2, H - 1) facing up, MiniGrid's egocentric convention ((3, 6) for 7x7).
    agent_dir : int 0..3 or None
        0 right, 1 down, 2 left, 3 up.
    view_size : int
        Side of the agent's partial view, highlighted on a full grid (default 7).
    mode : "full" | "partial" | "channels"
        "channels" shows the three integer maps (object / colour / state) with the indices written in.
    selected_cell : (x, y) or None
        Synced when a cell is clicked.
    editable : bool, edit_tool : str
        In edit mode a click places ``edit_tool`` (one of :data:`EDIT_TOOLS`) or clears it if the
        cell already holds that object; the new ``grid`` is synced back to Python.
    cell_size : int
        Cell size in CSS pixels (0 = automatic).
    """

    _module = "grid_view"
    grid = ArrayTrait(ndim=3, dtype="uint8", last_dim=3, shape_doc="[W, H, 3]").tag(sync=True, **array_serialization)
    agent_pos = IntPair(None, allow_none=True).tag(sync=True)
    agent_dir = traitlets.CInt(None, allow_none=True, min=0, max=3).tag(sync=True)
    view_size = traitlets.CInt(7, min=1).tag(sync=True)
    mode = traitlets.Enum(["full", "partial", "channels"], "full").tag(sync=True)
    selected_cell = IntPair(None, allow_none=True).tag(sync=True)
    editable = traitlets.Bool(False).tag(sync=True)
    edit_tool = traitlets.Enum(list(EDIT_TOOLS), "wall").tag(sync=True)
    cell_size = traitlets.CInt(0, min=0).tag(sync=True)

    def __init__(self, grid: Any = _UNSET, **kwargs: Any) -> None:
        if grid is not _UNSET:
            kwargs["grid"] = grid
        super().__init__(**kwargs)

    @property
    def size(self) -> tuple[int, int]:
        """(W, H) of the current grid."""
        return (int(self.grid.shape[0]), int(self.grid.shape[1]))

    def place(self, x: int, y: int, tool: str | None = None) -> None:
        """Apply an edit from Python (same rule as a click in edit mode)."""
        self.grid = apply_edit(self.grid, x, y, tool or self.edit_tool)

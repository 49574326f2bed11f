"""Actions with meaning: what each action of an environment does.

An :class:`ActionTable` gives every action a *kind* (:data:`ACTION_KINDS`): a relative turn or
``forward`` (MiniGrid: the agent has a facing), an absolute move (``move_up`` ... ``move_right``:
FrozenLake, CliffWalking; the agent has no facing), ``noop`` (stays in place), an interaction
(``pickup``, ``drop``, ``toggle``, ``done``) or ``other``. Key maps, the default preference pair,
policy-map placements and behaviour policies all read it. :data:`MINIGRID_ACTIONS` is MiniGrid's table.

An env adapter may expose its own table as ``env.action_table``; :func:`action_table` falls back
to :meth:`ActionTable.from_names` (kinds guessed from the names), so adapters written before
action tables existed keep working.
"""
from __future__ import annotations

from dataclasses import dataclass

#: every action kind, with what it does
ACTION_KINDS = {
    "turn_left": "turn 90 degrees anticlockwise in place", "turn_right": "turn 90 degrees clockwise in place",
    "forward": "step one cell in the facing direction",
    "move_up": "step one cell up (y - 1)", "move_down": "step one cell down (y + 1)",
    "move_left": "step one cell left (x - 1)", "move_right": "step one cell right (x + 1)",
    "noop": "stay in place", "pickup": "pick up the object ahead", "drop": "drop the carried object ahead",
    "toggle": "open/close the door ahead (unlock with the key)", "done": "declare the task done",
    "other": "something this table does not describe",
}
RELATIVE_KINDS = ("turn_left", "turn_right", "forward")
MOVE_KINDS = ("move_right", "move_down", "move_left", "move_up")  # facing order 0 right, 1 down, 2 left, 3 up
#: cell offset ``(dx, dy)`` of each absolute move
MOVE_OFFSETS = {"move_right": (1, 0), "move_down": (0, 1), "move_left": (-1, 0), "move_up": (0, -1)}

_ABSOLUTE_NAMES = {"up": "move_up", "down": "move_down", "left": "move_left", "right": "move_right",
                   "north": "move_up", "south": "move_down", "west": "move_left", "east": "move_right"}
_RELATIVE_NAMES = {"left": "turn_left", "right": "turn_right", "forward": "forward"}
_OTHER_NAMES = {"pickup": "pickup", "drop": "drop", "toggle": "toggle", "done": "done", "noop": "noop",
                "stay": "noop", "wait": "noop", "nothing": "noop"}
#: keys of the key map, by action kind (arrow keys follow the world: turns or moves)
_KEYS = {"forward": "ArrowUp", "turn_left": "ArrowLeft", "turn_right": "ArrowRight",
         "move_up": "ArrowUp", "move_down": "ArrowDown", "move_left": "ArrowLeft", "move_right": "ArrowRight",
         "pickup": "p", "drop": "d", "toggle": "t", "done": "Enter", "noop": "Space"}


@dataclass(frozen=True)
class ActionTable:
    """Names and kinds of an environment's actions (index order).

    Attributes:
        names: ``A`` action names, e.g. ``("left", "right", "forward", ...)``.
        kinds: ``A`` kinds from :data:`ACTION_KINDS`, e.g. ``("turn_left", "turn_right", "forward", ...)``.
    """

    names: tuple[str, ...]
    kinds: tuple[str, ...]

    def __post_init__(self):
        object.__setattr__(self, "names", tuple(str(n) for n in self.names))
        object.__setattr__(self, "kinds", tuple(str(k) for k in self.kinds))
        if len(self.names) != len(self.kinds) or not self.names:
            raise ValueError(f"expected one kind per action name, got {len(self.names)} names and {len(self.kinds)} kinds")
        bad = [k for k in self.kinds if k not in ACTION_KINDS]
        if bad:
            raise ValueError(f"expected action kinds in {tuple(ACTION_KINDS)}, got {bad}")
        if len(set(self.names)) != len(self.names):
            raise ValueError(f"expected distinct action names, got {self.names}")
        if self.has_facing and any(k in MOVE_KINDS for k in self.kinds):
            raise ValueError(f"expected either relative actions (turns, forward) or absolute moves, got both: {self.kinds}")

    @classmethod
    def from_names(cls, names) -> "ActionTable":
        """Kinds guessed from the names: with a ``forward`` action, ``left``/``right`` are turns
        (MiniGrid); otherwise ``up``/``down``/``left``/``right`` are absolute moves; ``pickup``,
        ``drop``, ``toggle``, ``done``, ``noop``/``stay`` as named; anything else is ``other``."""
        names = tuple(str(n) for n in names)
        low = [n.lower() for n in names]
        table = _RELATIVE_NAMES if "forward" in low else _ABSOLUTE_NAMES
        return cls(names, tuple(table.get(n, _OTHER_NAMES.get(n, "other")) for n in low))

    def __len__(self) -> int:
        return len(self.names)

    @property
    def has_facing(self) -> bool:
        """True when the agent has a facing that actions change (turns / forward)."""
        return any(k in RELATIVE_KINDS for k in self.kinds)

    def index(self, kind: str) -> int | None:
        """Index of the first action of ``kind`` (None when there is none)."""
        if kind not in ACTION_KINDS:
            raise ValueError(f"expected an action kind in {tuple(ACTION_KINDS)}, got {kind!r}")
        return self.kinds.index(kind) if kind in self.kinds else None

    def require(self, kinds, who: str) -> dict[str, int]:
        """``{kind: index}`` for each of ``kinds``; one ValueError naming ``who`` and the missing kinds."""
        missing = [k for k in kinds if self.index(k) is None]
        if missing:
            raise ValueError(f"{who} needs actions of kinds {list(kinds)}, but this environment's actions "
                             f"{dict(zip(self.names, self.kinds))} have no {missing}; use a policy that fits "
                             f"(e.g. 'random') or declare the kinds with an ActionTable")
        return {k: int(self.index(k)) for k in kinds}  # type: ignore[arg-type]

    def key_map(self) -> dict[str, str]:
        """``{browser key: action name}``: for relative actions ArrowUp = forward and ArrowLeft /
        ArrowRight = turns; for absolute moves the four arrows are the moves; p pickup, d drop,
        t toggle, Enter done, Space no-op."""
        out: dict[str, str] = {}
        for name, kind in zip(self.names, self.kinds):
            key = _KEYS.get(kind)
            if key is not None and key not in out:
                out[key] = name
        return out

    def default_pair(self) -> tuple[str, str]:
        """The default preference ``(a, b)`` (logit[a] - logit[b]): ``("forward", turn right)``
        with a facing, ``(move right, move down)`` for absolute moves, else the first two actions."""
        for a, b in (("forward", "turn_right"), ("forward", "turn_left"), ("move_right", "move_down"),
                     ("move_up", "move_down"), ("move_left", "move_right")):
            i, j = self.index(a), self.index(b)
            if i is not None and j is not None:
                return self.names[i], self.names[j]
        if len(self.names) < 2:
            raise ValueError(f"a preference pair needs two actions, got {self.names}")
        return self.names[0], self.names[1]

    def glyph(self, i: int) -> str:
        """A one-character symbol of action ``i`` for maps: turns ↺ ↻, forward ↑, moves → ↓ ← ↑."""
        return {"turn_left": "↺", "turn_right": "↻", "forward": "⇡", "move_right": "→", "move_down": "↓",
                "move_left": "←", "move_up": "↑", "noop": "·", "pickup": "P", "drop": "D", "toggle": "T",
                "done": "✓"}.get(self.kinds[i], "?")


#: MiniGrid's seven actions
MINIGRID_ACTIONS = ActionTable(("left", "right", "forward", "pickup", "drop", "toggle", "done"),
                               ("turn_left", "turn_right", "forward", "pickup", "drop", "toggle", "done"))


def action_table(env) -> ActionTable:
    """The :class:`ActionTable` of an env adapter: its own ``action_table`` when it has one (checked
    against its ``action_names``), else one guessed from ``action_names``."""
    names = tuple(env.action_names)
    table = getattr(env, "action_table", None)
    if table is None:
        return ActionTable.from_names(names)
    if not isinstance(table, ActionTable):
        raise TypeError(f"expected env.action_table to be a dtwidgets ActionTable, got {type(table).__name__}")
    if table.names != names:
        raise ValueError(f"env.action_table names {table.names} differ from env.action_names {names}")
    return table

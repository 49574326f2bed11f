"""The MiniGrid vocabulary, in one place: object / colour / state names and codes, and the outcome rule.

MiniGrid encodes a cell as ``(object, colour, state)`` integer codes (its ``OBJECT_TO_IDX``,
``COLOR_TO_IDX`` and ``STATE_TO_IDX``). Every Python module imports these tables from here (they are
re-exported by :mod:`dtwidgets.adapters.schema`); the JavaScript tables in ``js/lib/colors.js`` and
``js/lib/minigrid.js`` are checked against them by ``tests/test_vocabulary.py``. This module imports
nothing heavy (no numpy, torch or minigrid), so the widget layer can use it.
"""
from __future__ import annotations

#: object names by code: ``OBJECTS[2] == "wall"``
OBJECTS = ("unseen", "empty", "wall", "floor", "door", "key", "ball", "box", "goal", "lava", "agent")
#: colour names by code (British spelling everywhere in Python; MiniGrid spells it COLOR_TO_IDX)
COLOURS = ("red", "green", "blue", "purple", "yellow", "grey")
#: door state names by code (an encoded agent's state is its facing instead)
STATES = ("open", "closed", "locked")
OBJECT_TO_IDX = {name: i for i, name in enumerate(OBJECTS)}
COLOUR_TO_IDX = {name: i for i, name in enumerate(COLOURS)}
STATE_TO_IDX = {name: i for i, name in enumerate(STATES)}
#: the three raw channels of an observation ``[x, y, channel]``
RAW_CHANNELS = ("object", "colour", "state")
#: exclusive upper bound of each raw channel's code: object < 11, colour < 6, state < 3
CODE_LIMITS = (len(OBJECTS), len(COLOURS), len(STATES))
#: one-hot feature names (11 objects, 6 colours, 3 states), MiniGrid's OneHotPartialObsWrapper order
ONE_HOT_FEATURES = (
    tuple(f"object={o}" for o in OBJECTS)
    + tuple(f"colour={c}" for c in COLOURS)
    + tuple(f"state={s}" for s in STATES)
)

#: episode outcomes (see :func:`episode_outcome`); "unfinished" for a stored episode that did not end
OUTCOMES = ("goal", "collision", "timeout", "unfinished")


def episode_outcome(reward: float, terminated: bool, truncated: bool) -> str | None:
    """The outcome rule: ``"goal"`` (terminated with a positive reward), ``"collision"`` (terminated
    otherwise: a collision in Dynamic Obstacles, lava elsewhere), ``"timeout"`` (truncated), or None
    while the episode runs."""
    if terminated:
        return "goal" if reward > 0 else "collision"
    if truncated:
        return "timeout"
    return None

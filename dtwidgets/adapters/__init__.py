"""Layer 1: the adapter protocol (model + environment), token layout, observation schema, windows."""
from .actions import ActionTable, MINIGRID_ACTIONS, action_table
from .compat import check_compatible
from .device import device_of, resolve_device
from .protocol import EnvAdapter, ModelAdapter, StepResult, UnsupportedByModel, required_members
from .layout import TokenLayout
from .schema import COLOURS, OBJECTS, STATES, ObservationSchema
from .window import TrajectoryWindow, make_window

__all__ = [
    "check_compatible", "device_of", "resolve_device", "EnvAdapter", "ModelAdapter", "StepResult", "UnsupportedByModel", "required_members", "ObservationSchema", "TokenLayout",
    "TrajectoryWindow", "make_window", "OBJECTS", "COLOURS", "STATES", "MiniGridEnv",
    "GridWorldEnv", "ActionTable", "MINIGRID_ACTIONS", "action_table",
]


def __getattr__(name: str):  # MiniGridEnv needs gymnasium + minigrid: load it on first use
    if name == "MiniGridEnv":
        from .minigrid_env import MiniGridEnv

        return MiniGridEnv
    if name == "GridWorldEnv":
        from .grid_world import GridWorldEnv

        return GridWorldEnv
    raise AttributeError(f"module 'dtwidgets.adapters' has no attribute {name!r}")

"""Training dynamics: checkpoint series, per-checkpoint measurements (cached), jumps.

``load_series(dir)`` -> :class:`CheckpointSeries`; ``dynamics(series, traj, env)`` -> :class:`Dynamics`
(``.metrics()``, ``.phase_transitions()``); the widget is
:class:`dtwidgets.compositions.TrainingDynamics`.
"""
from .compute import DEFAULT_CONCEPTS, Dynamics, DynamicsContext, dynamics
from .metrics import find_jumps, flat_metrics
from .series import Checkpoint, CheckpointSeries, load_series

__all__ = ["DEFAULT_CONCEPTS", "Dynamics", "DynamicsContext", "dynamics", "find_jumps", "flat_metrics",
           "Checkpoint", "CheckpointSeries", "load_series"]

"""Trajectory data: storage (:class:`Trajectories`), collection with behaviour policies and RTG
calibration; ``TrainConfig`` / ``train`` are re-exported from their owner :mod:`dtwidgets.training.dt`.
Submodules load lazily (collection needs gymnasium, training needs torch)."""
from __future__ import annotations

from .._lazy import lazy_exports

_LAZY = {
    "Trajectories": "dtwidgets.data.trajectories",
    "Episode": "dtwidgets.data.trajectories",
    "TrajectoryFileError": "dtwidgets.data.trajectories",
    "collect_trajectories": "dtwidgets.data.collect",
    "DEFAULT_POLICY_MIX": "dtwidgets.data.collect",
    "make_policy": "dtwidgets.data.policies",
    "TrainConfig": "dtwidgets.training.dt",
    "train": "dtwidgets.training.dt",
    "calibrate": "dtwidgets.data.calibration",
    "CalibrationResult": "dtwidgets.data.calibration",
    "record_rollouts": "dtwidgets.data.rollouts",
    "behaviour_under_intervention": "dtwidgets.data.behaviour",
    "BehaviourResult": "dtwidgets.data.behaviour",
    "post_claims": "dtwidgets.data.post_claims",
    "PostClaims": "dtwidgets.data.post_claims",
    "distribution_shift": "dtwidgets.data.shift",
    "EnvShift": "dtwidgets.data.shift",
    "CellEdit": "dtwidgets.data.shift",
    "ShiftResult": "dtwidgets.data.shift",
}

__all__ = sorted(_LAZY)


__getattr__, __dir__ = lazy_exports("dtwidgets.data", _LAZY, globals())

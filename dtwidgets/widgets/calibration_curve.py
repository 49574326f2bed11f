"""CalibrationCurve: target vs achieved return with a quantile band and outcome bars."""

from __future__ import annotations

import traitlets

from ._arrays import SyncedArray
from ._base import DTWidget
from ._traits import Labels, check_count, check_first_axis

__all__ = ["CalibrationCurve"]


class CalibrationCurve(DTWidget):
    """Target return vs achieved return with a quantile band and stacked outcome bars."""

    _module = "calibration_curve"
    targets = SyncedArray(1, "float32", "[R]")
    """float32 [R]: target returns (x axis)."""
    mean = SyncedArray(1, "float32", "[R]")
    """float32 [R]: mean achieved return per target."""
    lo = SyncedArray(1, "float32", "[R]")
    """float32 [R]: lower quantile of the achieved return (band)."""
    hi = SyncedArray(1, "float32", "[R]")
    """float32 [R]: upper quantile of the achieved return (band)."""
    outcome_counts = SyncedArray(2, "float32", "[R, K]")
    """float32 [R, K]: episode counts per outcome, drawn as stacked fractions."""
    outcome_names = Labels().tag(sync=True)
    """list[str] (len K), e.g. ``["goal", "collision", "timeout"]``."""
    title = traitlets.Unicode("").tag(sync=True)
    """str: title above the chart."""
    x_label = traitlets.Unicode("").tag(sync=True)
    """str: x axis label ('' = "target return")."""
    y_label = traitlets.Unicode("").tag(sync=True)
    """str: y axis label ('' = "achieved return")."""

    @traitlets.validate("targets", "mean", "lo", "hi", "outcome_counts", "outcome_names")
    def _lengths_match_targets(self, proposal: dict):
        v, name = proposal["value"], proposal["trait"].name
        cur = {n: getattr(self, n) for n in ("targets", "mean", "lo", "hi", "outcome_counts", "outcome_names")}
        cur[name] = v
        R = cur["targets"].shape[0]
        for arr in ("mean", "lo", "hi", "outcome_counts"):
            check_first_axis(self, arr, cur[arr], R, f"one row per target (targets [R] has R = {R})")
        counts = cur["outcome_counts"]
        if counts.size:
            K = counts.shape[1]
            check_count(self, "outcome_names", len(cur["outcome_names"]), K, f"one per outcome (outcome_counts [R, K] has K = {K})")
        return v

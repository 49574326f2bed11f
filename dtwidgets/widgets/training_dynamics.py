"""TrainingDynamicsView: metrics of K checkpoints scrubbed in the browser."""

from __future__ import annotations

import traitlets

from ._arrays import SyncedArray
from ._base import DTWidget
from ._traits import Labels, check_dims, check_indices

__all__ = ["TrainingDynamicsView"]


class TrainingDynamicsView(DTWidget):
    """Metrics of K checkpoints with a step slider that scrubs entirely in the browser.

    Every checkpoint's data is shipped once; moving the slider redraws the markers, the calibration
    curve, the attribution bars and the probe matrix of the selected checkpoint without a kernel
    message. Build it with :class:`dtwidgets.compositions.TrainingDynamics`.
    """

    _module = "training_dynamics"
    steps = SyncedArray(1, "float32", "[K]")
    """float32 [K]: optimiser step of each checkpoint."""
    metrics = SyncedArray(2, "float32", "[M, K]")
    """float32 [M, K]: one line chart per metric (NaN = missing)."""
    metric_names = Labels().tag(sync=True)
    """list[str] (len M)."""
    metric_groups = Labels().tag(sync=True)
    """list[str] (len M): a short group tag per metric (``loss``, ``calibration``, ``probe`` ...)."""
    jumps = SyncedArray(2, "float32", "[J, 2]")
    """float32 [J, 2]: (metric index, checkpoint index) of each detected jump (drawn red, dashed)."""
    calib_rtgs = SyncedArray(1, "float32", "[R]")
    """float32 [R]: RTGs asked in the calibration."""
    calib_mean = SyncedArray(2, "float32", "[K, R]")
    """float32 [K, R]: mean return per checkpoint and RTG."""
    calib_lo = SyncedArray(2, "float32", "[K, R]")
    """float32 [K, R]: lower quantile of the return."""
    calib_hi = SyncedArray(2, "float32", "[K, R]")
    """float32 [K, R]: upper quantile of the return."""
    attribution = SyncedArray(2, "float32", "[K, N]")
    """float32 [K, N]: mean direct logit attribution over the scenarios, per component."""
    attribution_labels = Labels().tag(sync=True)
    """list[str] (len N): component labels."""
    attribution_title = traitlets.Unicode("").tag(sync=True)
    """str: title of the attribution panel (e.g. the preference direction)."""
    probe_selectivity = SyncedArray(3, "float32", "[K, C, S]")
    """float32 [K, C, S]: selectivity per checkpoint, concept and site."""
    probe_metrics = SyncedArray(4, "float32", "[K, P, C, S]")
    """float32 [K, P, C, S]: every probe metric (names ``probe_metric_names``), shown on hover."""
    probe_metric_names = Labels().tag(sync=True)
    """list[str] (len P)."""
    concepts = Labels().tag(sync=True)
    """list[str] (len C)."""
    sites = Labels().tag(sync=True)
    """list[str] (len S)."""
    index = traitlets.CInt(0, min=0).tag(sync=True)
    """int: initially selected checkpoint. Python may set it; scrubbing in the browser does NOT send
    it back (no kernel round trip)."""
    title = traitlets.Unicode("").tag(sync=True)
    """str: title."""

    _DIMS = {"steps": ("K",), "metrics": ("M", "K"), "metric_names": ("M",), "metric_groups": ("M",),
             "jumps": ("J", 2), "calib_rtgs": ("R",), "calib_mean": ("K", "R"), "calib_lo": ("K", "R"),
             "calib_hi": ("K", "R"), "attribution": ("K", "N"), "attribution_labels": ("N",),
             "probe_selectivity": ("K", "C", "S"), "probe_metrics": ("K", "P", "C", "S"),
             "probe_metric_names": ("P",), "concepts": ("C",), "sites": ("S",)}

    @traitlets.validate(*_DIMS)
    def _shapes_agree(self, proposal: dict):
        v = check_dims(self, proposal, self._DIMS)
        name = proposal["trait"].name
        jumps = v if name == "jumps" else self.jumps
        if jumps.size:
            M = len(v) if name == "metric_names" else len(self.metric_names)
            K = len(v) if name == "steps" else len(self.steps)
            check_indices(self, "jumps", jumps[:, 0], M, f"metric index of the {M} metric_names")
            check_indices(self, "jumps", jumps[:, 1], K, f"checkpoint index of the {K} steps")
        return v

    @traitlets.validate("index")
    def _index_in_steps(self, proposal: dict) -> int:
        K = len(self.steps)
        if K and not 0 <= proposal["value"] < K:
            raise traitlets.TraitError(f"TrainingDynamicsView.index: expected a checkpoint in [0, {K}), got {proposal['value']}")
        return proposal["value"]

"""Probe and training-dynamics widgets: ProbeMatrix, TrainingDynamicsView."""

from __future__ import annotations

import numpy as np
import traitlets

from ._arrays import ArrayTrait, array_serialization
from ._base import DTWidget
from ._traits import IntPair, Labels, OptionalVmax, check_dims, check_indices

__all__ = ["ProbeMatrix", "TrainingDynamicsView"]

_sync_arr = dict(sync=True, **array_serialization)


def _arr(ndim, doc: str) -> ArrayTrait:
    return ArrayTrait(ndim=ndim, dtype="float32", shape_doc=doc).tag(**_sync_arr)


class ProbeMatrix(DTWidget):
    """Probe results as a concepts x sites matrix; colour = selectivity, hover = every metric.

    Build one from a :class:`~dtwidgets.probes.ProbeSuite` with :meth:`from_suite`.
    """

    _module = "probe_matrix"
    selectivity = _arr(2, "[R, C]")
    """float32 [R concepts, C sites]: probe score minus the control task's score (diverging colour)."""
    metrics = _arr(3, "[M, R, C]")
    """float32 [M, R, C]: every metric of every cell, shown on hover (names in ``metric_names``)."""
    metric_names = Labels().tag(sync=True)
    """list[str] (len M), e.g. ``["score", "auc", "baseline", "control", "selectivity"]``."""
    concepts = Labels().tag(sync=True)
    """list[str] (len R): row labels."""
    sites = Labels().tag(sync=True)
    """list[str] (len C): column labels such as ``"L0 resid_post @ state"``."""
    title = traitlets.Unicode("").tag(sync=True)
    """str: title above the matrix."""
    vmax = OptionalVmax().tag(sync=True)
    """float > 0 or None: colour-scale limit (None = max |selectivity|)."""
    selected_cell = IntPair(None, allow_none=True).tag(sync=True)
    """(row, col) or None: set by clicking a cell."""

    _DIMS = {"selectivity": ("R", "C"), "metrics": ("M", "R", "C"), "metric_names": ("M",), "concepts": ("R",),
             "sites": ("C",)}

    @traitlets.validate("selectivity", "metrics", "metric_names", "concepts", "sites")
    def _shapes_agree(self, proposal: dict):
        return check_dims(self, proposal, self._DIMS)

    @classmethod
    def from_suite(cls, suite, title: str = "probe selectivity (score − control)") -> "ProbeMatrix":
        names = suite.metric_names()
        return cls(selectivity=suite.matrix("selectivity"), metrics=np.stack([suite.matrix(m) for m in names]),
                   metric_names=names, concepts=suite.concepts, sites=suite.site_labels, title=title)

    @property
    def selected(self) -> tuple[str, str] | None:
        """``(concept, site label)`` of the selected cell, or None."""
        if self.selected_cell is None:
            return None
        r, c = self.selected_cell
        return self.concepts[r], self.sites[c]


class TrainingDynamicsView(DTWidget):
    """Metrics of K checkpoints with a step slider that scrubs entirely in the browser.

    Every checkpoint's data is shipped once; moving the slider redraws the markers, the calibration
    curve, the attribution bars and the probe matrix of the selected checkpoint without a kernel
    message. Build it with :class:`dtwidgets.compositions.TrainingDynamics`.
    """

    _module = "training_dynamics"
    steps = _arr(1, "[K]")
    """float32 [K]: optimiser step of each checkpoint."""
    metrics = _arr(2, "[M, K]")
    """float32 [M, K]: one line chart per metric (NaN = missing)."""
    metric_names = Labels().tag(sync=True)
    """list[str] (len M)."""
    metric_groups = Labels().tag(sync=True)
    """list[str] (len M): a short group tag per metric (``loss``, ``calibration``, ``probe`` ...)."""
    jumps = _arr(2, "[J, 2]")
    """float32 [J, 2]: (metric index, checkpoint index) of each detected jump (drawn red, dashed)."""
    calib_rtgs = _arr(1, "[R]")
    """float32 [R]: RTGs asked in the calibration."""
    calib_mean = _arr(2, "[K, R]")
    """float32 [K, R]: mean return per checkpoint and RTG."""
    calib_lo = _arr(2, "[K, R]")
    """float32 [K, R]: lower quantile of the return."""
    calib_hi = _arr(2, "[K, R]")
    """float32 [K, R]: upper quantile of the return."""
    attribution = _arr(2, "[K, N]")
    """float32 [K, N]: mean direct logit attribution over the scenarios, per component."""
    attribution_labels = Labels().tag(sync=True)
    """list[str] (len N): component labels."""
    attribution_title = traitlets.Unicode("").tag(sync=True)
    """str: title of the attribution panel (e.g. the preference direction)."""
    probe_selectivity = _arr(3, "[K, C, S]")
    """float32 [K, C, S]: selectivity per checkpoint, concept and site."""
    probe_metrics = _arr(4, "[K, P, C, S]")
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

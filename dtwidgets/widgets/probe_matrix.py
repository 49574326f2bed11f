"""ProbeMatrix: probe results as a concepts x sites matrix."""

from __future__ import annotations

import numpy as np
import traitlets

from ._arrays import SyncedArray
from ._base import DTWidget
from ._traits import IntPair, Labels, OptionalVmax, check_dims

__all__ = ["ProbeMatrix"]


class ProbeMatrix(DTWidget):
    """Probe results as a concepts x sites matrix; colour = selectivity, hover = every metric.

    Build one from a :class:`~dtwidgets.probes.ProbeSuite` with :meth:`from_suite`.
    """

    _module = "probe_matrix"
    selectivity = SyncedArray(2, "float32", "[R, C]")
    """float32 [R concepts, C sites]: probe score minus the control task's score (diverging colour)."""
    metrics = SyncedArray(3, "float32", "[M, R, C]")
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

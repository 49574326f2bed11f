"""RTGScanView: series against return-to-go with a client-side scrubber."""

from __future__ import annotations

import numpy as np
import traitlets

from ._arrays import SyncedArray
from ._base import DTWidget
from ._traits import Labels, fill_steps

__all__ = ["RTGScanView"]


class RTGScanView(DTWidget):
    """Series against return-to-go with a client-side scrubber."""

    _module = "rtg_scan_view"
    rtgs = SyncedArray(1, "float32", "[R]")
    """float32 [R]: the scanned RTG values (x axis, reward units)."""
    follow_group = traitlets.Unicode("").tag(sync=True)
    """Page-level id of an RTGSlider whose position moves the marker client-side ('' = none)."""
    series = SyncedArray((1, 2), "float32", "[S, R]")
    """float32 [S, R]: one line per series (action probabilities, contributions, ...); 1-D [R] = one series."""
    series_names = Labels().tag(sync=True)
    """list[str] (len S): series names (templates when ``steps`` is set, see :attr:`shown_series_names`)."""
    series_groups = Labels().tag(sync=True)
    """list[str] (len S): series with the same group share a panel (e.g. "probability", "contribution",
    "attention"); a group whose name contains "prob" and whose values lie in [0, 1] gets a fixed [0, 1] axis."""
    index = traitlets.CInt(0, min=0).tag(sync=True)
    """int: selected RTG index; the slider moves the marker and readout without a kernel round trip and syncs
    ``index`` back debounced by ~150 ms."""
    title = traitlets.Unicode("").tag(sync=True)
    """str: title above the panels."""
    steps = SyncedArray(1, "int16", "[T]")
    """int16 [T]: episode steps of tokens; ``series_names`` are then templates whose ``{k}`` shows the episode step
    of token ``k`` (:func:`~dtwidgets.widgets._traits.fill_steps`); empty = names as they are."""

    @traitlets.validate("series")
    def _series_2d(self, proposal: dict) -> np.ndarray:
        v = proposal["value"]
        return v[None] if v.ndim == 1 else v

    @property
    def shown_series_names(self) -> list[str]:
        """Series names as shown (``steps`` filled in)."""
        return [fill_steps(n, self.steps) for n in self.series_names]

    @property
    def rtg(self) -> float:
        """RTG value at ``index`` (NaN when out of range)."""
        return float(self.rtgs[self.index]) if 0 <= self.index < self.rtgs.shape[0] else float("nan")

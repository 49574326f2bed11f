"""ScatterView: points in 2-D or 3-D (e.g. PCA coordinates) coloured by a concept, with a scree plot."""

from __future__ import annotations

import math

import numpy as np
import traitlets

from ._arrays import SyncedArray
from ._base import DTWidget
from ._traits import Labels, check_dims

__all__ = ["ScatterView"]

class ScatterView(DTWidget):
    """A canvas scatter of ``N`` points in 2-D or 3-D; 3-D is a rotatable orthographic projection (drag
    to rotate). Hover shows a point's label, coordinates and colour value; click selects it.
    """

    _module = "scatter_view"
    points = SyncedArray(2, "float32", "[N, 2|3]")
    """float32 [N, 2] or [N, 3] (non-finite rows are not drawn, and the page says how many)."""
    point_labels = Labels().tag(sync=True)
    """One label per point (N)."""
    axis_labels = Labels().tag(sync=True)
    """2 or 3 axis labels, e.g. "PC1 (41.2%)"."""
    colour = SyncedArray(1, "float32", "[N]")
    """float32 [N] colour values (empty = one colour; NaN = grey): codes into ``colour_classes`` when that is set
    (categorical palette), otherwise a sequential scale."""
    colour_classes = Labels().tag(sync=True)
    """Class names of a categorical ``colour`` (empty: ``colour`` is a number)."""
    colour_name = traitlets.Unicode("").tag(sync=True)
    """What the colour shows (legend title)."""
    scree = SyncedArray(1, "float32", "[R]")
    """float32 [R] explained variance ratio per component, drawn as bars (empty = hidden)."""
    title = traitlets.Unicode("").tag(sync=True)
    """Title above the plot."""
    point_size = traitlets.CInt(4, min=1, max=20).tag(sync=True)
    """Point radius in px."""
    selected = traitlets.CInt(-1, min=-1).tag(sync=True)
    """The clicked point (-1 = none), synced back."""
    yaw = traitlets.Float(0.6).tag(sync=True)
    """3-D view rotation about the vertical axis, radians (synced after a drag)."""
    pitch = traitlets.Float(0.35).tag(sync=True)
    """3-D view tilt, radians (synced after a drag)."""

    _DIMS = {"points": ("N", "D"), "point_labels": ("N",), "colour": ("N",), "axis_labels": ("D",)}

    @traitlets.validate(*_DIMS)
    def _shapes_agree(self, proposal: dict):
        value = proposal["value"]
        if proposal["trait"].name == "points" and value.size and value.shape[1] not in (2, 3):
            raise traitlets.TraitError(f"ScatterView.points: expected [N, 2] or [N, 3], got shape {value.shape}")
        return check_dims(self, proposal, self._DIMS)

    @traitlets.validate("selected")
    def _selected_in_points(self, proposal: dict) -> int:
        N = self.points.shape[0]
        if N and proposal["value"] >= N:
            raise traitlets.TraitError(f"ScatterView.selected: expected a point in [-1, {N}), got {proposal['value']}")
        return proposal["value"]

    @traitlets.validate("yaw", "pitch")
    def _finite_angle(self, proposal: dict) -> float:
        if not math.isfinite(proposal["value"]):
            raise traitlets.TraitError(f"ScatterView.{proposal['trait'].name}: expected a finite angle, got {proposal['value']}")
        return proposal["value"]

    @classmethod
    def from_pca(cls, result, dims: int = 2, **kwargs) -> "ScatterView":
        """A view of a :class:`~dtwidgets.analysis.spaces.PCAResult`: its first ``dims`` (2 or 3)
        coordinates, point labels, concept colour and scree (explained variance ratio)."""
        if dims not in (2, 3) or result.coordinates.shape[1] < dims:
            raise ValueError(f"dims: expected 2 or 3 with at most {result.coordinates.shape[1]} components, got {dims}")
        ratio = np.asarray(result.explained_variance_ratio)
        axes = [f"PC{k + 1} ({100 * ratio[k]:.1f}%)" for k in range(dims)]
        colour = result.colour if result.colour is not None else np.zeros(0, np.float32)
        kw = dict(points=result.coordinates[:, :dims], point_labels=result.point_labels, axis_labels=axes,
                  colour=colour, colour_classes=list(result.colour_classes), scree=ratio,
                  title=f"PCA of {result.space}" if result.space else "")
        return cls(**{**kw, **kwargs})

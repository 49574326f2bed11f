"""ScatterView: points in 2-D or 3-D (e.g. PCA coordinates) coloured by a concept, with a scree plot."""

from __future__ import annotations

import math

import numpy as np
import traitlets

from ._arrays import ArrayTrait, array_serialization
from ._base import DTWidget
from ._traits import Labels, check_dims

__all__ = ["ScatterView"]

_sync_arr = dict(sync=True, **array_serialization)


class ScatterView(DTWidget):
    """A canvas scatter of ``N`` points in 2-D or 3-D; 3-D is a rotatable orthographic projection (drag
    to rotate). Hover shows a point's label, coordinates and colour value; click selects it.

    Traits
    ------
    points : float32 [N, 2] or [N, 3]  (non-finite rows are not drawn, and the page says how many)
    point_labels : list[str] (len N); axis_labels : list[str] (len 2 or 3), e.g. "PC1 (41.2%)"
    colour : float32 [N] values (empty = one colour; NaN = grey); colour_classes : list[str]: when set,
        ``colour`` holds codes into it (categorical palette), otherwise a sequential scale; colour_name : str
    scree : float32 [R] explained variance (ratio) per component, drawn as bars (empty = hidden)
    title : str; point_size : int (px radius)
    selected : int, -1 = none, synced on click
    yaw, pitch : float radians, the 3-D view's rotation (synced after a drag)
    """

    _module = "scatter_view"
    points = ArrayTrait(ndim=2, dtype="float32", shape_doc="[N, 2|3]").tag(**_sync_arr)
    point_labels = Labels().tag(sync=True)
    axis_labels = Labels().tag(sync=True)
    colour = ArrayTrait(ndim=1, dtype="float32", shape_doc="[N]").tag(**_sync_arr)
    colour_classes = Labels().tag(sync=True)
    colour_name = traitlets.Unicode("").tag(sync=True)
    scree = ArrayTrait(ndim=1, dtype="float32", shape_doc="[R]").tag(**_sync_arr)
    title = traitlets.Unicode("").tag(sync=True)
    point_size = traitlets.CInt(4, min=1, max=20).tag(sync=True)
    selected = traitlets.CInt(-1, min=-1).tag(sync=True)
    yaw = traitlets.Float(0.6).tag(sync=True)
    pitch = traitlets.Float(0.35).tag(sync=True)

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

"""Per-state extras of the Directions tab (:mod:`dtwidgets.analysis.extras`): the residual stream against
each component's output and against the saved directions, both read from the bundle's one forward."""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import numpy as np

from ..adapters import hooks as hk
from ..adapters.protocol import ModelAdapter
from . import _common as C
from .extras import SharedExtra, StateRequest


@dataclass(frozen=True)
class Projection(SharedExtra):
    """The residual stream at the prediction token projected onto each head's and MLP's output of the
    same forward (the bundle's). Result: :class:`~dtwidgets.analysis.projection.ResidualProjection` (row 0)."""

    def hooks(self, adapter: ModelAdapter) -> list[str]:
        from .projection import projection_hooks

        return projection_hooks(adapter)

    def read(self, req: StateRequest, cache):
        from .projection import residual_projection

        return residual_projection(req.adapter, req.window, cache=cache)


@dataclass(frozen=True)
class SavedDirections(SharedExtra):
    """The saved residual-space directions of a :class:`~dtwidgets.analysis.saved_directions.DirectionStore`
    read at the state: their cosine matrix and the final residual's projection onto each.
    ``names``: the store's names when asked (a change of the store asks again). Result:
    :class:`SavedDirectionsResult` (``names`` empty when nothing is saved in the residual space)."""

    store: Any = field(compare=False)
    names: tuple[str, ...] = ()

    def hooks(self, adapter: ModelAdapter) -> list[str]:
        return [hk.resid_post(C.n_layers(adapter) - 1)]

    def read(self, req: StateRequest, cache):
        r = cache[self.hooks(req.adapter)[0]][0, req.adapter.layout.prediction_position].double().cpu().numpy()
        items = self.store.in_space("residual") if self.store is not None else []
        if not items:
            return SavedDirectionsResult([], np.zeros((0, 0), np.float32), np.zeros(0, np.float32),
                                         np.zeros(0, np.float32), r.astype(np.float32))
        names, cos = self.store.cosine_matrix("residual")
        V = np.stack([d.vector for d in items]).astype(np.float64)
        n = np.linalg.norm(V, axis=1)
        proj = (V @ r) / np.where(n > 0, n, 1.0)
        return SavedDirectionsResult(names, cos, proj.astype(np.float32),
                                     (proj / max(float(np.linalg.norm(r)), 1e-12)).astype(np.float32), r.astype(np.float32))


@dataclass
class SavedDirectionsResult:
    """``names`` (n); ``cosine [n, n]`` between saved directions; ``projection [n]``: the final residual at
    the prediction token along each (residual units, ``r · v / |v|``); ``cosine_to_state [n]``;
    ``residual [d_model]``: that final residual itself."""

    names: list
    cosine: np.ndarray
    projection: np.ndarray
    cosine_to_state: np.ndarray
    residual: np.ndarray

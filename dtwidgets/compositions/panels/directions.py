"""The Explorer's "Directions" tab: the residual stream of the state shown against each component's
output, and the directions saved so far (their cosine matrix and the state's projection onto each).

Directions are kept in ``ctx.directions`` (a :class:`~dtwidgets.analysis.saved_directions.DirectionStore`),
saved with the Explorer's recordings (``Explorer.save``) and loaded with them. The buttons save the
current preference direction (``W_a − W_b``, what the action head reads) or the state's own final
residual; any other source (a probe, an SAE feature, a neuron, a steering pair) goes in from Python:
``explorer.ctx.directions.add_probe(...)``, then the tab reads it at the next state.
"""
from __future__ import annotations

import ipywidgets as W
import numpy as np

from ...analysis.directions import preference_direction
from ...analysis.direction_extras import Projection, SavedDirections
from ...widgets import ContributionBars, MatrixHeatmap
from ..updates import assign
from .base import Panel, PanelData, esc, note


class DirectionsPanel(Panel):
    key, title = "directions", "Directions"

    def __init__(self, ctx):
        super().__init__(ctx)
        self.projection = ContributionBars(series_names=["projection", "cosine"], separate_axes=True,
                                           title="final residual at the prediction token, read along each component's output")
        self.name = W.Text(placeholder="name (default: the pair)", layout=W.Layout(width="200px"))
        self.save_pair = W.Button(description="save the preference direction", layout=W.Layout(width="auto"))
        self.save_state = W.Button(description="save this state's residual", layout=W.Layout(width="auto"))
        self.status = W.HTML()
        self.cosines = MatrixHeatmap(title="cosine similarity of the saved directions (residual space)", vmax=1.0,
                                     annotate=True, x_label="direction", y_label="direction")
        self.along = ContributionBars(series_names=["projection", "cosine"], separate_axes=True,
                                      title="the state's final residual along each saved direction")
        self.save_pair.on_click(lambda _b: self._save("pair"))
        self.save_state.on_click(lambda _b: self._save("state"))
        row = W.Box([self.name, self.save_pair, self.save_state],
                    layout=W.Layout(display="flex", flex_flow="row wrap", align_items="center", width="auto"))
        self.widget.children = [note("r · o / |o| for each head's and MLP's output o of this forward (residual units), "
                                     "and its cosine."), self.projection, row, self.status, self.cosines, self.along]
        self._data: PanelData | None = None

    @property
    def store(self):
        return self.ctx.directions

    def wanted(self) -> list:
        return [Projection(), SavedDirections(self.store, tuple(self.store.names))]

    def update(self, data: PanelData) -> None:
        self._data = data
        p = data.result(Projection())
        assign(self.projection, values=np.stack([p.projection[0], p.cosine[0]]).astype(np.float32), labels=list(p.labels))
        self._draw_saved()

    def _draw_saved(self) -> None:
        if self._data is None:
            return
        r = self._data.result(SavedDirections(self.store, tuple(self.store.names)))
        shown = "none" if not r.names else ""
        self.cosines.layout.display = self.along.layout.display = shown
        if not r.names:
            self.status.value = ("<div style='color:#555;font-size:12px'>No direction saved yet: save the preference "
                                 "direction or this state's residual, or add one from Python (a probe, an SAE feature, "
                                 "a neuron: <code>explorer.ctx.directions</code>).</div>")
            return
        self.status.value = f"<div style='font-size:12px'>{len(r.names)} saved: {esc(', '.join(r.names))}</div>"
        assign(self.cosines, values=r.cosine, row_labels=list(r.names), col_labels=list(r.names))
        assign(self.along, values=np.stack([r.projection, r.cosine_to_state]).astype(np.float32), labels=list(r.names))

    def _save(self, what: str) -> None:
        """Save the current pair's direction or the state's final residual under the name typed (or a default)."""
        a, b = self.ctx.pair
        names = self.ctx.adapter.action_names
        if what == "pair":
            d = preference_direction(self.ctx.adapter, a, b)
            name = self.name.value.strip() or f"{names[a]} − {names[b]}"
            self.store.add(name, d.vector.detach().cpu().numpy(), "residual", source="vector",
                           provenance={"from": "preference direction W_a − W_b", "pair": d.label}, replace=True)
        elif self._data is not None:
            r = self._data.result(SavedDirections(self.store, tuple(self.store.names))).residual
            step = int(self._data.window.timesteps[0, -1])
            name = self.name.value.strip() or f"residual at t = {step}"
            self.store.add(name, r, "residual", source="vector", provenance={"from": "final residual", "timestep": step},
                           replace=True)
        self.name.value = ""
        self._draw_saved()

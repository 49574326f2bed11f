"""The Explorer's "Congruence" tab: the MLP neurons whose output the action head reads most (unembedding
congruence ``W_out[l, n] · u_a``, from the weights, computed once per model) and, beside them, how much each
fires in the state shown and what that does to the preference
(:class:`~dtwidgets.analysis.space_extras.CongruenceNow`)."""
from __future__ import annotations

import numpy as np

from ...analysis.space_extras import CongruenceNow
from ...widgets import ContributionBars, MatrixHeatmap
from ..updates import assign
from .base import AnalysisContext, Panel, PanelData, note


class CongruencePanel(Panel):
    key, title = "congruence", "Congruence"
    extras = (CongruenceNow(),)

    def __init__(self, ctx: AnalysisContext):
        super().__init__(ctx)
        self.heatmap = MatrixHeatmap(title="unembedding congruence W_out · u_a (logit per unit activation, LN scale 1)",
                                     x_label="action", y_label="neuron")
        self.now = ContributionBars(series_names=["activation now", "push on a − b"], separate_axes=True,
                                    title="the same neurons in the state shown: activation at the prediction token, and "
                                          "its direct push on the preference, activation × (u_a − u_b)")
        self.note = note("")
        self.widget.children = [note("The neurons (all layers) whose output the action head reads most, by weights alone; "
                                     "the bars say which of them fire now."), self.note, self.heatmap, self.now]

    def update(self, data: PanelData) -> None:
        r = data.result(CongruenceNow())
        self.note.value = note(r.note).value if r.note else ""
        self.heatmap.layout.display = self.now.layout.display = "none" if r.note else ""
        if r.note:
            return
        assign(self.heatmap, values=r.congruence, row_labels=list(r.labels), col_labels=list(r.action_names))
        a, b = self.ctx.pair
        names = self.ctx.adapter.action_names
        assign(self.now, values=np.stack([r.activation, r.along_pair]).astype(np.float32), labels=list(r.labels),
               series_names=["activation now", f"push on {names[a]} − {names[b]}"])

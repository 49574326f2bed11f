"""The Explorer's "Patching" tab: activation patching from the unedited (clean) scenario into the edited
one (the :class:`Patching` extra; shown once the grid is edited)."""
from __future__ import annotations

import ipywidgets as W
import numpy as np

from ...analysis.extras import Patching
from ...widgets import ContributionBars, MatrixHeatmap
from ...widgets._traits import escape_braces
from ..token_names import token_names
from ..updates import assign
from .base import Panel, esc, note


class PatchingPanel(Panel):
    key, title = "patching", "Patching"
    extras = (Patching(),)

    def __init__(self, ctx):
        super().__init__(ctx)
        self.note = note("Edit the grid to create a corrupted scenario; the unedited state is the clean one.")
        self.head = W.HTML()
        self.resid = MatrixHeatmap(title="residual stream patched at one position", x_label="position",
                                   y_label="layer", vmax=1.0)
        self.parts = ContributionBars(title="head / MLP outputs patched (all positions)", series_names=["fraction"])
        self.widget.children = [self.note]

    def update(self, data):
        p = data.result(Patching())
        if p is None:
            self.widget.children = [self.note]
            return
        cols, steps = token_names(data, p.token_labels, self.ctx.adapter)
        assign(self.resid, values=p.resid, row_labels=[escape_braces(r) for r in p.resid_labels], col_labels=cols,
               steps=steps)
        assign(self.parts, values=np.concatenate([p.heads, p.mlp])[None], labels=list(p.head_labels) + list(p.mlp_labels))
        self.head.value = (f"Patching corrupted activations into the clean run: fraction of the change in "
                           f"<b>{esc(p.pair_label)}</b> (clean {p.clean_value:+.3f} → corrupted {p.corrupted_value:+.3f}) "
                           "each patch reproduces.")
        self.widget.children = [self.head, self.resid, self.parts]

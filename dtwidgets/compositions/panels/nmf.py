"""The Explorer's "NMF" tab: NMF components of a hook's activation at the state token over the reference
states, as FeatureBrowser cards (example states, statistics, the action head's reading of each), and the
state shown's weight on each component, ranked; the card of its strongest component is opened.

Reference states as in the Spaces tab (:class:`~dtwidgets.compositions.panels.spaces.ReferenceChoice`); the
factorisation is made once per hook, number of components and reference set
(:class:`~dtwidgets.analysis.space_extras.NMFNow`).
"""
from __future__ import annotations

import ipywidgets as W
import numpy as np

from ...adapters import hooks as hk
from ...analysis import _common as C
from ...analysis.space_extras import NMFNow, nmf_hooks
from ...widgets import ContributionBars, FeatureBrowserView
from ..updates import assign
from .base import AnalysisContext, Panel, PanelData, esc
from .spaces import _ROW, FittedPanel, ReferenceChoice

N_COMPONENTS = (2, 4, 6, 8, 12)


class NMFPanel(FittedPanel):
    key, title = "nmf", "NMF"

    def __init__(self, ctx: AnalysisContext):
        super().__init__(ctx)
        ad = ctx.adapter
        self.reference = ReferenceChoice(ctx)
        last = C.n_layers(ad) - 1
        self.hook = W.Dropdown(options=nmf_hooks(ad), value=hk.mlp_post(last) if C.has_mlp(ad) else hk.resid_post(last),
                               description="hook", layout=W.Layout(width="auto"))
        self.k = W.Dropdown(options=N_COMPONENTS, value=6, description="components",
                            style={"description_width": "initial"}, layout=W.Layout(width="auto"))
        self.info = W.HTML()
        self.weights = ContributionBars(series_names=["weight now"],
                                        title="the state shown's weight on each component (largest first)")
        self.browser = FeatureBrowserView(sort_by="frequency")
        for w in (self.hook, self.k):
            w.observe(self._redraw, names="value")
        self.reference.button.on_click(self._refit)
        self.widget.children = [W.Box([self.hook, self.k, self.reference.button], layout=_ROW), self.info,
                                self.weights, self.browser]
        self._data: PanelData | None = None

    def _extra(self) -> NMFNow:
        return NMFNow(str(self.hook.value), self.reference.get(), int(self.k.value))

    def _views(self) -> list:
        return [self.weights, self.browser]

    def _draw(self, r) -> None:
        top = int(r.order[0])
        self.info.value = (f"<div style='font-size:12px'>{len(r.labels)} components of {esc(r.nmf.hook)} over "
                           f"{esc(r.source)} (relative error {r.nmf.relative_error:.3f}). The state shown is "
                           f"{esc(r.labels[top])} most ({r.weights[top]:.3g}); its activation is rebuilt from the "
                           f"components with relative error {r.residual:.3f}. "
                           "<span style='color:#555'>In the browser below, feature k is component k; the "
                           "example states' actions are the model's own.</span></div>")
        assign(self.weights, values=r.weights[r.order][None].astype(np.float32), labels=[r.labels[i] for i in r.order])
        assign(self.browser, **r.cards)
        assign(self.browser, selected=top)

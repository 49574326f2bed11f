"""The Explorer's "Ablation" tab: the change in the preference when each component is ablated alone
(from the shared bundle), and the detail of one component (the :class:`AblationDetail` extra)."""
from __future__ import annotations

import ipywidgets as W
import numpy as np

from ...analysis.extras import AblationDetail
from ...widgets import ContributionBars
from ..token_names import component_templates
from ..updates import assign
from .base import Panel, PanelData, note


class AblationPanel(Panel):
    key, title = "ablation", "Ablation"
    SIGN = ("Δ = logit difference with the component ablated − without: a negative Δ means the component "
            "pushes towards the first action of the pair.")

    def __init__(self, ctx):
        super().__init__(ctx)
        self.sign = note(self.SIGN)
        self.overview = ContributionBars(title="change in preference when one component is ablated",
                                         series_names=["Δ logit diff"])
        self.component = W.Dropdown(description="ablate", options=[], layout=W.Layout(width="auto", max_width="420px"))
        self.component.observe(self._on_component, names="value")
        box = W.Layout(flex="1 1 300px", min_width="0")
        self.probs = ContributionBars(title="action probabilities", series_names=["clean", "ablated"], scale="unit",
                                      layout=box)
        self.contrib = ContributionBars(title="contributions before / after", series_names=["clean", "ablated"],
                                        layout=W.Layout(flex="2 1 360px", min_width="0"))
        detail = W.Box([self.probs, self.contrib], layout=W.Layout(display="flex", flex_flow="row wrap", width="auto"))
        self.widget.children = [self.sign, self.overview, self.component, detail]
        self._data: PanelData | None = None
        self._quiet = False

    def update(self, data):
        ab = data.state.ablations
        assign(self.overview, values=ab.delta_logit_diff[None], labels=ab.labels,
               title=f"change in {ab.pair_label} when one component is {ab.mode}-ablated")
        self._data = data
        labels = list(ab.labels)
        if list(self.component.options) != labels or self.component.value not in labels:
            # default: the component whose ablation changes the preference most
            default = labels[int(np.nanargmax(np.abs(ab.delta_logit_diff)))] if labels else None
            keep = self.component.value if self.component.value in labels else default
            self._quiet = True
            try:
                self.component.options = labels
                self.component.value = keep
            finally:
                self._quiet = False
        self._detail()

    def _on_component(self, _change):
        if not self._quiet:
            self._detail()

    def wanted(self) -> list:
        return [AblationDetail(self.component.value)] if self.component.value is not None else []

    def _detail(self):
        if self._data is None or self.component.value is None:
            return
        r = self._data.result(AblationDetail(self.component.value))  # one forward: the clean run is shared
        assign(self.probs, values=np.stack([r.probs_before, r.probs_after]), labels=list(r.action_names))
        labels, steps = component_templates(r.ids, self._data, self.ctx.adapter)
        assert r.contributions_before is not None and r.contributions_after is not None  # a pair was given
        assign(self.contrib, values=np.stack([r.contributions_before, r.contributions_after]), labels=labels,
               steps=steps)

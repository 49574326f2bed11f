"""The Explorer's "RTG scan" tab: behaviour as a function of the return-to-go (from the shared bundle)."""
from __future__ import annotations

import numpy as np

from ...widgets import RTGScanView
from ...widgets._traits import escape_braces
from ..token_names import component_templates
from ..updates import assign
from .base import Panel


class RTGScanPanel(Panel):
    key, title = "rtg_scan", "RTG scan"

    def __init__(self, ctx):
        super().__init__(ctx)
        self.view = RTGScanView(title="behaviour as a function of the return-to-go (every step set to that RTG)",
                                follow_group=ctx.follow_group)
        self.widget.children = [self.view]

    def update(self, data):
        s = data.state.rtg_scan
        A = len(s.action_names)
        series = [s.probs.T, s.logit_diff[None], s.contributions.T, s.attention_to_rtg.T]
        contrib, steps = component_templates(s.ids, data, self.ctx.adapter)
        names = ([escape_braces(f"P({n})") for n in s.action_names] + [escape_braces(s.pair_label)]
                 + contrib  # s₉ = episode step, as elsewhere
                 + [escape_braces(f"{h} → R") for h in s.head_labels])
        groups = (["probability"] * A + ["preference"] + ["contribution"] * len(s.labels)
                  + ["attention to RTG"] * len(s.head_labels))
        assign(self.view, rtgs=s.rtgs, series=np.concatenate(series, 0).astype(np.float32), series_names=names,
               series_groups=groups, steps=steps, index=int(np.argmin(np.abs(s.rtgs - data.rtg))))

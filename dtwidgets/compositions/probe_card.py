"""``ProbeDirectionCard``: one probe direction seen through the state embedding and the action head."""
from __future__ import annotations

import html

import ipywidgets as W
import numpy as np

from ..probes.directions import action_cosines, direction_over_observation
from ..widgets import ChannelHeatmap, ContributionBars


class ProbeDirectionCard(W.VBox):
    """A probe's direction: a header with its metrics, ``direction · W_state`` as channel heatmaps
    over the observation (what each input feature writes along the direction; exact for probes of
    ``blocks.0.hook_resid_pre`` at the state token, a reading through the embedding elsewhere), and
    its cosine with each action's head row and pairwise preference.

    Args:
        adapter: the model (:class:`~dtwidgets.adapters.ModelAdapter`).
        probe: a :class:`~dtwidgets.probes.ProbeResult`.
        cls: the class whose direction is shown (default: positive / first row).
        method: ``"fitted"`` or ``"dom"`` (difference of means).
    """

    def __init__(self, adapter, probe, cls=None, method: str = "fitted"):
        self.direction = probe.direction(cls, method=method)
        maps = direction_over_observation(adapter, self.direction)
        sch = adapter.schema
        self.heatmap = ChannelHeatmap(values=maps, titles=list(sch.channel_names), agent_cell=sch.agent_cell)
        cos = action_cosines(adapter, self.direction)
        self.cosines = ContributionBars(values=np.asarray(list(cos.values()), np.float32), labels=list(cos),
                                        series_names=["cosine"], title="cosine with action directions")
        target = cls if cls is not None else (probe.classes[-1] if probe.classes else "higher values")
        m = probe.metrics()
        head = (f"<b>{html.escape(probe.concept)}</b> = {html.escape(str(target))} at "
                f"{html.escape(' @ '.join(map(str, probe.site)))} ({html.escape(method)} direction)<br>"
                f"score {m['score']:.3f} · AUC {m['auc']:.3f} · baseline {m['baseline']:.3f} · control "
                f"{m['control']:.3f} · selectivity {m['selectivity']:.3f} · {m['n']} steps, {m['episodes']} episodes")
        super().__init__([W.HTML(head), self.heatmap, self.cosines])

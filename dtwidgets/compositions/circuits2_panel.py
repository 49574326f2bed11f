"""The Explorer's "Circuits II" panel: logit lens, per-neuron attribution (sortable, filterable),
direct path patching (matrix + diagram of the strongest paths), composition scores and a head's
virtual weights.

    panel = Circuits2Panel(ctx, clean_window=lambda: explorer.session.clean_window())
    panel.update(data)

``clean_window`` (optional) returns the unedited scenario's window (None when the grid is not
edited); path patching is shown only when it gives one.
"""
from __future__ import annotations

import html

from typing import cast

import ipywidgets as W
import numpy as np

from ..adapters.window import TrajectoryWindow
from ..analysis.attribution import logit_attribution, logit_lens
from ..analysis.neurons import neuron_activations
from ..analysis.path_patching import path_patching
from ..analysis.weights import composition_scores, head_svd, virtual_weights
from ..widgets import ChannelHeatmap, CircuitDiagram, ContributionBars, MatrixHeatmap
from .panels import AnalysisContext, Panel, PanelData, assign

SORTS = (("|share| (largest first)", "abs"), ("share (most positive first)", "desc"),
         ("share (most negative first)", "asc"), ("activation", "act"))


def neuron_rows(values: np.ndarray, activations: np.ndarray, sort: str = "abs", filter_text: str = "",
                limit: int = 30) -> tuple[list[str], np.ndarray, np.ndarray]:
    """Pick and order rows of a per-neuron list: ``(labels, shares [k], activations [k])``.

    ``values``, ``activations``: ``[L, d_mlp]``; ``filter_text`` keeps labels containing it (e.g. ``"L1"``
    or ``"N12"``); ``sort`` in ``abs`` / ``desc`` / ``asc`` / ``act``."""
    L, dm = values.shape
    labels = np.array([f"L{l}N{n}" for l in range(L) for n in range(dm)])
    v, a = values.reshape(-1), activations.reshape(-1)
    keep = np.flatnonzero([filter_text.strip() in s for s in labels]) if filter_text.strip() else np.arange(len(v))
    key = {"abs": -np.abs(v), "desc": -v, "asc": v, "act": -a}[sort][keep]
    order = keep[np.argsort(key, kind="stable")][:limit]
    return list(labels[order]), v[order], a[order]


class Circuits2Panel(Panel):
    key, title = "circuits2", "Circuits II"

    def __init__(self, ctx: AnalysisContext, clean_window=None):
        super().__init__(ctx)
        self.clean_window = clean_window
        self._build_views()
        self._wire_events()
        self._layout()
        self._data: PanelData | None = None
        self._neurons: tuple[np.ndarray, np.ndarray] | None = None
        self._comp = composition_scores(ctx.model)
        self._draw_composition()
        self._draw_virtual()

    def _build_views(self) -> None:
        m = self.ctx.model
        cfg = m.backbone.cfg
        self.lens = ContributionBars(series_names=["preference"], title="logit lens: preference after each sublayer")
        self.sort = W.Dropdown(options=SORTS, value="abs", description="sort")
        self.filter = W.Text(placeholder="filter, e.g. L0 or N12", description="neurons")
        self.neurons = ContributionBars(series_names=["share", "activation"], title="per-neuron attribution")
        self.paths_note = W.HTML()
        self.paths = MatrixHeatmap(title="direct path patching: effect of each path", x_label="receiver",
                                   y_label="sender")
        self.diagram = CircuitDiagram()
        self.comp_mode = W.ToggleButtons(options=[("Q", "q"), ("K", "k"), ("V", "v")], value="q",
                                         description="composition")
        self.comp = MatrixHeatmap(title="composition scores (writer → reader)", x_label="reader", y_label="writer")
        heads = [f"L{l}H{h}" for l in range(cfg.n_layers) for h in range(cfg.n_heads)]
        self.head = W.Dropdown(options=heads, description="virtual weights")
        self.action = W.Dropdown(options=[(n, i) for i, n in enumerate(m.action_names)], description="action")
        self.virtual = ChannelHeatmap(agent_cell=m.schema.agent_cell)
        self.svd_kind = W.ToggleButtons(options=[("OV", "ov"), ("QK", "qk")], value="ov", description="SVD")
        self.svd_note = W.HTML()
        self.svd = ChannelHeatmap(agent_cell=m.schema.agent_cell)

    def _wire_events(self) -> None:
        self.sort.observe(lambda _: self._draw_neurons(), names="value")
        self.filter.observe(lambda _: self._draw_neurons(), names="value")
        self.comp_mode.observe(lambda _: self._draw_composition(), names="value")
        self.head.observe(lambda _: self._draw_virtual(), names="value")
        self.svd_kind.observe(lambda _: self._draw_virtual(), names="value")
        self.action.observe(lambda _: self._draw_virtual(), names="value")

    def _layout(self) -> None:
        self.widget.children = [
            self.lens, W.HBox([self.sort, self.filter]), self.neurons,
            self.paths_note, W.HBox([self.paths, self.diagram]),
            self.comp_mode, self.comp, W.HBox([self.head, self.action]), self.virtual,
            self.svd_kind, self.svd_note, self.svd]

    def update(self, data: PanelData) -> None:
        self._data = data
        m, w = self.ctx.model, cast(TrajectoryWindow, data.window)
        a, b = self.ctx.pair
        lens = logit_lens(m, w, a, b)
        assign(self.lens, values=lens.values[None], labels=lens.labels,
               title=f"logit lens ({lens.direction}): preference after each sublayer")
        at = logit_attribution(m, w, a, b, per_source=False, per_neuron=True)
        if at.neuron_values is not None:
            self._neurons = (at.neuron_values, neuron_activations(m, w)[0].numpy())
        self._draw_neurons()
        self._draw_paths(data)

    def _draw_neurons(self) -> None:
        if self._neurons is None:
            return
        labels, v, act = neuron_rows(*self._neurons, sort=self.sort.value, filter_text=self.filter.value)
        assign(self.neurons, values=np.stack([v, act]).astype(np.float32), labels=labels)

    def _draw_paths(self, data: PanelData) -> None:
        clean = self.clean_window() if self.clean_window is not None else getattr(data, "clean_window", None)
        if clean is None:
            self.paths_note.value = "<i>Edit the grid to get a corrupted scenario: direct path patching compares it " \
                                    "with the unedited (clean) one.</i>"
            return
        a, b = self.ctx.pair
        pp = path_patching(self.ctx.model, clean, cast(TrajectoryWindow, data.window), a, b)
        self.paths_note.value = (f"Direct paths, <b>{html.escape(pp.direction)}</b>: clean {pp.clean_value:+.3f} → corrupted "
                                 f"{pp.corrupted_value:+.3f}; each cell moves one path to its corrupted value.")
        assign(self.paths, values=pp.effects, row_labels=pp.sender_labels, col_labels=pp.receiver_labels)
        d = CircuitDiagram.from_path_patching(pp, k=8)
        assign(self.diagram, node_labels=d.node_labels, node_kinds=d.node_kinds, node_layers=d.node_layers, edges=d.edges,
               edge_labels=d.edge_labels, title=d.title, unit=d.unit)
        d.close()

    def _draw_composition(self) -> None:
        c = self._comp
        assign(self.comp, values=getattr(c, self.comp_mode.value), row_labels=c.head_labels, col_labels=c.head_labels)

    def _draw_virtual(self) -> None:
        vw = virtual_weights(self.ctx.model, self.head.value)
        i = self.action.value
        assign(self.virtual, values=vw.values[i], titles=[f"{vw.path} [{vw.action_names[i]}]: {c}" for c in vw.channel_names])
        lh = self.head.value[1:].split("H")
        sv = head_svd(self.ctx.model, int(lh[0]), int(lh[1]), self.svd_kind.value, k=1)
        s = ", ".join(f"{v:.3g}" for v in sv.singular_values)
        out = ""
        if sv.output_actions is not None:
            out = "; it writes " + ", ".join(f"{html.escape(n)} {v:+.3g}" for n, v in zip(sv.action_names, sv.output_actions[0]))
        self.svd_note.value = (f"<b>{self.head.value} {sv.kind.upper()}</b> singular values {s}. Maps: the top "
                               f"input direction read through the state embedding{out}.")
        assign(self.svd, values=sv.input_maps[0], titles=[f"σ1 input: {c}" for c in sv.channel_names])

"""The Explorer's "Circuits II" panel: direct path patching (matrix + diagram of the strongest paths),
composition scores, a head's virtual weights and the SVD of its QK / OV circuits.

The logit lens and the per-neuron attribution are in the Attribution tab
(:mod:`dtwidgets.compositions.attribution_panel`), next to the direct logit attribution they refine.

    panel = Circuits2Panel(ctx, clean_window=lambda: explorer.session.clean_window())
    panel.update(data)

``clean_window`` (optional) returns the unedited scenario's window (None when the grid is not
edited); path patching is shown only when it gives one.
"""
from __future__ import annotations

import html

from dataclasses import replace

import ipywidgets as W

from ...analysis import _common as C
from ...analysis.state_map import linear_state_weights
from ...analysis.extras import Composition, HeadWeights, PathPatchingExtra, StateRequest, compute_extras
from ...widgets import ChannelHeatmap, CircuitDiagram, MatrixHeatmap
from ..channel_use import ChannelUse
from ..updates import assign
from .base import AnalysisContext, Panel, PanelData

WIDE = {"description_width": "initial"}
"""Widget style: the description at its natural width (the default 90 px cuts "virtual weights" to "virtual we…")."""
SHOW_SINGULAR = 8
"""Singular values listed in the SVD note (the rest are summarised)."""


class Circuits2Panel(Panel):
    key, title = "circuits2", "Circuits II"

    def __init__(self, ctx: AnalysisContext, clean_window=None):
        super().__init__(ctx)
        self.clean_window = clean_window
        self._build_views()
        self._wire_events()
        self._layout()
        self._data: PanelData | None = None
        self._comp = self._weights_only(Composition())
        self._draw_composition()
        self._draw_virtual()

    def _weights_only(self, extra):
        """A weights-only extra (no state needed), computed by the owner."""
        window = None if self._data is None else self._data.window  # read by a nonlinear state encoder only
        req = StateRequest(self.ctx.adapter, window, self.ctx.pair)  # type: ignore[arg-type]
        return compute_extras(req, [extra])[type(extra)]

    def _build_views(self) -> None:
        m = self.ctx.adapter
        self.pointer = W.HTML("<div style='color:#555;font-size:12px'>The logit lens and the per-neuron attribution "
                              "are in the <b>Attribution</b> tab.</div>")
        self.paths_note = W.HTML()
        self.paths = MatrixHeatmap(title="direct path patching: effect of each path", x_label="receiver",
                                   y_label="sender")
        self.diagram = CircuitDiagram()
        self.comp_mode = W.ToggleButtons(options=[("Q", "q"), ("K", "k"), ("V", "v")], value="q",
                                         description="composition", style=WIDE)
        self.comp_note = W.HTML()
        self.comp = MatrixHeatmap(title="composition scores (writer → reader)", x_label="reader", y_label="writer")
        heads = C.head_labels(m)
        self.head = W.Dropdown(options=heads, description="virtual weights of", style=WIDE,
                               layout=W.Layout(width="auto", max_width="100%"))
        self.action = W.Dropdown(options=[(n, i) for i, n in enumerate(m.action_names)], description="action",
                                 layout=W.Layout(width="auto", max_width="100%"))
        self.virtual = ChannelHeatmap(agent_cell=m.schema.agent_cell)
        self.virtual_note = W.HTML()
        self.svd_kind = W.ToggleButtons(options=[("OV", "ov"), ("QK", "qk")], value="ov", description="SVD", style=WIDE)
        self.svd_note = W.HTML()
        self.svd = ChannelHeatmap(agent_cell=m.schema.agent_cell)
        self.paths_row = W.Box([self.paths, self.diagram], layout=W.Layout(display="none", flex_flow="row wrap",
                                                                           width="auto", min_width="0"))
        self.use = ChannelUse(m)

    def _wire_events(self) -> None:
        self.comp_mode.observe(lambda _: self._draw_composition(), names="value")
        self.head.observe(lambda _: self._draw_virtual(), names="value")
        self.svd_kind.observe(lambda _: self._draw_virtual(), names="value")
        self.action.observe(lambda _: self._draw_virtual(), names="value")

    def _layout(self) -> None:
        self.widget.children = [
            self.pointer,
            self.paths_note, self.paths_row,
            self.comp_mode, self.comp_note, self.comp,
            W.Box([self.head, self.action], layout=W.Layout(display="flex", flex_flow="row wrap", width="auto")),
            self.virtual_note, self.virtual,
            self.svd_kind, self.svd_note, self.svd]

    def update(self, data: PanelData) -> None:
        self._data = data
        before = list(self.use.unused)
        if self.use.update(data.window) != before or not self._linear:
            self._draw_virtual()  # a nonlinear state encoder's maps follow the state shown
        self._draw_paths(data)

    def _draw_paths(self, data: PanelData) -> None:
        clean = data.clean_window
        if clean is None and self.clean_window is not None:  # a standalone panel told where the clean scenario is
            clean = self.clean_window()
        if clean is None:
            self.paths_note.value = "<i>Edit the grid to get a corrupted scenario: direct path patching compares it " \
                                    "with the unedited (clean) one.</i>"
            self.paths_row.layout.display = "none"  # no empty "no data" charts
            return
        self.paths_row.layout.display = "flex"
        if data.clean_window is not None:
            pp = data.result(PathPatchingExtra())
        else:
            assert data.request is not None
            pp = compute_extras(replace(data.request, clean=clean), [PathPatchingExtra()])[PathPatchingExtra]
        self.paths_note.value = (f"Direct paths, <b>{html.escape(pp.pair_label)}</b>: clean {pp.clean_value:+.3f} → corrupted "
                                 f"{pp.corrupted_value:+.3f}; each cell moves one path to its corrupted value.")
        assign(self.paths, values=pp.effects, row_labels=pp.sender_labels, col_labels=pp.receiver_labels)
        d = CircuitDiagram.from_path_patching(pp, k=8)
        assign(self.diagram, node_labels=d.node_labels, node_kinds=d.node_kinds, node_layers=d.node_layers, edges=d.edges,
               edge_labels=d.edge_labels, title=d.title, unit=d.unit)
        d.close()

    def _draw_composition(self) -> None:
        c = self._comp
        one_layer = len({h.split("H")[0] for h in c.head_labels}) < 2
        self.comp_note.value = ("<i>Composition needs a head in a later layer reading an earlier head's output: this "
                                "model has one layer, so every score is 0.</i>" if one_layer else "")
        self.comp.layout.display = self.comp_mode.layout.display = "none" if one_layer else ""
        assign(self.comp, values=getattr(c, self.comp_mode.value), row_labels=c.head_labels, col_labels=c.head_labels)

    @property
    def _linear(self) -> bool:
        return linear_state_weights(self.ctx.adapter) is not None

    def _draw_virtual(self) -> None:
        if not self._linear and self._data is None:
            return  # a nonlinear encoder's Jacobian needs the state shown: drawn at the first update
        hw = self._weights_only(HeadWeights(self.head.value, self.svd_kind.value))
        vw, sv = hw.virtual, hw.svd
        i = self.action.value
        unused = list(self.use.unused)
        assign(self.virtual, values=vw.values[i], titles=[str(c) for c in vw.channel_names], unused=unused)
        self.virtual_note.value = (f"<b>{html.escape(vw.path)} [{html.escape(str(vw.action_names[i]))}]</b>: the change in "
                                   "that action's logit per unit of each input feature at a cell, through this head alone "
                                   "(per unit of attention paid to the state token; " + ("weights only)" if self._linear
                                                                                     else "the nonlinear state encoder's "
                                                                                     "Jacobian at the state shown)"))
        sing = sv.singular_values
        s = ", ".join(f"{v:.3g}" for v in sing[:SHOW_SINGULAR]) + (f", … ({len(sing)} in all)" if len(sing) > SHOW_SINGULAR else "")
        out = ""
        if sv.output_actions is not None:
            out = "; it writes " + ", ".join(f"{html.escape(n)} {v:+.3g}" for n, v in zip(sv.action_names, sv.output_actions[0]))
        self.svd_note.value = (f"<b>{self.head.value} {sv.kind.upper()}</b> singular values {s}. Maps: the top "
                               f"input direction read through the state embedding{out}.")
        assign(self.svd, values=sv.input_maps[0], titles=[f"σ1 input: {c}" for c in sv.channel_names], unused=unused)

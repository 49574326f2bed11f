"""The Explorer's policy-map panel: the whole grid's policy for the current grid and RTG, compared
with another RTG, an ablated component or a steering scan (see :mod:`dtwidgets.analysis.policy_map`).

    panel = PolicyPanel(ctx, env=explorer.env)   # the env is read (full_grid, observation_at), never changed
    panel.update(data)                           # recomputes when the grid is edited or the state moves

Window convention: "fresh" (one-step windows at the current timestep, default) or "history" (the
current window with its last observation replaced by each placement's).
"""
from __future__ import annotations

import ipywidgets as W

from ...analysis import _common as C
from ...analysis.extras import PolicyMaps
from ...adapters.actions import action_table
from ...analysis.policy_map import Placements, agent_placements
from ...widgets import PolicyMapView
from .base import AnalysisContext, Panel, PanelData

COMPARE = (("nothing", "none"), ("another RTG", "rtg"), ("an ablated component", "ablation"),
           ("steering along the preference (scan)", "steering"))


class PolicyPanel(Panel):
    key, title = "policy_map", "Policy map"

    def __init__(self, ctx: AnalysisContext, env=None):
        super().__init__(ctx)
        self.env = env if env is not None else getattr(ctx, "env", None)
        self._build_views()
        self._wire_events()
        controls = W.Box([self.compare, self.other_rtg, self.component, self.display, self.history],  # wraps when narrow
                         layout=W.Layout(display="flex", flex_flow="row wrap", align_items="center", width="auto"))
        self.widget.children = [controls, self.note, self.view]
        self._data: PanelData | None = None
        self._grid_key: tuple | None = None
        self._placements: Placements | None = None

    def _build_views(self) -> None:
        comps = C.head_labels(self.ctx.adapter) + C.mlp_labels(self.ctx.adapter)
        options = [o for o in COMPARE if o[1] != "rtg" or self.ctx.adapter.layout.has_rtg]  # no RTG tokens: no RTG B
        self.compare = W.Dropdown(options=options, value="none", description="compare with",
                                  style={"description_width": "initial"}, layout=W.Layout(width="auto"))
        self.other_rtg = W.FloatText(value=-1.0, description="RTG B", layout=W.Layout(width="140px"))
        self.component = W.Dropdown(options=comps, description="ablate", layout=W.Layout(width="180px"))
        self.display = W.ToggleButtons(options=[("side by side", "side_by_side"), ("difference", "difference")],
                                       value="difference")
        self.history = W.ToggleButtons(options=[("fresh window", "fresh"), ("current history", "history")],
                                       value="fresh", description="window", style={"description_width": "initial"},
                                       tooltips=["a one-step window at the current timestep for every placement",
                                                 "the current window, its last observation replaced by each placement's"])
        self.note = W.HTML()
        self.view = PolicyMapView(title="action distribution with the agent on every free cell")

    def _wire_events(self) -> None:
        for w in (self.compare, self.other_rtg, self.component, self.display, self.history):
            w.observe(self._redraw, names="value")

    def set_env(self, env) -> None:
        self.env = env
        self._grid_key = None

    def update(self, data: PanelData) -> None:
        self._data = data
        self._redraw()

    def _redraw(self, *_):
        data = self._data
        if data is None:
            return
        if self.env is None:
            self.note.value = "<i>No environment: create the panel with PolicyPanel(ctx, env=...)</i>"
            return
        grid, pos, d = self.env.full_grid()
        key = (grid.tobytes(), pos, d)
        if key != self._grid_key:
            self._placements, self._grid_key = agent_placements(self.env), key
            self.view.action_kinds = list(action_table(self.env).kinds)  # moves drawn as moves, turns as turns
        self._draw(data, self._placements)

    def _extra(self, p) -> PolicyMaps:
        """The :class:`PolicyMaps` extra the controls ask for."""
        return PolicyMaps(p, compare=self.compare.value, other_rtg=float(self.other_rtg.value),
                          component=str(self.component.value), history=self.history.value == "history")

    def _draw(self, data: PanelData, p) -> None:
        mode = self.compare.value
        for c, show in ((self.other_rtg, mode == "rtg"), (self.component, mode == "ablation"),
                        (self.display, mode != "none")):
            c.layout.display = "" if show else "none"
        r = data.result(self._extra(p))
        if r.scan is not None:
            self.view.show_scan(r.scan, r.first, self.display.value)
        elif r.second is not None:
            self.view.show_maps(r.first, r.second, self.display.value)
        else:
            self.view.show_maps(r.first)
        hist = self.history.value == "history"
        facing = action_table(self.env).has_facing
        how = ("free cells × 4 directions" if facing else "one per free cell: the agent has no facing")
        cells = ("Each cell is split into four triangles, one per direction the agent could face; in each, an arrow "
                 "per action (its colour)" if facing else "In each cell a glyph per action (its colour)")
        self.note.value = (f"{len(p)} placements ({how}), "
                           f"RTG {r.rtg:g}, {'current history' if hist else 'fresh one-step windows'}. "
                           f"<span style='color:#555'>{cells} drawn with opacity = probability. "
                           "Hover a cell for the numbers.</span>")

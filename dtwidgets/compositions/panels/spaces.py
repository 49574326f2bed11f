"""The Explorer's "Spaces" tab: PCA of the state-token residual over a set of reference states, with the
state shown projected onto the same components and ringed; it moves with every state.

The reference states are the Explorer's ``reference_windows`` when it has them; otherwise the episode so
far: retaken while the episode is shorter than :data:`KEEP_EPISODE_STATES` states, then kept until "refit on
the episode so far" is pressed (a fit is made once per hook and reference set and only read per state:
:class:`~dtwidgets.analysis.space_extras.SpacePCA`).
"""
from __future__ import annotations

import ipywidgets as W
import numpy as np

from ...analysis.space_extras import ReferenceStates, SpacePCA, space_hooks
from ...widgets import ScatterView
from ..updates import assign
from .base import AnalysisContext, Panel, PanelData, esc

KEEP_EPISODE_STATES = 8
"""Without reference windows, the episode so far is taken again at each state until it has this many states;
from then on the set (and so the fit) is kept until "refit"."""
_ROW = W.Layout(display="flex", flex_flow="row wrap", align_items="center", width="auto")


class ReferenceChoice:
    """Which reference states a spaces tab fits on: the context's ``reference_windows``, else the states of
    the episode so far (from ``ctx.session``), taken when first needed and kept until :meth:`refit`."""

    def __init__(self, ctx: AnalysisContext):
        self.ctx = ctx
        given = getattr(ctx, "reference_windows", None)
        self.fixed = given is not None
        self._ref = None if given is None else ReferenceStates.of(given, f"the {given.batch_size} reference windows")
        self.button = W.Button(description="refit on the episode so far", layout=W.Layout(width="auto"),
                               tooltip="take the states of the episode up to now as the reference set and fit again")
        self.button.layout.display = "none" if self.fixed else ""

    def get(self) -> ReferenceStates | None:
        """The reference states (None without reference windows and without a session)."""
        if self.fixed:
            return self._ref
        session = getattr(self.ctx, "session", None)
        if session is not None and (self._ref is None or len(self._ref) < KEEP_EPISODE_STATES):
            self._ref = ReferenceStates.from_episode(self.ctx.adapter, session.record())  # kept from 8 states on
        return self._ref

    def refit(self) -> None:
        """Take the episode so far again at the next read (no effect with reference windows)."""
        if not self.fixed:
            self._ref = None


class FittedPanel(Panel):
    """A panel drawn from one extra fitted on the reference states: asks for :meth:`_extra`, refits on
    "refit", shows the result's note (hiding :meth:`_views`) or :meth:`_draw` s the result."""

    reference: ReferenceChoice
    info: W.HTML
    _data: PanelData | None

    def _extra(self):
        raise NotImplementedError

    def _views(self) -> list:
        raise NotImplementedError

    def _draw(self, r) -> None:
        raise NotImplementedError

    def wanted(self) -> list:
        return [self._extra()]

    def update(self, data: PanelData) -> None:
        self._data = data
        self._redraw()

    def _refit(self, _button=None) -> None:
        self.reference.refit()
        self._redraw()

    def _redraw(self, *_) -> None:
        if self._data is None:
            return
        r = self._data.result(self._extra())
        for w in self._views():
            w.layout.display = "none" if r.note else ""
        if r.note:
            self.info.value = f"<div style='color:#555;font-size:12px'>{esc(r.note)}</div>"
            return
        self._draw(r)


class SpacesPanel(FittedPanel):
    key, title = "spaces", "Spaces"

    def __init__(self, ctx: AnalysisContext):
        super().__init__(ctx)
        self.reference = ReferenceChoice(ctx)
        self.hook = W.Dropdown(options=space_hooks(ctx.adapter), description="residual at",
                               style={"description_width": "initial"}, layout=W.Layout(width="auto"))
        self.colour_by = W.ToggleButtons(options=[("predicted action", "action"), ("RTG", "rtg")], value="action",
                                         description="colour", style={"description_width": "initial"})
        self.dims = W.ToggleButtons(options=[("2-D", 2), ("3-D", 3)], value=2)
        self.info = W.HTML()
        self.view = ScatterView(point_size=4)
        for w in (self.hook, self.colour_by, self.dims):
            w.observe(self._redraw, names="value")
        self.reference.button.on_click(self._refit)
        row = W.Box([self.hook, self.colour_by, self.dims, self.reference.button], layout=_ROW)
        self.widget.children = [row, self.info, self.view]
        self._data: PanelData | None = None

    def _extra(self) -> SpacePCA:
        return SpacePCA(str(self.hook.value), self.reference.get(), str(self.colour_by.value), 3)

    def _views(self) -> list:
        return [self.view]

    def _draw(self, r) -> None:
        p = r.pca
        k = min(int(self.dims.value), p.coordinates.shape[1])
        ratio = np.asarray(p.explained_variance_ratio)
        pts = np.vstack([p.coordinates[:, :k], r.current[None, :k]]).astype(np.float32)
        colour = np.append(p.colour, np.float32(r.current_colour)).astype(np.float32)
        coords = ", ".join(f"PC{i + 1} {v:+.3g}" for i, v in enumerate(r.current[:k]))
        fewer = f" (only {k} components: {p.coordinates.shape[0]} states)" if k < int(self.dims.value) else ""
        self.info.value = (f"<div style='font-size:12px'>PCA of {esc(self.hook.value)} at the state token over "
                           f"{esc(r.source)}{esc(fewer)}. The state shown (the large dot ringed in black): {esc(coords)}. "
                           "<span style='color:#555'>Hover a point for its step, RTG and the model's action"
                           f"{'; drag to rotate' if k == 3 else ''}.</span></div>")
        assign(self.view, points=pts, point_labels=[*p.point_labels, r.current_label],
               axis_labels=[f"PC{i + 1} ({100 * ratio[i]:.1f}%)" for i in range(k)], colour=colour,
               colour_classes=list(p.colour_classes),
               colour_name="the model's action" if self.colour_by.value == "action" else "RTG", scree=ratio,
               selected=len(pts) - 1, title=f"PCA of the state-token residual at {self.hook.value}")

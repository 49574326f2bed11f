"""The Explorer's view: every widget it shows and their layout (no callbacks, no analysis).

The controller (:class:`~dtwidgets.compositions.explorer.Explorer`) wires their events to the event methods
of the :class:`~dtwidgets.compositions.state.ExplorerState` and sends each state's updates to these widgets
through :mod:`~dtwidgets.compositions.updates`.
"""
from __future__ import annotations

import ipywidgets as W
import numpy as np

from ..widgets import ActionPreferences, GridView, RTGSlider, StatusLine
from ..widgets.feed import UpdateFeed
from ..widgets.grid_view import EDIT_TOOLS
from .panels import AnalysisContext, LazyPanels
from .panels.registry import PanelCreationError

TAB_CSS = ("<style>"
           ".dtw-explorer .lm-TabBar-content{flex-wrap:wrap}"
           ".dtw-explorer .widget-tab>.lm-TabBar,.dtw-explorer .jupyter-widget-tab>.lm-TabBar{height:auto;"
           "min-height:var(--jp-widgets-horizontal-tab-height,24px);overflow:visible}"
           ".dtw-explorer .lm-TabBar-tab{flex:0 0 auto!important;max-width:none!important;min-width:fit-content}"
           "</style>")
"""The Explorer's tab bar wraps and each tab keeps its whole label (ipywidgets shrinks tabs to ~100 px with an
ellipsis: "QK / OV ci…" at 1100 px with the file browser open). Scoped to the Explorer; left out of exports."""

WIDGETS = ('grid', 'view', 'prefs', 'buttons', 'act_button', 'back_button', 'seed_box', 'reset_button', 'rtg_slider', 'edit_toggle', 'edit_tool', 'status', 'error', 'note', 'bookmark_button', 'bookmarks', 'path', 'save_button', 'load_button', 'saved', 'timeline', 'panels', 'feed', 'tabs')
"""The view's widgets, readable on the Explorer too (``explorer.grid`` is ``explorer.ui.grid``)."""


class ExplorerView:
    """The widgets of one Explorer: the full grid, the agent's view, the preferences, the controls,
    the status line, the error line and the tabs of analysis panels."""

    def __init__(self, adapter, env, session, ctx: AnalysisContext, rtg: float, seed: int, panels) -> None:
        """Create every widget (no callbacks); :meth:`children` lays them out."""
        a, b = ctx.pair
        follow = ctx.follow_group
        lo, hi = adapter.rtg_range
        grid, pos, d = env.full_grid()
        self.grid = GridView(grid, agent_pos=pos, agent_dir=d, view_size=adapter.schema.grid_shape[0], cell_size=34)
        self.view = GridView(cell_size=22)
        self.view.show(session.observation, getattr(env, "schema", None) or adapter.schema)
        self.prefs = ActionPreferences(logits=np.zeros(adapter.n_actions, np.float32), action_names=list(adapter.action_names),
                                       pair=(a, b), follow_group=follow)
        self.buttons = [W.Button(description=n, layout=W.Layout(width="auto")) for n in env.action_names]
        self.act_button = W.Button(description="model acts", button_style="info", layout=W.Layout(width="auto"))
        self.back_button = W.Button(description="step back", icon="undo", layout=W.Layout(width="auto"))
        self.seed_box = W.BoundedIntText(value=seed, min=0, max=2**31 - 1, description="seed",
                                         layout=W.Layout(width="150px"))
        self.reset_button = W.Button(description="reset", button_style="warning", layout=W.Layout(width="auto"))
        self.rtg_slider = RTGSlider(value=float(rtg), min=float(lo), max=float(hi), step=0.01, follow_group=follow,
                                    layout=W.Layout(width="auto", display="" if adapter.layout.has_rtg else "none"))
        self.edit_toggle = W.ToggleButton(description="edit grid", icon="pencil", layout=W.Layout(width="auto"))
        self.edit_tool = W.Dropdown(options=list(EDIT_TOOLS), value="ball", layout=W.Layout(width="100px"))
        self.status = StatusLine(preferences=self.prefs, follow_group=follow, layout=W.Layout(width="auto"))
        self.error = W.HTML()
        self.note = W.Text(placeholder="note for this state", layout=W.Layout(width="170px"))
        self.bookmark_button = W.Button(description="bookmark", icon="bookmark", layout=W.Layout(width="auto"))
        self.bookmarks = W.Dropdown(options=[("go to a bookmark…", -1)], value=-1, layout=W.Layout(width="190px"))
        self.path = W.Text(value="trajectory.npz", description="file", layout=W.Layout(width="230px"))
        self.save_button = W.Button(description="save", layout=W.Layout(width="auto"))
        self.load_button = W.Button(description="load", layout=W.Layout(width="auto"))
        self.saved = W.Label()
        self.timeline = W.IntSlider(value=0, min=0, max=0, description="replay", disabled=True, continuous_update=True,
                                    layout=W.Layout(width="auto", max_width="100%"))
        self.panels = LazyPanels(ctx, list(panels), on_build=self._retitle)
        """The panels, each created when first asked for (its tab shown, ``show_panel``, an export): until
        then its tab holds a placeholder, and the page receives none of its widget models."""
        self.feed = UpdateFeed()  # each refresh's widget updates travel in one comm message
        self.tabs = W.Tab(children=self.panels.holders, layout=W.Layout(width="auto", min_width="0"))
        for i, t in enumerate(self.panels.titles()):
            self.tabs.set_title(i, t)
        if self.tabs.selected_index is not None:
            try:  # the tab shown first is created now
                self.panels[self.tabs.selected_index]
            except PanelCreationError:  # its tab says why; the controller's refresh puts it on the error line
                pass

    def _retitle(self, i: int, _panel) -> None:
        """A panel just created: its tab title from the instance (a title set in its ``__init__``)."""
        t = self.panels.titles()[i]
        if self.tabs.get_title(i) != t:
            self.tabs.set_title(i, t)

    def children(self) -> list:
        """Responsive layout: three columns that wrap; tabs below at full width.

        Full-width children use ``width="auto"`` (stretched by their flex column, margins included):
        ``100%`` plus the widgets' 2 px margins would overflow the column by 4 px.
        """
        row = lambda *c: W.Box(list(c), layout=W.Layout(display="flex", flex_flow="row wrap", align_items="center",  # noqa: E731
                                                          width="auto", min_width="0"))
        controls = W.VBox([
            row(*self.buttons, self.act_button, self.back_button),
            self.rtg_slider,
            row(self.seed_box, self.reset_button, self.edit_toggle, self.edit_tool),
            row(self.note, self.bookmark_button, self.bookmarks),
            row(self.path, self.save_button, self.load_button, self.saved),
            self.timeline,
            self.status,
        ], layout=W.Layout(flex="2 1 340px", min_width="300px", max_width="760px"))
        middle = W.VBox([self.view, self.prefs], layout=W.Layout(flex="1 1 280px", min_width="250px", max_width="440px"))
        board = W.Box([self.grid], layout=W.Layout(flex="0 0 auto"))
        top = W.Box([board, middle, controls], layout=W.Layout(display="flex", flex_flow="row wrap", align_items="flex-start",
                                                              width="auto", min_width="0"))
        style = W.HTML(TAB_CSS, layout=W.Layout(display="none"))
        style.add_class("dtw-host-style")  # host-page CSS for the tab bar: not exported (to_html has its own tabs)
        return [style, top, self.error, self.tabs]


"""The Explorer: play, edit and analyse a Decision Transformer in one linked notebook view.

Layout (responsive: columns wrap below ~1000 px and grow up to 1600 px): the full grid
(:class:`GridView`: click to select, edit mode to place/remove objects, arrow keys to move when
focused); the agent's partial view and the model's :class:`ActionPreferences`; the controls
(action buttons, "model acts", "step back", reset + seed, the :class:`RTGSlider`, edit tools,
bookmarks, trajectory save/load, a replay timeline) and a text-only :class:`StatusLine`; then tabs
of analysis panels (:mod:`dtwidgets.compositions.panels`), all driven by the one current state of a
:class:`~dtwidgets.compositions.session.PlaySession`.

The RTG slider answers while it moves: each state ships its RTG scan once, and the preference
bars, attribution bars, RTG-scan marker and status follow the slider in the browser with no kernel
message; releasing it sends one message and the kernel confirms with exact values.

Rapid inputs are coalesced: an isolated change refreshes at once; changes right after a refresh
schedule one refresh on the kernel's event loop (~30 ms after the last). The widget updates of a
refresh reach the browser in one message (:class:`~dtwidgets.widgets.feed.UpdateFeed`). Where an event loop is marked running but
nothing drives it (an embedding host, Playwright's sync API in the same process), refreshes run
synchronously instead.
"""
from __future__ import annotations

import html
import time
import traceback
import uuid
from pathlib import Path

import ipywidgets as W
import numpy as np

from ..adapters.schema import resolve_action
from ..vocabulary import COLOURS, OBJECTS, STATES
from ..widgets import ActionPreferences, GridView, RTGSlider, StatusLine
from ..widgets.feed import UpdateFeed
from ..widgets.grid_view import EDIT_TOOLS
from .panels import PANELS, AnalysisContext, assign, make_panels

EXTRA_PANELS = ("policy_map", "circuits2")
"""Panels from other modules shown by default after :data:`PANELS` (registered in ``compositions/__init__``)."""
from .coalesce import CoalescedRefresh, in_notebook
from .session import EpisodeOver, PlaySession, StepBackLimit

KEYS = {"ArrowLeft": "left", "ArrowRight": "right", "ArrowUp": "forward", "p": "pickup", "d": "drop",
        "t": "toggle", "Enter": "done"}
_OBJ = dict(enumerate(OBJECTS[:OBJECTS.index("agent")]))  # editable codes (the one vocabulary); others -> "empty"
_COL, _ST = COLOURS, STATES
_USER_ERRORS = (EpisodeOver, StepBackLimit, ValueError, IndexError, KeyError, FileNotFoundError, PermissionError)
"""Errors caused by a user action: shown as one line, no traceback."""
_OUTSIDE_VIEW = "outside the agent's view: the model's input is unchanged"


class Explorer(CoalescedRefresh, W.VBox):
    """Play a MiniGrid env with a DT and watch its circuits.

    Args:
        adapter: a :class:`~dtwidgets.adapters.ModelAdapter` (e.g. from :func:`dtwidgets.load_checkpoint`).
        env: an :class:`~dtwidgets.adapters.EnvAdapter` (e.g. :class:`dtwidgets.MiniGridEnv`).
        rtg: initial return-to-go; seed: episode seed.
        pair: the preference direction ``(a, b)`` (names or indices), logit[a] - logit[b]; the pair
            chosen in the preferences widget drives every panel.
        panels: the analysis panels to show: keys of :data:`~dtwidgets.compositions.panels.PANEL_TYPES`
            (see :func:`~dtwidgets.compositions.panels.register_panel`) or panel classes.
        reference_windows: optional :class:`TrajectoryWindow` batch used for mean ablation.
        coalesce_s: delay of the coalesced refresh (0 = refresh synchronously).
        sae: a trained :class:`dtwidgets.sae.SparseAutoencoder` at one of the model's hooks: adds the "sae" panel
            (features active in the state, their shares, zero / clamp), e.g. ``dtwidgets.sae.demo_sae("post")``.
    """

    def __init__(self, adapter, env, *, rtg: float = 0.9, seed: int = 0, pair=("forward", "right"),
                 panels=PANELS + EXTRA_PANELS, reference_windows=None, coalesce_s: float = 0.03, sae=None):
        self.adapter, self.env = adapter, env
        self.session = PlaySession(adapter, env, rtg=rtg, seed=seed)
        self.coalesce_s = coalesce_s
        self._init_coalescing()
        self._updating = False
        self._notice = ""
        self._stale: set[int] = set()  # indices of hidden panels not updated since the state changed
        self.timings: dict[str, float] = {}
        self.follow_group = f"dtw-explorer-{uuid.uuid4().hex[:12]}"
        self.ctx = AnalysisContext(adapter, pair=pair, reference_windows=reference_windows, follow_group=self.follow_group,
                                   env=env, sae=sae)
        if not adapter.layout.has_rtg:  # a model without RTG tokens: no RTG scan (its slider is hidden)
            panels = tuple(p for p in panels if p != "rtg_scan")
        if sae is not None and "sae" not in panels:
            panels = (*panels, "sae")
        self._build_views(rtg, seed, panels)
        self._wire_events()
        super().__init__(self._layout(), layout=W.Layout(width="auto", max_width="1600px", min_width="0"))
        self.add_class("dtw-explorer")
        self.refresh()

    @classmethod
    def demo(cls, variant: str = "post", **kwargs) -> "Explorer":
        """The Explorer on the shipped demo model (no download). Needs a notebook front-end to display."""
        from ..demo import load_demo

        adapter, env = load_demo(variant)
        e = cls(adapter, env, **kwargs)
        if not in_notebook():
            import warnings

            warnings.warn("Explorer.demo(): the Explorer is a notebook widget and needs a notebook front-end "
                          "(JupyterLab, Notebook 7, VS Code, Colab) to display; outside one you can still drive it "
                          "from Python (e.session, e.refresh()) or export views with dtwidgets.to_html.",
                          stacklevel=2)
        return e

    # ---- construction ---------------------------------------------------------------------
    def _build_views(self, rtg: float, seed: int, panels) -> None:
        """Create every widget (no callbacks, no layout)."""
        adapter, env = self.adapter, self.env
        a, b = self.ctx.pair
        lo, hi = adapter.rtg_range
        grid, pos, d = env.full_grid()
        self.grid = GridView(grid, agent_pos=pos, agent_dir=d, view_size=adapter.schema.grid_shape[0], cell_size=34)
        self.view = GridView(self.session.observation, mode="partial", cell_size=22)
        self.prefs = ActionPreferences(logits=np.zeros(adapter.n_actions, np.float32), action_names=list(adapter.action_names),
                                       pair=(a, b), follow_group=self.follow_group)
        self.buttons = [W.Button(description=n, layout=W.Layout(width="auto")) for n in env.action_names]
        self.act_button = W.Button(description="model acts", button_style="info", layout=W.Layout(width="auto"))
        self.back_button = W.Button(description="step back", icon="undo", layout=W.Layout(width="auto"))
        self.seed_box = W.BoundedIntText(value=seed, min=0, max=2**31 - 1, description="seed",
                                         layout=W.Layout(width="150px"))
        self.reset_button = W.Button(description="reset", button_style="warning", layout=W.Layout(width="auto"))
        self.rtg_slider = RTGSlider(value=float(rtg), min=float(lo), max=float(hi), step=0.01, follow_group=self.follow_group,
                                    layout=W.Layout(width="auto"))
        if not adapter.layout.has_rtg:
            self.rtg_slider.layout.display = "none"
        self.edit_toggle = W.ToggleButton(description="edit grid", icon="pencil", layout=W.Layout(width="auto"))
        self.edit_tool = W.Dropdown(options=list(EDIT_TOOLS), value="ball", layout=W.Layout(width="100px"))
        self.status = StatusLine(preferences=self.prefs, follow_group=self.follow_group, layout=W.Layout(width="auto"))
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
        self.panels = make_panels(self.ctx, list(panels))
        self.feed = UpdateFeed()  # each refresh's widget updates travel in one comm message
        self.tabs = W.Tab(children=[p.widget for p in self.panels], layout=W.Layout(width="auto", min_width="0"))
        for i, p in enumerate(self.panels):
            self.tabs.set_title(i, getattr(p, "title", "") or getattr(p, "key", "") or type(p).__name__)

    def _wire_events(self) -> None:
        """Connect controls to the session (every callback is a named method)."""
        for i, btn in enumerate(self.buttons):
            btn.on_click(lambda _b, i=i: self._do(lambda: self.session.step(i)))
        self.act_button.on_click(lambda _b: self._do(self.session.act))
        self.back_button.on_click(lambda _b: self._do(self.session.step_back))
        self.reset_button.on_click(self._on_reset)
        self.rtg_slider.observe(self._on_rtg, names="value")
        W.link((self.edit_toggle, "value"), (self.grid, "editable"))
        W.link((self.edit_tool, "value"), (self.grid, "edit_tool"))
        self.grid.observe(self._on_grid_edit, names="grid")
        self.grid.on_key(self._on_key)
        self.prefs.observe(self._on_pair, names="pair")
        self.bookmark_button.on_click(lambda _b: self._add_bookmark())
        self.bookmarks.observe(self._on_bookmark, names="value")
        self.save_button.on_click(self._on_save)
        self.load_button.on_click(lambda _b: self._do(lambda: self.load(self.path.value)))
        self.timeline.observe(self._on_timeline, names="value")
        self.tabs.observe(self._on_tab, names="selected_index")

    def _layout(self) -> list:
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
        return [top, self.error, self.tabs]

    # ---- events -----------------------------------------------------------------------
    def _do(self, fn, refresh: bool = True):
        """Run a user action; errors are shown under the Explorer (one line for user errors)."""
        self._notice = ""
        try:
            out = fn()
            self.error.value = ""
            if refresh:
                with self.feed.batch():  # grid and view in one message, at once; the analysis refresh is coalesced
                    self._draw_grid()
        except Exception as e:  # shown under the Explorer, not in a log nobody reads
            self.error.value = _error_html(e)
            return None
        if refresh:
            self._schedule()
        return out

    def _on_reset(self, _button=None):
        """A new episode at the RTG the user asked for (``session.target_rtg``), not the slider's leftover."""
        self._do(lambda: self.session.reset(self.seed_box.value))

    def _on_rtg(self, change):
        if self._updating:  # the slider following the session (after a reward) is not a user's target
            return
        self._do(lambda: self.session.set_rtg(change["new"]))

    def _on_pair(self, change):
        """The pair chosen in the preferences widget drives every panel."""
        def apply():
            self.ctx.set_pair(change["new"])
        self._do(apply)

    def _on_tab(self, change):
        """Panels update only while shown: a panel shown again after state changes is refreshed now."""
        if change["new"] is not None and change["new"] in self._stale:
            self._schedule()

    def _on_timeline(self, change):
        if self.session.replay and not self._updating:
            self._do(lambda: self.session.seek(change["new"]))

    def _on_key(self, key: str):
        if key in KEYS and KEYS[key] in self.env.action_names:
            self._do(lambda: self.session.step(KEYS[key]))
        elif key in (" ", "Space", "m"):
            self._do(self.session.act)
        elif key == "Backspace":
            self._do(self.session.step_back)

    def _on_grid_edit(self, change):
        if self._updating:
            return
        old, new = np.asarray(change["old"]), np.asarray(change["new"])
        if old.shape != new.shape:
            return
        cells = np.argwhere((old != new).any(-1))
        before = self.session.observation.copy()

        def apply():
            for x, y in cells:
                o, c, s = (int(v) for v in new[x, y])
                obj = _OBJ.get(o, "empty")
                self.session.edit_cell(int(x), int(y), None if obj == "empty" else obj,
                                       _COL[c] if obj not in ("empty", "wall", "lava") else None,
                                       _ST[s] if obj == "door" else None)
        self._do(apply)
        if self.error.value:  # the env refused the edit: show the true grid again
            self._draw_grid()
            self._schedule()
        elif len(cells) and np.array_equal(before, self.session.observation):
            self._notice = _OUTSIDE_VIEW
            self.status.notes = self._notes()

    def _add_bookmark(self):
        self.session.bookmark(self.note.value)
        with self.bookmarks.hold_trait_notifications():
            self._updating = True
            try:
                self.bookmarks.options = [("go to a bookmark…", -1)] + [(f"{j}: {b.note}", j) for j, b in
                                                                         enumerate(self.session.bookmarks)]
                self.bookmarks.value = -1  # nothing pre-selected: choosing any bookmark fires a change
            finally:
                self._updating = False
        self.note.value = ""

    def _on_bookmark(self, change):
        if self._updating or change["new"] is None or change["new"] < 0:
            return
        self._do(lambda: self.session.goto_bookmark(change["new"]))
        self._updating = True
        try:
            self.bookmarks.value = -1  # back to the placeholder, so the same bookmark can be chosen again
        finally:
            self._updating = False

    def _on_save(self, _button=None):
        path = self._do(self.save, refresh=False)
        if path is not None:
            self.saved.value = f"saved {Path(path).resolve()}"

    def save(self, path: str | None = None) -> Path:
        """Save everything played this episode (lossless, the project's trajectory format); returns the path."""
        return Path(self.session.to_trajectories().save(path or self.path.value))

    def load(self, path, episode: int = 0):
        """Load a recorded or training-data episode and scrub it with the replay timeline."""
        from ..data.trajectories import Trajectories

        try:
            self.session.load_episode(Trajectories.load(path), episode)
        except (ValueError, KeyError, IndexError) as e:
            raise ValueError(f"{path}: {e.args[0] if e.args else e}") from e

    def show_panel(self, key: str):
        """Select the tab of panel ``key`` (it is brought up to date); returns the panel."""
        keys = [getattr(p, "key", "") for p in self.panels]
        if key not in keys:
            raise ValueError(f"expected a panel key from {keys}, got {key!r}")
        i = keys.index(key)
        self.tabs.selected_index = i
        if i in self._stale:  # already selected, yet stale
            self._schedule()
        return self.panels[i]

    # ---- refresh ----------------------------------------------------------------------
    def refresh(self):
        """Redraw the grid at once, then recompute the shared analysis and update every panel in place.
        The updates of all dtwidgets widgets go to the front-end in one message (:class:`UpdateFeed`)."""
        self._pending = None
        with self.feed.batch(self):
            self._refresh()

    def _refresh(self):
        t0 = time.perf_counter()
        s = self.session
        try:
            self._draw_grid()
            t1 = time.perf_counter()
            data = self.ctx.compute(s.window(), s.clean_window(), active=self._active_panels(), needs=self._needs())
        except Exception as e:
            self.error.value = _error_html(e)
            return
        t2 = time.perf_counter()
        scan = data.state.rtg_scan
        assign(self.prefs, logits=data.logits, pair=self.ctx.pair, rtg=data.rtg, scan_rtgs=scan.rtgs, scan_logits=scan.logits)
        shown = self.tabs.selected_index
        for i, p in enumerate(self.panels):
            if i == shown:
                p.update(data)
                self._stale.discard(i)
            else:
                self._stale.add(i)  # hidden: updated when its tab is selected (fewer messages per state)
        self._updating = True
        try:
            if s.replay or not self.timeline.disabled:  # while playing, the disabled timeline is not resent per step
                with self.timeline.hold_trait_notifications(), self.timeline.hold_sync():
                    self.timeline.disabled = not s.replay
                    self.timeline.max = s.replay_length if s.replay else 0
                    self.timeline.value = s.n_steps if s.replay else 0
            if self.rtg_slider.value != s.rtg:
                self.rtg_slider.value = s.rtg
        finally:
            self._updating = False
        for b in self.buttons + [self.act_button]:
            b.disabled = s.done or s.replay
        self._update_status(data)
        self.timings = {"grid_s": t1 - t0, "analysis_s": t2 - t1, "views_s": time.perf_counter() - t2}

    def _draw_grid(self):
        """Send the current grid and view (only what changed)."""
        s = self.session
        self._updating = True
        try:
            grid, pos, d = self.env.full_grid() if not s.replay else (s.observation, None, None)
            assign(self.grid, grid=grid, agent_pos=pos, agent_dir=d, mode="partial" if s.replay else "full")
            assign(self.view, grid=s.observation)
        finally:
            self._updating = False

    def _shown_panel(self):
        """The panel whose tab is shown (only it is computed and drawn), or None."""
        i = self.tabs.selected_index
        return self.panels[i] if i is not None and 0 <= i < len(self.panels) else None

    def _active_panels(self) -> set[str]:
        """Key of the panel shown (patching is computed only while its panel is)."""
        p = self._shown_panel()
        return {getattr(p, "key", "")} if p is not None else set()

    def _needs(self) -> set[str]:
        """Extras of the shared analysis read by the panel shown (e.g. the Attribution tab's lens)."""
        return set(getattr(self._shown_panel(), "needs", ()))

    def _notes(self) -> list[str]:
        s = self.session
        notes = []
        if s.clean_observation is not None:
            notes.append("edited (clean scenario kept for patching)")
        if self._notice:
            notes.append(self._notice)
        if s.replay:
            notes.append("replaying a recorded episode")
        return notes

    def _update_status(self, data) -> None:
        """Status line (plain text only): step, RTG, the model's preference, or the end of the episode.

        The preference is read in the browser from the preferences widget (``status.preferences``), so
        the logits and their RTG scan travel once per state; at the end of the episode it is left out."""
        s = self.session
        over = f"episode over ({s.outcome}): reset or step back" if s.done else ""
        assign(self.status, headline=over, lead=[f"step {s.n_steps}", f"t = {s.timestep}"], rtg=float(s.rtg),
               notes=self._notes(), preferences=None if s.done else self.prefs)


def _error_html(e: Exception) -> str:
    """One escaped line for user errors; other errors add the exception type and the last frame's line."""
    box = "<div style='color:#b00020;border:1px solid #b00020;padding:4px;white-space:pre-wrap'>{}</div>"
    if isinstance(e, _USER_ERRORS):
        msg = e.args[0] if isinstance(e, KeyError) and e.args else e
        return box.format(html.escape(str(msg), quote=False))  # element text: <, >, & are what matter
    frames = traceback.extract_tb(e.__traceback__)
    where = f" (in {frames[-1].name})" if frames else ""
    return box.format(html.escape(f"{type(e).__name__}: {e}{where}", quote=False))

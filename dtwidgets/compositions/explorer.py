"""The Explorer: play, edit and analyse a Decision Transformer in one linked notebook view.

Layout (responsive: columns wrap below ~1000 px and grow up to 1600 px): the full grid
(:class:`GridView`: click to select, edit mode to place/remove objects, arrow keys to move when
focused); the agent's partial view and the model's :class:`ActionPreferences`; the controls
(action buttons, "model acts", "step back", reset + seed, the :class:`RTGSlider`, edit tools,
bookmarks, trajectory save/load, a replay timeline) and a text-only :class:`StatusLine`; then tabs
of analysis panels (:mod:`dtwidgets.compositions.panels`).

State -> result -> updates: the Explorer is the controller. Every widget event is a method of its
:class:`~dtwidgets.compositions.state.ExplorerState` (``explorer.state``: the session, the pair, the
shown tab, stale panels, the notice), which returns what to draw again; the controller draws the
grid at once, then (coalesced) computes the result of the state for the panel shown
(``AnalysisContext.compute``) and sends every widget's changes through
:func:`~dtwidgets.compositions.updates.apply` in one feed batch. The widgets and their layout are
the view (:class:`~dtwidgets.compositions.explorer_view.ExplorerView`, ``explorer.ui``).

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

from ..widgets.grid_view import edit_names
from ..adapters.actions import action_table
from .explorer_view import WIDGETS, ExplorerView
from .panels import EXTRA_PANELS, PANELS, AnalysisContext
from .panels.registry import PanelCreationError
from .updates import apply, assign
from .coalesce import CoalescedRefresh, in_notebook
from .session import EpisodeOver, PlaySession, StepBackLimit
from .state import ExplorerState, Redraw

ACT_KEYS = (" ", "Space", "m")
"""Keys that let the model act (unless the env binds Space to an action of its own)."""
_USER_ERRORS = (EpisodeOver, StepBackLimit, ValueError, IndexError, KeyError, FileNotFoundError, PermissionError)
"""Errors caused by a user action: shown as one line, no traceback."""
_NO_IMAGE = np.zeros((0, 0, 3), np.uint8)


class Explorer(W.VBox):
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

    Attributes:
        state: the :class:`~dtwidgets.compositions.state.ExplorerState`, the one truth of what is shown
            (``state.session``, ``state.pair``, ``state.shown_key``, ``state.stale_keys``, ``state.notes``).
        ui: the :class:`~dtwidgets.compositions.explorer_view.ExplorerView` (its widgets are also read on
            the Explorer: ``explorer.grid`` is ``explorer.ui.grid``).
        ctx: the :class:`~dtwidgets.compositions.panels.AnalysisContext` the panels share (``state.ctx``).
        timings: seconds of the last refresh's parts (``grid_s``, ``analysis_s``, ``views_s``).
    """

    def __init__(self, adapter, env, *, rtg: float = 0.9, seed: int = 0, pair=None,
                 panels=PANELS + EXTRA_PANELS, reference_windows=None, coalesce_s: float = 0.03, sae=None):
        self.adapter, self.env = adapter, env
        session = PlaySession(adapter, env, rtg=rtg, seed=seed)
        self.coalescer = CoalescedRefresh(lambda: self.refresh(), coalesce_s)
        """Runs :meth:`refresh` at once for an isolated input, once per burst otherwise (``pending``, ``synchronous``)."""
        self.timings: dict[str, float] = {}
        self.follow_group = f"dtw-explorer-{uuid.uuid4().hex[:12]}"
        self.schema = getattr(env, "schema", None) or adapter.schema
        """How the env's observations are drawn (kind and view: codes, one-hot, pixels; egocentric or full)."""
        self.actions = action_table(env)
        """What each of the env's actions does (:class:`~dtwidgets.adapters.actions.ActionTable`): key map,
        default pair, policy-map glyphs."""
        self.key_map = self.actions.key_map()
        """``{browser key: action name}``: arrows follow the actions' meaning (turns or moves)."""
        pair = self.actions.default_pair() if pair is None else pair
        self.ctx = AnalysisContext(adapter, pair=pair, reference_windows=reference_windows, follow_group=self.follow_group,
                                   env=env, sae=sae, session=session)
        if not adapter.layout.has_rtg:  # a model without RTG tokens: no RTG scan (the view hides its slider)
            panels = tuple(p for p in panels if p != "rtg_scan")
        if sae is not None and "sae" not in panels:
            panels = (*panels, "sae")
        self.ui = ExplorerView(adapter, env, session, self.ctx, rtg, seed, panels)
        self.ui.grid.bindings = self.key_map  # the key legend under the grid
        self.state = ExplorerState(session, self.ctx, self.ui.panels.keys(),
                                   shown=self.ui.tabs.selected_index)
        self._wire_events()
        super().__init__(self.ui.children(), layout=W.Layout(width="auto", max_width="1600px", min_width="0"))
        self.add_class("dtw-explorer")
        self.refresh()

    def __getattr__(self, name: str):
        """The view's widgets read on the Explorer (``explorer.grid`` is ``explorer.ui.grid``)."""
        if name in WIDGETS and "ui" in self.__dict__:
            return getattr(self.__dict__["ui"], name)
        raise AttributeError(f"{type(self).__name__!s} has no attribute {name!r}")

    @property
    def session(self) -> PlaySession:
        """The episode played (``state.session``)."""
        return self.state.session

    @property
    def coalesce_s(self) -> float:
        """Delay of the coalesced refresh in seconds (0: every refresh synchronous)."""
        return self.coalescer.coalesce_s

    @coalesce_s.setter
    def coalesce_s(self, seconds: float) -> None:
        self.coalescer.coalesce_s = float(seconds)

    @classmethod
    def demo(cls, variant: str = "post", device="cpu", **kwargs) -> "Explorer":
        """The Explorer on the shipped demo model (no download), its weights on ``device`` (``"cpu"``,
        ``"cuda"``...: every analysis follows it). Needs a notebook front-end to display."""
        from ..demo import load_demo

        adapter, env = load_demo(variant, device=device)
        e = cls(adapter, env, **kwargs)
        if not in_notebook():
            import warnings

            warnings.warn("Explorer.demo(): the Explorer is a notebook widget and needs a notebook front-end "
                          "(JupyterLab, Notebook 7, VS Code, Colab) to display; outside one you can still drive it "
                          "from Python (e.state, e.press, e.refresh()) or export views with dtwidgets.to_html.",
                          stacklevel=2)
        return e

    def _wire_events(self) -> None:
        """Connect each control to a state event (every callback is a named method or one call)."""
        st, ui = self.state, self.ui
        for i, btn in enumerate(ui.buttons):
            btn.on_click(lambda _b, i=i: self._do(lambda: st.step(i)))
        ui.act_button.on_click(lambda _b: self._do(st.act))
        ui.back_button.on_click(lambda _b: self._do(st.step_back))
        ui.reset_button.on_click(lambda _b: self._do(lambda: st.reset(ui.seed_box.value)))
        ui.rtg_slider.observe(lambda c: self._do(lambda: st.set_rtg(c["new"])), names="value")
        W.link((ui.edit_toggle, "value"), (ui.grid, "editable"))
        W.link((ui.edit_tool, "value"), (ui.grid, "edit_tool"))
        ui.grid.on_edit(self.edit)  # the browser sends {x, y, tool}; the edit happens here
        ui.grid.on_key(self.press)
        ui.prefs.observe(self._on_pair, names="pair")
        ui.bookmark_button.on_click(self._on_bookmark_button)
        ui.bookmarks.observe(lambda c: self._do(lambda: st.goto_bookmark(c["new"])), names="value")
        ui.save_button.on_click(self._on_save)
        ui.load_button.on_click(lambda _b: self._do(lambda: self._load(ui.path.value)))
        ui.timeline.observe(lambda c: self._do(lambda: st.seek(c["new"])), names="value")
        ui.tabs.observe(self._on_tab, names="selected_index")

    # ---- events -----------------------------------------------------------------------
    def _do(self, event) -> None:
        """Apply a state event (a callable returning a :class:`Redraw`) and draw what it changed: the
        grid at once, the analysis coalesced. An event that changed nothing touches nothing; an error is
        shown under the Explorer (one line for user errors) and draws nothing."""
        try:
            redraw = event()
            if not redraw:
                return
            self._draw_now(redraw)
            self.ui.error.value = ""
        except EpisodeOver:  # the status line already says "episode over (...): reset or step back"
            self.ui.error.value = ""
            return
        except Exception as e:  # shown under the Explorer, not in a log nobody reads
            self.ui.error.value = _error_html(e)
            return
        if redraw.analysis:
            self.coalescer.schedule()

    def _draw_now(self, redraw: Redraw) -> None:
        """What an event changed that is drawn before its analysis: the grid and view (one message),
        the bookmark list, the status notes."""
        if redraw.grid:
            with self.ui.feed.batch():
                self._draw_grid()
        if redraw.bookmarks:  # the placeholder selected: choosing any bookmark (the same again too) fires
            bookmarks = [(f"{j}: {b.note}", j) for j, b in enumerate(self.session.bookmarks)]
            assign(self.ui.bookmarks, options=[("go to a bookmark…", -1)] + bookmarks, value=-1)
        if redraw.status:
            assign(self.ui.status, notes=self.state.notes)

    def _on_bookmark_button(self, _button=None) -> None:
        self._do(lambda: self.state.bookmark(self.ui.note.value))
        self.ui.note.value = ""

    def _on_pair(self, change):
        """The pair chosen in the preferences widget drives every panel; a refused pair is set back."""
        self._do(lambda: self.state.set_pair(change["new"]))
        if tuple(self.ui.prefs.pair) != self.state.pair:  # refused: the widget shows the pair in use again
            self.ui.prefs.pair = self.state.pair

    def _on_tab(self, change):
        """Panels update only while shown: a panel shown again after state changes is refreshed now."""
        i = change["new"]
        first_show = i is not None and 0 <= i < len(self.ui.panels) and not self.ui.panels.is_built(i)
        if self.state.show_tab(i).analysis or first_show:  # a first show creates the panel
            self.coalescer.schedule()

    def press(self, key: str) -> None:
        """A key pressed on the focused grid (as the browser sends it: ``"ArrowLeft"``, ``" "``, ``"Backspace"``):
        a key of :attr:`key_map` steps, Space / ``m`` let the model act, Backspace steps back."""
        if key in self.key_map:
            self._do(lambda: self.state.step(self.key_map[key]))
        elif key in ACT_KEYS:
            self._do(self.state.act)
        elif key == "Backspace":
            self._do(self.state.step_back)

    def edit(self, x: int, y: int, tool: str) -> None:
        """Edit cell ``(x, y)`` of the full grid with ``tool`` (a name of :data:`~dtwidgets.widgets.grid_view.EDIT_TOOLS`),
        as a click in edit mode does: the env is edited, the unedited state kept as the clean scenario,
        the grid drawn once."""
        def event():
            obj, colour, cell_state = edit_names(self.env.full_grid()[0][x, y], tool)
            return self.state.edit(x, y, obj, colour, cell_state)
        self._do(event)

    def _on_save(self, _button=None):
        try:
            path = self.save()
        except Exception as e:  # noqa: BLE001 -- shown under the Explorer
            self.ui.error.value = _error_html(e)
            return
        self.ui.error.value = ""
        self.ui.saved.value = f"saved {Path(path).resolve()}"

    def save(self, path: str | None = None) -> Path:
        """Save everything played this episode (lossless, the project's trajectory format) and, when any
        direction is saved, the directions beside it (``<path>.directions/``); returns the path."""
        out = Path(self.session.to_trajectories().save(path or self.ui.path.value))
        if len(self.ctx.directions):
            self.ctx.directions.save(_directions_folder(out))
        return out

    def load(self, path, episode: int = 0) -> None:
        """Load a recorded or training-data episode (and the directions saved with it) and show it: scrub
        it with the replay timeline. A refused file raises a ValueError naming it; the state is kept."""
        redraw = self._load(path, episode)
        self._draw_now(redraw)
        self.coalescer.schedule()

    def _load(self, path, episode: int = 0) -> Redraw:
        from ..data.trajectories import Trajectories

        try:
            redraw = self.state.load(Trajectories.load(path), episode)
        except (ValueError, KeyError, IndexError) as e:
            raise ValueError(f"{path}: {e.args[0] if e.args else e}") from e
        self.ui.saved.value = f"replaying {Path(path).name}, episode {episode}"  # no stale "saved …"
        folder = _directions_folder(Path(path))
        if folder.is_dir():  # the directions saved with this recording (validated on load, never unpickled)
            from ..analysis.saved_directions import DirectionStore

            self.ctx.directions = DirectionStore.load(folder)
        return redraw

    def before_export(self) -> None:
        """Bring every tab up to date for the current state (hidden tabs are otherwise updated only when
        shown): :func:`~dtwidgets.to_html` calls it, so an exported page has every tab's data."""
        self.flush()
        s = self.session
        window, clean = s.window(), s.clean_window()
        for i in range(len(self.ui.panels)):  # a panel not created yet is created here
            if i in self.state.stale or i != self.state.shown or not self.ui.panels.is_built(i):
                try:
                    p = self.ui.panels[i]
                    p.update(self.ctx.compute(window, clean, panels=[p]))
                except Exception as e:  # noqa: BLE001 -- one panel's failure is shown, the rest export
                    self.ui.error.value = _error_html(e)
                    continue
                self.state.drawn(i)

    def show_panel(self, key: str):
        """Select the tab of panel ``key`` (it is brought up to date); returns the panel."""
        i = self.state.panel_index(key)
        self.ui.tabs.selected_index = i
        if self.state.show_tab(i).analysis or not self.ui.panels.is_built(i):  # stale, or never created
            self.coalescer.schedule()
        return self.ui.panels[i]

    # ---- refresh ----------------------------------------------------------------------
    def flush(self) -> None:
        """Run a pending coalesced refresh now."""
        self.coalescer.flush()

    def refresh(self):
        """Redraw the grid at once, then recompute the shared analysis and update the shown panel in place.
        The updates of all dtwidgets widgets go to the front-end in one message (:class:`UpdateFeed`)."""
        self.coalescer.cancel()
        with self.ui.feed.batch(self):
            self._refresh()

    def _refresh(self):
        """State -> result -> updates: analyse the state for the shown panel, then render it."""
        t0 = time.perf_counter()
        st, s = self.state, self.session
        try:
            self._draw_grid()
            t1 = time.perf_counter()
            shown = self._shown_panel()
            data = self.ctx.compute(s.window(), s.clean_window(), panels=[shown] if shown is not None else [])
            st.analysed(data.logits)  # the model's prediction for this state: stepping needs no second forward
        except Exception as e:
            self.ui.error.value = _error_html(e)
            return
        t2 = time.perf_counter()
        prefs, *rest = self._updates(data)
        apply([prefs])
        if shown is not None:
            shown.update(data)  # hidden panels are drawn when their tab is shown (fewer messages per state)
        apply(rest)
        self.timings = {"grid_s": t1 - t0, "analysis_s": t2 - t1, "views_s": time.perf_counter() - t2}

    def _updates(self, data) -> list:
        """The ``(widget, traits)`` updates of one analysed state besides the panel: preferences, timeline,
        RTG slider, action buttons, status line (plain text only: step, RTG, the model's preference or the
        end of the episode; the preference is read in the browser from the preferences widget, so the
        logits and their RTG scan travel once per state; at the end of the episode it is left out)."""
        ui, s, scan = self.ui, self.session, data.state.rtg_scan
        over = f"episode over ({s.outcome}): reset or step back" if s.done else ""
        replay = self.state.replay_position
        return [
            (ui.prefs, dict(logits=data.logits, pair=self.state.pair, rtg=data.rtg, scan_rtgs=scan.rtgs,
                            scan_logits=scan.logits)),
            (ui.timeline, dict(disabled=replay is None, max=s.replay_length, value=replay or 0)),
            (ui.rtg_slider, dict(value=s.rtg)),  # the slider follows the session (set_rtg: nothing)
            *((b, dict(disabled=s.done or s.replay)) for b in ui.buttons + [ui.act_button]),
            (ui.status, dict(headline=over, lead=[f"step {s.n_steps}", f"t = {s.timestep}"], rtg=float(s.rtg),
                             notes=self.state.notes, preferences=None if s.done else ui.prefs)),
        ]

    def _draw_grid(self):
        """Send the current grid and view (only what changed)."""
        s = self.session
        if s.replay:  # a recording has the agent's views only: the big grid shows them, said in the status
            self.ui.grid.show(s.observation, self.schema)
        else:
            grid, pos, d = self.env.full_grid()
            assign(self.ui.grid, grid=grid, agent_pos=pos, agent_dir=d, mode="full", image=_NO_IMAGE)
        self.ui.view.show(s.observation, self.schema)

    def _shown_panel(self):
        """The panel whose tab is shown (only it is computed and drawn), or None: also when it cannot be
        created (its error goes to the error line; the rest of the Explorer still refreshes)."""
        i = self.state.shown
        try:
            return self.ui.panels[i] if i is not None and 0 <= i < len(self.ui.panels) else None
        except PanelCreationError as e:
            self.ui.error.value = _error_html(e)
            return None


def _directions_folder(path: Path) -> Path:
    """Where the directions saved with the recording ``path`` live: ``<path>.directions/``."""
    return path.with_name(path.name + ".directions")


def _error_html(e: Exception) -> str:
    """One escaped line for user errors; other errors add the exception type and the last frame's line."""
    box = "<div style='color:#b00020;border:1px solid #b00020;padding:4px;white-space:pre-wrap'>{}</div>"
    if isinstance(e, (*_USER_ERRORS, PanelCreationError)):  # a panel's failure names the panel and its error
        msg = e.args[0] if isinstance(e, KeyError) and e.args else e
        return box.format(html.escape(str(msg), quote=False))  # element text: <, >, & are what matter
    frames = traceback.extract_tb(e.__traceback__)
    where = f" (in {frames[-1].name})" if frames else ""
    return box.format(html.escape(f"{type(e).__name__}: {e}{where}", quote=False))

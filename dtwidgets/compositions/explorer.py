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

from ..widgets.grid_view import edit_names
from ..adapters.actions import action_table
from .explorer_view import WIDGETS, ExplorerView
from .panels import EXTRA_PANELS, PANELS, AnalysisContext
from .updates import assign
from .coalesce import CoalescedRefresh, in_notebook
from .session import EpisodeOver, PlaySession, StepBackLimit

ACT_KEYS = (" ", "Space", "m")
"""Keys that let the model act (unless the env binds Space to an action of its own)."""
_USER_ERRORS = (EpisodeOver, StepBackLimit, ValueError, IndexError, KeyError, FileNotFoundError, PermissionError)
"""Errors caused by a user action: shown as one line, no traceback."""
_OUTSIDE_VIEW = "outside the agent's view: the model's input is unchanged"
_AT_START = "at the episode start: nothing to step back to"
_NO_IMAGE = np.zeros((0, 0, 3), np.uint8)


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

    def __init__(self, adapter, env, *, rtg: float = 0.9, seed: int = 0, pair=None,
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
        self.schema = getattr(env, "schema", None) or adapter.schema
        """How the env's observations are drawn (kind and view: codes, one-hot, pixels; egocentric or full)."""
        self.actions = action_table(env)
        """What each of the env's actions does (:class:`~dtwidgets.adapters.actions.ActionTable`): key map,
        default pair, policy-map glyphs."""
        self.key_map = self.actions.key_map()
        """``{browser key: action name}``: arrows follow the actions' meaning (turns or moves)."""
        pair = self.actions.default_pair() if pair is None else pair
        self.ctx = AnalysisContext(adapter, pair=pair, reference_windows=reference_windows, follow_group=self.follow_group,
                                   env=env, sae=sae, session=self.session)
        if not adapter.layout.has_rtg:  # a model without RTG tokens: no RTG scan (the view hides its slider)
            panels = tuple(p for p in panels if p != "rtg_scan")
        if sae is not None and "sae" not in panels:
            panels = (*panels, "sae")
        self.ui = ExplorerView(adapter, env, self.session, self.ctx, rtg, seed, panels)
        self.ui.grid.bindings = self.key_map  # the key legend under the grid
        self._wire_events()
        super().__init__(self.ui.children(), layout=W.Layout(width="auto", max_width="1600px", min_width="0"))
        self.add_class("dtw-explorer")
        self.refresh()

    def __getattr__(self, name: str):
        """The view's widgets read on the Explorer (``explorer.grid`` is ``explorer.ui.grid``)."""
        if name in WIDGETS and "ui" in self.__dict__:
            return getattr(self.__dict__["ui"], name)
        raise AttributeError(f"{type(self).__name__!s} has no attribute {name!r}")

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

    def _wire_events(self) -> None:
        """Connect controls to the session (every callback is a named method)."""
        for i, btn in enumerate(self.ui.buttons):
            btn.on_click(lambda _b, i=i: self._do(lambda: self.session.step(i)))
        self.ui.act_button.on_click(lambda _b: self._do(self.session.act))
        self.ui.back_button.on_click(lambda _b: self._step_back())
        self.ui.reset_button.on_click(self._on_reset)
        self.ui.rtg_slider.observe(self._on_rtg, names="value")
        W.link((self.ui.edit_toggle, "value"), (self.ui.grid, "editable"))
        W.link((self.ui.edit_tool, "value"), (self.ui.grid, "edit_tool"))
        self.ui.grid.on_edit(self.edit)  # the browser sends {x, y, tool}; the edit happens here
        self.ui.grid.on_key(self._on_key)
        self.ui.prefs.observe(self._on_pair, names="pair")
        self.ui.bookmark_button.on_click(lambda _b: self._add_bookmark())
        self.ui.bookmarks.observe(self._on_bookmark, names="value")
        self.ui.save_button.on_click(self._on_save)
        self.ui.load_button.on_click(lambda _b: self._do(lambda: self.load(self.ui.path.value)))
        self.ui.timeline.observe(self._on_timeline, names="value")
        self.ui.tabs.observe(self._on_tab, names="selected_index")

    # ---- events -----------------------------------------------------------------------
    def _do(self, fn, refresh: bool = True):
        """Run a user action; errors are shown under the Explorer (one line for user errors)."""
        self._notice = ""
        try:
            out = fn()
            self.ui.error.value = ""
            if refresh:
                with self.ui.feed.batch():  # grid and view in one message, at once; the analysis refresh is coalesced
                    self._draw_grid()
        except EpisodeOver:  # the status line already says "episode over (...): reset or step back"
            self.ui.error.value = ""
            return None
        except Exception as e:  # shown under the Explorer, not in a log nobody reads
            self.ui.error.value = _error_html(e)
            return None
        if refresh:
            self._schedule()
        return out

    def _step_back(self) -> None:
        """Undo the last step; at the episode start say so (nothing happens silently)."""
        if self._do(self.session.step_back) is False:
            self._notice = _AT_START
            self.ui.status.notes = self._notes()

    def _on_reset(self, _button=None):
        """A new episode at the RTG the user asked for (``session.target_rtg``), not the slider's leftover."""
        self._do(lambda: self.session.reset(self.ui.seed_box.value))

    def _on_rtg(self, change):
        if self._updating:  # the slider following the session (after a reward) is not a user's target
            return
        self._do(lambda: self.session.set_rtg(change["new"]))

    def _on_pair(self, change):
        """The pair chosen in the preferences widget drives every panel."""
        if tuple(change["new"]) == tuple(self.ctx.pair):  # e.g. the widget set back after a refusal
            return

        def apply():
            self.ctx.set_pair(change["new"])
        self._do(apply)
        if tuple(self.ui.prefs.pair) != tuple(self.ctx.pair):  # refused: the widget shows the pair in use again
            self.ui.prefs.pair = self.ctx.pair

    def _on_tab(self, change):
        """Panels update only while shown: a panel shown again after state changes is refreshed now."""
        if change["new"] is not None and change["new"] in self._stale:
            self._schedule()

    def _on_timeline(self, change):
        if self.session.replay and not self._updating:
            self._do(lambda: self.session.seek(change["new"]))

    def press(self, key: str) -> None:
        """A key pressed on the focused grid (as the browser sends it: ``"ArrowLeft"``, ``" "``, ``"Backspace"``)."""
        self._on_key(key)

    def _on_key(self, key: str):
        if key in self.key_map:
            self._do(lambda: self.session.step(self.key_map[key]))
        elif key in ACT_KEYS:
            self._do(self.session.act)
        elif key == "Backspace":
            self._step_back()

    def edit(self, x: int, y: int, tool: str) -> None:
        """Edit cell ``(x, y)`` of the full grid with ``tool`` (a name of :data:`~dtwidgets.widgets.grid_view.EDIT_TOOLS`),
        as a click in edit mode does: the env is edited, the unedited state kept as the clean scenario,
        the grid drawn once."""
        before = self.session.observation.copy()

        def apply():
            obj, colour, state = edit_names(self.env.full_grid()[0][x, y], tool)
            self.session.edit_cell(int(x), int(y), obj, colour, state)
        self._do(apply)
        if not self.ui.error.value and np.array_equal(before, self.session.observation):
            self._notice = _OUTSIDE_VIEW
            self.ui.status.notes = self._notes()

    def _add_bookmark(self):
        self.session.bookmark(self.ui.note.value)
        with self.ui.bookmarks.hold_trait_notifications():
            self._updating = True
            try:
                self.ui.bookmarks.options = [("go to a bookmark…", -1)] + [(f"{j}: {b.note}", j) for j, b in
                                                                         enumerate(self.session.bookmarks)]
                self.ui.bookmarks.value = -1  # nothing pre-selected: choosing any bookmark fires a change
            finally:
                self._updating = False
        self.ui.note.value = ""

    def _on_bookmark(self, change):
        if self._updating or change["new"] is None or change["new"] < 0:
            return
        self._do(lambda: self.session.goto_bookmark(change["new"]))
        self._updating = True
        try:
            self.ui.bookmarks.value = -1  # back to the placeholder, so the same bookmark can be chosen again
        finally:
            self._updating = False

    def _on_save(self, _button=None):
        path = self._do(self.save, refresh=False)
        if path is not None:
            self.ui.saved.value = f"saved {Path(path).resolve()}"

    def save(self, path: str | None = None) -> Path:
        """Save everything played this episode (lossless, the project's trajectory format) and, when any
        direction is saved, the directions beside it (``<path>.directions/``); returns the path."""
        out = Path(self.session.to_trajectories().save(path or self.ui.path.value))
        if len(self.ctx.directions):
            self.ctx.directions.save(_directions_folder(out))
        return out

    def load(self, path, episode: int = 0):
        """Load a recorded or training-data episode and scrub it with the replay timeline."""
        from ..data.trajectories import Trajectories

        try:
            self.session.load_episode(Trajectories.load(path), episode)
        except (ValueError, KeyError, IndexError) as e:
            raise ValueError(f"{path}: {e.args[0] if e.args else e}") from e
        self.ui.saved.value = f"replaying {Path(path).name}, episode {episode}"  # no stale "saved …"
        folder = _directions_folder(Path(path))
        if folder.is_dir():  # the directions saved with this recording (validated on load, never unpickled)
            from ..analysis.saved_directions import DirectionStore

            self.ctx.directions = DirectionStore.load(folder)

    def before_export(self) -> None:
        """Bring every tab up to date for the current state (hidden tabs are otherwise updated only when
        shown): :func:`~dtwidgets.to_html` calls it, so an exported page has every tab's data."""
        self.flush()
        s = self.session
        window, clean = s.window(), s.clean_window()
        for i, p in enumerate(self.ui.panels):
            if i in self._stale or i != self.ui.tabs.selected_index:
                try:
                    p.update(self.ctx.compute(window, clean, panels=[p]))
                except Exception as e:  # noqa: BLE001 -- one panel's failure is shown, the rest export
                    self.ui.error.value = _error_html(e)
                    continue
                self._stale.discard(i)

    def show_panel(self, key: str):
        """Select the tab of panel ``key`` (it is brought up to date); returns the panel."""
        keys = [getattr(p, "key", "") for p in self.ui.panels]
        if key not in keys:
            raise ValueError(f"expected a panel key from {keys}, got {key!r}")
        i = keys.index(key)
        self.ui.tabs.selected_index = i
        if i in self._stale:  # already selected, yet stale
            self._schedule()
        return self.ui.panels[i]

    # ---- refresh ----------------------------------------------------------------------
    def refresh(self):
        """Redraw the grid at once, then recompute the shared analysis and update every panel in place.
        The updates of all dtwidgets widgets go to the front-end in one message (:class:`UpdateFeed`)."""
        self._pending = None
        with self.ui.feed.batch(self):
            self._refresh()

    def _refresh(self):
        t0 = time.perf_counter()
        s = self.session
        try:
            self._draw_grid()
            t1 = time.perf_counter()
            shown = self._shown_panel()
            data = self.ctx.compute(s.window(), s.clean_window(), panels=[shown] if shown is not None else [])
            s.record_logits(data.logits)  # the model's prediction for this state: stepping needs no second forward
        except Exception as e:
            self.ui.error.value = _error_html(e)
            return
        t2 = time.perf_counter()
        scan = data.state.rtg_scan
        assign(self.ui.prefs, logits=data.logits, pair=self.ctx.pair, rtg=data.rtg, scan_rtgs=scan.rtgs, scan_logits=scan.logits)
        shown = self.ui.tabs.selected_index
        for i, p in enumerate(self.ui.panels):
            if i == shown:
                p.update(data)
                self._stale.discard(i)
            else:
                self._stale.add(i)  # hidden: updated when its tab is selected (fewer messages per state)
        self._updating = True
        try:
            if s.replay or not self.ui.timeline.disabled:  # while playing, the disabled timeline is not resent per step
                with self.ui.timeline.hold_trait_notifications(), self.ui.timeline.hold_sync():
                    self.ui.timeline.disabled = not s.replay
                    self.ui.timeline.max = s.replay_length if s.replay else 0
                    self.ui.timeline.value = s.n_steps if s.replay else 0
            if self.ui.rtg_slider.value != s.rtg:
                self.ui.rtg_slider.value = s.rtg
        finally:
            self._updating = False
        for b in self.ui.buttons + [self.ui.act_button]:
            b.disabled = s.done or s.replay
        self._update_status(data)
        self.timings = {"grid_s": t1 - t0, "analysis_s": t2 - t1, "views_s": time.perf_counter() - t2}

    def _draw_grid(self):
        """Send the current grid and view (only what changed)."""
        s = self.session
        self._updating = True
        try:
            if s.replay:  # a recording has the agent's views only: the big grid shows them, said in the status
                self.ui.grid.show(s.observation, self.schema)
            else:
                grid, pos, d = self.env.full_grid()
                assign(self.ui.grid, grid=grid, agent_pos=pos, agent_dir=d, mode="full", image=_NO_IMAGE)
            self.ui.view.show(s.observation, self.schema)
        finally:
            self._updating = False

    def _shown_panel(self):
        """The panel whose tab is shown (only it is computed and drawn), or None."""
        i = self.ui.tabs.selected_index
        return self.ui.panels[i] if i is not None and 0 <= i < len(self.ui.panels) else None

    def _notes(self) -> list[str]:
        s = self.session
        notes = []
        if s.clean_observation is not None:
            notes.append("edited (clean scenario kept for patching)")
        if self._notice:
            notes.append(self._notice)
        if s.replay:
            notes.append("replaying a recorded episode: both grids show the recorded agent view (the full grid "
                         "is not recorded)")
        return notes

    def _update_status(self, data) -> None:
        """Status line (plain text only): step, RTG, the model's preference, or the end of the episode.

        The preference is read in the browser from the preferences widget (``status.preferences``), so
        the logits and their RTG scan travel once per state; at the end of the episode it is left out."""
        s = self.session
        over = f"episode over ({s.outcome}): reset or step back" if s.done else ""
        assign(self.ui.status, headline=over, lead=[f"step {s.n_steps}", f"t = {s.timestep}"], rtg=float(s.rtg),
               notes=self._notes(), preferences=None if s.done else self.ui.prefs)


def _directions_folder(path: Path) -> Path:
    """Where the directions saved with the recording ``path`` live: ``<path>.directions/``."""
    return path.with_name(path.name + ".directions")


def _error_html(e: Exception) -> str:
    """One escaped line for user errors; other errors add the exception type and the last frame's line."""
    box = "<div style='color:#b00020;border:1px solid #b00020;padding:4px;white-space:pre-wrap'>{}</div>"
    if isinstance(e, _USER_ERRORS):
        msg = e.args[0] if isinstance(e, KeyError) and e.args else e
        return box.format(html.escape(str(msg), quote=False))  # element text: <, >, & are what matter
    frames = traceback.extract_tb(e.__traceback__)
    where = f" (in {frames[-1].name})" if frames else ""
    return box.format(html.escape(f"{type(e).__name__}: {e}{where}", quote=False))

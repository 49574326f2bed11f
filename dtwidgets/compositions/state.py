"""The Explorer's state: everything an Explorer shows, in plain Python (no widgets here).

:class:`ExplorerState` holds the :class:`~dtwidgets.compositions.session.PlaySession` (episode,
step, RTG, edits and the clean scenario, the one step rule, the logits of the analysed state,
bookmarks, replay), the analysis context that owns the preference pair, which panel's tab is shown,
which panels are stale (not drawn for the current state) and the notice of the status line. Each
user event is a method that changes the state and returns a :class:`Redraw`: what the controller
(:class:`~dtwidgets.compositions.explorer.Explorer`) must draw again. An event that asks for what
the state already is (a slider following the session, a widget set back after a refusal) changes
nothing and returns :data:`NOTHING`. Errors of a user action (:class:`~.session.EpisodeOver`, a
``ValueError`` naming the argument, ...) are raised; the controller shows them.

Drive it from Python as the widgets do::

    st = explorer.state
    st.step("left"); st.set_rtg(0.5); st.show_panel("ablation")
    explorer.refresh()                 # analyse and draw the state (what a widget event does itself)
"""
from __future__ import annotations

from dataclasses import dataclass, fields

import numpy as np

from .session import PlaySession

AT_START = "at the episode start: nothing to step back to"
"""The notice after "step back" at the first step."""
OUTSIDE_VIEW = "outside the agent's view: the model's input is unchanged"
"""The notice after an edit the agent cannot see."""


@dataclass(frozen=True)
class Redraw:
    """What an event changed, i.e. what the controller draws again (all False: nothing).

    Attributes:
        grid: the full grid and the agent's view (drawn at once, in one message).
        analysis: the state the model sees or what the panels show: analyse it again and render the
            shown panel, the preferences, the status line and the controls (coalesced).
        status: the status line's notes.
        bookmarks: the list of bookmarks.
    """

    grid: bool = False
    analysis: bool = False
    status: bool = False
    bookmarks: bool = False

    def __bool__(self) -> bool:
        return any(getattr(self, f.name) for f in fields(self))


NOTHING = Redraw()
"""The event changed nothing."""
NEW_STATE = Redraw(grid=True, analysis=True)
"""A new state of the env: the grid at once, then its analysis."""


class ExplorerState:
    """The one state of an Explorer, changed only by its event methods.

    Args:
        session: the :class:`PlaySession` played.
        ctx: the :class:`~dtwidgets.compositions.panels.AnalysisContext` the panels read (it owns
            the preference pair and its validation).
        panels: the panels' keys in tab order (``""`` for a panel class without a ``key``).
        shown: index of the tab shown first (None: no tab).

    Attributes:
        session, ctx, panels: as given.
        shown: index in :attr:`panels` of the tab on screen (None when there is no tab).
        stale: indices of the panels not drawn for the current state (a hidden panel is drawn when
            its tab is shown; :meth:`analysed` marks every other panel stale).
        notice: one line the status line adds for the last event ("" for none): :data:`AT_START`,
            :data:`OUTSIDE_VIEW`; every event clears it first.
    """

    def __init__(self, session: PlaySession, ctx, panels, shown: int | None = 0) -> None:
        self.session = session
        self.ctx = ctx
        self.panels: tuple[str, ...] = tuple(panels)
        self.shown: int | None = shown if self.panels else None
        self.stale: set[int] = set(range(len(self.panels)))  # nothing is drawn yet
        self.notice = ""

    # ---- reading --------------------------------------------------------------------------
    @property
    def pair(self) -> tuple[int, int]:
        """The preference direction ``(a, b)`` (action indices): every panel analyses logit[a] − logit[b]."""
        return tuple(self.ctx.pair)

    @property
    def shown_key(self) -> str | None:
        """The key of the panel on screen (None when there is no tab)."""
        return None if self.shown is None else self.panels[self.shown]

    @property
    def stale_keys(self) -> list[str]:
        """The keys of the :attr:`stale` panels, in tab order."""
        return [k for i, k in enumerate(self.panels) if i in self.stale]

    @property
    def replay_position(self) -> int | None:
        """Replay: the number of recorded actions shown (the timeline's value); None while playing."""
        return self.session.n_steps if self.session.replay else None

    @property
    def notes(self) -> list[str]:
        """The status line's notes (plain text): an edited state, the last event's notice, a replay."""
        s = self.session
        notes = []
        if s.clean_observation is not None:
            notes.append("edited (clean scenario kept for patching)")
        if self.notice:
            notes.append(self.notice)
        if s.replay:
            notes.append("replaying a recorded episode: both grids show the recorded agent view (the full grid "
                         "is not recorded)")
        return notes

    def panel_index(self, key: str) -> int:
        """The tab index of the first panel ``key``; a ValueError lists the keys."""
        if key not in self.panels:
            raise ValueError(f"expected a panel key from {list(self.panels)}, got {key!r}")
        return self.panels.index(key)

    # ---- events ---------------------------------------------------------------------------
    def step(self, action) -> Redraw:
        """Take ``action`` (name or index) in the env; raises EpisodeOver once the episode ended."""
        self.notice = ""
        self.session.step(action)
        return NEW_STATE

    def act(self) -> Redraw:
        """The model takes its greedy action (from the logits the last analysis recorded: no forward)."""
        self.notice = ""
        self.session.act()
        return NEW_STATE

    def step_back(self) -> Redraw:
        """Undo the last step; at the episode start only the notice :data:`AT_START` changes."""
        self.notice = ""
        if not self.session.step_back():
            self.notice = AT_START
            return Redraw(status=True)
        return NEW_STATE

    def reset(self, seed: int | None = None) -> Redraw:
        """A new episode (``seed`` replaces the episode seed) at the session's ``target_rtg``."""
        self.notice = ""
        self.session.reset(seed)
        return NEW_STATE

    def set_rtg(self, rtg: float) -> Redraw:
        """The return-to-go of the current step (and of later episodes); the current RTG again is nothing
        (the slider following the session after a reward is not a user's target)."""
        if float(rtg) == self.session.rtg:
            return NOTHING
        self.notice = ""
        self.session.set_rtg(rtg)
        return Redraw(analysis=True)

    def set_pair(self, pair) -> Redraw:
        """The preference direction ``(a, b)`` (names or indices) every panel analyses; the pair in use
        again is nothing; a pair of one action twice is refused (ValueError) and the pair kept."""
        if tuple(pair) == self.pair:
            return NOTHING
        self.notice = ""
        self.ctx.set_pair(pair)
        return Redraw(analysis=True)

    def edit(self, x: int, y: int, obj: str | None, colour: str | None = None, cell_state: str | None = None) -> Redraw:
        """Counterfactual edit of full-grid cell ``(x, y)`` (``obj`` None clears it); the unedited state
        stays the clean scenario. An edit the agent cannot see sets the notice :data:`OUTSIDE_VIEW`."""
        self.notice = ""
        before = self.session.observation.copy()
        self.session.edit_cell(int(x), int(y), obj, colour, cell_state)
        if np.array_equal(before, self.session.observation):
            self.notice = OUTSIDE_VIEW
            return Redraw(grid=True, analysis=True, status=True)
        return NEW_STATE

    def show_tab(self, index: int | None) -> Redraw:
        """The tab ``index`` is on screen; a stale panel is analysed and drawn now."""
        self.shown = index
        return Redraw(analysis=True) if index in self.stale else NOTHING

    def show_panel(self, key: str) -> Redraw:
        """The tab of panel ``key`` is on screen (see :meth:`show_tab`)."""
        return self.show_tab(self.panel_index(key))

    def seek(self, n_steps: int) -> Redraw:
        """Replay: show the state after the first ``n_steps`` recorded actions; while playing, or at
        that position already, nothing."""
        if not self.session.replay or int(n_steps) == self.session.n_steps:
            return NOTHING
        self.notice = ""
        self.session.seek(n_steps)
        return NEW_STATE

    def load(self, trajectories, episode: int = 0) -> Redraw:
        """Replay episode ``episode`` of :class:`~dtwidgets.data.Trajectories` (refused files keep the state)."""
        self.notice = ""
        self.session.load_episode(trajectories, episode)
        return NEW_STATE

    def bookmark(self, note: str = "") -> Redraw:
        """Keep the current state under ``note`` (default ``"step n"``)."""
        self.session.bookmark(note)
        return Redraw(bookmarks=True)

    def goto_bookmark(self, index: int | None) -> Redraw:
        """Go back to bookmark ``index``; None or a negative index (the list's placeholder) is nothing."""
        if index is None or index < 0:
            return NOTHING
        self.notice = ""
        self.session.goto_bookmark(index)
        return Redraw(grid=True, analysis=True, bookmarks=True)  # the list back to its placeholder

    # ---- results --------------------------------------------------------------------------
    def analysed(self, logits) -> None:
        """The current state was analysed (logits ``[n_actions]``) and the shown panel is drawn with it:
        the session keeps the logits (acting needs no second forward), every other panel is stale."""
        self.session.record_logits(logits)
        self.stale = set(range(len(self.panels))) - {self.shown}

    def drawn(self, index: int) -> None:
        """Panel ``index`` is drawn for the current state (e.g. for an export)."""
        self.stale.discard(index)

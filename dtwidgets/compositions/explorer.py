"""The Explorer: play, edit and analyse a Decision Transformer in one linked notebook view.

Layout: a full-grid :class:`GridView` (click to select, edit mode to place/remove objects,
arrow keys to move when focused), the agent's partial view, controls (action buttons, "model
acts", "step back", reset + seed, RTG slider, edit tools, bookmarks, trajectory save/load and a
replay timeline), the model's :class:`ActionPreferences`, and tabs of analysis panels
(:mod:`dtwidgets.compositions.panels`), all driven by the one current state of a
:class:`~dtwidgets.compositions.session.PlaySession`.

Rapid inputs are coalesced: a change schedules one refresh on the kernel's event loop (~30 ms
later); further changes before it runs replace it, so a dragged slider never queues hundreds of
recomputations. All panel data comes from one shared analysis pass per state.
"""
from __future__ import annotations

import asyncio
import time
import traceback

import ipywidgets as W
import numpy as np

from ..vocabulary import COLOURS, OBJECTS, STATES
from ..widgets import ActionPreferences, GridView
from ..widgets.grid_view import EDIT_TOOLS
from .panels import PANELS, AnalysisContext, assign, make_panels
from .session import PlaySession

KEYS = {"ArrowLeft": "left", "ArrowRight": "right", "ArrowUp": "forward", "p": "pickup", "d": "drop",
        "t": "toggle", "Enter": "done"}
_OBJ = dict(enumerate(OBJECTS[:OBJECTS.index("agent")]))  # editable codes (the one vocabulary); others -> "empty"
_COL, _ST = COLOURS, STATES


class Explorer(W.VBox):
    """Play a MiniGrid env with a DT and watch its circuits.

    Args:
        model: a :class:`~dtwidgets.adapters.ModelAdapter` (e.g. from :func:`dtwidgets.load_checkpoint`).
        env: an :class:`~dtwidgets.adapters.EnvAdapter` (e.g. :class:`dtwidgets.MiniGridEnv`).
        rtg: initial return-to-go; seed: episode seed.
        pair: the preference direction ``(a, b)`` (names or indices), logit[a] - logit[b].
        panels: which analysis panels to show, a subset of :data:`PANELS`.
        reference_windows: optional :class:`TrajectoryWindow` batch used for mean ablation.
        coalesce_s: delay of the coalesced refresh (0 = refresh synchronously).
    """

    def __init__(self, model, env, *, rtg: float = 0.9, seed: int = 0, pair=("forward", "right"),
                 panels=PANELS, reference_windows=None, coalesce_s: float = 0.03):
        self.model, self.env = model, env
        self.session = PlaySession(model, env, rtg=rtg, seed=seed)
        self.coalesce_s = coalesce_s
        self._pending = None
        self.timings: dict[str, float] = {}
        self.ctx = AnalysisContext(model, pair=pair, reference_windows=reference_windows)
        a, b = self.ctx.pair
        lo, hi = model.rtg_range

        # --- views -----------------------------------------------------------------------
        grid, pos, d = env.full_grid()
        self.grid = GridView(grid, agent_pos=pos, agent_dir=d, view_size=model.schema.grid_shape[0], cell_size=34)
        self.view = GridView(self.session.observation, mode="partial", cell_size=22)
        self.prefs = ActionPreferences(logits=np.zeros(model.n_actions, np.float32),
                                       action_names=list(model.action_names), pair=(a, b))
        # --- controls --------------------------------------------------------------------
        self.buttons = [W.Button(description=n, layout=W.Layout(width="auto")) for n in env.action_names]
        for i, btn in enumerate(self.buttons):
            btn.on_click(lambda _b, i=i: self._do(lambda: self.session.step(i)))
        self.act_button = W.Button(description="model acts", button_style="info")
        self.act_button.on_click(lambda _b: self._do(self.session.act))
        self.back_button = W.Button(description="step back", icon="undo")
        self.back_button.on_click(lambda _b: self._do(self.session.step_back))
        self.seed_box = W.BoundedIntText(value=seed, min=0, max=2**31 - 1, description="seed", layout=W.Layout(width="150px"))
        self.reset_button = W.Button(description="reset", button_style="warning")
        self.reset_button.on_click(lambda _b: self._do(lambda: self.session.reset(self.seed_box.value, self.rtg_slider.value)))
        self.rtg_slider = W.FloatSlider(value=rtg, min=lo, max=hi, step=0.01, description="RTG", readout_format=".2f")
        self.rtg_slider.observe(lambda c: self._set_rtg(c["new"]), names="value")
        self.edit_toggle = W.ToggleButton(description="edit grid", icon="pencil")
        self.edit_tool = W.Dropdown(options=list(EDIT_TOOLS), value="ball", layout=W.Layout(width="100px"))
        W.link((self.edit_toggle, "value"), (self.grid, "editable"))
        W.link((self.edit_tool, "value"), (self.grid, "edit_tool"))
        self.grid.observe(self._on_grid_edit, names="grid")
        if hasattr(self.grid, "on_key"):
            self.grid.on_key(self._on_key)
        self.status = W.HTML()
        self.error = W.HTML()
        # bookmarks, trajectory, replay
        self.note = W.Text(placeholder="note for this state", layout=W.Layout(width="200px"))
        self.bookmark_button = W.Button(description="bookmark", icon="bookmark")
        self.bookmark_button.on_click(lambda _b: self._add_bookmark())
        self.bookmarks = W.Dropdown(options=[], description="go to", layout=W.Layout(width="260px"))
        self.bookmarks.observe(lambda c: c["new"] is not None and self._do(lambda: self.session.goto_bookmark(c["new"])), names="value")
        self.path = W.Text(value="trajectory.npz", description="file", layout=W.Layout(width="260px"))
        self.save_button = W.Button(description="save")
        self.save_button.on_click(lambda _b: self._do(self.save, refresh=False))
        self.load_button = W.Button(description="load")
        self.load_button.on_click(lambda _b: self._do(lambda: self.load(self.path.value)))
        self.timeline = W.IntSlider(value=0, min=0, max=0, description="replay", disabled=True, continuous_update=True)
        self.timeline.observe(lambda c: self.session.replay and self._do(lambda: self.session.seek(c["new"])), names="value")

        self.panels = make_panels(self.ctx, [p for p in panels])
        self.tabs = W.Tab(children=[p.widget for p in self.panels])
        for i, p in enumerate(self.panels):
            self.tabs.set_title(i, p.title)
        row = lambda *c: W.HBox(list(c), layout=W.Layout(flex_flow="row wrap", align_items="center"))  # noqa: E731
        controls = W.VBox([
            row(*self.buttons, self.act_button, self.back_button),
            row(self.rtg_slider),
            row(self.seed_box, self.reset_button),
            row(self.edit_toggle, self.edit_tool),
            row(self.note, self.bookmark_button, self.bookmarks),
            row(self.path, self.save_button, self.load_button),
            row(self.timeline),
            self.status,
        ])
        top = W.HBox([self.grid, W.VBox([self.view, self.prefs]), controls])
        super().__init__([top, self.error, self.tabs])
        self.refresh()

    @classmethod
    def demo(cls, variant: str = "post", **kwargs) -> "Explorer":
        """The Explorer on the shipped demo model (no download)."""
        from ..demo import load_demo

        model, env = load_demo(variant)
        return cls(model, env, **kwargs)

    # ---- events -----------------------------------------------------------------------
    def _do(self, fn, refresh: bool = True):
        try:
            out = fn()
            self.error.value = ""
        except Exception as e:  # shown under the Explorer, not in a log nobody reads
            self.error.value = _error_html(e)
            return None
        if refresh:
            self._draw_grid()  # at once; the analysis refresh is coalesced
            self._schedule()
        return out

    def _set_rtg(self, value):
        self._do(lambda: self.session.set_rtg(value))

    def _on_key(self, key: str):
        if key in KEYS and KEYS[key] in self.env.action_names:
            self._do(lambda: self.session.step(KEYS[key]))
        elif key in (" ", "Space", "m"):
            self._do(self.session.act)
        elif key == "Backspace":
            self._do(self.session.step_back)

    def _on_grid_edit(self, change):
        if getattr(self, "_updating", False):
            return
        old, new = np.asarray(change["old"]), np.asarray(change["new"])
        if old.shape != new.shape:
            return
        cells = np.argwhere((old != new).any(-1))
        def apply():
            for x, y in cells:
                o, c, s = (int(v) for v in new[x, y])
                obj = _OBJ.get(o, "empty")
                self.session.edit_cell(int(x), int(y), None if obj == "empty" else obj,
                                       _COL[c] if obj not in ("empty", "wall", "lava") else None,
                                       _ST[s] if obj == "door" else None)
        self._do(apply)
        if self.error.value:  # the env refused the edit: show the true grid again
            self._schedule()

    def _add_bookmark(self):
        i = self.session.bookmark(self.note.value)
        self.bookmarks.unobserve_all("value")
        self.bookmarks.options = [(f"{j}: {b.note}", j) for j, b in enumerate(self.session.bookmarks)]
        self.bookmarks.value = i
        self.bookmarks.observe(lambda c: c["new"] is not None and self._do(lambda: self.session.goto_bookmark(c["new"])), names="value")
        self.note.value = ""

    def save(self, path: str | None = None):
        """Save everything played this episode (lossless, the project's trajectory format)."""
        return self.session.to_trajectories().save(path or self.path.value)

    def load(self, path, episode: int = 0):
        """Load a recorded or training-data episode and scrub it with the replay timeline."""
        from ..data.trajectories import Trajectories

        self.session.load_episode(Trajectories.load(path), episode)

    # ---- refresh ----------------------------------------------------------------------
    def _schedule(self):
        """Coalesce: one refresh runs ~coalesce_s after the last input."""
        loop = None
        if self.coalesce_s > 0:
            try:
                loop = asyncio.get_running_loop()
            except RuntimeError:
                loop = None
        if loop is None:
            self.refresh()
            return
        if self._pending is not None:
            self._pending.cancel()
        self._pending = loop.call_later(self.coalesce_s, self.refresh)

    def flush(self):
        """Run a pending coalesced refresh now."""
        if self._pending is not None:
            self._pending.cancel()
            self._pending = None
            self.refresh()

    def refresh(self):
        """Redraw the grid at once, then recompute the shared analysis and update every panel in place."""
        self._pending = None
        t0 = time.perf_counter()
        s = self.session
        self._draw_grid()
        t1 = time.perf_counter()
        try:
            data = self.ctx.compute(s.window(), s.clean_window(), active=self._active_panels())
        except Exception as e:
            self.error.value = _error_html(e)
            return
        t2 = time.perf_counter()
        assign(self.prefs, logits=data.logits)
        for p in self.panels:
            p.update(data)
        with self.timeline.hold_trait_notifications():
            self.timeline.disabled = not s.replay
            self.timeline.max = s.replay_length if s.replay else s.n_steps
            self.timeline.value = s.n_steps
        for b in self.buttons + [self.act_button]:
            b.disabled = s.done or s.replay
        status = self._status_html(data)
        if self.status.value != status:
            self.status.value = status
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

    def _active_panels(self) -> set[str]:
        """Keys of the panels shown (patching is computed only when its panel is)."""
        return {p.key for p in self.panels}

    def _status_html(self, data) -> str:
        s = self.session
        probs = np.exp(data.logits - data.logits.max())
        probs /= probs.sum()
        best = self.model.action_names[int(np.argmax(data.logits))]
        parts = [f"step <b>{s.n_steps}</b> (t={s.timestep})", f"RTG <b>{s.rtg:+.2f}</b>",
                 f"model prefers <b>{best}</b> ({probs.max():.0%})"]
        if s.clean_observation is not None:
            parts.append("<span style='color:#b35900'>edited (clean scenario kept for patching)</span>")
        if s.replay:
            parts.append("replaying a recorded episode")
        if s.done:
            parts.append(f"episode over: <b>{s.outcome}</b>")
        return " · ".join(parts)


def _error_html(e: Exception) -> str:
    import html

    tb = "".join(traceback.format_exception(type(e), e, e.__traceback__)[-2:])
    return (f"<div style='color:#b00020;border:1px solid #b00020;padding:4px;white-space:pre-wrap'>"
            f"{html.escape(type(e).__name__)}: {html.escape(str(e))}\n<small>{html.escape(tb)}</small></div>")

"""The Explorer's state (compositions/state.py): each event changes the one state and says what to draw;
the Explorer driven through its public events (keys, clicks, slider, tabs) is read back from
``explorer.state``; the logits of the analysed state are the ones acting uses (no second forward)."""
from __future__ import annotations

import ast
from pathlib import Path

import numpy as np
import pytest
import torch

from dtwidgets.adapters.minigrid_env import MiniGridEnv
from dtwidgets.compositions import Explorer, ExplorerState, PlaySession, Redraw
from dtwidgets.compositions.panels import AnalysisContext
from dtwidgets.compositions.session import EpisodeOver
from dtwidgets.compositions.state import AT_START, NEW_STATE, NOTHING, OUTSIDE_VIEW

PKG = Path(__file__).resolve().parents[2] / "dtwidgets" / "compositions"


def plain_logits(adapter, window) -> np.ndarray:
    with torch.no_grad():
        return adapter.forward(window)[0].numpy()


def counting_refreshes(e: Explorer) -> list:
    calls: list = []
    orig = e.refresh
    e.refresh = lambda: (calls.append(e.state.session.n_steps), orig())[1]
    return calls


def out_of_view_cell(env) -> tuple[int, int]:
    g = env.full_grid()[0]
    out = [(x, y) for x in range(1, g.shape[0] - 1) for y in range(1, g.shape[1] - 1)
           if g[x, y, 0] == 1 and env.unwrapped.relative_coords(x, y) is None]
    assert out, "the fixed seed must leave an empty cell outside the agent's view"
    return out[0]


def test_the_state_module_imports_no_widgets():
    """The state and the session are plain Python: no ipywidgets, no dtwidgets widget module."""
    for name in ("state.py", "session.py"):
        tree = ast.parse((PKG / name).read_text())
        mods = [n.module or "" for n in ast.walk(tree) if isinstance(n, ast.ImportFrom)]
        mods += [a.name for n in ast.walk(tree) if isinstance(n, ast.Import) for a in n.names]
        assert not [m for m in mods if "ipywidgets" in m or "widgets" in m.split(".") or "panels" in m], (name, mods)


def test_events_change_the_state_and_say_what_to_draw(small_dt):
    session = PlaySession(small_dt, MiniGridEnv(), rtg=0.9, seed=0)
    st = ExplorerState(session, AnalysisContext(small_dt, pair=("forward", "right")), ["attribution", "ablation"])
    assert st.shown_key == "attribution" and st.stale_keys == ["attribution", "ablation"]  # nothing drawn yet
    assert st.step_back() == Redraw(status=True) and st.notice == AT_START and AT_START in st.notes
    assert st.step("left") == NEW_STATE and st.notice == "" and session.n_steps == 1
    assert st.set_rtg(session.rtg) is NOTHING and not NOTHING  # the slider following the session
    assert st.set_rtg(0.25) == Redraw(analysis=True) and session.rtg == 0.25 and session.target_rtg == 0.25
    assert st.set_pair(st.pair) is NOTHING
    with pytest.raises(ValueError, match="two different actions"):
        st.set_pair((1, 1))
    assert st.pair == (2, 1)  # refused: kept
    assert st.set_pair(("left", "forward")) == Redraw(analysis=True) and st.pair == (0, 2)
    data = st.ctx.compute(session.window(), panels=[])
    st.analysed(data.logits)
    assert st.stale_keys == ["ablation"]  # the shown panel is drawn, the hidden one is not
    assert st.show_panel("ablation") == Redraw(analysis=True) and st.shown == 1
    st.analysed(data.logits)
    assert st.stale_keys == ["attribution"] and st.show_panel("ablation") is NOTHING
    with pytest.raises(ValueError, match="expected a panel key from .*'attribution'.*got 'nope'"):
        st.show_panel("nope")
    assert st.seek(0) is NOTHING and st.replay_position is None  # no replay while playing
    assert st.goto_bookmark(-1) is NOTHING and st.bookmark("here") == Redraw(bookmarks=True)
    st.step("right")
    assert st.goto_bookmark(0) == Redraw(grid=True, analysis=True, bookmarks=True) and session.n_steps == 1


def test_the_analysed_logits_are_what_acting_uses(small_dt):
    """``analysed(logits)`` keeps the analysis' logits: the model acts on them with no forward of its own."""
    session = PlaySession(small_dt, MiniGridEnv(), rtg=0.9, seed=1)
    st = ExplorerState(session, AnalysisContext(small_dt), ["attention"])
    st.step("left")
    data = st.ctx.compute(session.window(), panels=[])
    np.testing.assert_allclose(data.logits, plain_logits(small_dt, session.window()), atol=1e-5)
    st.analysed(data.logits)
    calls = []
    handle = small_dt.backbone.register_forward_hook(lambda *a: calls.append(1))
    try:
        assert st.act() == NEW_STATE
    finally:
        handle.remove()
    assert calls == [] and session.h.actions[-1] == int(np.argmax(data.logits))


def test_an_edit_out_of_view_is_a_notice_and_keeps_no_clean_scenario(small_dt):
    env = MiniGridEnv()
    st = ExplorerState(PlaySession(small_dt, env, seed=0), AnalysisContext(small_dt), [])
    assert st.shown is None and st.shown_key is None
    x, y = out_of_view_cell(env)
    assert st.edit(x, y, "ball", "blue") == Redraw(grid=True, analysis=True, status=True)
    assert st.notice == OUTSIDE_VIEW and st.session.clean_observation is None
    ax, ay = env.agent_pos
    dx, dy = [(1, 0), (0, 1), (-1, 0), (0, -1)][env.agent_dir]
    assert st.edit(ax + dx, ay + dy, "wall") == NEW_STATE and st.notice == ""
    assert st.notes == ["edited (clean scenario kept for patching)"]


def test_the_explorer_driven_by_its_events_is_read_from_its_state(small_dt):
    e = Explorer(small_dt, MiniGridEnv(), coalesce_s=0, panels=("attribution", "ablation", "attention"))
    st = e.state
    assert st.session is e.session and st.ctx is e.ctx and st.shown_key == "attribution"
    assert st.stale_keys == ["ablation", "attention"]
    calls = counting_refreshes(e)
    e.back_button.click()  # at the start: a notice, no analysis
    assert calls == [] and st.notice == AT_START and e.status.notes == st.notes
    e.press("ArrowLeft")
    assert calls == [1] and st.notice == "" and e.status.notes == st.notes == []
    np.testing.assert_allclose(e.prefs.logits, plain_logits(small_dt, st.session.window()), atol=1e-5)
    e.tabs.selected_index = 2  # the browser selects a stale tab: it is analysed and drawn
    assert calls == [1, 1] and st.shown_key == "attention" and st.stale_keys == ["attribution", "ablation"]
    e.show_panel("attention")  # shown and drawn already: nothing
    assert calls == [1, 1]
    e.rtg_slider.value = 0.4
    assert calls == [1, 1, 1] and st.session.rtg == pytest.approx(0.4) and e.rtg_slider.value == st.session.rtg
    e.prefs.pair = (0, 1)
    assert st.pair == (0, 1) and calls == [1, 1, 1, 1]
    e.bookmark_button.click()
    e.press("ArrowRight")
    e.bookmarks.value = 0
    assert st.session.n_steps == 1 and e.bookmarks.value == -1 and calls[-1] == 1


def test_a_refused_event_keeps_the_state_and_shows_one_line(small_dt):
    e = Explorer(small_dt, MiniGridEnv(), coalesce_s=0, panels=("attribution",))
    for _ in range(200):
        if e.session.done:
            break
        e.press("ArrowUp")
    assert e.session.done
    n = e.session.n_steps
    with pytest.raises(EpisodeOver):
        e.state.step("left")  # the state raises ...
    e.press("ArrowLeft")  # ... the Explorer shows it once, in the status line
    assert e.session.n_steps == n and e.error.value == "" and e.status.headline.startswith("episode over")
    x, y = e.env.agent_pos
    e.edit(x, y, "wall")  # the agent's own cell
    assert "agent" in e.error.value and e.session.clean_observation is None

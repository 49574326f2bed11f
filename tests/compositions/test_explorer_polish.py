"""Regression tests for the Explorer polish (issue 13) and its trust items (issue 12): reset after
load, revisitable bookmarks, end of episode, the preference pair driving every panel, the ablation
tab's default, escaping, edits outside the view, save confirmation, the RTG scan shipped for
client-side following, the panel registry, coalescing on an undriven loop, event bursts."""
from __future__ import annotations

import asyncio
import concurrent.futures
import html
import tracemalloc

import ipywidgets as W
import numpy as np
import pytest
import torch

from dtwidgets.adapters.minigrid_env import MiniGridEnv
from dtwidgets.compositions import coalesce as coalesce_mod
from dtwidgets.compositions import Explorer, PlaySession
from dtwidgets.compositions.panels import PANEL_TYPES, register_panel
from dtwidgets.compositions.session import StepBackLimit
from dtwidgets.model import DecisionTransformer, DTAdapter, DTConfig

HOSTILE = "<img src=x onerror=alert(1)>"


@pytest.fixture(scope="module")
def model():
    return DTAdapter(DecisionTransformer(DTConfig(d_model=32, n_heads=2, d_mlp=64, n_ctx=8, n_layers=2, seed=3)))


def fresh_logits(adapter, session) -> np.ndarray:
    """The model's logits for the session's current state, by a plain forward (not the analysis bundle)."""
    with torch.no_grad():
        return adapter.forward(session.window())[0].numpy()


def html_values(w) -> list[str]:
    """Every HTML string in the widget tree (ipywidgets.HTML values)."""
    out = [w.value] if isinstance(w, (W.HTML, W.HTMLMath)) else []
    for c in getattr(w, "children", ()):
        out += html_values(c)
    return out


def drive_to_end(e: Explorer) -> None:
    for _ in range(60):
        if e.session.done:
            return
        e.press("ArrowUp")
    pytest.fail("the episode did not end within 60 forward steps")


def test_reset_after_load_plays_again(model, tmp_path):
    e = Explorer(model, MiniGridEnv(), coalesce_s=0)
    e.press("ArrowLeft")
    e.press("ArrowLeft")
    e.path.value = str(tmp_path / "t.npz")
    e.save_button.click()
    e.load_button.click()
    assert e.session.replay and all(b.disabled for b in e.buttons)
    e.reset_button.click()
    assert e.error.value == ""
    assert not e.session.replay and not any(b.disabled for b in e.buttons)
    assert e.grid.agent_pos is not None and e.grid.mode == "full"
    np.testing.assert_allclose(e.prefs.logits, fresh_logits(model, e.session), atol=1e-5)


def test_newest_bookmark_can_be_revisited(model):
    e = Explorer(model, MiniGridEnv(), coalesce_s=0)
    e.press("ArrowLeft")
    e.note.value = "one turn"
    e.bookmark_button.click()
    assert e.bookmarks.value == -1  # nothing pre-selected (the placeholder)
    obs = e.session.observation.copy()
    for _ in range(2):
        e.press("ArrowRight")
        e.press("ArrowRight")
        assert e.session.n_steps == 3
        e.bookmarks.value = 0  # the newest (and only) bookmark
        assert e.session.n_steps == 1 and np.array_equal(e.session.observation, obs)
        assert e.bookmarks.value == -1  # ready to be chosen again
        np.testing.assert_array_equal(e.view.grid, obs)


def test_end_of_episode_is_one_line_not_a_traceback(model):
    e = Explorer(model, MiniGridEnv(), coalesce_s=0)
    drive_to_end(e)
    expected = f"episode over ({e.session.outcome}): reset or step back"
    assert e.status.headline == expected
    assert e.status.logits.size == 0 and "model prefers" not in e.status.text  # the model does not act any more
    e.press("ArrowUp")  # a key after the end: the status line says it, once (no second copy in the error line)
    assert e.status.headline == expected and e.error.value == ""
    assert html.escape(expected) not in e.error.value
    e.back_button.click()
    assert not e.session.done and e.status.headline == "" and e.error.value == ""


def test_pair_in_preferences_drives_every_panel(model):
    e = Explorer(model, MiniGridEnv(), coalesce_s=0, pair=("forward", "right"))
    e.press("ArrowLeft")
    e.prefs.pair = (0, 2)  # left vs forward, as the widget's dropdowns would set it
    assert e.ctx.pair == (0, 2)
    logits = fresh_logits(model, e.session)
    att = e.panels[0]
    assert att.bars.shown_title.startswith("left − forward at s₁") and att.bars.show_sum
    at_bars = att.bars.values[0]
    assert float(at_bars.sum()) == pytest.approx(float(logits[0] - logits[2]), abs=1e-3)
    assert "left − forward" in e.show_panel("ablation").overview.title
    assert "left − forward" in e.show_panel("rtg_scan").view.shown_series_names
    assert "left − forward" in e.show_panel("circuits").emb_note.value


def test_hidden_panels_update_when_shown(model):
    e = Explorer(model, MiniGridEnv(), coalesce_s=0)
    abl = e.panels[1]
    before = abl.overview.values.copy()
    e.press("ArrowLeft")
    e.press("ArrowLeft")
    assert np.array_equal(abl.overview.values, before)  # hidden: not sent while another tab is shown
    e.show_panel("ablation")
    assert not np.array_equal(abl.overview.values, before)
    from dtwidgets.analysis.bundle import analyze_state
    st = analyze_state(model, e.session.window(), e.ctx.pair)
    np.testing.assert_allclose(abl.overview.values[0], st.ablations.delta_logit_diff, atol=1e-5)


def test_ablation_tab_opens_with_the_strongest_component(model):
    e = Explorer(model, MiniGridEnv(), coalesce_s=0)
    abl = e.show_panel("ablation")
    delta = abl.overview.values[0]
    assert abl.component.value == abl.overview.labels[int(np.argmax(np.abs(delta)))]
    assert abl.probs.values.shape == (2, model.n_actions) and abl.probs.scale == "unit"
    assert abl.contrib.values.shape[0] == 2 and abl.contrib.values.shape[1] > 0
    assert "Δ" in abl.sign.value and "ablated" in abl.sign.value


def test_hostile_names_and_outcomes_are_escaped(model, tmp_path):
    m = DTAdapter(DecisionTransformer(DTConfig(d_model=32, n_heads=2, d_mlp=64, n_ctx=8, seed=4)))
    m.action_names = ("left", HOSTILE, "forward")
    e = Explorer(m, MiniGridEnv(), coalesce_s=0, pair=(HOSTILE, "forward"))
    e.press("ArrowLeft")
    texts = []
    for p in e.panels:
        e.show_panel(p.key)
        texts += html_values(e)
    assert texts and all(HOSTILE not in t and "<img" not in t for t in texts), texts
    assert any(html.escape(HOSTILE) in t for t in texts)  # shown, as text
    # a trajectory whose final outcome is markup: reaches only the text-only status line
    e.path.value = str(tmp_path / "h.npz")
    traj = e.session.to_trajectories()
    traj.metadata["final"]["done"], traj.metadata["final"]["outcome"] = True, HOSTILE
    traj.save(tmp_path / "h.npz")
    before = e.session.observation.copy()
    e.load_button.click()
    # the file is refused (an outcome is one of the vocabulary's), the message names it, escaped, state kept
    assert "h.npz" in e.error.value and html.escape(HOSTILE) in e.error.value
    np.testing.assert_array_equal(e.session.observation, before)
    assert all("<img" not in t for t in html_values(e))


def test_edit_outside_view_says_so(model):
    e = Explorer(model, MiniGridEnv(), coalesce_s=0)
    env = e.env
    g = env.full_grid()[0]
    out = [(x, y) for x in range(1, g.shape[0] - 1) for y in range(1, g.shape[1] - 1)
           if g[x, y, 0] == 1 and env.unwrapped.relative_coords(x, y) is None]
    assert out, "the fixed seed must leave an empty cell outside the agent's view"
    x, y = out[0]
    before = e.session.observation.copy()
    e.edit(x, y, "ball")  # a blue ball
    assert np.array_equal(e.session.observation, before) and e.session.clean_observation is None
    assert "outside the agent's view: the model's input is unchanged" in e.status.notes
    e.press("ArrowLeft")
    assert not any("outside" in n for n in e.status.notes)


def test_save_confirms_with_the_path(model, tmp_path):
    e = Explorer(model, MiniGridEnv(), coalesce_s=0)
    (tmp_path / "sub").mkdir()
    e.path.value = str(tmp_path / "sub" / ".." / "played.npz")
    e.save_button.click()
    assert "nothing to save yet" in e.error.value and e.saved.value == ""
    e.press("ArrowLeft")
    e.save_button.click()
    assert e.saved.value == f"saved {(tmp_path / 'played.npz').resolve()}"
    assert (tmp_path / "played.npz").is_file()


def test_demo_outside_a_notebook_says_it_needs_one():
    with pytest.warns(UserWarning, match="needs a notebook front-end"):
        Explorer.demo(coalesce_s=0, panels=("attention",))


def test_token_labels_show_the_episode_step(model):
    e = Explorer(model, MiniGridEnv(), coalesce_s=0, panels=("attention",))
    labels0 = list(e.panels[0].view.shown_token_labels)
    assert labels0[-1] == "s₀" and any(l.endswith("·pad") for l in labels0)
    for _ in range(9):
        e.press("ArrowLeft")
    labels = list(e.panels[0].view.shown_token_labels)
    assert labels[-1] == "s₉" and labels[-2] == "R₉" and "a₈" in labels
    assert not any("pad" in l for l in labels)


def test_unused_channel_is_flagged():
    from dtwidgets.demo import load_demo

    m, env = load_demo("post")
    e = Explorer(m, env, coalesce_s=0, panels=("circuits",))
    circ = e.panels[0]  # the only tab: shown
    for _ in range(3):
        e.press("ArrowLeft")
    obs = np.stack(e.session.h.observations)  # raw observations [N, W, H, 3]: object, colour, state
    unused = [c for c in range(obs.shape[-1]) if not obs[..., c].any()]
    assert unused == [2], "Dynamic-Obstacles has no doors: the state channel is always 0"
    for c, t in enumerate(circ.emb.titles):
        assert t.endswith("(unused)") == (c in unused)
    assert "unused: state" in circ.emb_note.value
    assert "title=" in circ.qk_note.value and "formula" in circ.qk_note.value  # formula in a hover


def test_rtg_scan_is_shipped_and_exact_at_grid_points_at_step_0(model):
    e = Explorer(model, MiniGridEnv(), coalesce_s=0)
    scan_r, scan_l = e.prefs.scan_rtgs, e.prefs.scan_logits
    assert scan_r.shape == (101,) and scan_l.shape == (101, model.n_actions)
    assert e.prefs.follow_group == e.rtg_slider.follow_group == e.status.follow_group == e.panels[0].bars.follow_group
    i = int(np.argmin(np.abs(scan_r - 0.5)))
    e.rtg_slider.value = float(scan_r[i])  # released on a grid point
    np.testing.assert_allclose(e.prefs.logits, fresh_logits(model, e.session), atol=1e-5)
    # at step 0 the window's every RTG is the current one, so the scan row is the kernel's answer
    np.testing.assert_allclose(scan_l[i], e.prefs.logits, atol=1e-4)
    bars = e.panels[0].bars
    assert bars.scan_values.shape == (101, bars.values.shape[1])
    np.testing.assert_allclose(bars.scan_values[i], bars.values[0], atol=1e-4)
    assert e.prefs.rtg == pytest.approx(float(scan_r[i]))


class _CountingPanel:
    key, title = "counting", "Counting"

    def __init__(self, ctx):
        self.ctx, self.widget, self.seen = ctx, W.VBox(), []

    def update(self, data):
        self.seen.append(float(data.logits[0]))


def test_panel_registry(model):
    register_panel("counting", _CountingPanel)
    try:
        e = Explorer(model, MiniGridEnv(), coalesce_s=0, panels=("attribution", "counting"))
        assert [type(p) for p in e.panels][1] is _CountingPanel and e.tabs.get_title(1) == "Counting"
        assert e.panels[1].seen == []  # hidden panels are not updated
        e.show_panel("counting")
        e.press("ArrowLeft")
        assert len(e.panels[1].seen) == 2 and e.panels[1].seen[-1] == pytest.approx(float(e.prefs.logits[0]))
        e2 = Explorer(model, MiniGridEnv(), coalesce_s=0, panels=(_CountingPanel,))  # a class directly
        assert isinstance(e2.panels[0], _CountingPanel)
    finally:
        PANEL_TYPES.pop("counting", None)
    with pytest.raises(ValueError, match="expected panels from .*'attribution'.*got 'nope'"):
        Explorer(model, MiniGridEnv(), panels=("nope",))
    with pytest.raises(TypeError, match="update"):
        register_panel("bad", object)


def test_running_but_undriven_loop_falls_back_to_synchronous_refresh(model, monkeypatch):
    e = Explorer(model, MiniGridEnv(), coalesce_s=0.03)
    stale = asyncio.new_event_loop()  # "running" as far as get_running_loop says, but nothing drives it
    try:
        monkeypatch.setattr(coalesce_mod.asyncio, "get_running_loop", lambda: stale)
        monkeypatch.setattr(coalesce_mod, "_kernel_loop", lambda: None)  # no kernel: nobody promises to drive it
        e.press("ArrowLeft")
        np.testing.assert_allclose(e.prefs.logits, fresh_logits(model, e.session), atol=1e-5)
        other = asyncio.new_event_loop()  # inside a kernel, a loop other than the kernel's is not driven either
        monkeypatch.setattr(coalesce_mod, "_kernel_loop", lambda: other)
        e.press("ArrowLeft")
        np.testing.assert_allclose(e.prefs.logits, fresh_logits(model, e.session), atol=1e-5)
        other.close()
    finally:
        stale.close()


def test_scheduled_refresh_that_never_runs_is_detected(model, monkeypatch):
    e = Explorer(model, MiniGridEnv(), coalesce_s=0.2)
    stale = asyncio.new_event_loop()
    clock = [1000.0]  # the coalescer's clock, moved by hand: no sleeping, no timing
    try:
        e.coalescer.clock = lambda: clock[0]
        monkeypatch.setattr(coalesce_mod.asyncio, "get_running_loop", lambda: stale)
        monkeypatch.setattr(coalesce_mod, "_kernel_loop", lambda: stale)  # claims to be the kernel's, never runs
        e.press("ArrowLeft")  # an isolated input: refreshed at once
        assert not e.coalescer.pending and e.state.session.n_steps == 1
        np.testing.assert_allclose(e.prefs.logits, fresh_logits(model, e.session), atol=1e-5)
        e.press("ArrowLeft")  # right after a refresh: coalesced
        assert e.coalescer.pending and not e.coalescer.synchronous  # scheduled; the view shows the last state
        clock[0] += 5.0  # ... long ago, and it never ran
        e.press("ArrowLeft")  # detected: refreshed now, and every later input synchronously
        assert not e.coalescer.pending and e.coalescer.synchronous
        np.testing.assert_allclose(e.prefs.logits, fresh_logits(model, e.session), atol=1e-5)
        e.press("ArrowRight")  # right after a refresh, yet not coalesced any more
        assert not e.coalescer.pending and e.state.session.n_steps == 4
        np.testing.assert_allclose(e.prefs.logits, fresh_logits(model, e.session), atol=1e-5)
    finally:
        stale.close()


def test_event_bursts_coalesce_and_match_direct_actions(model, monkeypatch):
    """>= 500 mixed events (RTG, keys, edits, step-backs) on a driven loop: a bounded number of
    refreshes, the same final state as the actions applied directly, bounded memory."""
    rng = np.random.default_rng(0)
    events = []
    for i in range(520):
        k = rng.integers(4)
        events.append(("rtg", float(np.round(rng.uniform(-1, 1), 2))) if k == 0 else ("key", ["ArrowLeft", "ArrowRight"][i % 2])
                      if k == 1 else ("back", None) if k == 2 else ("edit", int(rng.integers(2))))

    async def run():
        monkeypatch.setattr(coalesce_mod, "_kernel_loop", asyncio.get_running_loop)
        e = Explorer(model, MiniGridEnv(), coalesce_s=0.05)
        direct = PlaySession(model, MiniGridEnv(), rtg=0.9, seed=0)
        calls = []
        orig = e.refresh
        e.refresh = lambda: (calls.append(1), orig())[1]
        traced, base = 0, 0
        for i, (kind, v) in enumerate(events):
            if i == 120:  # after a warm-up, memory must stay bounded by the kept history
                tracemalloc.start()
            if i == 320:  # measure the second 200 events only: one-time caches fill during the first
                base, traced = tracemalloc.get_traced_memory()[0], direct.n_steps
            if kind == "rtg":
                e.rtg_slider.value = v
                direct.set_rtg(v)
            elif kind == "key":
                e.press(v)
                direct.step(v.removeprefix("Arrow").lower())
            elif kind == "back":
                e.press("Backspace")
                direct.step_back()
            else:  # place / remove a ball two cells in front of the agent when that cell is free
                x, y = e.env.agent_pos
                dx, dy = [(1, 0), (0, 1), (-1, 0), (0, -1)][e.env.agent_dir]
                tx, ty = x + 2 * dx, y + 2 * dy
                g = e.grid.grid.copy()
                if not (0 < tx < g.shape[0] - 1 and 0 < ty < g.shape[1] - 1) or g[tx, ty, 0] not in (1, 6):
                    continue
                place = g[tx, ty, 0] == 1
                e.edit(tx, ty, "ball")  # places a ball, or clears the ball that is there
                direct.edit_cell(tx, ty, "ball" if place else None, "blue" if place else None)
        grown = tracemalloc.get_traced_memory()[0] - base
        tracemalloc.stop()
        await asyncio.sleep(0.2)  # let the one coalesced refresh run
        return e, direct, calls, (grown, max(direct.n_steps - traced, 0))

    # a thread of its own: earlier tests in the same process (Playwright's sync API) may leave a loop
    # marked running in the main thread, where asyncio.run() refuses to start
    with concurrent.futures.ThreadPoolExecutor(1) as pool:
        e, direct, calls, (grown, new_steps) = pool.submit(asyncio.run, run()).result()
    assert len(calls) <= 3, f"{len(calls)} refreshes for {len(events)} events"
    assert e.error.value == ""
    np.testing.assert_array_equal(e.session.observation, direct.observation)
    assert e.session.h.actions == direct.h.actions and e.session.h.rtgs == pytest.approx(direct.h.rtgs)
    np.testing.assert_array_equal(e.view.grid, direct.observation)
    np.testing.assert_allclose(e.prefs.logits, fresh_logits(model, direct), atol=1e-5)
    # a kept step costs ~11 KB (env snapshot) + its observation; cancelled timer handles are bounded by asyncio
    assert grown < 300_000 + new_steps * 20_000, f"memory grew by {grown} bytes over 200 events ({new_steps} new steps)"


def test_step_back_history_is_bounded(model):
    s = PlaySession(model, MiniGridEnv(), seed=0, max_snapshots=5)
    for i in range(12):
        s.step("left" if i % 2 else "right")
    assert sum(x is not None for x in s.h.snapshots) == 6  # the current state + 5 to step back to
    assert len(s.h.observations) == 13  # the recording stays complete
    for _ in range(5):
        assert s.step_back()
    with pytest.raises(StepBackLimit, match="max_snapshots"):
        s.step_back()
    with pytest.raises(ValueError, match="max_snapshots"):
        PlaySession(model, MiniGridEnv(), max_snapshots=0)


def test_malformed_trajectory_is_refused_and_state_kept(model, tmp_path):
    e = Explorer(model, MiniGridEnv(), coalesce_s=0)
    e.press("ArrowLeft")
    traj = e.session.to_trajectories()
    del traj.metadata["final"]["rtg"]
    traj.save(tmp_path / "bad.npz")
    obs, n = e.session.observation.copy(), e.session.n_steps
    e.path.value = str(tmp_path / "bad.npz")
    e.load_button.click()
    assert "bad.npz" in e.error.value and "missing ['rtg']" in e.error.value and "Traceback" not in e.error.value
    assert not e.session.replay and e.session.n_steps == n and np.array_equal(e.session.observation, obs)


def test_an_isolated_input_refreshes_at_once_and_a_burst_after_it_is_coalesced(model, monkeypatch):
    """The leading edge: a key press that follows no other is answered without waiting for the
    coalescing delay; the presses right after it run one refresh, ~coalesce_s after the last."""
    async def run():
        monkeypatch.setattr(coalesce_mod, "_kernel_loop", asyncio.get_running_loop)
        e = Explorer(model, MiniGridEnv(), coalesce_s=0.2)
        calls = []
        orig = e.refresh
        e.refresh = lambda: (calls.append(e.session.n_steps), orig())[1]
        e.press("ArrowLeft")
        assert calls == [1] and not e.coalescer.pending  # refreshed before press returned
        np.testing.assert_allclose(e.prefs.logits, fresh_logits(model, e.session), atol=1e-5)
        for _ in range(3):
            e.press("ArrowRight")
        assert calls == [1] and e.coalescer.pending
        await asyncio.sleep(0.5)
        assert calls == [1, 4] and not e.coalescer.pending
        np.testing.assert_allclose(e.prefs.logits, fresh_logits(model, e.session), atol=1e-5)
        await asyncio.sleep(0.25)  # quiet for longer than coalesce_s: the next input is isolated again
        e.press("ArrowLeft")
        assert calls == [1, 4, 5]

    with concurrent.futures.ThreadPoolExecutor(1) as pool:  # see test_event_bursts_coalesce_and_match_direct_actions
        pool.submit(asyncio.run, run()).result()


def test_step_back_at_the_start_says_so(model):
    e = Explorer(model, MiniGridEnv(), coalesce_s=0)
    e.back_button.click()
    assert e.session.n_steps == 0 and "nothing to step back to" in " ".join(e.status.notes)
    e.press("ArrowLeft")
    assert "nothing to step back to" not in " ".join(e.status.notes)


def test_a_pair_of_one_action_twice_is_refused(model):
    e = Explorer(model, MiniGridEnv(), coalesce_s=0, pair=("forward", "right"))
    e.prefs.pair = (2, 2)
    assert "two different actions" in e.error.value and e.ctx.pair == (2, 1) == e.prefs.pair
    with pytest.raises(ValueError, match="two different actions"):
        Explorer(model, MiniGridEnv(), coalesce_s=0, pair=("forward", "forward"))


def test_export_fills_every_tab(model, tmp_path):
    """to_html(explorer) calls before_export: every tab gets the current state's data (a page whose hidden
    tabs said 'no data' was issue 26's complaint)."""
    import dtwidgets

    e = Explorer(model, MiniGridEnv(), coalesce_s=0)
    keys = [p.key for p in e.panels]
    attn, scan, pm = (e.panels[keys.index(k)] for k in ("attention", "rtg_scan", "policy_map"))
    assert attn.view.patterns.size == 0 and scan.view.rtgs.size == 0  # hidden tabs: not computed yet
    dtwidgets.to_html(e, tmp_path / "explorer.html")
    assert e.state.stale == set() and e.state.stale_keys == [] and e.error.value == ""
    assert attn.view.patterns.size > 0 and scan.view.rtgs.size > 0 and pm.view.probs.size > 0

"""What the Explorer sends per new state (counted at ipywidgets' ``Widget._send``): what depends only on
the model (the neuron lists' labels) is not re-sent, and the status line's preference is read from
the preferences widget instead of a second copy of the logits and their RTG scan."""
from __future__ import annotations

import numpy as np

from dtwidgets.adapters.minigrid_env import MiniGridEnv
from dtwidgets.compositions import Explorer
from dtwidgets.analysis.ids import labels_of
from dtwidgets.compositions.token_names import episode_token_labels, episode_token_steps
from dtwidgets.widgets._arrays import array_from_json


def _by_widget(log, w):
    return [(m, b) for x, m, b in log if x is w]


def test_per_state_messages_send_no_static_labels_and_no_duplicate_logits(small_dt, sent_messages):
    e = Explorer(small_dt, MiniGridEnv(), coalesce_s=0, panels=("attribution", "rtg_scan"))
    att = e.panels[0]
    assert e.status.preferences is e.prefs and e.status.logits.size == 0
    for i in range(4):
        sent_messages.clear()
        e.session.step(i % 2)
        e.refresh()
        (msg, bufs), = _by_widget(sent_messages, att.neurons)  # one message per state: shares and activations
        assert "labels" not in msg["state"] and ["rows"] in msg["buffer_paths"]
        rows = array_from_json(bufs[msg["buffer_paths"].index(["rows"])])
        np.testing.assert_array_equal(rows, att.neurons.rows)
        assert array_from_json(bufs[msg["buffer_paths"].index(["values"])]).shape == (2, len(rows))
        (msg, bufs), = _by_widget(sent_messages, e.status)
        assert bufs == [] and set(msg["state"]) <= {"lead", "rtg", "notes", "headline"}
        (msg, _), = _by_widget(sent_messages, e.prefs)
        assert ["scan_logits"] in msg["buffer_paths"]
        # token names change per state (s₉ = the state after 9 steps) but only their steps are sent
        for w in (att.bars, att.sources):
            (msg, bufs), = _by_widget(sent_messages, w)
            assert not {"labels", "title", "col_labels", "row_labels"} & set(msg["state"]), msg["state"]
            steps = array_from_json(bufs[msg["buffer_paths"].index(["steps"])])
            np.testing.assert_array_equal(steps, episode_token_steps(small_dt, e.session.window()))
        # ... and the names shown are those of the panels' relabelling (window position -> episode step)
        data = e.ctx.compute(e.session.window(), panels={"attribution"})
        at = data.state.attribution
        assert att.bars.row_labels == labels_of(at.ids, data.token_labels)  # the ids' labels, tokens by episode step
        assert att.sources.shown_col_labels == data.token_labels == episode_token_labels(small_dt, e.session.window())
        assert att.bars.shown_title.startswith(f"{at.pair_label} at {data.token_labels[at.position]}: ")
    # the labels shown are the neurons the rows index, ordered by |share| (the shares computed again here)
    shares = np.abs(at.neuron_values.reshape(-1))
    shown = [int(lab[1]) * at.neuron_values.shape[1] + int(lab.split("N")[1]) for lab in att.neurons.row_labels]
    assert shown == list(np.argsort(-shares, kind="stable")[:30])
    assert "model prefers" in e.status.text


def test_status_drops_the_preference_at_the_end_of_an_episode(small_dt, sent_messages):
    e = Explorer(small_dt, MiniGridEnv(), coalesce_s=0, panels=("rtg_scan",))
    for _ in range(200):
        if e.session.done:
            break
        e.session.step("forward")
        e.refresh()
    assert e.session.done
    assert e.status.preferences is None and "model prefers" not in e.status.text
    e.session.reset(0)
    e.refresh()
    assert e.status.preferences is e.prefs and "model prefers" in e.status.text


def test_every_tab_names_tokens_by_steps_not_by_resent_strings(small_dt, sent_messages):
    """The Ablation, Attention, RTG-scan and Patching tabs send their token names as templates once and
    per state only the ``steps`` array; what they show equals the panels' relabelling by episode step."""
    e = Explorer(small_dt, MiniGridEnv(), coalesce_s=0, panels=("ablation", "attention", "rtg_scan", "patching"))
    abl, attn, scan, patch = e.panels
    for tab in range(3):
        e.tabs.selected_index = tab
        e.session.step(0)
        e.refresh()  # a first state with this tab shown: the templates go once
        for i in range(2):
            sent_messages.clear()
            e.session.step(i % 2)
            e.refresh()
            w = {0: abl.contrib, 1: attn.view, 2: scan.view}[tab]
            (msg, bufs), = _by_widget(sent_messages, w)
            assert not {"labels", "token_labels", "series_names"} & set(msg["state"]), msg["state"]
            steps = array_from_json(bufs[msg["buffer_paths"].index(["steps"])])
            np.testing.assert_array_equal(steps, episode_token_steps(small_dt, e.session.window()))
        _check_shown_names(small_dt, e, tab)
    # patching: an edit makes a corrupted scenario; its columns are the window's tokens by episode step
    e.tabs.selected_index = 3
    env = e.session.env
    (gx, gy), d = env.agent_pos, env.agent_dir
    dx, dy = [(1, 0), (0, 1), (-1, 0), (0, -1)][d]
    e.session.edit_cell(gx + dx, gy + dy, "wall")
    sent_messages.clear()
    e.refresh()
    (msg, bufs), = _by_widget(sent_messages, patch.resid)
    assert "col_labels" in msg["state"]  # the first patching state: the templates go once
    assert patch.resid.shown_col_labels == episode_token_labels(small_dt, e.session.window())


def _check_shown_names(small_dt, e, tab):
    from dtwidgets.analysis import ablate

    abl, attn, scan, _ = e.panels
    win = e.session.window()
    data = e.ctx.compute(win, panels={"rtg_scan", "attention"})
    if tab == 0:
        r = ablate(small_dt, win, [abl.component.value], *e.ctx.pair)
        assert abl.contrib.row_labels == labels_of(r.ids, data.token_labels)
    elif tab == 1:
        assert attn.view.shown_token_labels == episode_token_labels(small_dt, win)
    else:
        s = data.state.rtg_scan
        contrib = scan.view.shown_series_names[len(s.action_names) + 1:len(s.action_names) + 1 + len(s.labels)]
        assert contrib == labels_of(s.ids, data.token_labels)
        assert any("(s" in c and "{" not in c for c in contrib)  # a token named by its episode step

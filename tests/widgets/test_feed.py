"""UpdateFeed: the updates made in a batch travel as ONE comm message once a front-end is ready, carrying
exactly what ipywidgets would have sent widget by widget; otherwise (no front-end ready, a widget past
what it resolved, a key that is not the widget's own, nested buffers) each widget sends its own."""
from __future__ import annotations

import numpy as np
import pytest
import traitlets

from dtwidgets.adapters.minigrid_env import MiniGridEnv
from dtwidgets.compositions import Explorer
from dtwidgets.widgets import ActionPreferences, ContributionBars, DTWidget, GridView
from dtwidgets.widgets._arrays import array_from_json
from dtwidgets.widgets.feed import UpdateFeed, split_state


def _ready(feed, n=None):
    feed._on_front_end(feed, {"ready": len(feed.targets) if n is None else n}, [])


def _unpack(feed, msg, buffers):
    """``{widget: state}`` from a feed message, buffers put back at their keys (as the front-end does)."""
    assert msg["method"] == "custom" and set(msg["content"]) == {"u"}
    out, j = {}, 0
    for entry in msg["content"]["u"]:
        i, keys = entry[:2]
        state = dict(entry[2]) if len(entry) > 2 else {}
        assert state or len(entry) == 2  # an empty JSON part is left out
        for k in keys:
            state[k] = bytes(buffers[j])
            j += 1
        out[feed.widgets[i]] = state
    assert j == len(buffers)
    return out


def _direct(log, skip=()):
    """``{widget: state}`` of ordinary update messages, buffers put back at their paths."""
    out = {}
    for w, msg, bufs in log:
        if w in skip or msg.get("method") != "update":
            continue
        state = dict(msg["state"])
        for path, b in zip(msg["buffer_paths"], bufs):
            assert len(path) == 1, path
            state[path[0]] = bytes(b)
        out.setdefault(w, {}).update(state)
    return out


def _steps(e, i):
    if e.session.done or e.session.n_steps > 6:
        e.session.reset(i)
    e.session.step(i % 2)
    e.refresh()


@pytest.mark.parametrize("which", ["small", "demo"])
def test_a_ready_feed_sends_one_message_equal_to_the_widget_by_widget_updates(which, small_dt, sent_messages):
    from dtwidgets.demo import load_demo

    # the demo at RTG -1: its ReLU MLP has fewer than 30 active neurons, a number that changes per state
    adapter, rtg = (small_dt, 0.9) if which == "small" else (load_demo("post")[0], -1.0)
    fed = Explorer(adapter, MiniGridEnv(), rtg=rtg, coalesce_s=0, panels=("attribution", "rtg_scan"))
    plain = Explorer(adapter, MiniGridEnv(), rtg=rtg, coalesce_s=0, panels=("attribution", "rtg_scan"))
    _ready(fed.feed)
    for cls in (GridView, ActionPreferences, ContributionBars):
        assert any(isinstance(w, cls) for w in fed.feed.widgets), cls
    pairs = dict(zip(fed.feed.widgets, plain.feed.widgets))
    for i in range(6):
        sent_messages.clear()
        _steps(fed, i)
        others = [type(w).__name__ for w, _, _ in sent_messages if w is not fed.feed]
        assert i == 0 or others == [], others  # a new state costs the feed's message and nothing else
        from_fed = [(w, m, b) for w, m, b in sent_messages if isinstance(w, DTWidget)]
        (w, msg, bufs), = from_fed  # every dtwidgets update of the refresh in one message
        assert w is fed.feed
        got = _unpack(fed.feed, msg, bufs)
        sent_messages.clear()
        _steps(plain, i)
        want = _direct([(w, m, b) for w, m, b in sent_messages if isinstance(w, DTWidget)])
        assert len(want) >= 4  # grid, view, preferences, status, the panel shown...
        assert {pairs[w] for w in got} == set(want)
        for w, state in got.items():
            assert state == want[pairs[w]], type(w).__name__
            for k, v in state.items():  # and the kernel's traits are what was sent_messages
                kernel = w.get_state([k])[k]
                assert (bytes(kernel) if isinstance(kernel, memoryview) else kernel) == v, (type(w).__name__, k)
    np.testing.assert_array_equal(fed.prefs.logits, plain.prefs.logits)
    assert fed.status.text == plain.status.text


def test_without_a_ready_front_end_each_widget_sends_its_own_update(small_dt, sent_messages):
    e = Explorer(small_dt, MiniGridEnv(), coalesce_s=0, panels=("rtg_scan",))
    sent_messages.clear()
    _steps(e, 0)
    senders = [w for w, m, _ in sent_messages if isinstance(w, DTWidget)]
    assert e.feed not in senders and {e.grid, e.prefs, e.status} <= set(senders)
    _ready(e.feed, 2)  # the front-end resolved only the first two targets (the grids)
    assert e.feed.widgets[:2] == [e.grid, e.view]
    assert e.feed.targets[:2] == [f"IPY_MODEL_{e.grid.model_id}", f"IPY_MODEL_{e.view.model_id}"]
    sent_messages.clear()
    _steps(e, 1)
    (msg, bufs), = [(m, b) for w, m, b in sent_messages if w is e.feed]
    assert set(_unpack(e.feed, msg, bufs)) <= {e.grid, e.view}
    assert {e.prefs, e.status} <= {w for w, m, _ in sent_messages if m.get("method") == "update"}


@pytest.mark.parametrize("content", [{"ready": -1}, {"ready": 10**6}, {"ready": True}, {"ready": "3"}, ["ready"], None])
def test_a_malformed_ready_message_is_ignored(content):
    feed = UpdateFeed()
    feed.watch([GridView(np.zeros((3, 3, 3), np.uint8))])
    feed._on_front_end(feed, content, [])
    assert feed.ready == 0


class _Nested(DTWidget):
    parts = traitlets.List().tag(sync=True, to_json=lambda v, w: [memoryview(bytes(x)) for x in v])
    note = traitlets.Unicode("").tag(sync=True)


def test_keys_the_feed_cannot_carry_go_the_ordinary_way(sent_messages):
    nested, bars = _Nested(), ContributionBars(values=[1.0, 2.0], labels=["a", "b"])
    feed = UpdateFeed()
    feed.watch([nested, bars])
    _ready(feed)
    sent_messages.clear()
    with feed.batch():
        nested.parts = [b"ab"]  # a buffer inside a list
        bars.layout.width = "10px"  # not a DTWidget (a Layout): sends itself
        bars.values = np.array([3.0, 4.0], np.float32)
        with feed.batch():  # a nested batch joins the outer one
            bars.send_state("layout")  # an ipywidgets key, not the widget's own
        assert [w for w, _, _ in sent_messages] == [bars.layout]  # only the Layout (not a DTWidget) went at once
    updates = {w: (m["state"], m["buffer_paths"]) for w, m, _ in sent_messages if m.get("method") == "update"}
    assert set(updates) >= {nested, bars}
    assert updates[nested][1] == [["parts", 0]]
    assert "layout" in updates[bars][0] and updates[bars][1] == [["values"]]
    assert not [m for w, m, _ in sent_messages if w is feed]


def test_the_batch_is_sent_even_when_its_body_raises(sent_messages):
    bars = ContributionBars(values=[1.0], labels=["a"])
    feed = UpdateFeed()
    feed.watch([bars])
    _ready(feed)
    sent_messages.clear()
    with pytest.raises(RuntimeError):
        with feed.batch():
            bars.values = np.array([5.0], np.float32)
            raise RuntimeError("boom")
    (w, msg, bufs), = sent_messages
    assert w is feed
    np.testing.assert_array_equal(array_from_json(_unpack(feed, msg, bufs)[bars]["values"]), bars.values)
    assert bars.values.ravel().tolist() == [5.0]
    sent_messages.clear()
    bars.values = np.array([6.0], np.float32)  # outside a batch: the widget sends itself
    assert [w for w, _, _ in sent_messages] == [bars]


def test_split_state_refuses_nested_buffers():
    assert split_state({"a": 1, "b": memoryview(b"xy")}) == ({"a": 1}, ["b"], [memoryview(b"xy")])
    assert split_state({"a": [memoryview(b"x")]}) is None
    assert split_state({"a": {"k": b"x"}}) is None


def test_ready_resends_the_whole_state_of_the_resolved_targets(sent_messages):
    """A front-end that has just resolved the targets (e.g. a page reloaded mid-session) may have
    dropped earlier feed messages: the kernel answers its ready with every resolved target's state."""
    grid = GridView(np.arange(27, dtype=np.uint8).reshape(3, 3, 3) % 5, agent_pos=(1, 1), agent_dir=2)
    bars, late = ContributionBars(values=[1.0, 2.0], labels=["a", "b"]), ContributionBars(values=[3.0], labels=["c"])
    feed = UpdateFeed()
    feed.watch([grid, bars, late])
    sent_messages.clear()
    _ready(feed, 2)
    (w, msg, bufs), = sent_messages
    got = _unpack(feed, msg, bufs)
    assert list(got) == [grid, bars]  # not the third: the front-end has not resolved it
    for t, state in got.items():
        own = set(t.class_own_trait_names_public()) | {"error"}
        assert set(state) == own & set(t.keys)
        kernel = t.get_state(sorted(state))
        assert {k: bytes(v) if isinstance(v, memoryview) else v for k, v in kernel.items()} == state
    np.testing.assert_array_equal(array_from_json(got[grid]["grid"]), grid.grid)


def test_a_closed_target_keeps_its_place_and_is_skipped(sent_messages):
    """Indices the front-end resolved never move: a target closed in the kernel becomes "" in
    ``targets`` (the front-end resolves it to nothing) and is no longer fed; the others still are."""
    a, b = ContributionBars(values=[1.0], labels=["a"]), ContributionBars(values=[2.0], labels=["b"])
    feed = UpdateFeed()
    feed.watch([a, b])
    _ready(feed)
    b.close()
    c = ContributionBars(values=[3.0], labels=["c"])
    with feed.batch():
        feed.watch([c])  # a later widget, after the close
        a.values = np.array([4.0], np.float32)
    assert feed.targets[1] == "" and feed.targets[0].endswith(a.model_id) and feed.targets[2].endswith(c.model_id)
    assert feed.widgets == [a, b, c]
    sent_messages.clear()
    with feed.batch():
        a.values = np.array([5.0], np.float32)
        b.values = np.array([6.0], np.float32)  # closed: nothing to send
    (w, msg, bufs), = [x for x in sent_messages if x[0] is feed]
    assert list(_unpack(feed, msg, bufs)) == [a]

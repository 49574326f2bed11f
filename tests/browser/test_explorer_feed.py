"""The Explorer's UpdateFeed in real JupyterLab and Notebook 7: the front-end says it is ready, a key press
then reaches the browser as two comm messages for all dtwidgets widgets (counted in the kernel: the
grid and the view at once, then all the analysis changed), the
views show the kernel's new values (grid, preferences readout, status line read from the preferences
model), and a change made in the browser afterwards sends back only what the user changed (the fed
arrays are not echoed to the kernel)."""
from __future__ import annotations

import time

import numpy as np
import pytest

from .conftest import event_writer, open_notebook

pytestmark = [pytest.mark.browser, pytest.mark.slow]

CELL = event_writer('feed_events.jsonl') + '''\
import ipywidgets
from dtwidgets import Explorer
from dtwidgets.widgets import DTWidget
SENT = []  # (class, method) of every comm message the kernel sends from a dtwidgets widget
_send = ipywidgets.Widget._send
def _counting(w, msg, buffers=None):
    if isinstance(w, DTWidget):
        SENT.append((type(w).__name__, msg.get("method")))
    return _send(w, msg, buffers)
ipywidgets.Widget._send = _counting
e = Explorer.demo(seed=1)
INCOMING = []  # the keys of every update the browser sends to the preferences widget
_set_state = e.prefs.set_state
e.prefs.set_state = lambda state: (INCOMING.append(sorted(state)), _set_state(state))[1]
e
'''
OUT = ".jp-OutputArea-output"
GRID = f"{OUT} .dtw-gridview canvas.dtw-grid"
DIFF_JS = f"() => document.querySelector('{OUT} .dtw-actionprefs .dtw-readout').textContent"
STATUS_JS = f"() => document.querySelector('{OUT} .dtw-status-line').textContent"
EVENTS = "feed_events.jsonl"
CS = 34  # the Explorer's full-grid cell size


def _kernel(nb, name, expr):
    nb.exec(f"write({name!r}, {expr})")
    return nb.server.wait_event(lambda ev: ev["name"] == name, name=EVENTS)["value"]


def _wait_ready(nb, timeout=30.0):
    t = time.monotonic()
    while time.monotonic() - t < timeout:
        ready, n = _kernel(nb, "ready", "[e.feed.ready, len(e.feed.targets)]")
        if ready == n > 0:
            return n
        (nb.server.root / EVENTS).write_text("")
        nb.page.wait_for_timeout(300)
    raise AssertionError(f"the feed's front-end never said it was ready ({ready} of {n} targets)")


@pytest.mark.parametrize("front_end", ["jupyter_lab", "jupyter_notebook"])
def test_one_message_per_state_and_no_echo(browser, request, front_end):
    server = request.getfixturevalue(front_end)
    server.write_notebook("explorer_feed.ipynb", [CELL])
    (server.root / EVENTS).unlink(missing_ok=True)
    with open_notebook(browser, server, "explorer_feed.ipynb", viewport=(1400, 1000)) as nb:
        page = nb.page
        grid = nb.run_all(GRID, timeout=90)
        page.locator(f"{OUT} .dtw-actionprefs .dtw-readout").first.wait_for(state="visible", timeout=30_000)
        _wait_ready(nb)
        grid.click(position={"x": CS / 2, "y": CS / 2})  # focus the grid (a wall cell: selects it)
        page.wait_for_timeout(500)
        nb.exec("e.flush(); SENT.clear()")
        grid_before = page.evaluate("([c]) => c.toDataURL()", [grid.element_handle()])
        for n, key in enumerate(("ArrowLeft", "ArrowLeft", "ArrowRight")):  # turns: the episode goes on
            page.keyboard.press(key)
            page.wait_for_function("([c, b]) => c.toDataURL() !== b", arg=[grid.element_handle(), grid_before],
                                   timeout=20_000, polling=20)
            grid_before = page.evaluate("([c]) => c.toDataURL()", [grid.element_handle()])
            page.wait_for_timeout(600)
            sent = _kernel(nb, f"sent-{n}", "list(SENT)")
            nb.exec("SENT.clear()")
            # the grid and the view at once, then preferences, status and the panel shown: one message each
            assert sent == [["UpdateFeed", "custom"]] * 2, sent
            k = _kernel(nb, f"kernel-{n}", "{'logits': e.prefs.logits.tolist(), 'pair': list(e.prefs.pair), "
                                             "'names': list(e.prefs.action_names), 'step': e.session.n_steps}")
            logits, (a, b) = np.array(k["logits"]), k["pair"]
            ia, ib = k["names"].index(a) if isinstance(a, str) else a, k["names"].index(b) if isinstance(b, str) else b
            shown = float(page.evaluate(DIFF_JS).rsplit("=", 1)[1])
            assert shown == pytest.approx(logits[ia] - logits[ib], abs=1e-3), (shown, logits)
            status = page.evaluate(STATUS_JS)  # read from the preferences' front-end model
            assert f"step {k['step']}" in status and f"model prefers {k['names'][int(np.argmax(logits))]}" in status, status

        # a change made in the browser sends only itself back (no echo of the fed arrays)
        nb.exec("INCOMING.clear()")
        select = page.locator(f"{OUT} .dtw-actionprefs select").nth(1)
        current = select.input_value()
        other = next(v for v in select.locator("option").evaluate_all("(os) => os.map((o) => o.value)") if v != current)
        select.select_option(other)
        page.wait_for_timeout(800)
        incoming = _kernel(nb, "incoming", "list(INCOMING)")
        assert incoming and all(keys == ["pair"] for keys in incoming), incoming
    assert nb.foreign == [], f"non-localhost requests: {nb.foreign}"

"""PolicyMapView and CircuitDiagram in Chromium: offline to_html pages (pixels of the arrows,
hover cards, client-side scrubbing of steering frames, difference mode) and a real JupyterLab
round trip (Python -> canvas, canvas click -> Python)."""

from __future__ import annotations

import time

import ipywidgets
import numpy as np
import pytest

from dtwidgets.widgets import CircuitDiagram, PolicyMapView

from .conftest import PIXEL_JS, open_notebook

pytestmark = pytest.mark.browser
CS = 60
NAMES = ["left", "right", "forward"]
PAL = {0: (78, 121, 167), 1: (242, 142, 43), 2: (225, 87, 89)}  # js/lib/colors.js PALETTE[0..2]
BG = (28, 28, 28)


def close(px, rgb, tol=14) -> bool:
    return all(abs(int(a) - int(b)) <= tol for a, b in zip(px[:3], rgb))


def _grid() -> np.ndarray:
    g = np.zeros((4, 3, 3), np.uint8)
    g[..., 0] = 1
    g[3, :] = (2, 5, 0)  # a wall column
    return g


def _view(**kw) -> PolicyMapView:
    cells = np.array([[1, 1], [1, 1], [0, 0]], np.int32)
    facings = np.array([0, 1, 3], np.int32)
    p0 = np.array([[0, 0, 1], [1, 0, 0], [0, 1, 0]], np.float32)  # (1,1)→ forward; (1,1)↓ turn left; (0,0)↑ right
    p1 = np.zeros_like(p0)
    p1[:, 0] = 1  # frame 1: every placement turns left
    return PolicyMapView(grid=_grid(), cells=cells, facings=facings, probs=np.stack([p0, p1]), action_names=NAMES,
                         frame_values=[0.0, 2.5], frame_name="coefficient", cell_size=CS, **kw)


def _shaft(x, y, d, turn, frac=0.45):
    """A point on the arrow shaft drawn for placement (x, y, d) and relative turn (-1, 0, 1)."""
    dirs = [(1, 0), (0, 1), (-1, 0), (0, -1)]
    fx, fy = dirs[d]
    dx, dy = dirs[(d + turn) % 4]
    ox, oy = (x + 0.5 + fx * 0.27) * CS, (y + 0.5 + fy * 0.27) * CS
    L = CS * 0.17
    return ox + dx * L * frac, oy + dy * L * frac


def test_policy_map_arrows_hover_and_scrubbing_offline(static_page) -> None:
    w = _view()
    rec = static_page(w, name="policy_map")
    cv = rec.page.locator("canvas.dtw-pmap").first
    px = lambda x, y: rec.pixel(cv, x, y)  # noqa: E731
    assert close(px(*_shaft(1, 1, 0, 0)), PAL[2]), "forward arrow (facing right) in the forward colour"
    assert close(px(*_shaft(1, 1, 1, -1)), PAL[0]), "facing down, turning left points right"
    assert close(px(*_shaft(0, 0, 3, 1)), PAL[1]), "facing up, turning right points right"
    assert close(px(3 * CS + CS / 2, CS / 2), (100, 100, 100)), "wall drawn grey"
    assert close(px(*_shaft(0, 0, 3, -1)), BG), "probability 0: nothing drawn"
    cv.hover(position={"x": 1 * CS + CS / 2, "y": 1 * CS + CS / 2})
    text = rec.page.locator(".dtw-policymap .dtw-tip").text_content()
    assert "cell (1, 1)" in text and "facing right: left 0  right 0  forward 1" in text and "facing down: left 1" in text
    # scrub to frame 1 client-side: all left turns
    slider = rec.page.locator(".dtw-policymap input[type=range]")
    slider.focus()
    t0 = time.time()
    slider.press("ArrowRight")
    assert "2.5" in rec.page.locator(".dtw-policymap .dtw-readout").text_content()
    assert close(px(*_shaft(1, 1, 0, 0)), BG), "frame 1 has no forward"
    assert close(px(*_shaft(1, 1, 0, -1)), PAL[0]), "facing right, turning left points up"
    if time.time() - t0 < 0.14:
        assert all(e["state"].get("index") != 1 for e in rec.page.evaluate("() => window.__dtw_saved || []"))
    rec.page.wait_for_function("() => (window.__dtw_saved || []).some(e => e.state && e.state.index === 1)", timeout=3000)
    # a click selects the cell
    cv.click(position={"x": 0 * CS + 10, "y": 2 * CS + 10})
    rec.page.wait_for_function("() => (window.__dtw_saved || []).some(e => e.state && JSON.stringify(e.state.selected) === '[0,2]')", timeout=3000)
    assert rec.errors == [] and rec.foreign == []


def test_policy_map_side_by_side_and_difference_offline(static_page) -> None:
    a = _view()
    b = _view()
    b.probs_b = np.roll(b.probs, 1, axis=2)  # forward -> left, left -> right, right -> forward
    b.mode = "difference"
    c = _view(mode="side_by_side")
    c.probs_b = np.roll(c.probs, 1, axis=2)
    c.map_labels = ["steered", "clean"]
    rec = static_page(ipywidgets.VBox([a, b, c]), name="policy_modes")
    roots = rec.page.locator(".dtw-policymap")
    assert roots.nth(0).locator("canvas.dtw-pmap").count() == 1
    diff = roots.nth(1).locator("canvas.dtw-pmap")
    assert diff.count() == 1
    # (1,1) facing right: probs forward 1, probs_b left 1 (rolled) -> forward +1 (red), left -1 (blue)
    assert close(rec.pixel(diff, *_shaft(1, 1, 0, 0)), (224, 49, 49)), "increase drawn red"
    assert close(rec.pixel(diff, *_shaft(1, 1, 0, -1)), (28, 126, 214)), "decrease drawn blue"
    assert "A − B" in roots.nth(1).locator(".dtw-ptitle").text_content()
    side = roots.nth(2).locator("canvas.dtw-pmap")
    assert side.count() == 2
    assert roots.nth(2).locator(".dtw-ptitle").all_text_contents() == ["steered", "clean"]
    assert close(rec.pixel(side.nth(1), *_shaft(1, 1, 0, -1)), PAL[0]), "second map: the rolled distribution"
    assert rec.errors == []


def test_circuit_diagram_offline(static_page) -> None:
    w = CircuitDiagram(node_labels=["L0H0", "L0H1", "L1H0", "action head"], node_layers=[0, 0, 1, 2],
                       edges=[[0, 2, 1.5], [1, 2, -0.5], [2, 3, 2.0]], edge_labels=["q", "v", "direct"],
                       unit="logits", title="paths")
    rec = static_page(w, name="circuit")
    cv = rec.page.locator("canvas.dtw-circuit")
    assert cv.count() == 1
    # L1H0 (column 1, single node, centred between the two rows) -> action head (column 2): a red edge
    y = 40 + 0.5 * 46
    assert close(rec.pixel(cv, 40 + 150 + 16 + 20, y), (224, 49, 49), tol=60), "positive edge is red"
    cv.hover(position={"x": 40 + 150 + 75, "y": y})
    text = rec.page.locator(".dtw-circuit .dtw-tip").text_content()
    assert "L1H0 → action head (direct)" in text and "2 logits" in text
    assert rec.errors == []



def test_circuit_diagram_of_every_sender_kind_offline(static_page) -> None:
    """A diagram from a real path patching result: embedding, head and MLP nodes in stream columns;
    hovering each edge's midpoint names its sender, receiver and input."""
    from dtwidgets.analysis.path_patching import path_patching
    from tests.analysis.helpers import CONFIGS, make_adapter, random_window

    a = make_adapter(**CONFIGS["noLN-gated-gelu-26tok"])
    pp = path_patching(a, random_window(a, seed=1), random_window(a, seed=2, rtg=-0.4), "forward", "left")
    w = CircuitDiagram.from_path_patching(pp, k=6)
    rec = static_page(w, name="circuit-senders")
    cv = rec.page.locator("canvas.dtw-circuit")
    cols = [int(c) for c in w.node_layers]
    n_rows = max(cols.count(c) for c in set(cols))
    # js/circuit_diagram.js layout: PAD 40, COLW 150, ROWH 46, R 16, columns centred; edges skipping a column
    # in lanes (LANE 16, LANE0 14) above the nodes, shortest span innermost, labelled mid-lane
    span = [abs(cols[int(t)] - cols[int(s)]) for s, t, _ in w.edges]
    skips = sorted((e for e in range(len(span)) if span[e] > 1), key=lambda e: (span[e], e))
    top = 40 + (14 + 16 * len(skips) if skips else 0)
    xy, seen = [], {}
    for c in cols:
        k = seen.get(c, 0)
        seen[c] = k + 1
        xy.append((40 + c * 150, top + (k + (n_rows - cols.count(c)) / 2) * 46))
    mids = []
    for e, (s, t, _) in enumerate(w.edges):
        (x0, y0), (x1, y1) = xy[int(s)], xy[int(t)]
        mids.append(((x0 + x1) / 2, top - 16 - 14 + 4 - 16 * skips.index(e) if e in skips else (y0 + y1) / 2))
    checked, lanes = 0, 0
    for e, ((s, t, v), lab) in enumerate(zip(w.edges, w.edge_labels)):
        mx, my = mids[e]
        if any((mx - ox) ** 2 + (my - oy) ** 2 < 20 ** 2 for j, (ox, oy) in enumerate(mids) if j != e):
            continue  # midpoints too close to tell apart by hovering
        cv.hover(position={"x": mx, "y": my})
        text = rec.page.locator(".dtw-circuit .dtw-tip").text_content()
        assert f"{w.node_labels[int(s)]} → {w.node_labels[int(t)]} ({lab})" in text, (text, lab)
        checked += 1
        lanes += e in skips
    assert checked >= 2 and lanes >= 1
    assert any(n.endswith("embed") for n in w.node_labels) and any(n.endswith("MLP") for n in w.node_labels)
    fills = {"input": (211, 249, 216), "head": (241, 243, 245), "mlp": (255, 232, 204), "output": (208, 235, 255)}
    for (x, y), kind in zip(xy, w.node_kinds):  # inside the node, above its label
        assert close(rec.pixel(cv, x, y - 11), fills[kind]), (kind, rec.pixel(cv, x, y - 11))
    assert set(w.node_kinds) >= {"input", "mlp", "output"}
    assert rec.errors == []



def test_discovered_circuit_draws_every_node_and_edge_offline(static_page, reference_adapter) -> None:
    """A circuit found by ACDC on the reference checkpoint (ball ahead vs none, right − forward), drawn
    via to_html: every node sits at its column / row in its kind's fill, hovering each edge's midpoint
    names exactly the circuit's component paths (as many as the diagram has edges), and the title states
    the measured faithfulness."""
    from dtwidgets.analysis import circuit_diagram, discover_circuit
    from dtwidgets.data.scenarios import FRONT, scenario_observation

    obs = scenario_observation("obstacle")
    empty = obs.copy()
    empty[FRONT] = (1, 0, 0)
    a = reference_adapter
    c = discover_circuit(a, a.make_window(obs, 0.9, [0]), a.make_window(empty, 0.9, [0]), "right", "forward",
                         method="acdc")
    w = circuit_diagram(c)
    want = {f"{s} → {r} ({lab})" for s, r, lab, _ in c.component_paths}
    assert len(want) == len(w.edges) == len(c.component_paths) >= 5
    rec = static_page(w, name="circuit-discovered")
    cv = rec.page.locator("canvas.dtw-circuit")
    assert f"{c.faithfulness:.1%}" in rec.page.locator(".dtw-circuit .dtw-title").text_content()
    cols = [int(x) for x in w.node_layers]
    n_rows, n_cols = max(cols.count(x) for x in set(cols)), max(cols) + 1
    span = [abs(cols[int(t)] - cols[int(s)]) for s, t, _ in w.edges]
    skips = sorted((e for e in range(len(span)) if span[e] > 1), key=lambda e: (span[e], e))
    top = 40 + (14 + 16 * len(skips) if skips else 0)  # js/circuit_diagram.js layout (see the test above)
    size = rec.page.evaluate("(c) => [parseFloat(c.style.width), parseFloat(c.style.height)]", cv.element_handle())
    assert size == [2 * 40 + (n_cols - 1) * 150, top + 40 + (n_rows - 1) * 46], size
    xy, seen = [], {}
    for col in cols:
        k = seen.get(col, 0)
        seen[col] = k + 1
        xy.append((40 + col * 150, top + (k + (n_rows - cols.count(col)) / 2) * 46))
    fills = {"input": (211, 249, 216), "head": (241, 243, 245), "mlp": (255, 232, 204), "output": (208, 235, 255)}
    drawn = [kind for (x, y), kind in zip(xy, w.node_kinds) if close(rec.pixel(cv, x, y - 11), fills[kind])]
    assert len(drawn) == len(w.node_labels), (drawn, w.node_labels)
    mids = []
    for e, (s, t, _) in enumerate(w.edges):
        (x0, y0), (x1, y1) = xy[int(s)], xy[int(t)]
        mids.append(((x0 + x1) / 2, top - 16 - 14 + 4 - 16 * skips.index(e) if e in skips else (y0 + y1) / 2))
    found = {}
    for e, (mx, my) in enumerate(mids):
        # the tip names the edge whose midpoint is nearest the pointer: distinct midpoints tell every edge apart
        assert all((mx - ox) ** 2 + (my - oy) ** 2 >= 3 ** 2 for j, (ox, oy) in enumerate(mids) if j != e)
        cv.hover(position={"x": mx, "y": my})
        head, _, value = rec.page.locator(".dtw-circuit .dtw-tip").inner_text().partition("\n")
        found[head.strip()] = value
    assert set(found) == want
    for s, r, lab, v in c.component_paths:
        assert f"{v:.4g}"[:4] in found[f"{s} → {r} ({lab})"].replace("−", "-"), (s, r, found)
    assert rec.errors == []


CELL = '''\
import json, pathlib
import numpy as np
import ipywidgets
from dtwidgets.widgets import CircuitDiagram, PolicyMapView
OUT = pathlib.Path("events.jsonl")
g = np.zeros((4, 3, 3), np.uint8); g[..., 0] = 1; g[3, :] = (2, 5, 0)
w = PolicyMapView(grid=g, cells=[[1, 1]], facings=[0], probs=[[[0, 0, 1]]], action_names=["left", "right", "forward"],
                  cell_size=60)
def write(ch):
    with OUT.open("a") as f:
        f.write(json.dumps({"name": ch["name"], "value": ch["new"]}) + "\\n")
w.observe(write, names=["selected", "index"])
d = CircuitDiagram(node_labels=["L0H0", "L1H0"], node_layers=[0, 1], edges=[[0, 1, 1.0]], edge_labels=["q"])
ipywidgets.VBox([w, d])
'''


@pytest.mark.slow
def test_policy_map_in_jupyterlab(browser, jupyter_lab) -> None:
    jupyter_lab.write_notebook("policy_map.ipynb", [CELL])
    (jupyter_lab.root / "events.jsonl").unlink(missing_ok=True)
    with open_notebook(browser, jupyter_lab, "policy_map.ipynb") as nb:
        canvas = nb.run_all(".jp-OutputArea .dtw-policymap canvas.dtw-pmap")
        at = lambda p: nb.page.evaluate(PIXEL_JS, [canvas.element_handle(), *p])  # noqa: E731
        assert close(at(_shaft(1, 1, 0, 0)), PAL[2])
        nb.exec("w.probs = [[[1, 0, 0]]]")  # Python -> canvas: now a left turn (points up)
        x, y = _shaft(1, 1, 0, -1)
        nb.page.wait_for_function(
            f"([c]) => {{ const p = ({PIXEL_JS})([c, {x}, {y}]); return Math.abs(p[0] - 78) < 15 && Math.abs(p[2] - 167) < 15; }}",
            arg=[canvas.element_handle()], timeout=15_000, polling=100)
        canvas.click(position={"x": 2 * CS + 5, "y": 0 * CS + 5})
        jupyter_lab.wait_event(lambda e: e["name"] == "selected" and e["value"] == [2, 0])
        nb.exec("assert w.selected == (2, 0) and w.error == ''")
        diagram = nb.page.locator(".jp-OutputArea .dtw-circuit canvas.dtw-circuit")
        diagram.wait_for(state="visible", timeout=10_000)
        # the edge L0H0 -> L1H0 (one node per column, both at y = 40) is drawn red
        edge = nb.page.evaluate(PIXEL_JS, [diagram.element_handle(), 40 + 16 + 30, 40])
        assert close(edge, (224, 49, 49), tol=60), edge
    ours = [e for e in nb.errors if "dtw-" in e or "policy_map" in e]
    assert ours == [] and nb.foreign == []

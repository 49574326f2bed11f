"""Hidden tabs create no widget models (issue 26: anywidget sends each model's ``_esm``, so a page pays
for every panel's modules): the Explorer creates a panel when its tab is first shown, when
``show_panel`` or an export asks for it, and it then shows what an eagerly built panel shows."""
from __future__ import annotations

import html
import re
import warnings

import ipywidgets as W
import numpy as np
import pytest
from ipywidgets.widgets.widget import _instances

from dtwidgets import Explorer
from dtwidgets.compositions.panels import PANEL_TYPES, LazyPanels
from dtwidgets.compositions.panels.registry import PLACEHOLDER, PanelCreationError
from dtwidgets.widgets import DTWidget
from dtwidgets.widgets.export import to_html_string
from dtwidgets.widgets.feed import widgets_in


def new_dtwidgets(before: set) -> list[DTWidget]:
    """The DTWidget models created since ``before`` (a set of model ids) and still open."""
    return [w for k, w in list(_instances.items()) if k not in before and isinstance(w, DTWidget)]


def demo(**kw) -> Explorer:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # "needs a notebook front-end"
        return Explorer.demo(coalesce_s=0, **kw)


def synced(w: DTWidget) -> dict:
    """A widget's synced state, binary values as bytes (comparable), without its model's identity."""
    out = {}
    for k, v in w.get_state().items():
        if k in ("layout", "_esm", "_css"):
            continue
        out[k] = bytes(v) if isinstance(v, (memoryview, bytes, bytearray)) else v
    return out


@pytest.fixture(scope="module")
def explorer():
    before = set(_instances)
    e = demo(seed=2)
    return e, new_dtwidgets(before)


def test_construction_creates_only_the_shown_panel(explorer):
    e, created = explorer
    n = len(e.panels)
    assert n >= 8 and e.tabs.selected_index == 0
    assert e.ui.panels.is_built(0) and not any(e.ui.panels.is_built(i) for i in range(1, n))
    # every DTWidget model created is on screen (the top views and the first tab's panel) or is the feed
    shown = set(map(id, widgets_in(e))) | {id(e.feed)}
    assert created and all(id(w) in shown for w in created), [type(w).__name__ for w in created if id(w) not in shown]
    first = set(map(id, widgets_in(e.tabs.children[0])))
    assert first and first <= set(map(id, created))
    for i in range(1, n):  # a hidden tab holds the placeholder only: no DTWidget under it
        holder = e.tabs.children[i]
        assert list(widgets_in(holder)) == []
        assert [type(c) for c in holder.children] == [W.HTML] and PLACEHOLDER in holder.children[0].value
    # tab titles come from the panel classes, without creating them
    assert [e.tabs.get_title(i) for i in range(n)] == [PANEL_TYPES[k].title for k in e.ui.panels.keys()]


@pytest.mark.parametrize("key", ["attention", "rtg_scan", "ablation", "policy_map", "circuits"])
def test_showing_a_tab_creates_its_panel_with_the_current_data(key):
    e = demo(seed=3)
    for _ in range(2):  # the state changes after construction: a panel built from the first state would differ
        e.act_button.click()
    assert e.session.n_steps == 2 and e.error.value == ""
    i = e.ui.panels.keys().index(key)
    assert not e.ui.panels.is_built(i)
    before = set(_instances)
    e.tabs.selected_index = i  # as a click on the tab does (coalesce_s=0: refreshed at once)
    created = new_dtwidgets(before)
    assert e.ui.panels.is_built(i) and e.error.value == ""
    panel = e.ui.panels[i]
    assert e.tabs.children[i].children == (panel.widget,)
    views = list(widgets_in(panel.widget))
    assert views and set(map(id, views)) <= set(map(id, created))
    assert all(not e.ui.panels.is_built(j) for j in range(len(e.panels)) if j not in (0, i))
    # an eagerly built panel of the same class, updated with the current state, shows the same data
    eager = type(panel)(e.ctx)
    s = e.session
    eager.update(e.ctx.compute(s.window(), s.clean_window(), panels=[eager]))
    ours, theirs = views, list(widgets_in(eager.widget))
    assert [w._module for w in ours] == [w._module for w in theirs]
    for a, b in zip(ours, theirs):
        assert synced(a) == synced(b), a._module


def test_show_panel_and_export_create_panels(explorer):
    e = demo(seed=4)
    keys = e.ui.panels.keys()
    p = e.show_panel("rtg_scan")
    i = keys.index("rtg_scan")
    assert e.ui.panels.is_built(i) and p is e.ui.panels[i] and e.tabs.selected_index == i
    scan = p.view
    assert scan.rtgs.size > 0 and np.isfinite(scan.series).all()
    assert not e.ui.panels.is_built(keys.index("attention"))
    page = to_html_string(e)  # before_export: every tab is created and carries the current state's data
    assert all(e.ui.panels.is_built(j) for j in range(len(keys)))
    assert PLACEHOLDER not in page
    att = e.ui.panels[keys.index("attention")].view
    assert np.asarray(att.patterns).size > 0 and '"attention_view"' in page


def test_lazy_panels_alone():
    """LazyPanels on its own: keys validated at once, nothing created before access, indices checked."""
    e = demo(seed=5)
    with pytest.raises(ValueError, match="expected panels from .*got 'nope'"):
        LazyPanels(e.ctx, ["attention", "nope"])
    built = []
    lp = LazyPanels(e.ctx, ["attention", "rtg_scan"], on_build=lambda i, p: built.append((i, type(p).__name__)))
    assert len(lp) == 2 and lp.keys() == ["attention", "rtg_scan"] and lp.titles() == ["Attention", "RTG scan"]
    assert built == [] and not lp.is_built(0)
    assert lp[-1] is lp[1] and built == [(1, "RTGScanPanel")]
    with pytest.raises(IndexError):
        lp[2]
    assert [p.key for p in lp] == ["attention", "rtg_scan"] and lp.holders[0].children == (lp[0].widget,)


def test_marimo_example_creates_only_the_panels_shown():
    """examples/marimo_explorer.py lists the panels for its dropdown without creating them: after the app
    runs, only the first tab's panel and the one the dropdown shows (RTG scan) exist."""
    import pathlib
    import runpy

    pytest.importorskip("marimo")
    example = pathlib.Path(__file__).resolve().parents[2] / "examples" / "marimo_explorer.py"
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        _, defs = runpy.run_path(str(example))["app"].run()
    e = defs["explorer"]
    keys = e.panels.keys()
    assert len(keys) >= 8 and defs["panel"].value == "rtg_scan"
    assert [k for i, k in enumerate(keys) if e.panels.is_built(i)] == ["attribution", "rtg_scan"]


class FailingPanel:
    """A user's panel whose constructor raises (as one whose probe file is missing would)."""

    key = "failing"
    title = "Failing"

    def __init__(self, ctx) -> None:
        raise RuntimeError("probe file missing")

    def update(self, data) -> None:  # pragma: no cover -- never created
        raise AssertionError("a panel that failed to be created is never updated")


def text_of(markup: str) -> str:
    """The text of an HTML widget's value (tags dropped, entities decoded)."""
    return html.unescape(re.sub("<[^>]+>", "", markup))


def test_a_panel_failing_at_creation_is_named_and_the_explorer_goes_on():
    """A hidden tab whose panel raises when first shown: the error line names the panel and the error, the
    tab says the same instead of "computed when shown", and stepping, other tabs and the export go on."""
    e = demo(seed=6, panels=("attribution", FailingPanel))
    assert e.ui.error.value == "" and not e.ui.panels.is_built(1)
    e.tabs.selected_index = 1
    e.flush()
    line = text_of(e.ui.error.value)
    assert line == "panel 'Failing' (failing) could not be created: RuntimeError: probe file missing (in __init__)"
    assert not e.ui.panels.is_built(1) and text_of(e.tabs.children[1].children[0].value) == line
    before = list(e.ui.status.lead)
    e.press("ArrowLeft")  # a turn: always a step; the grid, preferences and status line still refresh
    e.flush()
    assert e.session.n_steps == 1 and before[0] == "step 0" and e.ui.status.lead[0] == "step 1"
    assert text_of(e.ui.error.value) == line  # tried again on this refresh, still named
    with pytest.raises(PanelCreationError, match=r"panel 'Failing' \(failing\) could not be created") as info:
        e.show_panel("failing")
    assert isinstance(info.value.__cause__, RuntimeError)
    attribution = e.show_panel("attribution")
    e.flush()
    page = to_html_string(e)  # the export goes on: one line for the failing tab, the rest exported
    assert attribution.widget in e.tabs.children[0].children and "probe file missing" in page


def test_a_first_tab_failing_at_creation_is_named_and_the_explorer_opens():
    """The first tab's panel is created with the Explorer: when it raises, the Explorer still opens, its
    error line and the tab name the panel, and the other tabs and stepping work."""
    e = demo(seed=6, panels=(FailingPanel, "attribution"))
    line = "panel 'Failing' (failing) could not be created: RuntimeError: probe file missing (in __init__)"
    assert text_of(e.ui.error.value) == line and text_of(e.tabs.children[0].children[0].value) == line
    e.press("ArrowLeft")
    e.flush()
    assert e.session.n_steps == 1 and e.ui.status.lead[0] == "step 1"
    attribution = e.show_panel("attribution")
    e.press("ArrowRight")  # an event clears the error line; the shown tab now draws
    e.flush()
    assert attribution.widget in e.tabs.children[1].children and e.ui.error.value == ""
    assert e.ui.status.lead[0] == "step 2"


def test_bundle_benchmark_budgets_the_explorer_page():
    """benchmarks/bench_js_bundle.py --explorer: the page total is under 150 KB, and the script fails
    (exit 1) when the page is over its budget (here 1 KB)."""
    import json
    import pathlib
    import subprocess
    import sys

    root = pathlib.Path(__file__).resolve().parents[2]
    r = subprocess.run([sys.executable, str(root / "benchmarks" / "bench_js_bundle.py"), "--explorer", "--json",
                        "--page-budget-kb", "1"], capture_output=True, text=True, cwd=root, timeout=600)
    assert r.returncode == 1, r.stderr
    exp = json.loads(r.stdout)["explorer"]
    assert exp["page_budget_bytes"] == 1000 and exp["page_ratio"] > 1
    assert 0 < exp["packed_bytes"] <= 150_000 and exp["packed_bytes"] < exp["all_tabs_packed_bytes"], exp
    assert exp["instances"] < exp["all_tabs_instances"]

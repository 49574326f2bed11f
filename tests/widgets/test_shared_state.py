"""Data sent once instead of per update: ContributionBars ``rows`` (a long label list sent once, each
update says which rows to show) and StatusLine ``preferences`` (the status line reads the logits and
their RTG scan from an ActionPreferences), in Python and in the static export's page data."""
from __future__ import annotations

import json
import re

import ipywidgets
import numpy as np
import pytest
import traitlets

from dtwidgets.widgets import ActionPreferences, ContributionBars, StatusLine, to_html_string
from dtwidgets.widgets._arrays import array_from_json


def test_rows_index_labels_sent_once():
    labels = [f"L0N{i}" for i in range(300)]
    w = ContributionBars(values=np.array([[0.5, -0.25]], np.float32), labels=labels, rows=[299, 7])
    assert w.row_labels == ["L0N299", "L0N7"]
    assert w.rows.dtype == np.uint16  # the smallest unsigned type the front-end reads
    assert array_from_json(w.get_state()["rows"]).tolist() == [299, 7]
    assert ContributionBars(values=[[1.0]], labels=["a"] * 70000, rows=[69999]).rows.dtype == np.uint32
    assert ContributionBars(values=[[1.0, 2.0]], labels=["a", "b"]).row_labels == ["a", "b"]  # no rows: identity
    assert ContributionBars(labels=["a"], rows=np.zeros(0, np.int64)).row_labels == []  # no values: nothing shown


@pytest.mark.parametrize("kwargs, match", [
    (dict(values=[[1.0, 2.0]], labels=["a", "b"], rows=[0, 2]), "row index 2"),
    (dict(values=[[1.0, 2.0]], labels=["a", "b", "c"], rows=[0]), "rows: expected 2 items"),
    (dict(values=[[1.0]], labels=["a"], rows=[-1]), "non-negative integer"),
    (dict(values=[[1.0]], labels=["a"], rows=[0.5]), "non-negative integer"),
    (dict(values=[[1.0]], rows=[0]), "expected labels"),
    (dict(values=[[1.0]], labels=["a", "b"], groups=["g"], rows=[1]), "indices into groups"),
])
def test_rows_validation(kwargs, match):
    with pytest.raises(traitlets.TraitError, match=match):
        ContributionBars(**kwargs)


def test_rows_change_size_with_values_together():
    w = ContributionBars(values=[[1.0, 2.0, 3.0]], labels=list("abcd"), rows=[3, 2, 1])
    with w.hold_trait_notifications():
        w.values = [[5.0]]
        w.rows = [0]
    assert w.row_labels == ["a"]


def test_status_line_reads_the_preferences_widget():
    prefs = ActionPreferences(logits=np.array([0.0, 2.0, 0.5], np.float32), action_names=["left", "right", "forward"])
    status = StatusLine(lead=["step 3"], rtg=0.5, preferences=prefs)
    assert status.logits.size == 0
    p = np.exp([0.0, 2.0, 0.5])
    assert status.text == f"step 3 · RTG +0.50 · model prefers right ({round(p[1] / p.sum() * 100)}%)"
    prefs.logits = np.array([3.0, 0.0, 0.0], np.float32)
    assert "model prefers left" in status.text
    assert status.get_state()["preferences"] == "IPY_MODEL_" + prefs.model_id
    status.preferences = None  # own (empty) logits: no preference
    assert "prefers" not in status.text


def _data(html: str) -> dict:
    m = re.search(r'<script id="dtw-[0-9a-f]{12}-data" data-dtw-page="[^"]+" type="application/json">(.*?)</script>', html, re.S)
    assert m
    return json.loads(m.group(1))


@pytest.mark.parametrize("laid_out", [True, False])
def test_export_rewrites_widget_references(laid_out):
    prefs = ActionPreferences(logits=np.array([0.0, 1.0], np.float32), action_names=["a", "b"])
    status = StatusLine(lead=["step 1"], preferences=prefs)
    data = _data(to_html_string(ipywidgets.VBox([prefs, status] if laid_out else [status])))
    by_module = {m["module"]: (k, m) for k, m in data["models"].items()}
    pid, pm = by_module["action_preferences"]  # exported even when only referenced
    sid, sm = by_module["status_line"]
    assert sm["state"]["preferences"] == "IPY_MODEL_" + pid
    assert ["logits"] in pm["buffer_paths"]
    shown = [c["id"] for c in data["tree"]["children"]]
    assert shown == ([pid, sid] if laid_out else [sid])
    assert len(data["models"]) == 2


def test_export_one_model_per_widget_shown_twice():
    bars = ContributionBars(values=[[1.0]], labels=["x"])
    data = _data(to_html_string(ipywidgets.HBox([bars, bars])))
    assert len(data["models"]) == 1 and [c["id"] for c in data["tree"]["children"]] == ["w0", "w0"]


def test_fill_steps_rule():
    from dtwidgets.widgets._traits import escape_braces, fill_steps, step_text

    assert [step_text(s) for s in (0, 9, 12, -1)] == ["₀", "₉", "₁₂", "·pad"]
    steps = np.array([3, -1, 12], np.int16)
    assert fill_steps("a{0} b{1} {{x}} c{5} d{2}", steps) == "a₃ b·pad {x} c? d₁₂"
    assert fill_steps("a{0} {{x}}", np.zeros(0, np.int16)) == "a{0} {{x}}"  # no steps: no templating
    hostile = "L{0}H{{1}} }{"
    assert fill_steps(escape_braces(hostile), steps) == hostile  # escaped text comes back literally


def test_widgets_fill_step_templates():
    from dtwidgets.widgets import MatrixHeatmap

    bars = ContributionBars(values=[[1.0, 2.0]], labels=["state embed (s{1})", "L0H0"], title="f − r at s{1}",
                            steps=[-1, 9])
    assert bars.row_labels == ["state embed (s₉)", "L0H0"] and bars.shown_title == "f − r at s₉"
    assert bars.labels == ["state embed (s{1})", "L0H0"]  # the templates are what is sent (once)
    heat = MatrixHeatmap(values=np.zeros((1, 3)), col_labels=["R{0}", "s{1}", "a{2}"], row_labels=["L0H0"],
                         steps=np.array([-1, 4, 4]), title="t {{raw}}")
    assert heat.shown_col_labels == ["R·pad", "s₄", "a₄"] and heat.shown_row_labels == ["L0H0"]
    assert heat.shown_title == "t {raw}" and heat.steps.dtype == np.int16
    with pytest.raises(traitlets.TraitError, match="outside"):
        MatrixHeatmap(steps=[40000])

"""Widgets refuse arrays whose shapes disagree (one rule, ``check_dims``: the error names the trait, what
was expected and from where, and what came), and a value from the page that the traits refuse never
raises out of the comm handler: the last good value is kept, sent back to the page and the error shown."""
from __future__ import annotations

import re

import numpy as np
import pytest
import traitlets

from dtwidgets.widgets import (CircuitDiagram, FeatureBrowserView, PolicyMapView, ProbeMatrix, RTGSlider,
                               TrainingDynamicsView)


def _mismatch(make, a: str, b: str, dim: str) -> None:
    """``make()`` raises one TraitError naming the two traits that disagree on dimension ``dim`` (in a
    constructor the traits are cross-checked together at the end, in no fixed order: either is named first)."""
    with pytest.raises(traitlets.TraitError) as e:
        make()
    msg = str(e.value)
    assert re.search(rf"\.({a}|{b}): expected \[[^\]]*\] with {dim} = \d+ \(from ({a}|{b}) ", msg), msg
    assert re.search(a, msg) and re.search(b, msg) and "got shape" in msg, msg


def _update(w, state: dict) -> None:
    """The comm message a front-end sends when the user changes ``state``."""
    w._handle_msg({"content": {"data": {"method": "update", "state": state, "buffer_paths": []}}, "buffers": []})


def _policy_map(N=6, A=3, K=1):
    grid = np.zeros((5, 5, 3), np.uint8)
    cells = np.stack([np.arange(N) % 5, np.arange(N) // 5], 1).astype(np.int32)
    return dict(grid=grid, cells=cells, facings=np.zeros(N, np.int32),
                probs=np.full((K, N, A), 1 / A, np.float32), action_names=["left", "right", "forward"][:A])


def test_training_dynamics_metrics_must_match_the_steps():
    _mismatch(lambda: TrainingDynamicsView(steps=np.arange(3, dtype=np.float32), metrics=np.zeros((2, 5), np.float32),
                                           metric_names=["loss", "accuracy"]), "metrics", "steps", "K")
    _mismatch(lambda: TrainingDynamicsView(steps=np.arange(3, dtype=np.float32), metrics=np.zeros((2, 3), np.float32),
                                           metric_names=["loss"]), "metric_names", "metrics", "M")
    w = TrainingDynamicsView(steps=np.arange(3, dtype=np.float32))
    with pytest.raises(traitlets.TraitError, match=r"TrainingDynamicsView\.metrics: expected \[M, K\] with K = 3 "
                                                   r"\(from steps \(3,\)\), got shape \(2, 5\)"):
        w.metrics = np.zeros((2, 5), np.float32)  # accuracy would have been read at a loss's offsets
    with pytest.raises(traitlets.TraitError, match=r"jumps: expected integer indices in \[0, 3\)"):
        TrainingDynamicsView(steps=np.arange(3, dtype=np.float32), metrics=np.zeros((2, 3), np.float32),
                             metric_names=["a", "b"], jumps=np.array([[0, 7]], np.float32))
    ok = TrainingDynamicsView(steps=np.arange(3, dtype=np.float32), metrics=np.zeros((2, 3), np.float32),
                              metric_names=["a", "b"])
    with ok.hold_trait_notifications():  # both sides of a size change together: accepted
        ok.steps = np.arange(5, dtype=np.float32)
        ok.metrics = np.zeros((2, 5), np.float32)
    assert ok.metrics.shape == (2, 5)


def test_policy_map_cells_facings_probs_and_names_agree():
    PolicyMapView(**_policy_map())
    bad = _policy_map()
    bad["facings"] = np.zeros(4, np.int32)
    _mismatch(lambda: PolicyMapView(**bad), "facings", "(cells|probs)", "N")
    bad = _policy_map()
    bad["action_names"] = ["left", "right"]
    _mismatch(lambda: PolicyMapView(**bad), "action_names", "probs", "A")
    bad = _policy_map()
    bad["cells"] = bad["cells"] + 4
    with pytest.raises(traitlets.TraitError, match=r"PolicyMapView\.cells: expected integer indices in \[0, 5\)"):
        PolicyMapView(**bad)
    w = PolicyMapView(**_policy_map(K=2), frame_values=np.array([0, 1], np.float32))
    with pytest.raises(traitlets.TraitError, match=r"PolicyMapView\.frame_values: expected \[K\] with K = 2"):
        w.frame_values = np.zeros(3, np.float32)
    with pytest.raises(traitlets.TraitError, match=r"index: expected a frame in \[0, 2\)"):
        w.index = 2


def test_circuit_diagram_edges_name_existing_nodes():
    CircuitDiagram(node_labels=["a", "b"], node_layers=np.array([0, 1], np.int32), edges=np.array([[0, 1, 0.5]], np.float32),
                   edge_labels=["q"])
    with pytest.raises(traitlets.TraitError, match=r"CircuitDiagram\.edges: expected integer indices in \[0, 2\)"):
        CircuitDiagram(node_labels=["a", "b"], edges=np.array([[0, 5, 0.5]], np.float32))
    _mismatch(lambda: CircuitDiagram(node_labels=["a", "b"], node_layers=np.array([0, 1, 2], np.int32)),
              "node_layers", "node_labels", "n")
    _mismatch(lambda: CircuitDiagram(node_labels=["a", "b"], edges=np.array([[0, 1, 0.5]], np.float32),
                                     edge_labels=["q", "k"]), "edge_labels", "edges", "E")


def test_probe_matrix_labels_match_rows_and_columns():
    _mismatch(lambda: ProbeMatrix(selectivity=np.zeros((3, 2), np.float32), concepts=["one"], sites=["a", "b"]),
              "concepts", "selectivity", "R")
    _mismatch(lambda: ProbeMatrix(selectivity=np.zeros((3, 2), np.float32), metrics=np.zeros((5, 2, 2), np.float32)),
              "metrics", "selectivity", "R")


def test_feature_browser_rows_agree():
    F = 4
    base = dict(feature_ids=np.arange(F, dtype=np.int32), frequency=np.zeros(F, np.float32),
                action_bars=np.zeros((F, 3), np.float32), action_names=["l", "r", "f"])
    FeatureBrowserView(**base)
    _mismatch(lambda: FeatureBrowserView(**base, max_act=np.zeros(5, np.float32)), "max_act",
              "(feature_ids|frequency|action_bars)", "F")
    _mismatch(lambda: FeatureBrowserView(**{**base, "action_names": ["l", "r"]}), "action_names", "action_bars", "A")
    with pytest.raises(traitlets.TraitError, match=r"FeatureBrowserView\.pair: expected integer indices in \[0, 3\)"):
        FeatureBrowserView(**base, pair=(0, 3))


@pytest.mark.parametrize("make, state, keep", [
    (lambda: RTGSlider(value=0.5), {"value": float("nan")}, {"value": 0.5}),
    (lambda: FeatureBrowserView(feature_ids=np.arange(3, dtype=np.int32)), {"sort_by": "bogus"}, {"sort_by": "frequency"}),
    (lambda: FeatureBrowserView(feature_ids=np.arange(3, dtype=np.int32)), {"selected": -2}, {"selected": -1}),
    (lambda: FeatureBrowserView(feature_ids=np.arange(3, dtype=np.int32)), {"selected": 7}, {"selected": -1}),
    (lambda: PolicyMapView(**_policy_map()), {"index": -1}, {"index": 0}),
])
def test_a_refused_page_value_keeps_the_last_good_one_and_resyncs(sent_messages, make, state, keep):
    w = make()
    sent_messages.clear()
    _update(w, state)  # must not raise
    for k, v in keep.items():
        assert getattr(w, k) == v
    assert "a value from the page was refused" in w.error and next(iter(state)) in w.error
    resync = [m for wid, m, _ in sent_messages if wid is w and m.get("method") == "update" and set(keep) <= set(m["state"])]
    assert resync and all(resync[-1]["state"][k] == v for k, v in keep.items())
    # the next good value from the page clears the error
    good = {"value": 0.25} if "value" in state else {"selected": 1} if "selected" in state else \
        {"sort_by": "index"} if "sort_by" in state else {"index": 0}
    _update(w, good)
    assert w.error == ""

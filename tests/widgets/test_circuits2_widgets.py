"""PolicyMapView / CircuitDiagram Python side: feeding from analysis results, validation errors."""
from __future__ import annotations

import numpy as np
import pytest
import traitlets

from dtwidgets import MiniGridEnv
from dtwidgets.analysis.path_patching import path_patching
from dtwidgets.analysis.policy_map import agent_placements, policy_map
from dtwidgets.analysis.steering import steering_scan
from dtwidgets.widgets import CircuitDiagram, PolicyMapView
from tests.analysis.helpers import CONFIGS, make_adapter, random_window


def test_views_from_analysis_results():
    a = make_adapter(**CONFIGS["lnpre-8tok"])
    env = MiniGridEnv(seed=0)
    p = agent_placements(env, facings=(0, 1))
    m1, m2 = policy_map(a, p, 0.9), policy_map(a, p, -1.0)
    v = PolicyMapView.from_maps(m1, m2)
    assert v.mode == "side_by_side" and v.probs.shape == (1, len(p), a.n_actions) and v.map_labels == ["RTG 0.9", "RTG -1"]
    np.testing.assert_array_equal(v.cells, p.cells)
    np.testing.assert_allclose(v.probs_b[0], m2.probs)
    s = steering_scan(a, None, np.ones(a.cfg.d_model), coefficients=[-1, 0, 1], placements=p, rtg=0.9)
    sv = PolicyMapView.from_scan(s, reference=m1)
    assert sv.mode == "difference" and sv.index == 2 and sv.probs.shape  # opens at the largest coefficient, not 0 == (3, len(p), a.n_actions)
    np.testing.assert_allclose(sv.probs[1], sv.probs_b[1], atol=1e-6)  # coefficient 0 == the clean map
    pp = path_patching(a, random_window(a, seed=1), random_window(a, seed=2), "forward", "left")
    d = CircuitDiagram.from_path_patching(pp, k=4)
    assert d.edges.shape == (4, 3)
    top = pp.strongest(4)
    np.testing.assert_allclose(d.edges[:, 2], [t[2] for t in top])
    assert [d.node_labels[int(e[0])] for e in d.edges] == [t[0] for t in top]


def test_validation_errors():
    with pytest.raises(traitlets.TraitError, match="facings: expected values in 0..3"):
        PolicyMapView(facings=[0, 4])
    with pytest.raises(traitlets.TraitError, match=r"cells: expected 2-d int32 array with shape \[N, 2\]"):
        PolicyMapView(cells=np.zeros((3, 3)))
    with pytest.raises(TypeError, match="unexpected keyword"):
        PolicyMapView(prob=[1])


def test_circuit_diagram_places_every_sender_kind_in_residual_stream_order():
    """Embeddings, heads and MLPs as nodes: columns follow the residual stream, every edge runs forward."""
    a = make_adapter(**CONFIGS["noLN-gated-gelu-26tok"])
    pp = path_patching(a, random_window(a, seed=1), random_window(a, seed=2, rtg=-0.4), "forward", "left")
    d = CircuitDiagram.from_path_patching(pp, k=len(pp.sender_labels) * len(pp.receiver_labels))
    stage = dict(zip(pp.sender_labels, pp.sender_stages)) | {"action head": pp.receiver_stages[-1]}
    cols = {n: int(c) for n, c in zip(d.node_labels, d.node_layers)}
    assert {"state embed", "L0MLP", "L1MLP", "action head"} <= set(cols)
    assert sorted(set(cols.values())) == list(range(len(set(stage[n] for n in cols))))  # no empty column
    for n1 in cols:
        for n2 in cols:
            if stage[n1] < stage[n2]:
                assert cols[n1] < cols[n2], (n1, n2)
    assert all(cols[d.node_labels[int(s)]] < cols[d.node_labels[int(t)]] for s, t, _ in d.edges)
    assert list(d.node_layers) == sorted(d.node_layers)

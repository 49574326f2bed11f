"""The Python side of TrainingDynamics / ProbeMatrix / ProbeDirectionCard: arrays built from the results."""
from __future__ import annotations

import numpy as np
import pytest

from dtwidgets.compositions import TrainingDynamics
from dtwidgets.widgets import ProbeMatrix, to_html_string

from tests.probes.conftest import post_adapter, small_env, small_traj  # noqa: F401  (fixtures)

from .helpers import synthetic_dynamics


def test_training_dynamics_arrays():
    dyn = synthetic_dynamics()
    td = TrainingDynamics(dyn)
    v = td.view
    K = len(dyn.steps)
    assert v.steps.tolist() == dyn.steps.tolist() and v.index == K - 1
    m = dyn.metrics()
    assert v.metric_names == list(m) and v.metrics.shape == (len(m), K)
    np.testing.assert_allclose(v.metrics[v.metric_names.index("held-out loss")], m["held-out loss"], rtol=1e-6)
    np.testing.assert_allclose(v.calib_mean[:, 2], [r["calibration"]["mean_return"][2] for r in dyn.records])
    np.testing.assert_allclose(v.attribution[3], np.mean(dyn.records[3]["attribution"]["values"], 0), rtol=1e-5)
    assert v.probe_selectivity.shape == (K, 2, 2) and v.probe_selectivity[7, 1, 1] == pytest.approx(0.6)
    assert v.probe_metrics.shape == (K, 5, 2, 2)
    jumps = {(v.metric_names[int(a)], int(b)) for a, b in v.jumps}
    assert ("probe b selectivity", 6) in jumps
    assert "step 50" in td.children[1].value
    html = to_html_string(td)
    assert "training_dynamics" in html


def test_probe_matrix_and_direction_card(small_traj, small_env, post_adapter):
    from dtwidgets.compositions import ProbeDirectionCard
    from dtwidgets.probes import probe_concepts

    suite = probe_concepts(post_adapter, small_traj, small_env, ["ball ahead", "agent direction"], n_splits=3)
    w = ProbeMatrix.from_suite(suite)
    assert w.selectivity.shape == (2, 2) and w.metrics.shape == (5, 2, 2)
    np.testing.assert_allclose(w.metrics[w.metric_names.index("score")], suite.matrix("score"))
    w.selected_cell = (0, 1)
    assert w.selected == ("ball ahead", "L0 resid_post @ state")
    probe = suite.get("ball ahead", ("blocks.0.hook_resid_post", "state"))
    card = ProbeDirectionCard(post_adapter, probe, "True")
    d = probe.direction("True")
    W_state = post_adapter.W_state.numpy()  # [d_model, C*W*H], flat = c*W*H + x*H + y
    expected = np.einsum("d,dn->n", d, W_state).reshape(3, 7, 7)
    np.testing.assert_allclose(card.heatmap.values, expected, rtol=1e-4, atol=1e-5)
    cos = card.cosines.values[0]
    Wa = post_adapter.W_action.numpy()
    assert cos[0] == pytest.approx(float(Wa[0] @ d / np.linalg.norm(Wa[0]) / np.linalg.norm(d)), abs=1e-5)
    with pytest.raises(ValueError, match="class"):
        probe.direction("maybe")

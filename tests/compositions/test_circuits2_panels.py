"""Policy-map and Circuits II panels (Python side): what they show equals the analysis functions."""
from __future__ import annotations

import numpy as np
import pytest

from dtwidgets.adapters.minigrid_env import MiniGridEnv
from dtwidgets.analysis.path_patching import path_patching
from dtwidgets.analysis.policy_map import agent_placements, policy_map
from dtwidgets.compositions.panels import AnalysisContext, Circuits2Panel, PolicyPanel
from tests.analysis.helpers import CONFIGS, make_adapter


@pytest.fixture(scope="module")
def setup():
    a = make_adapter(**CONFIGS["lnpre-8tok"])
    env = MiniGridEnv(seed=0)
    ctx = AnalysisContext(a, pair=("forward", "left"))
    obs = env.observation()
    w = a.make_window(np.stack([obs, obs, obs]), 0.8, [3, 4, 5], [2, 2])
    return a, env, ctx, w


def test_policy_panel_modes(setup):
    a, env, ctx, w = setup
    p = PolicyPanel(ctx, env=env)
    p.update(ctx.compute(w, panels=[p]))
    place = agent_placements(env)
    want = policy_map(a, place, 0.8, timestep=5)
    np.testing.assert_allclose(p.view.probs[0], want.probs, atol=1e-6)
    np.testing.assert_array_equal(p.view.cells, place.cells)
    p.history.value = "history"
    np.testing.assert_allclose(p.view.probs[0], policy_map(a, place, 0.8, history=w).probs, atol=1e-6)
    p.history.value = "fresh"
    p.other_rtg.value = -1.0
    p.compare.value = "rtg"
    assert p.view.mode == "difference" and p.view.map_labels == ["RTG 0.8", "RTG -1"]
    np.testing.assert_allclose(p.view.probs_b[0], policy_map(a, place, -1.0, timestep=5).probs, atol=1e-6)
    p.compare.value = "steering"
    assert p.view.probs.shape[0] == 13 and p.view.frame_name == "coefficient"
    zero = int(np.argmin(np.abs(p.view.frame_values)))  # coefficient 0: the steered map is the clean one
    np.testing.assert_allclose(p.view.probs[zero], p.view.probs_b[zero], atol=1e-5)
    assert p.view.frame_values[p.view.index] == p.view.frame_values.max() > 0  # opens where steering shows something
    p.compare.value = "ablation"
    assert p.view.map_labels[0].endswith("ablated")
    assert PolicyPanel(ctx).widget is not None  # without an env: a note, no error


def test_circuits2_panel(setup):
    a, env, ctx, w = setup
    obs = env.observation().copy()
    obs[3, 5] = (6, 2, 0)  # a ball in front of the agent
    corrupted = a.make_window(np.stack([env.observation()] * 2 + [obs]), 0.8, [3, 4, 5], [2, 2])
    panel = Circuits2Panel(ctx, clean_window=lambda: w)
    panel.update(ctx.compute(corrupted, panels=[panel]))
    pp = path_patching(a, w, corrupted, "forward", "left")
    np.testing.assert_allclose(panel.paths.values, pp.effects, equal_nan=True)
    assert panel.diagram.edges.shape[0] == 8
    assert not hasattr(panel, "lens") and "Attribution" in panel.pointer.value  # the lens and neurons moved there
    from dtwidgets.analysis.weights import composition_scores, head_svd, virtual_weights

    comp = composition_scores(a)
    for mode in ("q", "k", "v"):
        panel.comp_mode.value = mode
        np.testing.assert_allclose(panel.comp.values, getattr(comp, mode))
    assert panel.comp.row_labels == panel.comp.col_labels == list(comp.head_labels)

    panel.head.value, panel.action.value, panel.svd_kind.value = "L1H1", 2, "qk"
    np.testing.assert_allclose(panel.virtual.values, virtual_weights(a, "L1H1").values[2])
    np.testing.assert_allclose(panel.svd.values, head_svd(a, 1, 1, "qk", k=1).input_maps[0])

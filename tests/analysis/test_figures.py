"""Static figures: plain plotly Figures (no FigureWidget) whose data are the result's numbers, and
an HTML export with plotly inlined (no CDN)."""
from __future__ import annotations

import numpy as np
import plotly.graph_objects as go

from dtwidgets import MiniGridEnv
from dtwidgets.analysis import logit_lens
from dtwidgets.analysis.figures import logit_lens_figure
from dtwidgets.analysis.neurons import top_neurons
from dtwidgets.analysis.path_patching import path_patching
from dtwidgets.analysis.policy_map import agent_placements, policy_map
from dtwidgets.analysis.steering import steering_scan
from dtwidgets.analysis.weights import composition_scores, head_svd, virtual_weights
from tests.analysis.helpers import CONFIGS, make_adapter, random_window


def test_every_result_gives_a_static_figure_of_its_numbers(tmp_path):
    a = make_adapter(**CONFIGS["lnpre-8tok"])
    w, w2 = random_window(a, seed=1), random_window(a, seed=2)
    env = MiniGridEnv(seed=0)
    pm = policy_map(a, agent_placements(env), 0.5)
    figs = {
        "policy": pm.figure(),
        "difference": pm.minus(policy_map(a, agent_placements(env), -0.5)).figure(),
        "steering": steering_scan(a, w, np.ones(a.cfg.d_model), coefficients=[-1, 0, 1]).figure(),
        "paths": path_patching(a, w, w2, "forward", "left").figure(),
        "composition": composition_scores(a).figure(),
        "svd": head_svd(a, 1, 0, "ov").figure(),
        "virtual": virtual_weights(a, "L0H1").figure(),
        "neurons": top_neurons(a, w, "forward", "left", k=4).figure(),
        "lens": logit_lens_figure(logit_lens(a, w, "forward", "left")),
    }
    for name, f in figs.items():
        assert type(f) is go.Figure, name
        assert len(f.data) >= 1, name
    # the policy figure's markers are the placements, opacity their probabilities
    n = sum(len(t.x) for t in figs["policy"].data[1:])
    assert n == len(pm.cells)
    t = figs["policy"].data[1]
    np.testing.assert_allclose(sorted(t.marker.opacity)[-1], min(1.0, pm.probs.max()), atol=1e-6)
    np.testing.assert_allclose(figs["paths"].data[0].z, path_patching(a, w, w2, "forward", "left").effects)
    html = tmp_path / "f.html"
    figs["policy"].write_html(html, include_plotlyjs=True)
    text = html.read_text()
    import re

    assert not re.findall(r"<script[^>]*\bsrc=", text)  # everything inlined: no script loaded from anywhere

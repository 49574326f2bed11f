"""The spaces analyses (PCA, parameter statistics, congruence, residual projection, saved directions,
NMF browser data) run on the hand-written protocol-only adapter with results equal to the shipped one's."""
from __future__ import annotations

import numpy as np
import pytest

from dtwidgets import analysis as A
from dtwidgets.adapters import TrajectoryWindow, hooks
from tests.analysis.helpers import random_window
from tests.protocol.test_minimal_adapter import assert_same, pair


@pytest.mark.parametrize("name", ["demo-post", "ln-gated-onehot-26tok"])
def test_spaces_analyses_match(name):
    shipped, minimal = pair(name)
    w = TrajectoryWindow.cat([random_window(shipped, seed=s) for s in range(5)])
    for kind in ("state", "rtg", "time", "action"):
        assert_same(A.embedding_pca(shipped, kind), A.embedding_pca(minimal, kind), f"embedding_pca {kind}")
    assert_same(A.activation_pca(shipped, w, hooks.resid_post(0)), A.activation_pca(minimal, w, hooks.resid_post(0)))
    assert_same(A.parameter_stats(shipped), A.parameter_stats(minimal))
    assert_same(A.neuron_congruence(shipped), A.neuron_congruence(minimal))
    comps = ["L0H0", "L0MLP", "L0N1"]
    assert_same(A.residual_projection(shipped, w, comps, clusters={"c": ["L0N1", "L0N2"]}),
                A.residual_projection(minimal, w, comps, clusters={"c": ["L0N1", "L0N2"]}))
    d1, d2 = A.DirectionStore(), A.DirectionStore()
    for s, ad in ((d1, shipped), (d2, minimal)):
        s.add_neuron("n", ad, "L0N3")
        s.add_steering("p", ad, (w.index(slice(0, 2)), w.index(slice(2, 5))), hooks.resid_mid(0))
    np.testing.assert_allclose(d1.cosine_matrix()[1], d2.cosine_matrix()[1], atol=1e-5)

"""ScatterView traits (shapes checked together, 2-D or 3-D only) and the spaces results fed to the existing
widgets: every value a widget gets is the result's own number at the row / column its labels name."""
from __future__ import annotations

import numpy as np
import pytest
import traitlets

from dtwidgets.analysis import DirectionStore, embedding_pca, neuron_congruence, parameter_stats, residual_projection
from dtwidgets.widgets import ScatterView
from dtwidgets.widgets import space_views as V
from tests.analysis.helpers import CONFIGS, make_adapter, random_window


def test_scatter_view_traits():
    ScatterView(points=np.zeros((4, 3)), point_labels=list("abcd"), colour=np.arange(4))
    with pytest.raises(traitlets.TraitError, match=r"\[N, 2\] or \[N, 3\]"):
        ScatterView(points=np.zeros((4, 4)))
    with pytest.raises(traitlets.TraitError, match=r"with N = [34] \(from (points|point_labels)"):
        ScatterView(points=np.zeros((4, 2)), point_labels=list("abc"))
    with pytest.raises(traitlets.TraitError, match="selected"):
        ScatterView(points=np.zeros((4, 2)), selected=4)
    with pytest.raises(traitlets.TraitError, match="finite"):
        ScatterView(points=np.zeros((4, 2)), yaw=float("nan"))


def test_pca_scatter_from_result():
    a = make_adapter(**CONFIGS["ln-gated-onehot-26tok"])
    res = embedding_pca(a, "action", colour=np.array(list("xyxyxyx")))
    w = V.pca_scatter(res, dims=3)
    np.testing.assert_array_equal(w.points, res.coordinates[:, :3])
    assert w.point_labels == list(a.action_names) and w.colour_classes == ["x", "y"]
    assert w.axis_labels[0] == f"PC1 ({100 * res.explained_variance_ratio[0]:.1f}%)"
    np.testing.assert_allclose(w.scree, res.explained_variance_ratio)
    with pytest.raises(ValueError, match="dims"):
        V.pca_scatter(embedding_pca(a, "action", n_components=2), dims=3)


def test_weight_views_show_the_results_numbers():
    a = make_adapter(**CONFIGS["ln-gated-onehot-26tok"])
    c = neuron_congruence(a)
    h = V.congruence_heatmap(c, k=5)
    for r, name in enumerate(h.row_labels):
        l, n = map(int, name[1:].split("N"))
        np.testing.assert_allclose(h.values[r], c.out_action[l, n])
    best = np.abs(c.out_action).max(-1).max()
    assert np.abs(h.values[0]).max() == pytest.approx(best)
    nx = V.next_layer_heatmap(c, 0, k=4, gate=True)
    i, j = int(nx.row_labels[1].split("N")[1]), int(nx.col_labels[2].split("N")[1])
    assert nx.values[1, 2] == pytest.approx(c.out_next_gate[0, i, j])
    with pytest.raises(ValueError, match="layer"):
        V.next_layer_heatmap(c, 1)
    s = parameter_stats(a)
    hh = V.head_norm_heatmap(s, "W_Q")
    np.testing.assert_allclose(hh.values, s.head_norms["W_Q"])
    bars = V.parameter_bars(s, "std")
    np.testing.assert_allclose(bars.values[0], s.std.astype(np.float32))
    assert bars.labels == s.names and bars.groups[s.names.index("L1.W_in")] == "L1"
    st = DirectionStore()
    st.add_neuron("a", a, "L0N1")
    st.add_neuron("b", a, "L1N2")
    cos = V.cosine_heatmap(st)
    np.testing.assert_allclose(cos.values, st.cosine_matrix()[1])
    assert cos.row_labels == ["a", "b"]
    p = residual_projection(a, random_window(a), ["L0H1", "L1MLP"])
    pb = V.projection_bars(p)
    np.testing.assert_allclose(pb.values, np.stack([p.projection[0], p.cosine[0]]))

"""PCA of embeddings and activations against a numpy SVD written here, on vectors read from the
reference-layout weights / the independent plain-torch forward (signs compared up to a flip)."""
from __future__ import annotations

import numpy as np
import pytest

from dtwidgets.adapters import TrajectoryWindow
from dtwidgets.adapters import hooks
from dtwidgets.analysis.spaces import activation_pca, embedding_pca
from tests.analysis.helpers import CONFIGS, make_adapter, random_window
from tests.analysis.ref_cache import reference_cache, reference_weights


def numpy_pca(X, k):
    """(coordinates [N, k], components [k, D], variance [r]) by numpy's SVD of the centred rows."""
    X = np.asarray(X, dtype=np.float64)
    Xc = X - X.mean(0)
    U, S, Vt = np.linalg.svd(Xc, full_matrices=False)
    return U[:, :k] * S[:k], Vt[:k], S ** 2 / (X.shape[0] - 1)


def assert_same_up_to_sign(got, want, atol):
    """Columns (coordinates) or rows (components) equal up to one sign each."""
    for g, w in zip(np.atleast_2d(got), np.atleast_2d(want)):
        s = np.sign(g @ w) or 1.0
        np.testing.assert_allclose(g, s * w, atol=atol)


@pytest.mark.parametrize("name", ["raw-2tok-noLN", "ln-gated-onehot-26tok", "ln-3layers-linear-time-5tok"])
def test_embedding_pca_against_numpy_svd(name):
    a = make_adapter(**CONFIGS[name])
    sd = reference_weights(a)
    W_time = sd["time_embedding.weight"]
    t = np.arange(a.max_timestep + 1)
    time_vecs = (W_time[t] if W_time.shape[0] > 1 and W_time.shape[1] > 1 else
                 t[:, None] * W_time[:, 0].numpy() + sd["time_embedding.bias"].numpy())
    rtgs = np.linspace(*a.rtg_range, 51)
    cases = {
        "state": (None, sd["state_embedding.weight"].T.numpy()),
        "time": (None, np.asarray(time_vecs)),
        "action": (None, sd["action_embedding.0.weight"][:a.n_actions].numpy()),
        "rtg": (rtgs, rtgs[:, None] * sd["reward_embedding.0.weight"][:, 0].numpy()),
    }
    for kind, (values, X) in cases.items():
        k = min(3, *X.shape)
        got = embedding_pca(a, kind, values, n_components=3)
        coords, comps, var = numpy_pca(X, k)
        tol = 1e-4 * max(1.0, float(np.abs(X).max()))
        np.testing.assert_allclose(got.explained_variance, var, atol=tol * 10, rtol=1e-4)
        np.testing.assert_allclose(got.explained_variance_ratio.sum(), 1.0, atol=1e-5)
        informative = var[:k] > 1e-8 * var[0]  # the RTG embedding is rank 1: only its first axis is defined
        assert_same_up_to_sign(got.components[informative], comps[informative], atol=1e-4)
        assert_same_up_to_sign(got.coordinates.T[informative], coords.T[informative], atol=tol)
        np.testing.assert_allclose(got.loadings, got.components.T * np.sqrt(var[:k]), rtol=1e-4, atol=1e-6)
        assert len(got.point_labels) == X.shape[0] and got.space == f"embedding:{kind}"
    assert embedding_pca(a, "action").point_labels == list(a.action_names)


def test_activation_pca_against_plain_torch_cache_and_colour():
    a = make_adapter(**CONFIGS["lnpre-8tok"])
    w = TrajectoryWindow.cat([random_window(a, seed=s) for s in range(12)])
    ref = reference_cache(a, w)
    for hook, pos in ((hooks.resid_post(1), None), (hooks.mlp_post(0), 1), (hooks.hook_z(1), 4)):
        p = a.layout.prediction_position if pos is None else pos
        X = ref[hook][:, p].reshape(12, -1).numpy()
        got = activation_pca(a, w, hook, pos, n_components=3)
        coords, comps, var = numpy_pca(X, 3)
        np.testing.assert_allclose(got.explained_variance[:3], var[:3], rtol=1e-3, atol=1e-6)
        assert_same_up_to_sign(got.components, comps, atol=1e-3)
        assert_same_up_to_sign(got.coordinates.T, coords.T, atol=1e-3)
    labels = np.array(["wall", "ball", "wall"] * 4, dtype=object)
    got = activation_pca(a, w, hooks.resid_pre(0), colour=labels)
    assert got.colour_classes == ("ball", "wall")
    np.testing.assert_array_equal(got.colour, [1, 0, 1] * 4)
    with pytest.raises(ValueError, match="colour"):
        activation_pca(a, w, hooks.resid_pre(0), colour=np.zeros(5))
    with pytest.raises(ValueError, match="position"):
        activation_pca(a, w, hooks.resid_pre(0), position=99)
    with pytest.raises(ValueError, match="kind"):
        embedding_pca(a, "reward")


def test_embedding_pca_on_the_reference_checkpoint(reference_adapter):
    """The real Dynamic-Obstacles model: the state embedding's PCA equals numpy's SVD of its checkpoint
    tensor, and the time embedding's scree sums to 1 with decreasing variance."""
    a = reference_adapter
    X = reference_weights(a)["state_embedding.weight"].T.numpy()
    got = embedding_pca(a, "state", n_components=3)
    coords, comps, var = numpy_pca(X, 3)
    np.testing.assert_allclose(got.explained_variance, var, rtol=1e-4, atol=1e-8)
    assert_same_up_to_sign(got.components, comps, atol=1e-4)
    assert_same_up_to_sign(got.coordinates.T, coords.T, atol=1e-4)
    assert got.point_labels[0] == a.schema.feature_labels()[0]
    t = embedding_pca(a, "time")
    assert np.all(np.diff(t.explained_variance) <= 1e-6) and t.explained_variance_ratio.sum() == pytest.approx(1.0, abs=1e-5)


def test_state_embedding_pca_of_observations():
    from tests.reference_forward import raw_to_features

    a = make_adapter(**CONFIGS["ln-gated-onehot-26tok"])
    obs = random_window(a, seed=5).observations[0]  # [T, 7, 7, 3] raw codes
    X = (raw_to_features(obs, True).double() @ reference_weights(a)["state_embedding.weight"].T).numpy()
    got = embedding_pca(a, "state", obs.numpy(), n_components=2)
    coords, comps, var = numpy_pca(X, 2)
    np.testing.assert_allclose(got.explained_variance, var, rtol=1e-4, atol=1e-7)
    assert_same_up_to_sign(got.coordinates.T, coords.T, atol=1e-4)
    assert len(got.point_labels) == obs.shape[0]

"""NMF of activations: the factorisation equals sklearn's NMF run here on the plain-torch forward's
activations; the FeatureBrowserView data (statistics, example states, action readout, write maps) equals
numpy/einsum computations written here, and the existing view accepts it."""
from __future__ import annotations

import numpy as np
import pytest
import torch
from sklearn.decomposition import NMF

from dtwidgets.adapters import TrajectoryWindow, hooks
from dtwidgets.analysis.nmf import activation_nmf, nmf_browser_data
from dtwidgets.sae.store import ActivationStore
from dtwidgets.widgets import FeatureBrowserView
from tests.analysis.helpers import CONFIGS, make_adapter, random_window
from tests.analysis.ref_cache import reference_cache, reference_weights

N = 24


def _store(a, hook):
    w = TrajectoryWindow.cat([random_window(a, seed=s, rtg=0.9 - 0.07 * s) for s in range(N)])
    p = a.layout.prediction_position
    acts = reference_cache(a, w)[hook][:, p].float()
    rng = np.random.default_rng(1)
    return ActivationStore(acts, hook, "state", p, episode=np.arange(N) // 3, step=w.timesteps[:, -1].numpy(),
                           rtg=w.rtgs[:, -1].numpy().astype(np.float32), observations=w.observations[:, -1].numpy().astype(np.uint8),
                           actions=rng.integers(0, a.n_actions, N))


def _readout(a, sd, vecs):
    Wa = sd["action_predictor.weight"]
    if a.cfg.layer_norm == "LN":
        Wa = Wa * sd["transformer.ln_final.w"]
    if a.cfg.layer_norm:
        vecs = vecs - vecs.mean(-1, keepdim=True)
    return (vecs @ Wa.T).numpy()


@pytest.mark.parametrize("name", ["ln-3layers-linear-time-5tok", "raw-2tok-noLN"])
def test_nmf_of_mlp_post_against_sklearn_and_numpy(name):
    a = make_adapter(**CONFIGS[name])
    sd = reference_weights(a)
    store = _store(a, hooks.mlp_post(0))
    res = activation_nmf(store, 4, seed=3)
    X = store.acts.double().numpy()
    m = NMF(n_components=4, init="nndsvda", random_state=3, max_iter=500)
    Wt = m.fit_transform(X)
    np.testing.assert_allclose(res.coefficients, Wt, atol=1e-5, rtol=1e-4)
    np.testing.assert_allclose(res.components, m.components_, atol=1e-5, rtol=1e-4)
    assert not res.split and res.relative_error == pytest.approx(np.linalg.norm(X - Wt @ m.components_) / np.linalg.norm(X), rel=1e-4)
    data = nmf_browser_data(a, res, store, n_top=3, quantiles=(0.5,), n_bins=5)
    for k in range(4):
        c = Wt[:, k]
        on = c > 0
        top = np.argsort(-np.where(on, c, -np.inf), kind="stable")[:3]
        top = [int(t) for t in top if on[t]]
        np.testing.assert_array_equal(data["examples_meta"][k, :len(top), 0], c[top].astype(np.float32))
        np.testing.assert_array_equal(data["examples_obs"][k, :len(top)], store.observations[top])
        np.testing.assert_array_equal(data["examples_meta"][k, :len(top), 1], store.rtg[top])
        assert data["frequency"][k] == pytest.approx(on.mean())
        assert data["mean_act"][k] == pytest.approx(c[on].mean() if on.any() else 0.0, rel=1e-5)
        assert data["rtg_corr"][k] == pytest.approx(np.corrcoef(c, store.rtg)[0, 1] if c.std() > 0 else 0.0, abs=1e-4)
        counts = np.histogram(c[on], bins=5, range=(0, c.max()))[0] if on.any() else np.zeros(5)
        np.testing.assert_array_equal(data["hist"][k], counts)
    want_bars = _readout(a, sd, torch.as_tensor(m.components_) @ sd["transformer.blocks.0.mlp.W_out"])
    np.testing.assert_allclose(data["action_bars"], want_bars, atol=1e-4, rtol=1e-4)
    view = FeatureBrowserView(**data)
    assert view.examples_obs.shape == (4, 4, 7, 7, 3) and view.example_labels == ["top 1", "top 2", "top 3", "q50"]


def test_nmf_of_signed_residual_splits_parts():
    a = make_adapter(**CONFIGS["lnpre-8tok"])
    sd = reference_weights(a)
    store = _store(a, hooks.resid_post(0))
    with pytest.raises(ValueError, match="split=True"):
        activation_nmf(store, 3, split=False)
    res = activation_nmf(store, 3)
    X = store.acts.double().numpy()
    m = NMF(n_components=3, init="nndsvda", random_state=0, max_iter=500)
    m.fit(np.concatenate([np.maximum(X, 0), np.maximum(-X, 0)], 1))
    D = X.shape[1]
    assert res.split and res.components.shape == (3, 2 * D)
    np.testing.assert_allclose(res.directions, m.components_[:, :D] - m.components_[:, D:], atol=1e-5, rtol=1e-4)
    data = nmf_browser_data(a, res, store)
    np.testing.assert_allclose(data["action_bars"], _readout(a, sd, torch.as_tensor(res.directions).double()), atol=1e-4)
    flat = res.directions.astype(np.float64) @ sd["state_embedding.weight"].numpy()  # [K, C*W*H], c-major then x, y
    np.testing.assert_allclose(data["write_maps"], flat.reshape(3, 3, 7, 7), atol=1e-4)
    FeatureBrowserView(**data)
    with pytest.raises(ValueError, match="store"):
        nmf_browser_data(a, res, store.select(np.arange(5)))

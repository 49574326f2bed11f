"""DTs with an MLP or CNN state encoder (no linear ``W_state``) bind through the protocol and run every
analysis; the observation-side maps read the encoder's Jacobian at the observation shown.

Numbers are checked against independent computations: the plain-torch forward of
``tests/reference_forward.py`` with the encoder's output put in as the state embedding, the MLP's
Jacobian written out by hand, central finite differences of the CNN in float64, and autograd through
plain tensors for the QK / OV maps. For our own (linear) DT the Jacobian equals ``W_state``.
"""
from __future__ import annotations

import copy

import numpy as np
import pytest
import torch

from dtwidgets import analysis as A
from dtwidgets.adapters import ModelAdapter, ObservationSchema, UnsupportedByModel
from dtwidgets.analysis.policy_map import placement_windows
from dtwidgets.analysis.state_map import state_jacobian, state_map
from dtwidgets.model.checkpoint import state_dict_of
from tests.analysis.helpers import CONFIGS, make_adapter, random_window
from tests.protocol.encoder_adapters import encoder_adapter
from tests.reference_forward import raw_to_features, reference_run

KINDS = ("mlp", "cnn")


def _close(got, want, rel=1e-4):
    """Equal to ``rel`` of the largest value (maps range over orders of magnitude between encoders)."""
    want = np.asarray(want, np.float64)
    np.testing.assert_allclose(got, want, rtol=0, atol=rel * float(np.abs(want).max()))


def _obs(seed=0, shape=(7, 7)):
    rng = np.random.default_rng(seed)
    return np.stack([rng.integers(0, 11, shape), rng.integers(0, 6, shape), rng.integers(0, 3, shape)], -1)


@pytest.mark.parametrize("name", ["lnpre-8tok", "ln-gated-onehot-26tok"])
def test_jacobian_of_our_linear_dt_is_w_state(name):
    ad = make_adapter(**CONFIGS[name])
    J = state_jacobian(ad, torch.as_tensor(_obs(1)))
    assert J.shape == ad.W_state.shape
    assert float((J - ad.W_state).abs().max()) <= 1e-6
    sm = state_map(ad)
    assert sm.exact and torch.equal(sm.E, ad.W_state.T.float())


def _mlp_jacobian(enc, f):
    """``W2 diag(1 - tanh²(W1 f + b1)) W1`` ``[d, F]``, by hand."""
    W1, b1, W2 = enc.l1.weight.detach(), enc.l1.bias.detach(), enc.l2.weight.detach()
    return W2 @ ((1 - torch.tanh(W1 @ f + b1) ** 2)[:, None] * W1)


def _fd_jacobian(enc, f, eps=1e-4):
    """Central finite differences of ``enc`` in float64 ``[d, F]``."""
    e = copy.deepcopy(enc).double()
    x = f.double()
    I = torch.eye(x.numel(), dtype=torch.float64) * eps
    with torch.no_grad():
        return ((e(x + I) - e(x - I)) / (2 * eps)).T


def _true_jacobian(kind, enc, f):
    return _mlp_jacobian(enc, f) if kind == "mlp" else _fd_jacobian(enc, f).float()


@pytest.mark.parametrize("kind", KINDS)
def test_nonlinear_adapter_is_a_model_adapter_and_says_what_to_pass(kind):
    ad, enc, _ = encoder_adapter(kind)
    assert isinstance(ad, ModelAdapter)
    assert (getattr(ad, "W_state", "absent") is None) if kind == "mlp" else not hasattr(ad, "W_state")
    for run, name in ((lambda: A.state_embedding_projection(ad, 0, 1), "state_embedding_projection"),
                      (lambda: A.qk_map(ad, 0, 0), "qk_map"), (lambda: A.ov_map(ad, 0, 0), "ov_map"),
                      (lambda: A.head_svd(ad, 0, 0), "head_svd"), (lambda: A.virtual_weights(ad, "L0H0"), "virtual_weights")):
        with pytest.raises(UnsupportedByModel, match=f"{name}.*nonlinear .*pass obs="):
            run()

    class Neither:  # no W_state and no embed_state: nothing to read the observation side from
        pass

    n = Neither()
    for m in ModelAdapter._members:
        setattr(n, m, getattr(ad, m))
    assert isinstance(n, ModelAdapter)
    with pytest.raises(UnsupportedByModel, match="state_embedding_projection.*neither a linear W_state nor embed_state"):
        A.state_embedding_projection(n, 0, 1, obs=_obs())


@pytest.mark.parametrize("kind", KINDS)
def test_jacobian_and_state_embedding_projection(kind):
    ad, enc, base = encoder_adapter(kind, "raw-2tok-noLN")
    obs = _obs(3)
    f = ad.features(torch.as_tensor(obs)[None])[0]
    J = _true_jacobian(kind, enc, f)
    got = state_jacobian(ad, torch.as_tensor(obs))
    assert float((got - J).abs().max()) <= 1e-5 * max(1.0, float(J.abs().max()))
    sm = state_map(ad, obs)
    assert not sm.exact and "Jacobian" in sm.note
    p = A.state_embedding_projection(ad, 2, 0, obs=obs)  # no LN: the direction is W_2 - W_0
    d = ad.W_action[2] - ad.W_action[0]
    _close(p.flat, (d @ J).numpy())
    assert not p.exact and p.values.shape == (3, 7, 7)
    vw = A.virtual_weights(ad, "L0H1", obs=obs)  # no LN: J^T W_V W_O W_action^T
    bb = ad.backbone
    want = (J.T @ bb.W_V[0, 1].detach() @ bb.W_O[0, 1].detach() @ ad.W_action.T).T
    _close(vw.flat, want.numpy())
    assert A.head_svd(ad, 0, 1, "qk", obs=obs).input_maps.shape == (3, 3, 7, 7)


def _reference(ad, enc, base, w, edits=None):
    """Plain-torch forward of ``w`` with ``enc(features)`` (zero at padded steps) as the state embedding."""
    c = base.cfg
    mcfg = {"d_model": c.d_model, "n_heads": c.n_heads, "n_layers": c.n_layers}
    feats = raw_to_features(w.observations.float(), False)
    B, T, F = feats.shape
    real = (torch.arange(T)[None, :] >= w.n_pad[:, None]).double()
    with torch.no_grad():
        state = enc(feats.reshape(B * T, F)).reshape(B, T, -1).double() * real[..., None]
    sd = dict(state_dict_of(base.model))
    sd["state_embedding.weight"] = torch.zeros(c.d_model, F)  # replaced by the encoder's output below
    edits = {"dt.hook_state_embed": lambda _x: state, **(edits or {})}
    return reference_run(sd, mcfg, feats, w.rtgs, w.timesteps, w.actions, layer_norm=c.layer_norm, edits=edits)


@pytest.mark.parametrize("kind", KINDS)
@pytest.mark.parametrize("name", ["lnpre-8tok", "raw-2tok-noLN"])
def test_forward_attribution_ablation_attention_scan_match_plain_torch(kind, name):
    ad, enc, base = encoder_adapter(kind, name)
    w = random_window(ad, seed=4)
    logits, cache = _reference(ad, enc, base, w)
    torch.testing.assert_close(ad.forward(w), logits[:, -1], atol=1e-4, rtol=0)
    at = A.logit_attribution(ad, w, 2, 0)
    ref = float(logits[0, -1, 2] - logits[0, -1, 0])
    assert abs(at.logit_diff - ref) < 1e-4 and abs(float(at.values.sum()) - ref) < 1e-4
    pat = A.attention_patterns(ad, w)
    L = base.cfg.n_layers
    want = torch.cat([cache[f"blocks.{l}.attn.hook_pattern"][0] for l in range(L)]).float()
    np.testing.assert_allclose(pat.values, want.numpy(), atol=1e-5)

    def zero_head(z):
        z = z.clone()
        z[:, :, 1] = 0
        return z

    ab = A.ablate(ad, w, ["L0H1"], 2, 0)
    ab_ref, _ = _reference(ad, enc, base, w, {"blocks.0.attn.hook_z": zero_head})
    np.testing.assert_allclose(ab.logits_after, ab_ref[0, -1].numpy(), atol=1e-4)
    scan = A.rtg_scan(ad, w, 2, 0, rtgs=[-0.5, 0.25, 1.0])
    for i, r in enumerate((-0.5, 0.25, 1.0)):
        lr, _ = _reference(ad, enc, base, w.with_rtg(torch.tensor([r])))
        np.testing.assert_allclose(scan.logits[i], lr[0, -1].numpy(), atol=1e-4)
    st = A.analyze_state(ad, w, (2, 0), rtgs=[0.25])
    np.testing.assert_allclose(st.attribution.values, at.values, atol=1e-5)


@pytest.mark.parametrize("kind", KINDS)
def test_qk_and_ov_in_context_are_derivatives_of_the_plain_forward(kind):
    """1 layer, no LN, R s: the in-context maps are exact derivatives of the score / the head's output."""
    ad, enc, base = encoder_adapter(kind, "raw-2tok-noLN")
    w = random_window(ad, seed=5)
    _, cache = _reference(ad, enc, base, w)
    bb, dh, h = ad.backbone, base.cfg.d_head, 1
    W_Q, b_Q = bb.W_Q[0, h].detach().double(), bb.b_Q[0, h].detach().double()
    W_V, W_O = bb.W_V[0, h].detach().double(), bb.W_O[0, h].detach().double()
    k = cache["blocks.0.attn.hook_k"][0, 0, h]  # the RTG token's key
    rest = (cache["dt.hook_time_embed"][0, 0] + cache["hook_pos_embed"][0, 1])
    f = ad.features(w.observations[0, 0][None])[0].double().requires_grad_(True)
    e = copy.deepcopy(enc).double()
    score = ((e(f[None])[0] + rest) @ W_Q + b_Q) @ k / dh ** 0.5
    (g_qk,) = torch.autograd.grad(score, f)
    q = A.qk_map(ad, 0, h, window=w)
    _close(q.flat, g_qk.numpy())
    d = (ad.W_action[2] - ad.W_action[0]).double()
    f2 = f.detach().clone().requires_grad_(True)
    (g_ov,) = torch.autograd.grad(e(f2[None])[0] @ W_V @ W_O @ d, f2)
    o = A.ov_map(ad, 0, h, 2, 0, window=w)
    _close(o.flat, g_ov.numpy())
    assert not q.exact and not o.exact and "Jacobian" in q.terms and "Jacobian" in o.terms


def test_cnn_on_a_small_pixel_observation():
    """A CNN over float pixels [8, 8, 3] in [0, 1]: forward, exact attribution and the Jacobian."""
    schema = ObservationSchema(grid_shape=(8, 8), channel_names=("red", "green", "blue"))
    ad, enc, base = encoder_adapter("cnn", "lnpre-8tok", schema=schema)
    rng = np.random.default_rng(0)
    T = ad.layout.n_timesteps
    obs = rng.random((T, 8, 8, 3)).astype(np.float32)
    w = ad.make_window(obs, np.full(T, 0.5), np.arange(T), rng.integers(0, 3, T - 1))
    logits, _ = _reference(ad, enc, base, w)
    torch.testing.assert_close(ad.forward(w), logits[:, -1], atol=1e-4, rtol=0)
    at = A.logit_attribution(ad, w, 1, 0)
    assert abs(float(at.values.sum()) - float(logits[0, -1, 1] - logits[0, -1, 0])) < 1e-4
    f = ad.features(torch.as_tensor(obs[-1])[None])[0]
    J = _fd_jacobian(enc, f).float()
    assert float((state_jacobian(ad, torch.as_tensor(obs[-1])) - J).abs().max()) <= 1e-5
    p = A.state_embedding_projection(ad, 1, 0, obs=obs[-1])
    assert p.values.shape == (3, 8, 8) and p.channel_names == ("red", "green", "blue")


@pytest.mark.parametrize("kind", KINDS)
def test_policy_map_and_explorer_with_every_panel(kind):
    from dtwidgets.adapters.minigrid_env import MiniGridEnv
    from dtwidgets.compositions import Explorer

    ad, enc, base = encoder_adapter(kind, "lnpre-8tok")
    env = MiniGridEnv()
    env.reset(seed=0)
    pl = A.agent_placements(env)
    pm = A.policy_map(ad, pl, rtg=0.5)
    w = placement_windows(ad, pl, 0.5)  # the map's own windows (one per placement), run in plain torch
    logits, _ = _reference(ad, enc, base, w)
    np.testing.assert_allclose(pm.logits, logits[:, -1].numpy(), atol=1e-4)
    e = Explorer(ad, MiniGridEnv(), coalesce_s=0)
    e.press("ArrowLeft")
    e.press("ArrowUp")
    keys = [getattr(p, "key", "") for p in e.panels]
    assert {"attribution", "ablation", "attention", "circuits", "rtg_scan", "policy_map", "circuits2"} <= set(keys)
    for k in keys:
        e.show_panel(k)
        assert e.error.value == "", (k, e.error.value)
    np.testing.assert_allclose(e.prefs.logits, e.session.logits().numpy(), atol=1e-6)
    circ = e.show_panel("circuits")
    assert "Jacobian" in circ.emb_note.value  # the panel says the map is the encoder's Jacobian here
    assert "Jacobian" in e.show_panel("circuits2").virtual_note.value


@pytest.mark.parametrize("kind", KINDS)
def test_spaces_and_parameters_without_w_state(kind):
    """The state-embedding PCA of observations uses the encoder's outputs; without observations it says to
    pass them; parameter statistics leave out the W_state the model does not have."""
    from dtwidgets.analysis.parameters import named_weights
    from dtwidgets.analysis.spaces import embedding_pca, embedding_vectors

    ad, enc, _ = encoder_adapter(kind)
    obs = np.stack([_obs(s) for s in range(6)])
    vecs, labels = embedding_vectors(ad, "state", obs)
    with torch.no_grad():
        want = enc(raw_to_features(torch.as_tensor(obs), False))
    np.testing.assert_allclose(vecs.numpy(), want.numpy(), atol=1e-5)
    assert labels == [f"state {i}" for i in range(6)]
    np.testing.assert_allclose(embedding_pca(ad, "state", obs, n_components=2).mean, want.mean(0).numpy(), atol=1e-5)
    with pytest.raises(UnsupportedByModel, match="nonlinear: pass values= observations"):
        embedding_pca(ad, "state")
    names = [n for n, _ in named_weights(ad)]
    assert "W_state" not in names and "W_pos" in names

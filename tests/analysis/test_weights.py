"""Weight-level views against TransformerLens' own composition scores and plain torch from the
reference-layout weights (materialised matrices, torch.linalg.svd)."""
from __future__ import annotations

import numpy as np
import pytest
import torch

from dtwidgets.adapters import TrajectoryWindow
from dtwidgets.analysis.weights import composition_scores, head_svd, virtual_weights
from dtwidgets.model.checkpoint import state_dict_of
from tests.analysis.helpers import CONFIGS, make_adapter, random_window

MULTI = ["ln-gated-onehot-26tok", "lnpre-8tok", "ln-3layers-linear-time-5tok", "noLN-gated-gelu-26tok"]


def _sd(a):
    return {k: v.double() for k, v in state_dict_of(a.model).items()}


@pytest.mark.parametrize("name", MULTI)
def test_composition_scores_equal_transformer_lens_and_plain_torch(name):
    a = make_adapter(**CONFIGS[name])
    r = composition_scores(a)
    L, H = a.cfg.n_layers, a.cfg.n_heads
    for mode in ("q", "k", "v"):
        tl = a.backbone.all_composition_scores(mode.upper())
        tl = getattr(tl, "scores", tl).detach().reshape(L * H, L * H).numpy()
        np.testing.assert_allclose(getattr(r, mode), tl, atol=1e-5)
    sd = _sd(a)
    blk = lambda l, n: sd[f"transformer.blocks.{l}.attn.{n}"]  # noqa: E731
    for (l1, h1), (l2, h2) in [((0, 0), (1, H - 1)), ((0, 1), (L - 1, 0)), ((L - 2, H - 1), (L - 1, 1))]:
        OV1 = blk(l1, "W_V")[h1] @ blk(l1, "W_O")[h1]
        QK2 = blk(l2, "W_Q")[h2] @ blk(l2, "W_K")[h2].T
        OV2 = blk(l2, "W_V")[h2] @ blk(l2, "W_O")[h2]
        i, j = l1 * H + h1, l2 * H + h2
        for mode, M in (("q", QK2), ("k", QK2.T), ("v", OV2)):
            want = float(torch.linalg.norm(OV1 @ M) / torch.linalg.norm(OV1) / torch.linalg.norm(M))
            assert abs(getattr(r, mode)[i, j] - want) < 1e-5
    assert (r.q.reshape(L, H, L, H)[:, :, 0] == 0).all()  # nothing composes into layer 0
    assert r.q.max() > 0


@pytest.mark.parametrize("name", ["raw-2tok-noLN", "ln-gated-onehot-26tok"])
def test_head_svd_against_plain_torch(name):
    a = make_adapter(**CONFIGS[name])
    sd = _sd(a)
    l, h = a.cfg.n_layers - 1, 1
    p = f"transformer.blocks.{l}.attn."
    E = sd["state_embedding.weight"].T  # [n_features, d]
    if a.cfg.layer_norm:
        E = E - E.mean(-1, keepdim=True)
    if a.cfg.layer_norm == "LN":
        E = E * sd[f"transformer.blocks.{l}.ln1.w"]
    Wa = sd["action_predictor.weight"] * (sd["transformer.ln_final.w"] if a.cfg.layer_norm == "LN" else 1)
    if a.cfg.layer_norm:  # ln_final centres its input: r . centre(u) == centre(r) . u
        Wa = Wa - Wa.mean(-1, keepdim=True)
    for kind, M in (("ov", sd[p + "W_V"][h] @ sd[p + "W_O"][h]), ("qk", sd[p + "W_Q"][h] @ sd[p + "W_K"][h].T)):
        r = head_svd(a, l, h, kind, k=2)
        U, S, Vt = torch.linalg.svd(M)
        dh = a.cfg.d_model // a.cfg.n_heads
        np.testing.assert_allclose(r.singular_values, S[:dh].numpy(), rtol=1e-4, atol=1e-5)
        for i in range(2):  # singular vectors are defined up to sign
            got = r.input_maps[i].reshape(-1)
            want = (E @ U[:, i]).numpy()
            sign = np.sign(got @ want)
            np.testing.assert_allclose(got, sign * want, atol=1e-4)
            if kind == "ov":
                np.testing.assert_allclose(r.output_actions[i], sign * (S[i] * Wa @ Vt[i]).numpy(), atol=1e-4)
            else:
                np.testing.assert_allclose(r.output_maps[i].reshape(-1), sign * (E @ Vt[i]).numpy(), atol=1e-4)


def test_virtual_weights_are_the_direct_path_effects_without_ln():
    """1-layer, no LN, R s layout: adding feature i to the state token changes its value vector by
    W_state[:, i] W_V, so the logits (via that head, per unit attention on the state token) move by
    the virtual weight; checked against plain torch from the weights."""
    a = make_adapter(**CONFIGS["raw-2tok-noLN"])
    sd = _sd(a)
    p = "transformer.blocks.0."
    vw = virtual_weights(a, "L0H1")
    want = (sd["state_embedding.weight"].T @ sd[p + "attn.W_V"][1] @ sd[p + "attn.W_O"][1] @ sd["action_predictor.weight"].T).T
    np.testing.assert_allclose(vw.flat, want.numpy(), atol=1e-5)
    assert vw.values.shape == (a.n_actions, 3, 7, 7) and vw.path == "state → L0H1 OV → action"
    n = 5
    nw = virtual_weights(a, f"L0N{n}")
    out = sd[p + "mlp.W_out"][n] @ sd["action_predictor.weight"].T
    inp = sd["state_embedding.weight"].T @ sd[p + "mlp.W_in"][:, n]
    np.testing.assert_allclose(nw.neuron_output, out.numpy(), atol=1e-5)
    np.testing.assert_allclose(nw.flat, (out[:, None] * inp[None]).numpy(), atol=1e-5)
    with pytest.raises(ValueError, match="a head .* or a neuron"):
        virtual_weights(a, "L0MLP")
    with pytest.raises(ValueError, match="kind 'qk' or 'ov'"):
        head_svd(a, 0, 0, "vo")


def _frozen_ln_linear(plain, v, pre, ref):
    """The linear part of LayerNorm ``pre`` at the scale of ``ref``: ln(v) - ln(0), both frozen at ref."""
    return plain.ln(v, pre, scale_of=ref) - plain.ln(torch.zeros_like(v), pre, scale_of=ref)


@pytest.mark.parametrize("name", ["ln-gated-onehot-26tok", "lnpre-8tok"])
@pytest.mark.parametrize("n_states", [1, 3])
def test_virtual_weights_with_ln_scales_frozen_on_states_equal_plain_torch(name, n_states):
    """With LN: a feature's path through head OV / a neuron to the logits, the LN scales taken from a
    plain-torch forward of each state (at the prediction token) and the per-state maps averaged."""
    from tests.analysis.test_path_patching import Plain

    a = make_adapter(**CONFIGS[name])
    sd, plain = _sd(a), Plain(a)
    wins = [random_window(a, seed=10 + i) for i in range(n_states)]
    states = TrajectoryWindow.cat(wins)
    l, h, n = a.cfg.n_layers - 1, 1, 7
    p = f"transformer.blocks.{l}."
    E = sd["state_embedding.weight"].T  # [n_features, d]
    Wa = sd["action_predictor.weight"]
    heads, neurons, outs = [], [], []
    for w in wins:
        _, _, resid = plain.run(w)
        x_in, x_mid, x_fin = resid[l][-1], plain.mid[l][-1], resid[-1][-1]
        read = lambda r: _frozen_ln_linear(plain, r, "transformer.ln_final", x_fin) @ Wa.T  # noqa: E731
        e1 = _frozen_ln_linear(plain, E, p + "ln1", x_in)
        heads.append(read(e1 @ sd[p + "attn.W_V"][h] @ sd[p + "attn.W_O"][h]).T)
        pre = _frozen_ln_linear(plain, E, p + "ln2", x_mid) @ sd[p + "mlp.W_in"][:, n]  # [n_features]
        out = read(sd[p + "mlp.W_out"][n])  # [A]
        neurons.append(out[:, None] * pre[None])
        outs.append(out)
    vw = virtual_weights(a, f"L{l}H{h}", states=states)
    np.testing.assert_allclose(vw.flat, torch.stack(heads).mean(0).numpy(), rtol=1e-4, atol=1e-5)
    assert vw.ln == f"LN scales frozen at their values on {n_states} state(s)" and vw.ln_scales["n_states"] == n_states
    nw = virtual_weights(a, f"L{l}N{n}", states=states)
    np.testing.assert_allclose(nw.flat, torch.stack(neurons).mean(0).numpy(), rtol=1e-4, atol=1e-5)
    np.testing.assert_allclose(nw.neuron_output, torch.stack(outs).mean(0).numpy(), rtol=1e-4, atol=1e-5)
    unit = virtual_weights(a, f"L{l}H{h}")  # scales held at 1: the same map up to the mean 1 / (s_in s_final)
    assert unit.ln.startswith("LN scales held at 1") and unit.ln_scales is None
    np.testing.assert_allclose(unit.flat * vw.ln_scales["factor"], vw.flat, rtol=1e-4, atol=1e-6)


def test_virtual_weights_without_ln_ignore_states():
    a = make_adapter(**CONFIGS["raw-2tok-noLN"])
    vw = virtual_weights(a, "L0H0", states=random_window(a, seed=1))
    assert vw.ln == "exact (no LayerNorm)" and vw.ln_scales is None
    np.testing.assert_allclose(vw.flat, virtual_weights(a, "L0H0").flat)

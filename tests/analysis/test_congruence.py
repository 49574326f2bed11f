"""Neuron congruence against einsums written here on the checkpoint's reference-layout weights
(W_out · W_action, W_out[l] · W_in[l+1], gate vs value cosines of gated MLPs)."""
from __future__ import annotations

import numpy as np
import pytest
import torch

from dtwidgets.analysis.congruence import neuron_congruence
from tests.analysis.helpers import CONFIGS, make_adapter
from tests.analysis.ref_cache import reference_weights


def _cos(a, b):
    return a @ b / (np.linalg.norm(a) * np.linalg.norm(b))


@pytest.mark.parametrize("name", ["ln-gated-onehot-26tok", "noLN-gated-gelu-26tok", "ln-3layers-linear-time-5tok",
                                  "raw-2tok-noLN"])
def test_congruence_against_einsum(name):
    a = make_adapter(**CONFIGS[name])
    sd = reference_weights(a)
    L, gated, ln = a.cfg.n_layers, a.cfg.gated_mlp, a.cfg.layer_norm
    blk = lambda l, w: sd[f"transformer.blocks.{l}.mlp.{w}"]  # noqa: E731
    Wa = sd["action_predictor.weight"]  # [A, d]
    U = Wa * sd["transformer.ln_final.w"] if ln == "LN" else Wa
    if ln:
        U = U - U.mean(-1, keepdim=True)  # ln_final centres what it reads
    got, raw = neuron_congruence(a), neuron_congruence(a, fold_ln=False)
    for l in range(L):
        np.testing.assert_allclose(got.out_action[l], torch.einsum("nd,ad->na", blk(l, "W_out"), U).numpy(), atol=1e-5)
        np.testing.assert_allclose(raw.out_action[l], torch.einsum("nd,ad->na", blk(l, "W_out"), Wa).numpy(), atol=1e-5)
        for n in (0, 7, 63):
            for act in (0, a.n_actions - 1):
                assert got.out_action_cos[l, n, act] == pytest.approx(_cos(blk(l, "W_out")[n].numpy(), Wa[act].numpy()), abs=1e-5)
                assert got.in_action_cos[l, n, act] == pytest.approx(_cos(blk(l, "W_in")[:, n].numpy(), Wa[act].numpy()), abs=1e-5)
        if l + 1 < L:
            np.testing.assert_allclose(got.out_next_in[l], (blk(l, "W_out") @ blk(l + 1, "W_in")).numpy(), atol=1e-5)
            if gated:
                np.testing.assert_allclose(got.out_next_gate[l], (blk(l, "W_out") @ blk(l + 1, "W_gate")).numpy(), atol=1e-5)
        if gated:
            want = [_cos(blk(l, "W_gate")[:, n].numpy(), blk(l, "W_in")[:, n].numpy()) for n in range(a.cfg.d_mlp)]
            np.testing.assert_allclose(got.gate_value_cos[l], want, atol=1e-5)
            assert got.gate_action_cos[l, 5, 1] == pytest.approx(_cos(blk(l, "W_gate")[:, 5].numpy(), Wa[1].numpy()), abs=1e-5)
    assert (got.out_next_in is None) == (L == 1)
    assert (got.gate_value_cos is None) == (not gated) and (got.out_next_gate is None) == (not gated or L == 1)
    best = got.top("forward", k=3)
    flat = np.abs(got.out_action[:, :, a.action_index("forward")]).reshape(-1)
    assert [abs(v) for _, v in best] == pytest.approx(sorted(flat, reverse=True)[:3], abs=1e-6)
    if gated:
        x, y = got.gating_by_congruence("forward")
        assert x.shape == y.shape == (L, a.cfg.d_mlp)
    else:
        with pytest.raises(ValueError, match="not gated"):
            got.gating_by_congruence(0)


def test_congruence_on_the_reference_checkpoint(reference_adapter):
    a = reference_adapter
    sd = reference_weights(a)
    got = neuron_congruence(a, fold_ln=False)
    for l in range(a.cfg.n_layers):
        want = torch.einsum("nd,ad->na", sd[f"transformer.blocks.{l}.mlp.W_out"], sd["action_predictor.weight"])
        np.testing.assert_allclose(got.out_action[l], want.numpy(), atol=1e-5)
    assert got.out_action.shape == (a.cfg.n_layers, a.cfg.d_mlp, a.n_actions)

"""Residual projection onto component outputs against the independent plain-torch forward's cache
(z @ W_O per head, post * W_out per neuron, mlp_out, and the residual itself), computed here."""
from __future__ import annotations

import numpy as np
import pytest
import torch

from dtwidgets.adapters import TrajectoryWindow, hooks
from dtwidgets.analysis.projection import residual_projection
from tests.analysis.helpers import CONFIGS, make_adapter, random_window
from tests.analysis.ref_cache import reference_cache, reference_weights


@pytest.mark.parametrize("name", ["ln-gated-onehot-26tok", "ln-3layers-linear-time-5tok"])
def test_projection_against_plain_torch_cache(name):
    a = make_adapter(**CONFIGS[name])
    w = TrajectoryWindow.cat([random_window(a, seed=s) for s in range(3)])
    ref, sd = reference_cache(a, w), reference_weights(a)
    L = a.cfg.n_layers
    p = a.layout.prediction_position
    comps = ["L0H1", f"L{L - 1}H0", "L0MLP", "L1N5", "L0N3"]
    got = residual_projection(a, w, comps, clusters={"pair": ["L0N3", "L1N5"]})
    r = ref[hooks.resid_post(L - 1)][:, p]
    W_O = lambda l: sd[f"transformer.blocks.{l}.attn.W_O"]  # noqa: E731
    W_out = lambda l: sd[f"transformer.blocks.{l}.mlp.W_out"]  # noqa: E731
    outs = [ref[hooks.hook_z(0)][:, p, 1] @ W_O(0)[1], ref[hooks.hook_z(L - 1)][:, p, 0] @ W_O(L - 1)[0],
            ref[hooks.mlp_out(0)][:, p], ref[hooks.mlp_post(1)][:, p, 5, None] * W_out(1)[5],
            ref[hooks.mlp_post(0)][:, p, 3, None] * W_out(0)[3]]
    outs.append(outs[3] + outs[4])
    for k, o in enumerate(outs):
        dot, n = (r * o).sum(-1), o.norm(dim=-1)
        dead = n == 0  # a neuron that does not fire writes nothing: 0 by definition
        want_p = torch.where(dead, 0.0, dot / n).numpy()
        want_c = torch.where(dead, 0.0, dot / (n * r.norm(dim=-1))).numpy()
        np.testing.assert_allclose(got.projection[:, k], want_p, rtol=1e-4, atol=1e-4)
        np.testing.assert_allclose(got.cosine[:, k], want_c, atol=1e-5)
        np.testing.assert_allclose(got.output_norm[:, k], o.norm(dim=-1).numpy(), rtol=1e-4, atol=1e-5)
    assert (np.abs(got.projection) > 1e-3).sum() >= 10  # most entries are not the zero convention
    np.testing.assert_allclose(got.resid_norm, r.norm(dim=-1).numpy(), rtol=1e-5)
    assert got.labels == comps + ["pair"] and got.kinds == ["head", "head", "mlp", "neuron", "neuron", "cluster"]
    # another residual point and position
    mid = residual_projection(a, w, ["L0H0"], hook=hooks.resid_mid(0), position=1)
    o = ref[hooks.hook_z(0)][:, 1, 0] @ W_O(0)[0]
    rr = ref[hooks.resid_mid(0)][:, 1]
    np.testing.assert_allclose(mid.projection[:, 0], ((rr * o).sum(-1) / o.norm(dim=-1)).numpy(), rtol=1e-4, atol=1e-4)
    default = residual_projection(a, w)
    assert len(default.labels) == L * a.cfg.n_heads + L


def test_projection_refuses_bad_input():
    a = make_adapter(**CONFIGS["lnpre-8tok"])
    w = random_window(a)
    with pytest.raises(ValueError, match="clusters"):
        residual_projection(a, w, clusters={"c": ["L0H1"]})
    with pytest.raises(ValueError, match="hook"):
        residual_projection(a, w, ["L0H0"], hook=hooks.mlp_post(0))
    with pytest.raises(ValueError, match="position"):
        residual_projection(a, w, ["L0H0"], position=-1)
    with pytest.raises(ValueError, match="component"):
        residual_projection(a, w, ["L9H0"])

"""Neuron views: shares equal post * (W_out read through the cached ln_final scale), activations equal
an independent plain-torch MLP from the weights, output weights equal W_out · W_action."""
from __future__ import annotations

import numpy as np
import pytest
import torch

from dtwidgets.adapters import TrajectoryWindow
from dtwidgets.analysis.neurons import top_neurons
from dtwidgets.model.checkpoint import state_dict_of
from tests.analysis.helpers import CONFIGS, make_adapter, random_window


@pytest.mark.parametrize("name", ["raw-2tok-noLN", "lnpre-8tok"])
def test_top_neurons_against_plain_torch(name):
    a = make_adapter(**CONFIGS[name])
    w = random_window(a, seed=3)
    states = TrajectoryWindow.cat([random_window(a, seed=s) for s in range(4)])
    v = top_neurons(a, w, "forward", "left", k=5, states=states)
    sd = {k: x.double() for k, x in state_dict_of(a.model).items()}
    L = a.cfg.n_layers
    _, cache = a.run_with_cache(w)  # residual inputs only; the MLP itself is recomputed here
    p = a.layout.prediction_position
    Wd = sd["action_predictor.weight"][a.action_index("forward")] - sd["action_predictor.weight"][a.action_index("left")]
    final = cache[f"blocks.{L - 1}.hook_resid_post"][0, p].double()
    scale = 1.0
    if a.cfg.layer_norm:
        c = final - final.mean()
        scale = float(torch.sqrt((c ** 2).mean() + 1e-5))
    want = {}
    for l in range(L):
        pre = f"transformer.blocks.{l}."
        x = cache[f"blocks.{l}.hook_resid_mid"][0, p].double()
        if a.cfg.layer_norm:
            x = x - x.mean()
            x = x / torch.sqrt((x ** 2).mean() + 1e-5)
        post = torch.relu(x @ sd[pre + "mlp.W_in"] + sd[pre + "mlp.b_in"])
        Wo = sd[pre + "mlp.W_out"]
        if a.cfg.layer_norm:
            Wo = Wo - Wo.mean(-1, keepdim=True)
        for n in range(post.shape[0]):
            want[f"L{l}N{n}"] = (float(post[n] * (Wo[n] @ Wd) / scale), float(post[n]))
    best = sorted(want, key=lambda k: -abs(want[k][0]))[:5]
    assert v.labels == best
    np.testing.assert_allclose(v.attribution, [want[k][0] for k in best], atol=1e-4)
    np.testing.assert_allclose(v.activation, [want[k][1] for k in best], atol=1e-4)
    for i, lab in enumerate(v.labels):
        l, n = map(int, lab[1:].split("N"))
        Wa = sd["action_predictor.weight"]
        Wa = Wa - Wa.mean(-1, keepdim=True) if a.cfg.layer_norm else Wa  # ln_final centres what it reads
        np.testing.assert_allclose(v.output_actions[i], (sd[f"transformer.blocks.{l}.mlp.W_out"][n] @ Wa.T).numpy(), atol=1e-5)
    assert v.state_activations.shape == (5, 4)
    np.testing.assert_allclose(v.state_activations[:, 3], top_neurons(a, random_window(a, seed=3), "forward", "left", k=5).activation, atol=1e-5)

"""An Explorer on an attention-only model (the protocol-only adapter around a TransformerLens backbone with
``attn_only=True``: no MLP hooks at all). It opens, every tab is shown without an error, the numbers that
exist are checked against the model's own forward (heads ablated by a plain hook) and plain torch from the
weights, and the MLP-only parts say why they are empty."""
from __future__ import annotations

import numpy as np
import pytest
import torch

from dtwidgets.adapters.minigrid_env import MiniGridEnv
from dtwidgets.compositions import Explorer
from dtwidgets.model.checkpoint import state_dict_of
from tests.analysis.helpers import CONFIGS, make_adapter
from tests.compositions.test_space_panels import _attn_only_adapter, _windows

PAIR = ("forward", "right")



def _logit_diff(logits: torch.Tensor, ad) -> float:
    a, b = (ad.action_names.index(n) for n in PAIR)
    return float(logits[0, a] - logits[0, b])


def _mean_head(mean: torch.Tensor, h: int):
    """A hook setting head ``h``'s ``z`` to ``mean [P, H, d_head]`` (position-wise)."""
    def hook(z, hook=None):
        z = z.clone()
        z[:, :, h] = mean[None, :, h]
        return z
    return hook


def _explorer(ad, refs=None):
    e = Explorer(ad, MiniGridEnv(), coalesce_s=0, pair=PAIR, reference_windows=_windows(ad, 10) if refs is None else refs)
    assert e.error.value == "", e.error.value
    return e


def test_every_tab_opens_on_a_model_without_mlp():
    ad = _attn_only_adapter()
    assert not any(n.endswith(("mlp.hook_post", "resid_mid")) for n in ad.backbone.hook_dict)  # no MLP module
    assert not any(hasattr(block, "mlp") and block.mlp is not None for block in ad.backbone.blocks)
    e = _explorer(ad)
    keys = e.ui.panels.keys()
    assert {"attribution", "ablation", "attention", "spaces", "congruence", "nmf"} <= set(keys)
    for key in keys:
        e.show_panel(key)
        e.press("ArrowLeft")
        assert e.error.value == "", f"{key}: {e.error.value}"
    assert all(e.ui.panels.is_built(i) for i in range(len(keys)))


def test_head_numbers_are_the_models_own_and_mlp_parts_say_why_they_are_empty():
    ad = _attn_only_adapter()
    refs = _windows(ad, 10)
    e = _explorer(ad, refs)
    e.press("ArrowLeft")
    window = e.session.window()
    clean = ad.forward(window)
    ld = _logit_diff(clean, ad)
    L, H = ad.backbone.cfg.n_layers, ad.backbone.cfg.n_heads
    heads = [f"L{l}H{h}" for l in range(L) for h in range(H)]

    p = e.show_panel("ablation")  # each head mean-ablated alone (means over the reference windows) == the
    assert list(p.overview.labels) == heads and "mean-ablated" in p.overview.title  # model's forward, z[:, :, h] = mean
    _, ref_cache = ad.run_with_cache(refs, names_filter=lambda n: n.endswith("attn.hook_z"))
    means = [ref_cache[f"blocks.{l}.attn.hook_z"].double().mean(0).float() for l in range(L)]
    want = [_logit_diff(ad.run_with_hooks(window, [(f"blocks.{l}.attn.hook_z", _mean_head(means[l], h))]), ad) - ld
            for l in range(L) for h in range(H)]
    np.testing.assert_allclose(p.overview.values[0], want, atol=1e-4)

    p = e.show_panel("attribution")  # direct shares: z W_O read through ln_final (LNPre, cached scale) along W_a − W_b
    pos = ad.layout.prediction_position
    sd = {k: v.double() for k, v in state_dict_of(make_adapter(**CONFIGS["lnpre-8tok"]).model).items()}  # the head
    W_O = [ad.backbone.blocks[l].attn.W_O.detach().double() for l in range(L)]  # the backbone's own heads
    names = [f"blocks.{l}.attn.hook_z" for l in range(L)] + ["ln_final.hook_scale"]
    _, cache = ad.run_with_cache(window, names_filter=lambda n: n in names)
    a, b = (ad.action_names.index(n) for n in PAIR)
    u = sd["action_predictor.weight"][a] - sd["action_predictor.weight"][b]
    u = u - u.mean()
    scale = float(cache["ln_final.hook_scale"][0, pos, 0])
    share = [float(cache[f"blocks.{l}.attn.hook_z"][0, pos, h].double() @ W_O[l][h] @ u)
             / scale for l in range(L) for h in range(H)]
    labels = list(p.bars.labels)
    assert not any("MLP" in s for s in labels)
    got = [float(p.bars.values[0][labels.index(h)]) for h in heads]
    np.testing.assert_allclose(got, share, atol=1e-4)
    assert abs(float(p.bars.values[0].sum()) - ld) < 1e-4  # the shares add up to the model's logit difference
    assert list(p.lens.labels) == ["embeddings"] + [f"L{l} attn" for l in range(L)]  # no MLP checkpoints
    assert abs(float(p.lens.values[0][-1]) - ld) < 1e-4  # the last checkpoint is the model's output
    assert "no MLP" in p.neuron_note.value and p.neurons.layout.display == "none"
    assert p.neuron_controls.layout.display == "none"

    p = e.show_panel("congruence")
    assert "no MLP neurons" in p.note.value and p.heatmap.layout.display == "none"
    p = e.show_panel("nmf")
    assert all("mlp" not in h and "resid_mid" not in h for h in p.hook.options)
    p = e.show_panel("spaces")
    assert all("mlp" not in h and "resid_mid" not in h for _, h in p.hook.options)
    assert e.error.value == ""

"""SAE splices and feature edits at ``hook_resid_mid`` act on the residual stream (TL 3.9's meaning) under
both TransformerLens majors: ``spliced_logits`` / ``edited_logits`` equal the plain-torch forward of
``tests/reference_forward.py`` with the same replacement at ``resid_mid``, where every later layer reads it.
(TL 4.3's bridge maps ``hook_resid_mid`` onto ``ln2.hook_in``: without ``dtwidgets.adapters.hooks`` the
replacement reached the MLP only.)"""
from __future__ import annotations

import pytest
import torch

from dtwidgets.model.checkpoint import state_dict_of
from dtwidgets.sae import SAEConfig, SparseAutoencoder, edited_logits, spliced_logits
from dtwidgets.sae.attribution import feature_edit_hooks
from dtwidgets.sae.hooks import hook_names, hook_site, replace_hook
from tests.analysis.helpers import CONFIGS, make_adapter, random_window
from tests.reference_forward import raw_to_features, reference_run


def _adapter(name):
    if name == "demo-post":
        from dtwidgets.demo import load_demo

        return load_demo("post")[0]
    return make_adapter(**CONFIGS[name])


def _reference_logits(adapter, w, hook, fn):
    """Logits ``[B, A]`` of the plain-torch forward with the hook function ``fn`` applied at ``hook``."""
    cfg = adapter.cfg
    feats = raw_to_features(w.observations, cfg.one_hot_obs)
    mcfg = {"d_model": cfg.d_model, "n_heads": cfg.n_heads, "n_layers": cfg.n_layers}
    return reference_run(state_dict_of(adapter.model), mcfg, feats, w.rtgs, w.timesteps, w.actions,
                         act_fn=cfg.act_fn, layer_norm=cfg.layer_norm, gated=cfg.gated_mlp,
                         time_type=cfg.time_embedding_type, edits={hook: lambda x: fn(x, None)})[0][:, -1]


@pytest.mark.parametrize("name", ["demo-post", "ln-gated-onehot-26tok"])
def test_splice_and_feature_edit_at_resid_mid_reach_the_residual_stream(name):
    a = _adapter(name)
    w = random_window(a, seed=5)
    clean = a.forward(w)
    for l in range(a.cfg.n_layers):
        hook = f"blocks.{l}.hook_resid_mid"
        assert hook in hook_names(a)
        sae = SparseAutoencoder(SAEConfig(a.cfg.d_model, 24, k=4, hook_name=hook, token="state"), seed=l)
        with torch.no_grad():
            sae.b_dec.normal_(0, 0.3, generator=torch.Generator().manual_seed(l))
        site, pos = hook_site(a, hook), a.layout.positions("state")
        spliced = spliced_logits(a, sae, w)
        _, fn = replace_hook(site, pos, lambda x: sae(x))
        want = _reference_logits(a, w, hook, fn)
        assert (want - clean).abs().max() > 1e-2, "the splice must matter"
        torch.testing.assert_close(spliced, want, atol=2e-4, rtol=0)
        edits = {0: 2.5, 3: 0.0}
        got = edited_logits(a, sae, w, edits)
        ((hname, efn),) = feature_edit_hooks(a, sae, edits)
        want = _reference_logits(a, w, hname, efn)
        assert (want - clean).abs().max() > 1e-3, "the feature edit must matter"
        torch.testing.assert_close(got, want, atol=2e-4, rtol=0)

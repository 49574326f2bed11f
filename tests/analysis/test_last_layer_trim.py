"""The last layer's MLP runs on the prediction position only (``analysis._tokens``): the results are
those of the untrimmed run, the row-0 cache marks what it did not compute, and a backbone on which
the trim would change the last position is detected and run in full."""
from __future__ import annotations

import numpy as np
import pytest
import torch

from dtwidgets.adapters.last_position import computed_after_cut
from dtwidgets.analysis import _tokens, analyze_state, rtg_scan
from dtwidgets.analysis.extras import Lens, Neurons
from tests.analysis.helpers import CONFIGS, independent_logits, make_adapter, random_window


def _fields(s):
    return {"logits": s.logits, "attribution": s.attribution.values, "per_source": s.attribution.per_source,
            "neurons": s.attribution.neuron_values, "ablations": s.ablations.logits, "scan": s.rtg_scan.logits,
            "scan_contrib": s.rtg_scan.contributions, "scan_attn": s.rtg_scan.attention_to_rtg,
            "attention": s.attention.values, "lens": s.lens.values, "acts": s.neuron_activations}


@pytest.mark.parametrize("name", ["ln-gated-onehot-26tok", "noLN-gated-gelu-26tok", "lnpre-8tok",
                                  "ln-3layers-linear-time-5tok", "raw-2tok-noLN"])
def test_trimmed_bundle_equals_the_untrimmed_run(name, monkeypatch):
    a = make_adapter(**CONFIGS[name])
    w = random_window(a, seed=3)
    trimmed = analyze_state(a, w, ("forward", "left"), [Neurons(), Lens()])
    assert _tokens._TRIM_OK[a.backbone] is True
    monkeypatch.setattr(_tokens, "_trim_checked", lambda *args: False)
    full = analyze_state(a, w, ("forward", "left"), [Neurons(), Lens()])
    tol = 1e-5 * max(1, float(np.abs(full.logits).max()))
    for key, want in _fields(full).items():
        np.testing.assert_allclose(_fields(trimmed)[key], want, atol=tol, err_msg=key)


def test_row0_cache_after_the_trim_is_nan_except_at_the_last_position():
    a = make_adapter(**CONFIGS["ln-gated-onehot-26tok"])
    w = random_window(a, seed=1)
    tokens, dt = _tokens.replicated_tokens(a, w, 2, torch.tensor([0.0, 1.0]))
    names = ["blocks.1.hook_resid_mid", "blocks.1.mlp.hook_post", "blocks.1.hook_mlp_out", "blocks.1.hook_resid_post",
             "ln_final.hook_scale", "blocks.1.attn.hook_z", "blocks.0.hook_mlp_out"]
    with torch.inference_mode():
        logits, full, last = _tokens.run_tokens_with_cache(a, tokens, dt, names, full_rows=1)
        _, plain = a.run_with_cache(w, names_filter=names)
    P = a.layout.n_tokens
    for n in names:
        assert full[n].shape == plain[n].shape, n
        after = computed_after_cut(n, 2)
        assert after == (n.startswith("blocks.1.") and "attn" not in n or n.startswith("ln_final")), n
        np.testing.assert_allclose(full[n][0, -1], plain[n][0, -1], atol=1e-5, err_msg=n)
        np.testing.assert_allclose(last[n][1, -1], full[n][0, -1], atol=1e-5, err_msg=n)  # row 1: a copy of row 0
        assert torch.isnan(full[n][0, :P - 1]).all() == after, n
    np.testing.assert_allclose(logits[:2], a.forward(w).expand(2, -1), atol=1e-5)
    np.testing.assert_allclose(logits[3], a.forward(w.with_rtg(1.0))[0], atol=1e-5)


def test_a_backbone_the_trim_would_change_is_run_in_full():
    """A (permanent) hook mixing positions after the last layer's MLP: trimming would change the last
    position, so the once-per-backbone check refuses it and the scan still equals plain forwards."""
    a = make_adapter(**CONFIGS["ln-gated-onehot-26tok"], seed=7)
    hp = a.backbone.hook_dict["blocks.1.hook_resid_post"]
    hp.add_hook(lambda t, hook: t + t.mean(1, keepdim=True), is_permanent=True)
    try:
        w = random_window(a, seed=2)
        s = rtg_scan(a, w, "forward", "left", rtgs=[-1.0, 0.3, 1.0])
        assert _tokens._TRIM_OK[a.backbone] is False
        for i, r in enumerate((-1.0, 0.3, 1.0)):
            np.testing.assert_allclose(s.logits[i], a.forward(w.with_rtg(r))[0].numpy(), atol=1e-5)
        assert not np.allclose(s.logits[2], independent_logits(a, w.with_rtg(1.0))[0].numpy(), atol=1e-3)  # the hook acts
    finally:
        hp.remove_hooks(including_permanent=True)


def test_a_backbone_that_cannot_run_the_trim_is_run_in_full():
    """A permanent hook after the trim that insists on every position (it raises on a shortened
    sequence): the check refuses the trim instead of failing, and the scan equals plain forwards."""
    a = make_adapter(**CONFIGS["lnpre-8tok"], seed=8)
    P = a.layout.n_tokens

    def strict(t, hook):
        if t.shape[1] != P:
            raise RuntimeError(f"expected {P} positions, got {t.shape[1]}")
        return t

    hp = a.backbone.hook_dict["blocks.1.hook_mlp_out"]
    hp.add_hook(strict, is_permanent=True)
    try:
        w = random_window(a, seed=4)
        s = rtg_scan(a, w, "forward", "left", rtgs=[-1.0, 0.5])
        assert _tokens._TRIM_OK[a.backbone] is False
        for i, r in enumerate((-1.0, 0.5)):
            np.testing.assert_allclose(s.logits[i], independent_logits(a, w.with_rtg(r))[0].numpy(), atol=1e-4)
    finally:
        hp.remove_hooks(including_permanent=True)


def test_the_trim_is_a_declared_capability():
    """Only an adapter that declares ``last_position_trim`` gets the shortened last layer: the protocol-only
    adapter (which does not) runs every position, with the same numbers."""
    from tests.protocol.test_minimal_adapter import pair

    shipped, minimal = pair("ln-gated-onehot-26tok")
    assert shipped.last_position_trim is True and not hasattr(minimal, "last_position_trim")
    w = random_window(shipped, seed=2)
    tokens, _ = _tokens.replicated_tokens(shipped, w, 1, torch.tensor([0.5]))
    L = shipped.cfg.n_layers
    assert _tokens._trim_checked(shipped, tokens, (), L) is True
    assert _tokens._trim_checked(minimal, tokens, (), L) is False
    a = analyze_state(shipped, w, ("forward", "left"))
    b = analyze_state(minimal, w, ("forward", "left"))
    np.testing.assert_allclose(a.ablations.logits, b.ablations.logits, atol=1e-5)
    np.testing.assert_allclose(a.rtg_scan.logits, b.rtg_scan.logits, atol=1e-5)

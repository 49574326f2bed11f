"""analyze_state == the separate analyses it bundles."""
from __future__ import annotations

import numpy as np
import pytest
import torch

from dtwidgets.analysis import (analyze_state, attention_patterns, logit_attribution, mean_activations, rtg_scan,
                                single_component_ablations)
from dtwidgets.analysis.extras import Lens, Neurons
from tests.analysis.helpers import CONFIGS, make_adapter, random_window


@pytest.mark.parametrize("name", ["ln-gated-onehot-26tok", "raw-2tok-noLN", "noLN-gated-gelu-26tok"])
def test_bundle_equals_separate_analyses(name):
    a = make_adapter(**CONFIGS[name])
    w = random_window(a, seed=4)
    s = analyze_state(a, w, ("forward", "left"), [Neurons()])
    tol = 1e-5 * max(1, float(np.abs(s.logits).max()))
    at = logit_attribution(a, w, "forward", "left", per_neuron=True)
    assert s.attribution.labels == at.labels
    np.testing.assert_allclose(s.attribution.values, at.values, atol=tol)
    np.testing.assert_allclose(s.attribution.per_source, at.per_source, atol=tol)
    np.testing.assert_allclose(s.attribution.neuron_values, at.neuron_values, atol=tol)
    ab = single_component_ablations(a, w, "forward", "left")
    assert s.ablations.labels == ab.labels
    np.testing.assert_allclose(s.ablations.logits, ab.logits, atol=tol)
    np.testing.assert_allclose(s.ablations.delta_logit_diff, ab.delta_logit_diff, atol=tol)
    sc = rtg_scan(a, w, "forward", "left")
    assert s.rtg_scan.logits.shape == (101, a.n_actions)
    np.testing.assert_allclose(s.rtg_scan.logits, sc.logits, atol=tol)
    np.testing.assert_allclose(s.rtg_scan.contributions, sc.contributions, atol=tol)
    np.testing.assert_allclose(s.rtg_scan.attention_to_rtg, sc.attention_to_rtg, atol=1e-6)
    np.testing.assert_allclose(s.attention.values, attention_patterns(a, w).values, atol=1e-6)
    np.testing.assert_allclose(s.logits, a.forward(w)[0].numpy(), atol=tol)
    assert abs(s.probs.sum() - 1) < 1e-6


def test_bundle_mean_ablation_and_custom_grid():
    a = make_adapter(**CONFIGS["lnpre-8tok"])
    w = random_window(a)
    means = mean_activations(a, random_window(a, seed=9).repeat(3))
    s = analyze_state(a, w, ("forward", None), rtgs=[0.0, 0.5], ablation_mode="mean", means=means)
    ab = single_component_ablations(a, w, "forward", mode="mean", means=means)
    np.testing.assert_allclose(s.ablations.logits, ab.logits, atol=1e-5)
    assert s.rtg_scan.rtgs.tolist() == [0.0, 0.5] and s.ablations.mode == "mean"


def test_non_additive_tokens_fall_back_to_embedding_every_row():
    """An adapter whose tokens are not ``embed_rtg + embed_time`` (here: squashed by a tanh) is
    detected, and the bundle embeds every row through the adapter: still equal to the separate
    analyses and to its own forward."""
    from dtwidgets.analysis._tokens import replicated_tokens
    from tests.protocol.test_minimal_adapter import pair

    _, m = pair("ln-gated-onehot-26tok")
    w = random_window(m, seed=5)
    assert replicated_tokens(m, w, 2, torch.tensor([0.0, 0.5])) is not None
    m.embed = lambda window, f=m.embed: torch.tanh(f(window))  # type: ignore[method-assign]
    try:
        assert replicated_tokens(m, w, 2, torch.tensor([0.0, 0.5])) is None
        s = analyze_state(m, w, ("forward", "left"))
        sc = rtg_scan(m, w, "forward", "left")
        np.testing.assert_allclose(s.rtg_scan.logits, sc.logits, atol=1e-5)
        np.testing.assert_allclose(s.logits, m.forward(w)[0].numpy(), atol=1e-5)
        np.testing.assert_allclose(s.rtg_scan.logits[-1], m.forward(w.with_rtg(1.0))[0].numpy(), atol=1e-5)
    finally:
        del m.embed


@pytest.mark.parametrize("name", ["demo-post", "ln-gated-onehot-26tok", "non-additive"])
def test_bundle_lens_equals_logit_lens_and_a_fresh_run(name):
    """``lens=True``: the logit lens and the neuron activations read from the bundle's one forward
    (row 0 of the batch) equal ``logit_lens`` and a fresh one-row run, also on the fallback path that
    embeds every row (tokens that are not additive)."""
    from dtwidgets.analysis._tokens import replicated_tokens
    from dtwidgets.demo import load_demo
    from tests.protocol.test_minimal_adapter import pair

    if name == "demo-post":
        a = load_demo("post")[0]
    elif name == "non-additive":
        a = pair("ln-gated-onehot-26tok")[1]
        a.embed = lambda window, f=a.embed: torch.tanh(f(window))  # type: ignore[method-assign]
        assert replicated_tokens(a, random_window(a, seed=6), 2, torch.tensor([0.0])) is None
    else:
        a = make_adapter(**CONFIGS[name])
    try:
        _check_lens(a)
    finally:
        if name == "non-additive":
            del a.embed  # as the test above: a patched minimal adapter left alive breaks later pair() checks


def _check_lens(a):
    from dtwidgets.analysis import logit_lens
    from dtwidgets.analysis._common import n_layers

    w = random_window(a, seed=6)
    s = analyze_state(a, w, ("forward", "right"), [Neurons(), Lens()])
    with torch.inference_mode():
        lens = logit_lens(a, w, "forward", "right")
        pos = a.layout.prediction_position
        _, cache = a.run_with_cache(w, names_filter=lambda n: n.endswith("mlp.hook_post"))
        acts = np.stack([cache[f"blocks.{l}.mlp.hook_post"][0, pos].numpy() for l in range(n_layers(a))])
    assert s.lens is not None and s.neuron_activations is not None
    assert s.lens.labels == lens.labels and s.lens.pair_label == lens.pair_label and s.lens.position == pos
    tol = 1e-5 * max(1, float(np.abs(lens.values).max()))
    np.testing.assert_allclose(s.lens.values, lens.values, atol=tol)
    assert s.neuron_activations.shape == acts.shape == (n_layers(a), acts.shape[1])
    np.testing.assert_allclose(s.neuron_activations, acts, atol=1e-5 * max(1, float(np.abs(acts).max())))
    assert s.lens.values[-1] == pytest.approx(s.attribution.logit_diff, abs=tol)
    plain = analyze_state(a, w, ("forward", "right"))
    assert plain.lens is None and plain.neuron_activations is None
    np.testing.assert_allclose(plain.rtg_scan.logits, s.rtg_scan.logits, atol=1e-6)  # the extras change nothing else
    np.testing.assert_allclose(plain.ablations.logits, s.ablations.logits, atol=1e-6)

"""Single-component ablations run from their own layer (the optional ``run_from_layer`` capability):
the numbers are those of the full-forward path (every row through the whole backbone, what a
protocol-only adapter runs), and a layer-``l`` row never runs the layers below ``l``."""
from __future__ import annotations

import numpy as np
import pytest
import torch

from dtwidgets.adapters import TrajectoryWindow
from dtwidgets.adapters import hooks as hk
from dtwidgets.analysis import _tokens, analyze_state, mean_activations, single_component_ablations
from dtwidgets.model.adapter import DTAdapter, run_blocks_from
from tests.analysis.helpers import CONFIGS, independent_logits, make_adapter, random_window

THREE_LAYERS = {
    "3L-ln-5tok": CONFIGS["ln-3layers-linear-time-5tok"],
    "3L-ln-gated-onehot-26tok": dict(n_layers=3, n_heads=4, d_model=32, d_mlp=64, n_ctx=26, layer_norm="LN",
                                     gated=True, one_hot=True, n_actions=7),
}


def _every_component(a) -> list[str]:
    L, H = a.cfg.n_layers, a.cfg.n_heads
    return [f"L{l}H{h}" for l in range(L) for h in range(H)] + [f"L{l}MLP" for l in range(L)] + \
        [f"L{l}N{n}" for l in range(L) for n in (0, 5)]


def _both_paths(a, w, mode, means, monkeypatch):
    """``(fast, full)``: analyze_state and single_component_ablations (every head, MLP and two neurons
    a layer) with ``run_from_layer``, then with the adapter's class stripped of it."""
    def run():
        s = analyze_state(a, w, ("forward", "left"), ablation_mode=mode, means=means)
        single = single_component_ablations(a, w, "forward", "left", components=_every_component(a), mode=mode,
                                            means=means)
        return s.ablations, single

    fast = run()
    assert all(_tokens._FROM_OK[a.backbone].values()), "the run from a layer was refuted on our own model"
    with monkeypatch.context() as m:
        m.delattr(DTAdapter, "run_from_layer")
        assert not _tokens.can_run_from_layer(a)
        full = run()
    return fast, full


def _check_equal(fast, full):
    for f, g in zip(fast, full):
        tol = 1e-5 * max(1.0, float(np.abs(g.logits).max()))
        assert f.labels == g.labels
        np.testing.assert_allclose(f.logits, g.logits, atol=tol)
        np.testing.assert_allclose(f.logit_diff, g.logit_diff, atol=2 * tol)
        np.testing.assert_allclose(f.baseline_logits, g.baseline_logits, atol=tol)


def _means(a):
    return mean_activations(a, TrajectoryWindow.cat([random_window(a, seed=s) for s in range(10, 14)]))


@pytest.mark.parametrize("mode", ["zero", "mean"])
def test_demo_model_from_layer_equals_full_forward(reference_adapter, mode, monkeypatch):
    a = reference_adapter
    w = random_window(a, seed=4)
    fast, full = _both_paths(a, w, mode, _means(a) if mode == "mean" else None, monkeypatch)
    _check_equal(fast, full)


@pytest.mark.parametrize("mode", ["zero", "mean"])
@pytest.mark.parametrize("name", list(THREE_LAYERS))
def test_three_layer_model_from_layer_equals_full_forward(name, mode, monkeypatch):
    a = make_adapter(seed=5, **THREE_LAYERS[name])
    w = random_window(a, seed=6)
    fast, full = _both_paths(a, w, mode, _means(a) if mode == "mean" else None, monkeypatch)
    _check_equal(fast, full)
    assert not np.allclose(fast[1].logits, fast[1].baseline_logits[None], atol=1e-3)  # the ablations act


def test_run_from_layer_continues_the_clean_run_and_matches_an_independent_forward():
    a = make_adapter(seed=1, **THREE_LAYERS["3L-ln-gated-onehot-26tok"])
    w = random_window(a, seed=2)
    want = independent_logits(a, w)[0]
    with torch.inference_mode():
        _, cache = a.run_with_cache(w, names_filter=[hk.resid_pre(l) for l in range(3)])
        for l in range(3):
            out = a.run_from_layer(cache[hk.resid_pre(l)], l)
            np.testing.assert_allclose(a.model.head(out)[0, -1], want, atol=1e-4 * max(1, float(want.abs().max())))
    with pytest.raises(ValueError, match="expected a layer in"):
        a.run_from_layer(cache[hk.resid_pre(0)], 3)


def _rows_per_layer(a, fn) -> dict[int, list[int]]:
    """``{layer: [rows of each batch that ran it]}`` while ``fn()`` runs, from hooks on
    ``blocks.{l}.hook_resid_pre`` (each block's input, once per batch on both TransformerLens majors)."""
    seen: dict[int, list[int]] = {l: [] for l in range(a.cfg.n_layers)}

    def counter(l):
        def count(t, hook):
            seen[l].append(int(t.shape[0]))
        return count

    with hk.attached(a.backbone, [(hk.resid_pre(l), counter(l)) for l in range(a.cfg.n_layers)]):
        fn()
    return seen


def test_a_layer_l_ablation_row_runs_no_layer_below_l():
    a = make_adapter(seed=3, **THREE_LAYERS["3L-ln-gated-onehot-26tok"])
    H, R = a.cfg.n_heads, 5
    w = random_window(a, seed=1)
    analyze_state(a, w, ("forward", "left"), rtgs=np.linspace(-1, 1, R))  # the first run checks each layer
    seen = _rows_per_layer(a, lambda: analyze_state(a, w.with_rtg(0.2), ("forward", "left"),
                                                    rtgs=np.linspace(-1, 1, R)))
    main = 1 + (H + 1) + R  # clean row, layer 0's heads and MLP, the RTG scan: the one full forward
    assert seen == {0: [main], 1: [main, H + 1], 2: [main, H + 1, H]}  # layer 2's MLP: read off the clean run
    seen = _rows_per_layer(a, lambda: single_component_ablations(a, w.with_rtg(0.3), components=["L2H1", "L1N3",
                                                                                                  "L1H0", "L2MLP"]))
    assert seen == {0: [1], 1: [1, 2], 2: [1, 2, 2]}  # the clean run, then layer 1's two rows, layer 2's two


def test_a_wrong_run_from_layer_is_refuted_and_the_rows_run_in_full(monkeypatch):
    """An adapter whose ``run_from_layer`` does not continue the clean run (here it reverses the residual vectors):
    the check row of the first run catches it and every row runs the whole window instead."""
    a = make_adapter(seed=9, **THREE_LAYERS["3L-ln-5tok"])
    w = random_window(a, seed=3)
    monkeypatch.setattr(DTAdapter, "run_from_layer", lambda self, resid, layer: run_blocks_from(self.backbone,
                                                                                                resid.flip(-1), layer))
    got = single_component_ablations(a, w, "forward", "left")
    assert _tokens._FROM_OK[a.backbone] == {0: False, 1: False, 2: False}
    monkeypatch.delattr(DTAdapter, "run_from_layer")
    want = single_component_ablations(a, w, "forward", "left")
    np.testing.assert_allclose(got.logits, want.logits, atol=1e-5 * max(1, float(np.abs(want.logits).max())))

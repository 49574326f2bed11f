"""Ablation by hooks == the same model with those weights zeroed, run by an independent forward."""
from __future__ import annotations

import numpy as np
import pytest

from dtwidgets.adapters import TrajectoryWindow
from dtwidgets.analysis import ablate, ablation_hooks, mean_activations, single_component_ablations
from dtwidgets.model.checkpoint import state_dict_of
from tests.analysis.helpers import CONFIGS, independent_logits, make_adapter, random_window


def _zeroed(sd, comps):
    sd = {k: v.clone() for k, v in sd.items()}
    for kind, l, i in comps:
        p = f"transformer.blocks.{l}."
        if kind == "head":  # z -> 0 removes the head's whole output (b_V included); b_O is shared and stays
            sd[p + "attn.W_O"][i] = 0
        elif kind == "mlp":
            sd[p + "mlp.W_out"][:] = 0
            sd[p + "mlp.b_out"][:] = 0
        else:
            sd[p + "mlp.W_out"][i] = 0
    return sd


@pytest.mark.parametrize("name", list(CONFIGS))
def test_zero_ablation_equals_zeroed_weights(name):
    a = make_adapter(**CONFIGS[name])
    w = random_window(a)
    sd = state_dict_of(a.model)
    L = a.cfg.n_layers
    cases = {
        ("L0H1",): [("head", 0, 1)],
        (f"L{L - 1}MLP",): [("mlp", L - 1, None)],
        ("L0N5",): [("neuron", 0, 5)],
        ("L0H0", f"L{L - 1}H1", "L0MLP", f"L{L - 1}N7"): [("head", 0, 0), ("head", L - 1, 1), ("mlp", 0, None),
                                                          ("neuron", L - 1, 7)],
    }
    for comps, edits in cases.items():
        got = ablate(a, w, comps, "forward", "left")
        want = independent_logits(a, w, _zeroed(sd, edits))[0].numpy()
        np.testing.assert_allclose(got.logits_after, want, atol=2e-5 * max(1, np.abs(want).max()))
        np.testing.assert_allclose(got.probs_after.sum(), 1, atol=1e-6)
        assert abs(got.contributions_after.sum() - got.logit_diff_after) < 1e-5 * max(1, np.abs(got.contributions_after).sum())
        if comps == ("L0H1",):  # the ablated head's own direct share is gone
            assert got.contributions_after[got.labels.index("L0H1")] == 0


@pytest.mark.parametrize("name", ["ln-gated-onehot-26tok", "raw-2tok-noLN", "lnpre-8tok"])
def test_single_component_ablations_batched_equals_one_at_a_time(name):
    a = make_adapter(**CONFIGS[name])
    w = random_window(a, seed=2)
    s = single_component_ablations(a, w, "forward", "left")
    L, H = a.cfg.n_layers, a.cfg.n_heads
    assert s.labels == [f"L{l}H{h}" for l in range(L) for h in range(H)] + [f"L{l}MLP" for l in range(L)]
    assert s.probs.shape == (L * H + L, a.n_actions)
    sd = state_dict_of(a.model)
    for k, label in enumerate(s.labels):
        kind = "mlp" if label.endswith("MLP") else "head"
        l = int(label[1])
        want = independent_logits(a, w, _zeroed(sd, [(kind, l, None if kind == "mlp" else int(label[3:]))]))[0]
        np.testing.assert_allclose(s.logits[k], want.numpy(), atol=2e-5 * max(1, float(want.abs().max())))
    np.testing.assert_allclose(s.delta_logit_diff, s.logit_diff - s.baseline_logit_diff, atol=1e-6)


def test_mean_ablation_uses_the_reference_mean():
    a = make_adapter(**CONFIGS["ln-gated-onehot-26tok"])
    w = random_window(a)
    # the mean over a reference set made of the window itself changes nothing
    same = single_component_ablations(a, w, mode="mean", means=mean_activations(a, w))
    np.testing.assert_allclose(same.logits, np.broadcast_to(same.baseline_logits, same.logits.shape), atol=1e-5)
    # over two windows: the ablated activations are their position-wise mean
    refs = TrajectoryWindow.cat([random_window(a, seed=5), random_window(a, seed=6)])
    means = mean_activations(a, refs, batch_size=1)
    _, c = a.run_with_cache(refs)
    for name in ("blocks.1.attn.hook_z", "blocks.0.hook_mlp_out", "blocks.1.mlp.hook_post"):
        np.testing.assert_allclose(means[name].numpy(), c[name].mean(0).numpy(), atol=1e-6)
    hooks = ablation_hooks(a, [(None, "L1H2"), (None, "L0MLP")], 1, "mean", means)
    from dtwidgets.analysis._common import run_with_cache
    _, ca = run_with_cache(a, w, None, fwd_hooks=hooks)
    np.testing.assert_allclose(ca["blocks.1.attn.hook_z"][0, :, 2].numpy(), means["blocks.1.attn.hook_z"][:, 2].numpy(), atol=1e-6)
    np.testing.assert_allclose(ca["blocks.0.hook_mlp_out"][0].numpy(), means["blocks.0.hook_mlp_out"].numpy(), atol=1e-6)
    r = ablate(a, w, ["L1H2"], mode="mean", means=means)
    assert r.mode == "mean" and not np.allclose(r.logits_after, r.logits_before)


def test_ablation_errors():
    a = make_adapter(**CONFIGS["raw-2tok-noLN"])
    w = random_window(a)
    for bad, msg in (("L0H9", "expected a head in"), ("L3MLP", "expected a layer in"), ("head0", "expected a component like")):
        with pytest.raises(ValueError, match=msg):
            ablate(a, w, [bad])
    with pytest.raises(ValueError, match="needs means"):
        ablate(a, w, ["L0H0"], mode="mean")
    with pytest.raises(ValueError, match="one-row window"):
        single_component_ablations(a, w.repeat(2))


def test_ablate_with_shared_baseline_equals_full_run():
    """The Explorer passes the shared analysis' clean attribution; the result must be the same."""
    from dtwidgets.analysis.bundle import analyze_state

    name = sorted(CONFIGS)[0]
    a = make_adapter(**CONFIGS[name])
    w = random_window(a, seed=2)
    st = analyze_state(a, w, (0, 1))
    full = ablate(a, w, ["L0H0"], 0, 1)
    shared = ablate(a, w, ["L0H0"], 0, 1, baseline=st.attribution)
    assert shared.labels == full.labels
    for f in ("logits_before", "logits_after", "probs_before", "probs_after", "contributions_before",
              "contributions_after"):
        np.testing.assert_allclose(getattr(shared, f), getattr(full, f), atol=1e-5, err_msg=f)
    assert abs(shared.logit_diff_before - full.logit_diff_before) < 1e-5

"""Every analysis, the panels and the Explorer run on an HF Decision Transformer, with exact sums.

Independent references are the HF model itself: head ablation == zeroing that head's rows of
``c_proj`` in HF; attention patterns == HF's eager ``attentions``; RTG scan logits == HF forwards.
"""
from __future__ import annotations

import copy

import numpy as np
import pytest
import torch

from dtwidgets import analysis as A
from dtwidgets.model.hf import load_hf_decision_transformer
from tests.hf.helpers import ENV, hf_inputs, hf_model, hf_scores, real_windows, train_briefly


@pytest.fixture(scope="module", params=[False, True], ids=["plain", "tanh"])
def setup(request):
    model = hf_model(seed=11, n_layer=2, n_head=2, activation_function="gelu", action_tanh=request.param)
    probe = load_hf_decision_transformer(model, env_id=ENV, n_timesteps=4)
    model, _ = train_briefly(model, real_windows(probe, 64, seed=12), steps=30)
    adapter = load_hf_decision_transformer(model, env_id=ENV, n_timesteps=4)
    w = real_windows(adapter, 12, seed=13)
    full = w.index(int(torch.nonzero(w.n_pad == 0)[0, 0]))
    padded = w.index(int(torch.nonzero(w.n_pad > 0)[0, 0]))
    return model, adapter, full, padded


def _tol(logits) -> float:
    return 1e-5 * max(1.0, float(np.abs(np.asarray(logits)).max()))


@pytest.mark.parametrize("which", ["full", "padded"])
def test_attribution_sums_and_matches_hf(setup, which):
    model, adapter, full, padded = setup
    w = full if which == "full" else padded
    r = A.logit_attribution(adapter, w, "forward", "right", per_neuron=True)
    z = hf_scores(model, w)[0][0].numpy()
    tol = _tol(z)
    assert abs(r.logit_diff - (z[2] - z[1])) < tol  # the decomposed quantity is HF's pre-activation difference
    assert abs(r.values.astype(np.float64).sum() - r.logit_diff) < tol
    heads = np.array([r.value(h) for h in r.head_labels])
    np.testing.assert_allclose(r.per_source.sum(1), heads, atol=tol)
    np.testing.assert_allclose(r.source_terms.sum(-1), r.per_source[: 2], atol=tol)
    mlps = np.array([r.value(f"L{l}MLP") for l in range(2)])
    np.testing.assert_allclose(r.neuron_values.sum(1) + r.mlp_bias_values, mlps, atol=tol)
    if which == "padded":  # padded tokens get no attention, so no share
        n_tok = 3 * int(w.n_pad[0])
        assert np.abs(r.per_source[:, :n_tok]).max() == 0
    lens = A.logit_lens(adapter, w, "forward", "right")
    assert abs(lens.values[-1] - r.logit_diff) < tol


def test_head_ablation_equals_zeroed_head_in_hf(setup):
    model, adapter, full, padded = setup
    for w in (full, padded):
        res = A.ablate(adapter, w, ["L1H0"], "forward", "right")
        m = copy.deepcopy(model)
        with torch.no_grad():
            m.encoder.h[1].attn.c_proj.weight[:16] = 0  # head 0's rows (d_head = 16)
        np.testing.assert_allclose(res.logits_after, hf_scores(m, w)[0][0].numpy(), atol=1e-5)
        np.testing.assert_allclose(res.logits_before, hf_scores(model, w)[0][0].numpy(), atol=1e-5)
    s = A.single_component_ablations(adapter, padded, "forward", "right")
    assert s.labels == ["L0H0", "L0H1", "L1H0", "L1H1", "L0MLP", "L1MLP"]
    np.testing.assert_allclose(s.logits[s.labels.index("L1H0")], res.logits_after, atol=1e-5)
    means = A.mean_activations(adapter, real_windows(adapter, 16, seed=3))
    assert A.ablate(adapter, padded, ["L0MLP"], mode="mean", means=means).logits_after.shape == (3,)


def test_attention_equals_hf_eager_attentions(setup):
    model, adapter, full, padded = setup
    m = copy.deepcopy(model)
    m.config._attn_implementation = "eager"
    for w in (full, padded):
        with torch.no_grad():
            out = m(**hf_inputs(w), output_attentions=True)
        ours = A.attention_patterns(adapter, w).values  # [L*H, P, P]
        P = ours.shape[-1]
        ref = torch.cat([a[0] for a in out.attentions])[:, :P, :P].numpy()  # [L*H, 3T, 3T] -> first P
        first = 3 * int(w.n_pad[0])  # rows of real queries
        np.testing.assert_allclose(ours[:, first:], ref[:, first:], atol=1e-5)


def test_rtg_scan_equals_hf_forwards(setup):
    model, adapter, full, padded = setup
    rtgs = np.array([-0.5, 0.0, 0.4, 0.9], np.float32)
    s = A.rtg_scan(adapter, padded, "forward", "right", rtgs=rtgs)
    ref = hf_scores(model, padded.repeat(4).with_rtg(torch.as_tensor(rtgs)))[0].numpy()
    np.testing.assert_allclose(s.logits, ref, atol=1e-5)
    np.testing.assert_allclose(s.contributions.sum(1), s.logit_diff, atol=_tol(s.logits))
    assert A.rtg_scan(adapter, full, 0).logits.shape == (101, 3)


def test_patching_and_bundle(setup):
    model, adapter, full, padded = setup
    same = A.activation_patching(adapter, full, full, "forward", "right")
    assert np.abs(same.deltas["heads"]).max() < 1e-5
    corrupted = adapter.make_window(full.observations[0].numpy()[::-1].copy(), full.rtgs[0].numpy(),
                                    full.timesteps[0].numpy(), full.actions[0].numpy())
    r = A.activation_patching(adapter, full, corrupted, "forward", "right")
    assert r.resid.shape == (3, adapter.layout.n_tokens)
    np.testing.assert_allclose(r.resid[-1, -1], 1.0, atol=1e-4)  # patching the final residual at the read token
    st = A.analyze_state(adapter, padded, ("forward", "right"), [A.extras.Neurons()])
    at = A.logit_attribution(adapter, padded, "forward", "right", per_neuron=True)
    np.testing.assert_allclose(st.attribution.values, at.values, atol=_tol(st.logits))
    np.testing.assert_allclose(st.logits, adapter.forward(padded)[0].numpy(), atol=1e-5)


def test_circuits_in_context_and_state_projection(setup):
    _, adapter, full, padded = setup
    for w in (full, padded):
        q = A.qk_map(adapter, 1, 0, window=w)
        o = A.ov_map(adapter, 0, 1, "forward", "right", window=w)
        assert q.values.shape == o.values.shape == (3, 7, 7) and np.isfinite(q.flat).all() and np.isfinite(o.flat).all()
    o = A.ov_map(adapter, 0, 0, "forward", "right")
    p = A.state_embedding_projection(adapter, "forward", "right")
    assert o.values.shape == p.values.shape == (3, 7, 7)
    d = (adapter.W_action[2] - adapter.W_action[1]) * adapter.backbone.ln_final.w.detach()  # forward − right, ln_f folded
    np.testing.assert_allclose(p.flat, (d @ adapter.W_state).numpy(), atol=1e-6)


def test_weight_only_qk_map(setup):
    _, adapter, _, _ = setup
    assert A.qk_map(adapter, 0, 0, "rtg", 0.5).values.shape == (3, 7, 7)


def test_rtg_and_time_projections(setup):
    """Along forward − right (ln_f weight folded): C(embed_return(r)) and C(embed_timestep[t]) from HF's modules."""
    model, adapter, _, _ = setup
    g = model.embed_ln.weight.detach()
    C = lambda v: g * (v - v.mean(-1, keepdim=True))  # noqa: E731
    d = (adapter.W_action[2] - adapter.W_action[1]) * adapter.backbone.ln_final.w.detach()
    rp = A.rtg_embedding_projection(adapter, "forward", "right")
    with torch.no_grad():
        ref = C(model.embed_return(torch.as_tensor(rp.rtgs)[:, None])) @ d
        np.testing.assert_allclose(rp.values, ref.numpy(), atol=1e-5)
        tp = A.time_embedding_projection(adapter, "forward", "right", timesteps=[0, 1, 2])
        np.testing.assert_allclose(tp.values, (C(model.embed_timestep.weight[:3]) @ d).numpy(), atol=1e-5)


def test_explorer_constructs_and_refreshes(setup):
    from dtwidgets.adapters.minigrid_env import MiniGridEnv
    from dtwidgets.compositions import Explorer

    _, adapter, _, _ = setup
    e = Explorer(adapter, MiniGridEnv(ENV), coalesce_s=0)
    assert e.error.value == ""
    np.testing.assert_allclose(e.prefs.logits, e.session.logits().numpy(), atol=1e-6)
    e.buttons[2].click()  # forward
    e.act_button.click()
    e.rtg_slider.value = 0.3
    assert e.error.value == "" and e.session.n_steps == 2
    np.testing.assert_allclose(e.prefs.logits, adapter.forward(e.session.window())[0].numpy(), atol=1e-6)

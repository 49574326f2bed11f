"""Direct logit attribution and the logit lens: exact decompositions, checked against an independent forward."""
from __future__ import annotations

import numpy as np
import pytest
import torch

from dtwidgets.analysis import logit_attribution, logit_lens, preference_direction
from dtwidgets.model.checkpoint import state_dict_of
from tests.analysis.helpers import CONFIGS, independent_logits, make_adapter, random_window


def _tol(values) -> float:
    """1e-5 absolute, plus float32 rounding of a sum of terms of this size."""
    return 1e-5 + 1e-6 * float(np.abs(values).sum())


@pytest.mark.parametrize("name", list(CONFIGS))
@pytest.mark.parametrize("pair", [("forward", "left"), (1, None)])
def test_contributions_sum_to_logit_difference(name, pair):
    a = make_adapter(**CONFIGS[name])
    for seed, n_steps in ((0, None), (1, 1)):  # a full window and a left-padded one
        w = random_window(a, seed=seed, n_steps=n_steps)
        r = logit_attribution(a, w, *pair, per_neuron=True)
        want = independent_logits(a, w)[0].double()
        ia, ib = a.action_index(pair[0]), (None if pair[1] is None else a.action_index(pair[1]))
        diff = float(want[ia] - (want[ib] if ib is not None else 0))
        assert abs(r.logit_diff - diff) < 1e-4
        assert abs(r.total - r.logit_diff) <= _tol(r.values), (r.total, r.logit_diff)
        assert len(r.values) == len(r.labels) == len(r.kinds)
        L, H = a.cfg.n_layers, a.cfg.n_heads
        assert r.kinds.count("head") == L * H and r.kinds.count("mlp") == L and r.kinds.count("attn_bias") == L
        heads = r.values[[i for i, k in enumerate(r.kinds) if k == "head"]]
        mlps = r.values[[i for i, k in enumerate(r.kinds) if k == "mlp"]]
        P = a.layout.n_tokens
        assert r.per_source.shape == (L * H, P) and r.source_terms.shape == (H, P, 4)
        np.testing.assert_allclose(r.per_source.sum(1), heads, atol=_tol(r.per_source))
        np.testing.assert_allclose(r.source_terms.sum(-1), r.per_source[:H], atol=_tol(r.source_terms))
        assert r.neuron_values.shape == (L, a.cfg.d_mlp)
        np.testing.assert_allclose(r.neuron_values.sum(1) + r.mlp_bias_values, mlps, atol=_tol(r.neuron_values))
        # causal: nothing is attended beyond the prediction position (it is the last one)
        assert r.head_labels[:2] == ["L0H0", "L0H1"] and r.source_labels == a.layout.labels()


@pytest.mark.parametrize("name", ["ln-gated-onehot-26tok", "noLN-gated-gelu-26tok", "lnpre-8tok"])
def test_earlier_state_tokens_decompose_their_own_logits(name):
    """The action head reads every state token; attributing an earlier one sums to the independent
    forward's logits there (attention is causal, so later tokens get zero per-source share)."""
    a = make_adapter(**CONFIGS[name])
    w = random_window(a, seed=5)
    cfg = a.cfg
    sd = state_dict_of(a.model)
    from tests.reference_forward import raw_to_features, reference_logits

    all_logits = reference_logits(sd, {"d_model": cfg.d_model, "n_heads": cfg.n_heads, "n_layers": cfg.n_layers},
                                  raw_to_features(w.observations, cfg.one_hot_obs), w.rtgs, w.timesteps, w.actions,
                                  act_fn=cfg.act_fn, layer_norm=cfg.layer_norm, gated=cfg.gated_mlp)[0]
    for step in (0, 1):
        pos = a.layout.state_positions[step]
        r = logit_attribution(a, w, "forward", "left", position=pos)
        assert r.position == pos and r.logits is None
        assert abs(r.total - float(all_logits[step, 2] - all_logits[step, 0])) < 1e-4
        assert np.all(r.per_source[:, pos + 1:] == 0)


def test_head_values_match_independent_head_outputs():
    """No-LN model: head share == (z @ W_O[h]) · (W_a - W_b) with W_O from the reference-layout weights."""
    a = make_adapter(**CONFIGS["noLN-gated-gelu-26tok"])
    w = random_window(a)
    r = logit_attribution(a, w, "forward", "right")
    sd = state_dict_of(a.model)
    d = sd["action_predictor.weight"][2] - sd["action_predictor.weight"][1]
    _, cache = a.run_with_cache(w)
    p = a.layout.prediction_position
    for l in range(a.cfg.n_layers):
        for h in range(a.cfg.n_heads):
            z = cache[f"blocks.{l}.attn.hook_z"][0, p, h]
            want = float(z @ sd[f"transformer.blocks.{l}.attn.W_O"][h] @ d)
            assert abs(r.value(f"L{l}H{h}") - want) < 1e-5
    # the state embedding of the current step, read directly
    feats = a.features(w.observations[0, -1])
    assert abs(r.value("state embed (s₉)") - float(sd["state_embedding.weight"] @ feats @ d)) < 1e-4


def test_ln_final_is_folded_into_the_direction():
    a = make_adapter(**CONFIGS["ln-gated-onehot-26tok"])
    r = logit_attribution(a, random_window(a), "pickup", "drop", per_source=False)
    assert "ln_final.b" in r.labels and "action bias" in r.labels
    sd = state_dict_of(a.model)
    W, b = sd["action_predictor.weight"], sd["action_predictor.bias"]
    assert abs(r.value("ln_final.b") - float(sd["transformer.ln_final.b"] @ (W[3] - W[4]))) < 1e-6
    assert abs(r.value("action bias") - float(b[3] - b[4])) < 1e-6


@pytest.mark.parametrize("name", list(CONFIGS))
def test_logit_lens_ends_at_the_logit_difference(name):
    a = make_adapter(**CONFIGS[name])
    w = random_window(a, seed=3)
    lens = logit_lens(a, w, "forward", "left")
    assert len(lens.values) == 2 * a.cfg.n_layers + 1 and lens.labels[0] == "embeddings"
    diff = logit_attribution(a, w, "forward", "left", per_source=False).logit_diff
    assert abs(lens.values[-1] - diff) < 1e-5 * max(1, abs(diff))


def test_logit_lens_recomputes_layer_norm_per_checkpoint():
    """The first checkpoint is the embeddings alone, normalised with their own statistics."""
    a = make_adapter(**CONFIGS["ln-3layers-linear-time-5tok"])
    w = random_window(a)
    lens = logit_lens(a, w, "forward", "left")
    sd = state_dict_of(a.model)
    _, cache = a.run_with_cache(w)
    x = cache["blocks.0.hook_resid_pre"][0, -1].double()
    x = (x - x.mean()) / ((x - x.mean()).pow(2).mean() + 1e-5).sqrt()
    x = x * sd["transformer.ln_final.w"].double() + sd["transformer.ln_final.b"].double()
    W, b = sd["action_predictor.weight"].double(), sd["action_predictor.bias"].double()
    assert abs(lens.values[0] - float(x @ (W[2] - W[0]) + b[2] - b[0])) < 1e-5


def test_preference_direction_and_errors():
    a = make_adapter(**CONFIGS["raw-2tok-noLN"])
    torch.testing.assert_close(preference_direction(a, "forward", "right").vector, a.W_action[2] - a.W_action[1])
    torch.testing.assert_close(preference_direction(a, 0).vector, a.W_action[0])
    with pytest.raises(ValueError, match="expected an action in"):
        preference_direction(a, "jump", "left")
    with pytest.raises(ValueError, match=r"expected an action index in \[0, 2\]"):
        logit_attribution(a, random_window(a), 5, 0)

"""HFDTAdapter logits equal transformers' DecisionTransformerModel forward (the reference) to 1e-5."""
from __future__ import annotations

import numpy as np
import pytest
import torch

from dtwidgets.model.hf import load_hf_decision_transformer
from tests.hf.helpers import ENV, hf_model, hf_scores, real_windows, train_briefly

ATOL = 1e-5
# several depths / head counts, both activations families, with and without tanh, both state layouts
CASES = {
    "1L1H-relu-tanh": dict(n_layer=1, n_head=1, activation_function="relu", action_tanh=True),
    "2L4H-gelu": dict(n_layer=2, n_head=4, activation_function="gelu", action_tanh=False),
    "3L2H-gelu_new-tanh": dict(n_layer=3, n_head=2, activation_function="gelu_new", action_tanh=True),
}


def _check(model, adapter, windows, **kw):
    z_ref, preds = hf_scores(model, windows, **kw)
    z = adapter.forward(windows)
    assert z.shape == (windows.batch_size, 3)
    assert (windows.n_pad > 0).any() and (windows.n_pad == 0).any()  # padded and full windows
    torch.testing.assert_close(z, z_ref, atol=ATOL, rtol=0)
    if model.config.action_tanh:
        torch.testing.assert_close(torch.tanh(z), preds, atol=ATOL, rtol=0)
        assert adapter.output_activation == "tanh"
    else:
        torch.testing.assert_close(z, preds, atol=ATOL, rtol=0)
        assert adapter.output_activation is None


@pytest.mark.parametrize("name", sorted(CASES))
@pytest.mark.parametrize("randomise", [False, True], ids=["fresh", "randomised"])
def test_logits_equal_hf_forward(name, randomise):
    model = hf_model(seed=1, randomise=randomise, **CASES[name])
    adapter = load_hf_decision_transformer(model, env_id=ENV, n_timesteps=4)
    _check(model, adapter, real_windows(adapter, 40, seed=1))


def test_briefly_trained_with_state_normalisation():
    model = hf_model(seed=2, n_layer=2, n_head=2, activation_function="gelu", action_tanh=False)
    probe = load_hf_decision_transformer(model, env_id=ENV, n_timesteps=5)
    train = real_windows(probe, 96, seed=5)
    states = train.observations.float().reshape(-1, 147)
    mean, std = states.mean(0), states.std(0) + 1e-3
    before = hf_scores(model, train, mean=mean, std=std)[0]
    model, _ = train_briefly(model, train, steps=40, mean=mean, std=std)
    assert (hf_scores(model, train, mean=mean, std=std)[0] - before).abs().max() > 0.1  # training changed the model
    adapter = load_hf_decision_transformer(model, env_id=ENV, n_timesteps=5, state_mean=mean.numpy(), state_std=std)
    _check(model, adapter, real_windows(adapter, 40, seed=9), mean=mean, std=std)
    # the normalisation is honoured: without it the same model gives other scores
    plain = load_hf_decision_transformer(model, env_id=ENV, n_timesteps=5)
    assert (plain.forward(train) - adapter.forward(train)).abs().max() > 1e-2


def test_trained_one_hot_cxy_tanh_with_rtg_scale():
    model = hf_model(seed=3, state_dim=980, n_layer=2, n_head=4, activation_function="relu", action_tanh=True)
    kw = dict(one_hot=True, layout="cxy", rtg_scale=2.0)
    probe = load_hf_decision_transformer(model, env_id=ENV, n_timesteps=3, state_layout="cxy", rtg_scale=2.0)
    assert probe.schema.one_hot and probe.schema.n_features == 980
    model, _ = train_briefly(model, real_windows(probe, 64, seed=4), steps=30, **kw)
    adapter = load_hf_decision_transformer(model, env_id=ENV, n_timesteps=3, state_layout="cxy", rtg_scale=2.0)
    w = real_windows(adapter, 40, seed=8)
    _check(model, adapter, w, **kw)
    # one-hot observations given directly give the same scores as raw codes
    oh = torch.nn.functional.one_hot
    o = w.observations.long()
    w1 = type(w)(torch.cat([oh(o[..., 0], 11), oh(o[..., 1], 6), oh(o[..., 2], 3)], -1), w.actions, w.rtgs, w.timesteps, w.n_pad)
    torch.testing.assert_close(adapter.forward(w1), adapter.forward(w), atol=1e-6, rtol=0)


def test_padding_is_masked_like_hf():
    """Padded steps' contents do not matter (HF masks them); real history does."""
    model = hf_model(seed=4, randomise=True)
    adapter = load_hf_decision_transformer(model, env_id=ENV, n_timesteps=4)
    w = real_windows(adapter, 30, seed=2)
    padded = w.index(torch.nonzero(w.n_pad > 0)[:, 0])
    junk = type(w)(padded.observations.clone(), padded.actions.clone(), padded.rtgs.clone(), padded.timesteps.clone(),
                   padded.n_pad)
    for r in range(junk.batch_size):
        n = int(junk.n_pad[r])
        junk.observations[r, :n] = 2  # walls everywhere in the padded steps
        junk.actions[r, :n] = 1
        junk.timesteps[r, :n] = 7
    torch.testing.assert_close(adapter.forward(junk), adapter.forward(padded), atol=1e-6, rtol=0)
    _, cache = adapter.run_with_cache(padded, names_filter=lambda n: n.endswith("hook_pattern"))
    for l in range(2):
        pat = cache[f"blocks.{l}.attn.hook_pattern"]  # [B, H, P, P]
        torch.testing.assert_close(pat.sum(-1), torch.ones_like(pat.sum(-1)))
        for r in range(padded.batch_size):
            n_tok = 3 * int(padded.n_pad[r])
            assert float(pat[r, :, n_tok:, :n_tok].abs().max()) == 0.0  # real queries never see padding
    adapter.backbone.reset_hooks(including_permanent=True)  # the mask removed: refuse, never answer silently
    with pytest.raises(RuntimeError, match="padding mask ran in 0 of 2 layers"):
        adapter.forward(padded)


def test_embedding_hooks_decompose_embed_ln_exactly():
    """dt.* hooks sum to the token; token + W_pos == HF's embed_ln(stack) + wpe[0] (from HF's modules)."""
    model = hf_model(seed=5, randomise=True, n_layer=1)
    adapter = load_hf_decision_transformer(model, env_id=ENV, n_timesteps=3)
    w = real_windows(adapter, 12, seed=3)
    _, cache = adapter.run_with_cache(w, names_filter=lambda n: n.startswith("dt.") or n == "hook_pos_embed")
    from tests.hf.helpers import hf_inputs

    x = hf_inputs(w)
    with torch.no_grad():
        t = model.embed_timestep(x["timesteps"])
        stack = torch.stack([model.embed_return(x["returns_to_go"]) + t, model.embed_state(x["states"]) + t,
                             model.embed_action(x["actions"]) + t], 2).reshape(w.batch_size, -1, 32)[:, :-1]
        h0 = model.embed_ln(stack) + model.encoder.wpe.weight[0]
    tok = cache["dt.hook_tokens"]
    sigma = (stack.var(-1, unbiased=False, keepdim=True) + model.embed_ln.eps).sqrt()
    torch.testing.assert_close(cache["dt.hook_embed_ln_scale"], sigma, atol=1e-5, rtol=1e-5)
    real = (torch.arange(3)[None] >= w.n_pad[:, None]).repeat_interleave(3, 1)[:, :-1]
    torch.testing.assert_close((tok + cache["hook_pos_embed"])[real], h0[real], atol=1e-5, rtol=0)
    time = cache["dt.hook_time_embed"]
    torch.testing.assert_close(cache["dt.hook_rtg_embed"] + time, tok[:, 0::3])
    torch.testing.assert_close(cache["dt.hook_state_embed"] + time, tok[:, 1::3])
    torch.testing.assert_close(cache["dt.hook_action_embed"] + time[:, :-1], tok[:, 2::3])
    # weight views: C(v) = embed_ln.weight * centre(v), HF order -> dtwidgets (channel, x, y) order
    g = model.embed_ln.weight.detach()
    C = lambda v: g * (v - v.mean(-1, keepdim=True))  # noqa: E731
    W_hf = model.embed_state.weight.detach().T.reshape(7, 7, 3, 32).permute(2, 0, 1, 3).reshape(147, 32)
    torch.testing.assert_close(adapter.W_state.T, C(W_hf), atol=1e-6, rtol=0)
    r = torch.tensor([-1.0, 0.0, 0.5])
    with torch.no_grad():
        torch.testing.assert_close(adapter.embed_rtg(r), C(model.embed_return(r[:, None])), atol=1e-6, rtol=0)
        torch.testing.assert_close(adapter.embed_time(torch.tensor([0, 5])), C(model.embed_timestep.weight[[0, 5]]))
        torch.testing.assert_close(adapter.embed_action(torch.tensor([2, 3])),
                                   C(model.embed_action(torch.tensor([[0.0, 0, 1], [0, 0, 0]]))), atol=1e-6, rtol=0)
    blocks = model.encoder.h
    torch.testing.assert_close(adapter.b_mlp_out, torch.stack([b.mlp.c_proj.bias.detach() for b in blocks]))
    torch.testing.assert_close(adapter.W_action, model.predict_action[0].weight.detach())
    np.testing.assert_allclose(adapter.max_timestep, 127)


def test_single_step_context():
    """n_timesteps=1: the ``R₁ s₁`` layout (no action tokens)."""
    model = hf_model(seed=6, randomise=True, action_tanh=False)
    adapter = load_hf_decision_transformer(model, env_id=ENV, n_timesteps=1)
    assert adapter.layout.n_tokens == 2
    w = real_windows(adapter, 10, seed=4)
    torch.testing.assert_close(adapter.forward(w), hf_scores(model, w)[0], atol=ATOL, rtol=0)

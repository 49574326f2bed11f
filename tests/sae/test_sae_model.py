"""SAEs on the shipped demo models: collection, splicing, shares against plain-torch references, edits, checks."""
from __future__ import annotations

import numpy as np
import pytest
import torch

from dtwidgets.sae import (SAEConfig, SparseAutoencoder, check_hook, collect_activations, edited_logits,
                           feature_shares, hook_names, load_sae, save_sae, spliced_logits, spliced_metrics)


@pytest.fixture(scope="module")
def post():
    from dtwidgets.demo import load_demo

    return load_demo("post")[0]


@pytest.fixture(scope="module")
def onehot():
    from dtwidgets.demo import load_demo

    return load_demo("onehot")[0]


@pytest.fixture(scope="module")
def traj():
    from dtwidgets.data import collect_trajectories

    return collect_trajectories(n_episodes=6, seed=11, policy_mix={"bfs": 1, "suicidal": 1}, progress=False)


def identity_sae(d_in, hook, token="state"):
    """ReLU SAE with features +e_j and -e_j: relu(x) - relu(-x) = x exactly."""
    sae = SparseAutoencoder(SAEConfig(d_in, 2 * d_in, architecture="standard", hook_name=hook, token=token))
    eye = torch.eye(d_in)
    with torch.no_grad():
        sae.W_enc.copy_(torch.cat([eye, -eye], 1))
        sae.W_dec.copy_(torch.cat([eye, -eye], 0))
        sae.b_enc.zero_()
        sae.b_dec.zero_()
    return sae


def random_sae(d_in, hook, d_sae=48, k=6, seed=0, token="state"):
    sae = SparseAutoencoder(SAEConfig(d_in, d_sae, k=k, hook_name=hook, token=token), seed=seed)
    with torch.no_grad():
        sae.b_dec.normal_(0, 0.1, generator=torch.Generator().manual_seed(seed))
    return sae


def windows(adapter, traj, n=64):
    ends = np.linspace(0, traj.n_steps - 1, min(n, traj.n_steps)).astype(int)
    return traj.windows(ends, adapter.layout.n_timesteps, adapter.pad_action)[0]


def test_collection_matches_the_cache_and_keeps_context(post, onehot, traj):
    for adapter, hook, token in [(post, "blocks.0.hook_resid_post", "state"), (onehot, "blocks.1.attn.hook_z", "state"),
                                 (onehot, "blocks.0.mlp.hook_post", "rtg")]:
        st = collect_activations(adapter, traj, hook, token, batch_size=50, progress=False)
        assert len(st) == traj.n_steps and not st.acts.requires_grad
        rows = [0, 7, traj.n_steps - 1]
        w, _ = traj.windows(np.array(rows), adapter.layout.n_timesteps, adapter.pad_action)
        _, cache = adapter.run_with_cache(w)
        pos = adapter.layout.positions(token)[-1]
        want = cache[hook][:, pos].reshape(len(rows), -1)
        assert torch.allclose(st.acts[rows], want, atol=1e-5)
        assert np.array_equal(st.episode[rows], traj.episode_ids()[rows])
        assert np.array_equal(st.step[rows], traj.timesteps[rows])
        assert np.array_equal(st.actions[rows], traj.actions[rows])
        assert np.array_equal(st.observations[rows], traj.observations[rows])
        assert np.allclose(st.rtg[rows], traj.rtg()[rows])


def test_identity_sae_spliced_leaves_logits_unchanged(post, onehot, traj):
    for adapter, hook in [(post, "blocks.0.hook_resid_post"), (post, "blocks.0.hook_resid_pre"),
                          (onehot, "blocks.0.attn.hook_z"), (onehot, "blocks.1.mlp.hook_post")]:
        from dtwidgets.sae.hooks import hook_site

        w = windows(adapter, traj)
        sae = identity_sae(hook_site(adapter, hook).d_in, hook)
        clean = adapter.forward(w)
        assert torch.allclose(spliced_logits(adapter, sae, w), clean, atol=1e-5)
        m = spliced_metrics(adapter, sae, w)
        assert m["action_agreement"] == 1.0 and m["kl"] < 1e-9


def test_splicing_a_random_sae_changes_logits_and_error_term_restores_them(post, traj):
    w = windows(post, traj)
    sae = random_sae(128, "blocks.0.hook_resid_post")
    clean = post.forward(w)
    assert not torch.allclose(spliced_logits(post, sae, w), clean, atol=1e-2)
    assert torch.allclose(spliced_logits(post, sae, w, keep_error=True), clean, atol=1e-4)
    # post: resid_post is the final residual (no LayerNorm), so spliced logits = x_hat @ W_action^T + b
    _, cache = post.run_with_cache(w)
    x = cache["blocks.0.hook_resid_post"][:, -1]
    want = sae(x) @ post.W_action.T + post.b_action
    assert torch.allclose(spliced_logits(post, sae, w), want, atol=1e-4)


def test_feature_shares_sum_to_the_hook_share_post(post, traj):
    sae = random_sae(128, "blocks.0.hook_resid_post", seed=3)
    w = windows(post, traj, 5)
    for r in range(5):
        s = feature_shares(post, sae, w.index(r), "forward", "right")
        total = s.shares.sum() + s.bias_share + s.error_share
        assert total == pytest.approx(s.hook_share, abs=1e-9)
        # independent: the final residual read by the raw head, = logit diff - bias diff
        logits = post.forward(w.index(r))[0].double()
        a, b = post.action_index("forward"), post.action_index("right")
        want = float(logits[a] - logits[b] - (post.b_action[a] - post.b_action[b]))
        assert s.hook_share == pytest.approx(want, abs=1e-4)
        # per feature, from the weights: f_i * W_dec[i] . (W_a - W_b)
        with torch.no_grad():
            f = sae.encode(torch.as_tensor(_final_resid(post, w.index(r))))
        d = (post.W_action[a] - post.W_action[b]).double()
        for i, sh in zip(s.active, s.shares):
            assert sh == pytest.approx(float(f[i] * (sae.W_dec[i].detach().double() @ d)), abs=1e-6)


def _final_resid(adapter, w):
    _, cache = adapter.run_with_cache(w, names_filter=["blocks.0.hook_resid_post"])
    return cache["blocks.0.hook_resid_post"][0, -1]


def test_feature_shares_with_layernorm_and_hook_z(onehot, traj):
    w = windows(onehot, traj, 3)
    a, b = onehot.action_index("forward"), onehot.action_index("left")
    for hook in ("blocks.1.hook_resid_post", "blocks.1.attn.hook_z", "blocks.0.mlp.hook_post"):
        from dtwidgets.sae.hooks import hook_site

        sae = random_sae(hook_site(onehot, hook).d_in, hook, d_sae=64, k=8, seed=5)
        for r in range(3):
            s = feature_shares(onehot, sae, w.index(r), a, b)
            assert s.shares.sum() + s.bias_share + s.error_share == pytest.approx(s.hook_share, abs=1e-9)
            if hook == "blocks.1.hook_resid_post":  # final residual: logit diff - biases - ln_final.b term
                logits = onehot.forward(w.index(r))[0].double()
                dW = (onehot.W_action[a] - onehot.W_action[b]).double()
                ln_b = onehot.backbone.ln_final.b.detach().double()
                want = float(logits[a] - logits[b] - (onehot.b_action[a] - onehot.b_action[b]) - ln_b @ dW)
                assert s.hook_share == pytest.approx(want, abs=1e-4)


def test_edits_zero_and_clamp_against_plain_torch(post, traj):
    sae = random_sae(128, "blocks.0.hook_resid_post", seed=4)
    w = windows(post, traj, 4)
    clean = post.forward(w)
    assert torch.allclose(edited_logits(post, sae, w, {}), clean, atol=1e-4)
    x = _final_resid(post, w.index(0))
    f = sae.encode(x)
    i = int(torch.nonzero(f > 0)[0])
    for value in (0.0, 2.5):
        want_x = x + (value - f[i]) * sae.W_dec[i]
        want = want_x @ post.W_action.T + post.b_action
        got = edited_logits(post, sae, w.index(0), {i: value})[0]
        assert torch.allclose(got, want, atol=1e-4)
    with pytest.raises(ValueError, match=r"feature indices in \[0, 47\]"):
        edited_logits(post, sae, w, {48: 1.0})


def test_mismatched_sae_gives_clear_errors(post, tmp_path):
    bad = random_sae(64, "blocks.0.hook_resid_post")
    with pytest.raises(ValueError, match=r"d_in=64 does not fit hook 'blocks.0.hook_resid_post'.*width 128"):
        check_hook(post, bad)
    save_sae(bad, tmp_path / "bad")
    with pytest.raises(ValueError, match="d_in=64 does not fit"):
        load_sae(tmp_path / "bad", post)
    other = random_sae(128, "blocks.3.hook_resid_post")
    with pytest.raises(ValueError, match=r"expected an SAE hook of this model, one of \[.*blocks.0.hook_resid_pre"):
        check_hook(post, other)
    assert len(hook_names(post)) == 7
    with pytest.raises(ValueError, match="no 'action' token"):
        collect_activations(post, _tiny_traj(), "blocks.0.hook_resid_post", "action", progress=False)


def _tiny_traj():
    from dtwidgets.data import collect_trajectories

    return collect_trajectories(n_episodes=1, seed=0, policy_mix="suicidal", progress=False)


def test_feature_clamp_policy_map_against_plain_torch(post):
    """An SAE feature clamp as a policy-map variant: every placement's logits equal the final
    residual of its own plain run with the feature moved to the clamped value, read by W_action."""
    from dtwidgets.adapters.minigrid_env import MiniGridEnv
    from dtwidgets.analysis import agent_placements, policy_map
    from dtwidgets.analysis.policy_map import placement_windows
    from dtwidgets.sae import feature_edit_hooks

    env = MiniGridEnv("MiniGrid-Dynamic-Obstacles-8x8-v0")
    env.reset(3)
    placements = agent_placements(env)
    sae = random_sae(128, "blocks.0.hook_resid_post", seed=4)
    i, value = 7, 4.0
    clamped = policy_map(post, placements, 0.9, fwd_hooks=feature_edit_hooks(post, sae, {i: value}))
    plain = policy_map(post, placements, 0.9, fwd_hooks=feature_edit_hooks(post, sae, {}))
    w = placement_windows(post, placements, 0.9)
    with torch.no_grad():
        _, cache = post.run_with_cache(w, names_filter=["blocks.0.hook_resid_post"])
        x = cache["blocks.0.hook_resid_post"][:, -1]  # [N, d] at the state token (last position)
        f = sae.encode(x)
        want_x = x + (value - f[:, i:i + 1]) * sae.W_dec[i]
        want = want_x @ post.W_action.T + post.b_action
        plain_want = x @ post.W_action.T + post.b_action
    assert len(placements) > 20
    np.testing.assert_allclose(clamped.logits, want.numpy(), atol=1e-4)
    np.testing.assert_allclose(plain.logits, plain_want.numpy(), atol=1e-4)
    assert np.abs(clamped.logits - plain.logits).max() > 1e-2  # the clamp changes the map

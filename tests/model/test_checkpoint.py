"""Checkpoint loading: the real reference checkpoint and crafted ones of the whole config space,
compared with an independent plain-torch forward (tests/reference_forward.py) to 1e-5."""
from __future__ import annotations

import json
import os

import gymnasium as gym
import minigrid  # noqa: F401  (registers MiniGrid envs)
import numpy as np
import pytest
import torch

from dtwidgets.model import UnsafeCheckpointError, load_checkpoint, load_model, save_model, tl_major
from tests.reference_forward import random_reference_checkpoint, raw_to_features, reference_logits


def real_observations(n=6, seed=0, env_id="MiniGrid-Dynamic-Obstacles-8x8-v0"):
    """n consecutive partial observations of a real episode (random actions), [n, 7, 7, 3] uint8."""
    env = gym.make(env_id, max_steps=1000)
    obs, _ = env.reset(seed=seed)
    rng = np.random.default_rng(seed)
    out = [obs["image"]]
    while len(out) < n:
        obs, _, term, trunc, _ = env.step(int(rng.integers(0, 2)))  # turning never ends the episode
        out.append(obs["image"])
    return np.stack(out)


def test_reference_checkpoint_matches_independent_forward(reference_ckpt_path, reference_adapter):
    a = reference_adapter
    sd = torch.load(reference_ckpt_path, weights_only=True)["model_state_dict"]
    mcfg = json.loads(torch.load(reference_ckpt_path, weights_only=True)["model_config"])
    assert (a.cfg.n_layers, a.cfg.n_heads, a.cfg.n_ctx, a.cfg.one_hot_obs, a.n_actions) == (1, 2, 2, False, 3)
    obs = real_observations(5)
    for i, rtg in enumerate([-1.0, 0.0, 0.5, 0.9, 1.0]):
        w = a.make_window(obs[i], rtg, [i * 7])
        got = a.forward(w)
        want = reference_logits(sd, mcfg, raw_to_features(torch.as_tensor(obs[i])[None, None], False),
                                torch.tensor([[rtg]]), torch.tensor([[i * 7]]), torch.zeros(1, 0, dtype=torch.long))[:, -1]
        torch.testing.assert_close(got, want, atol=1e-5, rtol=0)


def test_reference_checkpoint_published_logits(reference_adapter):
    """Logits published with the reference notes (an independent forward, seed-0 reset obs)."""
    env = gym.make("MiniGrid-Dynamic-Obstacles-8x8-v0", max_steps=1000)
    img = env.reset(seed=0)[0]["image"]
    got = reference_adapter.forward(reference_adapter.make_window(img, 1.0, [0]))
    torch.testing.assert_close(got, torch.tensor([[-0.2121, -0.1219, 0.3778]]), atol=1e-4, rtol=0)


CONFIGS = {
    "raw-2tok": dict(n_ctx=2, n_layers=1, n_heads=2, n_actions=3),
    "ln-gated-onehot-26tok": dict(n_ctx=26, layer_norm="LN", gated=True, one_hot=True, n_actions=7),
    "lnpre-8tok": dict(n_ctx=8, layer_norm="LNPre", n_actions=3),
    "gated-gelu-raw-26tok": dict(n_ctx=26, gated=True, act_fn="gelu", n_actions=7),
    "ln-linear-time-3layers": dict(n_ctx=11, n_layers=3, layer_norm="LN", time_type="linear", n_actions=3),
    "onehot-view5": dict(n_ctx=5, one_hot=True, view=5, n_actions=3),
    "gelu-fast-8tok": dict(n_ctx=8, act_fn="gelu_fast", n_actions=3),  # TL 4 lacks gelu_fast: run as gelu_new
}


@pytest.mark.parametrize("name", sorted(CONFIGS))
def test_crafted_checkpoint_matches_independent_forward(tmp_path, name):
    kw = CONFIGS[name]
    path = tmp_path / f"{name}.pt"
    sd, mcfg = random_reference_checkpoint(path, **kw)
    a = load_checkpoint(path)
    T, view = a.layout.n_timesteps, kw.get("view", 7)
    env = gym.make("MiniGrid-Dynamic-Obstacles-8x8-v0", max_steps=1000, agent_view_size=view) if view != 7 else None
    obs = real_observations(T + 2) if env is None else np.stack([env.reset(seed=s)[0]["image"] for s in range(T + 2)])
    gen = np.random.default_rng(1)
    for k in [1, T // 2 + 1, T]:  # short windows are left-padded
        o = obs[:k]
        rtgs = gen.uniform(-1, 1, size=k).astype(np.float32)
        ts = np.arange(k) + 3
        acts = gen.integers(0, a.n_actions, size=k - 1)
        w = a.make_window(o, rtgs, ts, acts)
        assert int(w.n_pad[0]) == T - k
        got = a.model(w)  # [1, T, A] at every state token
        feats = raw_to_features(torch.as_tensor(w.observations), kw.get("one_hot", False))
        feats[:, : T - k] = 0
        want = reference_logits(sd, mcfg, feats, w.rtgs, w.timesteps, w.actions, act_fn=kw.get("act_fn", "relu"),
                                layer_norm=kw.get("layer_norm"), gated=kw.get("gated", False),
                                time_type=kw.get("time_type", "embedding"))
        torch.testing.assert_close(got.detach(), want, atol=1e-5, rtol=0)


def test_one_hot_encoding_matches_minigrid_wrapper():
    from minigrid.wrappers import OneHotPartialObsWrapper

    from dtwidgets.model import one_hot_observations

    env = OneHotPartialObsWrapper(gym.make("MiniGrid-DoorKey-8x8-v0"))
    raw_env = gym.make("MiniGrid-DoorKey-8x8-v0")
    oh = env.reset(seed=3)[0]["image"]
    raw = raw_env.reset(seed=3)[0]["image"]
    np.testing.assert_array_equal(one_hot_observations(torch.as_tensor(raw)).numpy(), oh.astype(np.float32))


def test_save_load_roundtrip_is_exact(tmp_path):
    path = tmp_path / "ln.pt"
    random_reference_checkpoint(path, n_ctx=8, layer_norm="LN", gated=True, one_hot=True, n_actions=7)
    a = load_checkpoint(path)
    out = save_model(a, tmp_path / "m.safetensors")
    b = load_model(out)
    w = a.make_window(real_observations(3), [0.5, 0.4, 0.3], [0, 1, 2], [2, 1])
    torch.testing.assert_close(b.eval()(w), a.model(w), atol=0, rtol=0)
    assert b.cfg == a.cfg


def test_malicious_checkpoint_is_refused_without_running(tmp_path):
    marker = tmp_path / "pwned"

    class Evil:
        def __reduce__(self):
            return (os.system, (f"touch {marker}",))

    path = tmp_path / "evil.pt"
    torch.save({"model_state_dict": {}, "model_config": "{}", "payload": Evil()}, path)
    with pytest.raises(UnsafeCheckpointError, match="pickled objects"):
        load_checkpoint(path)
    assert not marker.exists()


def test_missing_keys_error_names_them(tmp_path, reference_ckpt_path):
    ckpt = torch.load(reference_ckpt_path, weights_only=True)
    del ckpt["model_state_dict"]["transformer.blocks.0.mlp.W_in"]
    torch.save(ckpt, tmp_path / "broken.pt")
    with pytest.raises(KeyError, match=r"missing keys \['transformer.blocks.0.mlp.W_in'\]"):
        load_checkpoint(tmp_path / "broken.pt")


def test_not_a_checkpoint_dict(tmp_path):
    torch.save({"weights": torch.zeros(2)}, tmp_path / "x.pt")
    with pytest.raises(KeyError, match="model_state_dict"):
        load_checkpoint(tmp_path / "x.pt")


def test_tl_major_is_reported():
    assert tl_major() in (3, 4)

"""The shipped demo checkpoints: size, loading, and the behaviour bar of the post-setting model."""
from __future__ import annotations

import pytest

from dtwidgets.demo import VARIANTS, demo_calibration, demo_path, load_demo


@pytest.mark.parametrize("variant", VARIANTS)
def test_demo_files_load(variant):
    from dtwidgets.adapters import EnvAdapter, ModelAdapter, check_compatible

    assert demo_path(variant).stat().st_size <= 2_000_000
    adapter, env = load_demo(variant)
    assert isinstance(adapter, ModelAdapter) and isinstance(env, EnvAdapter)
    check_compatible(adapter, env)
    assert env.env_id == "MiniGrid-Dynamic-Obstacles-8x8-v0" and env.max_steps == 1000
    w = adapter.make_window(env.observation(), 0.9)
    assert adapter.forward(w).shape == (1, 3)
    report = demo_calibration(variant)
    assert report["variant"] == variant and report["calibration"]["n_finished"][0] >= 200


def test_post_demo_config():
    adapter, _ = load_demo("post")
    c = adapter.cfg
    assert (c.n_layers, c.n_heads, c.d_model, c.d_mlp, c.n_ctx, c.layer_norm, c.one_hot_obs) == \
        (1, 2, 128, 256, 2, None, False)


def test_unknown_variant():
    with pytest.raises(ValueError, match="'nope'"):
        load_demo("nope")


@pytest.mark.slow
def test_post_demo_behaviour_bar():
    """Bar (measured over >= 200 episodes in README): RTG 0.9 mean >= 0.75 and >= 85% goal; RTG -1 >= 85%
    collisions and <= 5% goal; RTG 0 <= 10% goal. Here 50 episodes per RTG with a few points of slack."""
    from dtwidgets.data.calibration import calibrate

    adapter, env = load_demo("post")
    res = calibrate(adapter, env.env_id, rtgs=[-1.0, 0.0, 0.9], n_episodes=50, n_envs=150, max_steps=1000,
                    seed=5_000_000, progress=False)
    neg, zero, high = (res.row(r) for r in (-1.0, 0.0, 0.9))
    assert high["mean_return"] >= 0.70 and high["frac_goal"] >= 0.78, high
    assert neg["frac_collision"] >= 0.78 and neg["frac_goal"] <= 0.10, neg
    assert zero["frac_goal"] <= 0.16, zero

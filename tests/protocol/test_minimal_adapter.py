"""A hand-written adapter with only the protocol's members runs every public analysis, the data
calibration and the Explorer's per-state bundle, with results equal to the shipped adapter's."""
from __future__ import annotations

import dataclasses
import functools

import numpy as np
import pytest
import torch

from dtwidgets import analysis as A
from dtwidgets.adapters import ModelAdapter
from dtwidgets.demo import load_demo
from dtwidgets.model.checkpoint import state_dict_of
from tests.analysis.helpers import CONFIGS, make_adapter, random_window
from tests.protocol.minimal_adapter import MinimalAdapter, minimal_from

MODELS = ("demo-post", "demo-onehot", "ln-gated-onehot-26tok", "ln-3layers-linear-time-5tok")
TOL = 1e-5


@functools.lru_cache(maxsize=None)
def pair(name: str):
    """(shipped DTAdapter, MinimalAdapter built from its reference-layout tensors)."""
    shipped = load_demo(name.split("-")[1])[0] if name.startswith("demo-") else make_adapter(**CONFIGS[name])
    c = shipped.cfg  # the shipped side may use its own config to export its weights
    minimal = minimal_from(state_dict_of(shipped.model), backbone=shipped.backbone, layout=shipped.layout,
                           schema=shipped.schema, action_names=c.action_names, rtg_range=c.rtg_range,
                           max_timestep=c.max_timestep, one_hot=c.one_hot_obs, n_layers=c.n_layers)
    return shipped, minimal


def assert_same(x, y, path="result"):
    """Every array, number, label and nested field of two analysis results agree (arrays to 1e-5
    relative to their scale; NaNs in the same places)."""
    if dataclasses.is_dataclass(x):
        assert type(x) is type(y), path
        for f in dataclasses.fields(x):
            assert_same(getattr(x, f.name), getattr(y, f.name), f"{path}.{f.name}")
    elif isinstance(x, dict):
        assert x.keys() == y.keys(), path
        for k in x:
            assert_same(x[k], y[k], f"{path}[{k!r}]")
    elif torch.is_tensor(x) or isinstance(x, np.ndarray):
        xa, ya = np.asarray(torch.as_tensor(x).float()), np.asarray(torch.as_tensor(y).float())
        assert xa.shape == ya.shape, f"{path}: shapes {xa.shape} vs {ya.shape}"
        scale = max(1.0, float(np.nanmax(np.abs(xa))) if xa.size and np.isfinite(xa).any() else 1.0)
        np.testing.assert_allclose(xa, ya, atol=TOL * scale, rtol=0, err_msg=path)
    elif isinstance(x, float):
        assert abs(x - y) <= TOL * max(1.0, abs(x)) or (np.isnan(x) and np.isnan(y)), f"{path}: {x} vs {y}"
    elif isinstance(x, (list, tuple)) and x and not isinstance(x[0], str):
        assert len(x) == len(y), path
        for i, (u, v) in enumerate(zip(x, y)):
            assert_same(u, v, f"{path}[{i}]")
    else:
        assert x == y, f"{path}: {x!r} vs {y!r}"


def both(fn, name, *args, **kw):
    """Run ``fn(adapter, *args, **kw)`` on both adapters and compare the results."""
    shipped, minimal = pair(name)
    assert_same(fn(shipped, *args, **kw), fn(minimal, *args, **kw), fn.__name__)


def test_minimal_adapter_is_a_model_adapter_without_extras():
    shipped, minimal = pair("demo-post")
    assert isinstance(minimal, ModelAdapter) and isinstance(shipped, ModelAdapter)
    public = {n for n in dir(minimal) if not n.startswith("_")}
    protocol = {n for n in dir(ModelAdapter) if not n.startswith("_")} | set(ModelAdapter.__annotations__)
    assert public <= protocol, f"members outside the protocol: {sorted(public - protocol)}"
    assert not hasattr(minimal, "model") and not hasattr(minimal, "cfg")
    assert type(minimal) is MinimalAdapter and not isinstance(minimal, type(shipped))


@pytest.mark.parametrize("name", MODELS)
def test_forward_cache_and_embeddings_match(name):
    shipped, minimal = pair(name)
    w = random_window(shipped, seed=1, n_steps=max(1, shipped.layout.n_timesteps - 1))
    assert_same(shipped.forward(w), minimal.forward(w))
    assert_same(shipped.embed(w), minimal.embed(w))
    r, t, a = torch.tensor([-1.0, 0.25, 1.0]), torch.tensor([0, 7, 64]), torch.arange(shipped.n_actions + 1)
    assert_same(shipped.embed_rtg(r), minimal.embed_rtg(r))
    assert_same(shipped.embed_time(t), minimal.embed_time(t))
    assert_same(shipped.embed_action(a), minimal.embed_action(a))
    assert_same(shipped.b_mlp_out, minimal.b_mlp_out)
    names = A.attribution_hooks(shipped, per_source=True, per_neuron=True)
    (ls, cs), (lm, cm) = shipped.run_with_cache(w, names), minimal.run_with_cache(w, names)
    assert_same(ls, lm)
    assert set(cs.cache_dict) == set(cm.cache_dict)
    for n in cs.cache_dict:
        assert_same(cs[n], cm[n], n)


@pytest.mark.parametrize("name", MODELS)
def test_every_analysis_matches(name):
    shipped, _ = pair(name)
    w = random_window(shipped, seed=2)
    w2 = random_window(shipped, seed=3)
    L, H = shipped.backbone.cfg.n_layers, shipped.backbone.cfg.n_heads
    both(A.logit_attribution, name, w, "forward", "right", per_source=True, per_neuron=True)
    both(A.logit_attribution, name, w, "left", per_source=False, per_neuron=True)
    both(A.logit_lens, name, w, "forward", "right")
    both(A.ablate, name, w, ["L0H1", f"L{L - 1}MLP", "L0N3"], "forward", "right")
    means = A.mean_activations(shipped, w2.repeat(2))
    both(A.ablate, name, w, ["L0H0"], "forward", mode="mean", means=means)
    both(A.single_component_ablations, name, w, "forward", "left")
    both(A.mean_activations, name, w2.repeat(3))
    both(A.attention_patterns, name, w, scores=True)
    for key, index in (("rtg", None), ("rtg", 0.5), ("time", 3), ("action", "left"), ("pos", 1),
                       ("action", None), ("time", None)):
        both(A.qk_map, name, L - 1, H - 1, key, index)
    both(A.qk_map, name, 0, 0, shipped.W_action[0])
    both(A.qk_map, name, L - 1, 0, window=w)
    both(A.ov_map, name, 0, H - 1, "forward", "right")
    both(A.ov_map, name, L - 1, 0, "left", window=w)
    for fold in (True, False):
        both(A.state_embedding_projection, name, "forward", "right", fold_ln=fold)
        both(A.rtg_embedding_projection, name, "forward", "left", fold_ln=fold)
        both(A.time_embedding_projection, name, "right", "left", fold_ln=fold)
    both(A.rtg_embedding_projection, name, "forward", None, [-0.5, 0.0, 0.7])
    both(A.time_embedding_projection, name, "forward", "right", [0, 5, 9])
    both(A.preference_direction, name, "forward", "right", fold_ln=True)
    both(A.rtg_scan, name, w, "forward", "right")
    both(A.rtg_scan, name, w, "left", rtgs=[-1.0, 0.0, 0.3])
    both(A.activation_patching, name, w, w2, "forward", "right")
    both(A.activation_patching, name, w, w2, "left", "forward", reverse=True)
    both(A.analyze_state, name, w, ("forward", "right"), [A.extras.Neurons()])
    both(A.analyze_state, name, w, ("left", None), rtgs=[0.0, 0.9], ablation_mode="mean", means=means)


@pytest.mark.parametrize("name", MODELS)
def test_circuits_ii_analyses_match(name):
    """Path patching (both LN modes), weight-level views, neurons and steering on protocol members only."""
    shipped, _ = pair(name)
    w = random_window(shipped, seed=2)
    w2 = random_window(shipped, seed=3)
    L, H = shipped.backbone.cfg.n_layers, shipped.backbone.cfg.n_heads
    both(A.path_patching, name, w, w2, "forward", "right")
    both(A.path_patching, name, w, w2, "left", ln="frozen")
    both(A.composition_scores, name)
    both(A.head_svd, name, L - 1, H - 1, "qk")
    both(A.head_svd, name, 0, 0, "ov")
    both(A.virtual_weights, name, "L0H1")
    both(A.virtual_weights, name, f"L{L - 1}H0", states=w2.repeat(2))
    both(A.top_neurons, name, w, "forward", "right", k=5, states=w2.repeat(2))
    direction, _ = A.steering_direction(shipped, action="forward")
    both(A.steering_scan, name, w, direction, coefficients=[-1.0, 0.0, 2.0])


def test_reference_numbers_match():
    both(A.reference_numbers, "demo-post")


def test_calibration_runs_on_the_minimal_adapter():
    from dtwidgets.data.calibration import calibrate

    shipped, minimal = pair("demo-onehot")
    kw = dict(rtgs=[-1.0, 0.9], n_episodes=2, n_envs=2, max_steps=30, seed=5, progress=False)
    rs = calibrate(shipped, "MiniGrid-Dynamic-Obstacles-8x8-v0", **kw)
    rm = calibrate(minimal, "MiniGrid-Dynamic-Obstacles-8x8-v0", **kw)
    np.testing.assert_array_equal(rs.outcomes, rm.outcomes)
    np.testing.assert_array_equal(rs.lengths, rm.lengths)
    np.testing.assert_allclose(rs.returns, rm.returns)
    assert (rm.outcomes >= 0).all()


def test_explorer_runs_on_the_minimal_adapter():
    """The Explorer (and every panel feed) builds, steps and refreshes through the protocol alone;
    its per-state data equal the shipped adapter's."""
    from dtwidgets import Explorer, MiniGridEnv

    datas = []
    for adapter in pair("demo-onehot"):
        ex = Explorer(adapter, MiniGridEnv("MiniGrid-Dynamic-Obstacles-8x8-v0", seed=0), rtg=0.9)
        ex.refresh()
        ex.flush()
        window = ex.session.window()
        datas.append(ex.ctx.compute(window, clean_window=window))
    assert_same(datas[0].state, datas[1].state, "state")
    assert_same(datas[0].patching, datas[1].patching, "patching")

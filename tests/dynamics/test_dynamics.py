"""dynamics(): every metric on 10+ checkpoints, per-checkpoint disk cache, numbers vs direct computations."""
from __future__ import annotations

import time

import numpy as np
import pytest
import torch

from dtwidgets.dynamics import CheckpointSeries, dynamics, find_jumps, load_series

from .conftest import FAST


class TinySAE:
    """Any object with encode/decode works: a rank-8 PCA 'SAE'."""

    def __init__(self, X, k=8):
        self.mu = X.mean(0)
        self.W_dec = torch.linalg.svd(X - self.mu, full_matrices=False)[2][:k]  # [k, d]

    def encode(self, x):
        return torch.relu(torch.cat([(x - self.mu) @ self.W_dec.T, -(x - self.mu) @ self.W_dec.T], -1))

    def decode(self, c):
        k = self.W_dec.shape[0]
        return (c[:, :k] - c[:, k:]) @ self.W_dec + self.mu


def test_dynamics_all_metrics_and_cache(run_dir, held_out, env, tmp_path):
    from dtwidgets.probes import site_activations

    series = load_series(run_dir)
    assert len(series) >= 11
    X = torch.from_numpy(site_activations(series[-1].load(), held_out, hooks=["blocks.0.hook_resid_post"])
                         .values[("blocks.0.hook_resid_post", "state")])
    sae = TinySAE(X)
    cache = tmp_path / "cache"
    t0 = time.perf_counter()
    d = dynamics(series, held_out, env, sae=sae, sae_hook="blocks.0.hook_resid_post", cache_dir=cache, **FAST)
    first = time.perf_counter() - t0
    assert set(d.parts) == {"loss", "calibration", "attribution", "ablation", "probes", "sae"}
    assert all(set(rec) == set(d.parts) for rec in d.records)
    m = d.metrics()
    for key in ("held-out loss", "held-out accuracy", "train loss", "return @ RTG 0.9", "goal rate @ RTG -1",
                "probe ball ahead selectivity", "probe agent direction selectivity", "SAE explained variance"):
        assert key in m and np.isfinite(m[key]).sum() >= 10, key
    assert any(k.startswith("DLA ") for k in m) and any(k.startswith("ablate ") for k in m)
    assert 0 < m["SAE explained variance"][-1] <= 1.0
    assert m["held-out loss"][-1] < m["held-out loss"][0]
    # cached re-run: nothing recomputed, identical records, >= 10x faster
    t0 = time.perf_counter()
    again = dynamics(series, held_out, env, sae=sae, sae_hook="blocks.0.hook_resid_post", cache_dir=cache, **FAST)
    second = time.perf_counter() - t0
    assert again.computed == [[] for _ in series]
    assert again.records == d.records
    print(f"dynamics on {len(series)} checkpoints: first {first:.1f} s, cached {second:.2f} s, x{first / second:.0f}")
    assert first / second >= 10
    # a changed setting recomputes only the affected part; a new checkpoint only itself
    part = dynamics(series, held_out, env, cache_dir=cache, **{**FAST, "rtgs": (0.0,)})
    assert all(c == ["calibration"] for c in part.computed)
    for j in d.phase_transitions():
        assert j["metric"] in m and 1 <= j["index"] < len(series) and j["step"] == series.steps[j["index"]]


def test_dynamics_parts_match_direct_computations(run_dir, held_out, env):
    from dtwidgets.analysis import single_component_ablations
    from dtwidgets.data import calibrate

    series = load_series(run_dir)
    last = CheckpointSeries(series.checkpoints[-1:], series.directory)
    d = dynamics(last, held_out, env, parts=("loss", "calibration", "ablation"), **{**FAST, "scenarios": [3, 50]})
    k = 0
    ad = last[0].load()
    # loss: plain cross-entropy of the model's own forward on each held-out step
    steps = np.linspace(0, held_out.n_steps - 1, held_out.n_steps).round().astype(int)
    win, targets = held_out.windows(steps, ad.layout.n_timesteps, ad.pad_action,
                                    rtgs=np.clip(held_out.rtg(), -1, 1))
    with torch.no_grad():
        logits = ad.model(win)[:, -1]
    ce = torch.nn.functional.cross_entropy(logits, targets[:, -1]).item()
    assert d.part("loss", k)["loss"] == pytest.approx(ce, rel=1e-5)
    cal = calibrate(ad, held_out.env_id, rtgs=(-1.0, 0.9), n_episodes=3, n_envs=32, max_steps=60, seed=1_000_000,
                    progress=False)
    assert d.part("calibration", k)["mean_return"] == pytest.approx(cal.mean_return.tolist())
    a, b = ad.action_names[-1], ad.action_names[0]
    for s, step in enumerate([3, 50]):
        w, _ = held_out.windows([step], ad.layout.n_timesteps, ad.pad_action, rtgs=np.clip(held_out.rtg(), -1, 1))
        ref = single_component_ablations(ad, w, a, b)
        np.testing.assert_allclose(d.part("ablation", k)["delta"][s], ref.delta_logit_diff, atol=1e-4)
        assert d.part("ablation", k)["labels"] == ref.labels


def test_find_jumps():
    v = [0.1, 0.11, 0.1, 0.12, 0.9, 0.91, 0.9, 0.92, 0.91, 0.9]
    assert find_jumps(v) == [4]
    assert find_jumps(np.linspace(0, 1, 10)) == []  # steady growth is no jump
    assert find_jumps([1, 1, np.nan, 1]) == []


def test_dynamics_errors(run_dir, held_out):
    with pytest.raises(ValueError, match="parts"):
        dynamics(run_dir, held_out, parts=("loss", "nope"), progress=False)
    with pytest.raises(ValueError, match="sae"):
        dynamics(run_dir, held_out, parts=("sae",), progress=False)
    with pytest.raises(ValueError, match="scenario"):
        dynamics(run_dir, held_out, scenarios=[10**6], parts=("loss",), progress=False)

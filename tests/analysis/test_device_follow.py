"""Analyses create their tensors on the adapter's device (``adapter.device``), never on torch's default.

No GPU is needed to check it: torch's default device is set to ``meta`` while the adapter stays on the
CPU. A tensor an analysis creates without naming a device then lands on ``meta``; mixed with the model's
CPU tensors it raises, and a result made of it cannot become numpy. So each analysis below either runs
to the very numbers of a normal run, or fails here. (Windows are CPU data built before the switch.)
"""
from __future__ import annotations

from contextlib import contextmanager

import numpy as np
import pytest
import torch

from dtwidgets.analysis import (activation_patching, agent_placements, attention_patterns, logit_attribution,
                                logit_lens, ov_map, policy_map, qk_map, rtg_embedding_projection, rtg_scan,
                                state_embedding_projection, steering_direction, steering_scan,
                                time_embedding_projection, top_neurons)
from dtwidgets.analysis.circuit_discovery import discover_circuit
from dtwidgets.analysis.path_patching import path_patching
from dtwidgets.analysis.weights import composition_scores, head_svd
from dtwidgets.demo import load_demo
from dtwidgets.probes.directions import action_cosines, direction_attribution, direction_over_observation, steer


@contextmanager
def default_device_meta():
    torch.set_default_device("meta")
    try:
        yield
    finally:
        torch.set_default_device(None)


@pytest.fixture(scope="module")
def demo():
    adapter, env = load_demo("post")
    obs = [env.reset(seed=3)]
    for a in (0, 1, 0):  # turns only: the episode goes on
        obs.append(env.step(a).observation)
    win = adapter.make_window(np.stack(obs), 0.9, list(range(4)), [0, 1, 0])
    other = adapter.make_window(np.stack(obs[::-1]), 0.3, list(range(4)), [1, 0, 1])
    return adapter, env, win, other


def _cases(adapter, env, win, other):
    v = adapter.W_action[0] - adapter.W_action[1]
    places = agent_placements(env, facings=(0, 1))
    return {
        "logit_attribution": lambda: logit_attribution(adapter, win, 0, 1, per_neuron=True).values,
        "logit_lens": lambda: logit_lens(adapter, win, 0, 1).values,
        "attention_patterns": lambda: attention_patterns(adapter, win, scores=True).scores,
        "rtg_scan": lambda: rtg_scan(adapter, win, 0, 1).logit_diff,
        "activation_patching": lambda: activation_patching(adapter, win, other, 0, 1).heads_by_pos,
        "path_patching": lambda: path_patching(adapter, win, other, 0, 1).effects,
        "qk_map": lambda: qk_map(adapter, 0, 0, window=win).values,
        "ov_map": lambda: ov_map(adapter, 0, 1, 0, 1, window=win).values,
        "state_embedding_projection": lambda: state_embedding_projection(adapter, 0, 1).values,
        "rtg_embedding_projection": lambda: rtg_embedding_projection(adapter, 0, 1).values,
        "time_embedding_projection": lambda: time_embedding_projection(adapter, 0, 1).values,
        "top_neurons": lambda: top_neurons(adapter, win, 0, 1).all_attribution,
        "policy_map": lambda: policy_map(adapter, places, 0.9).probs,
        "steering_scan": lambda: steering_scan(adapter, None, steering_direction(adapter, vector=v.numpy()),
                                               placements=places, coefficients=[0.0, 1.0]).map_probs,
        "head_svd": lambda: head_svd(adapter, 0, 0).singular_values,
        "composition_scores": lambda: composition_scores(adapter).values if adapter.cfg.n_layers > 1 else np.zeros(1),
        "discover_circuit": lambda: discover_circuit(adapter, win, other, 0, 1).scores.scores,
        "direction_attribution": lambda: direction_attribution(adapter, win, v, "blocks.0.hook_resid_post").values,
        "steer": lambda: steer(adapter, win, v, 1.0, "blocks.0.hook_resid_post").probs_after,
        "action_cosines": lambda: np.array(list(action_cosines(adapter, v).values())),
        "direction_over_observation": lambda: direction_over_observation(adapter, v),
    }


CASES = [
    "logit_attribution", "logit_lens", "attention_patterns", "rtg_scan", "activation_patching", "path_patching",
    "qk_map", "ov_map", "state_embedding_projection", "rtg_embedding_projection", "time_embedding_projection",
    "top_neurons", "policy_map", "steering_scan", "head_svd", "composition_scores", "discover_circuit",
    "direction_attribution", "steer", "action_cosines", "direction_over_observation"]


# analysis/_tokens.py (owned by the perf work) builds torch.tensor(lay.timestep_of) on the default device
@pytest.mark.parametrize("name", CASES)
def test_analysis_follows_the_adapter_device(demo, name):
    adapter, env, win, other = demo
    run = _cases(adapter, env, win, other)[name]
    expected = np.asarray(run())
    with default_device_meta():
        got = np.asarray(run())
    np.testing.assert_array_equal(got, expected)


@pytest.fixture(scope="module")
def traj():
    from dtwidgets.data import collect_trajectories

    return collect_trajectories("MiniGrid-Dynamic-Obstacles-8x8-v0", n_episodes=4, n_envs=2, max_steps=12, seed=5,
                                progress=False)


def _pipeline_cases(adapter, win, traj):
    from dtwidgets.data.rollouts import record_rollouts
    from dtwidgets.probes import site_activations
    from dtwidgets.sae import (collect_activations, feature_shares, reconstruction_metrics, summarize_features,
                               train_sae)

    hook = "blocks.0.hook_resid_post"

    def sae_pipeline():
        store = collect_activations(adapter, traj, hook, progress=False)
        sae, hist = train_sae(store, d_sae=32, k=4, batch_size=16, epochs=2.0, progress=False)
        summary = summarize_features(adapter, sae, store, n_top=3)
        shares = feature_shares(adapter, sae, win, 0, 1)
        return np.concatenate([store.acts.numpy().ravel(), hist.loss, summary.frequency, summary.hist.ravel(),
                               summary.quantile_acts.ravel(), shares.activations, [reconstruction_metrics(sae, store).fvu]])

    return {
        "sae_pipeline": sae_pipeline,
        "site_activations": lambda: site_activations(adapter, traj, hooks=[hook]).values[(hook, "state")],
        "record_rollouts": lambda: record_rollouts(adapter, traj.env_id, rtgs=(0.9,), n_episodes=2, n_envs=2,
                                                   max_steps=10, seed=1, epsilon=0.2, progress=False).logits,
    }


@pytest.mark.parametrize("name", ["sae_pipeline", "site_activations", "record_rollouts"])
def test_training_and_collection_follow_the_adapter_device(demo, traj, name):
    adapter, _, win, _ = demo
    run = _pipeline_cases(adapter, win, traj)[name]
    expected = np.asarray(run())
    with default_device_meta():
        got = np.asarray(run())
    np.testing.assert_array_equal(got, expected)


def test_the_check_catches_a_tensor_made_on_the_default_device(demo):
    adapter, _, win, _ = demo
    with default_device_meta(), pytest.raises((RuntimeError, NotImplementedError)):
        np.asarray(adapter.forward(win) + torch.zeros(adapter.n_actions))

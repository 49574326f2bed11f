"""Policy maps: placements match MiniGrid's own observation with the agent really moved there, and
every entry equals an independent plain-torch forward of that placement alone."""
from __future__ import annotations

import numpy as np
import pytest
import torch

from dtwidgets import MiniGridEnv
from dtwidgets.analysis import ablation_hooks
from dtwidgets.model.checkpoint import state_dict_of
from dtwidgets.analysis.policy_map import agent_placements, free_cells, placement_windows, policy_map, rtg_policy_maps
from tests.analysis.helpers import CONFIGS, independent_logits, make_adapter, random_window


@pytest.fixture(scope="module")
def env():
    e = MiniGridEnv(seed=3)
    e.set_cell(3, 3, "ball")
    return e


def test_placements_equal_minigrid_observations_with_the_agent_moved(env):
    p = agent_placements(env)
    grid, pos, d = env.full_grid()
    obj = grid[..., 0]
    want_cells = {(x, y) for x in range(8) for y in range(8) if obj[x, y] in (1, 3, 10)}
    assert {tuple(c) for c in p.cells} == want_cells and len(p) == 4 * len(want_cells)
    u = env.unwrapped
    for i in range(0, len(p), 7):
        snap = env.snapshot()
        u.agent_pos, u.agent_dir = tuple(int(v) for v in p.cells[i]), int(p.facings[i])
        np.testing.assert_array_equal(p.observations[i], u.gen_obs()["image"])
        env.restore(snap)
    assert env.full_grid()[1] == pos and env.full_grid()[2] == d  # reading changed nothing


def test_free_cells_include_open_doors_only():
    g = np.ones((3, 2, 3), np.uint8) * np.array([1, 0, 0], np.uint8)
    g[0, 0] = (4, 4, 0)  # open door
    g[1, 0] = (4, 4, 1)  # closed door
    g[2, 1] = (2, 5, 0)  # wall
    assert {tuple(c) for c in free_cells(g)} == {(0, 0), (0, 1), (1, 1), (2, 0)}


@pytest.mark.parametrize("name", ["raw-2tok-noLN", "ln-gated-onehot-26tok"])
def test_map_entries_equal_individual_forwards(env, name):
    a = make_adapter(**CONFIGS[name])
    p = agent_placements(env)
    m = policy_map(a, p, rtg=0.7, timestep=5)
    rows = list(range(0, len(p), 9))
    wins = [a.make_window(p.observations[i], 0.7, [5]) for i in rows]
    from dtwidgets.adapters import TrajectoryWindow

    want = independent_logits(a, TrajectoryWindow.cat(wins))
    np.testing.assert_allclose(m.logits[rows], want.numpy(), atol=2e-4 * max(1, float(want.abs().max())))
    np.testing.assert_allclose(m.probs[rows], torch.softmax(want.double(), -1).numpy(), atol=1e-4)
    g = m.probs_grid()
    x, y = p.cells[rows[1]]
    np.testing.assert_allclose(g[x, y, p.facings[rows[1]]], m.probs[rows[1]])
    assert np.isnan(g[0, 0]).all()  # a wall


def test_history_convention_replaces_only_the_last_observation(env):
    a = make_adapter(**CONFIGS["ln-gated-onehot-26tok"])
    hist = random_window(a, seed=4)
    p = agent_placements(env, facings=(3,))
    m = policy_map(a, p, rtg=0.2, history=hist)
    i = 5
    obs = hist.observations[0].clone()
    obs[-1] = torch.as_tensor(p.observations[i])
    one = a.make_window(obs.numpy(), np.full(obs.shape[0], 0.2, np.float32), hist.timesteps[0].numpy(),
                        hist.actions[0].numpy())
    want = independent_logits(a, one)[0]
    np.testing.assert_allclose(m.logits[i], want.numpy(), atol=2e-4 * max(1, float(want.abs().max())))
    kept = policy_map(a, p, rtg=None, history=hist)  # the window's own RTGs
    one_k = a.make_window(obs.numpy(), hist.rtgs[0].numpy(), hist.timesteps[0].numpy(), hist.actions[0].numpy())
    np.testing.assert_allclose(kept.logits[i], independent_logits(a, one_k)[0].numpy(), atol=2e-4 * max(1, float(want.abs().max())))


def test_rtg_maps_in_one_forward_and_difference(env):
    a = make_adapter(**CONFIGS["raw-2tok-noLN"])
    p = agent_placements(env)
    hi, lo = rtg_policy_maps(a, p, [0.9, -1.0])
    np.testing.assert_allclose(hi.logits, policy_map(a, p, 0.9).logits, atol=1e-5)
    np.testing.assert_allclose(lo.logits, policy_map(a, p, -1.0).logits, atol=1e-5)
    d = hi.minus(lo)
    assert d.kind == "difference" and d.label == "RTG 0.9 − RTG -1"
    np.testing.assert_allclose(d.probs, hi.probs - lo.probs)
    assert np.abs(d.probs).max() > 0


def test_ablated_variant_equals_a_forward_with_the_head_zeroed_in_the_weights(env):
    a = make_adapter(**CONFIGS["ln-gated-onehot-26tok"])
    p = agent_placements(env, facings=(0, 2))
    m = policy_map(a, p, 0.5, fwd_hooks=lambda n: ablation_hooks(a, [(None, "L1H2")], n))
    sd = {k: v.clone() for k, v in state_dict_of(a.model).items()}
    sd["transformer.blocks.1.attn.W_O"][2] = 0  # zero ablation of hook_z == zero output weights
    w = placement_windows(a, p, 0.5)
    rows = [0, 7, 20]
    want = independent_logits(a, w.index(rows), sd=sd)
    np.testing.assert_allclose(m.logits[rows], want.numpy(), atol=2e-4 * max(1, float(want.abs().max())))
    assert np.abs(m.logits[rows] - policy_map(a, p, 0.5).logits[rows]).max() > 1e-3


def test_errors_name_what_was_expected(env):
    a = make_adapter(**CONFIGS["raw-2tok-noLN"])
    with pytest.raises(ValueError, match="facings: expected values in 0..3"):
        agent_placements(env, facings=(4,))
    p = agent_placements(env, facings=(0,))
    with pytest.raises(ValueError, match="one-row history"):
        policy_map(a, p, history=random_window(a).repeat(2))
    with pytest.raises(ValueError, match="not a placement"):
        policy_map(a, p).at(0, 0, 0)
    with pytest.raises(ValueError, match="facing: expected 0..3"):
        env.observation_at(1, 1, 5)
    with pytest.raises(ValueError, match="inside the 8x8 grid"):
        env.observation_at(9, 1, 0)

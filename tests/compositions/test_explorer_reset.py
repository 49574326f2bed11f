"""Reset starts the next episode at the RTG the user asked for (issue 23 §2), never at the RTG an
episode's rewards left over (−0.09 after a goal, +1.00 after a collision): driven through the
Explorer's buttons and RTG slider, every number checked against analysis functions called directly
on a window built here at the intended RTG."""
from __future__ import annotations

import numpy as np
import pytest
import torch

from dtwidgets.adapters.minigrid_env import MiniGridEnv
from dtwidgets.analysis import logit_attribution
from dtwidgets.analysis.ablation import single_component_ablations
from dtwidgets.compositions import Explorer
from dtwidgets.data.policies import make_policy


def play_to_end(e: Explorer, spec: str, max_steps: int = 200) -> None:
    """Click the Explorer's action buttons with behaviour policy ``spec`` (``bfs`` reaches the goal,
    ``suicidal`` collides) until the episode ends."""
    pi = make_policy(spec, np.random.default_rng(0), len(e.env.action_names))
    for _ in range(max_steps):
        if e.session.done:
            return
        e.buttons[int(pi(e.env))].click()
    pytest.fail(f"policy {spec!r} did not end the episode within {max_steps} steps")


def expected_at(adapter, seed: int, rtg: float, pair):
    """Logits, attribution and ablation deltas of a fresh episode's first state at ``rtg``, computed here:
    the reset observation from a new env, a window built by the adapter, the analysis functions called directly."""
    obs = MiniGridEnv().reset(seed=seed)
    window = adapter.make_window(obs[None], [rtg], [0])
    with torch.no_grad():
        logits = adapter.forward(window)[0].numpy()
    att = logit_attribution(adapter, window, *pair)
    abl = single_component_ablations(adapter, window, *pair)
    return obs, logits, att.values, abl.delta_logit_diff


def assert_new_episode_at(e: Explorer, rtg: float, seed: int) -> None:
    s = e.session
    assert s.n_steps == 0 and not s.done
    assert s.rtg == pytest.approx(rtg, abs=1e-7)
    assert float(e.rtg_slider.value) == pytest.approx(rtg, abs=1e-7)
    assert e.status.rtg == pytest.approx(rtg, abs=1e-7)
    obs, logits, att, delta = expected_at(e.adapter, seed, rtg, e.ctx.pair)
    np.testing.assert_array_equal(s.observation, obs)
    np.testing.assert_allclose(e.prefs.logits, logits, atol=1e-5)
    np.testing.assert_allclose(e.show_panel("attribution").bars.values[0], att, atol=1e-5)
    np.testing.assert_allclose(e.show_panel("ablation").overview.values[0], delta, atol=1e-5)


@pytest.mark.parametrize("spec, outcome, leftover", [("bfs", "goal", -0.09), ("suicidal", "collision", 1.0)])
def test_reset_after_the_episode_ends_returns_to_the_initial_rtg(small_dt, spec, outcome, leftover):
    e = Explorer(small_dt, MiniGridEnv(), rtg=0.9, seed=0, coalesce_s=0)
    play_to_end(e, spec)
    assert e.session.outcome == outcome
    assert e.session.rtg == pytest.approx(leftover, abs=0.02)  # what the rewards left (the slider follows it)
    assert float(e.rtg_slider.value) == pytest.approx(e.session.rtg)
    e.reset_button.click()
    assert e.error.value == ""
    assert_new_episode_at(e, 0.9, seed=0)


@pytest.mark.parametrize("spec, outcome", [("bfs", "goal"), ("suicidal", "collision")])
def test_reset_returns_to_the_rtg_last_set_on_the_slider(small_dt, spec, outcome):
    e = Explorer(small_dt, MiniGridEnv(), rtg=0.9, seed=0, coalesce_s=0)
    e.rtg_slider.value = 0.3  # the user's target, at the first step
    e.buttons[0].click()
    e.rtg_slider.value = 0.5  # and again mid-episode: the last one the user set
    play_to_end(e, spec)
    assert e.session.outcome == outcome and e.session.rtg != pytest.approx(0.5)
    e.seed_box.value = 4
    e.reset_button.click()
    assert_new_episode_at(e, 0.5, seed=4)
    play_to_end(e, spec)  # and again: a second episode's leftover does not leak either
    e.reset_button.click()
    assert_new_episode_at(e, 0.5, seed=4)

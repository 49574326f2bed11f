"""Regressions found by looking at the Explorer's screenshots (issue 13): what the front-end receives."""
from __future__ import annotations

import numpy as np

from dtwidgets.adapters.minigrid_env import MiniGridEnv
from dtwidgets.analysis.policy_map import agent_placements, policy_map
from tests.analysis.helpers import CONFIGS, make_adapter


def _messages(widget) -> list[set[str]]:
    """Record the trait names of every state message the widget sends from now on."""
    sent: list[set[str]] = []
    orig = widget.send_state

    def record(key=None):
        keys = widget.keys if key is None else ([key] if isinstance(key, str) else list(key))
        sent.append(set(keys))
        return orig(key)
    widget.send_state = record
    return sent


def test_policy_map_sends_placements_and_probabilities_in_one_message():
    """The Policy map tab logged "probs must be [K, N=124, A], got [0, 0, 0]" in the browser: the
    placements (N cells) went out in a message of their own, before the probabilities."""
    from dtwidgets.widgets import PolicyMapView

    a = make_adapter(**CONFIGS["lnpre-8tok"])
    env = MiniGridEnv(seed=0)
    m = policy_map(a, agent_placements(env), 0.8, timestep=3)
    view = PolicyMapView()
    sent = _messages(view)
    view.show_maps(m)
    with_cells = [s for s in sent if "cells" in s]
    assert with_cells and all("probs" in s for s in with_cells), sent
    assert view.probs.shape[1] == len(view.cells)
    np.testing.assert_array_equal(view.cells, m.cells)

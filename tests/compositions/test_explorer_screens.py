"""Regressions found by looking at the Explorer's screenshots (issue 13): what the front-end receives."""
from __future__ import annotations

import numpy as np
import pytest

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


@pytest.fixture(scope="module")
def demo_explorer():
    from dtwidgets.compositions import Explorer
    from dtwidgets.demo import load_demo

    m, env = load_demo("post")
    return Explorer(m, env, coalesce_s=0, seed=1)


def test_unused_channel_maps_are_greyed_in_both_circuit_tabs(demo_explorer):
    """The Dynamic-Obstacles state channel (no doors: always 0) was drawn in full colour; every channel map
    of the QK / OV and Circuits II tabs now names it in ``unused`` (drawn greyed by the front-end)."""
    e = demo_explorer
    obs = np.stack(e.session.h.observations)
    assert not obs[..., 2].any()  # the state channel is 0 in every observation seen
    qk = e.show_panel("circuits")
    for heat in (qk.qk, qk.ov, qk.emb):
        assert heat.unused == [2], heat.titles
    c2 = e.show_panel("circuits2")
    for heat in (c2.virtual, c2.svd):
        assert heat.unused == [2]
    c2.head.value = c2.head.options[-1]  # redrawn maps keep the flag
    assert c2.virtual.unused == [2] and c2.svd.unused == [2]


def test_circuits2_says_why_instead_of_empty_charts(demo_explorer):
    """Circuits II opened with two "no data" boxes (path patching before an edit) and an all-zero composition
    matrix (a one-layer model has no composition), and listed 64 singular values in one paragraph."""
    e = demo_explorer
    c2 = e.show_panel("circuits2")
    assert e.session.clean_observation is None
    assert c2.paths_row.layout.display == "none" and "Edit the grid" in c2.paths_note.value
    assert c2.comp.layout.display == "none" and "one layer" in c2.comp_note.value
    listed = c2.svd_note.value.split("singular values ", 1)[1].split(". Maps")[0]
    assert listed.count(",") <= 8 and "in all" in listed, listed
    for w in (c2.head, c2.comp_mode, c2.svd_kind):  # descriptions at natural width, not "virtual we…"
        assert w.style.description_width == "initial"


def test_composition_matrix_is_shown_for_two_layers():
    from dtwidgets.compositions.panels import AnalysisContext, Circuits2Panel

    a = make_adapter(**CONFIGS["lnpre-8tok"])
    p = Circuits2Panel(AnalysisContext(a, pair=("forward", "left")))
    assert p.comp.layout.display == "" and p.comp_note.value == ""


def test_policy_controls_wrap_and_show_their_labels(demo_explorer):
    """The Policy map tab showed "compare …" (a clipped description) in a row that could not wrap."""
    p = demo_explorer.show_panel("policy_map")
    row = p.widget.children[0]
    assert row.layout.flex_flow == "row wrap"
    assert p.compare.style.description_width == "initial" and p.history.description == "window"
    assert "one per direction the agent could face" in p.note.value  # how to read the glyphs


def test_rtg_scan_names_tokens_by_episode_step_like_the_attribution_tab(demo_explorer):
    """The RTG scan said "state embed (s₁)" (window position) where the Attribution tab said "(s₀)"."""
    e = demo_explorer
    att = e.show_panel("attribution")
    scan = e.show_panel("rtg_scan")
    embeds = [n for n in scan.view.shown_series_names if "embed (" in n]
    assert embeds and set(embeds) <= set(att.bars.row_labels), (embeds, att.bars.row_labels)
    assert "state embed (s₀)" in embeds


def test_virtual_weights_titles_are_short_and_the_path_is_captioned(demo_explorer):
    c2 = demo_explorer.show_panel("circuits2")
    assert c2.virtual.titles == ["object", "colour", "state"]
    assert "OV" in c2.virtual_note.value and "logit" in c2.virtual_note.value

"""Explorer wiring (Python side): controls drive the session and every panel updates in place."""
from __future__ import annotations

import numpy as np
import pytest

from dtwidgets.adapters.minigrid_env import MiniGridEnv
from dtwidgets.compositions import Explorer
from dtwidgets.model import DecisionTransformer, DTAdapter, DTConfig


@pytest.fixture(scope="module")
def model():
    return DTAdapter(DecisionTransformer(DTConfig(d_model=32, n_heads=2, d_mlp=64, n_ctx=8, n_layers=2, seed=2)))


def test_keys_and_buttons_move_the_agent(model):
    e = Explorer(model, MiniGridEnv(), coalesce_s=0)
    d0 = e.grid.agent_dir
    e.press("ArrowLeft")
    assert e.grid.agent_dir == (d0 - 1) % 4 and e.session.n_steps == 1
    prefs_before = e.prefs.logits.copy()
    e.buttons[1].click()  # right
    assert e.grid.agent_dir == d0 and e.session.n_steps == 2
    assert not np.array_equal(prefs_before, e.prefs.logits)  # history changed -> new logits
    np.testing.assert_allclose(e.prefs.logits, e.session.logits().numpy(), atol=1e-6)
    e.back_button.click()
    assert e.session.n_steps == 1


def test_edit_creates_patching_view_and_keeps_clean(model):
    e = Explorer(model, MiniGridEnv(), coalesce_s=0)
    patch = e.show_panel("patching")
    assert len(patch.widget.children) == 1  # only the hint
    x, y = e.env.agent_pos
    dx, dy = [(1, 0), (0, 1), (-1, 0), (0, -1)][e.env.agent_dir]
    e.grid.editable, e.grid.edit_tool = True, "wall"  # a click in edit mode is the intent {x, y, tool}
    e.grid.click(x + dx, y + dy)  # ... the Explorer applies it
    assert tuple(e.grid.grid[x + dx, y + dy]) == (2, 5, 0)  # drawn once, by Python
    assert e.session.clean_observation is not None
    assert e.view.grid[3, 5, 0] == 2
    kinds = [type(w).__name__ for w in patch.widget.children]
    assert "MatrixHeatmap" in kinds and "ContributionBars" in kinds
    assert e.error.value == ""


def test_refused_edit_is_shown_not_raised(model):
    e = Explorer(model, MiniGridEnv(), coalesce_s=0)
    x, y = e.env.agent_pos
    e.edit(x, y, "wall")  # the agent's own cell cannot be edited
    assert "agent" in e.error.value
    assert e.grid.grid[x, y, 0] != 2  # the true grid is drawn again


def test_rtg_slider_and_model_acts(model):
    e = Explorer(model, MiniGridEnv(), coalesce_s=0)
    e.rtg_slider.value = -0.5
    assert e.session.rtg == pytest.approx(-0.5)
    scan = e.show_panel("rtg_scan").view
    assert abs(scan.rtgs[scan.index] + 0.5) < 0.011
    e.act_button.click()
    assert e.session.n_steps == 1


def test_save_load_replay(model, tmp_path):
    e = Explorer(model, MiniGridEnv(), coalesce_s=0)
    for k in ("ArrowLeft", "ArrowLeft", "ArrowRight"):
        e.press(k)
    path = tmp_path / "t.npz"
    e.path.value = str(path)
    e.save_button.click()
    e2 = Explorer(model, MiniGridEnv(), coalesce_s=0, seed=5)
    e2.path.value = str(path)
    e2.load_button.click()
    assert e2.timeline.max == 3 and not e2.timeline.disabled
    e2.timeline.value = 1
    np.testing.assert_array_equal(e2.view.grid, e.session.h.observations[1])
    assert all(b.disabled for b in e2.buttons)


def test_panels_subset_and_unknown(model):
    e = Explorer(model, MiniGridEnv(), coalesce_s=0, panels=("attention",))
    assert [p.key for p in e.panels] == ["attention"]
    with pytest.raises(ValueError, match="expected panels from"):
        Explorer(model, MiniGridEnv(), panels=("nope",))

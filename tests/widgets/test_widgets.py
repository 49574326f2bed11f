"""Python-side behaviour of the widgets: defaults, kwargs, guards, edit messages, links."""

from __future__ import annotations

import ipywidgets
import numpy as np
import pytest
import traitlets

import dtwidgets.widgets as W
from dtwidgets.widgets import (
    EDIT_TOOLS, ActionPreferences, AttentionView, CalibrationCurve, ChannelHeatmap,
    ContributionBars, GridView, MatrixHeatmap, RTGScanView, apply_edit,
)
from dtwidgets.widgets._base import STATIC_DIR

ALL = [GridView, ChannelHeatmap, ActionPreferences, AttentionView, ContributionBars, MatrixHeatmap,
       RTGScanView, CalibrationCurve]


@pytest.mark.parametrize("cls", ALL)
def test_default_construction_and_esm(cls) -> None:
    w = cls()
    assert (STATIC_DIR / f"{cls._module}.js").is_file()
    esm = str(w._esm)
    assert "export" in esm and len(esm) < 40_000
    assert "http://" not in esm and "https://" not in esm  # no CDN imports
    assert w.error == ""
    assert isinstance(w, ipywidgets.DOMWidget)
    ipywidgets.VBox([w, ipywidgets.HBox([cls()])])  # composes


@pytest.mark.parametrize("cls", ALL)
def test_unknown_kwarg_is_type_error(cls) -> None:
    with pytest.raises(TypeError, match="unexpected keyword argument.*'colour_map'"):
        cls(colour_map="viridis")


def test_all_exported() -> None:
    for name in ["GridView", "ChannelHeatmap", "ActionPreferences", "AttentionView", "ContributionBars",
                 "MatrixHeatmap", "RTGScanView", "CalibrationCurve", "to_html", "DTWidget"]:
        assert hasattr(W, name)


def _grid() -> np.ndarray:
    g = np.zeros((5, 4, 3), np.uint8)
    g[..., 0] = 1
    g[0, :] = (2, 5, 0)
    return g


def test_grid_edit_message_updates_python_grid() -> None:
    """A front-end edit arrives as a comm 'update' with a binary buffer; Python gets the new grid."""
    w = GridView(_grid(), editable=True, edit_tool="goal")
    seen = []
    w.observe(lambda ch: seen.append(ch["new"].copy()), names="grid")
    edited = w.grid.copy()
    edited[3, 2] = EDIT_TOOLS["goal"]
    wire = bytes([5, 3, 0, 0]) + np.asarray([5, 4, 3], "<u4").tobytes() + edited.tobytes()  # uint8 code 5, as encode() writes
    msg = {"content": {"data": {"method": "update", "state": {"grid": None, "selected_cell": [3, 2]},
                                "buffer_paths": [["grid"]]}}, "buffers": [memoryview(wire)]}
    w._handle_msg(msg)
    assert w.grid.dtype == np.uint8 and w.grid.shape == (5, 4, 3)
    np.testing.assert_array_equal(w.grid, edited)
    assert w.selected_cell == (3, 2)
    assert len(seen) == 1 and tuple(seen[0][3, 2]) == (8, 1, 0)


def test_apply_edit_toggle_and_place() -> None:
    g = _grid()
    g2 = apply_edit(g, 2, 2, "ball")
    assert tuple(g2[2, 2]) == (6, 2, 0) and tuple(g[2, 2]) == (1, 0, 0)  # copy
    g3 = apply_edit(g2, 2, 2, "ball")
    assert tuple(g3[2, 2]) == (1, 0, 0)
    assert tuple(apply_edit(g2, 2, 2, "lava")[2, 2]) == (9, 0, 0)
    w = GridView(g)
    w.place(0, 0, "wall")  # toggles the wall away
    assert tuple(w.grid[0, 0]) == (1, 0, 0)
    with pytest.raises(ValueError, match="unknown edit tool"):
        apply_edit(g, 0, 0, "dragon")
    with pytest.raises(IndexError):
        apply_edit(g, 9, 0, "wall")


def test_an_edit_click_is_an_intent_applied_in_python() -> None:
    """The browser sends {event: click, x, y, tool}; with no on_edit callback the widget places the tool
    itself (the apply_edit rule), with one the callback decides; outside edit mode nothing is edited."""
    w = GridView(_grid(), editable=True, edit_tool="ball")
    w._handle_custom_msg({"event": "click", "x": 2, "y": 1, "tool": "ball"}, [])
    assert tuple(w.grid[2, 1]) == EDIT_TOOLS["ball"]
    seen = []
    w.on_edit(lambda x, y, tool: seen.append((x, y, tool)))
    w._handle_custom_msg({"event": "click", "x": 0, "y": 0, "tool": "goal"}, [])
    assert seen == [(0, 0, "goal")] and tuple(w.grid[0, 0]) != EDIT_TOOLS["goal"]
    w.editable = False
    w._handle_custom_msg({"event": "click", "x": 0, "y": 0, "tool": "goal"}, [])
    assert seen == [(0, 0, "goal")]


def test_click_and_press_from_python_act_as_the_browser_events() -> None:
    """``click`` selects the cell and, in edit mode, applies ``edit_tool`` before the click callbacks;
    ``press`` runs the key callbacks and, for a bound key, the action callbacks."""
    w = GridView(_grid(), edit_tool="ball", bindings={"ArrowUp": "forward"})
    clicks, keys, actions = [], [], []
    w.on_cell_click(lambda x, y: clicks.append((x, y, tuple(w.grid[x, y]))))
    w.on_key(keys.append)
    w.on_action(actions.append)
    before = w.grid.copy()
    w.click(2, 1)  # not editable: a selection only
    assert w.selected_cell == (2, 1) and np.array_equal(w.grid, before) and clicks == [(2, 1, tuple(before[2, 1]))]
    w.editable = True
    w.click(2, 1)
    assert tuple(w.grid[2, 1]) == EDIT_TOOLS["ball"] and clicks[-1] == (2, 1, EDIT_TOOLS["ball"])
    w.press("ArrowUp", shift=True)
    w.press(" ")
    assert keys == ["ArrowUp", "Space"] and actions == ["forward"]
    assert w.last_key_event == {"key": "Space", "shift": False, "ctrl": False, "alt": False}


def test_edit_names_follow_the_apply_edit_rule() -> None:
    from dtwidgets.widgets.grid_view import edit_names

    empty = EDIT_TOOLS["empty"]
    assert edit_names(empty, "ball") == ("ball", "blue", None)
    assert edit_names(EDIT_TOOLS["ball"], "ball") == (None, None, None)  # the same object again clears
    assert edit_names(empty, "wall") == ("wall", None, None)
    assert edit_names(empty, "door") == ("door", "yellow", "closed")


def test_grid_traits_validation() -> None:
    w = GridView(_grid(), agent_pos=np.array([1, 2]), agent_dir=np.int64(3))
    assert w.agent_pos == (1, 2) and w.agent_dir == 3
    for bad in [dict(agent_dir=4), dict(mode="3d"), dict(edit_tool="dragon"), dict(agent_pos=(1, 2, 3)),
                dict(agent_pos=(0.5, 1))]:
        with pytest.raises(traitlets.TraitError):
            GridView(_grid(), **bad)
    for n in (1, 20):
        assert GridView(np.ones((n, n, 3), np.uint8)).size == (n, n)


def test_guard_shows_and_clears_error() -> None:
    w = ChannelHeatmap(values=np.zeros((1, 2, 2)))
    state = {"fail": True}

    def handler(change):
        if state["fail"]:
            raise ValueError("boom from observer")

    w.observe_guarded(handler, names="selected_cell")
    w.selected_cell = (0, 0)  # does not raise
    assert "ValueError in" in w.error and "boom from observer" in w.error
    state["fail"] = False
    w.selected_cell = (1, 1)
    assert w.error == ""


def test_guard_from_frontend_message() -> None:
    w = GridView(_grid())
    w.observe_guarded(lambda ch: 1 / 0, names="selected_cell")
    w._handle_msg({"content": {"data": {"method": "update", "state": {"selected_cell": [1, 1]}, "buffer_paths": []}}, "buffers": []})
    assert w.selected_cell == (1, 1)
    assert "ZeroDivisionError" in w.error


def test_link_composes() -> None:
    g = GridView(_grid())
    h = ChannelHeatmap(values=np.zeros((2, 5, 4)))
    ipywidgets.link((g, "selected_cell"), (h, "selected_cell"))
    g.selected_cell = (2, 3)
    assert h.selected_cell == (2, 3)
    ipywidgets.dlink((g, "selected_cell"), (h, "agent_cell"))
    g.selected_cell = (4, 0)
    assert h.agent_cell == (4, 0)


def test_shape_coercions_and_labels() -> None:
    assert ChannelHeatmap(values=np.zeros((7, 7))).values.shape == (1, 7, 7)
    assert AttentionView(patterns=np.eye(3)).patterns.shape == (1, 3, 3)
    assert ContributionBars(values=[1, 2, 3]).values.shape == (1, 3)
    assert RTGScanView(rtgs=[0, 1], series=[0.5, 0.6]).series.shape == (1, 2)
    h = ChannelHeatmap(titles=np.array(["a", "b"]))
    assert h.titles == ["a", "b"]
    assert MatrixHeatmap(row_labels=range(3)).row_labels == ["0", "1", "2"]
    with pytest.raises(traitlets.TraitError, match="list of strings"):
        MatrixHeatmap(row_labels="abc")
    with pytest.raises(traitlets.TraitError, match="positive finite float or None"):
        ChannelHeatmap(vmax=-1)
    assert ChannelHeatmap(vmax=2).vmax == 2.0 and ChannelHeatmap(vmax=None).vmax is None
    assert AttentionView.labels_for(2, 2) == ["L0H0", "L0H1", "L1H0", "L1H1"]


def test_action_preferences_python_helpers() -> None:
    w = ActionPreferences(logits=[0.0, np.log(3.0)], action_names=["a", "b"], pair=(1, 0))
    np.testing.assert_allclose(w.probabilities, [0.25, 0.75], rtol=1e-6)
    assert w.preference == pytest.approx(np.log(3.0), rel=1e-6)
    w.pair = (0, 5)
    assert np.isnan(w.preference)


def test_rtg_scan_index() -> None:
    w = RTGScanView(rtgs=np.linspace(0, 1, 5), series=np.zeros((2, 5)), index=2)
    assert w.rtg == pytest.approx(0.5)
    with pytest.raises(traitlets.TraitError):
        w.index = -1


def test_calibration_curve_traits() -> None:
    w = CalibrationCurve(targets=[0, 1], mean=[0, 0.8], lo=[0, 0.6], hi=[0, 0.9],
                         outcome_counts=[[1, 2, 3], [4, 5, 6]], outcome_names=["goal", "collision", "timeout"])
    assert w.outcome_counts.shape == (2, 3) and w.outcome_counts.dtype == np.float32

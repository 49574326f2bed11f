"""One vocabulary: the MiniGrid names/codes and the outcome rule live in dtwidgets.vocabulary; every
other table (Python modules, js/lib/colors.js, js/lib/minigrid.js) is that table or is checked against it."""
from __future__ import annotations

import json
import re
from pathlib import Path

import numpy as np
import pytest

from dtwidgets import vocabulary as V

REPO = Path(__file__).resolve().parents[1]
JS_LIB = REPO / "js" / "lib"


def js_const(path: Path, name: str):
    """The value of ``export const NAME = <JSON-like literal>;`` in a JS file (read as text)."""
    text = path.read_text()
    m = re.search(rf"export const {name}\s*=\s*(.+?);\s*$", text, re.S | re.M)
    assert m, f"{path.name}: no `export const {name} = ...;`"
    literal = re.sub(r"(\{|,)\s*([A-Za-z_]\w*)\s*:", r'\1 "\2":', m.group(1))  # bare object keys -> JSON strings
    literal = re.sub(r",\s*([\]}])", r"\1", literal)  # trailing commas
    return json.loads(literal)


def test_matches_minigrid_itself():
    from minigrid.core.constants import COLOR_TO_IDX, OBJECT_TO_IDX, STATE_TO_IDX

    assert V.OBJECT_TO_IDX == OBJECT_TO_IDX
    assert V.COLOUR_TO_IDX == COLOR_TO_IDX
    assert V.STATE_TO_IDX == STATE_TO_IDX
    assert V.CODE_LIMITS == (11, 6, 3) and len(V.ONE_HOT_FEATURES) == 20


@pytest.mark.skipif(not JS_LIB.is_dir(), reason="js sources not present (installed package)")
def test_js_name_tables_match_python():
    colors = JS_LIB / "colors.js"
    assert js_const(colors, "MG_OBJECT_NAMES") == list(V.OBJECTS)
    assert js_const(colors, "MG_COLOR_NAMES") == list(V.COLOURS)
    assert js_const(colors, "MG_STATE_NAMES") == list(V.STATES)
    assert len(js_const(colors, "MG_COLORS")) == len(V.COLOURS)  # one RGB per colour code


@pytest.mark.skipif(not JS_LIB.is_dir(), reason="js sources not present (installed package)")
def test_edit_tools_live_in_python_only():
    """An edit is an intent: the grid sends the tool's name and Python applies it, so no JS module holds
    an edit-tool table (or writes the grid trait)."""
    js = [p for p in JS_LIB.parent.rglob("*.js") if "node_modules" not in p.parts and "harness" not in p.parts]
    assert js
    for p in js:
        text = p.read_text()
        assert "TOOLS" not in text and 'model.set("grid"' not in text, p


def test_js_parser_sees_a_mismatch(tmp_path):
    """The check above can fail: a JS table with another spelling is read as different."""
    f = tmp_path / "colors.js"
    f.write_text('export const MG_COLOR_NAMES = ["red", "green", "blue", "purple", "yellow", "gray"];\n')
    assert js_const(f, "MG_COLOR_NAMES") != list(V.COLOURS)


def test_python_tables_are_the_vocabulary():
    from dtwidgets.adapters import schema
    from dtwidgets.adapters.minigrid_env import EDITABLE_OBJECTS
    from dtwidgets.compositions import explorer
    from dtwidgets.model import dt
    from dtwidgets.widgets import grid_view

    assert schema.OBJECTS is V.OBJECTS and schema.COLOURS is V.COLOURS and schema.STATES is V.STATES
    assert grid_view.OBJECT_TO_IDX is V.OBJECT_TO_IDX and grid_view.COLOR_TO_IDX is V.COLOUR_TO_IDX
    assert grid_view.STATE_TO_IDX is V.STATE_TO_IDX
    assert explorer.edit_names is grid_view.edit_names  # the Explorer decodes edits with the widget's one rule
    assert (dt.N_OBJECTS, dt.N_COLOURS, dt.N_STATES) == V.CODE_LIMITS
    # a GridView edit tool writes the same object/colour as MiniGridEnv.set_cell's default for it
    for tool, (o, c, s) in grid_view.EDIT_TOOLS.items():
        assert V.OBJECTS[o] == tool
        if tool != "empty":
            assert V.COLOURS[c] == EDITABLE_OBJECTS[tool], tool
            assert s == (V.STATE_TO_IDX["closed"] if tool == "door" else 0), tool


@pytest.mark.parametrize("reward, terminated, truncated, want", [
    (0.97, True, False, "goal"), (-1.0, True, False, "collision"), (0.0, True, False, "collision"),
    (0.0, False, True, "timeout"), (0.0, False, False, None), (0.5, True, True, "goal"),
])
def test_one_outcome_rule_everywhere(reward, terminated, truncated, want):
    from dtwidgets.adapters.protocol import StepResult
    from dtwidgets.data.trajectories import Trajectories

    assert V.episode_outcome(reward, terminated, truncated) == want
    assert StepResult(np.zeros((1, 1, 3), np.uint8), reward, terminated, truncated).outcome == want  # the env side
    t = Trajectories(observations=np.ones((2, 7, 7, 3), np.uint8), actions=np.zeros(2), rewards=np.array([0.0, reward]),
                     terminated=np.array([False, terminated]), truncated=np.array([False, truncated]),
                     timesteps=np.arange(2), episode_starts=np.array([0]), episode_lengths=np.array([2]),
                     seeds=np.array([0]), env_id="MiniGrid-Empty-5x5-v0", max_steps=10)
    assert t.outcomes().tolist() == [want or "unfinished"]
    assert t.episode(0).outcome == (want or "unfinished")

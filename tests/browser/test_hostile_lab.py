"""Script injection, live notebook: hostile names in every widget and in the Explorer (hostile .safetensors
model + hostile trajectory .npz) in real JupyterLab. No dialog, no payload flag, no on* attribute (nor
img/iframe/svg) in the outputs, and the hostile text present as text.
"""
from __future__ import annotations

from typing import Any

import pytest

from tests.widgets.hostile import (
    BAD_ELEMENTS_JS, FLAG, IMG, OUTCOME, PLAIN_IMG, PLAIN_SCRIPT, ROOT_CLASS, SCRIPT, hostile_widgets, texts_shown,
)

from .conftest import open_notebook

pytestmark = [pytest.mark.browser, pytest.mark.slow]

OUT = ".jp-OutputArea"
WIDGETS_CELL = "from tests.widgets.hostile import hostile_layout\nhostile_layout(html=False)"
EXPLORER_CELL = ("import pathlib\nfrom tests.widgets.hostile import hostile_explorer\n"
                 "e, model_path, traj_path = hostile_explorer(pathlib.Path('.'))\ne")


def _watch(nb: Any) -> list[str]:
    dialogs: list[str] = []

    def on_dialog(d: Any) -> None:
        dialogs.append(f"{d.type}: {d.message}")
        d.dismiss()

    nb.page.on("dialog", on_dialog)
    return dialogs


def _assert_nothing_ran(nb: Any, dialogs: list[str]) -> None:
    nb.page.wait_for_timeout(500)  # let image errors / handlers fire if anything was injected
    assert dialogs == [], dialogs
    assert nb.page.evaluate(f"() => window.{FLAG}") is None, "a payload ran"
    assert nb.page.evaluate(BAD_ELEMENTS_JS, f"{OUT} .jp-OutputArea-output") == []  # output content, not Lab's chrome
    assert nb.foreign == [], nb.foreign


def test_every_widget_with_hostile_names_in_jupyterlab(browser, jupyter_lab) -> None:
    jupyter_lab.write_notebook("hostile_widgets.ipynb", [WIDGETS_CELL])
    with open_notebook(browser, jupyter_lab, "hostile_widgets.ipynb", viewport=(1300, 1000)) as nb:
        dialogs = _watch(nb)
        nb.run_all(f"{OUT} .dtw-contrib canvas", timeout=60)
        for name in hostile_widgets():
            nb.page.locator(f"{OUT} .{ROOT_CLASS[name]}").first.wait_for(state="attached", timeout=30_000)
        _assert_nothing_ran(nb, dialogs)
        for name in hostile_widgets():
            root = nb.page.locator(f"{OUT} .{ROOT_CLASS[name]}").first
            shown = root.evaluate("e => e.textContent + '\\n' + [...e.querySelectorAll('option')].map(o => o.textContent).join('\\n')")
            for p in texts_shown(name):
                assert p in shown, f"{name}: {p!r} not shown as text"
        out_text = nb.page.locator(OUT).first.inner_text()
        assert PLAIN_SCRIPT in out_text  # ipywidgets.Label
        tabs = nb.page.locator(f"{OUT} .lm-TabBar-tabLabel").all_inner_texts()
        assert IMG in tabs and SCRIPT in tabs


def test_explorer_with_hostile_model_and_trajectory_in_jupyterlab(browser, jupyter_lab) -> None:
    jupyter_lab.write_notebook("hostile_explorer.ipynb", [EXPLORER_CELL])
    with open_notebook(browser, jupyter_lab, "hostile_explorer.ipynb", viewport=(1500, 1100)) as nb:
        dialogs = _watch(nb)
        nb.run_all(f"{OUT} .dtw-actionprefs canvas", timeout=90)
        nb.page.locator(f"{OUT} .dtw-gridview canvas").first.wait_for(state="visible", timeout=30_000)
        nb.page.wait_for_timeout(1000)
        _assert_nothing_ran(nb, dialogs)
        text = nb.page.locator(OUT).first.inner_text()
        assert IMG in text and SCRIPT in text, "action names from the model file not shown as text"
        assert OUTCOME in text or PLAIN_IMG in text, "the trajectory's outcome not shown as text"

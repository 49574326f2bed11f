"""Script injection, static export: hostile names in every widget, ipywidgets HTML/Label/tab titles and the
Explorer (hostile .safetensors model + hostile trajectory .npz), exported with to_html and opened from file://.

Each page asserts: no dialog, the payloads' window flag unset, no element with an on* attribute (nor
img/iframe/svg), no CSP violation (nothing was even attempted), and the hostile text visible as text.
A positive control shows the CSP itself blocks an inline handler that does reach the DOM.
"""

from __future__ import annotations

import pathlib
from typing import Any

import pytest

from dtwidgets.widgets import to_html
from tests.widgets.hostile import (
    BAD_ELEMENTS_JS, CSP_RECORDER_JS, FLAG, IFRAME, IMG, OUTCOME, PAYLOADS, PLAIN_IMG, PLAIN_SCRIPT, SCRIPT, SVG,
    hostile_explorer, hostile_layout, hostile_widgets, texts_shown,
)

from .conftest import LOCAL_SCHEMES, PageRecorder

pytestmark = pytest.mark.browser


class HostilePage(PageRecorder):
    """A to_html page opened from file:// with dialogs and CSP violations recorded from the start."""

    def __init__(self, page: Any) -> None:
        super().__init__(page, lambda u: u.startswith(LOCAL_SCHEMES))
        self.dialogs: list[str] = []
        page.on("dialog", self._dialog)
        page.add_init_script(CSP_RECORDER_JS)

    def _dialog(self, d: Any) -> None:
        self.dialogs.append(f"{d.type}: {d.message}")
        d.dismiss()

    def text(self) -> str:
        return self.page.evaluate("() => document.body.innerText")

    def assert_nothing_ran(self) -> None:
        self.page.wait_for_timeout(300)  # let image errors / handlers fire if anything was injected
        assert self.dialogs == [], self.dialogs
        assert self.page.evaluate(f"() => window.{FLAG}") is None, "a payload ran"
        assert self.page.evaluate(BAD_ELEMENTS_JS, "body") == ["SCRIPT in dtw-x-page", "SCRIPT in "]  # data + runtime
        assert self.page.evaluate("() => window.__dtw_csp") == [], "something tried to run script"
        assert self.page.locator("script").count() == 2  # page data (JSON) + our runtime
        assert self.page.evaluate(BAD_ELEMENTS_JS, ".dtw-x-root") == []
        assert self.foreign == [], self.foreign
        assert self.errors == [], self.errors


@pytest.fixture
def hostile_page(browser, tmp_path):
    pages = []

    def open_(w, name: str, viewport=(1300, 1000)) -> HostilePage:
        path = to_html(w, tmp_path / f"{name}.html", title=IMG)
        page = browser.new_page(viewport={"width": viewport[0], "height": viewport[1]})
        pages.append(page)
        rec = HostilePage(page)
        page.goto(path.as_uri())
        page.wait_for_selector("body[data-dtw-ready]", timeout=30_000)
        assert page.get_attribute("body", "data-dtw-ready") == "1", rec.errors
        return rec

    yield open_
    for p in pages:
        p.close()


def test_every_widget_with_hostile_names_in_an_exported_page(hostile_page) -> None:
    rec = hostile_page(hostile_layout(), "hostile_widgets")
    rec.assert_nothing_ran()
    names = list(hostile_widgets())
    hosts = rec.page.locator(".dtw-x-widget")
    assert hosts.count() == len(names)
    by_module = {hosts.nth(i).get_attribute("data-widget"): hosts.nth(i) for i in range(hosts.count())}
    for name in names:
        host = by_module[name]
        assert host.locator("canvas").count() >= 1, f"{name} did not draw"
        shown = host.evaluate("e => e.innerText + '\\n' + [...e.querySelectorAll('option')].map(o => o.textContent).join('\\n')")
        for p in texts_shown(name):
            assert p in shown, f"{name}: {p!r} not shown as text"
    page_text = rec.text()
    # page title, ipywidgets.HTML (sanitised: tags outside the whitelist shown literally), Label, tab titles
    assert rec.page.title() == IMG and rec.page.locator("h1").inner_text() == IMG
    html_box = rec.page.locator(".dtw-x-html").first
    assert html_box.locator("b").first.inner_text() == IMG
    for p in (SCRIPT, SVG, IFRAME):
        assert p in html_box.inner_text()
    assert PLAIN_SCRIPT in page_text
    titles = rec.page.locator(".dtw-x-tabtitle").all_inner_texts()
    assert titles == [IMG, SCRIPT]


def test_hostile_label_in_a_canvas_tooltip_is_text(hostile_page) -> None:
    ws = hostile_widgets()
    rec = hostile_page(ws["contribution_bars"], "hostile_tooltip")
    cv = rec.page.locator("canvas.dtw-bars")
    box = cv.bounding_box()
    tip = rec.page.locator(".dtw-tip")
    seen = ""
    for y in range(20, int(box["height"]) - 2, 6):  # hover down the rows until the first label shows
        cv.hover(position={"x": 200, "y": y})
        if tip.is_visible() and IMG in (seen := tip.inner_text()):
            break
    assert IMG in seen, f"tooltip text: {seen!r}"
    rec.assert_nothing_ran()


def test_csp_blocks_an_inline_handler_that_reaches_the_dom(hostile_page) -> None:
    """Positive control: the page's policy alone stops injected markup (defence in depth)."""
    rec = hostile_page(hostile_widgets()["matrix_heatmap"], "csp_control")
    rec.page.evaluate(f"""() => {{
        document.body.insertAdjacentHTML('beforeend', '<img id="ctl" src="x" onerror="window.{FLAG}=1">');
        const s = document.createElement('script'); s.textContent = 'window.{FLAG}=2'; document.body.appendChild(s);
    }}""")
    rec.page.wait_for_timeout(500)
    assert rec.page.evaluate(f"() => window.{FLAG}") is None
    blocked = rec.page.evaluate("() => window.__dtw_csp")
    assert any(v.startswith("script-src") for v in blocked), blocked


@pytest.mark.slow
def test_explorer_with_hostile_model_and_trajectory_in_an_exported_page(hostile_page, tmp_path: pathlib.Path) -> None:
    e, model_path, traj_path = hostile_explorer(tmp_path)
    assert model_path.suffix == ".safetensors" and traj_path.suffix == ".npz"
    rec = hostile_page(e, "hostile_explorer", viewport=(1500, 1100))
    rec.assert_nothing_ran()
    text = rec.text()
    # action names (from the model file) in the status line, the preferences and the analysis notes;
    # the outcome (from the trajectory file) in the status line, or in the error line if loading refused it
    assert IMG in text and SCRIPT in text
    assert PLAIN_IMG in text, "the trajectory's outcome is not shown as text"
    options = rec.page.locator(".dtw-actionprefs option").all_inner_texts()
    assert IMG in options and SCRIPT in options
    assert OUTCOME in text or any(PLAIN_IMG in t for t in rec.page.locator(".dtw-x-html").all_inner_texts())
    assert all(p not in rec.page.content() for p in PAYLOADS if "<" in p), "a payload is in the DOM as markup"

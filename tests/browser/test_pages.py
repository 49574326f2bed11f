"""to_html pages inside other pages (issue: pasted pages restyled the host and collided on ids): two
pages pasted into one host page both render and answer hover, the host's own body style is kept, one
page pasted twice works, and the iframe snippet renders in a sandboxed frame under our CSP. Network
blocked: only file:/blob:/data:/about: requests, no console error."""
from __future__ import annotations

import re

import numpy as np
import pytest

from dtwidgets.widgets import MatrixHeatmap, to_html_string

from .conftest import LOCAL_SCHEMES, PageRecorder

pytestmark = pytest.mark.browser

HOST_STYLE = "<style>body{background:rgb(1, 2, 3);margin:3px}</style>"


def _heatmap(v: float, title: str) -> MatrixHeatmap:
    return MatrixHeatmap(values=np.array([[v, -v]]), row_labels=["r"], col_labels=["a", "b"], title=title)


def _open(browser, tmp_path, body: str, name: str) -> PageRecorder:
    path = tmp_path / f"{name}.html"
    path.write_text(f"<!DOCTYPE html><html><head><title>host</title>{HOST_STYLE}</head><body>"
                    f"<h1 id='host'>my course page</h1>{body}</body></html>", encoding="utf-8")
    page = browser.new_page(viewport={"width": 1100, "height": 900})
    rec = PageRecorder(page, lambda u: u.startswith(LOCAL_SCHEMES))
    page.goto(path.as_uri())
    return rec


def _hover_text(rec: PageRecorder, cv) -> str:
    cs, ox, oy = (float(cv.get_attribute(a)) for a in ("data-cell", "data-ox", "data-oy"))
    cv.hover(position={"x": ox + 1.5 * cs, "y": oy + cs / 4})
    return rec.page.locator(".dtw-tip:visible").first.text_content() or ""


@pytest.mark.parametrize("same", [False, True], ids=["two pages", "one page twice"])
def test_pasted_pages_both_render_and_keep_the_host_style(browser, tmp_path, same) -> None:
    a = to_html_string(_heatmap(1.0, "first"), title="first", embed="fragment")
    b = a if same else to_html_string(_heatmap(2.0, "second"), title="second", embed="fragment")
    markup = re.sub(r"<script.*?</script>", "", a, flags=re.S)  # the page's own markup, without data and runtime
    assert "Content-Security-Policy" not in markup and "<body" not in markup and "body{" not in markup
    rec = _open(browser, tmp_path, a + "<p>between</p>" + b, "pasted")
    page = rec.page
    page.wait_for_selector("body[data-dtw-ready]", timeout=30_000)
    assert page.get_attribute("body", "data-dtw-ready") == "1", rec.errors
    roots = page.locator(".dtw-x-root")
    assert roots.count() == 2
    for i in range(2):
        assert roots.nth(i).get_attribute("data-dtw-ready") == "1"
        assert roots.nth(i).locator(".dtw-matrix canvas.dtw-heat").count() == 1, f"page {i} rendered once"
    style = page.evaluate("() => { const s = getComputedStyle(document.body); return [s.backgroundColor, s.margin]; }")
    assert style == ["rgb(1, 2, 3)", "3px"], "a pasted page restyled the host's body"
    for i in range(2):
        text = _hover_text(rec, roots.nth(i).locator("canvas.dtw-heat"))
        assert "col: b" in text and ("value: -1" in text if (same or i == 0) else "value: -2" in text), text
    assert rec.foreign == [] and rec.errors == []


def test_iframe_snippet_renders_sandboxed(browser, tmp_path) -> None:
    snippet = to_html_string(_heatmap(1.0, "framed"), title="framed", embed="iframe")
    assert snippet.startswith("<iframe") and 'sandbox="allow-scripts"' in snippet and "<script" not in snippet
    rec = _open(browser, tmp_path, snippet, "framed")
    frame = rec.page.frame_locator("iframe.dtw-x-frame")
    frame.locator("body[data-dtw-ready='1']").wait_for(timeout=30_000)
    assert frame.locator(".dtw-matrix canvas.dtw-heat").count() == 1
    csp = frame.locator("meta[http-equiv='Content-Security-Policy']").get_attribute("content")
    assert "default-src 'none'" in csp
    assert rec.foreign == [] and rec.errors == []


def test_standalone_page_keeps_its_csp_in_head() -> None:
    html = to_html_string(_heatmap(1.0, "x"))
    head, body = html.split("<body>", 1)
    assert "Content-Security-Policy" in head and "Content-Security-Policy" not in re.sub(r"<script.*?</script>", "", body, flags=re.S)
    assert "body{" not in html.split("</style>")[0], "page styles are scoped to the page's own root"
    with pytest.raises(ValueError, match=r"expected embed in \('page', 'fragment', 'iframe'\), got 'frame'"):
        to_html_string(_heatmap(1.0, "x"), embed="frame")

"""``python -m dtwidgets.export`` (issue 26: nbconvert / myst-nb pages of executed notebooks were blank
offline): a small notebook is EXECUTED by nbconvert (widget state saved), exported, and opened from
file:// in Chromium with the network blocked. The markdown, code and text output read as usual, the
PNG output is inline, the dtwidgets outputs are live from the saved state (a heatmap hover reads the
value the notebook set; the RTG slider previews the preference from the saved scan, computed here with
numpy), the ipywidgets controls of a container are one line saying they need a kernel; 0 external requests, no console error.
A hostile copy (script in markdown, in outputs, in widget state strings, a replaced ``_esm``, a
prototype-polluting buffer path) runs nothing and shows the hostile text as text.
"""
from __future__ import annotations

import copy
import json
import os
import pathlib
import subprocess
import sys

import numpy as np
import pytest

from dtwidgets.export import notebook_to_html, notebook_to_html_string

from .conftest import DRAG_JS, LOCAL_SCHEMES, REPO, PageRecorder

pytestmark = pytest.mark.browser

NAMES = ["left", "right", "forward"]
CELLS = [
    ("markdown", "# Lesson one\n\nThe **agent** learns; see the table:\n\n| a | b |\n|---|---|\n| 1 | 2 |"),
    ("code", "print('hello from the kernel', 6 * 7)"),
    ("code", "import numpy as np, ipywidgets\nfrom dtwidgets.widgets import MatrixHeatmap, RTGSlider, ActionPreferences, StatusLine\n"
             "heat = MatrixHeatmap(values=np.array([[0.25, -1.5]], np.float32), row_labels=['r'], col_labels=['a', 'b'], title='heat')\n"
             "heat"),
    ("code", "rtgs = np.linspace(-1, 1, 5, dtype=np.float32)\n"
             "scan = np.stack([np.zeros(5), np.zeros(5), 4 * rtgs], 1).astype(np.float32)\n"
             f"prefs = ActionPreferences(logits=np.array([2.0, 0.0, 0.0], np.float32), action_names={NAMES!r}, rtg=0.0,\n"
             "                          scan_rtgs=rtgs, scan_logits=scan, follow_group='g1')\n"
             "status = StatusLine(lead=['step 2'], rtg=0.0, preferences=prefs, follow_group='g1')\n"
             "slider = RTGSlider(value=0.0, min=-1, max=1, step=0.05, follow_group='g1')\n"
             "ipywidgets.VBox([slider, prefs, status, ipywidgets.IntSlider(3, description='n'), ipywidgets.Button(), ipywidgets.Button()])"),
    ("code", "import base64\nfrom IPython.display import Image\n"  # a 1x1 red PNG
             "Image(base64.b64decode('iVBORw0KGgoAAAANSUhEUgAAAAEAAAABCAYAAAAfFcSJAAAADUlEQVR42mP8z8DwHwAFBQIAX8jx0gAAAABJRU5ErkJggg=='))"),
]


@pytest.fixture(scope="module")

def executed(tmp_path_factory) -> pathlib.Path:
    """The notebook above, executed by ``jupyter nbconvert --to notebook --execute`` (widget state saved)."""
    nbformat = pytest.importorskip("nbformat")
    pytest.importorskip("nbconvert")
    d = tmp_path_factory.mktemp("nb")
    nb = nbformat.v4.new_notebook(cells=[nbformat.v4.new_markdown_cell(s) if k == "markdown" else nbformat.v4.new_code_cell(s)
                                         for k, s in CELLS])
    nb.metadata["kernelspec"] = {"name": "python3", "display_name": "Python 3", "language": "python"}
    nbformat.write(nb, d / "lesson.ipynb")
    env = dict(os.environ, PYTHONPATH=os.pathsep.join([str(REPO), os.environ.get("PYTHONPATH", "")]).rstrip(os.pathsep))
    r = subprocess.run([sys.executable, "-m", "jupyter", "nbconvert", "--to", "notebook", "--execute", "lesson.ipynb",
                        "--output", "lesson.run.ipynb"], cwd=d, env=env, capture_output=True, text=True, timeout=240)
    assert r.returncode == 0, r.stderr[-3000:]
    return d / "lesson.run.ipynb"


def _open(browser, path: pathlib.Path) -> PageRecorder:
    page = browser.new_page(viewport={"width": 1100, "height": 900})
    rec = PageRecorder(page, lambda u: u.startswith(LOCAL_SCHEMES))
    page.goto(path.as_uri())
    page.wait_for_selector("body[data-dtw-ready]", timeout=30_000)
    assert page.get_attribute("body", "data-dtw-ready") == "1", rec.errors
    return rec


def test_executed_notebook_page_is_live_offline(browser, executed, tmp_path) -> None:
    out = tmp_path / "lesson.html"
    r = subprocess.run([sys.executable, "-m", "dtwidgets.export", str(executed), "-o", str(out)],
                       cwd=REPO, capture_output=True, text=True, timeout=120)
    assert r.returncode == 0 and out.is_file(), r.stderr
    rec = _open(browser, out)
    page = rec.page
    assert page.title() == "Lesson one"
    text = page.locator("body").inner_text()
    assert "hello from the kernel 42" in text and "print('hello from the kernel', 6 * 7)" in text
    assert page.locator("h1", has_text="Lesson one").count() == 1 and page.locator("strong", has_text="agent").count() == 1
    assert page.locator(".dtw-nb-markdown table td").all_inner_texts() == ["1", "2"]
    img = page.locator("img.dtw-nb-img")
    assert img.count() == 1 and img.evaluate("i => [i.complete, i.naturalWidth]") == [True, 1]
    assert "[IntSlider, Button ×2: need a kernel (not interactive on this page)]" in text, "one line per run of controls"
    # the heatmap, live: hovering cell b reads the value the notebook set
    cv = page.locator(".dtw-matrix canvas.dtw-heat")
    assert cv.count() == 1
    cs, ox, oy = (float(cv.get_attribute(a)) for a in ("data-cell", "data-ox", "data-oy"))
    cv.hover(position={"x": ox + 1.5 * cs, "y": oy + cs / 4})
    tip = page.locator(".dtw-tip:visible").first.text_content() or ""
    assert "col: b" in tip and "value: -1.5" in tip, tip
    # the RTG slider scrubs over the saved scan; the status line follows the referenced preferences
    line = page.locator(".dtw-status-line")
    page.wait_for_function("() => document.querySelector('.dtw-status-line').textContent.includes('prefers')", timeout=10_000)
    page.evaluate(DRAG_JS, [0.8, False])  # dragging: a preview (a release returns to the saved state: no kernel)
    page.wait_for_function("() => document.querySelector('.dtw-status-line').textContent.includes('preview')", timeout=10_000)
    q = np.exp([0.0, 0.0, 3.2])
    assert f"model prefers forward ({round(q[2] / q.sum() * 100)}%)" in line.inner_text()
    assert rec.foreign == [] and rec.errors == []
    assert not [u for u in rec.requests if u.startswith(("http:", "https:", "ws:"))]
    page.close()


HOSTILE = "<script>window.__pwned=1</script><img src=x onerror=\"window.__pwned=2\">"


def _hostile(nb: dict) -> dict:
    nb = copy.deepcopy(nb)
    nb["cells"][0]["source"] = f"# Evil {HOSTILE}\n\n[click](javascript:window.__pwned=3) ![web](http://evil.example/x.png)\n\n{HOSTILE}"
    outs = nb["cells"][1]["outputs"]
    outs[0]["text"] = [f"</pre>{HOSTILE}"]
    outs.append({"output_type": "display_data", "metadata": {},
                 "data": {"text/html": [f"<b>bold</b>{HOSTILE}<iframe src='http://evil.example'></iframe>"]}})
    outs.append({"output_type": "display_data", "metadata": {},
                 "data": {"image/svg+xml": ["<svg xmlns='http://www.w3.org/2000/svg' onload='window.__pwned=4'><script>window.__pwned=5</script></svg>"]}})
    outs.append({"output_type": "display_data", "metadata": {}, "data": {"application/javascript": ["window.__pwned=6"]}})
    state = nb["metadata"]["widgets"]["application/vnd.jupyter.widget-state+json"]["state"]
    for m in state.values():
        s = m["state"]
        if s.get("_anywidget_id", "").endswith("MatrixHeatmap"):
            s["title"] = HOSTILE
            s["row_labels"] = [HOSTILE]
            s["_esm"] = "window.__pwned = 7; export default { render() {} };"
            m.setdefault("buffers", []).append({"path": ["__proto__", "polluted"], "encoding": "base64", "data": "AAAA"})
    state["evil"] = {"model_module": "evil", "model_name": "AnyModel", "state": {
        "_anywidget_id": "evil.Widget", "_esm": "window.__pwned = 8; export default { render() {} };"}}
    nb["cells"][2]["outputs"].append({"output_type": "display_data", "metadata": {}, "data": {
        "application/vnd.jupyter.widget-view+json": {"model_id": "evil", "version_major": 2, "version_minor": 0}}})
    return nb


def test_hostile_notebook_runs_nothing(browser, executed, tmp_path) -> None:
    nb = _hostile(json.loads(executed.read_text(encoding="utf-8")))
    (tmp_path / "evil.ipynb").write_text(json.dumps(nb), encoding="utf-8")
    html = notebook_to_html_string(tmp_path / "evil.ipynb")
    head = html.split("<body>", 1)[0]
    assert "Content-Security-Policy" in head and "default-src 'none'" in head
    assert html.count("<script") == 2, "only our page data and our runtime"
    assert "window.__pwned = 7" not in html and "window.__pwned = 8" not in html, "a notebook's _esm is never shipped"
    rec = _open(browser, notebook_to_html(tmp_path / "evil.ipynb", tmp_path / "evil.html"))
    page = rec.page
    assert page.evaluate("() => [window.__pwned, ({}).polluted]") == [None, None]
    text = page.locator("body").inner_text()
    assert text.count(HOSTILE) >= 4, "hostile markdown, stream and HTML output are shown as text"
    assert page.locator(".dtw-nb-html b", has_text="bold").count() == 1 and page.locator("iframe").count() == 0
    assert page.locator("a[href^='javascript']").count() == 0
    assert "[image web: not embedded in this offline page]" in text
    assert "[evil.Widget: need a kernel (not interactive on this page)]" in text
    # the heatmap is still drawn by OUR module, its hostile labels as text in its tooltip
    cv = page.locator(".dtw-matrix canvas.dtw-heat")
    assert cv.count() == 1
    cs, ox, oy = (float(cv.get_attribute(a)) for a in ("data-cell", "data-ox", "data-oy"))
    cv.hover(position={"x": ox + 0.5 * cs, "y": oy + cs / 4})
    assert HOSTILE in (page.locator(".dtw-tip:visible").first.text_content() or "")
    assert page.evaluate("() => window.__pwned") is None
    assert rec.foreign == [] and rec.errors == []
    page.close()


def test_export_refuses_what_is_not_an_executed_notebook(tmp_path) -> None:
    (tmp_path / "x.ipynb").write_text('{"nbformat": 3, "worksheets": []}', encoding="utf-8")
    with pytest.raises(ValueError, match=r"expected an nbformat 4 notebook with a 'cells' list, got nbformat 3"):
        notebook_to_html_string(tmp_path / "x.ipynb")
    with pytest.raises(FileNotFoundError, match="does not exist"):
        notebook_to_html_string(tmp_path / "missing.ipynb")
    with pytest.raises(ValueError, match=r"expected embed in \('page', 'iframe'\), got 'frame'"):
        notebook_to_html_string(tmp_path / "x.ipynb", embed="frame")
    # a widget output without saved state is a note, not a blank
    nb = {"nbformat": 4, "nbformat_minor": 5, "metadata": {}, "cells": [{"cell_type": "code", "source": "w", "metadata": {},
          "execution_count": 1, "outputs": [{"output_type": "display_data", "metadata": {}, "data": {
              "application/vnd.jupyter.widget-view+json": {"model_id": "abc", "version_major": 2}}}]}]}
    assert "a widget whose state was not saved" in notebook_to_html_string(nb)
    snippet = notebook_to_html_string(nb, embed="iframe")
    assert snippet.startswith("<iframe") and 'sandbox="allow-scripts"' in snippet and "<script" not in snippet

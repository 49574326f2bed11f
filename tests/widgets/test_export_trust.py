"""Static export trust without a browser: CSP, embedded JSON, HTML sanitiser (browser checks: tests/browser/test_hostile_export.py)."""

from __future__ import annotations

import base64
import hashlib
import json
import re

import ipywidgets
import numpy as np
import pytest

from dtwidgets.widgets import ContributionBars, MatrixHeatmap, to_html_string
from dtwidgets.widgets._safe_html import ALLOWED_TAGS, safe_html_nodes

IMG = "<img src=x onerror=alert(1)>"
SCRIPT = '"><script>alert(1)</script>'


def _scripts(html: str) -> list[tuple[str, str]]:
    return re.findall(r"<script([^>]*)>(.*?)</script>", html, re.S)


def _csp(html: str) -> str:
    m = re.search(r'<meta http-equiv="Content-Security-Policy" content="([^"]*)">', html)
    assert m, "no CSP meta"
    return m.group(1)


def test_csp_allows_only_the_hashed_runtime() -> None:
    html = to_html_string(MatrixHeatmap(values=np.eye(2), title=SCRIPT))
    csp = _csp(html)
    assert "unsafe-inline" not in csp.split("script-src")[1].split(";")[0]
    assert "unsafe-eval" not in csp and "default-src 'none'" in csp
    scripts = _scripts(html)
    assert len(scripts) == 2 and scripts[1][0].strip() == 'type="module"'
    assert re.fullmatch(r'id="(dtw-[0-9a-f]{12})-data" data-dtw-page="\1" type="application/json"', scripts[0][0].strip())
    runtime = scripts[1][1]
    digest = base64.b64encode(hashlib.sha256(runtime.encode()).digest()).decode()
    assert f"'sha256-{digest}'" in csp
    # the only executable script is exactly our runtime file
    from dtwidgets.widgets._base import STATIC_DIR

    assert runtime == (STATIC_DIR / "export_runtime.js").read_text().replace("</script", "<\\/script")


def test_embedded_json_has_no_markup_characters() -> None:
    names = [IMG, SCRIPT, "</script><!--", "a & b", "\u2028"]
    w = ContributionBars(values=np.ones((1, 5), np.float32), labels=names, title=SCRIPT, series_names=[IMG])
    html = to_html_string(ipywidgets.VBox([w, ipywidgets.Label(SCRIPT)]), title=IMG)
    data_text = _scripts(html)[0][1]
    for ch in "<>&\u2028":
        assert ch not in data_text
    data = json.loads(data_text)
    (m,) = data["models"].values()
    assert m["state"]["labels"] == names and m["state"]["title"] == SCRIPT
    assert data["tree"]["children"][1] == {"type": "text", "text": SCRIPT}
    # the title is escaped where it appears as HTML
    assert IMG not in html and "&lt;img src=x onerror=alert(1)&gt;" in html


@pytest.mark.parametrize("value, nodes", [
    (f"model prefers <b>{IMG}</b> (80%)", ["model prefers ", ["b", [IMG]], " (80%)"]),
    (SCRIPT, [SCRIPT]),
    ("<span style='color:red' onclick='alert(1)'>a &amp; &lt;b&gt;</span><br>z", [["span", ["a & <b>"]], ["br", []], "z"]),
    ("<a href='javascript:alert(1)'>x</a>", ["<a href='javascript:alert(1)'>x</a>"]),
    ("<svg onload=alert(1)><b>ok</b>", ["<svg onload=alert(1)>", ["b", ["ok"]]]),
    ("<img src=x onerror=alert(1)", ["<img src=x onerror=alert(1)"]),
    ("<b>open <i>nested", [["b", ["open ", ["i", ["nested"]]]]]),
    ("x<!-- hidden -->y", ["xy"]),
])
def test_sanitiser_keeps_a_few_tags_without_attributes_and_shows_the_rest(value, nodes) -> None:
    assert safe_html_nodes(value) == nodes


def _walk(nodes):
    for n in nodes:
        if isinstance(n, list):
            yield n[0]
            yield from _walk(n[1])


def test_exported_html_widget_is_sanitised() -> None:
    html = to_html_string(ipywidgets.HTML(f"<div style='x'><b onmouseover=alert(1)>{IMG}</b>{SCRIPT}</div>"))
    tree = json.loads(_scripts(html)[0][1])["tree"]
    assert tree["type"] == "html" and "html" not in tree
    assert set(_walk(tree["nodes"])) <= ALLOWED_TAGS
    assert tree["nodes"] == [["div", [["b", [IMG]], SCRIPT]]]


def test_lists_and_tables_render_as_elements_not_text() -> None:
    """Notebook 05's "Detected jumps" list and teacher/clone table were shown as literal <ul><li> text."""
    value = ("<ul><li onclick=alert(1)>loss at step 20</li><li><b>accuracy</b></li></ul>"
             "<table style='x'><tr><th>metric</th><th>teacher</th></tr><tr><td>return</td><td>0.9</td></tr></table>")
    assert safe_html_nodes(value) == [
        ["ul", [["li", ["loss at step 20"]], ["li", [["b", ["accuracy"]]]]]],
        ["table", [["tr", [["th", ["metric"]], ["th", ["teacher"]]]], ["tr", [["td", ["return"]], ["td", ["0.9"]]]]]]]
    # a link inside a cell stays literal text: shown, never followed
    assert safe_html_nodes("<td><a href='javascript:alert(1)'>x</a></td>") == [["td", ["<a href='javascript:alert(1)'>x</a>"]]]


def test_the_runtime_builds_exactly_the_sanitiser_tags() -> None:
    import re

    from dtwidgets.widgets._base import STATIC_DIR

    src = (STATIC_DIR.parent.parent / "js" / "export_runtime.js").read_text()
    m = re.search(r"const SAFE_TAGS = new Set\(\[(.*?)\]\)", src, re.S)
    assert m and set(re.findall(r'"(\w+)"', m.group(1))) == set(ALLOWED_TAGS)

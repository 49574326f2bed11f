"""Our front-end code never turns a string into markup or code: no innerHTML-like sinks in js/ or the bundles.

Text from Python (labels, names, titles, notes, tooltips, token labels) reaches the DOM through
``textContent`` / text nodes (``js/lib/dom.js`` ``h(..., {text})``) or canvas ``fillText``. The browser
tests with hostile names (tests/browser/test_hostile_*.py) check the same thing from the outside.
"""

from __future__ import annotations

import re
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]
SOURCES = sorted((REPO / "js").glob("*.js")) + sorted((REPO / "js" / "lib").glob("*.js"))
BUNDLES = sorted((REPO / "dtwidgets" / "static").glob("*.js"))
SINKS = re.compile(r"\.innerHTML\b|\.outerHTML\b|insertAdjacentHTML|document\.write|\beval\s*\(|new\s+Function\s*\(|"
                   r"\bsrcdoc\b|createContextualFragment|DOMParser|setAttribute\(\s*[\"']on|\.on[a-z]+\s*=\s*[\"'`]")


def _code(text: str) -> str:
    """``text`` without // and /* */ comments (a sink named in a comment is fine)."""
    text = re.sub(r"/\*.*?\*/", "", text, flags=re.S)
    return re.sub(r"(^|[^:\\])//[^\n]*", r"\1", text)


def test_there_are_sources_and_bundles() -> None:
    assert len(SOURCES) >= 10 and len(BUNDLES) >= 9


@pytest.mark.parametrize("path", SOURCES + BUNDLES, ids=lambda p: str(p.relative_to(REPO)))
def test_no_markup_or_code_sinks(path: Path) -> None:
    text = path.read_text(encoding="utf-8")
    code = text if path in BUNDLES else _code(text)  # bundles are minified without comments
    hits = [m.group(0) for m in SINKS.finditer(code)]
    assert hits == [], f"{path.relative_to(REPO)} uses {hits}: build DOM with textContent / text nodes instead"


def test_the_sink_pattern_catches_what_it_should() -> None:
    for bad in ("d.innerHTML = x", "e.insertAdjacentHTML('beforeend', s)", "el.outerHTML=s", "eval(s)",
                "new Function('return 1')", "e.setAttribute('onclick', s)", "img.onerror = 'x'"):
        assert SINKS.search(_code(bad)), bad
    for ok in ("e.textContent = s", "// innerHTML is never used", "ctx.fillText(s, 0, 0)", "e.addEventListener('click', f)"):
        assert not SINKS.search(_code(ok)), ok

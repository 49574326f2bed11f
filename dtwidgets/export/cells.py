"""Notebook cells and outputs as escaped HTML for an offline page (see :mod:`dtwidgets.export`).

Everything here comes from an untrusted notebook, so every text is escaped and nothing can run:

* markdown is rendered by markdown-it-py (CommonMark + tables + strikethrough) with raw HTML
  OFF (``<script>`` in markdown is shown as text), its own link validation (no ``javascript:`` /
  ``vbscript:`` / ``file:`` links) and images limited to inline ``data:image/...`` and the cell's
  attachments (an image on the web or on disk becomes a line of text: the page makes no request and
  reads no local file);
* code, streams, errors (ANSI colours removed) and ``text/plain`` are ``<pre>`` text;
* ``image/png`` / ``image/jpeg`` / ``image/gif`` / ``image/webp`` / ``image/svg+xml`` outputs become
  ``<img src="data:...">`` (an SVG shown as an image runs no script);
* ``text/html`` is reduced to a few attribute-free tags (:func:`dtwidgets.widgets._safe_html.safe_html_nodes`),
  anything else in it shown as text (an HTML output with scripts and a text form: the text form);
  ``application/javascript`` never runs (a one-line note).
"""

from __future__ import annotations

import base64
import binascii
import html
import re
from typing import Any, Callable

from ..widgets._safe_html import ALLOWED_TAGS, safe_html_nodes

__all__ = ["markdown_html", "output_html", "source_text", "code_html", "sanitised_html"]

_IMAGES = ("image/png", "image/jpeg", "image/gif", "image/webp")
_DATA_IMAGE = re.compile(r"^data:image/(png|jpeg|gif|webp);base64,[A-Za-z0-9+/=\s]+$")
_ANSI = re.compile(r"\x1b\[[0-9;?]*[A-Za-z]")
_VOID = frozenset({"br"})


def source_text(src: Any) -> str:
    """A notebook ``source`` / multiline text field (a string or a list of strings) as one string."""
    if isinstance(src, list):
        return "".join(str(s) for s in src)
    return "" if src is None else str(src)


def _markdown() -> Any:
    try:
        from markdown_it import MarkdownIt
    except ImportError as exc:  # pragma: no cover - markdown-it-py ships with the test and pages extras
        raise ImportError("dtwidgets.export needs markdown-it-py to render markdown cells: "
                          "pip install 'dtwidgets[pages]' (or pip install markdown-it-py)") from exc
    return MarkdownIt("commonmark", {"html": False}).enable(["table", "strikethrough"])


def markdown_html(text: str, attachments: Any = None) -> str:
    """Markdown -> HTML with raw HTML escaped; images only from ``data:image/...`` or ``attachment:<name>``.

    ``attachments`` is the cell's ``attachments`` field (``{name: {mime: base64}}``) or None.
    """
    md = _markdown()
    default = md.renderer.rules.get("image")

    def image(tokens: list, idx: int, options: Any, env: Any) -> str:
        tok = tokens[idx]
        src = str(tok.attrGet("src") or "")
        alt = "".join(c.content for c in (tok.children or []))
        if src.startswith("attachment:"):
            src = _attachment(attachments, src[len("attachment:"):]) or ""
        if _DATA_IMAGE.match(src):
            tok.attrSet("src", src)
            return default(tokens, idx, options, env) if default else f'<img src="{html.escape(src)}" alt="{html.escape(alt)}">'
        return f'<span class="dtw-nb-noimg">[image {html.escape(alt)!s}: not embedded in this offline page]</span>'

    md.renderer.rules["image"] = image
    md.validateLink = _link_ok(md.validateLink)
    return md.render(text)


def _link_ok(validate: Callable[[str], bool]) -> Callable[[str], bool]:
    """markdown-it's own check, and (so that image attachments work) ``attachment:`` URLs."""
    return lambda url: url.strip().lower().startswith("attachment:") or validate(url)


def _attachment(attachments: Any, name: str) -> str | None:
    """``data:`` URL of the cell attachment ``name`` (an image mime type), or None."""
    entry = attachments.get(name) if isinstance(attachments, dict) else None
    if not isinstance(entry, dict):
        return None
    for mime in _IMAGES:
        if isinstance(entry.get(mime), (str, list)):
            b64 = _clean_base64(source_text(entry[mime]))
            return f"data:{mime};base64,{b64}" if b64 else None
    return None


def _clean_base64(s: str) -> str | None:
    """``s`` as canonical base64 (whitespace removed), or None when it is not base64."""
    try:
        return base64.b64encode(base64.b64decode("".join(s.split()), validate=True)).decode("ascii")
    except (binascii.Error, ValueError):
        return None


def sanitised_html(value: str) -> str:
    """An HTML output reduced to attribute-free :data:`ALLOWED_TAGS`; any other markup shown as text."""
    return _nodes_html(safe_html_nodes(value))


def _nodes_html(nodes: list) -> str:
    out = []
    for n in nodes:
        if isinstance(n, str):
            out.append(html.escape(n))
        elif isinstance(n, list) and n and n[0] in ALLOWED_TAGS:
            tag = n[0]
            out.append(f"<{tag}>" if tag in _VOID else f"<{tag}>{_nodes_html(n[1] if len(n) > 1 else [])}</{tag}>")
    return "".join(out)


def _pre(text: str, cls: str) -> str:
    return f'<pre class="{cls}">{html.escape(_ANSI.sub("", text))}</pre>\n'


def code_html(source: str, count: Any) -> str:
    """A code cell's input: its execution count and its source as text."""
    n = f"[{count}]" if isinstance(count, int) and not isinstance(count, bool) else "[ ]"
    return f'<div class="dtw-nb-in"><span class="dtw-nb-count">{n}</span>{_pre(source, "dtw-nb-code")}</div>\n'


def output_html(out: dict) -> str:
    """One non-widget output (stream, error, display_data, execute_result) as escaped HTML."""
    kind = out.get("output_type")
    if kind == "stream":
        name = "stderr" if out.get("name") == "stderr" else "stdout"
        return _pre(source_text(out.get("text")), f"dtw-nb-stream dtw-nb-{name}")
    if kind == "error":
        tb = out.get("traceback")
        text = "\n".join(str(t) for t in tb) if isinstance(tb, list) and tb else f"{out.get('ename')}: {out.get('evalue')}"
        return _pre(text, "dtw-nb-error")
    data = out.get("data")
    if kind not in ("display_data", "execute_result") or not isinstance(data, dict):
        return ""
    return _data_html(data)


def _data_html(data: dict) -> str:
    """The richest safe rendering of a mime bundle."""
    for mime in _IMAGES:
        if mime in data:
            b64 = _clean_base64(source_text(data[mime]))
            if b64:
                return f'<img class="dtw-nb-img" alt="output image" src="data:{mime};base64,{b64}">\n'
    if "image/svg+xml" in data:
        b64 = base64.b64encode(source_text(data["image/svg+xml"]).encode("utf-8")).decode("ascii")
        return f'<img class="dtw-nb-img" alt="output image" src="data:image/svg+xml;base64,{b64}">\n'
    page = source_text(data.get("text/html"))
    scripted = bool(re.search(r"<\s*script", page, re.I))  # e.g. plotly: its text form reads better than its source
    if page and not (scripted and "text/plain" in data):
        return f'<div class="dtw-nb-html">{sanitised_html(page)}</div>\n'
    if "text/markdown" in data:
        return f'<div class="dtw-nb-md">{markdown_html(source_text(data["text/markdown"]))}</div>\n'
    if "text/plain" in data or "text/latex" in data:
        return _pre(source_text(data.get("text/plain", data.get("text/latex"))), "dtw-nb-text")
    if "application/javascript" in data:
        return '<p class="dtw-nb-note">[an output with scripts: not run in this offline page]</p>\n'
    return ""


def note_html(text: str) -> str:
    """A one-line note (e.g. a widget that needs a kernel)."""
    return f'<p class="dtw-nb-note">{html.escape(text)}</p>\n'

"""Sanitise ``ipywidgets.HTML`` values for the static export: a tiny tag whitelist, no attributes.

``safe_html_nodes(value)`` parses an HTML string and returns a JSON-able tree that the export
runtime turns into DOM nodes with ``createElement`` / ``createTextNode`` (never ``innerHTML``):

* a ``str`` item is text (character references already decoded);
* a ``[tag, children]`` item is an element whose ``tag`` is in :data:`ALLOWED_TAGS`.

Allowed tags keep their text and nesting but lose every attribute (``style``, ``on*``, ``href``...).
Any other tag (``<img>``, ``<script>``, ``<a>``, ``<iframe>``, ``<svg>``...) is kept as its literal
source text, so ``<img src=x onerror=alert(1)>`` is *shown*, not run. Comments and doctypes are dropped.
"""

from __future__ import annotations

from html.parser import HTMLParser
from typing import Any, Union

__all__ = ["ALLOWED_TAGS", "safe_html_nodes"]

#: Tags kept as elements (without attributes); ``br`` is the only void one.
ALLOWED_TAGS = frozenset({"b", "i", "em", "strong", "u", "code", "pre", "br", "span", "small",
                          "sub", "sup", "div", "p", "h3", "h4",
                          "ul", "ol", "li", "table", "thead", "tbody", "tr", "th", "td"})
_VOID = frozenset({"br"})

Node = Union[str, list]


class _Sanitiser(HTMLParser):
    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.root: list[Node] = []
        self.stack: list[tuple[str, list[Node]]] = [("", self.root)]

    def _text(self, s: str) -> None:
        kids = self.stack[-1][1]
        if kids and isinstance(kids[-1], str):
            kids[-1] += s
        elif s:
            kids.append(s)

    def handle_starttag(self, tag: str, attrs: Any) -> None:
        if tag not in ALLOWED_TAGS:
            self._text(self.get_starttag_text() or f"<{tag}>")
            return
        el: list[Node] = []
        self.stack[-1][1].append([tag, el])
        if tag not in _VOID:
            self.stack.append((tag, el))

    def handle_startendtag(self, tag: str, attrs: Any) -> None:
        if tag in ALLOWED_TAGS:
            self.stack[-1][1].append([tag, []])
        else:
            self._text(self.get_starttag_text() or f"<{tag}/>")

    def handle_endtag(self, tag: str) -> None:
        open_tags = [t for t, _ in self.stack[1:]]
        if tag in ALLOWED_TAGS and tag in open_tags:
            while self.stack[-1][0] != tag:
                self.stack.pop()
            self.stack.pop()
        elif tag not in _VOID:
            self._text(f"</{tag}>")

    def handle_data(self, data: str) -> None:
        self._text(data)

    def unknown_decl(self, data: str) -> None:  # <![CDATA[...]]> and the like: shown as text
        self._text(f"<![{data}]]>")


def safe_html_nodes(value: Any) -> list[Node]:
    """Parse ``value`` (an HTML string) into the sanitised node tree described in the module doc."""
    p = _Sanitiser()
    p.feed(str(value))
    p.close()
    return p.root

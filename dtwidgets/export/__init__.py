"""Executed notebooks -> one offline HTML page with every dtwidgets output live.

Command line::

    python -m dtwidgets.export lesson.ipynb -o lesson.html [--title T] [--embed page|iframe]

Python: :func:`notebook_to_html` / :func:`notebook_to_html_string`.

The notebook must have been executed with its widget state saved (``jupyter nbconvert --to notebook
--execute`` does so; in JupyterLab: Settings > "Save Widget State Automatically"). The page:

* markdown cells rendered, code cells and text outputs as text, images inline (see :mod:`.cells`);
* every dtwidgets output rebuilt from the saved state (:mod:`.widget_state`) and drawn by OUR shipped
  bundles and page runtime, the same as :func:`dtwidgets.widgets.to_html` (which owns the page format):
  hover, selection, scrubbing and the RTG slider over the saved scan work with no kernel;
* ipywidgets containers laid out as in :func:`~dtwidgets.widgets.to_html`; any other widget is a
  one-line "needs a kernel" note;
* no request leaves the page (no CDN, no require.js), and the notebook is treated as untrusted: every
  text is escaped and the content-security policy in ``<head>`` lets only our runtime (by its sha256)
  and the widget modules it loads run.

``embed="iframe"`` gives an ``<iframe sandbox="allow-scripts" srcdoc=...>`` snippet of the same page
for sites with their own policy (Jupyter Book 2 / MyST, Sphinx; see docs/pages.md).
"""

from __future__ import annotations

import json
import os
import pathlib
from typing import Any

from ..widgets.export import _json_for_script, data_script, document, iframe_snippet, page_data, page_id, runtime_script
from .cells import code_html, markdown_html, note_html, output_html, source_text
from .widget_state import WIDGET_STATE_MIME, WIDGET_VIEW_MIME, SavedWidgets

__all__ = ["notebook_to_html", "notebook_to_html_string"]

EMBEDS = ("page", "iframe")

_NOTEBOOK_CSS = """
.dtw-nb{max-width:1200px;margin:0 auto}
.dtw-nb-cell{margin:10px 0}
.dtw-nb-in{display:flex;gap:6px;align-items:flex-start}
.dtw-nb-count{color:#303f9f;font:12px monospace;min-width:40px;padding-top:6px}
.dtw-x-page pre{margin:0;white-space:pre-wrap;word-break:break-word;font:12.5px/1.4 ui-monospace,Menlo,Consolas,monospace}
.dtw-nb-code{flex:1;background:#f5f5f5;border:1px solid #e0e0e0;border-radius:3px;padding:6px}
.dtw-nb-out{margin:4px 0 0 46px}
.dtw-nb-stderr{background:#fdecea}.dtw-nb-error{background:#fdecea;color:#7f0000;padding:4px}
.dtw-nb-img{max-width:100%}
.dtw-nb-note,.dtw-nb-noimg{color:#666;font-style:italic;font-size:13px}
.dtw-nb-md table{border-collapse:collapse}.dtw-nb-md th,.dtw-nb-md td{border:1px solid #ddd;padding:2px 6px}
.dtw-nb-html table{border-collapse:collapse;font-size:13px}.dtw-nb-html th,.dtw-nb-html td{border:1px solid #ddd;padding:2px 6px}
"""


class _Root:
    """Where a live widget output goes (its ``.dtw-x-root`` element is written once the page id is known)."""

    def __init__(self, widget: Any) -> None:
        self.widget = widget


def _load(notebook: Any) -> dict:
    """A notebook dict from a path or a dict (ValueError naming what is wrong)."""
    if isinstance(notebook, (str, os.PathLike)):
        p = pathlib.Path(notebook).expanduser()
        if not p.is_file():
            raise FileNotFoundError(f"notebook_to_html: expected a notebook file, {str(p)!r} does not exist")
        try:
            notebook = json.loads(p.read_text(encoding="utf-8"))
        except json.JSONDecodeError as exc:
            raise ValueError(f"notebook_to_html: {str(p)!r} is not a notebook (JSON error: {exc})") from exc
    if not isinstance(notebook, dict) or notebook.get("nbformat") != 4 or not isinstance(notebook.get("cells"), list):
        got = notebook.get("nbformat") if isinstance(notebook, dict) else type(notebook).__name__
        raise ValueError(f"notebook_to_html: expected an nbformat 4 notebook with a 'cells' list, got nbformat {got!r}")
    return notebook


def _outputs(cell: dict, saved: SavedWidgets) -> list:
    parts: list = []
    for out in cell.get("outputs") or []:
        if not isinstance(out, dict):
            continue
        data = out.get("data")
        view = data.get(WIDGET_VIEW_MIME) if isinstance(data, dict) else None
        mid = view.get("model_id") if isinstance(view, dict) else None
        if mid is not None and saved.has(mid):
            parts.append(_Root(saved.view(mid)))
        elif mid is not None:
            parts.append(note_html("[a widget whose state was not saved: run the notebook with widget state "
                                   "saved (jupyter nbconvert --execute) to see it here]"))
        else:
            parts.append(output_html(out))
    return parts


def _cells(nb: dict, saved: SavedWidgets) -> list:
    """The page body as HTML strings and :class:`_Root` markers, cell by cell."""
    parts: list = []
    for cell in nb["cells"]:
        if not isinstance(cell, dict):
            continue
        kind, src = cell.get("cell_type"), source_text(cell.get("source"))
        if kind == "markdown":
            parts.append(f'<div class="dtw-nb-cell dtw-nb-markdown">{markdown_html(src, cell.get("attachments"))}</div>\n')
        elif kind == "code":
            parts.append(f'<div class="dtw-nb-cell">{code_html(src, cell.get("execution_count"))}<div class="dtw-nb-out">')
            parts.extend(_outputs(cell, saved))
            parts.append("</div></div>\n")
    return parts


def _title(nb: dict, fallback: str) -> str:
    """The first markdown heading, else ``fallback``."""
    for cell in nb["cells"]:
        if isinstance(cell, dict) and cell.get("cell_type") == "markdown":
            for line in source_text(cell.get("source")).splitlines():
                if line.startswith("#"):
                    return line.lstrip("#").strip() or fallback
    return fallback


def notebook_to_html_string(notebook: Any, title: str | None = None, embed: str = "page") -> str:
    """The offline page of an executed notebook (a path or an nbformat-4 dict) as a string.

    ``embed``: ``"page"`` (a whole document) or ``"iframe"`` (a sandboxed ``<iframe srcdoc>`` snippet of it).
    ``title`` defaults to the first markdown heading (else the file name, else "notebook").
    """
    if embed not in EMBEDS:
        raise ValueError(f"notebook_to_html: expected embed in {EMBEDS}, got {embed!r}")
    fallback = pathlib.Path(notebook).stem if isinstance(notebook, (str, os.PathLike)) else "notebook"
    nb = _load(notebook)
    widgets_meta = nb.get("metadata", {}).get("widgets") if isinstance(nb.get("metadata"), dict) else None
    saved = SavedWidgets(widgets_meta.get(WIDGET_STATE_MIME) if isinstance(widgets_meta, dict) else None)
    parts = _cells(nb, saved)
    roots = [p.widget for p in parts if isinstance(p, _Root)]
    payload = _json_for_script(page_data(roots))
    page = page_id(payload)
    body = "".join(f'<div class="dtw-x-root" data-dtw-of="{page}"></div>' if isinstance(p, _Root) else p for p in parts)
    t = title if title is not None else _title(nb, fallback)
    runtime = runtime_script()
    markup = (f'<div class="dtw-x-page dtw-nb" id="{page}">\n{body}\n{data_script(page, payload)}</div>\n'
              f'<script type="module">{runtime}</script>\n')
    doc = document(t, markup, runtime, css=_NOTEBOOK_CSS)
    return doc if embed == "page" else iframe_snippet(doc, t, height_px=900)


def notebook_to_html(notebook: Any, path: str | os.PathLike, title: str | None = None, embed: str = "page") -> pathlib.Path:
    """Write :func:`notebook_to_html_string` to ``path`` (its folder must exist); returns the resolved path."""
    out = pathlib.Path(path).expanduser().resolve()
    if not out.parent.is_dir():
        raise FileNotFoundError(f"notebook_to_html: expected an existing folder for {str(path)!r}, "
                                f"but {str(out.parent)!r} does not exist")
    text = notebook_to_html_string(notebook, title=title, embed=embed)
    out.write_text(text, encoding="utf-8", newline="\n")  # LF: the CSP hash is of the runtime as written
    return out

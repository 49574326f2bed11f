"""Self-contained static HTML export of dtwidgets widgets and ipywidgets layouts.

``to_html(widget_or_layout, path)`` writes ONE HTML file that renders offline from
``file://``: every widget's bundled ESM is inlined once per module, its synced state is
embedded as JSON (binary buffers base64-encoded), and a ~2 KB runtime
(``dtwidgets/static/export_runtime.js``) provides a tiny model (get/set/on/off/save_changes/send)
and calls the anywidget ``render({model, el})``. No require.js, widget manager or CDN.

Interaction that lives in the browser keeps working (hover, selection, sliders, editing);
Python callbacks and Python-side ``ipywidgets.link`` do not (there is no kernel).
Supported containers: any ``ipywidgets.Box`` (HBox/VBox/GridBox/Tab/Accordion/Stack; tabs are
laid out as titled sections). ``Label`` widgets are exported as text; ``HTML`` widgets are
sanitised (:mod:`._safe_html`: a few formatting tags without attributes, everything else shown
as literal text); other widgets become a short placeholder.

Trust: the page runs only our own runtime. Its content-security policy allows exactly that
script (by its sha256 hash) plus the ``blob:`` modules the runtime creates from the embedded
widget code; no inline event handler, ``javascript:`` URL or injected ``<script>`` can run.
Page data sits in a ``<script type="application/json">`` with ``<``, ``>``, ``&`` escaped as
``\\u003c`` etc., and every text reaches the DOM as a text node.
"""

from __future__ import annotations

import base64
import hashlib
import html
import json
import os
import pathlib
from typing import Any

import ipywidgets
from ipywidgets.widgets.widget import _remove_buffers

from ._base import STATIC_DIR, DTWidget
from ._safe_html import safe_html_nodes

__all__ = ["to_html", "to_html_string", "page_data", "document", "runtime_script"]

EMBEDS = ("page", "fragment", "iframe")

_SKIP = {"layout", "tabbable", "tooltip", "keys", "comm", "log"}

_PAGE_CSS = """
.dtw-x-page{padding:16px;font-family:system-ui,-apple-system,"Segoe UI",Roboto,sans-serif;background:#fafafa;color:#222}
.dtw-x-page h1.dtw-x-title{font-size:18px;margin:0 0 12px}
.dtw-x-box{display:flex;gap:10px;align-items:flex-start}
.dtw-x-row{flex-direction:row;flex-wrap:wrap}.dtw-x-column{flex-direction:column}
.dtw-x-tabs{display:flex;flex-direction:column;gap:12px}
.dtw-x-tabtitle{font-size:14px;margin:4px 0;border-bottom:1px solid #ddd}
.dtw-x-widget{display:inline-block;border:1px solid #e3e3e3;border-radius:4px;background:#fff}
.dtw-x-error{color:#b71c1c;white-space:pre-wrap}
.dtw-x-text{font-size:13px}
.dtw-x-html table{border-collapse:collapse;font-size:13px}.dtw-x-html th,.dtw-x-html td{border:1px solid #ddd;padding:2px 6px;text-align:left}
.dtw-x-html ul,.dtw-x-html ol{margin:4px 0;padding-left:20px;font-size:13px}
"""


class _Models(dict):
    """Page id -> model data, plus ``ids``: widget model_id -> page id (each model is added once)."""

    def __init__(self) -> None:
        super().__init__()
        self.ids: dict[str, str] = {}


def _model(w: DTWidget, models: _Models, modules: dict) -> str:
    """Add ``w``'s model (state + buffers) to ``models`` once; returns its page id (``w0``, ``w1``, ...).

    A synced trait holding another DTWidget (a widget reference, ``"IPY_MODEL_<id>"``) is rewritten to
    that widget's page id, and the widget's model is added too (even when it is not laid out)."""
    ids = models.ids
    if w.model_id in ids:
        return ids[w.model_id]
    mid = ids[w.model_id] = f"w{len(ids)}"
    name = w._module
    if name not in modules:
        modules[name] = str(w._esm)
    state = {k: v for k, v in w.get_state().items() if not k.startswith("_") and k not in _SKIP}
    for k in list(state):
        ref = getattr(w, k, None)
        if isinstance(ref, DTWidget):
            state[k] = "IPY_MODEL_" + _model(ref, models, modules)
        elif isinstance(ref, ipywidgets.Widget):
            state[k] = None  # not exported: the widget has no model on the page
    state, paths, buffers = _remove_buffers(state)
    models[mid] = {
        "module": name,
        "state": state,
        "buffer_paths": paths,
        "buffers": [base64.b64encode(bytes(b)).decode("ascii") for b in buffers],
    }
    return mid


def _root(w: Any, models: _Models, modules: dict) -> dict:
    """The layout tree of a root widget; a composition with ``before_export()`` (the Explorer) brings
    every view up to date first (hidden tabs included), so the page shows all of them."""
    prepare = getattr(w, "before_export", None)
    if callable(prepare):
        prepare()
    n = _node(w, models, modules)
    return _control_line(n) if n["type"] == "control" else n


def _children(kids, models: _Models, modules: dict) -> list[dict]:
    """Child nodes, each run of controls (buttons, dropdowns, sliders...) merged into one line."""
    out: list[dict] = []
    for c in kids:
        n = _node(c, models, modules)
        if n["type"] == "control" and out and out[-1]["type"] == "control":
            out[-1]["names"] += n["names"]
        else:
            out.append(n)
    return [_control_line(n) if n["type"] == "control" else n for n in out]


def _control_line(n: dict) -> dict:
    """One line for a run of controls: ``[left, Button ×2: need a kernel (not interactive on this page)]``."""
    counts: dict[str, int] = {}
    for x in n["names"]:
        counts[x or "control"] = counts.get(x or "control", 0) + 1
    names = [f"{k} ×{c}" if c > 1 else k for k, c in counts.items()]
    shown = ", ".join(names[:8]) + (f", … ({len(names)} kinds in all)" if len(names) > 8 else "")
    return {"type": "text", "text": f"[{shown}: need a kernel (not interactive on this page)]"}


class NeedsKernel(ipywidgets.Label):
    """Stands for a widget a page cannot run (``kind``: what it was, e.g. "Button"): exported as a control,
    so it joins its neighbours' one "need a kernel" line."""

    def __init__(self, kind: str) -> None:
        super().__init__(value=f"[{kind}: need a kernel (not interactive on this page)]")
        self.kind = kind


def _node(w: Any, models: _Models, modules: dict) -> dict:
    if isinstance(w, DTWidget):
        return {"type": "widget", "id": _model(w, models, modules), "module": w._module}
    if isinstance(w, (ipywidgets.Tab, ipywidgets.Accordion)):
        kids = list(w.children)
        titles = [str(t) if t else "" for t in (getattr(w, "titles", None) or ())]
        titles += [""] * (len(kids) - len(titles))
        return {"type": "tabs", "titles": titles, "children": [_children([c], models, modules)[0] for c in kids]}  # one per title
    if isinstance(w, ipywidgets.Box):
        direction = "row" if isinstance(w, ipywidgets.HBox) else "column"
        if type(w) is ipywidgets.Box or isinstance(w, ipywidgets.GridBox):
            flow = getattr(w.layout, "flex_flow", None) or ""
            direction = "column" if "column" in flow else "row"
        return {"type": "box", "dir": direction, "children": _children(w.children, models, modules)}
    if isinstance(w, ipywidgets.HTML) and "dtw-host-style" in w._dom_classes:  # CSS for the notebook host only
        return {"type": "box", "dir": "column", "children": []}
    if isinstance(w, (ipywidgets.HTML, ipywidgets.HTMLMath)):
        return {"type": "html", "nodes": safe_html_nodes(w.value)}
    if isinstance(w, NeedsKernel):
        return {"type": "control", "names": [w.kind]}
    if isinstance(w, ipywidgets.Label):
        return {"type": "text", "text": str(w.value)}
    if isinstance(w, ipywidgets.Widget):  # a control: merged with its neighbours into one line (_children)
        return {"type": "control", "names": [str(getattr(w, "description", "") or type(w).__name__)]}
    raise TypeError(f"to_html expects a DTWidget or an ipywidgets layout, got {type(w).__name__}")


def _json_for_script(obj: Any) -> str:
    """JSON safe to embed inside <script> (no '</script>', no HTML comment openers)."""
    s = json.dumps(obj, separators=(",", ":"), allow_nan=False, default=_default)
    return s.replace("<", "\\u003c").replace(">", "\\u003e").replace("&", "\\u0026").replace("\u2028", "\\u2028").replace("\u2029", "\\u2029")


def _default(o: Any) -> Any:
    if isinstance(o, (bytes, bytearray, memoryview)):
        return base64.b64encode(bytes(o)).decode("ascii")
    if hasattr(o, "tolist"):
        return o.tolist()
    raise TypeError(f"cannot serialise {type(o).__name__} in widget state")


def content_security_policy(runtime: str) -> str:
    """The export's CSP: only the inline ``runtime`` (by sha256) and the blob: modules it imports run."""
    digest = base64.b64encode(hashlib.sha256(runtime.encode("utf-8")).digest()).decode("ascii")
    return (f"default-src 'none'; script-src 'sha256-{digest}' blob:; style-src 'unsafe-inline'; "
            "img-src data: blob:; base-uri 'none'; form-action 'none'")


def runtime_script() -> str:
    """The page runtime, ready for an inline ``<script type="module">`` (its CSP hash is of this text)."""
    return (STATIC_DIR / "export_runtime.js").read_text(encoding="utf-8").replace("</script", "<\\/script")


def page_data(widgets_or_layouts: list) -> dict:
    """Page data for several widget outputs sharing one set of modules and models: ``{modules,
    models, trees}`` with ``trees[i]`` the layout of ``widgets_or_layouts[i]`` (one root each, see
    :func:`page_id` and the runtime's ``rootsOf``)."""
    models = _Models()
    modules: dict = {}
    trees = [_root(w, models, modules) for w in widgets_or_layouts]
    return {"modules": modules, "models": models, "trees": trees}


def page_id(payload: str) -> str:
    """``dtw-<12 hex>``: the page's id, unique per page content (two pages pasted together never collide)."""
    return "dtw-" + hashlib.sha256(payload.encode("utf-8")).hexdigest()[:12]


def data_script(page: str, payload: str) -> str:
    """The ``<script type="application/json">`` carrying a page's data (``payload`` from :func:`_json_for_script`)."""
    return f"<script id=\"{page}-data\" data-dtw-page=\"{page}\" type=\"application/json\">{payload}</script>\n"


def document(title: str, body: str, runtime: str, css: str = "") -> str:
    """A whole HTML document: our CSP (for ``runtime``) and styles in its head, ``body`` (trusted markup:
    every text in it already escaped) in its body. ``title`` is plain text (escaped here)."""
    t = html.escape(str(title))
    return (
        "<!DOCTYPE html>\n<html lang=\"en\">\n<head>\n<meta charset=\"utf-8\">\n"
        f"<meta http-equiv=\"Content-Security-Policy\" content=\"{content_security_policy(runtime)}\">\n"
        f"<title>{t}</title>\n<style>{_PAGE_CSS}{css}</style>\n</head>\n<body>\n{body}</body>\n</html>\n"
    )


def to_html_string(widget_or_layout: Any, title: str = "dtwidgets", embed: str = "page") -> str:
    """Return the self-contained HTML document as a string (see :func:`to_html`)."""
    if embed not in EMBEDS:
        raise ValueError(f"to_html: expected embed in {EMBEDS}, got {embed!r}")
    models = _Models()
    modules: dict = {}
    tree = _root(widget_or_layout, models, modules)
    data = {"modules": modules, "models": models, "tree": tree}
    runtime = runtime_script()
    t = html.escape(str(title))
    payload = _json_for_script(data)
    page = page_id(payload)
    fragment = (
        f"<div class=\"dtw-x-page\" id=\"{page}\">\n<h1 class=\"dtw-x-title\">{t}</h1>\n"
        f"<div class=\"dtw-x-root\" id=\"{page}-root\"></div>\n{data_script(page, payload)}"
        f"</div>\n<script type=\"module\">{runtime}</script>\n"
    )
    if embed == "fragment":  # to paste into a page's body: runs under the HOST page's CSP
        return f"<style>{_PAGE_CSS}</style>\n{fragment}"
    doc = document(title, fragment, runtime)
    if embed == "page":
        return doc
    return iframe_snippet(doc, title)


def iframe_snippet(doc: str, title: str, height_px: int = 720) -> str:
    """An ``<iframe sandbox="allow-scripts" srcdoc=...>`` showing ``doc``: for pages with their own CSP,
    the document runs in a sandboxed frame under OUR CSP (the host's policy does not apply to it)."""
    return (f"<iframe class=\"dtw-x-frame\" title=\"{html.escape(str(title))}\" sandbox=\"allow-scripts\" loading=\"lazy\" "
            f"style=\"width:100%;height:{int(height_px)}px;border:1px solid #ddd\" srcdoc=\"{html.escape(doc, quote=True)}\"></iframe>\n")


def to_html(widget_or_layout: Any, path: str | os.PathLike, title: str = "dtwidgets", embed: str = "page") -> pathlib.Path:
    """Write ``widget_or_layout`` (a DTWidget or a Box tree of them) to one offline HTML file.

    Parameters
    ----------
    widget_or_layout : DTWidget | ipywidgets.Box
    path : output file; its folder must exist (FileNotFoundError naming the folder otherwise)
    title : page title and heading
    embed : ``"page"`` (a whole document with our content-security policy in its head),
        ``"fragment"`` (styles, content and runtime to paste into another page's body: its styles are
        scoped to its own root, its ids are unique per page, and several fragments, even one pasted
        twice, each render; it runs under the HOST page's content-security policy, not ours) or
        ``"iframe"`` (an ``<iframe sandbox="allow-scripts" srcdoc=...>`` snippet: the page runs in its
        own frame under our policy, whatever the host's; use it where the host page is not yours).

    Returns the resolved path. Each widget module's JS is included once, however many
    instances use it; array traits are embedded base64-encoded.
    """
    out = pathlib.Path(path).expanduser().resolve()
    if not out.parent.is_dir():
        what = "is not a folder" if out.parent.exists() else "does not exist"
        raise FileNotFoundError(f"to_html: expected an existing folder for {str(path)!r}, but {str(out.parent)!r} "
                                f"{what} (create it first, e.g. pathlib.Path(...).mkdir(parents=True))")
    if out.is_dir():
        raise IsADirectoryError(f"to_html: expected a file path, got the folder {str(out)!r}")
    # LF only (read_text above also gives LF): the CSP hash is of the runtime exactly as the browser reads it
    out.write_text(to_html_string(widget_or_layout, title=title, embed=embed), encoding="utf-8", newline="\n")
    return out

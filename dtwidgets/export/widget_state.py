"""Rebuild the widgets of an executed notebook from its saved widget state (no kernel).

A notebook executed by nbclient / ``jupyter nbconvert --execute`` (or saved from JupyterLab with
"Save Widget State") keeps every widget model in ``metadata.widgets`` under the mime type
``application/vnd.jupyter.widget-state+json``::

    {"version_major": 2, "state": {model_id: {"model_module", "model_name", "state": {...},
                                              "buffers": [{"path": [...], "encoding": "base64", "data"}]}}}

and each widget output is ``{"model_id": ...}`` under ``application/vnd.jupyter.widget-view+json``.

:class:`SavedWidgets` turns such a state back into Python objects that :func:`dtwidgets.widgets.export.page_data`
(the one owner of the page format) lays out:

* a dtwidgets model (``_anywidget_id`` naming one of OUR :class:`~dtwidgets.widgets.DTWidget` classes)
  becomes a fresh instance of that class, its state set through the class's own trait validation and
  deserialisers (arrays from their buffers); the notebook's ``_esm`` / ``_css`` are never used, the page
  runs our shipped bundles;
* ``Box`` / ``HBox`` / ``VBox`` / ``GridBox`` / ``Tab`` / ``Accordion`` / ``Stack`` become the same
  ipywidgets containers of rebuilt children; ``HTML`` and ``Label`` keep their value (sanitised later);
* any other widget (a slider, another library's anywidget) becomes a one-line "needs a kernel" note.

The notebook is untrusted: a model that does not validate becomes a note naming the error, never a
half-set widget.
"""

from __future__ import annotations

import base64
import binascii
from typing import Any

import anywidget
import ipywidgets
import traitlets

from ..widgets import DTWidget
from ..widgets.export import _SKIP, NeedsKernel

__all__ = ["SavedWidgets", "WIDGET_STATE_MIME", "WIDGET_VIEW_MIME", "dtwidget_classes"]

WIDGET_STATE_MIME = "application/vnd.jupyter.widget-state+json"
WIDGET_VIEW_MIME = "application/vnd.jupyter.widget-view+json"
_REF = "IPY_MODEL_"
_CONTAINERS = {
    "BoxModel": ipywidgets.Box, "HBoxModel": ipywidgets.HBox, "VBoxModel": ipywidgets.VBox,
    "GridBoxModel": ipywidgets.GridBox, "TabModel": ipywidgets.Tab, "AccordionModel": ipywidgets.Accordion,
    "StackModel": ipywidgets.Stack,
}
_TITLED = (ipywidgets.Tab, ipywidgets.Accordion, ipywidgets.Stack)
_TEXTS = {"HTMLModel": ipywidgets.HTML, "HTMLMathModel": ipywidgets.HTMLMath, "LabelModel": ipywidgets.Label}


def dtwidget_classes() -> dict[str, type[DTWidget]]:
    """``"<module>.<Class>"`` (anywidget's ``_anywidget_id``) -> every DTWidget subclass with a front-end module."""
    out: dict[str, type[DTWidget]] = {}
    todo = list(DTWidget.__subclasses__())
    while todo:
        cls = todo.pop()
        todo.extend(cls.__subclasses__())
        if cls.__dict__.get("_module") or getattr(cls, "_module", ""):
            out[f"{cls.__module__}.{cls.__name__}"] = cls
    return out


def _note(text: str) -> ipywidgets.Label:
    return ipywidgets.Label(value=text)


class SavedWidgets:
    """The widget models of one notebook; :meth:`view` rebuilds the widget an output displays.

    Parameters
    ----------
    state : the ``application/vnd.jupyter.widget-state+json`` object (``{"state": {id: model}}``),
        or None when the notebook saved none (every widget output then becomes a note).
    """

    def __init__(self, state: Any) -> None:
        models = state.get("state") if isinstance(state, dict) else None
        self._models: dict[str, Any] = models if isinstance(models, dict) else {}
        self._built: dict[str, Any] = {}
        self._classes = dtwidget_classes()

    def has(self, model_id: Any) -> bool:
        """True when the notebook saved the model ``model_id``."""
        return isinstance(model_id, str) and isinstance(self._models.get(model_id), dict)

    def view(self, model_id: str) -> Any:
        """The rebuilt widget (or layout, or note) for ``model_id``; built once, shared by every output."""
        if model_id in self._built:
            if self._built[model_id] is None:  # a container holding itself
                return _note("[a widget that contains itself: not shown]")
            return self._built[model_id]
        self._built[model_id] = None
        try:
            w = self._build(model_id)
        except (traitlets.TraitError, TypeError, ValueError, KeyError, IndexError, binascii.Error) as exc:
            w = _note(f"[a saved widget could not be rebuilt ({type(exc).__name__}: {exc}); it needs a kernel]")
        self._built[model_id] = w
        return w

    def _build(self, model_id: str) -> Any:
        m = self._models.get(model_id)
        if not isinstance(m, dict) or not isinstance(m.get("state"), dict):
            return _note("[a widget whose state was not saved: it needs a kernel]")
        state, name = m["state"], str(m.get("model_name", ""))
        cls = self._classes.get(str(state.get("_anywidget_id", ""))) if name == "AnyModel" else None
        if cls is not None:
            return self._dtwidget(cls, state, m.get("buffers"))
        if name in _CONTAINERS:
            return self._container(_CONTAINERS[name], state)
        if name in _TEXTS:
            return _TEXTS[name](value=str(state.get("value", "")))
        kind = str(state.get("_anywidget_id", "anywidget")) if name == "AnyModel" else name.removesuffix("Model")
        kind = kind[:80] or "widget"  # text of an untrusted notebook: shown as text
        return NeedsKernel(kind)

    def _ref(self, value: Any) -> Any:
        """An ``IPY_MODEL_<id>`` reference -> the rebuilt widget (ValueError otherwise)."""
        if isinstance(value, str) and value.startswith(_REF) and self.has(value[len(_REF):]):
            return self.view(value[len(_REF):])
        raise ValueError(f"expected a reference to a saved widget, got {str(value)[:80]!r}")

    def _container(self, cls: type, state: dict) -> Any:
        kids = state.get("children")
        if not isinstance(kids, list):
            raise TypeError(f"{cls.__name__}.children: expected a list, got {type(kids).__name__}")
        children = [self._ref(c) for c in kids]
        box = cls(children=children)  # runs of NeedsKernel become one line in the page (widgets.export)
        titles = state.get("titles")
        if isinstance(titles, list) and hasattr(box, "titles"):
            box.titles = tuple(str(t) for t in titles[:len(kids)])
        layout = self._models.get(str(state.get("layout", ""))[len(_REF):])
        flow = layout.get("state", {}).get("flex_flow") if isinstance(layout, dict) else None
        if isinstance(flow, str):
            box.layout.flex_flow = flow
        return box

    def _dtwidget(self, cls: type[DTWidget], state: dict, buffers: Any) -> DTWidget:
        """A fresh ``cls`` with the saved state, validated by its traits (TraitError on a bad value)."""
        w = cls()
        public = {k for k in w.keys if not k.startswith("_")} - _SKIP  # never _esm / _css / _module: ours stay
        plain: dict[str, Any] = {}
        refs: dict[str, Any] = {}
        for k, v in state.items():
            if k not in public:
                continue
            if _is_widget_ref(w.traits()[k]):
                refs[k] = None if v is None else self._ref(v)
            else:
                plain[k] = v
        for path, data in _buffers(buffers):
            if path and path[0] in public and path[0] not in refs:
                _put(plain, path, data)
        with w.hold_trait_notifications():
            anywidget.AnyWidget.set_state(w, plain)  # not DTWidget.set_state: a refused value raises here
            for k, ref in refs.items():
                setattr(w, k, ref)
        return w


def _is_widget_ref(trait: Any) -> bool:
    """True for a trait holding another widget (serialised as ``IPY_MODEL_<id>``)."""
    return isinstance(trait, traitlets.Instance) and isinstance(trait.klass, type) and issubclass(trait.klass, ipywidgets.Widget)


def _buffers(buffers: Any) -> list[tuple[list, bytes]]:
    """Saved buffers -> ``(path, bytes)``; only base64 / hex encodings (ValueError otherwise)."""
    if buffers is None:
        return []
    if not isinstance(buffers, list):
        raise TypeError(f"buffers: expected a list, got {type(buffers).__name__}")
    out = []
    for b in buffers:
        if not isinstance(b, dict) or not isinstance(b.get("path"), list) or not isinstance(b.get("data"), str):
            raise TypeError("buffers: expected items {'path': [...], 'encoding': ..., 'data': str}")
        enc = b.get("encoding", "base64")
        if enc == "base64":
            data = base64.b64decode(b["data"], validate=True)
        elif enc == "hex":
            data = bytes.fromhex(b["data"])
        else:
            raise ValueError(f"buffers: expected encoding 'base64' or 'hex', got {str(enc)[:20]!r}")
        out.append((b["path"], data))
    return out


def _put(state: dict, path: list, data: bytes) -> None:
    """Place one buffer into the (Python) state at ``path`` (KeyError / IndexError / TypeError if it does not fit)."""
    if not path or not all(isinstance(p, (str, int)) and not isinstance(p, bool) for p in path):
        raise TypeError(f"buffer path: expected a non-empty list of keys and indices, got {str(path)[:80]}")
    o: Any = state
    for p in path[:-1]:
        o = o[p]
        if not isinstance(o, (dict, list)):
            raise TypeError(f"buffer path {str(path)[:80]} does not lead into the state")
    o[path[-1]] = memoryview(data)

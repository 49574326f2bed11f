"""One comm message for many widgets' updates.

A composition such as the Explorer changes several widgets at every new state (the grid, the
partial view, the preferences, the status line, the panel on screen). Sent widget by widget, that
is one comm message each, and for small arrays their JSON framing outweighs the data. An
:class:`UpdateFeed` collects the updates made inside :meth:`UpdateFeed.batch` and sends them as
ONE custom message; its front-end (``js/update_feed.js``) applies each widget's part with the
model's ``set_state``, exactly as a kernel "update" message would (change events, nothing sent
back to the kernel). The Python widgets' traits are set as usual, so the kernel's state (read by
Python code, restored on a page reload, exported) stays the one truth.

Only a front-end that has resolved the feed's targets says so (``{"ready": n}``: the first ``n``
targets; the kernel answers with those targets' whole state, in one message, so that nothing sent
while the front-end was resolving them is missed); until then, and for any widget past ``n``, any key that is not a widget's own trait, or a
value holding nested buffers, the widget's update is sent the ordinary way. A front-end without the
feed's module (or one that cannot reach other models) therefore sees no difference but the message
count.

Usage (a composition)::

    feed = UpdateFeed()
    with feed.batch(root):      # root: the composition's widget tree (its DTWidgets become targets)
        widget_a.values = ...   # collected, not sent
        widget_b.grid = ...
    # -> one message (or the ordinary messages when no front-end is ready)
"""
from __future__ import annotations

import contextlib
from typing import Any, Iterable, Iterator

import traitlets

from ._base import DTWidget

__all__ = ["UpdateFeed"]


def _own_keys(widget: DTWidget) -> frozenset[str]:
    """The synced traits dtwidgets declares on ``widget`` (not ipywidgets' own, e.g. ``layout``)."""
    return (frozenset(widget.class_own_trait_names_public()) | {"error"}) & frozenset(widget.keys)


def _has_buffer(value: Any) -> bool:
    if isinstance(value, (memoryview, bytes, bytearray)):
        return True
    if isinstance(value, dict):
        return any(_has_buffer(v) for v in value.values())
    if isinstance(value, (list, tuple)):
        return any(_has_buffer(v) for v in value)
    return False


def split_state(state: dict[str, Any]) -> tuple[dict[str, Any], list[str], list[memoryview]] | None:
    """``(json part, keys of the buffers, buffers)`` of a widget state from ``get_state``: top-level
    binary values become buffers; ``None`` when a buffer is nested inside another value."""
    json_part, keys, buffers = {}, [], []
    for k, v in state.items():
        if isinstance(v, (memoryview, bytes, bytearray)):
            keys.append(k)
            buffers.append(memoryview(v))
        elif _has_buffer(v):
            return None
        else:
            json_part[k] = v
    return json_part, keys, buffers


def widgets_in(root: Any) -> Iterator[DTWidget]:
    """Every :class:`DTWidget` in the ipywidgets tree under ``root`` (``children`` of boxes and tabs)."""
    stack, seen = [root], set()
    while stack:
        w = stack.pop()
        if id(w) in seen:
            continue
        seen.add(id(w))
        if isinstance(w, DTWidget):
            yield w
        stack.extend(reversed(list(getattr(w, "children", ()) or ())))


class UpdateFeed(DTWidget):
    """Sends the updates of many widgets, made inside :meth:`batch`, as one comm message.

    Never displayed. ``widgets``: the targets it may update, and ``targets`` their model ids (synced);
    both grow by :meth:`batch` / :meth:`watch` and never shrink, so an index the front-end resolved
    stays valid (a closed widget keeps its place, with the id ``""``, and is skipped).
    """

    _module = "update_feed"
    targets = traitlets.List(traitlets.Unicode(), help="'IPY_MODEL_<id>' of each target, in index order").tag(sync=True)

    def __init__(self, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.ready = 0  # how many targets a front-end has resolved (its {"ready": n})
        self.widgets: list[DTWidget] = []  # the targets (a closed one keeps its place: indices never move)
        self._index: dict[int, int] = {}  # id(widget) -> index in targets
        self._own: list[frozenset[str]] = []  # each target's own synced keys (the ones the feed carries)
        self._batch: dict[DTWidget, set[str]] | None = None
        self.on_msg(self._on_front_end)

    def _on_front_end(self, _widget: Any, content: Any, _buffers: Any) -> None:
        n = content.get("ready") if isinstance(content, dict) else None
        if isinstance(n, int) and not isinstance(n, bool) and 0 <= n <= len(self.targets):
            self.ready = max(self.ready, n)
            self._resync(n)

    def _resync(self, n: int) -> None:
        """Send the first ``n`` targets' own traits in one message: a front-end that has just resolved
        them (a page reloaded mid-session) may have dropped feed messages that came before."""
        with self.batch():
            for w, own in zip(self.widgets[:n], self._own):
                if w.comm is not None:
                    self.collect(w, sorted(own))

    def watch(self, widgets: Iterable[DTWidget]) -> None:
        """Add ``widgets`` to the targets (those not there yet; one ``targets`` update if any)."""
        new = [w for w in widgets if id(w) not in self._index and w is not self and w.comm is not None]
        ids = [("" if w.comm is None else t) for w, t in zip(self.widgets, self.targets)]  # closed: ""
        if not new and ids == self.targets:
            return
        for w in new:
            self._index[id(w)] = len(self.widgets)
            self.widgets.append(w)
            self._own.append(_own_keys(w))
            w._feed = self
        self.targets = ids + [f"IPY_MODEL_{w.model_id}" for w in new]

    @contextlib.contextmanager
    def batch(self, root: Any = None) -> Iterator[None]:
        """Collect the updates of the target widgets made inside; send them at the end. ``root``: a
        widget tree whose DTWidgets are added to the targets first. Nested batches join the outer one."""
        if root is not None:
            self.watch(widgets_in(root))
        if self._batch is not None:
            yield
            return
        self._batch = {}
        try:
            yield
        finally:
            batch, self._batch = self._batch, None
            self._flush(batch)

    def collect(self, widget: DTWidget, key: Any) -> bool:
        """Called by a target's ``send_state``: keep ``key`` (None = every synced key) for the batch's
        message; False outside a batch (the widget then sends it itself)."""
        if self._batch is None:
            return False
        keys = self._batch.setdefault(widget, set())
        keys.update(widget.keys if key is None else [key] if isinstance(key, str) else key)
        return True

    def _flush(self, batch: dict[DTWidget, set[str]]) -> None:
        entries: list[list[Any]] = []
        buffers: list[memoryview] = []
        for w, keys in batch.items():
            if w.comm is None:  # closed meanwhile
                continue
            names = sorted(keys)
            i = self._index.get(id(w))
            split = split_state(w.get_state(names)) if i is not None and i < self.ready and \
                keys <= self._own[i] and self.comm is not None else None
            if split is None:
                DTWidget.send_state_directly(w, names)
                continue
            json_part, buffer_keys, bufs = split
            entries.append([i, buffer_keys, json_part] if json_part else [i, buffer_keys])
            buffers.extend(bufs)
        if entries:
            self.send({"u": entries}, buffers)

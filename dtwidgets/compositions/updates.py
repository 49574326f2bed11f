"""The update transport of compositions: the one place that diffs, batches and sends widget updates.

Views never set traits one by one: they describe their new values and :func:`assign` (one widget) or
:func:`apply` (many, in one comm message through the :class:`~dtwidgets.widgets.feed.UpdateFeed`)
sends only what changed.
"""
from __future__ import annotations

import contextlib
from typing import Any, Iterable

import numpy as np


def _same(old: Any, new: Any) -> bool:
    """Whether a trait value is unchanged (arrays by shape and value, NaN equal to NaN; lists by items)."""
    if isinstance(new, np.ndarray) or isinstance(old, np.ndarray):
        return isinstance(old, np.ndarray) and np.shape(old) == np.shape(new) and np.array_equal(old, new, equal_nan=True)
    if isinstance(new, (list, tuple)) and isinstance(old, (list, tuple)):
        return list(old) == list(new)
    return bool(old == new)


def assign(widget, **traits) -> None:
    """Set only the traits whose value changed, validated together and sent as one message."""
    changed = {k: v for k, v in traits.items() if not _same(getattr(widget, k), v)}
    if changed:  # a label list and its values may change size at once
        with widget.hold_sync(), widget.hold_trait_notifications():
            for k, v in changed.items():
                setattr(widget, k, v)


def apply(updates: Iterable[tuple[Any, dict]], feed=None, root=None) -> None:
    """Send ``updates`` (``(widget, {trait: value})`` pairs): only what changed, every widget's
    changes in one message, all of them in one comm message of ``feed`` when given."""
    batch = feed.batch(root) if feed is not None else contextlib.nullcontext()
    with batch:
        for widget, traits in updates:
            assign(widget, **traits)

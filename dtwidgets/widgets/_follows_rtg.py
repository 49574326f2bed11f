"""The base of widgets that follow an RTG slider client-side: :class:`FollowsRTG`."""

from __future__ import annotations

import traitlets

from ._arrays import SyncedArray
from ._base import DTWidget

__all__ = ["FollowsRTG"]


class FollowsRTG(DTWidget):
    """Base of widgets that follow an :class:`~dtwidgets.widgets.RTGSlider` client-side.

    While the slider of the same ``follow_group`` is dragged, the front-end previews the widget's
    data from an RTG scan shipped with the state (``scan_rtgs`` plus a ``[R, ...]`` table trait of
    the subclass), linearly interpolated between grid points and marked "preview"; the preview
    ends when the kernel sends data computed at the released RTG (trait ``rtg``).
    """

    follow_group = traitlets.Unicode("").tag(sync=True)
    """Page-level id shared with an RTGSlider ('' = do not follow)."""
    rtg = traitlets.Float(None, allow_none=True).tag(sync=True)
    """The RTG (reward units) at which the widget's kernel data was computed (None = unknown)."""
    scan_rtgs = SyncedArray(1, "float32", "[R]")
    """The ascending RTG grid of the scan tables, float32 [R] (empty = no preview)."""

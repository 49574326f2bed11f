"""RTGSlider: a return-to-go slider that moves its follow group while it is dragged."""

from __future__ import annotations

import traitlets

from ._base import DTWidget

__all__ = ["RTGSlider"]


class RTGSlider(DTWidget):
    """Return-to-go slider. Dragging moves the widgets of its ``follow_group`` client-side (no kernel
    message while the slider moves, see :class:`~dtwidgets.widgets._follows_rtg.FollowsRTG`); releasing it
    sets ``value`` once."""

    _module = "rtg_slider"
    value = traitlets.Float(0.0).tag(sync=True)
    """The RTG (reward units), set by the front-end on release."""
    min = traitlets.Float(-1.0).tag(sync=True)
    """Lower end of the slider (the model's RTG range)."""
    max = traitlets.Float(1.0).tag(sync=True)
    """Upper end of the slider."""
    step = traitlets.Float(0.01).tag(sync=True)
    """Slider step."""
    description = traitlets.Unicode("RTG").tag(sync=True)
    """Label in front of the slider (plain text)."""
    follow_group = traitlets.Unicode("").tag(sync=True)
    """Page-level id announced to following widgets while dragging ('' = none)."""

    @traitlets.validate("value")
    def _clip(self, proposal: dict) -> float:
        v = float(proposal["value"])
        if v != v:
            raise traitlets.TraitError(f"RTGSlider.value: expected a finite float, got {proposal['value']!r}")
        return min(max(v, self.min), self.max)

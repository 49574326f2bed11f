"""Control widgets of the Explorer: an RTG slider that answers while it moves, and a text-only status line."""

from __future__ import annotations

import ipywidgets
import traitlets

from ._base import DTWidget
from ._traits import Labels
from .charts import ActionPreferences, FollowsRTG, _table, _vec

__all__ = ["RTGSlider", "StatusLine"]


class RTGSlider(DTWidget):
    """Return-to-go slider. Dragging moves the widgets of its ``follow_group`` client-side (no kernel
    message while the slider moves, see :class:`~dtwidgets.widgets.charts.FollowsRTG`); releasing it
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


class StatusLine(FollowsRTG):
    """The Explorer's one-line state summary, drawn from text nodes only (safe for names from files).

    Traits
    ------
    headline : str, emphasised first item (e.g. ``"episode over (collision): reset or step back"``)
    lead : list[str], items before the RTG (e.g. ``["step 3", "t = 3"]``)
    rtg : the current RTG; logits : float32 [A] (empty = no "model prefers" item); action_names : [A]
    notes : list[str], warnings after the preference (e.g. an edit outside the agent's view)
    scan_logits : float32 [R, A] over ``scan_rtgs`` (the preference follows the RTG slider)
    preferences : an :class:`ActionPreferences` (or None) to read the preference from instead: its
        ``logits``, ``scan_rtgs``, ``scan_logits`` and ``action_names`` replace this widget's own, so a page
        showing both sends those arrays once per state (the front-end reads the other widget's model)
    """

    _module = "status_line"
    headline = traitlets.Unicode("").tag(sync=True)
    lead = Labels().tag(sync=True)
    logits = _vec("[A]")
    action_names = Labels().tag(sync=True)
    notes = Labels().tag(sync=True)
    scan_logits = _table("[R, A]")
    preferences = traitlets.Instance(ActionPreferences, allow_none=True).tag(sync=True, **ipywidgets.widget_serialization)

    @property
    def text(self) -> str:
        """The line as plain text (kernel data, no preview), as the front-end shows it."""
        import numpy as np

        src = self.preferences if self.preferences is not None else self
        logits, names = src.logits, src.action_names
        parts = ([self.headline] if self.headline else []) + list(self.lead)
        if self.rtg is not None:
            parts.append(f"RTG {self.rtg:+.2f}")
        if logits.size:
            p = np.exp(logits - logits.max())
            p /= p.sum()
            best = int(np.argmax(p))
            name = names[best] if best < len(names) else f"action {best}"
            parts.append(f"model prefers {name} ({round(float(p.max()) * 100)}%)")
        return " · ".join(parts + list(self.notes))

"""StatusLine: the Explorer's text-only state summary (shown whole, wrapping; steady during an RTG drag)."""

from __future__ import annotations

import ipywidgets
import numpy as np
import traitlets

from ._arrays import SyncedArray
from ._follows_rtg import FollowsRTG
from ._traits import Labels
from .action_preferences import ActionPreferences

__all__ = ["StatusLine"]


class StatusLine(FollowsRTG):
    """The Explorer's state summary, drawn from text nodes only (safe for names from files).

    The front-end shows the whole text, wrapping as the column requires. Where an RTG drag can preview
    (a scan is known), the line keeps the height of the widest text a drag can show (the preview note, the
    widest RTG, each action at 100 %), so it keeps its height while the slider moves and nothing below jumps.

    ``rtg`` (from :class:`FollowsRTG`) is the current RTG shown in the line.
    """

    _module = "status_line"
    headline = traitlets.Unicode("").tag(sync=True)
    """str: emphasised first item (e.g. ``"episode over (collision): reset or step back"``)."""
    lead = Labels().tag(sync=True)
    """list[str]: items before the RTG (e.g. ``["step 3", "t = 3"]``)."""
    logits = SyncedArray(1, "float32", "[A]")
    """float32 [A]: action logits of the "model prefers" item (empty = no such item)."""
    action_names = Labels().tag(sync=True)
    """list[str] (len A): action names."""
    notes = Labels().tag(sync=True)
    """list[str]: warnings after the preference (e.g. an edit outside the agent's view)."""
    scan_logits = SyncedArray(2, "float32", "[R, A]")
    """float32 [R, A]: logits over ``scan_rtgs`` (the preference follows the RTG slider); empty = no preview."""
    preferences = traitlets.Instance(ActionPreferences, allow_none=True).tag(sync=True, **ipywidgets.widget_serialization)
    """An :class:`ActionPreferences` (or None) to read the preference from instead: its ``logits``, ``scan_rtgs``,
    ``scan_logits`` and ``action_names`` replace this widget's own, so a page showing both sends those arrays once
    per state (the front-end reads the other widget's model)."""

    @property
    def text(self) -> str:
        """The line as plain text (kernel data, no preview), as the front-end shows it."""
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

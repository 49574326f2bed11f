"""ActionPreferences: softmax action probabilities and a pairwise preference."""

from __future__ import annotations

import numpy as np
import traitlets

from ._arrays import SyncedArray
from ._follows_rtg import FollowsRTG
from ._traits import IntPair, Labels, check_count

__all__ = ["ActionPreferences"]


class ActionPreferences(FollowsRTG):
    """Softmax action probabilities as bars plus the pairwise preference logit[a] - logit[b]."""

    _module = "action_preferences"
    logits = SyncedArray(1, "float32", "[A]")
    """float32 [A]: the action logits (drawn as softmax probabilities)."""
    scan_logits = SyncedArray(2, "float32", "[R, A]")
    """float32 [R, A]: the logits over ``scan_rtgs`` for RTG following (see :class:`FollowsRTG`); empty = no preview."""
    action_names = Labels().tag(sync=True)
    """list[str] (len A): action names."""
    pair = IntPair((0, 1)).tag(sync=True)
    """(a, b) action indices of the preference logit[a] - logit[b]; two dropdowns in the widget, synced both ways."""

    @traitlets.validate("logits", "action_names")
    def _names_match_logits(self, proposal: dict):
        v, name = proposal["value"], proposal["trait"].name
        logits = v if name == "logits" else self.logits
        names = v if name == "action_names" else self.action_names
        if logits.size:
            check_count(self, "action_names", len(names), logits.shape[0], f"one per logit (logits [A] has A = {logits.shape[0]})")
        return v

    @property
    def probabilities(self) -> np.ndarray:
        """softmax(logits) as float64 [A] (same rule as the front-end)."""
        x = self.logits.astype(np.float64)
        if x.size == 0:
            return x
        m = np.max(x[np.isfinite(x)]) if np.isfinite(x).any() else 0.0
        e = np.exp(x - m)
        return e / e[np.isfinite(e)].sum()

    @property
    def preference(self) -> float:
        """logit[a] - logit[b] for the current ``pair`` (NaN if out of range)."""
        a, b = self.pair
        n = self.logits.shape[0]
        if not (0 <= a < n and 0 <= b < n):
            return float("nan")
        return float(self.logits[a]) - float(self.logits[b])

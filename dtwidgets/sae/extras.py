"""The SAE's extras of the per-state analysis (:mod:`dtwidgets.analysis.extras`): the features active in
a state with their direct shares, and the logits with features edited."""
from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from ..analysis.extras import Extra, StateRequest


@dataclass(frozen=True)
class SAEFeatures(Extra):
    """Every active feature of ``sae`` at the state and its direct share of the pair.
    Result: :class:`~dtwidgets.sae.attribution.FeatureShares`."""

    sae: Any

    def compute(self, req: StateRequest):
        from .attribution import feature_shares

        a, b = req.pair
        return feature_shares(req.adapter, self.sae, req.window, a, b)


@dataclass(frozen=True)
class SAEEdit(Extra):
    """Action logits ``[A]`` (numpy) with features set to values: ``edits`` = ``((feature, value), ...)``
    (``()`` reproduces the clean logits)."""

    sae: Any
    edits: tuple[tuple[int, float], ...] = ()

    def compute(self, req: StateRequest):
        from .attribution import edited_logits

        return edited_logits(req.adapter, self.sae, req.window.index(0), dict(self.edits))[0].float().cpu().numpy()

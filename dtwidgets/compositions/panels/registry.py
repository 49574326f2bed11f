"""The one registry of the Explorer's panels: every built-in panel is registered here, and
:func:`register_panel` adds a user's.

A panel is any class with ``__init__(ctx: AnalysisContext)``, a ``widget`` attribute and
``update(data: PanelData)`` (optionally ``key``, ``title``, ``extras`` / ``wanted()``: the analysis
extras it reads); ``Explorer(..., panels=(..., "my_key"))`` takes registered keys or classes.
"""
from __future__ import annotations

from .ablation import AblationPanel
from .attention import AttentionPanel
from .attribution import AttributionPanel
from .base import AnalysisContext
from .circuits import CircuitsPanel
from .circuits2 import Circuits2Panel
from .congruence import CongruencePanel
from .directions import DirectionsPanel
from .nmf import NMFPanel
from .patching import PatchingPanel
from .policy_map import PolicyPanel
from .rtg_scan import RTGScanPanel
from .sae import SAEPanel
from .spaces import SpacesPanel

PANELS = ("attribution", "ablation", "attention", "circuits", "rtg_scan", "patching")
"""Keys of the built-in per-state panels, in their default order."""
EXTRA_PANELS = ("policy_map", "circuits2", "directions", "spaces", "congruence", "nmf")
"""Panels shown by default after :data:`PANELS`."""

PANEL_TYPES: dict[str, type] = {}
"""Registered panel classes by key (built-ins plus those added with :func:`register_panel`)."""


def register_panel(key: str, cls: type) -> type:
    """Make panel class ``cls`` available as ``Explorer(..., panels=(..., key))``; returns ``cls``.

    ``cls`` needs ``__init__(ctx)``, a ``widget`` and ``update(data: PanelData)``. Re-registering a
    key replaces the earlier class.
    """
    if not isinstance(key, str) or not key:
        raise ValueError(f"register_panel: expected a non-empty str key, got {key!r}")
    if not isinstance(cls, type) or not callable(getattr(cls, "update", None)):
        raise TypeError(f"register_panel({key!r}): expected a class with update(data), got {cls!r}")
    PANEL_TYPES[key] = cls
    return cls


for _cls in (AttributionPanel, AblationPanel, AttentionPanel, CircuitsPanel, RTGScanPanel, PatchingPanel,
             PolicyPanel, Circuits2Panel, DirectionsPanel, SAEPanel, SpacesPanel, CongruencePanel, NMFPanel):
    register_panel(_cls.key, _cls)


def make_panels(ctx: AnalysisContext, keys) -> list:
    """Instantiate panels from registered keys (see :data:`PANEL_TYPES`) or panel classes."""
    out = []
    for k in keys:
        cls = k if isinstance(k, type) else PANEL_TYPES.get(k)
        if cls is None:
            raise ValueError(f"expected panels from {tuple(PANEL_TYPES)} (or a panel class), got {k!r}")
        out.append(cls(ctx))
    return out

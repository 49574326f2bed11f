"""The Explorer's analysis panels, one per file, registered in :mod:`.registry`.

Each panel is usable alone::

    ctx = AnalysisContext(adapter, pair=("forward", "right"))
    panel = AttributionPanel(ctx)
    panel.update(ctx.compute(window, panels=[panel]))
    panel.widget            # an ipywidgets container of dtwidgets canvas widgets

Panels declare the analysis extras they read (:mod:`dtwidgets.analysis.extras`) and render their
results; the per-state analysis is computed once, by :func:`dtwidgets.analysis.analyze_state`.
The Explorer keeps its panels in a :class:`LazyPanels`: a hidden tab's panel (and its widget models)
is created when the tab is first shown, when :meth:`~dtwidgets.compositions.explorer.Explorer.show_panel`
or an export asks for it.
"""
from .base import AnalysisContext, Panel, PanelData, esc, note
from .registry import EXTRA_PANELS, PANEL_TYPES, PANELS, LazyPanels, make_panels, register_panel
from .ablation import AblationPanel
from .attention import AttentionPanel
from .attribution import AttributionPanel
from .circuits import CircuitsPanel
from .circuits2 import Circuits2Panel
from .directions import DirectionsPanel
from .patching import PatchingPanel
from .policy_map import PolicyPanel
from .rtg_scan import RTGScanPanel
from .sae import SAEPanel
from ..updates import assign

__all__ = ["AnalysisContext", "Panel", "PanelData", "PANELS", "EXTRA_PANELS", "PANEL_TYPES", "LazyPanels", "make_panels",
           "register_panel", "AblationPanel", "AttentionPanel", "AttributionPanel", "CircuitsPanel", "Circuits2Panel",
           "PatchingPanel", "PolicyPanel", "DirectionsPanel", "RTGScanPanel", "SAEPanel", "assign", "esc", "note"]

"""Layer 4: compositions of widgets, analysis and adapters — the Explorer and its panel registry."""
from .explorer import Explorer
from .panels import PANEL_TYPES, PANELS, AnalysisContext, Panel, PanelData, make_panels, register_panel
from .session import EpisodeOver, PlaySession, StepBackLimit

__all__ = ["Explorer", "PlaySession", "AnalysisContext", "PANELS", "PANEL_TYPES", "Panel", "PanelData",
           "make_panels", "register_panel", "EpisodeOver", "StepBackLimit"]

"""Layer 4: compositions of widgets, analysis and adapters — the Explorer and its panel registry."""
from .explorer import Explorer
from .panels import (PANEL_TYPES, PANELS, AnalysisContext, Circuits2Panel, Panel, PanelData, PolicyPanel, SAEPanel,
                     make_panels, register_panel)
from .session import EpisodeOver, PlaySession, StepBackLimit
from .state import ExplorerState, Redraw

__all__ = ["Explorer", "ExplorerState", "Redraw", "PlaySession", "AnalysisContext", "PANELS", "PANEL_TYPES", "Panel",
           "PanelData", "make_panels", "register_panel", "EpisodeOver", "StepBackLimit",
           "PolicyPanel", "Circuits2Panel", "SAEPanel"]
from .dynamics_view import TrainingDynamics, dynamics_view  # noqa: E402
from .probe_card import ProbeDirectionCard  # noqa: E402
from .clone_view import CloneComparison  # noqa: E402

__all__ += ["TrainingDynamics", "dynamics_view", "ProbeDirectionCard", "CloneComparison"]

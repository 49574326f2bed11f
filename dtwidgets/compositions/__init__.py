"""Layer 4: compositions of widgets, analysis and adapters — the Explorer."""
from .explorer import Explorer
from .panels import PANELS, AnalysisContext, make_panels
from .session import PlaySession

__all__ = ["Explorer", "PlaySession", "AnalysisContext", "PANELS", "make_panels"]
from .dynamics_view import TrainingDynamics, dynamics_view  # noqa: E402
from .probe_card import ProbeDirectionCard  # noqa: E402

__all__ += ["TrainingDynamics", "dynamics_view", "ProbeDirectionCard"]
from .clone_view import CloneComparison  # noqa: E402

__all__ += ["CloneComparison"]

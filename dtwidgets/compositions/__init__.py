"""Layer 4: compositions of widgets, analysis and adapters — the Explorer."""
from .explorer import Explorer
from .panels import PANELS, AnalysisContext, make_panels
from .session import PlaySession

__all__ = ["Explorer", "PlaySession", "AnalysisContext", "PANELS", "make_panels"]

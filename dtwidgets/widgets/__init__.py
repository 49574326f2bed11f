"""Canvas widgets (anywidget) for Decision-Transformer interpretability on MiniGrid.

Every widget is an :class:`anywidget.AnyWidget` whose front-end is a bundled, dependency-free
ESM in ``dtwidgets/static`` (built from ``js/``). Array traits travel as binary buffers
(see :mod:`dtwidgets.widgets._arrays`). Widgets compose with ``ipywidgets.HBox``/``VBox`` and
``ipywidgets.link``; :func:`to_html` writes an offline, self-contained HTML page.
"""

from ._arrays import ArrayTrait, array_from_json, array_serialization, array_to_json
from ._base import DTWidget
from .charts import ActionPreferences, CalibrationCurve, ContributionBars, RTGScanView
from .export import to_html, to_html_string
from .grid_view import EDIT_TOOLS, GridView, apply_edit
from .heatmaps import AttentionView, ChannelHeatmap, MatrixHeatmap
from .circuits2 import CircuitDiagram, PolicyMapView
from .feature_browser import FeatureBrowserView
from .controls import RTGSlider, StatusLine

__all__ = [
    "DTWidget", "GridView", "ChannelHeatmap", "ActionPreferences", "AttentionView",
    "ContributionBars", "MatrixHeatmap", "RTGScanView", "CalibrationCurve",
    "to_html", "to_html_string", "ArrayTrait", "array_serialization", "array_to_json",
    "array_from_json", "EDIT_TOOLS", "apply_edit",
    "PolicyMapView", "CircuitDiagram",
    "FeatureBrowserView",
    "RTGSlider", "StatusLine",
]
from .probe_views import ProbeMatrix, TrainingDynamicsView  # noqa: E402
from .feed import UpdateFeed  # noqa: E402

__all__ += ["ProbeMatrix", "TrainingDynamicsView", "UpdateFeed"]
from .scatter_view import ScatterView  # noqa: E402

__all__ += ["ScatterView"]

"""Canvas widgets (anywidget) for Decision-Transformer interpretability on MiniGrid.

Every widget is an :class:`anywidget.AnyWidget` whose front-end is a bundled, dependency-free
ESM in ``dtwidgets/static`` (built from ``js/``). Array traits travel as binary buffers
(see :mod:`dtwidgets.widgets._arrays`). Widgets compose with ``ipywidgets.HBox``/``VBox`` and
``ipywidgets.link``; :func:`to_html` writes an offline, self-contained HTML page.
"""

from ._arrays import ArrayTrait, SyncedArray, array_from_json, array_serialization, array_to_json
from ._base import DTWidget
from .action_preferences import ActionPreferences
from .attention_view import AttentionView
from .calibration_curve import CalibrationCurve
from .channel_heatmap import ChannelHeatmap
from .contribution_bars import ContributionBars
from .matrix_heatmap import MatrixHeatmap
from .rtg_scan_view import RTGScanView
from .rtg_slider import RTGSlider
from .status_line import StatusLine
from .export import to_html, to_html_string
from .grid_view import EDIT_TOOLS, GridView, apply_edit
from .circuit_diagram import CircuitDiagram
from .policy_map_view import PolicyMapView
from .feature_browser import FeatureBrowserView

__all__ = [
    "DTWidget", "GridView", "ChannelHeatmap", "ActionPreferences", "AttentionView",
    "ContributionBars", "MatrixHeatmap", "RTGScanView", "CalibrationCurve",
    "to_html", "to_html_string", "ArrayTrait", "SyncedArray", "array_serialization", "array_to_json",
    "array_from_json", "EDIT_TOOLS", "apply_edit",
    "PolicyMapView", "CircuitDiagram",
    "FeatureBrowserView",
    "RTGSlider", "StatusLine",
]
from .probe_matrix import ProbeMatrix  # noqa: E402
from .training_dynamics import TrainingDynamicsView  # noqa: E402
from .feed import UpdateFeed  # noqa: E402

__all__ += ["ProbeMatrix", "TrainingDynamicsView", "UpdateFeed"]
from .scatter_view import ScatterView  # noqa: E402

__all__ += ["ScatterView"]

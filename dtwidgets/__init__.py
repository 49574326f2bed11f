"""dtwidgets: composable Jupyter widgets for mechanistic interpretability of Decision Transformers on MiniGrid.

Layers: ``dtwidgets.adapters`` (protocol), ``dtwidgets.model`` (the project's DT and loaders),
``dtwidgets.analysis`` (pure functions), ``dtwidgets.widgets`` (canvas widgets),
``dtwidgets.compositions`` (the Explorer). Heavy modules (torch, TransformerLens) load lazily.
"""
from __future__ import annotations

from ._lazy import lazy_exports

__version__ = "0.1.0"

_LAZY = {
    "load_checkpoint": "dtwidgets.model",
    "load_model": "dtwidgets.model",
    "save_model": "dtwidgets.model",
    "DTAdapter": "dtwidgets.model",
    "DTConfig": "dtwidgets.model",
    "DecisionTransformer": "dtwidgets.model",
    "MiniGridEnv": "dtwidgets.adapters.minigrid_env",
    "load_demo": "dtwidgets.demo",
    "Explorer": "dtwidgets.compositions",
    "to_html": "dtwidgets.widgets",
    "load": "dtwidgets.model",
    "FeatureBrowser": "dtwidgets.compositions.feature_browser",
    "load_hf_decision_transformer": "dtwidgets.model",
    "probe_concepts": "dtwidgets.probes",
    "dynamics": "dtwidgets.dynamics",
    "load_series": "dtwidgets.dynamics",
    "TrainingDynamics": "dtwidgets.compositions",
}


__getattr__, __dir__ = lazy_exports("dtwidgets", _LAZY, globals())

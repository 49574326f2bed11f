"""The project's Decision Transformer on a TransformerLens backbone (TL 3.x or 4.x) and its loaders."""
from .adapter import DTAdapter
from .backbone import tl_major
from .checkpoint import CheckpointError, UnsafeCheckpointError, load, load_checkpoint, load_model, save_model
from .config import DTConfig
from .dt import DecisionTransformer, one_hot_observations

__all__ = ["DTAdapter", "DTConfig", "DecisionTransformer", "CheckpointError", "UnsafeCheckpointError", "load",
           "load_checkpoint", "load_model", "save_model", "one_hot_observations", "tl_major"]
from .hf import load_hf_decision_transformer, save_hf_decision_transformer
from .hf_adapter import HFDTAdapter

__all__ += ["HFDTAdapter", "load_hf_decision_transformer", "save_hf_decision_transformer"]

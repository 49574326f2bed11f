"""Sparse autoencoders on a Decision Transformer's activations (own small torch implementation,
files in SAELens' layout). See ``docs/sae.md``.

    store = collect_activations(adapter, trajectories, "blocks.0.hook_resid_post")
    sae, history = train_sae(store, d_sae=512, k=16)
    print(reconstruction_metrics(sae, store))
    save_sae(sae, "my_sae/")          # cfg.json + sae_weights.safetensors
"""
from __future__ import annotations

from .attribution import FeatureShares, decoder_readout, edited_logits, feature_edit_hooks, feature_shares
from .features import FeatureSummary, summarize_features
from .hooks import hook_names, hook_site, token_position
from .io import SAEFileError, load_sae, save_sae
from .metrics import SAEMetrics, check_hook, reconstruction_metrics, spliced_logits, spliced_metrics
from .model import SAEConfig, SparseAutoencoder
from .store import ActivationStore, check_activations, check_store, collect_activations, rollout_activations
from .train import SAETrainConfig, TrainHistory, train_sae

__all__ = [
    "SAEConfig", "SparseAutoencoder", "SAETrainConfig", "TrainHistory", "train_sae",
    "ActivationStore", "collect_activations", "rollout_activations", "check_activations", "check_store",
    "SAEMetrics", "reconstruction_metrics", "spliced_metrics", "spliced_logits", "check_hook",
    "save_sae", "load_sae", "SAEFileError", "hook_names", "hook_site", "token_position",
    "FeatureShares", "feature_shares", "edited_logits", "feature_edit_hooks", "decoder_readout",
    "FeatureSummary", "summarize_features", "demo_sae",
]


def demo_sae(variant: str = "post") -> SparseAutoencoder:
    """The SAE shipped for a demo model (see ``dtwidgets/demo/README.md``)."""
    from ..demo import DEMO_DIR

    folder = DEMO_DIR / f"{variant}_sae"
    if not (isinstance(variant, str) and variant.isidentifier() and folder.is_dir()):
        raise FileNotFoundError(f"no shipped SAE for demo variant {variant!r} (expected folder {folder})")
    return load_sae(folder)

"""The plain-torch forward of tests/reference_forward.py run on a window: every activation under its
TransformerLens 3.9 name (float64), from the adapter's reference-layout weights (no dtwidgets code)."""
from __future__ import annotations

import torch

from dtwidgets.model.checkpoint import state_dict_of
from tests.reference_forward import raw_to_features, reference_run


def reference_weights(adapter) -> dict:
    """The reference-layout state dict (``transformer.blocks.{l}.mlp.W_in`` ...) as float64."""
    return {k: v.detach().double() for k, v in state_dict_of(adapter.model).items()}


def reference_cache(adapter, window) -> dict:
    """``{hook name: activation}`` of the independent forward on ``window`` (padded steps zeroed)."""
    cfg = adapter.cfg
    feats = raw_to_features(window.observations, cfg.one_hot_obs)
    real = torch.arange(window.observations.shape[1])[None] >= window.n_pad[:, None]
    feats = feats * real[..., None]
    mcfg = {"d_model": cfg.d_model, "n_heads": cfg.n_heads, "n_layers": cfg.n_layers}
    return reference_run(state_dict_of(adapter.model), mcfg, feats, window.rtgs, window.timesteps, window.actions,
                         act_fn=cfg.act_fn, layer_norm=cfg.layer_norm, gated=cfg.gated_mlp,
                         time_type=cfg.time_embedding_type)[1]

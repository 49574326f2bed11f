"""Test helpers: random models of any config (same weights under both TransformerLens majors) and an
independent plain-torch forward from their reference-layout weights."""
from __future__ import annotations

import atexit
import contextlib
import functools
import shutil
import tempfile
from pathlib import Path

import numpy as np
import torch

from dtwidgets.model import load_checkpoint
from dtwidgets.model.checkpoint import state_dict_of
from tests.reference_forward import random_reference_checkpoint, raw_to_features, reference_logits

# name -> random_reference_checkpoint kwargs; together: no LN / LN / LNPre, gated, one-hot, linear time
# embedding, gelu, 2 / 5 / 8 / 26 tokens, 1-3 layers, 2-4 heads
CONFIGS = {
    "raw-2tok-noLN": dict(n_layers=1, n_heads=2, d_model=32, d_mlp=64, n_ctx=2, n_actions=3),
    "ln-gated-onehot-26tok": dict(n_layers=2, n_heads=4, d_model=32, d_mlp=64, n_ctx=26, layer_norm="LN",
                                  gated=True, one_hot=True, n_actions=7),
    "lnpre-8tok": dict(n_layers=2, n_heads=4, d_model=32, d_mlp=64, n_ctx=8, layer_norm="LNPre", n_actions=3),
    "noLN-gated-gelu-26tok": dict(n_layers=2, n_heads=4, d_model=32, d_mlp=64, n_ctx=26, gated=True,
                                  act_fn="gelu", n_actions=7),
    "ln-3layers-linear-time-5tok": dict(n_layers=3, n_heads=2, d_model=32, d_mlp=64, n_ctx=5, layer_norm="LN",
                                        time_type="linear", n_actions=3),
    "lnpre-gated-onehot-2tok": dict(n_layers=1, n_heads=4, d_model=32, d_mlp=64, n_ctx=2, layer_norm="LNPre",
                                    gated=True, one_hot=True, n_actions=7),
}
_TMP = Path(tempfile.mkdtemp(prefix="dtw-analysis-tests-"))
atexit.register(shutil.rmtree, _TMP, ignore_errors=True)


@functools.lru_cache(maxsize=None)
def _checkpoint(key: tuple) -> Path:
    kw = dict(key)
    path = _TMP / f"model-{abs(hash(key))}.pt"
    random_reference_checkpoint(path, **kw)
    return path


def make_adapter(seed: int = 0, **kw):
    """A DT with random weights (every bias and LN weight non-trivial), written in the reference
    checkpoint format by ``tests/reference_forward.py`` and loaded with ``load_checkpoint``."""
    kw.setdefault("max_steps", 64)
    return load_checkpoint(_checkpoint(tuple(sorted({**kw, "seed": seed}.items()))))


def random_window(adapter, seed: int = 0, n_steps: int | None = None, rtg: float = 0.5):
    """A window of random raw observations (codes < 11/6/3), increasing timesteps, random actions."""
    rng = np.random.default_rng(seed)
    T = adapter.layout.n_timesteps
    t = T if n_steps is None else n_steps
    obs = np.stack([rng.integers(0, 11, (t, 7, 7)), rng.integers(0, 6, (t, 7, 7)), rng.integers(0, 3, (t, 7, 7))], -1)
    acts = rng.integers(0, adapter.n_actions, t - 1) if t > 1 else None
    rtgs = np.clip(rtg - 0.05 * np.arange(t), -1, 1)
    return adapter.make_window(obs, rtgs, 3 + np.arange(t), acts)


def independent_logits(adapter, window, sd=None) -> torch.Tensor:
    """Logits at the prediction position from tests/reference_forward.py (float64, no dtwidgets code),
    from the reference-layout weights ``sd`` (default: the adapter's own)."""
    cfg = adapter.cfg
    sd = state_dict_of(adapter.model) if sd is None else sd
    obs = window.observations
    if obs.shape[-1] == 3:
        feats = raw_to_features(obs, cfg.one_hot_obs)
    else:
        x = obs.float().movedim(-1, -3)
        feats = x.reshape(*x.shape[:-3], -1)
    real = torch.arange(obs.shape[1])[None] >= window.n_pad[:, None]
    feats = feats * real[..., None]
    mcfg = {"d_model": cfg.d_model, "n_heads": cfg.n_heads, "n_layers": cfg.n_layers}
    return reference_logits(sd, mcfg, feats, window.rtgs, window.timesteps, window.actions, act_fn=cfg.act_fn,
                            layer_norm=cfg.layer_norm, gated=cfg.gated_mlp,
                            time_type=cfg.time_embedding_type)[:, -1]


@contextlib.contextmanager
def counted_window_forwards(adapter):
    """Count the backbone forwards of whole windows while the ``with`` block runs: calls of the first
    block's ``hook_resid_pre`` HookPoint, which every forward from the embeddings passes once (a batch of
    rows counts once). Runs of the upper blocks only (``run_from_layer`` from layer >= 1, e.g. ablation
    rows of an upper layer) do not pass it. Yields the list of calls (read ``len`` after the block)."""
    calls: list[int] = []
    point = adapter.backbone.hook_dict["blocks.0.hook_resid_pre"]
    handle = point.register_forward_hook(lambda module, args, out: calls.append(1))
    try:
        yield calls
    finally:
        handle.remove()

"""Embedding weights read along a preference direction (the "direct path" from an input to the action head).

These are static (weight-only) views. They project an embedding vector onto the raw
preference direction ``W_a - W_b``, with ``ln_final.w`` folded in for LN models. They ignore
LayerNorm scales and everything that happens in the layers. Weights are read from the DT (``adapter.model``):
``state_embedding`` (also ``adapter.W_state``), ``reward_embedding`` and ``time_embedding``.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch

from . import _common as C


def _direction(adapter, a, b, fold_ln: bool):
    if isinstance(a, (str, int, np.integer)):
        d = C.effective_direction(adapter, a, b)[0] if fold_ln else C.resolve_direction(adapter, a, b)[0]
        return d, C.direction_label(adapter, a, b)
    return C.resolve_direction(adapter, a, b)


@dataclass
class StateEmbeddingProjection:
    """State-embedding columns projected onto a direction (reference post, Figures 14-15).

    Attributes:
        values: ``[C, W, H]``: ``dir · W_state[:, feature]`` per channel × x × y, in logit units
            per unit of the input feature (a raw code or a one-hot bit).
        flat: ``[n_features]`` the same values in the model's flattened order.
        channel_names: ``C`` names; direction: label.
        hist_counts, hist_edges: histogram of the values of the used columns
            (``[bins]``, ``[bins + 1]``).
        nonzero: ``[C, W, H]`` bool, "used" columns: norm above 1e-6 × the largest column norm
            (inputs that are always 0 in training decay to ~0, e.g. the state channel of Dynamic Obstacles).
    """

    values: np.ndarray
    flat: np.ndarray
    channel_names: tuple[str, ...]
    direction: str
    hist_counts: np.ndarray
    hist_edges: np.ndarray
    nonzero: np.ndarray

    def at(self, x: int, y: int) -> dict[str, float]:
        """``{channel: value}`` for the cell ``(x, y)`` of the egocentric view."""
        return {c: float(self.values[i, x, y]) for i, c in enumerate(self.channel_names)}


@torch.inference_mode()
def state_embedding_projection(adapter, a, b=None, *, bins: int = 30, fold_ln: bool = True) -> StateEmbeddingProjection:
    """``dir · W_state`` reshaped to ``[C, W, H]`` plus a histogram.

    Args:
        a, b: actions (``W_a - W_b``; ``ln_final.w`` folded in when ``fold_ln``) or a ``[d_model]`` vector as ``a``.
    """
    d, label = _direction(adapter, a, b, fold_ln)
    W = adapter.W_state  # [d, n_features]
    flat = C.np32(d @ W)
    norms = W.norm(dim=0)
    nz = C.np32(norms > 1e-6 * float(norms.max())).astype(bool)
    counts, edges = np.histogram(flat[nz] if nz.any() else flat, bins=bins)
    schema = adapter.schema
    return StateEmbeddingProjection(values=schema.to_maps(flat), flat=flat, channel_names=tuple(schema.channel_names),
                                    direction=label, hist_counts=counts, hist_edges=edges,
                                    nonzero=schema.to_maps(nz))


@dataclass
class RTGEmbeddingProjection:
    """The RTG embedding ``rtg * w_rtg`` read along a direction (linear in RTG: no bias).

    Attributes:
        rtgs: ``[R]``; values: ``[R]`` = ``rtg * slope``; slope: ``w_rtg · dir`` (per unit RTG).
    """

    rtgs: np.ndarray
    values: np.ndarray
    slope: float
    direction: str


@torch.inference_mode()
def rtg_embedding_projection(adapter, a, b=None, rtgs=None, *, fold_ln: bool = True) -> RTGEmbeddingProjection:
    """``rtg * (w_rtg · dir)`` over an RTG grid (default 101 values in the model's RTG range)."""
    d, label = _direction(adapter, a, b, fold_ln)
    w = adapter.model.reward_embedding[0].weight.detach()[:, 0]
    slope = float(w @ d)
    r = np.linspace(*_rtg_range(adapter), 101) if rtgs is None else np.asarray(rtgs, dtype=np.float64)
    return RTGEmbeddingProjection(rtgs=r.astype(np.float32), values=(r * slope).astype(np.float32), slope=slope,
                                  direction=label)


def _rtg_range(adapter) -> tuple[float, float]:
    return tuple(getattr(getattr(adapter, "cfg", None), "rtg_range", (-1.0, 1.0)))  # type: ignore[return-value]


@dataclass
class TimeEmbeddingProjection:
    """Time-embedding rows read along a direction (reference post, Figure 11).

    Attributes:
        timesteps: ``[T]``; values: ``[T]`` = ``time(t) · dir``; direction: label.
    """

    timesteps: np.ndarray
    values: np.ndarray
    direction: str


@torch.inference_mode()
def time_embedding_projection(adapter, a, b=None, timesteps=None, *, fold_ln: bool = True) -> TimeEmbeddingProjection:
    """``time(t) · dir`` for ``timesteps`` (default: every timestep the embedding knows)."""
    d, label = _direction(adapter, a, b, fold_ln)
    emb = adapter.model.time_embedding
    if isinstance(emb, torch.nn.Embedding):
        t = torch.arange(emb.num_embeddings) if timesteps is None else torch.as_tensor(np.asarray(timesteps)).long()
        vecs = emb(t)
    else:  # linear time embedding: Linear(1, d) of the float timestep
        max_t = getattr(adapter.cfg, "max_timestep", 1000)
        t = torch.arange(max_t + 1) if timesteps is None else torch.as_tensor(np.asarray(timesteps)).long()
        vecs = emb(t.float()[:, None])
    return TimeEmbeddingProjection(timesteps=t.numpy(), values=C.np32(vecs.detach() @ d), direction=label)

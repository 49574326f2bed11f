"""Embedding weights read along a preference direction (the "direct path" from an input to the action head).

These are static (weight-only) views. They project an embedding vector onto the raw
preference direction ``W_a - W_b``, with ``ln_final.w`` folded in for LN models. They ignore
LayerNorm scales and everything that happens in the layers. Embeddings come through the protocol:
the state map (:func:`~dtwidgets.analysis.state_map.state_map`: ``W_state``, or a nonlinear encoder's
Jacobian at the observation shown), ``adapter.embed_rtg`` and ``adapter.embed_time``.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch

from ..adapters.protocol import ModelAdapter
from . import _common as C
from .directions import preference_direction
from .state_map import state_map


@dataclass
class StateEmbeddingProjection:
    """State-embedding columns projected onto a direction (reference post, Figures 14-15).

    Attributes:
        values: ``[C, W, H]``: ``dir · W_state[:, feature]`` per channel × x × y, in logit units
            per unit of the input feature (a raw code or a one-hot bit).
        flat: ``[n_features]`` the same values in the model's flattened order.
        channel_names: ``C`` names; pair_label: the pair ``a − b``.
        hist_counts, hist_edges: histogram of the values of the used columns
            (``[bins]``, ``[bins + 1]``).
        nonzero: ``[C, W, H]`` bool, "used" columns: norm above 1e-6 × the largest column norm
            (inputs that are always 0 in training decay to ~0, e.g. the state channel of Dynamic Obstacles).
        exact: True for a linear state embedding (``W_state``); False for a nonlinear encoder, whose
            Jacobian at ``obs`` was read. note: one line saying which.
    """

    values: np.ndarray
    flat: np.ndarray
    channel_names: tuple[str, ...]
    pair_label: str
    hist_counts: np.ndarray
    hist_edges: np.ndarray
    nonzero: np.ndarray
    exact: bool = True
    note: str = ""

    def at(self, x: int, y: int) -> dict[str, float]:
        """``{channel: value}`` for the cell ``(x, y)`` of the egocentric view."""
        return {c: float(self.values[i, x, y]) for i, c in enumerate(self.channel_names)}


@torch.inference_mode()
def state_embedding_projection(adapter: ModelAdapter, a, b=None, *, bins: int = 30,
                               fold_ln: bool = True, obs=None) -> StateEmbeddingProjection:
    """``dir · W_state`` reshaped to ``[C, W, H]`` plus a histogram.

    Args:
        a, b: actions (``W_a - W_b``; ``ln_final.w`` folded in when ``fold_ln``) or a ``[d_model]`` vector as ``a``.
        obs: the observation shown ``[W, H, C]``; needed (and used) only for a nonlinear state encoder,
            whose Jacobian there replaces ``W_state``.
    """
    pd = preference_direction(adapter, a, b, fold_ln=fold_ln)
    d, label = pd.vector, pd.label
    sm = state_map(adapter, obs, analysis="state_embedding_projection")
    W = sm.E.T  # [d, n_features]
    flat = C.np32(d @ W)
    norms = W.norm(dim=0)
    nz = C.np32(norms > 1e-6 * float(norms.max())).astype(bool)
    counts, edges = np.histogram(flat[nz] if nz.any() else flat, bins=bins)
    schema = adapter.schema
    return StateEmbeddingProjection(values=schema.to_maps(flat), flat=flat, channel_names=tuple(schema.channel_names),
                                    pair_label=label, hist_counts=counts, hist_edges=edges,
                                    nonzero=schema.to_maps(nz), exact=sm.exact, note=sm.note)


@dataclass
class RTGEmbeddingProjection:
    """The RTG embedding ``embed_rtg(rtg)`` read along a direction.

    Attributes:
        rtgs: ``[R]``; values: ``[R]`` = ``embed_rtg(rtg) · dir`` in logit units.
        slope: ``(embed_rtg(1) - embed_rtg(0)) · dir`` per unit RTG; pair_label: the pair ``a − b``; for our DT's linear RTG
            embedding without bias (``rtg * w_rtg``) ``values == rtgs * slope``.
    """

    rtgs: np.ndarray
    values: np.ndarray
    slope: float
    pair_label: str


@torch.inference_mode()
def rtg_embedding_projection(adapter: ModelAdapter, a, b=None, rtgs=None, *,
                             fold_ln: bool = True) -> RTGEmbeddingProjection:
    """``embed_rtg(rtg) · dir`` over an RTG grid (default 101 values in the model's RTG range)."""
    C.require_rtg(adapter, "rtg_embedding_projection")
    pd = preference_direction(adapter, a, b, fold_ln=fold_ln)
    d, label = pd.vector, pd.label
    r = np.linspace(*adapter.rtg_range, 101) if rtgs is None else np.asarray(rtgs, dtype=np.float64)
    emb = adapter.embed_rtg(torch.as_tensor(r, dtype=torch.float32, device=C.device(adapter)))  # [R, d]
    values = C.np32(emb @ d)
    # slope of the linear part: (embed(1) - embed(0)) · dir (the exact slope of a linear RTG embedding)
    ends = adapter.embed_rtg(torch.tensor([0.0, 1.0], device=C.device(adapter)))
    slope = float((ends[1] - ends[0]) @ d)
    return RTGEmbeddingProjection(rtgs=r.astype(np.float32), values=values, slope=slope, pair_label=label)


@dataclass
class TimeEmbeddingProjection:
    """Time-embedding rows read along a direction (reference post, Figure 11).

    Attributes:
        timesteps: ``[T]``; values: ``[T]`` = ``time(t) · dir``; pair_label: the pair ``a − b``.
    """

    timesteps: np.ndarray
    values: np.ndarray
    pair_label: str


@torch.inference_mode()
def time_embedding_projection(adapter: ModelAdapter, a, b=None, timesteps=None, *,
                              fold_ln: bool = True) -> TimeEmbeddingProjection:
    """``time(t) · dir`` for ``timesteps`` (default: every timestep the embedding knows)."""
    pd = preference_direction(adapter, a, b, fold_ln=fold_ln)
    d, label = pd.vector, pd.label
    dev = C.device(adapter)
    t = (torch.arange(adapter.max_timestep + 1, device=dev) if timesteps is None
         else torch.as_tensor(np.asarray(timesteps), device=dev).long())
    vecs = adapter.embed_time(t)
    return TimeEmbeddingProjection(timesteps=t.cpu().numpy(), values=C.np32(vecs.detach() @ d), pair_label=label)

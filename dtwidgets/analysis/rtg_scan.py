"""RTG scan: how behaviour and its decomposition change with the return-to-go, in ONE batched forward.

Like the reference app, the scan sets the same RTG at every step of the window (padding
included), and keeps observations, actions and timesteps fixed.
"""
from __future__ import annotations

import functools
from dataclasses import dataclass, field

import numpy as np
import torch

from ..adapters.protocol import ModelAdapter
from ..adapters.window import TrajectoryWindow
from . import _common as C
from .ids import readout_ids
from ._tokens import replicated_tokens, run_tokens_with_cache
from .attribution import attribution_hooks, direct_contributions
from ..adapters import hooks as hk


def default_rtgs(adapter: ModelAdapter, n: int = 101) -> np.ndarray:
    """``n`` evenly spaced RTGs over ``[-1, 1]``, clipped to the model's RTG range (none for a model without
    RTG tokens: its scan is empty)."""
    if not adapter.layout.has_rtg:
        return np.zeros(0, np.float32)
    lo, hi = adapter.rtg_range
    return _grid(max(-1.0, float(lo)), min(1.0, float(hi)), int(n)).copy()  # a copy: the caller owns it


@functools.lru_cache(maxsize=16)
def _grid(lo: float, hi: float, n: int) -> np.ndarray:
    """``np.linspace(lo, hi, n)`` as float32, kept (``np.linspace`` is ~15 µs of Python per state)."""
    return np.linspace(lo, hi, n, dtype=np.float32)


def scan_hooks(adapter: ModelAdapter) -> list[str]:
    L = C.n_layers(adapter)
    return attribution_hooks(adapter, per_source=False) + [hk.pattern(l) for l in range(L)]


@dataclass
class RTGScan:
    """Action preferences, their decomposition and attention to RTG tokens over an RTG grid.

    Attributes:
        rtgs: ``[R]`` the RTG values (set at every step of the window).
        action_names: ``A`` names; logits, probs: ``[R, A]``.
        pair_label: e.g. ``"forward − right"``; logit_diff: ``[R]`` along it.
        contributions: ``[R, N]`` direct attribution of ``logit_diff`` (rows sum to it).
        labels, kinds: ``N`` component labels and kinds (as :class:`~dtwidgets.analysis.LogitAttribution`);
            ids: their :class:`~dtwidgets.analysis.ids.ComponentId`.
        head_labels: ``L*H`` names.
        attention_to_rtg: ``[R, L*H]`` attention from the prediction token to all RTG tokens (summed).
        attention_to_rtg_by_token: ``[R, L*H, T]`` the same per RTG token; rtg_token_labels: ``T`` labels.
    """

    rtgs: np.ndarray
    action_names: tuple[str, ...]
    logits: np.ndarray
    probs: np.ndarray
    pair_label: str
    logit_diff: np.ndarray
    contributions: np.ndarray
    labels: list[str]
    kinds: list[str]
    head_labels: list[str]
    attention_to_rtg: np.ndarray
    attention_to_rtg_by_token: np.ndarray
    rtg_token_labels: list[str]
    ids: list = field(default_factory=list)


def scan_from_cache(adapter: ModelAdapter, logits, cache, rtgs, a, b=None, rows=slice(None), direct=None) -> RTGScan:
    """Assemble an :class:`RTGScan` from a batched run whose rows ``rows`` hold the RTG grid. The
    cache is read at position ``-1``, the prediction position (a full cache, or one narrowed to
    that position by :func:`~dtwidgets.analysis._tokens.run_tokens_with_cache`); ``direct``: its
    :func:`~dtwidgets.analysis.direct_contributions` there when already computed (every row)."""
    lay = adapter.layout
    p = -1
    vals, labels, kinds = direct_contributions(adapter, cache, p, a, b) if direct is None else direct
    rp = C.kind_positions(adapter, "rtg")
    token_labels = lay.labels()
    att = torch.cat([cache[hk.pattern(l)][rows][:, :, p][..., rp]
                     for l in range(C.n_layers(adapter))], dim=1)  # [R, L*H, T]
    lg = logits[rows]
    ia = C.action_index(adapter, a)
    diff = lg[:, ia] - (lg[:, C.action_index(adapter, b)] if b is not None else 0)
    return RTGScan(rtgs=np.asarray(rtgs, dtype=np.float32), action_names=tuple(adapter.action_names), logits=C.np32(lg),
                   probs=C.softmax_np(lg), pair_label=C.pair_label(adapter, a, b), logit_diff=C.np32(diff),
                   contributions=C.np32(vals[:, rows].T), labels=labels, kinds=kinds,
                   head_labels=C.head_labels(adapter), attention_to_rtg=C.np32(att.sum(-1)),
                   attention_to_rtg_by_token=C.np32(att), rtg_token_labels=[token_labels[i] for i in lay.positions("rtg")],
                   ids=readout_ids(adapter, p))


@torch.inference_mode()
@C.reuse_weights()
def rtg_scan(adapter: ModelAdapter, window: TrajectoryWindow, a, b=None, rtgs=None) -> RTGScan:
    """Scan the RTG for a fixed one-row window: one ``run_with_cache`` over ``R`` replicated rows.

    Args:
        a, b: the preference direction (actions by name or index; ``b=None`` for ``logit[a]``).
        rtgs: the grid (default :func:`default_rtgs`: 101 values in ``[-1, 1]``).
    """
    C.require_rtg(adapter, "rtg_scan")
    if window.batch_size != 1:
        raise ValueError(f"expected a one-row window, got {window.batch_size} rows")
    r = default_rtgs(adapter) if rtgs is None else np.asarray(rtgs, dtype=np.float32)
    rep = replicated_tokens(adapter, window, 0, torch.as_tensor(r, device=C.device(adapter)))
    if rep is not None:  # the window embedded once, its RTG tokens varied
        logits, _, cache = run_tokens_with_cache(adapter, rep[0], rep[1], scan_hooks(adapter))
    else:
        wr = window.repeat(len(r)).with_rtg(torch.as_tensor(r, device="cpu"))  # window data
        logits, cache = adapter.run_with_cache(wr, names_filter=scan_hooks(adapter))
    return scan_from_cache(adapter, logits, cache, r, a, b)

"""Dataset-level feature statistics for the feature browser, computed in two streaming passes
(no ``[N, d_sae]`` matrix is ever held).

Pass 1: firing frequency, max / mean activation, Pearson correlation with RTG and with the episode
timestep, and the top-k activating rows. Pass 2: an activation histogram per feature over
``[0, max]`` and, for quantile examples, the first row that falls in each histogram bin.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch

from .attribution import decoder_readout
from .hooks import hook_site
from .model import SparseAutoencoder
from .store import ActivationStore, check_store


@dataclass
class FeatureSummary:
    """Per-feature statistics over an :class:`ActivationStore` (F = d_sae features, A actions).

    Attributes:
        frequency, max_act, mean_act: ``[F]`` fraction of rows where the feature fires, its largest
            activation, and its mean activation over the rows where it fires.
        rtg_corr, time_corr: ``[F]`` Pearson correlation of the activation (zeros included) with the
            RTG and with the episode timestep (0 for a constant feature).
        hist: ``[F, n_bins]`` counts of non-zero activations in equal bins of ``[0, max_act]``.
        top_rows, top_acts: ``[F, K]`` store rows with the largest activations (``-1`` when fewer fire).
        quantile_rows, quantile_acts, quantiles: ``[F, Q]`` one row near each activation quantile
            ``quantiles [Q]`` of the firing rows (``-1`` when none).
        action_bars: ``[F, A]`` the decoder direction read by the action head, ``read(W_dec[i])``
            for each action's logit (per unit activation, ``ln_final`` weight folded, before its scale).
        write_maps: ``[F, C, W, H]`` the encoder direction pulled back through the state embedding,
            ``W_state^T W_enc[:, i]`` (what in the observation writes the feature along the direct
            path), or ``None`` when the hook is not in the residual stream.
    """

    frequency: np.ndarray
    max_act: np.ndarray
    mean_act: np.ndarray
    rtg_corr: np.ndarray
    time_corr: np.ndarray
    hist: np.ndarray
    top_rows: np.ndarray
    top_acts: np.ndarray
    quantile_rows: np.ndarray
    quantile_acts: np.ndarray
    quantiles: np.ndarray
    action_bars: np.ndarray
    write_maps: np.ndarray | None

    @property
    def n_features(self) -> int:
        return int(self.frequency.shape[0])


@torch.no_grad()
def summarize_features(adapter, sae: SparseAutoencoder, store: ActivationStore, *, n_top: int = 8,
                       quantiles=(0.1, 0.3, 0.5, 0.7, 0.9), n_bins: int = 24,
                       batch_size: int = 4096) -> FeatureSummary:
    """Statistics of every feature of ``sae`` over ``store`` (see :class:`FeatureSummary`)."""
    check_store(store, sae)
    N, F = len(store), sae.d_sae
    K = min(int(n_top), N)
    y = np.stack([store.rtg, store.step]).astype(np.float64)  # [2, N]
    s = _pass_one(sae, store.acts, y, K, batch_size)
    max_act = s["max"].clamp_min(1e-12)
    dev = store.acts.device  # the statistics are computed where the activations are
    hist = torch.zeros(F, n_bins, dtype=torch.float64, device=dev)
    first = torch.full((F, n_bins), N, dtype=torch.long, device=dev)
    for b0 in range(0, N, batch_size):
        f = sae.encode(store.acts[b0:b0 + batch_size])
        rows = torch.arange(b0, b0 + f.shape[0], device=dev)[:, None].expand_as(f)
        on = f > 0
        bins = (f / max_act * n_bins).long().clamp(0, n_bins - 1)
        flat_idx = (torch.arange(F, device=dev)[None, :] * n_bins + bins)[on]
        hist.view(-1).index_add_(0, flat_idx, torch.ones(flat_idx.shape[0], dtype=torch.float64, device=dev))
        first.view(-1).scatter_reduce_(0, flat_idx, rows[on], reduce="amin")
    q_rows, q_acts = _quantile_examples(sae, store, hist, first, np.asarray(quantiles, np.float64))
    n = s["count"].clamp_min(1)
    corr = _pearson(s, N)
    A = adapter.W_action.shape[0]
    bars = torch.stack([decoder_readout(adapter, sae, a) for a in range(A)], 1).float().cpu().numpy()
    return FeatureSummary(frequency=(s["count"] / N).float().cpu().numpy(), max_act=s["max"].float().cpu().numpy(),
                          mean_act=(s["sum"] / n).float().cpu().numpy(), rtg_corr=corr[0], time_corr=corr[1],
                          hist=hist.float().cpu().numpy(), top_rows=s["top_rows"].T.cpu().numpy(),
                          top_acts=s["top_vals"].T.float().cpu().numpy(), quantile_rows=q_rows, quantile_acts=q_acts,
                          quantiles=np.asarray(quantiles, np.float32), action_bars=bars,
                          write_maps=write_maps(adapter, sae))


def _pass_one(sae, acts, y, K, batch_size) -> dict:
    F, dev, f64 = sae.d_sae, acts.device, torch.float64
    s = {"count": torch.zeros(F, dtype=f64, device=dev), "sum": torch.zeros(F, dtype=f64, device=dev),
         "sq": torch.zeros(F, dtype=f64, device=dev), "max": torch.zeros(F, device=dev),
         "xy": torch.zeros(y.shape[0], F, dtype=f64, device=dev), "top_vals": torch.full((K, F), -1.0, device=dev),
         "top_rows": torch.full((K, F), -1, dtype=torch.long, device=dev)}
    yt = torch.as_tensor(y, device=dev)
    s["y_sum"], s["y_sq"] = yt.sum(1), yt.pow(2).sum(1)
    for b0 in range(0, acts.shape[0], batch_size):
        f = sae.encode(acts[b0:b0 + batch_size])
        fd = f.double()
        s["count"] += (f > 0).sum(0)
        s["sum"] += fd.sum(0)
        s["sq"] += fd.pow(2).sum(0)
        s["max"] = torch.maximum(s["max"], f.max(0).values)
        s["xy"] += yt[:, b0:b0 + f.shape[0]] @ fd
        vals = torch.cat([s["top_vals"], torch.where(f > 0, f, torch.full_like(f, -1.0))])
        rows = torch.cat([s["top_rows"], torch.arange(b0, b0 + f.shape[0], device=dev)[:, None].expand_as(f)])
        top = vals.topk(K, dim=0)
        s["top_vals"], s["top_rows"] = top.values, rows.gather(0, top.indices)
    s["top_rows"] = torch.where(s["top_vals"] > 0, s["top_rows"], torch.full_like(s["top_rows"], -1))
    s["top_vals"] = s["top_vals"].clamp_min(0)
    return s


def _pearson(s: dict, N: int) -> np.ndarray:
    """``[2, F]`` correlation of each feature with each of the two context variables."""
    mf = s["sum"] / N
    vf = (s["sq"] / N - mf.pow(2)).clamp_min(0)
    my = s["y_sum"] / N
    vy = (s["y_sq"] / N - my.pow(2)).clamp_min(0)
    cov = s["xy"] / N - my[:, None] * mf[None, :]
    den = (vf[None, :] * vy[:, None]).sqrt()
    return torch.where(den > 1e-12, cov / den.clamp_min(1e-30), torch.zeros_like(cov)).float().cpu().numpy()


def _quantile_examples(sae, store, hist, first, quantiles):
    F, n_bins = hist.shape
    cum = hist.cumsum(1)
    total = cum[:, -1:].clamp_min(1)
    q = torch.as_tensor(quantiles, device=hist.device)
    b = torch.searchsorted((cum / total).contiguous(), q[None, :].expand(F, -1).contiguous())
    b = b.clamp(max=n_bins - 1)
    rows = first.gather(1, b)
    rows = torch.where((rows < len(store)) & (hist.sum(1, keepdim=True) > 0), rows, torch.full_like(rows, -1))
    acts = torch.zeros(rows.shape, device=hist.device)
    ok = rows >= 0
    if ok.any():
        f = sae.encode(store.acts[rows[ok]])  # [n_ok, F]
        acts[ok] = f.gather(1, torch.nonzero(ok)[:, :1]).flatten()
    return rows.cpu().numpy(), acts.cpu().numpy()


def write_maps(adapter, sae: SparseAutoencoder) -> np.ndarray | None:
    """``[F, C, W, H]`` ``W_state^T W_enc[:, i]`` as observation maps, or ``None`` outside the residual stream
    or for a nonlinear state encoder (no observation-independent map; see
    :func:`~dtwidgets.analysis.state_map.state_map`)."""
    from ..analysis.state_map import linear_state_weights

    W = linear_state_weights(adapter)
    if W is None or hook_site(adapter, sae.cfg.hook_name).kind != "resid":
        return None
    flat_maps = (sae.W_enc.detach().T.float() @ W).cpu().numpy()  # [F, n_features]
    return adapter.schema.to_maps(flat_maps).astype(np.float32)

"""NMF of activations over a state set, shown as grid-state cards in the existing FeatureBrowserView.

:func:`activation_nmf` factorises the ``[N, D]`` activations of an
:class:`~dtwidgets.sae.ActivationStore` (one hook, one token kind, one row per recorded state) as
``X ≈ W H`` with ``W`` ``[N, K]`` and ``H`` ``[K, D']`` non-negative (``sklearn.decomposition.NMF``).
``mlp.hook_post`` of a ReLU MLP is non-negative already; for a signed activation (the residual
stream) ``split=True`` factorises ``[max(X, 0), max(-X, 0)]`` (``D' = 2D``), and each component's
signed direction is ``H[:, :D] - H[:, D:]``.

:func:`nmf_browser_data` turns the result into the traits of
:class:`~dtwidgets.widgets.FeatureBrowserView`, so each NMF component is a row of the list and a card
(``FeatureBrowserView(**nmf_browser_data(adapter, result, store))``). With ``a = W[:, k]`` the
statistics mean what the view's traits say for SAE features: ``frequency`` = fraction of rows with
``a > 0``; ``max_act``; ``mean_act`` over those rows; Pearson ``rtg_corr`` / ``time_corr`` (zeros
included, 0 for a constant); ``hist`` counts of ``a > 0`` in ``n_bins`` equal bins of ``[0, max_act]``;
the examples are the ``n_top`` rows with the largest ``a`` then, for each quantile ``q``, the firing row
whose ``a`` is nearest the ``q``-quantile of the firing values; ``action_bars`` the signed direction
mapped into the residual stream (``W_out`` for ``hook_post``, ``W_O`` for ``hook_z``) and read by the
action head (:func:`dtwidgets.sae.attribution.readout`); ``write_maps`` (residual hooks only) the
direction pulled back through the state embedding, ``W_stateᵀ d``.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch

from ..adapters.device import device_of
from ..adapters.protocol import ModelAdapter


@dataclass
class NMFResult:
    """``X ≈ coefficients @ components`` (``N`` rows, ``K`` components, ``D`` activation size).

    Attributes:
        coefficients: ``[N, K]`` ``W`` >= 0 (each row's activation of each component).
        components: ``[K, D']`` ``H`` >= 0 (``D' = 2D`` when ``split``: positive then negative parts).
        directions: ``[K, D]`` signed directions in activation space (``H`` itself without split).
        relative_error: ``|X' - W H|_F / |X'|_F`` of the factorised (split) matrix ``X'``.
        hook, token, split: what was factorised; n_iter: solver iterations.
    """

    coefficients: np.ndarray
    components: np.ndarray
    directions: np.ndarray
    relative_error: float
    hook: str
    token: str
    split: bool
    n_iter: int


def _sklearn_nmf():
    try:
        from sklearn.decomposition import NMF
    except ImportError as e:  # a dependency of dtwidgets; say so when an environment lacks it
        raise ImportError("activation_nmf needs scikit-learn (a dtwidgets dependency): pip install scikit-learn") from e
    return NMF


def activation_nmf(store, n_components: int = 8, *, split: bool | None = None, seed: int = 0,
                   max_iter: int = 500, init: str = "nndsvda") -> NMFResult:
    """NMF of ``store.acts`` ``[N, D]`` into ``n_components`` parts (see the module docstring).

    Args:
        store: an :class:`~dtwidgets.sae.ActivationStore` (``acts``, ``hook_name``, ``token``).
        split: factorise positive and negative parts (default: only when ``acts`` has a negative entry;
            ``False`` with negative entries is an error).
        seed, max_iter, init: passed to ``sklearn.decomposition.NMF`` (deterministic for a given seed).
    """
    X = np.asarray(store.acts.detach().cpu() if torch.is_tensor(store.acts) else store.acts, dtype=np.float64)
    if X.ndim != 2 or X.shape[0] < 2 or not np.isfinite(X).all():
        raise ValueError(f"store.acts: expected a finite [N, D] array with N >= 2, got shape {X.shape}")
    negative = bool((X < 0).any())
    split = negative if split is None else bool(split)
    if negative and not split:
        raise ValueError(f"store.acts: NMF needs non-negative activations; {store.hook_name!r} has negative "
                         "entries (pass split=True to factorise its positive and negative parts)")
    k = int(n_components)
    if not 1 <= k <= min(X.shape[0], 2 * X.shape[1] if split else X.shape[1]):
        raise ValueError(f"n_components: expected 1..{min(X.shape[0], X.shape[1] * (2 if split else 1))}, got {n_components}")
    Xs = np.concatenate([np.maximum(X, 0), np.maximum(-X, 0)], 1) if split else X
    model = _sklearn_nmf()(n_components=k, init=init, random_state=int(seed), max_iter=int(max_iter))
    W = model.fit_transform(Xs)
    H = model.components_
    D = X.shape[1]
    directions = H[:, :D] - H[:, D:] if split else H
    total = np.linalg.norm(Xs)
    err = float(np.linalg.norm(Xs - W @ H) / total) if total > 0 else 0.0
    return NMFResult(W.astype(np.float32), H.astype(np.float32), directions.astype(np.float32), err,
                     str(store.hook_name), str(store.token), split, int(model.n_iter_))


def _examples(a: np.ndarray, n_top: int, quantiles) -> tuple[np.ndarray, np.ndarray]:
    """``(rows [E], values [E])`` of one component's card (``-1`` / ``-1.0`` for an empty slot)."""
    on = np.flatnonzero(a > 0)
    top = on[np.argsort(-a[on], kind="stable")][:n_top]
    rows = np.full(n_top + len(quantiles), -1, dtype=np.int64)
    rows[:top.size] = top
    if on.size:
        for j, q in enumerate(quantiles):
            target = np.quantile(a[on], q)
            rows[n_top + j] = on[np.argmin(np.abs(a[on] - target))]
    vals = np.where(rows >= 0, a[np.maximum(rows, 0)], -1.0)
    return rows, vals


def _stats(W: np.ndarray, rtg: np.ndarray, step: np.ndarray, n_bins: int) -> dict:
    on = W > 0
    count = on.sum(0)
    mx = W.max(0)
    mean = np.where(count > 0, (W * on).sum(0) / np.maximum(count, 1), 0.0)

    def corr(y):
        yc, Wc = y - y.mean(), W - W.mean(0)
        den = np.sqrt((yc ** 2).sum() * (Wc ** 2).sum(0))
        return np.where(den > 1e-12, yc @ Wc / np.maximum(den, 1e-30), 0.0)

    bins = np.clip((W / np.maximum(mx, 1e-12) * n_bins).astype(np.int64), 0, n_bins - 1)
    hist = np.stack([np.bincount(bins[on[:, k], k], minlength=n_bins) for k in range(W.shape[1])])
    return dict(frequency=count / W.shape[0], max_act=mx, mean_act=mean, rtg_corr=corr(rtg.astype(np.float64)),
                time_corr=corr(step.astype(np.float64)), hist=hist)


@torch.no_grad()
def _action_bars(adapter: ModelAdapter, result: NMFResult, hook: str) -> tuple[np.ndarray, np.ndarray]:
    """``([K, A] action readout, [K, C, W, H] write maps or empty)`` of the signed directions."""
    from ..sae.attribution import readout
    from ..sae.hooks import hook_site, to_residual

    site = hook_site(adapter, hook)
    d = torch.as_tensor(result.directions, dtype=torch.float64, device=device_of(adapter))
    if d.shape[1] != site.d_in:
        raise ValueError(f"result: expected directions of size {site.d_in} for {hook!r}, got {d.shape[1]}")
    M = to_residual(adapter, site)
    res = d if M is None else d @ M.double()
    bars = torch.stack([readout(adapter, res, a) for a in range(adapter.W_action.shape[0])], 1)
    maps = np.zeros(0, np.float32)
    from .state_map import linear_state_weights

    W = linear_state_weights(adapter)  # a nonlinear state encoder has no observation-independent map: no maps
    if site.kind == "resid" and W is not None:
        maps = adapter.schema.to_maps((d.float() @ W).cpu().numpy()).astype(np.float32)
    return bars.float().cpu().numpy(), maps


def nmf_browser_data(adapter: ModelAdapter, result: NMFResult, store, *, n_top: int = 6,
                     quantiles=(0.1, 0.5, 0.9), n_bins: int = 24, title: str = "") -> dict:
    """The :class:`~dtwidgets.widgets.FeatureBrowserView` traits showing ``result``'s components as
    feature rows (``feature_ids`` = component index) with example states from ``store`` (the store the
    NMF was fitted on); ``FeatureBrowserView(**nmf_browser_data(...))``."""
    W = np.asarray(result.coefficients, dtype=np.float64)
    if W.shape[0] != len(store) or store.hook_name != result.hook:
        raise ValueError(f"store: expected the {W.shape[0]} rows at {result.hook!r} the NMF was fitted on, got "
                         f"{len(store)} rows at {store.hook_name!r}")
    K = W.shape[1]
    ex = [_examples(W[:, k], int(n_top), tuple(quantiles)) for k in range(K)]
    rows = np.stack([r for r, _ in ex])  # [K, E]
    vals = np.stack([v for _, v in ex])
    bars, maps = _action_bars(adapter, result, store.hook_name)
    s = _stats(W, np.asarray(store.rtg), np.asarray(store.step), int(n_bins))
    f32 = lambda x: np.asarray(x, dtype=np.float32)  # noqa: E731
    parts = "positive/negative parts of " if result.split else ""
    return dict(feature_ids=np.arange(K, dtype=np.int32), **{k: f32(v) for k, v in s.items()}, action_bars=f32(bars),
                **store.example_slots(rows, vals, adapter.schema), write_maps=maps,
                example_labels=[f"top {i + 1}" for i in range(int(n_top))] + [f"q{round(q * 100)}" for q in quantiles],
                action_names=list(adapter.action_names), channel_names=list(adapter.schema.channel_names),
                title=title or f"{K} NMF components of {parts}{result.hook} ({result.token} tokens, {len(store)} states, "
                               f"relative error {result.relative_error:.3f})")

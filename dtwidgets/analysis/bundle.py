"""``analyze_state``: everything the Explorer shows for a new state, from ONE batched forward.

The batch is ``[clean window | one row per single-component ablation | one row per RTG value]``
(the last layer's MLP needs no row: :func:`~dtwidgets.analysis.ablation.final_mlp_ablation_logits`).
Ablation hooks touch only their own rows, and a single ``run_with_cache`` with a narrow
``names_filter`` provides the cache for the attribution, the attention patterns and the RTG scan.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch

from ..adapters.protocol import ModelAdapter
from ..adapters.window import TrajectoryWindow
from . import _common as C
from .ablation import SingleAblations, ablation_hooks, final_mlp_ablation_logits
from .attention import AttentionPatterns, attention_patterns
from .attribution import LogitAttribution, LogitLens, attribution_hooks, logit_attribution, logit_lens
from ._tokens import replicated_tokens, run_tokens_with_cache
from .rtg_scan import RTGScan, default_rtgs, scan_from_cache, scan_hooks
from ..adapters import hooks as hk


@dataclass
class StateAnalysis:
    """The bundle returned by :func:`analyze_state` (all numpy; window row 0).

    Attributes:
        action_names: ``A`` names; logits, probs: ``[A]`` of the window as given.
        attribution: :class:`~dtwidgets.analysis.LogitAttribution` along ``a - b``.
        ablations: :class:`~dtwidgets.analysis.SingleAblations` (every head, every MLP).
        rtg_scan: :class:`~dtwidgets.analysis.RTGScan` over ``rtgs``.
        attention: :class:`~dtwidgets.analysis.AttentionPatterns` ``[L*H, P, P]``.
        lens: :class:`~dtwidgets.analysis.LogitLens` along ``a - b`` (None unless ``lens=True``).
        neuron_activations: ``[L, d_mlp]`` every MLP neuron's activation (``mlp.hook_post``) at the
            prediction position (None unless ``lens=True``).
    """

    action_names: tuple[str, ...]
    logits: np.ndarray
    probs: np.ndarray
    attribution: LogitAttribution
    ablations: SingleAblations
    rtg_scan: RTGScan
    attention: AttentionPatterns
    lens: LogitLens | None = None
    neuron_activations: np.ndarray | None = None


def lens_hooks(adapter: ModelAdapter) -> list[str]:
    """The extra cache entries of ``analyze_state(..., lens=True)``: every ``resid_pre/mid/post``
    (read by :func:`~dtwidgets.analysis.logit_lens`) and every ``mlp.hook_post``."""
    L = C.n_layers(adapter)
    resid = [f(l) for l in range(L) for f in (hk.resid_pre, hk.resid_mid, hk.resid_post)]
    return resid + [hk.mlp_post(l) for l in range(L)]


def _lens_and_activations(adapter: ModelAdapter, window: TrajectoryWindow, a, b, clean):
    """``(LogitLens, activations [L, d_mlp])`` of window row 0 from its cache ``clean``."""
    pos = adapter.layout.prediction_position
    lens = logit_lens(adapter, window, a, b, cache=clean, position=pos)
    acts = np.stack([C.np32(clean[hk.mlp_post(l)][0, pos]) for l in range(C.n_layers(adapter))])
    return lens, acts


def _run_batch(adapter: ModelAdapter, window: TrajectoryWindow, n_same: int, rtgs: torch.Tensor, names, hooks,
               row0_only=()):
    """``(logits, clean, last, at)`` of ``[window × n_same | window.with_rtg(r) for r in rtgs]``:
    ``clean`` the cache of row 0 (every position), ``last`` every row's cache, whose position index
    ``at`` is the prediction position. The window is embedded once when the adapter's tokens allow it (see
    :mod:`._tokens`; then ``last`` holds only that position, and not the ``row0_only`` names)."""
    rep = replicated_tokens(adapter, window, n_same, rtgs)
    if rep is not None:
        return (*run_tokens_with_cache(adapter, rep[0], rep[1], names, hooks, full_rows=1, full_only=row0_only), -1)
    batch = TrajectoryWindow.cat([window.repeat(n_same), window.repeat(len(rtgs)).with_rtg(rtgs)])
    logits, cache = C.run_with_cache(adapter, batch, names, fwd_hooks=hooks)
    return logits, cache.apply_slice_to_batch_dim(slice(0, 1)), cache, adapter.layout.prediction_position


@torch.inference_mode()
@C.reuse_weights()
def analyze_state(adapter: ModelAdapter, window: TrajectoryWindow, a, b=None, rtgs=None, *,
                  ablation_mode: str = "zero", means=None, per_source: bool = True,
                  per_neuron: bool = False, lens: bool = False) -> StateAnalysis:
    """Forward + cache + attribution + every single-component ablation + RTG scan, batched.

    Args:
        adapter: a :class:`~dtwidgets.adapters.ModelAdapter`.
        window: a one-row window (the current state and its history).
        a, b: the preference direction (actions by name or index; ``b=None`` for ``logit[a]``).
        rtgs: RTG grid of the scan (default: 101 values in ``[-1, 1]``; none, an empty scan, for a model
            without RTG tokens).
        ablation_mode, means: ``"zero"``, or ``"mean"`` with ``means`` from
            :func:`~dtwidgets.analysis.mean_activations`.
        per_source, per_neuron: passed to :func:`~dtwidgets.analysis.logit_attribution`.
        lens: also fill ``lens`` (equal to :func:`~dtwidgets.analysis.logit_lens`) and
            ``neuron_activations`` from the same forward (adds the residual and ``mlp.hook_post``
            hooks to the cache).
    """
    if window.batch_size != 1:
        raise ValueError(f"expected a one-row window, got {window.batch_size} rows")
    r = default_rtgs(adapter) if rtgs is None else np.asarray(rtgs, dtype=np.float32)
    if len(r):
        C.require_rtg(adapter, "analyze_state's RTG scan (pass rtgs=[])")
    comps = C.head_labels(adapter) + C.mlp_labels(adapter)
    run = comps[:-1]  # one batch row each; the last layer's MLP is read off the clean run
    K, R = len(run), len(r)
    hooks = ablation_hooks(adapter, [(1 + k, c) for k, c in enumerate(run)], 1 + K + R, ablation_mode, means)
    base_names = set(attribution_hooks(adapter, per_source, per_neuron) + scan_hooks(adapter))
    extra = set(lens_hooks(adapter)) - base_names if lens else set()  # read from row 0 only
    names = sorted(base_names | extra | {hk.resid_post(C.n_layers(adapter) - 1)})
    logits, clean, last, at = _run_batch(adapter, window, 1 + K, torch.as_tensor(r), names, hooks, extra)
    attribution = logit_attribution(adapter, window, a, b, per_source, per_neuron, cache=clean, logits=logits[:1])
    attention = attention_patterns(adapter, window, cache=clean)
    lens_acts = _lens_and_activations(adapter, window, a, b, clean) if lens else (None, None)
    scan_cache = last.apply_slice_to_batch_dim(slice(1 + K, 1 + K + R))
    scan = scan_from_cache(adapter, logits[1 + K:], scan_cache, r, a, b)
    base = logits[0]
    abl = torch.cat([logits[1:1 + K], final_mlp_ablation_logits(adapter, last, at, ablation_mode, means)[None]])
    probs, bprobs = C.softmax_np(abl), C.softmax_np(base)
    ablations = SingleAblations(labels=comps, mode=ablation_mode, action_names=tuple(adapter.action_names),
                                logits=C.np32(abl), probs=probs, baseline_logits=C.np32(base), baseline_probs=bprobs,
                                delta_probs=probs - bprobs)
    ia = C.action_index(adapter, a)
    ib = None if b is None else C.action_index(adapter, b)
    diff = abl[:, ia] - (abl[:, ib] if ib is not None else 0)
    ablations.direction, ablations.logit_diff = attribution.direction, C.np32(diff)
    ablations.baseline_logit_diff = attribution.logit_diff
    ablations.delta_logit_diff = C.np32(diff) - attribution.logit_diff
    return StateAnalysis(action_names=tuple(adapter.action_names), logits=C.np32(base), probs=bprobs,
                         attribution=attribution, ablations=ablations, rtg_scan=scan, attention=attention,
                         lens=lens_acts[0], neuron_activations=lens_acts[1])

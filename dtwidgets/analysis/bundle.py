"""``analyze_state``: the one owner of per-state analysis. Everything a view shows for a state comes
from it: the shared bundle from ONE batched forward, plus the typed extras the views ask for
(:mod:`dtwidgets.analysis.extras`).

The batch is ``[clean window | one row per single-component ablation | one row per RTG value]``
(the last layer's MLP needs no row: :func:`~dtwidgets.analysis.ablation.final_mlp_ablation_logits`).
Ablation hooks touch only their own rows, and a single ``run_with_cache`` with a narrow
``names_filter`` provides the cache for the attribution, the attention patterns, the RTG scan and the
forward-shared extras (lens, neurons). With the adapter's optional ``run_from_layer`` (ours), only
layer 0's ablations are rows of that batch: a layer-``l`` ablation runs layers ``>= l`` only, from the
clean row's ``blocks.{l}.hook_resid_pre`` (one small batch per layer,
:func:`~dtwidgets.analysis.ablation.ablation_logits_by_layer`).
"""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Sequence

import numpy as np
import torch

from ..adapters.device import device_of
from ..adapters.protocol import ModelAdapter
from ..adapters.window import TrajectoryWindow
from . import _common as C
from .ablation import SingleAblations, ablation_hooks, ablation_logits_by_layer, final_mlp_ablation_logits
from .attention import AttentionPatterns, attention_patterns
from .attribution import LogitAttribution, attribution_hooks, direct_contributions, logit_attribution
from ._tokens import can_run_from_layer, replicated_tokens, run_tokens_with_cache
from .extras import Extra, Lens, Neurons, StateRequest, check_extras, compute_extras
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
        extras: the results of the extras asked for, by type (``state[Lens]``; see
            :mod:`~dtwidgets.analysis.extras`).
        pair: ``(a, b)`` action indices analysed (``b`` None for ``logit[a]``).
    """

    action_names: tuple[str, ...]
    logits: np.ndarray
    probs: np.ndarray
    attribution: LogitAttribution
    ablations: SingleAblations
    rtg_scan: RTGScan
    attention: AttentionPatterns
    extras: dict[type, Any] = field(default_factory=dict)
    pair: tuple = (0, None)
    asked: dict[type, Extra] = field(default_factory=dict)
    """The extra instance each result in ``extras`` was computed for."""


    @property
    def request(self):
        """The :class:`~dtwidgets.analysis.extras.StateRequest` the extras were computed from (an extra asked
        for later is computed from it); not a field: results compare by their numbers."""
        return getattr(self, "_request", None)

    def __getitem__(self, kind: type) -> Any:
        """The result of the extra of type ``kind`` (a clear error when it was not asked for)."""
        if kind not in self.extras:
            asked = ", ".join(t.__name__ for t in self.extras) or "none"
            raise KeyError(f"analyze_state: extra {getattr(kind, '__name__', kind)} was not asked for (asked: {asked})")
        return self.extras[kind]

    @property
    def lens(self):
        """The logit lens (:class:`~dtwidgets.analysis.LogitLens`) when :class:`Lens` was asked for, else None."""
        r = self.extras.get(Lens)
        return None if r is None else r.lens

    @property
    def neuron_activations(self) -> np.ndarray | None:
        """``[L, d_mlp]`` MLP neuron activations at the prediction position when :class:`Lens` was asked for."""
        r = self.extras.get(Lens)
        return None if r is None else r.neuron_activations


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
def analyze_state(adapter: ModelAdapter, window: TrajectoryWindow, pair, extras: Sequence[Extra] = (), *,
                  rtgs=None, clean: TrajectoryWindow | None = None, ablation_mode: str = "zero", means=None,
                  per_source: bool = True) -> StateAnalysis:
    """The shared analysis of one state (forward + cache + attribution + every single-component
    ablation + RTG scan, one batched forward) and the ``extras`` asked for.

    Args:
        adapter: a :class:`~dtwidgets.adapters.ModelAdapter`.
        window: a one-row window (the current state and its history).
        pair: the preference ``(a, b)``: actions by name or index, ``logit[a] - logit[b]``
            (``b=None`` for ``logit[a]``).
        extras: :class:`~dtwidgets.analysis.extras.Extra` instances (``Lens()``, ``Neurons()``,
            ``AblationDetail("L0H1")``, ``HeadCircuits(0, 1)``, ``Patching()``, ``PolicyMaps(...)``, ...);
            their results are ``state[Type]``. Forward-shared extras add hooks to the one forward.
        rtgs: RTG grid of the scan (default: 101 values in ``[-1, 1]``; none, an empty scan, for a model
            without RTG tokens).
        clean: the unedited scenario's window (read by the patching extras; None without an edit).
        ablation_mode, means: ``"zero"``, or ``"mean"`` with ``means`` from
            :func:`~dtwidgets.analysis.mean_activations`.
        per_source: split each head's attribution by source token.
    """
    if window.batch_size != 1:
        raise ValueError(f"expected a one-row window, got {window.batch_size} rows")
    a, b = _pair(adapter, pair)
    extras = check_extras(extras)
    types = {type(e) for e in extras}
    per_neuron = Neurons in types
    r = default_rtgs(adapter) if rtgs is None else np.asarray(rtgs, dtype=np.float32)
    if len(r):
        C.require_rtg(adapter, "analyze_state's RTG scan (pass rtgs=[])")
    comps = C.head_labels(adapter) + C.mlp_labels(adapter)
    rows_of = comps[:-1] if C.has_mlp(adapter) else comps  # the last layer's MLP is read off the clean run
    first, later = _split_rows(adapter, rows_of)
    K, R = len(first), len(r)
    hooks = ablation_hooks(adapter, [(1 + k, c) for k, c in enumerate(first)], 1 + K + R, ablation_mode, means)
    base_names = set(attribution_hooks(adapter, per_source, per_neuron) + scan_hooks(adapter))
    shared = {n for e in extras if e.shared for n in e.hooks(adapter)}  # type: ignore[attr-defined]
    starts = {hk.resid_pre(C.parse_component(adapter, c)[1]) for c in later}
    extra = (shared | starts) - base_names  # read from row 0 only
    names = sorted(base_names | extra | {hk.resid_post(C.n_layers(adapter) - 1)})
    rtg_rows = torch.as_tensor(r, device=device_of(adapter))
    logits, clean_cache, last, at = _run_batch(adapter, window, 1 + K, rtg_rows, names, hooks, extra)
    direct = direct_contributions(adapter, last, at, a, b)  # every row at the prediction position
    attribution = logit_attribution(adapter, window, a, b, per_source, per_neuron, cache=clean_cache,
                                    logits=logits[:1], direct=direct)
    attention = attention_patterns(adapter, window, cache=clean_cache)
    scan = scan_from_cache(adapter, logits, last, r, a, b, rows=slice(1 + K, 1 + K + R), direct=direct)
    abl = _ablation_logits(adapter, window, rows_of, (first, later), logits[:1 + K], (clean_cache, last, at),
                           ablation_mode, means)
    ablations = _ablations(adapter, comps, ablation_mode, abl, logits[0], attribution, a, b)
    state = StateAnalysis(action_names=tuple(adapter.action_names), logits=C.np32(logits[0]),
                          probs=C.softmax_np(logits[0]), attribution=attribution, ablations=ablations,
                          rtg_scan=scan, attention=attention, pair=(a, b), asked={type(e): e for e in extras})
    req = StateRequest(adapter, window, (a, b), clean, ablation_mode, means, state)  # type: ignore[arg-type]
    state._request = req  # type: ignore[attr-defined]
    for e in extras:  # the forward-shared extras read the one forward's row-0 cache
        if e.shared:
            state.extras[type(e)] = e.read(req, clean_cache)  # type: ignore[attr-defined]
    state.extras.update(compute_extras(req, extras))
    return state


def _ablation_logits(adapter: ModelAdapter, window: TrajectoryWindow, rows_of: list[str],
                     split: tuple[list[str], list[str]], row_logits: torch.Tensor, caches, ablation_mode: str,
                     means) -> torch.Tensor:
    """``[N, A]`` logits of every single-component ablation, in the order of the model's components
    (heads, then MLPs): ``rows_of`` the components that need a run (all but the last layer's MLP, which
    is read off the clean run when the model has MLPs), ``split = (first, later)`` of them from
    :func:`_split_rows`; ``row_logits`` ``[1 + len(first), A]`` the clean row and the ablation rows of the
    one forward; ``caches = (clean, last, at)`` of that forward. The ``later`` rows run from their own layer."""
    first, later = split
    clean_cache, last, at = caches
    rows = torch.cat([row_logits[1:], _from_their_layer(adapter, window, later, clean_cache, row_logits[0],
                                                        ablation_mode, means)])
    rows = rows[[(first + later).index(c) for c in rows_of]]  # back in the order of comps
    if not C.has_mlp(adapter):
        return rows
    return torch.cat([rows, final_mlp_ablation_logits(adapter, last, at, ablation_mode, means)[None]])


def _split_rows(adapter: ModelAdapter, comps: list[str]) -> tuple[list[str], list[str]]:
    """``(rows of the one forward, the rest)`` of the single-component ablations ``comps``: with the
    adapter's optional ``run_from_layer``, only layer 0's components are rows of the one forward and the
    others run from the clean residual stream of their layer (:func:`_from_their_layer`); without it, all."""
    if not can_run_from_layer(adapter):
        return list(comps), []
    at_0 = [c for c in comps if C.parse_component(adapter, c)[1] == 0]
    return at_0, [c for c in comps if c not in at_0]


def _from_their_layer(adapter: ModelAdapter, window: TrajectoryWindow, comps: list[str], clean_cache,
                      clean_logits: torch.Tensor, mode: str, means) -> torch.Tensor:
    """Logits ``[len(comps), A]`` of each of ``comps`` ablated alone, a layer-``l`` one run from the
    clean ``blocks.{l}.hook_resid_pre`` of ``clean_cache`` (layers ``>= l`` only)."""
    if not comps:
        return clean_logits.new_zeros(0, clean_logits.shape[-1])
    layers = {C.parse_component(adapter, c)[1] for c in comps}
    resid = {l: clean_cache[hk.resid_pre(l)] for l in layers}
    return ablation_logits_by_layer(adapter, window, comps, resid, clean_logits, mode, means)


def _pair(adapter: ModelAdapter, pair) -> tuple[int, int | None]:
    """``pair`` as action indices; ``b`` None for ``logit[a]`` (one clear error for anything else)."""
    if not isinstance(pair, (tuple, list)) or len(pair) != 2:
        raise TypeError(f"analyze_state pair: expected (a, b) actions by name or index (b may be None), got {pair!r}")
    a, b = pair
    return C.action_index(adapter, a), None if b is None else C.action_index(adapter, b)


def _ablations(adapter: ModelAdapter, comps: list[str], mode: str, abl: torch.Tensor, base: torch.Tensor,
               attribution: LogitAttribution, a: int, b: int | None) -> SingleAblations:
    """Every single-component ablation: logits ``abl [K, A]`` against the clean ``base [A]``."""
    probs, bprobs = C.softmax_np(abl), C.softmax_np(base)
    diff = C.np32(abl[:, a] - (abl[:, b] if b is not None else 0))
    return SingleAblations(labels=comps, mode=mode, action_names=tuple(adapter.action_names),
                           logits=C.np32(abl), probs=probs, baseline_logits=C.np32(base), baseline_probs=bprobs,
                           delta_probs=probs - bprobs, pair_label=attribution.pair_label, logit_diff=diff,
                           baseline_logit_diff=attribution.logit_diff,
                           delta_logit_diff=diff - attribution.logit_diff)

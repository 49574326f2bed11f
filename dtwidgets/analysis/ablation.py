"""Zero and mean ablation of heads, MLPs and neurons, one at a time or many in one batched forward.

Components are named like TransformerLens labels: ``"L0H1"`` (head 1 of layer 0), ``"L1MLP"``
(the whole MLP of layer 1), ``"L0N12"`` (neuron 12 of layer 0's MLP). Ablation happens in hooks:

* head ``LlHh``: ``blocks.l.attn.hook_z[..., h, :]`` is replaced — zero ablation is exactly
  ``W_O[l, h] = 0`` (the value bias ``b_V`` goes with it, the shared ``b_O`` stays);
* MLP ``LlMLP``: ``blocks.l.hook_mlp_out`` — zero ablation is ``W_out = 0`` and ``b_out = 0``;
* neuron ``LlNn``: ``blocks.l.mlp.hook_post[..., n]`` — zero ablation is ``W_out[n, :] = 0``.

"mean" ablation replaces the activation by its **position-wise mean over a reference set of
windows** (e.g. windows drawn from trajectories; see :func:`mean_activations`) — a dataset mean,
unlike the reference app's "mean over the vector's own entries". By default every position is
ablated.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Mapping, Sequence

import numpy as np
import torch

from ..adapters.device import device_of
from ..adapters.protocol import ModelAdapter
from ..adapters.window import TrajectoryWindow
from . import _common as C
from ._tokens import can_run_from_layer, run_from_layer_logits
from .attribution import attribution_hooks, logit_attribution
from ..adapters import hooks as hk


def ablation_hook_names(adapter: ModelAdapter) -> list[str]:
    L = C.n_layers(adapter)
    kinds = ("head", "mlp", "neuron") if C.has_mlp(adapter) else ("head",)
    return [C.hook_for(k, l) for l in range(L) for k in kinds]


@torch.inference_mode()
def mean_activations(adapter: ModelAdapter, windows, batch_size: int = 256) -> dict[str, torch.Tensor]:
    """Position-wise means of every ablatable activation over reference windows.

    Args:
        windows: a :class:`~dtwidgets.adapters.TrajectoryWindow` with ``N`` rows (e.g.
            ``TrajectoryWindow.cat`` of windows from recorded trajectories).

    Returns:
        ``{hook name: mean [P, ...]}`` for ``hook_z`` ``[P, H, d_head]``, ``hook_mlp_out``
        ``[P, d_model]`` and ``mlp.hook_post`` ``[P, d_mlp]`` of every layer.
    """
    names = ablation_hook_names(adapter)
    sums: dict[str, torch.Tensor] = {}
    n = windows.batch_size
    for s in range(0, n, batch_size):
        _, cache = adapter.run_with_cache(windows.index(slice(s, s + batch_size)), names_filter=names)
        for k in names:
            v = cache[k].double().sum(0)
            sums[k] = v if k not in sums else sums[k] + v
    return {k: (v / n).float() for k, v in sums.items()}


def ablation_hooks(adapter: ModelAdapter, rows_components, batch_size: int | None, mode: str = "zero", means=None,
                   positions=None):
    """Forward hooks ablating, in row ``r`` of a batch, the components assigned to it.

    Args:
        rows_components: ``[(row or None for every row, component name), ...]``.
        batch_size: rows in the batch the hooks will see; None: any batch, every row (then every
            row must be None; see :func:`component_ablation_hooks`).
        mode: ``"zero"`` or ``"mean"`` (then ``means`` from :func:`mean_activations`).
        positions: token positions to ablate (default: all).

    Returns:
        a list of ``(hook name, fn)`` — one hook per (layer, kind), vectorised over rows.
    """
    if mode not in ("zero", "mean"):
        raise ValueError(f"expected mode 'zero' or 'mean', got {mode!r}")
    if mode == "mean" and means is None:
        raise ValueError("mode='mean' needs means=mean_activations(adapter, reference_windows)")
    H, dm = C.n_heads(adapter), C.d_mlp(adapter)
    width = {"head": H, "mlp": 1, "neuron": dm}
    masks: dict[str, torch.Tensor] = {}
    every_row = batch_size is None
    dev = device_of(adapter)  # the masks index the activations where they live
    for row, comp in rows_components:
        if every_row and row is not None:
            raise ValueError(f"batch_size=None ablates every row: expected row None, got {row!r} for {comp!r}")
        kind, l, idx = C.parse_component(adapter, comp)
        name = C.hook_for(kind, l)
        m = masks.setdefault(name, torch.zeros(1 if batch_size is None else int(batch_size), width[kind],
                                               dtype=torch.bool, device=dev))
        m[slice(None) if row is None else row, 0 if idx is None else idx] = True
    P = adapter.layout.n_tokens
    pos = torch.ones(P, dtype=torch.bool, device=dev)
    if positions is not None:
        pos = torch.zeros(P, dtype=torch.bool, device=dev)
        pos[list(np.atleast_1d(positions))] = True
    hooks = []
    for name, m in masks.items():
        repl = means[name] if mode == "mean" else None
        hooks.append((name, _make_hook(m, pos, repl, every_row)))
    return hooks


def component_ablation_hooks(adapter: ModelAdapter, components, mode: str = "zero", means=None, positions=None):
    """Forward hooks ablating ``components`` (``"L0H1"``, ``["L0H0", "L0MLP"]``...) in EVERY row of
    ANY batch the hooks see, at ``positions`` (default: every position): the hooks of :func:`ablate`,
    reusable across forwards of any batch size (rollouts, calibration: see
    :func:`dtwidgets.analysis.intervention.ablated`). ``mode``, ``means`` as :func:`ablation_hooks`."""
    comps = [components] if isinstance(components, str) else list(components)
    if not comps:
        raise ValueError("expected at least one component to ablate (e.g. 'L0H1'), got none")
    return ablation_hooks(adapter, [(None, c) for c in comps], None, mode, means, positions)


def final_mlp_ablation_logits(adapter: ModelAdapter, cache, at: int, mode: str = "zero", means=None) -> torch.Tensor:
    """``[A]`` logits of window row 0 with the LAST layer's MLP ablated (at every position), read off
    the clean run's ``cache`` at index ``at`` of its position axis (the prediction position; ``-1`` in
    a last-position cache): nothing but ``ln_final`` reads that MLP's output, so the final residual
    changes by ``replacement - mlp_out`` and ``ln_final`` is recomputed from it. Equal to the forward
    with :func:`ablation_hooks` (tests), without running it."""
    l = C.n_layers(adapter) - 1
    name = C.hook_for("mlp", l)
    out = cache[name][0, at]
    new = torch.zeros_like(out) if mode == "zero" else means[name][adapter.layout.prediction_position].to(out.dtype)
    return C.final_logits(adapter, (cache[hk.resid_post(l)][0, at] + (new - out))[None])[0]


def _make_hook(mask: torch.Tensor, pos: torch.Tensor, repl, every_row: bool = False):
    """A hook writing the replacement into the (row, component) pairs of ``mask`` ``[B, width]`` at
    the positions ``pos`` ``[P]``, in place: only the ablated entries are touched, so a batch of many
    single ablations costs no more than one pass over their own rows. ``every_row``: ``mask`` is
    ``[1, width]`` and applies to every row of whatever batch the hook sees."""
    picked, cols = (ix[:, None] for ix in mask.nonzero(as_tuple=True))  # [M, 1]
    rows = slice(None) if every_row else picked
    ps = pos.nonzero()[:, 0][None, :]  # [1, Q]
    whole = mask.shape[1] == 1  # an MLP: the whole output vector

    def hook(act, hook):
        # act: [B, P, H, d_head] (hook_z), [B, P, d_model] (mlp_out) or [B, P, d_mlp] (post)
        if whole:
            act[rows, ps] = 0 if repl is None else repl[ps].to(act.dtype)
        else:
            act[rows, ps, cols] = 0 if repl is None else repl[ps, cols].to(act.dtype)
        return act

    return hook


@dataclass
class AblationResult:
    """Action preferences before and after ablating a set of components (window row 0).

    Attributes:
        components: the ablated components; mode: ``"zero"`` or ``"mean"``.
        action_names: ``A`` names.
        logits_before, logits_after: ``[A]``; probs_before, probs_after: ``[A]`` (softmax).
        direction: e.g. ``"forward − right"`` (None when no actions were given).
        logit_diff_before, logit_diff_after: preference along the direction (None without one).
        labels: ``N`` component labels of the direct attribution (see
            :class:`~dtwidgets.analysis.LogitAttribution`); contributions_before/after: ``[N]``.
    """

    components: list[str]
    mode: str
    action_names: tuple[str, ...]
    logits_before: np.ndarray
    logits_after: np.ndarray
    probs_before: np.ndarray
    probs_after: np.ndarray
    pair_label: str | None = None
    logit_diff_before: float | None = None
    logit_diff_after: float | None = None
    labels: list[str] | None = None
    ids: list | None = None
    """The :class:`~dtwidgets.analysis.ids.ComponentId` of ``labels`` (None without a pair)."""
    contributions_before: np.ndarray | None = None
    contributions_after: np.ndarray | None = None


@torch.inference_mode()
def ablate(adapter: ModelAdapter, window: TrajectoryWindow, components, a=None, b=None, *, mode: str = "zero",
           means=None,
           positions=None, baseline=None) -> AblationResult:
    """Ablate ``components`` (e.g. ``["L0H1", "L1MLP", "L0N12"]``) together and compare.

    Args:
        window: a one-row window (row 0 is used).
        a, b: optional actions: also report ``logit[a] - logit[b]`` and per-component direct
            attributions before/after (the after-attribution is of the ablated run).
        mode, means, positions: see :func:`ablation_hooks`.
        baseline: the clean run's :class:`LogitAttribution` along ``a - b`` when already computed
            (e.g. by :func:`~dtwidgets.analysis.analyze_state`); the clean forward is then skipped.
    """
    comps = [components] if isinstance(components, str) else list(components)
    hooks = component_ablation_hooks(adapter, comps, mode, means, positions)
    res = AblationResult(components=comps, mode=mode, action_names=tuple(adapter.action_names),
                         logits_before=None, logits_after=None, probs_before=None, probs_after=None)  # type: ignore[arg-type]
    if a is None:
        before, after = adapter.forward(window)[0], adapter.run_with_hooks(window, fwd_hooks=hooks)[0]
    else:
        names = attribution_hooks(adapter, per_source=False)
        if baseline is None:
            lb, cb = adapter.run_with_cache(window, names_filter=names)
            ab = logit_attribution(adapter, window, a, b, per_source=False, cache=cb, logits=lb)
            before = lb[0]
        else:
            ab, before = baseline, torch.as_tensor(baseline.logits, device=device_of(adapter))
        la, ca = C.run_with_cache(adapter, window, names, fwd_hooks=hooks)
        aa = logit_attribution(adapter, window, a, b, per_source=False, cache=ca, logits=la)
        after = la[0]
        res.pair_label, res.labels, res.ids = ab.pair_label, ab.labels, ab.ids
        res.logit_diff_before, res.logit_diff_after = ab.logit_diff, aa.logit_diff
        res.contributions_before, res.contributions_after = ab.values, aa.values
    res.logits_before, res.logits_after = C.np32(before), C.np32(after)
    res.probs_before, res.probs_after = C.softmax_np(before), C.softmax_np(after)
    return res


@dataclass
class SingleAblations:
    """Every single-component ablation of one state, from one batched forward.

    Attributes:
        labels: ``K`` ablated components (default: every head, then every MLP).
        mode: ``"zero"`` or ``"mean"``; action_names: ``A`` names.
        logits, probs: ``[K, A]`` after ablating component ``k`` alone.
        baseline_logits, baseline_probs: ``[A]`` of the unablated window.
        delta_probs: ``[K, A]`` = ``probs - baseline_probs``.
        pair_label, logit_diff ``[K]``, baseline_logit_diff, delta_logit_diff ``[K]``: along
            ``a - b`` when actions were given (else None).
    """

    labels: list[str]
    mode: str
    action_names: tuple[str, ...]
    logits: np.ndarray
    probs: np.ndarray
    baseline_logits: np.ndarray
    baseline_probs: np.ndarray
    delta_probs: np.ndarray
    pair_label: str | None = None
    logit_diff: np.ndarray | None = None
    baseline_logit_diff: float | None = None
    delta_logit_diff: np.ndarray | None = None


def ablation_logits_by_layer(adapter: ModelAdapter, window: TrajectoryWindow, comps: Sequence[str],
                             resid_pre: Mapping[int, torch.Tensor], clean_logits: torch.Tensor, mode: str = "zero",
                             means=None, positions=None) -> torch.Tensor:
    """Logits ``[K, A]`` of the one-row ``window`` with each of ``comps`` ablated alone, a layer-``l``
    component's row running blocks ``>= l`` only: from ``resid_pre[l]`` ``[1, P, d_model]`` (the clean
    run's ``blocks.{l}.hook_resid_pre``), one batch per layer, with the adapter's optional
    ``run_from_layer`` (:func:`~dtwidgets.analysis._tokens.run_from_layer_logits`; ``clean_logits`` ``[A]``
    checks it). A layer whose run from there is not available runs the whole window instead (protocol
    ``run_with_hooks``). ``mode``, ``means``, ``positions`` as :func:`ablation_hooks`."""
    groups: dict[int, list[int]] = {}
    for k, comp in enumerate(comps):
        groups.setdefault(C.parse_component(adapter, comp)[1], []).append(k)
    out = torch.empty(len(comps), len(adapter.action_names), dtype=clean_logits.dtype, device=clean_logits.device)
    for l, ks in sorted(groups.items()):
        hooks = ablation_hooks(adapter, [(i, comps[k]) for i, k in enumerate(ks)], len(ks), mode, means, positions)
        logits = run_from_layer_logits(adapter, l, resid_pre[l], len(ks), hooks, clean_logits)
        out[ks] = adapter.run_with_hooks(window.repeat(len(ks)), fwd_hooks=hooks) if logits is None else logits
    return out


@torch.inference_mode()
def single_component_ablations(adapter: ModelAdapter, window: TrajectoryWindow, a=None, b=None, *,
                               components=None, mode: str = "zero",
                               means=None, positions=None, baseline_logits=None) -> SingleAblations:
    """Ablate each component alone: with the adapter's optional ``run_from_layer``, a layer-``l``
    component's row runs layers ``>= l`` only, from the clean run's residual stream
    (:func:`ablation_logits_by_layer`, one batch per layer); without it, all in ONE forward (row ``k``
    of a replicated window ablates component ``k``).

    Args:
        window: a one-row window.
        components: names to ablate one at a time (default: all heads ``L*H`` then all MLPs ``L``).
        baseline_logits: ``[1, A]`` logits of ``window`` if already computed.
    """
    if window.batch_size != 1:
        raise ValueError(f"expected a one-row window, got {window.batch_size} rows")
    comps = list(components) if components is not None else C.head_labels(adapter) + C.mlp_labels(adapter)
    K = len(comps)
    if can_run_from_layer(adapter):
        layers = sorted({C.parse_component(adapter, c)[1] for c in comps})
        clean, cache = adapter.run_with_cache(window, names_filter=[hk.resid_pre(l) for l in layers])
        resid = {l: cache[hk.resid_pre(l)] for l in layers}
        logits = ablation_logits_by_layer(adapter, window, comps, resid, clean[0], mode, means, positions)
        base = (clean if baseline_logits is None else baseline_logits)[0]
    else:
        hooks = ablation_hooks(adapter, list(enumerate(comps)), K, mode, means, positions)
        logits = adapter.run_with_hooks(window.repeat(K), fwd_hooks=hooks)
        base = (adapter.forward(window) if baseline_logits is None else baseline_logits)[0]
    probs, bprobs = C.softmax_np(logits), C.softmax_np(base)
    res = SingleAblations(labels=comps, mode=mode, action_names=tuple(adapter.action_names), logits=C.np32(logits),
                          probs=probs, baseline_logits=C.np32(base), baseline_probs=bprobs, delta_probs=probs - bprobs)
    if a is not None:
        ia = C.action_index(adapter, a)
        ib = None if b is None else C.action_index(adapter, b)
        diff = logits[:, ia] - (logits[:, ib] if ib is not None else 0)
        bdiff = float(base[ia] - (base[ib] if ib is not None else 0))
        res.pair_label, res.logit_diff = C.pair_label(adapter, a, b), C.np32(diff)
        res.baseline_logit_diff, res.delta_logit_diff = bdiff, C.np32(diff) - bdiff
    return res

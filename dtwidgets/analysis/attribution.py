"""Preference directions, direct logit attribution and the logit lens.

The decision is read at the prediction position ``p`` (the last state token). For actions ``a, b``

    logit[a] - logit[b] = normalize(resid_final[p]) · dir_eff + ln_final.b · (W_a - W_b) + (b_a - b_b)

with ``dir_eff = (W_a - W_b) * ln_final.w`` (no weight for LNPre / no LN) and ``normalize`` the
centring + division by the **cached** ``ln_final.hook_scale`` (identity without LN). The residual
stream is a sum of components, so each gets an exact share::

    resid_final[p] = token embedding(s) + time embedding + W_pos[p]
                   + Σ_l Σ_h head_result[l, h, p] + Σ_l b_O[l] + Σ_l mlp_out[l, p]

The stacks come from TransformerLens' ``ActivationCache`` (``stack_head_results``,
``stack_neuron_results``, ``accumulated_resid``, ``apply_ln_to_stack``); the embedding terms
come from the DT's own hooks (``dt.hook_state_embed`` ...), which the backbone never sees
separately. The shares sum to the model's logit difference (to float32 precision).
"""
from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
import torch

from ..adapters.protocol import ModelAdapter
from ..adapters.window import TrajectoryWindow
from . import _common as C
from .directions import preference_direction
from .ids import labels_of, readout_ids, stack_ids
from ..adapters import hooks as hk

SOURCE_TERMS = ("token embedding", "time embedding", "pos embedding", "value bias")
EMBED_HOOKS = {"rtg": hk.DT_RTG_EMBED, "state": hk.DT_STATE_EMBED, "action": hk.DT_ACTION_EMBED}


def attribution_hooks(adapter: ModelAdapter, per_source: bool = True, per_neuron: bool = False) -> list[str]:
    """The cache entries :func:`logit_attribution` reads (use as ``names_filter``)."""
    L, M = C.n_layers(adapter), C.n_layers(adapter) if C.has_mlp(adapter) else 0  # M: layers with an MLP
    names = [hk.POS_EMBED, hk.DT_TIME_EMBED, *EMBED_HOOKS.values()]
    names += [hk.hook_z(l) for l in range(L)] + [hk.mlp_out(l) for l in range(M)]
    if C.normalization(adapter):
        names += [hk.ln_scale(), hk.ln_scale(0, "ln1")]
    if per_source:
        names += [hk.hook_v(l) for l in range(L)] + [hk.pattern(l) for l in range(L)]
    if per_neuron:
        names += [hk.mlp_post(l) for l in range(M)]
    return names


@dataclass
class LogitAttribution:
    """Direct logit attribution of ``logit[a] - logit[b]`` at one position (one window row).

    Attributes:
        values: ``[N]`` share of each component, logit units; ``values.sum() == logit_diff``.
        labels: ``N`` names (``"state embed (s₁)"``, ``"L0H1"``, ``"L0 b_O"``, ``"L0MLP"``, ``"action bias"`` ...).
        kinds: ``N`` of ``"embed"``, ``"head"``, ``"attn_bias"``, ``"mlp"``, ``"bias"``.
        logit_diff: the model's own ``logit[a] - logit[b]`` (``logit[a]`` when ``b`` is None).
        pair_label: the pair, such as ``"forward − right"``.
        position: the attributed token position.
        head_labels: ``L*H`` head names; source_labels: ``P`` token labels.
        per_source: ``[L*H, P]`` each head's share split by the key (source) token it attends to:
            ``pattern[p, k] * (v_k W_O) · dir`` (rows sum to the head's value), or None.
        source_terms: ``[H, P, 4]`` layer-0 heads only: each source token's share split into the
            source's token embedding (its RTG, state or action embedding), time embedding,
            positional embedding and the value bias (``b_V`` and ``ln1.b``) — exact because layer 0
            reads the embeddings (with ``ln1`` using the cached scale); sums over the last axis
            to ``per_source[:H]``. None unless ``per_source``.
        source_term_labels: the 4 names of ``source_terms``' last axis.
        neuron_values: ``[L, d_mlp]`` per-neuron shares (``post * W_out``; ``[L, 0]`` without MLPs), or None.
        mlp_bias_values: ``[L]`` share of each MLP's ``b_out`` (neurons + bias == the MLP's value).
        logits: ``[A]`` the model's logits at the prediction position (None for other positions,
            where ``logit_diff`` is the sum of the shares).
    """

    values: np.ndarray
    labels: list[str]
    kinds: list[str]
    logit_diff: float
    pair_label: str
    position: int
    head_labels: list[str]
    source_labels: list[str]
    per_source: np.ndarray | None = None
    source_terms: np.ndarray | None = None
    ids: list = field(default_factory=list)
    """``N`` :class:`~dtwidgets.analysis.ids.ComponentId` of ``values`` (the labels' structured form)."""
    source_term_labels: tuple[str, ...] = SOURCE_TERMS
    neuron_values: np.ndarray | None = None
    mlp_bias_values: np.ndarray | None = None
    logits: np.ndarray | None = None

    @property
    def total(self) -> float:
        return float(self.values.astype(np.float64).sum())

    def top(self, k: int = 5) -> list[tuple[str, float]]:
        """The ``k`` largest shares by magnitude, ``[(label, value), ...]``."""
        order = np.argsort(-np.abs(self.values))[:k]
        return [(self.labels[i], float(self.values[i])) for i in order]

    def value(self, label: str) -> float:
        return float(self.values[self.labels.index(label)])


POSITIONAL = ("attn.hook_z", "hook_mlp_out", "mlp.hook_post", hk.ln_scale())


def position_cache(cache, pos: int):
    """The cache with the entries read at the attributed position (``hook_z``, ``hook_mlp_out``,
    ``mlp.hook_post``, ``ln_final.hook_scale``) narrowed to ``[B, 1, ...]`` at ``pos``; other entries
    are shared unchanged. TL's ``stack_head_results`` / ``stack_neuron_results`` compute every
    position before applying ``pos_slice``, so this keeps them at one position (TL 3's
    ``compute_head_results`` otherwise builds a ``[B, P, H, d_head, d_model]`` product)."""
    from transformer_lens import ActivationCache

    d = dict(cache.cache_dict)
    for k, v in cache.cache_dict.items():
        if k.endswith(POSITIONAL):
            d[k] = v[:, pos:pos + 1]
    return ActivationCache(d, cache.model)


def _component_labels(adapter: ModelAdapter, pos: int) -> tuple[list[str], list[str]]:
    """Labels and kinds of :func:`component_stack`'s rows (embeddings, heads, ``b_O``, MLPs), from their ids."""
    ids = stack_ids(adapter, pos)
    return labels_of(ids, adapter.layout.labels()), [c.kind for c in ids]


def _token_terms(adapter: ModelAdapter, cache, pos: int) -> list[torch.Tensor]:
    """The embedding terms (token, time, positional) of the token at ``pos``: 3 ``[B, d]`` tensors."""
    kind, t = adapter.layout.kinds[pos], adapter.layout.timestep_of[pos]
    return [cache[EMBED_HOOKS[kind]][:, t], cache[hk.DT_TIME_EMBED][:, t], cache[hk.POS_EMBED][:, pos]]


def component_stack(adapter: ModelAdapter, cache, pos: int):
    """Every additive component of the final residual stream at ``pos``, before ``ln_final``.

    Returns ``(stack [N, B, d_model], labels, kinds)`` in the order embeddings, heads (TL's
    ``stack_head_results`` order: ``z[pos, h] @ W_O[l, h]``, layer-major), attention biases ``b_O``,
    MLP outputs (``hook_mlp_out``). The stack sums to ``resid_post`` of the last layer.
    """
    L = C.n_layers(adapter)
    W_O = C.weight(adapter, "W_O")  # [L, H, d_head, d_model]
    heads = torch.cat([torch.einsum("bhe,hed->hbd", cache[hk.hook_z(l)][:, pos], W_O[l])
                       for l in range(L)])  # [L*H, B, d]
    B = heads.shape[1]
    b_O = C.weight(adapter, "b_O")[:, None, :].expand(L, B, -1)
    mlps = _mlp_outs(adapter, cache, pos)
    stack = torch.cat([torch.stack(_token_terms(adapter, cache, pos)), heads, b_O, mlps])
    return (stack, *_component_labels(adapter, pos))


def _mlp_outs(adapter: ModelAdapter, cache, pos: int) -> torch.Tensor:
    """Each MLP's output at ``pos``: ``[L, B, d_model]`` (``[0, B, d_model]`` without MLPs)."""
    if not C.has_mlp(adapter):
        x = cache[hk.POS_EMBED][:, pos]
        return x.new_zeros(0, *x.shape)
    return torch.stack([cache[hk.mlp_out(l)][:, pos] for l in range(C.n_layers(adapter))])


def _centres(adapter: ModelAdapter) -> bool:
    """Whether the backbone's LayerNorms centre their input (``LN``, ``LNPre``; not RMS)."""
    return C.normalization(adapter) in ("LN", "LNPre")


def _readout(adapter: ModelAdapter, cache, pos: int, d: torch.Tensor):
    """``(dc [d_model], scale [B] or None)`` such that, for any residual-stream component ``x``
    ``[..., B, d_model]`` at ``pos``, ``apply_ln_to_stack(x) · d == (x · dc) / scale``: ``ln_final``'s
    centring folded into the direction (a mean-free ``dc``) and its cached scale
    (``ln_final.hook_scale`` at ``pos``) applied to the projections, so no ``[N, B, d_model]``
    stack is built. ``scale`` is None without normalization."""
    if not C.normalization(adapter):
        return d, None
    return (d - d.mean() if _centres(adapter) else d), cache[hk.ln_scale()][:, pos, 0]


def direct_contributions(adapter: ModelAdapter, cache, pos: int, a, b=None):
    """Shares of every component along ``a - b``: ``(values [N, B] tensor, labels, kinds)``.

    The rows are :func:`component_stack`'s, read through ``ln_final`` (cached scale) along the
    folded direction, then ``ln_final.b`` (LN) and the action bias. ``values.sum(0)`` equals the
    logit difference of every batch row. Vectorised over the batch (used by the RTG scan): each
    component is projected on the direction first (``z · (W_O dc)`` per head), never expanded.
    """
    pd = preference_direction(adapter, a, b, fold_ln=True)
    dc, scale = _readout(adapter, cache, pos, pd.vector)
    L = C.n_layers(adapter)
    u = C.weight(adapter, "W_O") @ dc  # [L, H, d_head]: each head's output read along dc
    heads = torch.cat([torch.einsum("bhe,he->hb", cache[hk.hook_z(l)][:, pos], u[l])
                       for l in range(L)])  # [L*H, B]
    B = heads.shape[1]
    terms = torch.stack(_token_terms(adapter, cache, pos)) @ dc  # [3, B]
    b_O = (C.weight(adapter, "b_O") @ dc)[:, None].expand(L, B)
    mlps = _mlp_outs(adapter, cache, pos) @ dc  # [L, B] ([0, B] without MLPs)
    vals = torch.cat([terms, heads, b_O, mlps])
    if scale is not None:
        vals = vals / scale
    labels, kinds = _component_labels(adapter, pos)
    consts, clabels = [], []
    if C.normalization(adapter) == "LN":
        consts.append(pd.ln_bias)
        clabels.append("ln_final.b")
    consts.append(pd.bias)
    clabels.append("action bias")
    vals = torch.cat([vals, torch.tensor(consts, dtype=vals.dtype, device=vals.device)[:, None].expand(-1, B)])
    return vals, labels + clabels, kinds + ["bias"] * len(clabels)


def _per_source(adapter: ModelAdapter, cache, pos: int, d: torch.Tensor):
    """Head shares split by source token ``[L*H, P, B]`` and layer-0 source terms ``[H, P, 4, B]``:
    ``pattern[pos, k] * (v_k W_O) · dir`` through ``ln_final``, projected as in
    :func:`direct_contributions` (``v_k · (W_O dc)``)."""
    L = C.n_layers(adapter)
    dc, scale = _readout(adapter, cache, pos, d)
    u = C.weight(adapter, "W_O") @ dc  # [L, H, d_head]
    per = torch.cat([torch.einsum("bkhe,he,bhk->hkb", cache[hk.hook_v(l)], u[l],
                                  cache[hk.pattern(l)][:, :, pos, :]) for l in range(L)])
    src = _layer0_source_terms(adapter, cache, pos, u[0])
    if scale is not None:
        per, src = per / scale, src / scale
    return per, src


def _layer0_source_terms(adapter: ModelAdapter, cache, pos: int, u0: torch.Tensor) -> torch.Tensor:
    """Layer-0 head shares ``[H, P, 4, B]`` (before ``ln_final``'s scale) split over the source
    token's embedding terms: its value is ``ln1(token + time + pos) W_V + b_V`` with ``ln1``'s
    cached scale, so each term ``x`` gives ``x · centre(ln1.w * (W_V u0)) / ln1_scale`` and the
    bias ``(b_V + ln1.b W_V) · u0``; all times the attention from ``pos``. ``u0`` ``[H, d_head]``."""
    lay = adapter.layout
    tok = torch.zeros_like(cache[hk.POS_EMBED])  # [B, P, d]
    for kind, hook in EMBED_HOOKS.items():
        ps = lay.positions(kind)
        if ps:
            tok[:, ps] = cache[hook][:, : len(ps)]
    time = cache[hk.DT_TIME_EMBED][:, list(lay.timestep_of)]
    W_V, b_V = C.weight(adapter, "W_V")[0], C.weight(adapter, "b_V")[0]  # [H, d, dh], [H, dh]
    g = (W_V @ u0[:, :, None])[..., 0]  # [H, d]: each head's value read along u0
    w1, b1 = C.ln_params(adapter, "ln1", 0)
    g_in = g * w1 if w1 is not None else g
    if _centres(adapter):
        g_in = g_in - g_in.mean(-1, keepdim=True)
    terms = torch.einsum("tbkd,hd->hktb", torch.stack([tok, time, cache[hk.POS_EMBED]]), g_in)  # [H, P, 3, B]
    if C.normalization(adapter):
        terms = terms / cache[hk.ln_scale(0, "ln1")][..., 0].T[None, :, None, :]
    bias = (b_V * u0).sum(-1) + (g @ b1 if b1 is not None else 0)  # [H]
    H, P, _, B = terms.shape
    v_all = torch.cat([terms, bias[:, None, None, None].expand(H, P, 1, B)], dim=2)  # [H, P, 4, B]
    return v_all * cache[hk.pattern(0)][:, :, pos, :].permute(1, 2, 0)[:, :, None, :]


@torch.inference_mode()
@C.reuse_weights()
def logit_attribution(adapter: ModelAdapter, window: TrajectoryWindow, a, b=None, per_source: bool = True,
                      per_neuron: bool = False, *,
                      cache=None, logits=None, row: int = 0, position: int | None = None,
                      direct=None) -> LogitAttribution:
    """Decompose ``logit[a] - logit[b]`` at the prediction position into every component.

    Args:
        adapter: a :class:`~dtwidgets.adapters.ModelAdapter`.
        window: a :class:`~dtwidgets.adapters.TrajectoryWindow` (row ``row`` is attributed).
        a, b: actions (names or indices); ``b=None`` attributes ``logit[a]`` itself.
        per_source: also split head shares by source token (and layer-0 heads by embedding term).
        per_neuron: also split each MLP into neurons (``post * W_out``) plus its ``b_out``.
        cache, logits: a cache/logits of ``window`` already computed (must hold
            :func:`attribution_hooks`); computed when omitted.
        position: the token position to attribute (default: the prediction position). The action
            head reads any state token; positions of other kinds give the head's reading there.
        direct: :func:`direct_contributions` along ``a - b`` at ``position`` when already computed, for
            rows whose row ``row`` is this window's (e.g. of a batched run's last-position cache).

    Returns:
        :class:`LogitAttribution` (logit units). ``values.sum() == logit_diff`` to ~1e-6.
    """
    pos = adapter.layout.prediction_position if position is None else int(position)
    if cache is None:
        logits, cache = adapter.run_with_cache(window, names_filter=attribution_hooks(adapter, per_source, per_neuron))
    vals, labels, kinds = direct_contributions(adapter, cache, pos, a, b) if direct is None else direct
    ia = C.action_index(adapter, a)
    if pos == adapter.layout.prediction_position:
        lg = (adapter.forward(window) if logits is None else logits)[row]
        logit_diff = float(lg[ia] - (lg[C.action_index(adapter, b)] if b is not None else 0.0))
        logit_row = C.np32(lg)
    else:  # the adapter only returns logits at the prediction position
        logit_diff, logit_row = float(vals[:, row].double().sum()), None
    d = preference_direction(adapter, a, b, fold_ln=True).vector
    res = LogitAttribution(values=C.np32(vals[:, row]), labels=labels, kinds=kinds, logit_diff=logit_diff,
                           pair_label=C.pair_label(adapter, a, b), position=pos,
                           head_labels=C.head_labels(adapter), source_labels=adapter.layout.labels(),
                           logits=logit_row, ids=readout_ids(adapter, pos))
    if per_source:
        per, src = _per_source(adapter, cache, pos, d)
        res.per_source, res.source_terms = C.np32(per[..., row]), C.np32(src[..., row])
    if per_neuron and not C.has_mlp(adapter):  # no neurons, no b_out
        res.neuron_values, res.mlp_bias_values = np.zeros((C.n_layers(adapter), 0), np.float32), np.zeros(0, np.float32)
    elif per_neuron:
        L = C.n_layers(adapter)
        at_pos = position_cache(cache, pos)
        neurons = at_pos.stack_neuron_results(layer=-1, pos_slice=0)  # [L*d_mlp, B, d]
        nv = C.apply_ln(adapter, at_pos, neurons, 0) @ d
        B = nv.shape[-1]
        bo = C.apply_ln(adapter, at_pos, adapter.b_mlp_out[:, None, :].expand(L, B, -1), 0) @ d
        res.neuron_values = C.np32(nv[:, row].reshape(L, -1))
        res.mlp_bias_values = C.np32(bo[:, row])
    return res


@dataclass
class LogitLens:
    """The accumulated residual stream read along a preference direction after each sublayer.

    Attributes:
        values: ``[K]`` logit-difference estimate at each checkpoint (``K = 2L + 1``; ``L + 1`` without MLPs): the
            residual so far, layer-normed with its **own** statistics (recomputed, not the
            final cached scale), read by the action head (incl. ``ln_final.b`` and action bias).
            The last value equals the model's logit difference.
        labels: ``K`` names (``"embeddings"``, ``"L0 attn"``, ``"L0 MLP"``, ...).
        pair_label: the pair ``a − b`` read; position: the read position.
    """

    values: np.ndarray
    labels: list[str]
    pair_label: str
    position: int


@torch.inference_mode()
def logit_lens(adapter: ModelAdapter, window: TrajectoryWindow, a, b=None, *, cache=None, row: int = 0,
               position: int | None = None) -> LogitLens:
    """Logit lens along ``a - b``: ``accumulated_resid`` + ``apply_ln_to_stack(recompute_ln=True)``."""
    pos = adapter.layout.prediction_position if position is None else int(position)
    if cache is None:
        _, cache = adapter.run_with_cache(window, names_filter=lambda n: n.endswith(("resid_pre", "resid_mid", "resid_post")))
    mlp = C.has_mlp(adapter)  # without MLPs there is no resid_mid: one checkpoint per layer
    acc = cache.accumulated_resid(layer=-1, incl_mid=mlp, apply_ln=False, pos_slice=pos)  # [K, B, d]
    pd = preference_direction(adapter, a, b)
    if C.normalization(adapter):  # ln_final (affine part included) with per-checkpoint statistics
        acc = cache.apply_ln_to_stack(acc, layer=-1, pos_slice=pos, recompute_ln=True)
    vals = acc[:, row] @ pd.vector + pd.bias
    labels = ["embeddings"]
    for l in range(C.n_layers(adapter)):
        labels += [f"L{l} attn", f"L{l} MLP"] if mlp else [f"L{l} attn"]
    return LogitLens(values=C.np32(vals), labels=labels, pair_label=C.pair_label(adapter, a, b), position=pos)

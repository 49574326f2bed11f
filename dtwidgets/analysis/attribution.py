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

from dataclasses import dataclass

import numpy as np
import torch

from ..adapters.protocol import ModelAdapter
from ..adapters.window import TrajectoryWindow
from . import _common as C
from .directions import preference_direction

SOURCE_TERMS = ("token embedding", "time embedding", "pos embedding", "value bias")
EMBED_HOOKS = {"rtg": "dt.hook_rtg_embed", "state": "dt.hook_state_embed", "action": "dt.hook_action_embed"}


def attribution_hooks(adapter: ModelAdapter, per_source: bool = True, per_neuron: bool = False) -> list[str]:
    """The cache entries :func:`logit_attribution` reads (use as ``names_filter``)."""
    L = C.n_layers(adapter)
    names = ["hook_pos_embed", "dt.hook_time_embed", *EMBED_HOOKS.values()]
    names += [f"blocks.{l}.attn.hook_z" for l in range(L)] + [f"blocks.{l}.hook_mlp_out" for l in range(L)]
    if C.normalization(adapter):
        names += ["ln_final.hook_scale", "blocks.0.ln1.hook_scale"]
    if per_source:
        names += [f"blocks.{l}.attn.hook_v" for l in range(L)] + [f"blocks.{l}.attn.hook_pattern" for l in range(L)]
    if per_neuron:
        names += [f"blocks.{l}.mlp.hook_post" for l in range(L)]
    return names


@dataclass
class LogitAttribution:
    """Direct logit attribution of ``logit[a] - logit[b]`` at one position (one window row).

    Attributes:
        values: ``[N]`` share of each component, logit units; ``values.sum() == logit_diff``.
        labels: ``N`` names (``"state embed (s₁)"``, ``"L0H1"``, ``"L0 b_O"``, ``"L0MLP"``, ``"action bias"`` ...).
        kinds: ``N`` of ``"embed"``, ``"head"``, ``"attn_bias"``, ``"mlp"``, ``"bias"``.
        logit_diff: the model's own ``logit[a] - logit[b]`` (``logit[a]`` when ``b`` is None).
        direction: label such as ``"forward − right"``.
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
        neuron_values: ``[L, d_mlp]`` per-neuron shares (``post * W_out``), or None.
        mlp_bias_values: ``[L]`` share of each MLP's ``b_out`` (neurons + bias == the MLP's value).
        logits: ``[A]`` the model's logits at the prediction position (None for other positions,
            where ``logit_diff`` is the sum of the shares).
    """

    values: np.ndarray
    labels: list[str]
    kinds: list[str]
    logit_diff: float
    direction: str
    position: int
    head_labels: list[str]
    source_labels: list[str]
    per_source: np.ndarray | None = None
    source_terms: np.ndarray | None = None
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


POSITIONAL = ("attn.hook_z", "hook_mlp_out", "mlp.hook_post", "ln_final.hook_scale")


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


def _token_terms(adapter: ModelAdapter, cache, pos: int):
    """The embedding terms of the token at ``pos``: ``([B, d] tensors, labels)``."""
    kind, t = adapter.layout.kinds[pos], adapter.layout.timestep_of[pos]
    tok = adapter.layout.labels()[pos]
    terms = [cache[EMBED_HOOKS[kind]][:, t], cache["dt.hook_time_embed"][:, t], cache["hook_pos_embed"][:, pos]]
    return terms, [f"{kind} embed ({tok})", f"time embed ({tok})", f"pos embed ({tok})"]


def component_stack(adapter: ModelAdapter, cache, pos: int):
    """Every additive component of the final residual stream at ``pos``, before ``ln_final``.

    Returns ``(stack [N, B, d_model], labels, kinds)`` in the order embeddings, heads (TL's
    ``stack_head_results`` order: ``z[pos, h] @ W_O[l, h]``, layer-major), attention biases ``b_O``,
    MLP outputs (``hook_mlp_out``). The stack sums to ``resid_post`` of the last layer.
    """
    L = C.n_layers(adapter)
    terms, labels = _token_terms(adapter, cache, pos)
    kinds = ["embed"] * 3
    W_O = adapter.backbone.W_O.detach()  # [L, H, d_head, d_model]
    heads = torch.cat([torch.einsum("bhe,hed->hbd", cache[f"blocks.{l}.attn.hook_z"][:, pos], W_O[l])
                       for l in range(L)])  # [L*H, B, d]
    hl = C.head_labels(adapter)
    B = heads.shape[1]
    b_O = adapter.backbone.b_O.detach()[:, None, :].expand(L, B, -1)
    mlps = torch.stack([cache[f"blocks.{l}.hook_mlp_out"][:, pos] for l in range(L)])
    stack = torch.cat([torch.stack(terms), heads, b_O, mlps])
    labels += list(hl) + [f"L{l} b_O" for l in range(L)] + C.mlp_labels(adapter)
    kinds += ["head"] * len(hl) + ["attn_bias"] * L + ["mlp"] * L
    return stack, labels, kinds


def direct_contributions(adapter: ModelAdapter, cache, pos: int, a, b=None):
    """Shares of every component along ``a - b``: ``(values [N, B] tensor, labels, kinds)``.

    ``values.sum(0)`` equals the logit difference of every batch row. Vectorised over the batch
    (used by the RTG scan).
    """
    pd = preference_direction(adapter, a, b, fold_ln=True)
    stack, labels, kinds = component_stack(adapter, cache, pos)
    vals = C.apply_ln(adapter, position_cache(cache, pos), stack, 0) @ pd.vector  # [N, B]
    B = vals.shape[1]
    consts, clabels = [], []
    if C.normalization(adapter) == "LN":
        consts.append(pd.ln_bias)
        clabels.append("ln_final.b")
    consts.append(pd.bias)
    clabels.append("action bias")
    vals = torch.cat([vals, torch.tensor(consts, dtype=vals.dtype)[:, None].expand(-1, B)])
    return vals, labels + clabels, kinds + ["bias"] * len(clabels)


def _per_source(adapter: ModelAdapter, cache, pos: int, d: torch.Tensor):
    """Head shares split by source token ``[L*H, P, B]`` and layer-0 source terms ``[H, P, 4, B]``."""
    L, H = C.n_layers(adapter), C.n_heads(adapter)
    W_O = adapter.backbone.W_O.detach()  # [L, H, dh, d]
    vecs = []
    for l in range(L):
        A = cache[f"blocks.{l}.attn.hook_pattern"][:, :, pos, :]  # [B, H, P]
        vo = torch.einsum("bkhe,hed->hkbd", cache[f"blocks.{l}.attn.hook_v"], W_O[l])  # [H, P, B, d]
        vecs.append(vo * A.permute(1, 2, 0)[..., None])
    per = torch.cat(vecs)  # [L*H, P, B, d]
    n, P, B, dm = per.shape
    at_pos = position_cache(cache, pos)
    per_vals = (C.apply_ln(adapter, at_pos, per.reshape(n * P, B, dm), 0) @ d).reshape(n, P, B)

    # layer 0: value = ln1(token + time + pos) W_V + b_V, split over the three embedding terms
    lay, T = adapter.layout, adapter.layout.n_timesteps
    tok = torch.zeros_like(cache["hook_pos_embed"])  # [B, P, d]
    for kind, hook in EMBED_HOOKS.items():
        ps = lay.positions(kind)
        if ps:
            tok[:, ps] = cache[hook][:, : len(ps)]
    time = cache["dt.hook_time_embed"][:, list(lay.timestep_of)]
    terms = C.apply_ln(adapter, cache, torch.stack([tok, time, cache["hook_pos_embed"]]), None, layer=0)
    w1, b1 = C.ln_params(adapter, "ln1", 0)
    if w1 is not None:
        terms = terms * w1
    W_V, b_V = adapter.backbone.W_V.detach()[0], adapter.backbone.b_V.detach()[0]  # [H, d, dh], [H, dh]
    v_terms = torch.einsum("tbkd,hde->tbkhe", terms, W_V)  # [3, B, P, H, dh]
    v_bias = b_V + (torch.einsum("d,hde->he", b1, W_V) if b1 is not None else 0)
    v_all = torch.cat([v_terms, v_bias.expand_as(v_terms[:1])])  # [4, B, P, H, dh]
    A0 = cache["blocks.0.attn.hook_pattern"][:, :, pos, :]  # [B, H, P]
    src = torch.einsum("tbkhe,hed,bhk->hktbd", v_all, W_O[0], A0)  # [H, P, 4, B, d]
    sv = C.apply_ln(adapter, at_pos, src.reshape(-1, B, dm), 0) @ d
    return per_vals, sv.reshape(H, P, 4, B)


@torch.inference_mode()
def logit_attribution(adapter: ModelAdapter, window: TrajectoryWindow, a, b=None, per_source: bool = True,
                      per_neuron: bool = False, *,
                      cache=None, logits=None, row: int = 0, position: int | None = None) -> LogitAttribution:
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

    Returns:
        :class:`LogitAttribution` (logit units). ``values.sum() == logit_diff`` to ~1e-6.
    """
    pos = adapter.layout.prediction_position if position is None else int(position)
    if cache is None:
        logits, cache = adapter.run_with_cache(window, names_filter=attribution_hooks(adapter, per_source, per_neuron))
    vals, labels, kinds = direct_contributions(adapter, cache, pos, a, b)
    ia = C.action_index(adapter, a)
    if pos == adapter.layout.prediction_position:
        lg = (adapter.forward(window) if logits is None else logits)[row]
        logit_diff = float(lg[ia] - (lg[C.action_index(adapter, b)] if b is not None else 0.0))
        logit_row = C.np32(lg)
    else:  # the adapter only returns logits at the prediction position
        logit_diff, logit_row = float(vals[:, row].double().sum()), None
    d = preference_direction(adapter, a, b, fold_ln=True).vector
    res = LogitAttribution(values=C.np32(vals[:, row]), labels=labels, kinds=kinds, logit_diff=logit_diff,
                           direction=C.direction_label(adapter, a, b), position=pos,
                           head_labels=C.head_labels(adapter), source_labels=adapter.layout.labels(),
                           logits=logit_row)
    if per_source:
        per, src = _per_source(adapter, cache, pos, d)
        res.per_source, res.source_terms = C.np32(per[..., row]), C.np32(src[..., row])
    if per_neuron:
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
        values: ``[K]`` logit-difference estimate at each checkpoint (``K = 2L + 1``): the
            residual so far, layer-normed with its **own** statistics (recomputed, not the
            final cached scale), read by the action head (incl. ``ln_final.b`` and action bias).
            The last value equals the model's logit difference.
        labels: ``K`` names (``"embeddings"``, ``"L0 attn"``, ``"L0 MLP"``, ...).
        direction: label of the direction; position: the read position.
    """

    values: np.ndarray
    labels: list[str]
    direction: str
    position: int


@torch.inference_mode()
def logit_lens(adapter: ModelAdapter, window: TrajectoryWindow, a, b=None, *, cache=None, row: int = 0,
               position: int | None = None) -> LogitLens:
    """Logit lens along ``a - b``: ``accumulated_resid`` + ``apply_ln_to_stack(recompute_ln=True)``."""
    pos = adapter.layout.prediction_position if position is None else int(position)
    if cache is None:
        _, cache = adapter.run_with_cache(window, names_filter=lambda n: n.endswith(("resid_pre", "resid_mid", "resid_post")))
    acc = cache.accumulated_resid(layer=-1, incl_mid=True, apply_ln=False, pos_slice=pos)  # [K, B, d]
    pd = preference_direction(adapter, a, b)
    if C.normalization(adapter):  # ln_final (affine part included) with per-checkpoint statistics
        acc = cache.apply_ln_to_stack(acc, layer=-1, pos_slice=pos, recompute_ln=True)
    vals = acc[:, row] @ pd.vector + pd.bias
    labels = ["embeddings"]
    for l in range(C.n_layers(adapter)):
        labels += [f"L{l} attn", f"L{l} MLP"]
    return LogitLens(values=C.np32(vals), labels=labels, direction=C.direction_label(adapter, a, b), position=pos)

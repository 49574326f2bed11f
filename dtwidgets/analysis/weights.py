"""Weight-level views: composition scores, SVD of each head's QK / OV circuit, virtual weights.

All from the weights alone (no input), with TransformerLens' ``FactoredMatrix`` circuits
``QK = W_Q W_Kᵀ`` and ``OV = W_V W_O`` (``[d_model, d_model]`` of rank ``d_head``, never materialised
for the scores).

**Composition scores** (Elhage et al. 2021) between a head ``A`` of layer ``l`` and a head ``B`` of a
later layer: ``‖OV_A · M_B‖_F / (‖OV_A‖_F ‖M_B‖_F)`` with ``M_B = QK_B`` (Q-composition),
``QK_Bᵀ`` (K-composition) or ``OV_B`` (V-composition) — the same numbers as TransformerLens'
``all_composition_scores``.

**Reading through the embedding and the action head.** An observation feature ``i`` enters layer
``l``'s attention as ``E'_i = centre(W_state[:, i]) * ln1.w / s_ln1`` (``W_state[:, i]`` without LN); the
action head reads a residual vector ``r`` as ``r · centre(W_a * ln_final.w) / s_final`` (``r · W_a``
without LN). Centring and the LN weights fold in exactly; the LN scales ``s`` depend on the input:
by default they are held at 1 (a direction, not logit units), or, given ``states``, frozen at their
values on those states (the standard practice; measured at the prediction token, the current state
token, and averaged over the states). Without LayerNorm the maps are exact direct-path linear maps
(virtual weights). ``VirtualWeights.ln`` says which.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch

from ..adapters.protocol import ModelAdapter
from ..adapters.window import TrajectoryWindow
from . import _common as C
from .state_map import state_map
from ..adapters import hooks as hk


def _factored(A, B):
    from transformer_lens import FactoredMatrix

    return FactoredMatrix(A, B)


def _weights(adapter: ModelAdapter):
    bb = adapter.backbone
    return (bb.W_Q.detach().float(), bb.W_K.detach().float(), bb.W_V.detach().float(), bb.W_O.detach().float())


@dataclass
class CompositionScores:
    """Q, K and V composition scores between every pair of heads.

    Attributes:
        q, k, v: ``[L*H, L*H]`` ``scores[i, j]`` from head ``i`` (earlier, writes) to head ``j``
            (later, reads); 0 where ``j``'s layer is not after ``i``'s. Dimensionless, in [0, 1].
        head_labels: ``L*H`` names (``"L0H1"``).
    """

    q: np.ndarray
    k: np.ndarray
    v: np.ndarray
    head_labels: list[str]

    def figure(self, **kw):
        from .figures import composition_figure

        return composition_figure(self, **kw)


@torch.inference_mode()
def composition_scores(adapter: ModelAdapter) -> CompositionScores:
    """Every head pair's Q/K/V composition score (see the module docstring)."""
    W_Q, W_K, W_V, W_O = _weights(adapter)
    L, H = W_Q.shape[:2]
    left = _factored(W_V, W_O)  # [L, H, d, d]
    QK = _factored(W_Q, W_K.transpose(-1, -2))
    out = {}
    for mode, right in (("q", QK), ("k", QK.T), ("v", left)):
        lft = left.unsqueeze(2).unsqueeze(3)  # [L, H, 1, 1, d, d]
        rgt = right.unsqueeze(0).unsqueeze(1)  # [1, 1, L, H, d, d]
        prod = (lft @ rgt).norm()  # [L, H, L, H]
        s = prod / left.norm()[:, :, None, None] / right.norm()[None, None]
        later = torch.arange(L, device=s.device)[:, None, None, None] < torch.arange(L, device=s.device)[None, None, :, None]
        out[mode] = C.np32(torch.where(later, s, torch.zeros_like(s)).reshape(L * H, L * H))
    return CompositionScores(out["q"], out["k"], out["v"], C.head_labels(adapter))


def embedding_inputs(adapter: ModelAdapter, layer: int, ln: str = "ln1", obs=None) -> torch.Tensor:
    """``E'`` ``[n_features, d_model]``: each observation feature's embedding as it enters ``layer``'s
    attention (``ln="ln1"``) or MLP (``ln="ln2"``), centred and times the LN weight when the model has LN.
    The embedding is the state map (:func:`~dtwidgets.analysis.state_map.state_map`): ``W_state``, or a
    nonlinear encoder's Jacobian at ``obs`` ``[W, H, C]`` (required for such an encoder)."""
    E = state_map(adapter, obs, analysis="head_svd / virtual_weights").E.float()
    if C.normalization(adapter):
        E = E - E.mean(-1, keepdim=True)
    w, _ = C.ln_params(adapter, ln, layer)
    return E if w is None else E * w


def action_readout(adapter: ModelAdapter) -> torch.Tensor:
    """``[d_model, A]``: how the action head reads a residual vector at LN scale 1: ``ln_final.w`` folded
    in and, with LayerNorm, centred (``centre(r) · u == r · centre(u)``: exact)."""
    W = adapter.W_action.float()
    w, _ = C.ln_params(adapter, "ln_final")
    W = W if w is None else W * w
    if C.normalization(adapter):
        W = W - W.mean(-1, keepdim=True)
    return W.T


def _scale(x: torch.Tensor, eps: float) -> torch.Tensor:
    x = x - x.mean(-1, keepdim=True)
    return (x.pow(2).mean(-1) + eps).sqrt()


def ln_scales(adapter: ModelAdapter, states: TrajectoryWindow, layer: int, ln: str = "ln1") -> tuple[torch.Tensor, torch.Tensor]:
    """``(s_in [N], s_final [N])``: the LayerNorm scale of ``layer``'s ``ln`` input (``"ln1"``: attention,
    ``"ln2"``: MLP) and of ``ln_final``'s input at the prediction token of each row of ``states``
    (ones without LayerNorm)."""
    L, p = C.n_layers(adapter), adapter.layout.prediction_position
    src = hk.resid_pre(layer) if ln == "ln1" else hk.resid_mid(layer)
    fin = hk.resid_post(L - 1)
    if not C.normalization(adapter):
        ones = torch.ones(states.batch_size, device=C.device(adapter))
        return ones, ones
    _, cache = adapter.run_with_cache(states, names_filter=[src, fin])
    eps = float(adapter.backbone.cfg.eps)
    return _scale(cache[src][:, p].double(), eps), _scale(cache[fin][:, p].double(), eps)


@dataclass
class HeadSVD:
    """Singular value decomposition of one head's QK or OV circuit (``FactoredMatrix.svd``).

    ``M = U diag(S) Vᵀ`` with ``M = W_Q W_Kᵀ`` (QK: query side ``U``, key side ``V``) or ``W_V W_O``
    (OV: input side ``U``, output side ``V``).

    Attributes:
        singular_values: ``[r]`` (``r = d_head``), descending.
        input_maps: ``[k, C, W, H]`` the top ``k`` left singular vectors read through the state
            embedding (``E' U[:, i]``: which observation features drive direction ``i``).
        output_maps: ``[k, C, W, H]`` QK only: the key side, read the same way (None for OV).
        output_actions: ``[k, A]`` OV only: ``S_i ·`` the right singular vector read by the action
            head (what direction ``i`` writes, in logit units per unit input); None for QK.
        channel_names, action_names, layer, head, kind (``"qk"`` or ``"ov"``).
    """

    singular_values: np.ndarray
    input_maps: np.ndarray
    output_maps: np.ndarray | None
    output_actions: np.ndarray | None
    channel_names: tuple[str, ...]
    action_names: tuple[str, ...]
    layer: int
    head: int
    kind: str

    def figure(self, **kw):
        from .figures import head_svd_figure

        return head_svd_figure(self, **kw)


@torch.inference_mode()
def head_svd(adapter: ModelAdapter, layer: int, head: int, kind: str = "ov", k: int = 3, obs=None) -> HeadSVD:
    """SVD of head ``layer.head``'s ``kind`` circuit with its top ``k`` directions read out (``obs``: the
    observation whose state-encoder Jacobian is read, for a nonlinear encoder only)."""
    if kind not in ("qk", "ov"):
        raise ValueError(f"expected kind 'qk' or 'ov', got {kind!r}")
    C.parse_component(adapter, f"L{layer}H{head}")
    W_Q, W_K, W_V, W_O = _weights(adapter)
    M = _factored(W_Q[layer, head], W_K[layer, head].T) if kind == "qk" else _factored(W_V[layer, head], W_O[layer, head])
    U, S, V = M.svd()  # [d, r], [r], [d, r]
    k = max(1, min(int(k), S.shape[0]))
    E = embedding_inputs(adapter, layer, obs=obs)
    schema = adapter.schema
    ins = schema.to_maps(C.np32((E @ U[:, :k]).T))
    outs = acts = None
    if kind == "qk":
        outs = schema.to_maps(C.np32((E @ V[:, :k]).T))
    else:
        acts = C.np32((V[:, :k] * S[:k]).T @ action_readout(adapter))
    return HeadSVD(C.np32(S), ins, outs, acts, tuple(schema.channel_names), tuple(adapter.action_names),
                   int(layer), int(head), kind)


@dataclass
class VirtualWeights:
    """A linear path from the observation features to the action logits.

    Attributes:
        values: ``[A, C, W, H]`` logit change per unit of each observation feature along the path
            (OV path: per unit attention paid to the state token).
        flat: ``[A, n_features]`` the same in the model's flattened feature order.
        path: e.g. ``"state → L0H1 OV → action"`` or ``"state → L0N12 → action"``.
        neuron_output: ``[A]`` for a neuron path, its output weight read by the action head (logits per
            unit activation, ``/ s_final`` averaged over the states when scales are measured); None for a head.
        ln: how LayerNorm enters: ``"exact (no LayerNorm)"``, ``"LN scales held at 1 (weights only: a
            direction, not logit units)"`` or ``"LN scales frozen at their values on N state(s)"``.
        ln_scales: with measured scales, ``{"ln1" | "ln2": mean input scale, "ln_final": mean scale,
            "factor": mean of 1 / (s_in * s_final) the weights-only map is multiplied by, "n_states": N}``.
        channel_names, action_names.
    """

    values: np.ndarray
    flat: np.ndarray
    path: str
    channel_names: tuple[str, ...]
    action_names: tuple[str, ...]
    neuron_output: np.ndarray | None = None
    ln: str = "exact (no LayerNorm)"
    ln_scales: dict | None = None

    def figure(self, **kw):
        from .figures import virtual_weights_figure

        return virtual_weights_figure(self, **kw)


def _ln_note(adapter: ModelAdapter, layer: int, which: str, states: TrajectoryWindow | None):
    """``(factor, out_factor, ln note, ln_scales dict)`` for :func:`virtual_weights`."""
    if not C.normalization(adapter):
        return 1.0, 1.0, "exact (no LayerNorm)", None
    if states is None:
        return 1.0, 1.0, "LN scales held at 1 (weights only: a direction, not logit units)", None
    s_in, s_fin = ln_scales(adapter, states, layer, which)
    factor = float((1 / (s_in * s_fin)).mean())
    info = {which: float(s_in.mean()), "ln_final": float(s_fin.mean()), "factor": factor, "n_states": int(states.batch_size)}
    return factor, float((1 / s_fin).mean()), f"LN scales frozen at their values on {states.batch_size} state(s)", info


@torch.inference_mode()
def virtual_weights(adapter: ModelAdapter, component: str, states: TrajectoryWindow | None = None,
                    obs=None) -> VirtualWeights:
    """Observation feature → ``component`` → action logits.

    ``"L0H1"`` (head OV): ``E' W_V W_O R`` with ``E'`` = :func:`embedding_inputs`, ``R`` = :func:`action_readout`.
    ``"L0N12"`` (MLP neuron, linear part): ``(E'_ln2 · W_in[:, n]) × (W_out[n] · R)``: the neuron's
    pre-activation per unit feature times its output per unit activation (exact for a ReLU neuron
    in its active region; the gated MLP's gate is ignored).

    Args:
        states: optional window (any number of rows): freeze the LN scales at their values on these
            states (the input LN of the path's layer and ``ln_final``, at the prediction token) instead
            of 1; the map is then in logits per unit feature, averaged over the states. Ignored without LN.
        obs: for a nonlinear state encoder, the observation ``[W, H, C]`` whose Jacobian is read.
    """
    kind, l, idx = C.parse_component(adapter, component)
    if kind not in ("head", "neuron"):
        raise ValueError(f"expected a head ('L0H1') or a neuron ('L0N12'), got {component!r}")
    factor, out_factor, note, info = _ln_note(adapter, l, "ln1" if kind == "head" else "ln2", states)
    R = action_readout(adapter)
    schema = adapter.schema
    if kind == "head":
        _, _, W_V, W_O = _weights(adapter)
        flat = (embedding_inputs(adapter, l, obs=obs) @ W_V[l, idx] @ W_O[l, idx] @ R).T * factor  # [A, n_features]
        out = None
        path = f"state → {component} OV → action"
    else:
        bb = adapter.backbone
        w_in = bb.W_in.detach().float()[l][:, idx]  # [d]
        out = bb.W_out.detach().float()[l][idx] @ R  # [A]
        flat = out[:, None] * (embedding_inputs(adapter, l, "ln2", obs) @ w_in)[None] * factor
        out = out * out_factor
        path = f"state → {component} → action"
    return VirtualWeights(schema.to_maps(C.np32(flat)), C.np32(flat), path, tuple(schema.channel_names),
                          tuple(adapter.action_names), None if out is None else C.np32(out), note, info)

"""QK and OV circuits of one head read over the observation features (reference post, Figures 16-17).

Both maps are built from TransformerLens' ``FactoredMatrix`` circuits of the real weights,
``backbone.QK[l, h] = W_Q W_Kᵀ`` and ``backbone.OV[l, h] = W_V W_O``, with the state embedding
``E = W_state`` (``[d_model, n_features]``) on the observation side (through
:func:`~dtwidgets.analysis.state_map.state_map`: for a nonlinear state encoder, its Jacobian at the
observation of the query / source token in context, or at ``obs`` weight-only; ``CircuitMap.exact``). A map entry is a derivative
per unit of one flattened input feature (a raw code, or a one-hot bit) at cell ``(x, y)``.

**QK** (query = a state token): ``qk[i] = (E_i' W_Q) · k / sqrt(d_head)``, the change of the
attention score from the query to a chosen key when feature ``i`` of the query's observation
goes up by 1. The key is held fixed, and ``k = x_key W_K + b_K`` includes ``b_K``. The query-side
``b_Q`` and the query's time and positional embeddings are the same with and without the feature,
so they cancel.

**OV** (source = a state token): ``ov[i] = (E_i' W_V W_O) · dir'``, how much head ``l.h`` moves the
preference direction per unit of attention paid to a state token whose feature ``i`` is up by 1.
``b_V`` does not depend on the feature and is left out (attribution reports it as "value bias").

Only the direct path is counted: the embedding goes straight into layer ``l``'s attention, with no
earlier layers in between. For a 1-layer model without LayerNorm the maps are exact, and the
tests check them against brute-force forward differences.

LayerNorm, and where the ``E_i'`` above comes from:

* **in context** (``window`` given): the actual cached scales are used. The query or source
  feature enters as ``centre(E_i) * ln1.w / s`` with the cached ``ln1`` scale ``s`` of that token,
  so the scale is held fixed. This is a first-order (frozen-scale) approximation of LN. The key is
  the actual ``k`` from the cache. For OV, the direction is ``centre(dir_eff) / s_final`` with the
  cached ``ln_final`` scale at the prediction token.
* **weight-only** (no window): LN scales are taken as 1, so ``E_i' = centre(E_i) * ln1.w``. The
  key is built from one embedding vector (e.g. ``w_rtg``), normalised by its own LN statistics
  and passed through ``ln1``'s affine map. This matches the reference app's static QK/OV views
  up to the LN handling.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch

from ..adapters.protocol import ModelAdapter
from ..adapters.window import TrajectoryWindow
from . import _common as C
from .directions import preference_direction
from .state_map import state_map, window_observation
from ..adapters import hooks as hk

KEYS = ("rtg", "action", "pos", "time")


@dataclass
class CircuitMap:
    """One head's QK or OV map over the observation.

    Attributes:
        values: ``[C, W, H]`` per channel × x × y (score units for QK, logit units for OV).
        flat: ``[n_features]`` the same in the model's flattened order.
        channel_names: ``C`` names; kind: ``"qk"`` or ``"ov"``; layer, head: the head.
        key: what the query attends to (QK), e.g. ``"rtg × 1.0"`` or ``"token 0 (R₁)"``; None for OV.
        pair_label: the preference's pair ``a − b`` (OV); None for QK.
        in_context: True when cached activations of a window were used.
        attention: in context, the pattern weight query→key (QK) or prediction→source (OV).
        terms: a one-line statement of what is included.
        exact: False when a nonlinear state encoder's Jacobian stood in for ``W_state`` (said in ``terms``).
    """

    values: np.ndarray
    flat: np.ndarray
    channel_names: tuple[str, ...]
    kind: str
    layer: int
    head: int
    key: str | None
    pair_label: str | None
    in_context: bool
    attention: float | None
    terms: str
    key_token: int | None = None
    """In context (QK): the window position of the key token (its label: ``layout.labels()[key_token]``)."""
    exact: bool = True


def _centre(x: torch.Tensor, adapter: ModelAdapter) -> torch.Tensor:
    return x - x.mean(-1, keepdim=True) if C.normalization(adapter) else x


def _obs_side(adapter: ModelAdapter, layer: int, scale=None, obs=None, analysis: str = "qk_map / ov_map"):
    """``(E' [n_features, d_model], state map)``: the state map's rows (W_state columns, or the encoder's
    Jacobian at ``obs``) as they enter layer ``layer``'s attention."""
    sm = state_map(adapter, obs, analysis=analysis)
    E = _centre(sm.E, adapter)
    w1, _ = C.ln_params(adapter, "ln1", layer)
    if w1 is not None:
        E = E * w1
    return (E if scale is None else E / scale), sm


def _with_note(terms: str, sm) -> str:
    return terms if sm.exact else f"{terms}; {sm.note}"


def _key_vector(adapter: ModelAdapter, layer: int, key, index) -> tuple[torch.Tensor, str]:
    """Weight-only key input ``x_key`` (after ln1, self-normalised) and its label."""
    if torch.is_tensor(key) or isinstance(key, np.ndarray):
        x, label = torch.as_tensor(key, device=C.device(adapter)).float(), "custom key"
    elif key == "rtg":
        r = 1.0 if index is None else float(index)
        x, label = adapter.embed_rtg(torch.tensor([r], device=C.device(adapter)))[0], f"rtg × {r:g}"
    elif key == "action":
        i = C.action_index(adapter, 0 if index is None else index)
        x, label = adapter.embed_action(torch.tensor([i], device=C.device(adapter)))[0], f"action {adapter.action_names[i]}"
    elif key == "pos":
        i = 0 if index is None else int(index)
        x, label = adapter.backbone.W_pos.detach()[i], f"pos {i} ({adapter.layout.labels()[i]})"
    elif key == "time":
        t = 0 if index is None else int(index)
        x, label = adapter.embed_time(torch.tensor([t], device=C.device(adapter)))[0], f"time {t}"
    else:
        raise ValueError(f"expected key in {KEYS} or a [d_model] vector, got {key!r}")
    if C.normalization(adapter):
        x = _centre(x, adapter)
        x = x / (x.pow(2).mean() + adapter.backbone.cfg.eps).sqrt()
        w1, b1 = C.ln_params(adapter, "ln1", layer)
        if w1 is not None:
            x = x * w1 + b1
    return x, label


@torch.inference_mode()
def qk_map(adapter: ModelAdapter, layer: int = 0, head: int = 0, key=None, key_index=None, *,
           window: TrajectoryWindow | None = None, key_position=None,
           query_position=None, row: int = 0, obs=None) -> CircuitMap:
    """How each observation feature at the query (state) token changes the score towards a key.

    Args:
        layer, head: the head.
        key: weight-only mode (default ``"rtg"``, ``"time"`` for a layout without RTG tokens):
            ``"rtg"`` (``key_index`` = the RTG value, default 1), ``"action"``
            (``key_index`` = action), ``"pos"`` (``key_index`` = position), ``"time"``
            (``key_index`` = timestep) or a ``[d_model]`` residual vector.
        window: in-context mode: use this window's cached key vector and LN scales instead.
        key_position: in context, the key token (default: the RTG token of the last step).
        query_position: in context, the query state token (default: the prediction position).
        obs: weight-only mode with a nonlinear state encoder: the observation ``[W, H, C]`` whose
            Jacobian stands in for ``W_state`` (in context, the query token's own observation is used).

    Returns:
        :class:`CircuitMap` ``[C, W, H]`` in attention-score units (``q·k / sqrt(d_head)``).
    """
    bb = adapter.backbone
    lay = adapter.layout
    b_K = bb.b_K.detach()[layer, head]
    QK = bb.QK[layer, head]  # FactoredMatrix W_Q W_K^T [d_model, d_model]
    W_Q = bb.W_Q.detach()[layer, head]
    attn = None
    if window is None:
        if key is None:
            key = "rtg" if lay.has_rtg else "time"
        x_key, label = _key_vector(adapter, layer, key, key_index)
        E, sm = _obs_side(adapter, layer, obs=obs, analysis="qk_map")
        vals = E @ (QK @ x_key) + E @ (W_Q @ b_K)
        terms = "weight-only: E_state' W_Q (W_K^T x_key + b_K) / sqrt(d_head); LN scales taken as 1"
    else:
        q = lay.prediction_position if query_position is None else int(query_position)
        k = q - 1 if key_position is None else int(key_position)
        if lay.kinds[q] != "state":
            raise ValueError(f"expected a state token as query, got position {q} ({lay.labels()[q]})")
        if k > q:
            raise ValueError(f"expected key_position <= query_position {q} (causal attention), got {k}")
        names = [hk.hook_k(layer), hk.pattern(layer), hk.ln_scale(layer, "ln1")]
        _, cache = adapter.run_with_cache(window, names_filter=names)
        s = cache[hk.ln_scale(layer, "ln1")][row, q] if C.normalization(adapter) else None
        E, sm = _obs_side(adapter, layer, s, window_observation(window, row, lay.timestep_of[q]), "qk_map")
        vals = E @ (W_Q @ cache[hk.hook_k(layer)][row, k, head])
        attn = float(cache[hk.pattern(layer)][row, head, q, k])
        label = f"token {k} ({lay.labels()[k]})"
        terms = "in context: E_state' W_Q · k_cached / sqrt(d_head); query ln1 scale frozen at its cached value"
    vals = vals / bb.cfg.d_head ** 0.5
    flat = C.np32(vals)
    return CircuitMap(values=adapter.schema.to_maps(flat), flat=flat, channel_names=tuple(adapter.schema.channel_names),
                      kind="qk", layer=layer, head=head, key=label, pair_label=None, in_context=window is not None,
                      attention=attn, terms=_with_note(terms, sm), exact=sm.exact,
                      key_token=None if window is None else k)


@torch.inference_mode()
def ov_map(adapter: ModelAdapter, layer: int = 0, head: int = 0, a=None, b=None, *,
           window: TrajectoryWindow | None = None, source_position=None,
           row: int = 0, obs=None) -> CircuitMap:
    """How attending to a state token with feature ``i`` moves the preference ``a - b`` (per unit attention).

    Args:
        a, b: actions (``W_a - W_b``, ``ln_final.w`` folded in) or a ``[d_model]`` vector as ``a``.
            Default: the first two actions.
        window: in-context mode (cached ``ln1`` scale at the source and ``ln_final`` scale at the
            prediction token); weight-only otherwise.
        source_position: in context, the attended state token (default: the prediction position).
        obs: weight-only mode with a nonlinear state encoder: the observation whose Jacobian is read
            (in context, the source token's own observation is used).

    Returns:
        :class:`CircuitMap` ``[C, W, H]`` in logit units per unit of attention weight.
    """
    bb, lay = adapter.backbone, adapter.layout
    if a is None:
        a, b = 0, 1
    pd = preference_direction(adapter, a, b, fold_ln=True)
    d, dlabel = _centre(pd.vector, adapter), pd.label
    OV = bb.OV[layer, head]  # FactoredMatrix W_V W_O [d_model, d_model]
    attn = None
    if window is None:
        E, sm = _obs_side(adapter, layer, obs=obs, analysis="ov_map")
        terms = "weight-only: E_state' W_V W_O · dir_eff; LN scales taken as 1; b_V excluded"
    else:
        p = lay.prediction_position
        k = p if source_position is None else int(source_position)
        if lay.kinds[k] != "state":
            raise ValueError(f"expected a state token as source, got position {k} ({lay.labels()[k]})")
        names = [hk.pattern(layer), hk.ln_scale(layer, "ln1"), hk.ln_scale()]
        _, cache = adapter.run_with_cache(window, names_filter=names)
        src = window_observation(window, row, lay.timestep_of[k])
        if C.normalization(adapter):
            E, sm = _obs_side(adapter, layer, cache[hk.ln_scale(layer, "ln1")][row, k], src, "ov_map")
            d = d / cache[hk.ln_scale()][row, p]
        else:
            E, sm = _obs_side(adapter, layer, obs=src, analysis="ov_map")
        attn = float(cache[hk.pattern(layer)][row, head, p, k])
        terms = "in context: E_state' W_V W_O · dir_eff with cached ln1 (source) and ln_final (prediction) scales"
    flat = C.np32(E @ (OV @ d))
    return CircuitMap(values=adapter.schema.to_maps(flat), flat=flat, channel_names=tuple(adapter.schema.channel_names),
                      kind="ov", layer=layer, head=head, key=None, pair_label=dlabel, in_context=window is not None,
                      attention=attn, terms=_with_note(terms, sm), exact=sm.exact)

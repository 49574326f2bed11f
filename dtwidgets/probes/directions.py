"""Probe directions used like any other direction: attribution, steering and cosines.

A direction is a ``[d_model]`` vector in the raw residual stream (the convention of
:func:`dtwidgets.analysis.directions.preference_direction`). Everything here goes through the
:class:`~dtwidgets.adapters.ModelAdapter` protocol.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch

from ..analysis import _common as C
from ..analysis.attribution import component_stack
from ..analysis.steering import steering_hooks
from ..adapters import hooks as hk

_HOOK_LAYER = {"resid_pre": 0, "resid_mid": 0.5, "resid_post": 1}


def _as_direction(adapter, direction) -> torch.Tensor:
    dev = C.device(adapter)
    v = (direction.detach().to(dev, torch.float32) if torch.is_tensor(direction)
         else torch.as_tensor(np.asarray(direction, np.float32), device=dev))
    d_model = adapter.W_action.shape[1]
    if v.shape != (d_model,):
        raise ValueError(f"expected a direction of shape ({d_model},), got {tuple(v.shape)}")
    return v


def _components_before(hook: str, labels, kinds) -> np.ndarray:
    """Mask of the residual components already summed into the stream at ``hook``."""
    parts = hook.split(".")
    if len(parts) != 3 or parts[0] != "blocks" or parts[2] not in ("hook_resid_pre", "hook_resid_post", "hook_resid_mid"):
        raise ValueError(f"expected a residual hook 'blocks.{{l}}.hook_resid_pre|mid|post', got {hook!r}")
    layer, which = int(parts[1]), parts[2].replace("hook_", "")
    keep = []
    for lab, kind in zip(labels, kinds):
        if kind == "embed":
            keep.append(True)
            continue
        lyr = int(lab[1:].split("H")[0].split(" ")[0].split("M")[0])
        if lyr < layer:
            keep.append(True)
        elif lyr > layer:
            keep.append(False)
        else:
            keep.append(which == "resid_post" or (which == "resid_mid" and kind in ("head", "attn_bias")))
    return np.asarray(keep)


@dataclass
class DirectionAttribution:
    """The residual at one site read along a direction, split into components.

    values: ``[N]`` ``component · direction`` (residual units); labels, kinds: ``N`` names/kinds;
    total: ``values.sum()`` = ``resid[site] · direction``.
    """

    values: np.ndarray
    labels: list[str]
    kinds: list[str]
    total: float
    hook: str
    position: int


@torch.inference_mode()
def direction_attribution(adapter, window, direction, hook: str, position: int | None = None,
                          row: int = 0) -> DirectionAttribution:
    """Decompose ``resid[hook, position] · direction`` into the embeddings, heads, ``b_O`` and MLPs
    written before ``hook`` (exact: the shares sum to the projection)."""
    d = _as_direction(adapter, direction)
    pos = adapter.layout.prediction_position if position is None else int(position)
    L = C.n_layers(adapter)
    names = [hk.POS_EMBED, hk.DT_TIME_EMBED, hk.DT_RTG_EMBED, hk.DT_STATE_EMBED,
             hk.DT_ACTION_EMBED, hook] + [hk.hook_z(l) for l in range(L)] \
        + [hk.mlp_out(l) for l in range(L)]
    _, cache = adapter.run_with_cache(window, names_filter=lambda n: n in names)
    stack, labels, kinds = component_stack(adapter, cache, pos)
    keep = _components_before(hook, labels, kinds)
    vals = (stack[torch.as_tensor(keep, device=stack.device)][:, row] @ d).cpu().numpy()
    total = float(cache[hook][row, pos] @ d)
    return DirectionAttribution(vals.astype(np.float32), [l for l, k in zip(labels, keep) if k],
                                [k for k, m in zip(kinds, keep) if m], total, hook, pos)


@dataclass
class SteeringResult:
    """Action logits/probabilities ``[B, A]`` before and after adding ``coeff · direction``."""

    logits_before: np.ndarray
    logits_after: np.ndarray
    probs_before: np.ndarray
    probs_after: np.ndarray
    coeff: float
    hook: str


@torch.inference_mode()
def steer(adapter, window, direction, coeff: float, hook: str, positions=None) -> SteeringResult:
    """Add ``coeff · direction`` to the residual at ``hook`` (at ``positions``; default: the prediction
    position) through ``adapter.run_with_hooks`` and compare the action distribution."""
    d = _as_direction(adapter, direction)
    pos = [adapter.layout.prediction_position] if positions is None else list(positions)
    before = adapter.forward(window)
    after = adapter.run_with_hooks(window, fwd_hooks=steering_hooks(hook, d, coeff, pos))
    return SteeringResult(C.np32(before), C.np32(after), C.softmax_np(before), C.softmax_np(after), float(coeff), hook)


def cosines(direction, vectors) -> np.ndarray:
    """``[K]`` cosine similarity of ``direction [d]`` with each row of ``vectors [K, d]`` (e.g. SAE
    decoder rows ``W_dec [d_sae, d_in]``)."""
    d = np.asarray(direction, np.float64).reshape(-1)
    V = np.asarray(vectors.detach().cpu() if torch.is_tensor(vectors) else vectors, np.float64)
    if V.ndim != 2 or V.shape[1] != d.shape[0]:
        raise ValueError(f"expected vectors of shape [K, {d.shape[0]}], got {V.shape}")
    den = np.linalg.norm(V, axis=1) * np.linalg.norm(d)
    return (V @ d / np.where(den > 0, den, np.nan)).astype(np.float32)


def action_cosines(adapter, direction) -> dict[str, float]:
    """Cosine of ``direction`` with each action's head row and each pairwise preference ``W_a - W_b``."""
    d = C.np32(_as_direction(adapter, direction))
    W = C.np32(adapter.W_action)
    names = list(adapter.action_names)
    out = {n: float(c) for n, c in zip(names, cosines(d, W))}
    for i in range(len(names)):
        for j in range(i + 1, len(names)):
            out[f"{names[i]} − {names[j]}"] = float(cosines(d, (W[i] - W[j])[None])[0])
    return out


def sae_cosines(direction, sae) -> np.ndarray:
    """``[d_sae]`` cosine with each SAE decoder direction. ``sae``: an object with ``W_dec``
    ``[d_sae, d_in]`` (SAELens layout) or a ``[d_sae, d_in]`` matrix."""
    W = getattr(sae, "W_dec", sae)
    return cosines(direction, W)


def direction_over_observation(adapter, direction, obs=None) -> np.ndarray:
    """``direction · W_state`` reshaped to ``[C, W, H]`` channel maps (what the state embedding writes
    along the direction per input feature); for a nonlinear state encoder, its Jacobian at ``obs``
    ``[W, H, C]`` (:func:`~dtwidgets.analysis.state_map.state_map`)."""
    from ..analysis.state_map import state_map

    d = _as_direction(adapter, direction)
    E = state_map(adapter, obs, analysis="direction_over_observation").E  # [n_features, d_model]
    return adapter.schema.to_maps(C.np32(E @ d.float())).astype(np.float32)

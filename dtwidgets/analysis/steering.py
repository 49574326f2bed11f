"""Activation steering: add ``coeff × direction`` to an activation, and scan the coefficient.

The intervention at hook ``hook`` (e.g. ``blocks.0.hook_resid_post``; any backbone hook whose
activation is ``[B, P, d]``, or a ``dt.*`` embedding hook) and token ``positions`` (default: all)::

    act[:, positions] += coeff * direction

Directions (one public function, :func:`steering_direction`, with one option per source):

* ``pair=(with_windows, without_windows)``: mean activation difference at ``hook`` / ``position``
  between two scenario sets (maze-agent "cheese vector" style: e.g. windows with an obstacle ahead
  minus the same windows without it);
* ``probe=`` a linear probe's weight vector ``[d]`` (e.g. ``LogisticRegression.coef_[0]``);
* ``sae_decoder=W_dec [d_sae, d], feature=i``: an SAE decoder row (SAELens layout);
* ``action=(a, b)``: the action head's ``W_a - W_b``;
* ``vector=``: any ``[d]`` tensor.

A coefficient scan runs every coefficient as rows of one batched forward (and, with
``placements``, a policy map per coefficient), so a widget can ship all of it once and scrub
client-side. :func:`patch_hooks` is the "patched activation" intervention (a source run's
activation written into every row).
"""
from __future__ import annotations

import warnings
from dataclasses import dataclass
from typing import Sequence

import numpy as np
import torch

from ..adapters import hooks as hook_names
from ..adapters.window import TrajectoryWindow
from ..adapters.protocol import ModelAdapter
from . import _common as C
from .directions import preference_direction
from .policy_map import Placements, PolicyMap, maps_from_logits, placement_windows

DEFAULT_COEFFICIENTS = tuple(np.round(np.linspace(-3, 3, 25), 6))


def _positions(adapter: ModelAdapter, positions) -> list[int] | None:
    if positions is None:
        return None
    ps = [int(p) for p in np.atleast_1d(positions)]
    P = adapter.layout.n_tokens
    bad = [p for p in ps if not -P <= p < P]
    if bad:
        raise ValueError(f"expected token positions in [0, {P - 1}], got {bad}")
    return ps


@torch.inference_mode()
def mean_activation(adapter: ModelAdapter, windows: TrajectoryWindow, hook: str, position=None) -> torch.Tensor:
    """Mean of ``hook``'s activation at ``position`` (default: the prediction position) over rows, ``[d]``."""
    pos = adapter.layout.prediction_position if position is None else int(position)
    _, cache = adapter.run_with_cache(windows, names_filter=[hook])
    return cache[hook][:, pos].double().mean(0).float()


def steering_direction(adapter: ModelAdapter, *, contrast=None, hook: str | None = None, position=None, probe=None,
                       sae_decoder=None, feature: int | None = None, action=None, vector=None,
                       normalize: bool = False, pair=None) -> tuple[torch.Tensor, str]:
    """Exactly one direction source -> ``(direction [d], label)`` (see the module docstring).

    Args:
        contrast: ``(with_windows, without_windows)``; needs ``hook`` (and optionally ``position``).
        pair: the old name of ``contrast`` (deprecated: ``pair`` is an action pair ``(a, b)`` elsewhere).
        normalize: scale the direction to unit L2 norm (then coefficients are in activation units).
    """
    if pair is not None:
        warnings.warn("steering_direction(pair=...) is renamed contrast=", DeprecationWarning, stacklevel=2)
        contrast = pair if contrast is None else contrast
    given = {k: v for k, v in dict(contrast=contrast, probe=probe, sae_decoder=sae_decoder, action=action,
                                    vector=vector).items() if v is not None}
    dev = C.device(adapter)
    if len(given) != 1:
        raise ValueError(f"expected exactly one of contrast, probe, sae_decoder, action, vector; got {sorted(given) or 'none'}")
    if contrast is not None:
        if hook is None:
            raise ValueError("a contrast of scenario sets needs hook= (where to read the mean activations)")
        with_w, without_w = contrast
        v = mean_activation(adapter, with_w, hook, position) - mean_activation(adapter, without_w, hook, position)
        label = f"mean difference at {hook}"
    elif probe is not None:
        v, label = torch.as_tensor(np.asarray(probe, dtype=np.float32), device=dev).reshape(-1), "probe direction"
    elif sae_decoder is not None:
        W = torch.as_tensor(np.asarray(sae_decoder, dtype=np.float32), device=dev)
        if feature is None or not 0 <= int(feature) < W.shape[0]:
            raise ValueError(f"expected feature= an index in [0, {W.shape[0] - 1}] of the SAE decoder rows, got {feature!r}")
        v, label = W[int(feature)], f"SAE feature {int(feature)}"
    elif action is not None:
        pd = preference_direction(adapter, action)
        v, label = pd.vector, pd.label
    else:
        v, label = torch.as_tensor(np.asarray(vector, dtype=np.float32), device=dev), "custom direction"
    d = adapter.W_action.shape[1]
    if v.ndim != 1 or v.shape[0] != d:
        raise ValueError(f"expected a steering direction of shape ({d},) (d_model), got shape {tuple(v.shape)}")
    if normalize:
        n = float(v.norm())
        if n == 0:
            raise ValueError("cannot normalise a zero direction")
        v = v / n
    return v.float(), label


def steering_hooks(hook: str, direction, coefficients, positions=None) -> list:
    """Forward hooks adding ``coefficients[row] * direction`` at ``positions`` (default all).

    ``coefficients`` is a scalar (every row) or ``[B]`` (one per row of the batch the hook sees).
    """
    v = torch.as_tensor(direction, device=direction.device if torch.is_tensor(direction) else "cpu").float()
    c = torch.as_tensor(np.asarray(coefficients, dtype=np.float32), device=v.device)
    ps = None if positions is None else list(positions)

    def add(act, hook):
        cc = c.to(act.device, act.dtype).reshape(-1, *([1] * (act.ndim - 1))) if c.ndim else c.to(act.device, act.dtype)
        if cc.ndim and cc.shape[0] not in (1, act.shape[0]):
            raise ValueError(f"expected {act.shape[0]} steering coefficients (one per row), got {cc.shape[0]}")
        delta = cc * v.to(act.device, act.dtype)  # moved once per call if given on another device
        if ps is None:
            return act + delta
        out = act.clone()
        out[:, ps] = act[:, ps] + delta
        return out

    return [(hook, add)]


@torch.inference_mode()
def patch_hooks(adapter: ModelAdapter, source: TrajectoryWindow, hook: str, positions=None, head: int | None = None) -> list:
    """Forward hooks writing ``source``'s activation at ``hook`` (one row) into every row of a batch.

    The "patched activation" variant of a policy map: e.g. ``patch_hooks(adapter, clean_window,
    "blocks.0.attn.hook_z", head=1)`` puts head L0H1's clean output into every placement.

    Args:
        positions: token positions to patch (default all); head: index of dim 2 (``hook_z``-like).
    """
    _, cache = adapter.run_with_cache(source, names_filter=[hook])
    src = cache[hook][:1]
    ps = _positions(adapter, positions)
    idx = (slice(None), slice(None) if ps is None else ps) + (() if head is None else (int(head),))

    def patch(act, hook):
        out = act.clone()
        out[idx] = src[idx].to(act.dtype).expand_as(out[idx])
        return out

    return [(hook, patch)]


@dataclass
class SteeringScan:
    """Action probabilities (and policy maps) over steering coefficients.

    Attributes:
        coefficients: ``[K]``; action_names: ``A``; logits, probs: ``[K, A]`` of the steered window.
        hook, positions (None = all), direction_label, direction_norm (L2 norm of the direction).
        maps: ``K`` :class:`PolicyMap` (one per coefficient) or None; map_probs: ``[K, N, A]`` or None.
    """

    coefficients: np.ndarray
    action_names: tuple[str, ...]
    logits: np.ndarray
    probs: np.ndarray
    hook: str
    positions: list[int] | None
    direction_label: str
    direction_norm: float
    maps: list[PolicyMap] | None = None
    map_probs: np.ndarray | None = None

    def figure(self, **kw):
        """A static plotly figure (see :func:`dtwidgets.analysis.figures.steering_figure`)."""
        from .figures import steering_figure

        return steering_figure(self, **kw)


def _steered_logits(adapter: ModelAdapter, window: TrajectoryWindow, hook, direction, coeffs_rows, positions, chunk_size):
    out = []
    for s in range(0, window.batch_size, chunk_size):
        w = window.index(slice(s, s + chunk_size))
        out.append(adapter.run_with_hooks(w, steering_hooks(hook, direction, coeffs_rows[s:s + chunk_size], positions)))
    return torch.cat(out)


@torch.inference_mode()
def steering_scan(adapter: ModelAdapter, window: TrajectoryWindow | None, direction, *, hook: str = hook_names.resid_post(0),
                  coefficients: Sequence[float] | np.ndarray = DEFAULT_COEFFICIENTS, positions=None,
                  placements: Placements | None = None, rtg=1.0, history: TrajectoryWindow | None = None,
                  timestep: int = 0, label: str | None = None, chunk_size: int = 4096) -> SteeringScan:
    """Steer ``window`` (one row) with every coefficient; optionally a policy map per coefficient.

    Args:
        window: the state to steer (one row), or None when only policy maps are wanted.
        direction: ``[d]`` tensor, or ``(tensor, label)`` as returned by :func:`steering_direction`.
        placements, rtg, history, timestep: as :func:`~dtwidgets.analysis.policy_map.policy_map`.
        chunk_size: rows per forward (the K × N map rows are batched).
    """
    v, dlabel = direction if isinstance(direction, tuple) else (torch.as_tensor(direction, device=C.device(adapter)).float(), label or "direction")
    ks = np.asarray(coefficients, dtype=np.float32)
    ps = _positions(adapter, positions)
    A = len(adapter.action_names)
    if window is not None:
        if window.batch_size != 1:
            raise ValueError(f"expected a one-row window, got {window.batch_size} rows")
        logits = _steered_logits(adapter, window.repeat(len(ks)), hook, v, ks, ps, chunk_size)
    else:
        logits = torch.full((len(ks), A), float("nan"), device=C.device(adapter))
    res = SteeringScan(ks, tuple(adapter.action_names), C.np32(logits), C.softmax_np(logits), hook, ps, dlabel,
                       float(v.norm()))
    if placements is not None:
        pw = placement_windows(adapter, placements, rtg, history=history, timestep=timestep)
        n = pw.batch_size
        rows = TrajectoryWindow(*(getattr(pw, f).repeat(len(ks), *([1] * (getattr(pw, f).ndim - 1)))
                                  for f in ("observations", "actions", "rtgs", "timesteps", "n_pad")))
        ml = _steered_logits(adapter, rows, hook, v, np.repeat(ks, n), ps, chunk_size)
        res.maps = [maps_from_logits(adapter, placements, ml[i * n:(i + 1) * n], rtg, f"{dlabel} × {k:g}")
                    for i, k in enumerate(ks)]
        res.map_probs = np.stack([m.probs for m in res.maps])
    return res

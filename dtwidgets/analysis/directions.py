"""Preference directions: the ONE way analyses turn actions (or a vector) into a residual direction.

The action head reads the final residual stream after ``ln_final``. For actions ``a, b``::

    logit[a] - logit[b] = normalize(resid) · ((W_a - W_b) * ln_final.w) + ln_final.b · (W_a - W_b) + (b_a - b_b)

with ``normalize`` the centring + division by the LayerNorm scale (identity without LN).
:func:`preference_direction` returns the raw ``W_a - W_b`` or, with ``fold_ln=True``, the direction
with ``ln_final.w`` folded in, together with the two constant terms.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch

from ..adapters.device import device_of
from ..adapters.protocol import ModelAdapter
from ..adapters.schema import resolve_action


@dataclass(frozen=True)
class PreferenceDirection:
    """A residual-stream direction read by the action head.

    Attributes:
        vector: ``[d_model]``: ``W_a - W_b`` (``W_a`` alone when ``b`` is None), times
            ``ln_final.w`` when ``folded``; or the custom vector as given.
        label: e.g. ``"forward − right"``, ``"forward"`` or ``"custom direction"``.
        ln_bias: ``ln_final.b · (W_a - W_b)`` in logit units when ``folded`` on an LN model, else 0.
        bias: ``b_a - b_b`` (action-head bias) in logit units; 0 for a custom vector.
        folded: True when ``ln_final.w`` is folded into ``vector``.
    """

    vector: torch.Tensor
    label: str
    ln_bias: float = 0.0
    bias: float = 0.0
    folded: bool = False


def pair_label(adapter: ModelAdapter, a, b=None) -> str:
    """``"forward"`` or ``"forward − right"`` for actions given by name or index."""
    an = adapter.action_names[resolve_action(adapter.action_names, a)]
    return an if b is None else f"{an} − {adapter.action_names[resolve_action(adapter.action_names, b)]}"


def _ln_final(adapter: ModelAdapter):
    if adapter.backbone.cfg.normalization_type != "LN":
        return None, None
    ln = adapter.backbone.ln_final
    return ln.w.detach(), ln.b.detach()


def preference_direction(adapter: ModelAdapter, a, b=None, *, fold_ln: bool = False) -> PreferenceDirection:
    """The direction ``a - b`` in the residual stream.

    Args:
        adapter: a :class:`~dtwidgets.adapters.ModelAdapter`.
        a, b: actions by name (``"forward"``) or index; ``b=None`` for ``W_a`` alone. ``a`` may
            also be an ``(a, b)`` pair, or a ``[d_model]`` vector (a custom direction, used as given).
        fold_ln: fold ``ln_final.w`` into action directions (LN models) and report
            ``ln_final.b · (W_a - W_b)`` as ``ln_bias``; then ``normalize(resid) · vector + ln_bias +
            bias`` is the logit difference exactly.

    Returns:
        :class:`PreferenceDirection`.
    """
    if isinstance(a, tuple) and len(a) == 2 and b is None:
        a, b = a
    if not isinstance(a, (str, int, np.integer)):
        v = (a if torch.is_tensor(a) else torch.as_tensor(np.asarray(a), device=device_of(adapter))).float()
        d_model = adapter.W_action.shape[1]
        if v.shape != (d_model,):
            raise ValueError(f"expected a direction of shape ({d_model},) or an action name/index, got shape "
                             f"{tuple(v.shape)}")
        return PreferenceDirection(v, "custom direction")
    W, bias = adapter.W_action, adapter.b_action
    ia = resolve_action(adapter.action_names, a)
    d = W[ia].clone()
    bt = float(bias[ia])
    if b is not None:
        ib = resolve_action(adapter.action_names, b)
        d = d - W[ib]
        bt -= float(bias[ib])
    label = pair_label(adapter, a, b)
    w, lb = _ln_final(adapter) if fold_ln else (None, None)
    if w is None or lb is None:
        return PreferenceDirection(d, label, 0.0, bt, folded=False)
    return PreferenceDirection(d * w, label, float(lb @ d), bt, folded=True)

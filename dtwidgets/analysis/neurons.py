"""Neuron views: the MLP neurons that move a preference most, what they read and what they write.

For one state (window row 0) the neurons are ranked by their direct share of ``logit[a] - logit[b]``
(:func:`~dtwidgets.analysis.logit_attribution` with ``per_neuron=True``: ``post * W_out`` through the
cached ``ln_final`` scale). For each top neuron:

* its activation (``mlp.hook_post`` at the prediction position) over a state set;
* its output weight read by the action head, ``W_out[n] · (W_a * ln_final.w)`` per action (logits per
  unit activation, LN scale held at 1).
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch

from ..adapters.protocol import ModelAdapter
from ..adapters.window import TrajectoryWindow
from . import _common as C
from .attribution import logit_attribution
from .weights import action_readout
from ..adapters import hooks as hk


@dataclass
class NeuronView:
    """The top neurons of one state.

    Attributes:
        labels: ``k`` names ``"L0N12"``, by decreasing ``|attribution|``.
        attribution: ``[k]`` direct share of the preference in this state (logit units).
        activation: ``[k]`` activation (``hook_post``) in this state.
        state_activations: ``[k, S]`` activation over the state set (None without one).
        output_actions: ``[k, A]`` output weight read by the action head (logits per unit activation).
        all_attribution: ``[L, d_mlp]`` every neuron's share (for a sortable full list).
        all_activation: ``[L, d_mlp]`` every neuron's activation in this state.
        pair_label: the pair ``a − b``; action_names: ``A`` names.
    """

    labels: list[str]
    attribution: np.ndarray
    activation: np.ndarray
    state_activations: np.ndarray | None
    output_actions: np.ndarray
    all_attribution: np.ndarray
    all_activation: np.ndarray
    pair_label: str
    action_names: tuple[str, ...]

    def figure(self, **kw):
        from .figures import neuron_figure

        return neuron_figure(self, **kw)


@torch.inference_mode()
def neuron_activations(adapter: ModelAdapter, windows: TrajectoryWindow, position: int | None = None) -> torch.Tensor:
    """``[B, L, d_mlp]`` ``mlp.hook_post`` at ``position`` (default: prediction position) of every row."""
    pos = adapter.layout.prediction_position if position is None else int(position)
    names = [hk.mlp_post(l) for l in range(C.n_layers(adapter))]
    _, cache = adapter.run_with_cache(windows, names_filter=names)
    return torch.stack([cache[n][:, pos] for n in names], 1)


@torch.inference_mode()
def top_neurons(adapter: ModelAdapter, window: TrajectoryWindow, a, b=None, k: int = 10,
                states: TrajectoryWindow | None = None) -> NeuronView:
    """Rank neurons by ``|direct share|`` of ``logit[a] - logit[b]`` in ``window`` (row 0).

    Args:
        states: an optional ``S``-row window (a state set) for the activation profile.
    """
    att = logit_attribution(adapter, window, a, b, per_source=False, per_neuron=True)
    nv = att.neuron_values  # [L, d_mlp]
    if nv is None:
        raise RuntimeError("logit_attribution(per_neuron=True) returned no neuron values")
    L, dm = nv.shape
    act = C.np32(neuron_activations(adapter, window.index(0))[0])
    order = np.argsort(-np.abs(nv.reshape(-1)), kind="stable")[:max(1, int(k))]
    ls, ns = order // dm, order % dm
    W_out = adapter.backbone.W_out.detach().float()  # [L, d_mlp, d]
    out = torch.stack([W_out[l, n] for l, n in zip(ls, ns)]) @ action_readout(adapter)
    st = None
    if states is not None:
        sa = neuron_activations(adapter, states)  # [S, L, d_mlp]
        st = C.np32(sa[:, ls, ns].T)
    return NeuronView([f"L{l}N{n}" for l, n in zip(ls, ns)], nv.reshape(-1)[order], act[ls, ns], st, C.np32(out),
                      nv, act, att.pair_label, tuple(adapter.action_names))

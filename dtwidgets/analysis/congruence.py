"""Neuron congruence: each MLP neuron's input and output directions read against the action head and
against the next layer's MLP, and, for gated MLPs, its gate against its value input.

From the weights alone (TransformerLens shapes ``W_in`` / ``W_gate`` ``[L, d_model, d_mlp]``,
``W_out`` ``[L, d_mlp, d_model]``; the action head ``W_action`` ``[A, d_model]``):

* **unembedding congruence** ``out_action[l, n, a] = W_out[l, n] · u_a`` (logits per unit activation,
  LN scale held at 1) with ``u_a = W_action[a]``, or, when ``fold_ln`` and the model has LayerNorm,
  ``centre(W_action[a] * ln_final.w)`` (what the head reads: :func:`~dtwidgets.analysis.weights.action_readout`);
  ``out_action_cos`` the cosine of ``W_out[l, n]`` with ``W_action[a]``;
* **input congruence** ``in_action_cos[l, n, a] = cos(W_in[l][:, n], W_action[a])``: whether a neuron
  reads the direction an action is written in;
* **next layer** ``out_next_in[l, n, m] = W_out[l, n] · W_in[l + 1][:, m]`` (and ``out_next_gate`` with
  ``W_gate``): how much neuron ``n`` of layer ``l`` drives neuron ``m`` of the next layer directly;
* **gated MLPs** (``post = act(x W_gate) * (x W_in) + b_in``): ``gate_value_cos[l, n] = cos(W_gate[l][:, n],
  W_in[l][:, n])`` (gating), ``gate_action_cos`` the gate's cosine with each action; "gating by
  congruence" is ``gate_value_cos`` against ``out_action`` (:meth:`NeuronCongruence.gating_by_congruence`).
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np
import torch

from ..adapters.protocol import ModelAdapter
from ..adapters.schema import resolve_action
from . import _common as C
from .ids import neuron_id
from .weights import action_readout


@dataclass
class NeuronCongruence:
    """Weight-level congruences of every MLP neuron (``L`` layers, ``N = d_mlp``, ``A`` actions).

    Attributes:
        out_action: ``[L, N, A]`` ``W_out[l, n] · u_a`` (logits per unit activation).
        out_action_cos, in_action_cos: ``[L, N, A]`` cosines of ``W_out[l, n]`` / ``W_in[l][:, n]`` with ``W_action[a]``.
        out_next_in: ``[L-1, N, N]`` ``W_out[l, n] · W_in[l+1][:, m]`` (None for one layer).
        out_next_gate: ``[L-1, N, N]`` the same with ``W_gate[l+1]`` (None without a gated MLP or with one layer).
        gate_value_cos: ``[L, N]`` cosine of each neuron's gate and value input (None if not gated).
        gate_action_cos: ``[L, N, A]`` cosine of each gate column with ``W_action[a]`` (None if not gated).
        neuron_labels: ``[L][N]`` names ``"L0N12"``; action_names: ``A``; fold_ln: whether ``u_a`` had
            ``ln_final`` folded in.
    """

    out_action: np.ndarray
    out_action_cos: np.ndarray
    in_action_cos: np.ndarray
    out_next_in: np.ndarray | None
    out_next_gate: np.ndarray | None
    gate_value_cos: np.ndarray | None
    gate_action_cos: np.ndarray | None
    neuron_labels: list[list[str]]
    action_names: tuple[str, ...]
    fold_ln: bool

    def top(self, action, k: int = 10) -> list[tuple[str, float]]:
        """The ``k`` neurons (all layers) with the largest ``|out_action|`` for ``action`` (name or index)."""
        v = self.out_action[:, :, resolve_action(self.action_names, action)].reshape(-1)
        flat = [n for row in self.neuron_labels for n in row]
        order = np.argsort(-np.abs(v), kind="stable")[:int(k)]
        return [(flat[i], float(v[i])) for i in order]

    def gating_by_congruence(self, action) -> tuple[np.ndarray, np.ndarray]:
        """``(out_action[:, :, a] [L, N], gate_value_cos [L, N])`` for a scatter (gated MLPs only)."""
        if self.gate_value_cos is None:
            raise ValueError("gating_by_congruence: this model's MLP is not gated (no W_gate)")
        return self.out_action[:, :, resolve_action(self.action_names, action)], self.gate_value_cos


def top_rows(M: np.ndarray, k: int) -> np.ndarray:
    """Indices of the ``k`` rows of ``M`` ``[R, C]`` with the largest ``max |M[r]|``, in that order (ties: first row first)."""
    return np.argsort(-np.abs(M).max(1), kind="stable")[:max(1, int(k))]


def _unit(x: torch.Tensor, dim: int) -> torch.Tensor:
    return x / x.norm(dim=dim, keepdim=True).clamp_min(1e-12)


def _gate(adapter: ModelAdapter) -> torch.Tensor | None:
    try:
        w = getattr(adapter.backbone, "W_gate")
    except AttributeError:
        return None
    return None if w is None else w.detach().double()


@torch.inference_mode()
def neuron_congruence(adapter: ModelAdapter, fold_ln: bool = True) -> NeuronCongruence:
    """Every neuron's congruences (see the module docstring); float64 products, float32 results."""
    with C.reuse_weights():
        W_in, W_out = C.weight(adapter, "W_in").double(), C.weight(adapter, "W_out").double()
    W_gate = _gate(adapter)
    Wa = adapter.W_action.detach().double()  # [A, d]
    U = action_readout(adapter).double() if fold_ln else Wa.T  # [d, A]
    out_action = torch.einsum("lnd,da->lna", W_out, U)
    out_cos = torch.einsum("lnd,ad->lna", _unit(W_out, -1), _unit(Wa, -1))
    in_cos = torch.einsum("ldn,ad->lna", _unit(W_in, 1), _unit(Wa, -1))
    L = W_in.shape[0]
    nxt = torch.einsum("lnd,ldm->lnm", W_out[:-1], W_in[1:]) if L > 1 else None
    nxt_gate = torch.einsum("lnd,ldm->lnm", W_out[:-1], W_gate[1:]) if L > 1 and W_gate is not None else None
    gv = gate_act = None
    if W_gate is not None:
        gv = (_unit(W_gate, 1) * _unit(W_in, 1)).sum(1)
        gate_act = torch.einsum("ldn,ad->lna", _unit(W_gate, 1), _unit(Wa, -1))
    f: Any = lambda t: None if t is None else C.np32(t)  # noqa: E731
    labels = [[neuron_id(l, n).name for n in range(W_in.shape[2])] for l in range(L)]
    return NeuronCongruence(f(out_action), f(out_cos), f(in_cos), f(nxt), f(nxt_gate), f(gv), f(gate_act), labels,
                            tuple(adapter.action_names), bool(fold_ln and C.normalization(adapter)))

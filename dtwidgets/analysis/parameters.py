"""Parameter statistics: the size and spread of every weight, and each attention head's share.

Weights are read through the protocol: the backbone's TransformerLens-shaped ``W_Q`` ``[L, H, d_model,
d_head]``, ``W_K``, ``W_V``, ``W_O`` ``[L, H, d_head, d_model]``, their biases, ``W_in`` ``[L, d_model,
d_mlp]``, ``W_gate`` (gated MLPs), ``W_out`` ``[L, d_mlp, d_model]``, ``W_pos``, the LayerNorm weights,
and the adapter's ``W_state``, ``W_action``, ``b_action``, ``b_mlp_out``, the time-embedding rows
``embed_time(0..max_timestep)`` and the action-embedding rows ``embed_action(0..n_actions-1)``.
``b_in`` of a gated MLP is left out (TransformerLens 4's bridge does not expose it), so the list is
the same on both majors.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch

from ..adapters.protocol import ModelAdapter
from . import _common as C

HEAD_WEIGHTS = ("W_Q", "W_K", "W_V", "W_O")


@dataclass
class ParameterStats:
    """One row per weight tensor (``n`` of them).

    Attributes:
        names: ``n`` labels (``"L0.W_Q"``, ``"W_state"``, ``"L1.ln2.w"`` ...); shapes: their shapes.
        frobenius, mean, std, min, max: ``[n]`` float64 over all entries of each tensor (``std``: population).
        n_params: ``[n]`` entries per tensor.
        hist_counts: ``[n, bins]`` counts; hist_edges: ``[n, bins + 1]`` each tensor's own bin edges
            (``bins`` equal bins from its min to its max).
        head_norms: ``{"W_Q" | "W_K" | "W_V" | "W_O": [L, H]}`` Frobenius norm of each head's matrix.
        head_labels: ``L*H`` names (``"L0H1"``), row-major over ``head_norms``.
    """

    names: list[str]
    shapes: list[tuple[int, ...]]
    frobenius: np.ndarray
    mean: np.ndarray
    std: np.ndarray
    min: np.ndarray
    max: np.ndarray
    n_params: np.ndarray
    hist_counts: np.ndarray
    hist_edges: np.ndarray
    head_norms: dict[str, np.ndarray]
    head_labels: list[str]

    def row(self, name: str) -> dict:
        """The statistics of one weight by name (a clear KeyError otherwise)."""
        if name not in self.names:
            raise KeyError(f"name: expected one of {self.names}, got {name!r}")
        i = self.names.index(name)
        return {"shape": self.shapes[i], "frobenius": float(self.frobenius[i]), "mean": float(self.mean[i]),
                "std": float(self.std[i]), "min": float(self.min[i]), "max": float(self.max[i])}


def _optional(adapter: ModelAdapter, name: str) -> torch.Tensor | None:
    try:
        w = getattr(adapter.backbone, name)
    except AttributeError:
        return None
    return None if w is None else w.detach()


def named_weights(adapter: ModelAdapter) -> list[tuple[str, torch.Tensor]]:
    """``(name, tensor)`` for every weight this module reports (see the module docstring), in order."""
    from .state_map import linear_state_weights

    W_state = linear_state_weights(adapter)  # None for a nonlinear state encoder (its weights are its own)
    out: list[tuple[str, torch.Tensor]] = [("W_state", W_state)] if W_state is not None else []
    out += [("embed_time", adapter.embed_time(torch.arange(adapter.max_timestep + 1, device=C.device(adapter))).detach()),
            ("embed_action", adapter.embed_action(torch.arange(adapter.n_actions, device=C.device(adapter))).detach()),
            ("W_pos", C.weight(adapter, "W_pos"))]
    gated = _optional(adapter, "W_gate") is not None
    per_layer = ["W_Q", "b_Q", "W_K", "b_K", "W_V", "b_V", "W_O", "b_O", *(("W_gate",) if gated else ()), "W_in",
                 *(() if gated else ("b_in",)), "W_out"]
    stacked = {n: C.weight(adapter, n) for n in per_layer}
    b_out = adapter.b_mlp_out.detach()
    for l in range(C.n_layers(adapter)):
        for n in per_layer:
            out.append((f"L{l}.{n}", stacked[n][l]))
        out.append((f"L{l}.b_out", b_out[l]))
        for ln in ("ln1", "ln2"):
            w, b = C.ln_params(adapter, ln, l)
            if w is not None:
                out += [(f"L{l}.{ln}.w", w), (f"L{l}.{ln}.b", b)]
    w, b = C.ln_params(adapter, "ln_final")
    if w is not None:
        out += [("ln_final.w", w), ("ln_final.b", b)]
    return out + [("W_action", adapter.W_action.detach()), ("b_action", adapter.b_action.detach())]


@torch.inference_mode()
def parameter_stats(adapter: ModelAdapter, bins: int = 30) -> ParameterStats:
    """Frobenius norm, mean, std, min, max and a ``bins``-bin histogram of every weight, and the
    per-head Frobenius norms of ``W_Q``, ``W_K``, ``W_V``, ``W_O``."""
    if int(bins) < 1:
        raise ValueError(f"bins: expected a positive integer, got {bins}")
    with C.reuse_weights():
        weights = named_weights(adapter)
        heads = {n: C.np32(C.weight(adapter, n).double().flatten(-2).norm(dim=-1)) for n in HEAD_WEIGHTS}
    stats: dict[str, list] = {k: [] for k in ("fro", "mean", "std", "min", "max", "n", "counts", "edges")}
    for _, t in weights:
        v = t.detach().float().cpu().numpy().astype(np.float64).reshape(-1)
        counts, edges = np.histogram(v, bins=int(bins))
        for k, x in zip(stats, (np.sqrt((v ** 2).sum()), v.mean(), v.std(), v.min(), v.max(), v.size, counts, edges)):
            stats[k].append(x)
    return ParameterStats(names=[n for n, _ in weights], shapes=[tuple(t.shape) for _, t in weights],
                          frobenius=np.array(stats["fro"]), mean=np.array(stats["mean"]), std=np.array(stats["std"]),
                          min=np.array(stats["min"]), max=np.array(stats["max"]),
                          n_params=np.array(stats["n"], dtype=np.int64), hist_counts=np.stack(stats["counts"]),
                          hist_edges=np.stack(stats["edges"]), head_norms=heads, head_labels=C.head_labels(adapter))

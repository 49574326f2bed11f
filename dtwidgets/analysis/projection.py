"""The residual stream at one token read along each component's own output in the same forward pass.

For every row of a window, take the residual ``r`` ``[d_model]`` at ``hook`` (default: the last
layer's ``hook_resid_post``) and position ``p`` (default: the prediction position), and each
component's output ``o_c`` ``[d_model]`` at ``p`` in that same forward:

* a head ``"L0H1"``: ``z[p, h] @ W_O[l, h]`` (without ``b_O``, which no head owns);
* an MLP ``"L0MLP"``: ``hook_mlp_out[p]`` (with its output bias);
* a neuron ``"L0N12"``: ``post[p, n] * W_out[l, n]``;
* a cluster (a named list of neurons): the sum of its neurons' outputs.

Reported: ``projection = r · o_c / |o_c|`` (residual units: how far the residual reaches along the
component's output), ``cosine = r · o_c / (|r| |o_c|)`` and ``|o_c|``; 0 where ``|o_c| = 0``. A
component of a later layer than ``hook`` is read all the same (its output is then not part of ``r``).
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Mapping, Sequence

import numpy as np
import torch

from ..adapters.protocol import ModelAdapter
from ..adapters.window import TrajectoryWindow
from . import _common as C
from ..adapters import hooks as hk


@dataclass
class ResidualProjection:
    """Each component's output against the residual stream (``B`` window rows, ``K`` components).

    Attributes:
        labels: ``K`` names (``"L0H1"``, ``"L1MLP"``, ``"L0N12"``, cluster names); kinds: ``K`` of
            ``"head" | "mlp" | "neuron" | "cluster"``.
        projection: ``[B, K]`` ``r · o_c / |o_c|`` (residual units); cosine: ``[B, K]``.
        output_norm: ``[B, K]`` ``|o_c|``; resid_norm: ``[B]`` ``|r|``.
        hook, position: where ``r`` was read.
    """

    labels: list[str]
    kinds: list[str]
    projection: np.ndarray
    cosine: np.ndarray
    output_norm: np.ndarray
    resid_norm: np.ndarray
    hook: str
    position: int


def _outputs(adapter: ModelAdapter, cache, pos: int, parsed: list[tuple[str, int, int | None]]) -> torch.Tensor:
    """``[B, K, d_model]`` each parsed component's output at ``pos``."""
    W_O = C.weight(adapter, "W_O").double()
    W_out = C.weight(adapter, "W_out").double() if any(k == "neuron" for k, _, _ in parsed) else None
    outs = []
    for kind, l, i in parsed:
        if kind == "head":
            outs.append(cache[hk.hook_z(l)][:, pos, i].double() @ W_O[l, i])
        elif kind == "mlp":
            outs.append(cache[hk.mlp_out(l)][:, pos].double())
        else:
            outs.append(cache[hk.mlp_post(l)][:, pos, i, None].double() * W_out[l, i])  # type: ignore[index]
    return torch.stack(outs, 1)


def _parse_clusters(adapter: ModelAdapter, clusters: Mapping[str, Sequence[str]] | None) -> dict[str, list]:
    out: dict[str, list] = {}
    for name, members in (clusters or {}).items():
        if not isinstance(name, str) or not name:
            raise ValueError(f"clusters: expected non-empty text names, got {name!r}")
        parsed = [C.parse_component(adapter, m) for m in members]
        if not parsed or any(p[0] != "neuron" for p in parsed):
            raise ValueError(f"clusters[{name!r}]: expected a non-empty list of neurons like 'L0N12', got {list(members)}")
        out[name] = parsed
    return out


@torch.inference_mode()
def projection_hooks(adapter: ModelAdapter) -> list[str]:
    """The cache entries :func:`residual_projection` reads with its defaults (the last ``resid_post``,
    every ``hook_z``, ``hook_mlp_out`` and ``mlp.hook_post``)."""
    L = C.n_layers(adapter)
    per_layer = (hk.hook_z, hk.mlp_out, hk.mlp_post) if C.has_mlp(adapter) else (hk.hook_z,)
    return [hk.resid_post(L - 1)] + [f(l) for l in range(L) for f in per_layer]


def residual_projection(adapter: ModelAdapter, window: TrajectoryWindow, components: Sequence[str] | None = None,
                        clusters: Mapping[str, Sequence[str]] | None = None, hook: str | None = None,
                        position: int | None = None, cache=None) -> ResidualProjection:
    """Project the residual at ``hook`` / ``position`` onto each component's output (module docstring).

    Args:
        components: names (``"L0H1"``, ``"L1MLP"``, ``"L0N12"``); default every head and every MLP.
        clusters: ``{name: [neuron names]}`` groups of neurons read as one summed output.
        hook: a residual hook from :mod:`dtwidgets.adapters.hooks` (``resid_pre/mid/post(l)``).
        cache: an :class:`~transformer_lens.ActivationCache` of ``window`` holding those hooks (e.g. the
            per-state bundle's, see :func:`projection_hooks`); a forward is run when omitted.
    """
    L = C.n_layers(adapter)
    hook = hk.resid_post(L - 1) if hook is None else hook
    pos = adapter.layout.prediction_position if position is None else int(position)
    if not 0 <= pos < adapter.layout.n_tokens:
        raise ValueError(f"position: expected 0..{adapter.layout.n_tokens - 1}, got {position}")
    names = list(components) if components is not None else C.head_labels(adapter) + C.mlp_labels(adapter)
    parsed = [C.parse_component(adapter, n) for n in names]
    groups = _parse_clusters(adapter, clusters)
    layers = {l for _, l, _ in parsed} | {l for g in groups.values() for _, l, _ in g}
    need = {hook} | {hk.hook_z(l) for l in layers}
    if C.has_mlp(adapter):
        need |= {hk.mlp_out(l) for l in layers} | {hk.mlp_post(l) for l in layers}
    if cache is None:
        _, cache = adapter.run_with_cache(window, names_filter=sorted(need))
    r = cache[hook][:, pos].double()
    if r.dim() != 2 or r.shape[-1] != adapter.W_action.shape[-1]:
        raise ValueError(f"hook: expected a residual-stream hook ([B, P, d_model]), {hook!r} has shape {tuple(cache[hook].shape)}")
    with C.reuse_weights():
        parts = [_outputs(adapter, cache, pos, parsed)] if parsed else []
        parts += [_outputs(adapter, cache, pos, g).sum(1, keepdim=True) for g in groups.values()]
    if not parts:
        raise ValueError("components: expected at least one component or cluster, got none")
    out = torch.cat(parts, 1)  # [B, K, d]
    norm = out.norm(dim=-1)
    rn = r.norm(dim=-1)
    dot = torch.einsum("bkd,bd->bk", out, r)
    safe = norm.clamp_min(1e-30)
    proj = torch.where(norm > 0, dot / safe, torch.zeros_like(dot))
    cos = torch.where((norm > 0) & (rn[:, None] > 0), dot / (safe * rn[:, None].clamp_min(1e-30)), torch.zeros_like(dot))
    kinds = [k for k, _, _ in parsed] + ["cluster"] * len(groups)
    return ResidualProjection(names + list(groups), kinds, C.np32(proj), C.np32(cos), C.np32(norm), C.np32(rn), hook, pos)

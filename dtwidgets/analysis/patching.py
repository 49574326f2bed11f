"""Activation patching between a clean and a corrupted window (e.g. an edited grid), batched.

**Convention** (default, ``reverse=False``): run the *clean* window and patch in one activation
from the *corrupted* run. Metric per patch::

    fraction = (patched - clean) / (corrupted - clean)

where each value is the preference ``logit[a] - logit[b]`` at the prediction position. 0 means
the patch changes nothing; 1 means it moves the preference all the way to the corrupted run's.
``reverse=True`` swaps the roles: run the corrupted window, patch in clean activations, and
``fraction = (patched - corrupted) / (clean - corrupted)``. When the two runs give the same
preference (``|corrupted - clean| <= 1e-5 · max(1, |base|)``) a fraction is 0 where the patch changed
nothing (same tolerance) and NaN otherwise. The raw ``patched - base`` differences are in
``PatchingResult.deltas``; ``base`` there is an unpatched row of the same batched forward.

Why not ``transformer_lens.patching``: its ``generic_activation_patch`` runs one forward per
patched index, on token input to the backbone, with a metric on the backbone's output. Here the
input is a trajectory window, embedded by the DT outside the backbone (``dt.*`` hooks), and every
patch of a sweep becomes one row of a single batched forward. The tests cross-check the
residual-stream sweep against ``get_act_patch_resid_pre``.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import numpy as np
import torch

from ..adapters.protocol import ModelAdapter
from ..adapters.window import TrajectoryWindow
from . import _common as C
from ..adapters import hooks as hk


@dataclass
class PatchingResult:
    """Fractions of the preference difference moved by each patch.

    Attributes:
        pair_label: e.g. ``"forward − right"``; reverse: see the module docstring.
        clean_value, corrupted_value: the preference of each run (logit units).
        resid: ``[L+1, P]`` patch the residual stream at one position: ``resid_pre`` of layer ``l``
            (rows ``0..L-1``) and ``resid_post`` of the last layer (row ``L``); resid_labels ``L+1``.
        heads: ``[L*H]`` patch one head's output (``hook_z``) at every position.
        heads_by_pos: ``[L*H, P]`` patch one head's output at one position.
        mlp: ``[L]`` patch one MLP's output (``hook_mlp_out``) at every position.
        mlp_by_pos: ``[L, P]`` patch one MLP's output at one position.
        head_labels, mlp_labels, token_labels: axis labels.
        deltas: ``{"resid" | "heads" | ...: patched - base}`` in logit units, same shapes.
    """

    pair_label: str
    reverse: bool
    clean_value: float
    corrupted_value: float
    resid: np.ndarray
    resid_labels: list[str]
    heads: np.ndarray
    heads_by_pos: np.ndarray
    mlp: np.ndarray
    mlp_by_pos: np.ndarray
    head_labels: list[str]
    mlp_labels: list[str]
    token_labels: list[str]
    deltas: dict[str, np.ndarray] = field(default_factory=dict)


def _patch_hook(src: torch.Tensor, mask: torch.Tensor):
    def hook(act, hook):
        m = mask.reshape(*mask.shape, *([1] * (act.ndim - mask.ndim)))
        return torch.where(m, src.to(act.dtype), act)

    return hook


def moved_fraction(deltas: torch.Tensor, denom: float, base_value: float) -> torch.Tensor:
    """``deltas / denom``: the fraction of the way from the base run's preference to the source run's
    that each patch moved it (``deltas`` = patched - base, ``denom`` = source - base, logit units).
    When ``|denom| <= 1e-5 · max(1, |base_value|)`` the runs agree: 0 where the patch changed nothing
    (same tolerance), NaN otherwise (never a huge number from a division by float noise)."""
    tol = 1e-5 * max(1.0, abs(base_value))
    if abs(denom) > tol:
        return deltas / denom
    return torch.where(deltas.abs() <= tol, torch.zeros_like(deltas), torch.full_like(deltas, float("nan")))


@torch.inference_mode()
def patched_logits(adapter: ModelAdapter, base: TrajectoryWindow, source: TrajectoryWindow, specs, *,
                   chunk_size: int = 512, source_cache=None,
                   include_base: bool = False) -> Any:
    """Logits ``[K, A]`` of ``base`` with, in row ``k``, the activation ``specs[k]`` taken from ``source``.

    Args:
        base, source: one-row windows.
        specs: ``[(hook name, positions or None for all, head or None), ...]``; a spec may also
            be a list of such triples to patch several activations in the same row. Hook names
            are backbone hooks (``blocks.0.hook_resid_pre``, ``blocks.1.attn.hook_z`` ...) or DT
            embedding hooks (``dt.hook_tokens``). ``head`` indexes dim 2 of ``hook_z``-like activations.
        chunk_size: rows per forward.
        source_cache: a cache of ``source`` holding the needed hooks, if already computed.
        include_base: add an unpatched row at the start of every chunk and return
            ``(logits [K, A], base_logits [K, A])`` where ``base_logits[k]`` is the unpatched row of
            ``k``'s chunk (same batch, so float noise of batching cancels in differences).
    """
    specs = [s if isinstance(s, list) else [s] for s in specs]
    names = sorted({n for s in specs for n, _, _ in s})
    if source_cache is None:
        _, source_cache = adapter.run_with_cache(source, names_filter=names)
    off = 1 if include_base else 0
    out, bases = [], []
    for start in range(0, len(specs), chunk_size):
        part = specs[start:start + chunk_size]
        n = len(part) + off
        masks: dict[str, torch.Tensor] = {}
        for r, spec in enumerate(part):
            for name, pos, head in spec:
                act = source_cache[name]
                shape = (n, act.shape[1]) + ((act.shape[2],) if head is not None or name.endswith("hook_z") else ())
                m = masks.setdefault(name, torch.zeros(shape, dtype=torch.bool, device=act.device))
                idx = (r + off, slice(None) if pos is None else pos) + (() if head is None else (head,))
                m[idx] = True
        hooks = [(k, _patch_hook(source_cache[k][:1], m)) for k, m in masks.items()]
        lg = adapter.run_with_hooks(base.repeat(n), fwd_hooks=hooks)
        out.append(lg[off:])
        bases.append(lg[:1].expand(len(part), -1))
    return (torch.cat(out), torch.cat(bases)) if include_base else torch.cat(out)


@torch.inference_mode()
def activation_patching(adapter: ModelAdapter, clean: TrajectoryWindow, corrupted: TrajectoryWindow, a, b=None, *,
                        reverse: bool = False,
                        chunk_size: int = 512) -> PatchingResult:
    """Patch the residual stream (layer × position), every head (all positions and per position)
    and every MLP (all positions and per position), each in one row of a batched forward.

    Args:
        clean, corrupted: one-row windows of the same model (e.g. the corrupted one has an edited grid).
        a, b: the preference direction (actions by name or index).
        reverse: run the corrupted window and patch clean activations in (see module docstring).
    """
    L, H, P = C.n_layers(adapter), C.n_heads(adapter), adapter.layout.n_tokens
    base, source = (corrupted, clean) if reverse else (clean, corrupted)
    ia = C.action_index(adapter, a)
    ib = None if b is None else C.action_index(adapter, b)

    def pref(lg):
        return lg[:, ia] - (lg[:, ib] if ib is not None else 0)

    v_base, v_src = float(pref(adapter.forward(base))[0]), float(pref(adapter.forward(source))[0])
    resid_hooks = [hk.resid_pre(l) for l in range(L)] + [hk.resid_post(L - 1)]
    sweeps: dict[str, list] = {
        "resid": [(n, p, None) for n in resid_hooks for p in range(P)],
        "heads": [(hk.hook_z(l), None, h) for l in range(L) for h in range(H)],
        "heads_by_pos": [(hk.hook_z(l), p, h) for l in range(L) for h in range(H) for p in range(P)],
        "mlp": [(hk.mlp_out(l), None, None) for l in range(L)],
        "mlp_by_pos": [(hk.mlp_out(l), p, None) for l in range(L) for p in range(P)],
    }
    shapes = {"resid": (L + 1, P), "heads": (L * H,), "heads_by_pos": (L * H, P), "mlp": (L,), "mlp_by_pos": (L, P)}
    flat = [s for v in sweeps.values() for s in v]
    patched, unpatched = patched_logits(adapter, base, source, flat, chunk_size=chunk_size, include_base=True)
    deltas = (pref(patched) - pref(unpatched)).double()
    frac = moved_fraction(deltas, v_src - v_base, v_base)
    out_f, out_d, i = {}, {}, 0
    for k, v in sweeps.items():
        out_f[k] = C.np32(frac[i:i + len(v)]).reshape(shapes[k])
        out_d[k] = C.np32(deltas[i:i + len(v)]).reshape(shapes[k])
        i += len(v)
    clean_v, corr_v = (v_src, v_base) if reverse else (v_base, v_src)
    return PatchingResult(pair_label=C.pair_label(adapter, a, b), reverse=reverse, clean_value=clean_v,
                          corrupted_value=corr_v, resid=out_f["resid"],
                          resid_labels=[f"resid_pre L{l}" for l in range(L)] + [f"resid_post L{L - 1}"],
                          heads=out_f["heads"], heads_by_pos=out_f["heads_by_pos"], mlp=out_f["mlp"],
                          mlp_by_pos=out_f["mlp_by_pos"], head_labels=C.head_labels(adapter),
                          mlp_labels=C.mlp_labels(adapter), token_labels=adapter.layout.labels(), deltas=out_d)

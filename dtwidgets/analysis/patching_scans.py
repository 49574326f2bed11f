"""Activation-patching scans beyond layer × position, scored by logit-difference recovery.

Every scan runs the *corrupted* window and patches in activations of the *clean* one (one patch per
cell of the result). The metric is the **logit-difference recovery** of the preference
``logit[a] - logit[b]`` (``b=None``: ``logit[a]``) at the prediction position::

    recovery = (patched - corrupted) / (clean - corrupted)

1 means the patch restores the clean preference, 0 that it changes nothing (the zero-denominator
rule is :func:`~dtwidgets.analysis.patching.moved_fraction`'s: 0 where nothing changed, NaN
otherwise). ``deltas`` holds ``patched - corrupted`` in logit units, with ``corrupted`` read from an
unpatched row of the same batched forward.

Scans (each returns a :class:`PatchScan` ``[R, C]``):

==============================  ==========================  ===========================================
function                        rows × columns              the patch of a cell
==============================  ==========================  ===========================================
:func:`layer_block_scan`        layer × token block          ``resid`` / ``attn_out`` / ``mlp_out`` at
                                                             the RTG / state / action tokens (or one
                                                             timestep's tokens, or all) of the layout
:func:`head_scan`               layer × head                 ``hook_z`` of one head at every position
:func:`head_position_scan`      head × position              ``hook_z`` of one head at one position
:func:`head_input_scan`         head × q / k / v             ``hook_q/k/v`` of one head, every position
:func:`head_input_position_scan` (head, input) × position    ``hook_q/k/v`` of one head at one position
:func:`neuron_scan`             (layer, position) × neuron   ``mlp.hook_post`` of one neuron
==============================  ==========================  ===========================================

Batching: all patches of a scan are rows of :func:`~dtwidgets.analysis.patching.patched_logits`
(``ceil(R·C / chunk_size)`` forwards) after one cached forward of the clean window;
``PatchScan.n_forwards`` says how many ran. Hook names come from :mod:`dtwidgets.adapters.hooks`.
Show a scan with ``MatrixHeatmap(**scan.heatmap_kwargs())``.
"""
from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any, Sequence

import numpy as np
import torch

from ..adapters import hooks as hk
from ..adapters.layout import KIND_LETTER
from ..adapters.protocol import ModelAdapter
from ..adapters.window import TrajectoryWindow
from . import _common as C
from .ids import head_id
from .patching import moved_fraction, patched_logits

Spec = list  # [(hook name, positions or None, index along dim 2 or None), ...] patched in one row
_INPUT_HOOKS = {"q": hk.hook_q, "k": hk.hook_k, "v": hk.hook_v, "z": hk.hook_z}


@dataclass
class PatchScan:
    """One patching scan: recovery per cell, with structured ids and labels for both axes.

    Attributes:
        kind: the scan (``"layer_block"``, ``"head"``, ``"head_position"``, ``"head_input"``,
            ``"head_input_position"``, ``"neuron"``).
        pair_label: e.g. ``"forward − right"``.
        clean_value, corrupted_value: the preference of each unpatched run (logit units).
        values: ``[R, C]`` float32 recovery (dimensionless; 1 = clean restored).
        deltas: ``[R, C]`` float32 ``patched - corrupted`` (logit units).
        row_ids, col_ids: one dict per row / column (``{"layer": 0, "head": 1}``, ``{"position": 4,
            "kind": "state", "step": 1}``, ...), JSON-ready.
        row_labels, col_labels: display texts, one per row / column.
        specs: ``[R][C]`` the patch of each cell (``[(hook, positions, index), ...]``).
        n_forwards: forwards the scan ran (the clean cache one included).
    """

    kind: str
    pair_label: str
    clean_value: float
    corrupted_value: float
    values: np.ndarray
    deltas: np.ndarray
    row_ids: list[dict]
    col_ids: list[dict]
    row_labels: list[str]
    col_labels: list[str]
    specs: list[list[Spec]]
    n_forwards: int

    def heatmap_kwargs(self) -> dict:
        """Keyword arguments for :class:`~dtwidgets.widgets.MatrixHeatmap` (values, labels, title)."""
        title = f"{self.kind.replace('_', ' ')} patching: recovery of {self.pair_label}"
        return dict(values=self.values, row_labels=list(self.row_labels), col_labels=list(self.col_labels),
                    title=title, vmax=1.0)

    def cell(self, row: int, col: int) -> dict:
        """``{"row": row id, "col": col id, "recovery": float, "delta": float}`` of one cell."""
        return {"row": self.row_ids[row], "col": self.col_ids[col], "recovery": float(self.values[row, col]),
                "delta": float(self.deltas[row, col])}


# ---- the shared runner -----------------------------------------------------------------------------
def _check_windows(adapter: ModelAdapter, clean: TrajectoryWindow, corrupted: TrajectoryWindow) -> None:
    for name, w in (("clean", clean), ("corrupted", corrupted)):
        if not isinstance(w, TrajectoryWindow):
            raise TypeError(f"expected {name} to be a TrajectoryWindow, got {type(w).__name__}")
        if w.batch_size != 1:
            raise ValueError(f"expected {name} to be a one-row window, got {w.batch_size} rows")
        if w.n_timesteps != adapter.layout.n_timesteps:
            raise ValueError(f"expected {name} to have the model's {adapter.layout.n_timesteps} timesteps, "
                             f"got {w.n_timesteps} (build it with adapter.make_window)")


@torch.inference_mode()
def run_scan(adapter: ModelAdapter, clean: TrajectoryWindow, corrupted: TrajectoryWindow, a, b, specs, *,
             kind: str, row_ids: list[dict], col_ids: list[dict], row_labels: list[str], col_labels: list[str],
             chunk_size: int = 512) -> PatchScan:
    """Run the ``[R][C]`` grid of patches ``specs`` (clean activations into the corrupted run) as rows
    of batched forwards and score each by recovery. The other scans are this with their grid."""
    _check_windows(adapter, clean, corrupted)
    if not isinstance(chunk_size, int) or chunk_size < 1:
        raise ValueError(f"expected chunk_size a positive int, got {chunk_size!r}")
    ia = C.action_index(adapter, a)
    ib = None if b is None else C.action_index(adapter, b)
    R, Cn = len(specs), len(specs[0]) if specs else 0
    if R == 0 or Cn == 0 or any(len(row) != Cn for row in specs):
        raise ValueError(f"expected specs as a non-empty [R][C] grid (every row {Cn} cells), got rows of lengths "
                         f"{[len(row) for row in specs]}")
    if (len(row_ids), len(col_ids), len(row_labels), len(col_labels)) != (R, Cn, R, Cn):
        raise ValueError(f"expected {R} row ids and labels and {Cn} column ids and labels for a [{R}][{Cn}] grid, got "
                         f"{len(row_ids)}, {len(row_labels)} and {len(col_ids)}, {len(col_labels)}")
    flat = [s for row in specs for s in row]

    def pref(lg: torch.Tensor) -> torch.Tensor:
        return (lg[:, ia] - (lg[:, ib] if ib is not None else 0)).double()

    names = sorted({n for s in flat for n, _, _ in s})
    clean_logits, cache = adapter.run_with_cache(clean, names_filter=names)
    v_clean = float(pref(clean_logits)[0])
    patched, base = patched_logits(adapter, corrupted, clean, flat, chunk_size=chunk_size, source_cache=cache,
                                   include_base=True)
    v_corr = float(pref(base[:1])[0]) if len(flat) else float(pref(adapter.forward(corrupted))[0])
    deltas = pref(patched) - pref(base)
    frac = moved_fraction(deltas, v_clean - v_corr, v_corr)
    return PatchScan(kind=kind, pair_label=C.pair_label(adapter, a, b), clean_value=v_clean,
                     corrupted_value=v_corr, values=C.np32(frac).reshape(R, Cn), deltas=C.np32(deltas).reshape(R, Cn),
                     row_ids=row_ids, col_ids=col_ids, row_labels=row_labels, col_labels=col_labels, specs=specs,
                     n_forwards=1 + math.ceil(len(flat) / chunk_size) if flat else 2)


# ---- ids and labels --------------------------------------------------------------------------------
def _position_ids(adapter: ModelAdapter) -> tuple[list[dict], list[str]]:
    lay = adapter.layout
    ids = [{"position": p, "kind": lay.kinds[p], "step": lay.timestep_of[p]} for p in range(lay.n_tokens)]
    return ids, lay.labels()


def _layers(adapter: ModelAdapter, layers) -> list[int]:
    L = C.n_layers(adapter)
    if layers is None:
        return list(range(L))
    out = [int(l) for l in layers]
    bad = [l for l in out if not 0 <= l < L]
    if bad or not out:
        raise ValueError(f"expected layers in [0, {L - 1}] (a non-empty list), got {list(layers)!r}")
    return out


def _heads(adapter: ModelAdapter, layers) -> tuple[list[tuple[int, int]], list[dict], list[str]]:
    pairs = [(l, h) for l in _layers(adapter, layers) for h in range(C.n_heads(adapter))]
    return pairs, [{"layer": l, "head": h} for l, h in pairs], [head_id(l, h).name for l, h in pairs]


def _inputs(inputs: Sequence[str]) -> list[str]:
    out = list(inputs)
    bad = [i for i in out if i not in _INPUT_HOOKS]
    if bad or not out:
        raise ValueError(f"expected inputs from {tuple(_INPUT_HOOKS)} (non-empty), got {tuple(inputs)!r}")
    return out


# ---- scans -----------------------------------------------------------------------------------------
def token_blocks(adapter: ModelAdapter, blocks: str = "kind") -> tuple[list[list[int]], list[dict], list[str]]:
    """Token blocks of the layout: ``"kind"``: the RTG, state and action tokens of every timestep (a
    kind the layout lacks is left out), then all; ``"timestep"``: each timestep's tokens, then all.
    Returns ``(positions per block, ids, labels)``."""
    lay = adapter.layout
    allp = list(range(lay.n_tokens))
    if blocks == "kind":
        kinds = [k for k in ("rtg", "state", "action") if lay.positions(k)]
        pos = [lay.positions(k) for k in kinds]
        ids: list[dict[str, Any]] = [{"block": k, "positions": p} for k, p in zip(kinds, pos)]
        labels = [f"{KIND_LETTER[k]} tokens" for k in kinds]
    elif blocks == "timestep":
        pos = [[p for p in allp if lay.timestep_of[p] == t] for t in range(lay.n_timesteps)]
        ids = [{"block": f"step {t + 1}", "step": t, "positions": p} for t, p in enumerate(pos)]
        labels = [f"step {t + 1}" for t in range(lay.n_timesteps)]
    else:
        raise ValueError(f"expected blocks 'kind' or 'timestep', got {blocks!r}")
    return pos + [allp], ids + [{"block": "all", "positions": allp}], labels + ["all tokens"]


def layer_block_scan(adapter: ModelAdapter, clean, corrupted, a, b=None, *, component: str = "resid",
                     blocks: str = "kind", chunk_size: int = 512) -> PatchScan:
    """Layer × token block: patch ``component`` of one layer at the positions of one block.

    Args:
        component: ``"resid"`` (rows ``resid_pre`` of each layer, then ``resid_post`` of the last:
            ``L + 1`` rows), ``"attn_out"`` or ``"mlp_out"`` (``L`` rows).
        blocks: see :func:`token_blocks`.
    Returns: :class:`PatchScan` ``[rows, n_blocks + 1]`` (the last column: all tokens).
    """
    L = C.n_layers(adapter)
    if component == "resid":
        hooks = [hk.resid_pre(l) for l in range(L)] + [hk.resid_post(L - 1)]
        row_ids = [{"layer": l, "hook": "resid_pre"} for l in range(L)] + [{"layer": L - 1, "hook": "resid_post"}]
    elif component in ("attn_out", "mlp_out"):
        hooks = [(hk.attn_out if component == "attn_out" else hk.mlp_out)(l) for l in range(L)]
        row_ids = [{"layer": l, "hook": component} for l in range(L)]
    else:
        raise ValueError(f"expected component 'resid', 'attn_out' or 'mlp_out', got {component!r}")
    pos, col_ids, col_labels = token_blocks(adapter, blocks)
    specs = [[[(n, p, None)] for p in pos] for n in hooks]
    return run_scan(adapter, clean, corrupted, a, b, specs, kind="layer_block", row_ids=row_ids, col_ids=col_ids,
                    row_labels=[f"{r['hook']} L{r['layer']}" for r in row_ids], col_labels=col_labels,
                    chunk_size=chunk_size)


def head_scan(adapter: ModelAdapter, clean, corrupted, a, b=None, *, chunk_size: int = 512) -> PatchScan:
    """Layer × head: patch one head's output (``hook_z``) at every position. ``[L, H]``."""
    L, H = C.n_layers(adapter), C.n_heads(adapter)
    specs = [[[(hk.hook_z(l), None, h)] for h in range(H)] for l in range(L)]
    return run_scan(adapter, clean, corrupted, a, b, specs, kind="head", row_ids=[{"layer": l} for l in range(L)],
                    col_ids=[{"head": h} for h in range(H)], row_labels=[f"L{l}" for l in range(L)],
                    col_labels=[f"H{h}" for h in range(H)], chunk_size=chunk_size)


def head_position_scan(adapter: ModelAdapter, clean, corrupted, a, b=None, *, layers=None,
                       chunk_size: int = 512) -> PatchScan:
    """Head × position: patch one head's output (``hook_z``) at one position. ``[len(layers)·H, P]``."""
    pairs, row_ids, row_labels = _heads(adapter, layers)
    col_ids, col_labels = _position_ids(adapter)
    specs = [[[(hk.hook_z(l), c["position"], h)] for c in col_ids] for l, h in pairs]
    return run_scan(adapter, clean, corrupted, a, b, specs, kind="head_position", row_ids=row_ids, col_ids=col_ids,
                    row_labels=row_labels, col_labels=col_labels, chunk_size=chunk_size)


def head_input_scan(adapter: ModelAdapter, clean, corrupted, a, b=None, *, inputs: Sequence[str] = ("q", "k", "v"),
                    layers=None, chunk_size: int = 512) -> PatchScan:
    """Head × input: patch one head's query, key or value (``hook_q/k/v``; ``"z"``: its output) at
    every position. ``[len(layers)·H, len(inputs)]``."""
    pairs, row_ids, row_labels = _heads(adapter, layers)
    ins = _inputs(inputs)
    specs = [[[(_INPUT_HOOKS[i](l), None, h)] for i in ins] for l, h in pairs]
    return run_scan(adapter, clean, corrupted, a, b, specs, kind="head_input", row_ids=row_ids,
                    col_ids=[{"input": i} for i in ins], row_labels=row_labels, col_labels=ins, chunk_size=chunk_size)


def head_input_position_scan(adapter: ModelAdapter, clean, corrupted, a, b=None, *,
                             inputs: Sequence[str] = ("q", "k", "v"), layers=None,
                             chunk_size: int = 512) -> PatchScan:
    """(Head, input) × position: patch one head's ``hook_q/k/v`` (or ``z``) at one position.
    ``[len(layers)·H·len(inputs), P]``, rows head-major (``L0H0 q, L0H0 k, ...``)."""
    pairs, _, _ = _heads(adapter, layers)
    ins = _inputs(inputs)
    rows = [(l, h, i) for l, h in pairs for i in ins]
    col_ids, col_labels = _position_ids(adapter)
    specs = [[[(_INPUT_HOOKS[i](l), c["position"], h)] for c in col_ids] for l, h, i in rows]
    return run_scan(adapter, clean, corrupted, a, b, specs, kind="head_input_position",
                    row_ids=[{"layer": l, "head": h, "input": i} for l, h, i in rows], col_ids=col_ids,
                    row_labels=[f"L{l}H{h} {i}" for l, h, i in rows], col_labels=col_labels, chunk_size=chunk_size)


def _neuron_positions(adapter: ModelAdapter, positions) -> list[int | None]:
    P = adapter.layout.n_tokens
    if positions == "prediction":
        return [adapter.layout.prediction_position]
    if positions == "all":
        return [None]
    out: list[int | None] = [int(p) for p in positions]
    if not out or any(not 0 <= p < P for p in out):  # type: ignore[operator]
        raise ValueError(f"expected positions 'prediction', 'all' or a non-empty list in [0, {P - 1}], got {positions!r}")
    return out


def neuron_scan(adapter: ModelAdapter, clean, corrupted, a, b=None, *, layers=None, neurons=None,
                positions="prediction", chunk_size: int = 512) -> PatchScan:
    """(Layer, position) × neuron: patch one MLP neuron's activation (``mlp.hook_post[..., i]``).

    Args:
        layers: layers to scan (default all); neurons: neuron indices (default all ``d_mlp``).
        positions: ``"prediction"`` (the last state token), ``"all"`` (every position at once, one
            row per layer) or a list of positions (one row per layer and position).
    Returns: :class:`PatchScan` ``[len(layers)·len(positions), len(neurons)]``.
    """
    D = C.d_mlp(adapter)
    ls = _layers(adapter, layers)
    ns = list(range(D)) if neurons is None else [int(n) for n in neurons]
    if not ns or any(not 0 <= n < D for n in ns):
        raise ValueError(f"expected neurons in [0, {D - 1}] (a non-empty list), got {neurons!r}")
    ps = _neuron_positions(adapter, positions)
    rows = [(l, p) for l in ls for p in ps]
    labels = adapter.layout.labels()
    specs = [[[(hk.mlp_post(l), p, n)] for n in ns] for l, p in rows]
    return run_scan(adapter, clean, corrupted, a, b, specs, kind="neuron",
                    row_ids=[{"layer": l, "position": p} for l, p in rows], col_ids=[{"neuron": n} for n in ns],
                    row_labels=[f"L{l} {'all' if p is None else labels[p]}" for l, p in rows],
                    col_labels=[f"N{n}" for n in ns], chunk_size=chunk_size)

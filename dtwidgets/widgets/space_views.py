"""Existing widgets fed with the results of the spaces analyses (``dtwidgets.analysis.spaces`` and
friends, see docs/spaces.md): each function takes one result and returns a ready widget.

=============================  ==============================================================
:func:`pca_scatter`            :class:`~dtwidgets.analysis.PCAResult` -> :class:`ScatterView`
:func:`congruence_heatmap`     the top neurons' unembedding congruence ``[k, A]`` -> :class:`MatrixHeatmap`
:func:`next_layer_heatmap`     ``W_out[l] · W_in[l+1]`` of the top pairs -> :class:`MatrixHeatmap`
:func:`cosine_heatmap`         a DirectionStore's cosines in one space -> :class:`MatrixHeatmap`
:func:`head_norm_heatmap`      per-head Frobenius norms ``[L, H]`` of one weight -> :class:`MatrixHeatmap`
:func:`parameter_bars`         one statistic of every weight -> :class:`ContributionBars`
:func:`projection_bars`        one row's projections and cosines -> :class:`ContributionBars`
=============================  ==============================================================
"""
from __future__ import annotations

import numpy as np

from ..analysis.congruence import top_rows
from .contribution_bars import ContributionBars
from .matrix_heatmap import MatrixHeatmap
from .scatter_view import ScatterView

__all__ = ["pca_scatter", "congruence_heatmap", "next_layer_heatmap", "cosine_heatmap", "head_norm_heatmap",
           "parameter_bars", "projection_bars"]


def pca_scatter(result, dims: int = 2, **kwargs) -> ScatterView:
    """:meth:`ScatterView.from_pca`."""
    return ScatterView.from_pca(result, dims=dims, **kwargs)


def congruence_heatmap(congruence, k: int = 20, cosine: bool = False, **kwargs) -> MatrixHeatmap:
    """The ``k`` neurons (all layers) whose output is read most by some action: rows = neurons, columns =
    actions, values ``out_action`` (logits per unit activation) or, with ``cosine``, ``out_action_cos``."""
    M = congruence.out_action_cos if cosine else congruence.out_action
    flat = M.reshape(-1, M.shape[-1])
    labels = [n for row in congruence.neuron_labels for n in row]
    top = top_rows(flat, k)
    what = "cos(W_out, W_action)" if cosine else "W_out · W_action (logit per unit activation)"
    kw = dict(values=flat[top], row_labels=[labels[i] for i in top], col_labels=list(congruence.action_names),
              title=f"unembedding congruence: {what}", x_label="action", y_label="neuron")
    return MatrixHeatmap(**{**kw, **kwargs})


def next_layer_heatmap(congruence, layer: int = 0, k: int = 16, gate: bool = False, **kwargs) -> MatrixHeatmap:
    """``W_out[layer] · W_in[layer + 1]`` (``gate``: ``W_gate[layer + 1]``) restricted to the ``k`` neurons of
    each side with the largest entries: rows = writers in ``layer``, columns = readers in ``layer + 1``."""
    M = congruence.out_next_gate if gate else congruence.out_next_in
    if M is None or not 0 <= int(layer) < M.shape[0]:
        n = 0 if M is None else M.shape[0]
        raise ValueError(f"layer: expected a layer with a next layer{' (gated MLP)' if gate else ''} in [0, {n}), got {layer}")
    m = M[int(layer)]
    rows, cols = top_rows(m, k), top_rows(m.T, k)
    names = congruence.neuron_labels
    kw = dict(values=m[np.ix_(rows, cols)], row_labels=[names[layer][i] for i in rows],
              col_labels=[names[layer + 1][j] for j in cols], x_label=f"layer {layer + 1} neuron",
              y_label=f"layer {layer} neuron", title=f"W_out[{layer}] · {'W_gate' if gate else 'W_in'}[{layer + 1}]")
    return MatrixHeatmap(**{**kw, **kwargs})


def cosine_heatmap(store, space: str = "residual", **kwargs) -> MatrixHeatmap:
    """:meth:`DirectionStore.cosine_matrix` of ``space`` as a symmetric heatmap on [-1, 1]."""
    names, M = store.cosine_matrix(space)
    kw = dict(values=M, row_labels=names, col_labels=names, vmax=1.0, annotate=len(names) <= 12,
              title=f"cosine similarity of the saved directions in {space}")
    return MatrixHeatmap(**{**kw, **kwargs})


def head_norm_heatmap(stats, weight: str = "W_O", **kwargs) -> MatrixHeatmap:
    """Per-head Frobenius norms ``[L, H]`` of ``weight`` (``W_Q``, ``W_K``, ``W_V`` or ``W_O``)."""
    if weight not in stats.head_norms:
        raise ValueError(f"weight: expected one of {sorted(stats.head_norms)}, got {weight!r}")
    M = stats.head_norms[weight]
    kw = dict(values=M, row_labels=[f"L{l}" for l in range(M.shape[0])], col_labels=[f"H{h}" for h in range(M.shape[1])],
              annotate=True, title=f"‖{weight}‖_F per head", x_label="head", y_label="layer")
    return MatrixHeatmap(**{**kw, **kwargs})


PARAMETER_STATS = ("frobenius", "mean", "std", "min", "max")


def parameter_bars(stats, stat: str = "frobenius", **kwargs) -> ContributionBars:
    """One statistic (``frobenius``, ``mean``, ``std``, ``min``, ``max``) of every weight, one bar each,
    grouped by layer (``"embed / head"`` for the weights outside the blocks)."""
    if stat not in PARAMETER_STATS:
        raise ValueError(f"stat: expected one of {PARAMETER_STATS}, got {stat!r}")
    groups = [n.split(".", 1)[0] if n.startswith("L") and "." in n else "embed / head" for n in stats.names]
    kw = dict(values=np.asarray(getattr(stats, stat), np.float32), labels=stats.names, groups=groups,
              series_names=[stat], title=f"{stat} of each weight")
    return ContributionBars(**{**kw, **kwargs})


def projection_bars(projection, row: int = 0, **kwargs) -> ContributionBars:
    """Row ``row`` of a :class:`~dtwidgets.analysis.ResidualProjection`: the projection (residual units)
    and the cosine of each component, side by side on their own axes."""
    if not 0 <= int(row) < projection.projection.shape[0]:
        raise ValueError(f"row: expected a window row in [0, {projection.projection.shape[0]}), got {row}")
    vals = np.stack([projection.projection[int(row)], projection.cosine[int(row)]])
    kw = dict(values=vals, series_names=["projection", "cosine"], labels=projection.labels, groups=projection.kinds,
              separate_axes=True, title=f"residual at {projection.hook} (token {projection.position}) along each output")
    return ContributionBars(**{**kw, **kwargs})

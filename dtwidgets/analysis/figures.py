"""Static plotly figures of the circuit analyses (for papers): ``result.figure()`` calls these.

Plain ``plotly.graph_objects.Figure`` objects — never a ``FigureWidget`` — so they render in any
frontend and export with ``fig.write_html(path, include_plotlyjs=True)`` (the library inlined, no
CDN) or ``fig.write_image`` (needs kaleido). Every text that came from a model or a file goes into
plotly as data (escaped by plotly), never as raw HTML.
"""
from __future__ import annotations

import numpy as np

ACTION_COLOURS = ("#1f77b4", "#d62728", "#2ca02c", "#9467bd", "#ff7f0e", "#8c564b", "#7f7f7f")
_DIR_OFFSET = {0: (0.28, 0.0), 1: (0.0, 0.28), 2: (-0.28, 0.0), 3: (0.0, -0.28)}
_DIR_SYMBOL = {0: "triangle-right", 1: "triangle-down", 2: "triangle-left", 3: "triangle-up"}


def _go():
    import plotly.graph_objects as go

    return go


def policy_map_figure(pm, *, title: str | None = None):
    """Grid with one marker per placement (cell × facing): colour = most likely action
    (for a difference map: the action whose probability changed most, red/blue by sign), opacity =
    its probability (|change|). Walls and objects are drawn as grey squares."""
    go = _go()
    g = pm.grid
    W, H = g.shape[:2]
    fig = go.Figure()
    occ = (g[..., 0] != 1) & (g[..., 0] != 10)
    xs, ys = np.nonzero(occ)
    fig.add_trace(go.Scatter(x=xs, y=ys, mode="markers", marker=dict(symbol="square", size=28, color="#bbbbbb"),
                             hoverinfo="skip", showlegend=False))
    diff = pm.kind == "difference"
    for a, name in enumerate(pm.action_names):
        best = np.argmax(np.abs(pm.probs), 1) if diff else np.argmax(pm.probs, 1)
        rows = np.flatnonzero(best == a)
        if not len(rows):
            continue
        val = pm.probs[rows, a]
        off = np.array([_DIR_OFFSET[int(d)] for d in pm.facings[rows]]).reshape(-1, 2)
        colour = ["#d62728" if v > 0 else "#1f77b4" for v in val] if diff else ACTION_COLOURS[a % 7]
        hover = [", ".join(f"{n} {p:+.2f}" if diff else f"{n} {p:.2f}" for n, p in zip(pm.action_names, pm.probs[r]))
                 for r in rows]
        fig.add_trace(go.Scatter(
            x=pm.cells[rows, 0] + off[:, 0], y=pm.cells[rows, 1] + off[:, 1], mode="markers", name=str(name),
            marker=dict(symbol=[_DIR_SYMBOL[int(d)] for d in pm.facings[rows]], size=11, color=colour,
                        opacity=np.clip(np.abs(val), 0.05, 1.0).astype(float).tolist(), line=dict(width=0)),
            text=hover, hovertemplate="(%{x:.0f}, %{y:.0f}) %{text}<extra>" + str(name) + "</extra>"))
    fig.update_layout(title=title or pm.label, xaxis=dict(range=[-0.5, W - 0.5], dtick=1, constrain="domain"),
                      yaxis=dict(range=[H - 0.5, -0.5], dtick=1, scaleanchor="x"), width=520, height=520,
                      plot_bgcolor="white", legend_title_text="most likely action" if not diff else "largest change")
    return fig


def steering_figure(scan, *, title: str | None = None):
    """Action probability against the steering coefficient, one line per action."""
    go = _go()
    fig = go.Figure([go.Scatter(x=scan.coefficients, y=scan.probs[:, i], mode="lines+markers", name=str(n),
                                line=dict(color=ACTION_COLOURS[i % 7]))
                     for i, n in enumerate(scan.action_names)])
    fig.update_layout(title=title or f"steering: {scan.direction_label} at {scan.hook}", xaxis_title="coefficient",
                      yaxis_title="probability", yaxis_range=[0, 1])
    return fig


def _heatmap(z, x, y, title, zmid=0.0, colorscale="RdBu_r", zmin=None, zmax=None):
    go = _go()
    fig = go.Figure(go.Heatmap(z=z, x=list(map(str, x)), y=list(map(str, y)), colorscale=colorscale, zmid=zmid,
                               zmin=zmin, zmax=zmax))
    fig.update_layout(title=title, yaxis=dict(autorange="reversed"))
    return fig


def path_patching_figure(pp, *, title: str | None = None):
    """Sender × receiver heatmap of the path effects (logit units; blank where no path exists)."""
    return _heatmap(pp.effects, pp.receiver_labels, pp.sender_labels,
                    title or f"direct path patching ({pp.pair_label}): effect of each path")


def composition_figure(cs, *, title: str | None = None):
    """Three heatmaps (Q, K, V composition), writer head rows × reader head columns."""
    from plotly.subplots import make_subplots

    go = _go()
    fig = make_subplots(1, 3, subplot_titles=("Q-composition", "K-composition", "V-composition"))
    vmax = float(max(cs.q.max(), cs.k.max(), cs.v.max(), 1e-9))
    for i, m in enumerate((cs.q, cs.k, cs.v)):
        fig.add_trace(go.Heatmap(z=m, x=cs.head_labels, y=cs.head_labels, zmin=0, zmax=vmax, colorscale="Blues",
                                 showscale=i == 2), 1, i + 1)
        fig.update_yaxes(autorange="reversed", row=1, col=i + 1)
    fig.update_layout(title=title or "composition scores (writer → reader)")
    return fig


def _channel_grid(maps, channel_names, row_names, title):
    """``maps [R, C, W, H]`` as an R × C grid of heatmaps (x across, y down, as the agent's view)."""
    from plotly.subplots import make_subplots

    go = _go()
    R, Cn = maps.shape[:2]
    fig = make_subplots(R, Cn, subplot_titles=[f"{r}: {c}" for r in row_names for c in channel_names],
                        horizontal_spacing=0.02, vertical_spacing=0.06)
    vmax = float(np.nanmax(np.abs(maps))) or 1.0
    for r in range(R):
        for c in range(Cn):
            fig.add_trace(go.Heatmap(z=maps[r, c].T, zmid=0, zmin=-vmax, zmax=vmax, colorscale="RdBu_r",
                                     showscale=(r == 0 and c == Cn - 1)), r + 1, c + 1)
            fig.update_yaxes(autorange="reversed", showticklabels=False, row=r + 1, col=c + 1)
            fig.update_xaxes(showticklabels=False, row=r + 1, col=c + 1)
    fig.update_layout(title=title, height=max(300, 180 * R), width=max(500, 160 * Cn))
    return fig


def head_svd_figure(svd, *, title: str | None = None):
    """Input maps of the top singular directions (rows) per channel, singular values in the titles."""
    rows = [f"σ{i + 1}={s:.3g}" for i, s in enumerate(svd.singular_values[:svd.input_maps.shape[0]])]
    maps = svd.input_maps if svd.input_maps.shape[1] <= 6 else svd.input_maps[:, :6]
    names = svd.channel_names[:maps.shape[1]]
    return _channel_grid(maps, names, rows, title or f"L{svd.layer}H{svd.head} {svd.kind.upper()} SVD: input side")


def virtual_weights_figure(vw, *, title: str | None = None):
    """One row of channel maps per action."""
    maps = vw.values if vw.values.shape[1] <= 6 else vw.values[:, :6]
    return _channel_grid(maps, vw.channel_names[:maps.shape[1]], list(vw.action_names), title or vw.path)


def neuron_figure(nv, *, title: str | None = None):
    """Top neurons' direct shares as horizontal bars (hover: activation and action read-out)."""
    go = _go()
    hover = [f"activation {a:.3g}; " + ", ".join(f"{n} {v:+.3g}" for n, v in zip(nv.action_names, o))
             for a, o in zip(nv.activation, nv.output_actions)]
    fig = go.Figure(go.Bar(x=nv.attribution, y=nv.labels, orientation="h", text=hover,
                           hovertemplate="%{y}: %{x:.3g}<br>%{text}<extra></extra>",
                           marker_color=["#d62728" if v > 0 else "#1f77b4" for v in nv.attribution]))
    fig.update_layout(title=title or f"top neurons ({nv.pair_label})", yaxis=dict(autorange="reversed"),
                      xaxis_title="direct share (logits)")
    return fig


def logit_lens_figure(lens, *, title: str | None = None):
    """The logit lens (:class:`~dtwidgets.analysis.LogitLens`): preference after each sublayer."""
    go = _go()
    fig = go.Figure(go.Scatter(x=lens.labels, y=lens.values, mode="lines+markers"))
    fig.update_layout(title=title or f"logit lens ({lens.pair_label})", yaxis_title="logit difference")
    return fig


def shift_figure(res, *, title: str | None = None):
    """A :class:`~dtwidgets.data.shift.ShiftResult`'s outcome fractions (goal / collision / timeout, stacked) of every environment, one panel per RTG;
    a plain ``plotly.graph_objects.Figure`` (names go in as data, escaped by plotly)."""
    import plotly.graph_objects as go
    from plotly.subplots import make_subplots

    from ..data.shift import OUTCOME_LABELS

    R = len(res.behaviour.rtgs)
    fig = make_subplots(1, R, subplot_titles=[f"RTG {r:g}" for r in res.behaviour.rtgs], shared_yaxes=True)
    colours = dict(zip(OUTCOME_LABELS, (ACTION_COLOURS[2], ACTION_COLOURS[1], ACTION_COLOURS[6])))
    for r in range(R):
        cells = [res.behaviour.cells[(n, r)] for n in res.names]
        for k in OUTCOME_LABELS:
            fig.add_trace(go.Bar(x=list(res.names), y=[c.outcome_fractions[k] for c in cells], name=k,
                                 marker_color=colours[k], showlegend=r == 0, legendgroup=k,
                                 customdata=[c.outcome_counts[k] for c in cells],
                                 hovertemplate="%{x}: %{y:.0%} (%{customdata} episodes)<extra>" + k + "</extra>"),
                          1, r + 1)
    fig.update_layout(barmode="stack", yaxis_tickformat=".0%", width=max(480, 120 + 90 * len(res.names) * R), height=420,
                      title=title or f"outcomes under distribution shift ({res.behaviour.n_episodes} episodes each, "
                                     f"{res.behaviour.env_id})")
    return fig

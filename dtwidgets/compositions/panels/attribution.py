"""The Explorer's "Attribution" tab: direct logit attribution, the logit lens and per-neuron shares.

    panel = AttributionPanel(ctx)
    panel.update(ctx.compute(window))

Three views of one question — *where does the preference ``logit[a] − logit[b]`` come from?*

* direct logit attribution (every component's share; follows the RTG slider client-side) and each
  head's share split by source token — both from the shared per-state bundle
  (:func:`~dtwidgets.analysis.bundle.analyze_state`);
* the logit lens (:func:`~dtwidgets.analysis.logit_lens`): the preference read after the embeddings
  and after each attention / MLP sublayer;
* every MLP neuron's direct share (:func:`~dtwidgets.analysis.logit_attribution` with
  ``per_neuron=True``) next to its activation (``mlp.hook_post``), as a list sorted and filtered in
  the panel.

The lens and the neurons come from the same bundle: the panel declares the extras ``Lens()`` and
``Neurons()``, and the bundle adds their hooks (``resid_pre/mid/post``, ``mlp.hook_post``, row 0
only) to its one forward only while this tab is shown — the tab runs no forward of its own.
"""
from __future__ import annotations

import ipywidgets as W
import numpy as np

from ...analysis import _common as C
from ...analysis.extras import Extra, Lens, Neurons
from ...widgets import ContributionBars, MatrixHeatmap
from ...widgets._traits import escape_braces
from ..token_names import component_templates, token_names
from ..updates import assign
from .base import AnalysisContext, Panel, PanelData, esc, note

SORTS = (("|share| (largest first)", "abs"), ("share (most positive first)", "desc"),
         ("share (most negative first)", "asc"), ("activation (largest first)", "act"))
"""Options of the neuron list's sort dropdown: (label, key of :func:`neuron_rows`)."""
LIMITS = (("top 15", 15), ("top 30", 30), ("top 100", 100), ("all", 0))


NO_MLP = "This model has no MLP: its blocks are attention only, so there are no neurons to list."


def neuron_labels(n_layers: int, d_mlp: int) -> list[str]:
    """``L{l}N{n}`` for every MLP neuron, layer-major (the row order of :func:`neuron_order`)."""
    return [f"L{l}N{n}" for l in range(n_layers) for n in range(d_mlp)]


def neuron_order(values: np.ndarray, activations: np.ndarray, sort: str = "abs", filter_text: str = "",
                 limit: int = 30) -> tuple[np.ndarray, int]:
    """Pick and order rows of the per-neuron list.

    Args:
        values, activations: ``[L, d_mlp]`` direct shares (logit units) and activations.
        sort: ``abs`` (largest ``|share|`` first), ``desc``, ``asc`` or ``act`` (largest activation first).
        filter_text: keep labels ``L{l}N{n}`` containing it (e.g. ``"L1"`` or ``"N12"``; blank keeps all).
        limit: at most this many rows (0 = all). With a limit, silent neurons (activation and share both
            exactly 0: they take no part in this decision) are left out of the rows.

    Returns:
        ``(order [k], n_matching)``: flat neuron indices ``l * d_mlp + n`` (into :func:`neuron_labels`);
        ties keep neuron order; ``n_matching`` counts silent neurons too.
    """
    if sort not in ("abs", "desc", "asc", "act"):
        raise ValueError(f"neuron_rows: expected sort in abs / desc / asc / act, got {sort!r}")
    labels = neuron_labels(*values.shape)
    v, a = values.reshape(-1), activations.reshape(-1)
    text = filter_text.strip()
    keep = np.flatnonzero([text in s for s in labels]) if text else np.arange(len(v))
    key = {"abs": -np.abs(v), "desc": -v, "asc": v, "act": -a}[sort][keep]
    order = keep[np.argsort(key, kind="stable")]
    if limit:
        order = order[(v[order] != 0) | (a[order] != 0)][:limit]
    return order, len(keep)


def neuron_rows(values: np.ndarray, activations: np.ndarray, sort: str = "abs", filter_text: str = "",
                limit: int = 30) -> tuple[list[str], np.ndarray, np.ndarray, int]:
    """:func:`neuron_order` as ``(labels, shares [k], activations [k], n_matching)``."""
    order, n = neuron_order(values, activations, sort, filter_text, limit)
    labels = neuron_labels(*values.shape)
    return [labels[i] for i in order], values.reshape(-1)[order], activations.reshape(-1)[order], n


class AttributionPanel(Panel):
    key: str = "attribution"
    title: str = "Attribution"
    extras: tuple[Extra, ...] = (Lens(), Neurons())

    def __init__(self, ctx: AnalysisContext):
        super().__init__(ctx)
        self.bars = ContributionBars(series_names=["contribution"], title="direct logit attribution",
                                     follow_group=ctx.follow_group, show_sum=True)
        self.sources = MatrixHeatmap(title="head contribution by source token", x_label="source token",
                                     y_label="head")
        self.lens = ContributionBars(series_names=["preference"], title="logit lens")
        self.sort = W.Dropdown(options=SORTS, value="abs", description="sort",
                               layout=W.Layout(width="auto", max_width="100%"))
        self.filter = W.Text(placeholder="e.g. L0 or N12", description="filter",
                             layout=W.Layout(width="auto", max_width="100%"))
        self.limit = W.Dropdown(options=LIMITS, value=30, description="show",
                                layout=W.Layout(width="auto", max_width="100%"))
        self.neuron_note = W.HTML()
        self.neurons = ContributionBars(series_names=["direct share (logits)", "activation (mlp.hook_post)"],
                                        separate_axes=True, title="direct share and activation of each neuron shown",
                                        layout=W.Layout(width="auto", min_width="0"))
        """Each neuron shown: its direct share (series 0) and activation (series 1), one axis each."""
        row = lambda *c: W.Box(list(c), layout=W.Layout(display="flex", flex_flow="row wrap", width="auto",  # noqa: E731
                                                        min_width="0", align_items="flex-start"))
        self.neuron_controls = row(self.sort, self.filter, self.limit)
        self.widget.children = [self.bars, self.sources, self.lens, self.neuron_note, self.neuron_controls, self.neurons]
        self._neurons: tuple[np.ndarray, np.ndarray, np.ndarray] | None = None
        self._pair_label = ""
        self._labels: list[str] = []
        for w in (self.sort, self.filter, self.limit):
            w.observe(lambda _change: self._draw_neurons(), names="value")

    def update(self, data: PanelData) -> None:
        lensed = data.result(Lens())  # both come from the state's one forward when it was asked with this panel
        lens, acts, at = lensed.lens, lensed.neuron_activations, data.result(Neurons())
        self._draw_attribution(data)
        ln = ("(final layer norm recomputed at each point)" if C.normalization(self.ctx.adapter) is not None
              else "(the model has no final layer norm: each bar reads the residual stream directly)")
        assign(self.lens, values=lens.values[None], labels=lens.labels,
               title=(f"logit lens: {lens.pair_label} read after the embeddings and after each sublayer "
                      f"{ln}; the last bar is the model's logit difference"))
        self._neurons = (at.neuron_values, acts, at.mlp_bias_values)
        self._pair_label = at.pair_label
        self._draw_neurons()

    def _draw_attribution(self, data: PanelData) -> None:
        """The DLA bars and the per-source heatmap. Their token names (``s₉``) are templates (``s{25}``) sent
        with the model's token order; per state only ``steps`` (the episode step of each token) changes."""
        at, scan = data.state.attribution, data.state.rtg_scan
        tokens, steps = token_names(data, at.source_labels, self.ctx.adapter)
        # the widget appends " = <sum>" from the values it draws (so a slider preview stays consistent);
        # the sum equals the model's logit difference, which the preferences widget shows
        title = (f"{escape_braces(at.pair_label)} at {tokens[at.position]}: logit difference as the sum of "
                 f"{len(at.values)} direct contributions")
        follows = list(scan.ids) == list(at.ids)  # the scan decomposes the same components
        labels, _ = component_templates(at.ids, data, self.ctx.adapter)
        assign(self.bars, values=at.values[None], labels=labels, groups=at.kinds, rtg=data.rtg, title=title, steps=steps,
               scan_rtgs=scan.rtgs if follows else np.zeros(0, np.float32),
               scan_values=scan.contributions if follows else np.zeros((0, 0), np.float32))
        if at.per_source is not None:
            assign(self.sources, values=at.per_source, row_labels=[escape_braces(h) for h in at.head_labels],
                   col_labels=tokens, steps=steps)

    def _draw_neurons(self) -> None:
        """The neuron list: its labels (every neuron, fixed by the model) are sent once; an update sends
        the shares and activations of the rows shown ``[2, k]`` and which neurons they are (``rows``)."""
        if self._neurons is None:
            return
        values, acts, _bias = self._neurons
        self.neuron_controls.layout.display = self.neurons.layout.display = "" if values.size else "none"
        if not values.size:
            self.neuron_note.value = note(NO_MLP).value
            return
        order, n = neuron_order(values, acts, sort=self.sort.value, filter_text=self.filter.value, limit=self.limit.value)
        text = self.filter.value.strip()
        # the note depends only on the controls (not on the state), so it is not re-sent at every step
        limit = self.limit.value
        shown = (f"up to {limit} of {n} neurons" if limit else f"all {n} neurons") + \
            (f" matching “{text}” (of {values.size})" if text else "")
        if limit:
            shown += "; neurons whose activation and share are both 0 are left out (“all” lists them)"
        self.neuron_note.value = (
            "<div style='font-size:12px;color:#333'><b>MLP neurons</b> — each neuron's direct share of "
            f"{esc(self._pair_label)} (activation × W_out, read through the final layer norm) and its activation "
            f"at the prediction position; with each MLP's b_out they add up to its bar above. Showing {esc(shown)}.</div>")
        if len(self._labels) != values.size:
            self._labels = neuron_labels(*values.shape)
        table = np.stack([values.reshape(-1)[order], acts.reshape(-1)[order]]).astype(np.float32)
        assign(self.neurons, values=table, labels=self._labels, rows=order)


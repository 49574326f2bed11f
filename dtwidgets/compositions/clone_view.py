"""``CloneComparison``: teacher and clone side by side on the same states."""
from __future__ import annotations

import html

import ipywidgets as W
import numpy as np

from ..widgets import ContributionBars, ProbeMatrix


class CloneComparison(W.VBox):
    """Attribution and ablation bars of both models (mean over the compared states, one series each),
    optionally their probe matrices, and a summary of which components match.

    Args:
        comparison: a :class:`~dtwidgets.analysis.model_comparison.ModelComparison`.
        suites: optional ``(ProbeSuite, ProbeSuite)`` of the two models on the same steps.
    """

    def __init__(self, comparison, suites=None):
        c = comparison
        self.attribution = ContributionBars(values=c.attribution.mean(1).astype(np.float32), labels=c.labels,
                                            series_names=list(c.names),
                                            title=f"direct logit attribution of {c.pair_label} (mean over states)")
        self.ablation = ContributionBars(values=c.ablation.mean(1).astype(np.float32), labels=c.ablation_labels,
                                         series_names=list(c.names),
                                         title=f"change of {c.pair_label} when ablated alone (mean over states)")
        rows = "".join(
            f"<tr><td>{html.escape(comp)}</td><td>{_f(c.ablation_corr[j])}</td>"
            f"<td>{_f(c.attribution_corr[c.labels.index(comp)]) if comp in c.labels else '—'}</td>"
            f"<td>{'match' if c.matches[comp] else 'differs'}</td></tr>"
            for j, comp in enumerate(c.ablation_labels))
        self.summary = W.HTML(f"<p>{html.escape(c.summary())}</p><table><tr><th>component</th><th>ablation corr"
                              f"</th><th>attribution corr</th><th></th></tr>{rows}</table>")
        for w in (self.attribution, self.ablation):
            w.layout = W.Layout(flex="1 1 420px", min_width="0")  # share the row, wrap below ~860 px
        kids = [self.summary, _row([self.attribution, self.ablation])]
        if suites is not None:
            self.probes = [ProbeMatrix.from_suite(s, title=f"{n}: probe selectivity") for s, n in zip(suites, c.names)]
            kids.append(_row(self.probes))
        super().__init__(kids, layout=W.Layout(width="auto", min_width="0"))


def _row(children) -> W.Box:
    """A row that wraps when narrow (nothing clipped at 1100 px with the file browser open)."""
    return W.Box(list(children), layout=W.Layout(display="flex", flex_flow="row wrap", width="auto", min_width="0",
                                                align_items="flex-start"))


def _f(v) -> str:
    return "—" if not np.isfinite(v) else f"{v:.2f}"

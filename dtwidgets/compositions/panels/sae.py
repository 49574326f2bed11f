"""The Explorer's SAE tab: features active in the current state, their direct shares of the
preference, and live zero / clamp edits of one feature with the resulting action probabilities.

    panel = SAEPanel(ctx, sae)              # ctx: panels.AnalysisContext; same interface as the other panels
    panel.update(ctx.compute(window))
    SAEPanel.for_sae(sae)                   # a Panel class with the one-argument constructor ``cls(ctx)``

Shares come from :func:`dtwidgets.sae.feature_shares` (they sum with the decoder-bias and error terms
to the hook's own direct share); edits run the model with the edited reconstruction plus the
unchanged error term (:func:`dtwidgets.sae.edited_logits`), so "no edit" is the clean model.
"""
from __future__ import annotations

import html

import ipywidgets as W
import numpy as np

from ...analysis._common import softmax_np
from ...sae.attribution import FeatureShares
from ...sae.extras import SAEEdit, SAEFeatures
from ...sae.metrics import check_hook
from ...sae.model import SparseAutoencoder
from ...widgets import ContributionBars
from ..updates import assign
from .base import Panel, PanelData

MODES = ("zero", "clamp")


class SAEPanel(Panel):
    """Panel interface: ``__init__(ctx)`` (+ the SAE), ``.widget``, ``update(data: PanelData)``.

    Args:
        ctx: the Explorer's :class:`~dtwidgets.compositions.panels.AnalysisContext` (model, pair).
        sae: a :class:`~dtwidgets.sae.SparseAutoencoder` at a hook of ``ctx.adapter`` (default:
            ``ctx.sae`` when the context carries one).
        n_show: how many active features (largest |share| first) the bars show.
    """

    key, title = "sae", "SAE features"

    def __init__(self, ctx, sae=None, n_show: int = 16):
        super().__init__(ctx)
        if sae is None:
            sae = getattr(ctx, "sae", None)
        if sae is None:
            raise ValueError("SAEPanel needs an SAE: SAEPanel(ctx, sae) or SAEPanel.for_sae(sae) "
                             "(e.g. dtwidgets.sae.demo_sae('post') or load_sae(folder))")
        self.sae: SparseAutoencoder = sae
        check_hook(ctx.adapter, self.sae)
        self.n_show = int(n_show)
        self.summary = W.HTML()
        self.shares_bars = ContributionBars(series_names=["direct share"], title="direct share of the preference")
        self.feature = W.Dropdown(description="feature", options=[], layout=W.Layout(width="320px"))
        self.mode = W.ToggleButtons(options=MODES, value="zero", description="edit")
        self.value = W.FloatSlider(value=0.0, min=0.0, max=1.0, step=0.01, description="clamp to",
                                   continuous_update=False)
        self.enabled = W.Checkbox(value=False, description="apply edit")
        self.probs = ContributionBars(title="action probabilities", series_names=["clean", "edited"])
        self.edit_note = W.HTML()
        for w in (self.feature, self.mode, self.value, self.enabled):
            w.observe(self._on_edit_change, names="value")
        controls = W.HBox([self.feature, self.mode, self.value, self.enabled], layout=W.Layout(flex_flow="row wrap"))
        self.widget.children = [self.summary, self.shares_bars, controls, self.edit_note, self.probs]
        self._data: PanelData | None = None
        self.shares: FeatureShares | None = None

    @classmethod
    def for_sae(cls, sae, **kwargs) -> type:
        """A subclass whose constructor takes only ``ctx`` (for panel registries)."""
        def __init__(self, ctx):
            cls.__init__(self, ctx, sae, **kwargs)

        return type(f"{cls.__name__}For{sae.d_sae}", (cls,), {"__init__": __init__})

    # ---- updates ----------------------------------------------------------------------------
    def update(self, data) -> None:
        self._data = data
        s = self.shares = data.result(SAEFeatures(self.sae))
        top = s.active[: self.n_show]
        rest = float(s.shares[self.n_show:].sum())
        labels = [f"f{i}" for i in top] + (["other features"] if len(s.active) > self.n_show else []) + ["decoder bias", "error"]
        vals = list(s.shares[: self.n_show]) + ([rest] if len(s.active) > self.n_show else []) + [s.bias_share, s.error_share]
        groups = ["feature"] * (len(labels) - 2) + ["bias", "error"]
        assign(self.shares_bars, values=np.asarray(vals, np.float32)[None], labels=labels, groups=groups,
               title=f"direct share of {s.pair_label} at {s.hook_name}")
        self.summary.value = (
            f"<b>{html.escape(s.pair_label)}</b>: {len(s.active)} active features at {html.escape(s.hook_name)} "
            f"(token {s.position}). Hook's direct share <b>{s.hook_share:+.4f}</b> = features "
            f"{float(s.shares.sum()):+.4f} + decoder bias {s.bias_share:+.4f} + error {s.error_share:+.4f}")
        options = [(f"f{i}: act {s.activations[i]:.3f}, share {sh:+.3f}", int(i)) for i, sh in zip(s.active, s.shares)]
        keep = self.feature.value
        with self.feature.hold_trait_notifications():
            self.feature.options = options
            if keep in [o[1] for o in options]:
                self.feature.value = keep
        self._draw_edit()

    def _on_edit_change(self, change) -> None:
        if change["owner"] is self.feature and self.shares is not None and change["new"] is not None:
            act = float(self.shares.activations[change["new"]])
            self.value.max = max(1.0, 2 * act)
            self.value.value = act
        self._draw_edit()

    def edits(self) -> dict:
        """The current edit ``{feature: value}`` ({} when off)."""
        if not self.enabled.value or self.feature.value is None:
            return {}
        return {int(self.feature.value): 0.0 if self.mode.value == "zero" else float(self.value.value)}

    def _draw_edit(self) -> None:
        if self._data is None or self.shares is None:
            return
        clean = self.shares.logits
        edits = self.edits()
        edited = self._data.result(SAEEdit(self.sae, tuple(sorted(edits.items()))))
        assign(self.probs, values=np.stack([softmax_np(_t(clean)), softmax_np(_t(edited))]).astype(np.float32),
               labels=list(self.ctx.adapter.action_names))
        a, b = self.ctx.pair
        d0, d1 = clean[a] - clean[b], edited[a] - edited[b]
        what = ("no edit (the model runs with reconstruction + error = the clean activation)" if not edits else
                "; ".join(f"feature {k} set to {v:.3f}" for k, v in edits.items()))
        self.edit_note.value = f"{html.escape(what)} — preference {d0:+.3f} → <b>{d1:+.3f}</b>"


def _t(x):
    import torch

    return torch.as_tensor(np.asarray(x))

"""Analysis panels of the Explorer. Each panel is also usable alone:

    ctx = AnalysisContext(model, pair=("forward", "right"))
    panel = AttributionPanel(ctx)
    panel.update(ctx.compute(window))
    panel.widget            # an ipywidgets container of dtwidgets canvas widgets

:class:`AnalysisContext` runs the shared analysis once per state
(:func:`dtwidgets.analysis.bundle.analyze_state`: forward + cache + attribution + every
single-component ablation + RTG scan in one batched forward, plus activation patching when a
clean scenario exists); panels only pick arrays out of it — no analysis maths here.
"""
from __future__ import annotations

from dataclasses import dataclass

import ipywidgets as W
import numpy as np

from ..adapters.schema import resolve_action
from ..analysis.ablation import ablate, mean_activations
from ..analysis.bundle import StateAnalysis, analyze_state
from ..analysis.circuits import ov_map, qk_map
from ..analysis.embeddings import state_embedding_projection
from ..analysis.patching import PatchingResult, activation_patching
from ..widgets import AttentionView, ChannelHeatmap, ContributionBars, MatrixHeatmap, RTGScanView

PANELS = ("attribution", "ablation", "attention", "circuits", "rtg_scan", "patching")


@dataclass
class PanelData:
    """Everything the panels draw for one state."""

    window: object
    state: StateAnalysis
    patching: PatchingResult | None

    @property
    def logits(self) -> np.ndarray:
        return self.state.logits


class AnalysisContext:
    """The model, the preference pair and the ablation reference shared by all panels."""

    def __init__(self, model, pair=(0, 1), reference_windows=None, rtgs=None):
        self.model = model
        self.pair = tuple(resolve_action(model.action_names, p) for p in pair)
        self.rtgs = rtgs
        self.means = mean_activations(model, reference_windows) if reference_windows is not None else None
        self.ablation_mode = "mean" if self.means is not None else "zero"

    def compute(self, window, clean_window=None, active=PANELS) -> PanelData:
        a, b = self.pair
        st = analyze_state(self.model, window, a, b, self.rtgs, ablation_mode=self.ablation_mode, means=self.means)
        patch = None
        if clean_window is not None and "patching" in active:
            patch = activation_patching(self.model, clean_window, window, a, b)
        return PanelData(window, st, patch)


class Panel:
    key = ""
    title = ""

    def __init__(self, ctx: AnalysisContext):
        self.ctx = ctx
        self.widget = W.VBox()

    def update(self, data: PanelData) -> None:  # pragma: no cover - interface
        raise NotImplementedError


def assign(widget, **traits) -> None:
    """Set only the traits whose value changed (arrays compared by value), in one message."""
    changed = {}
    for k, v in traits.items():
        old = getattr(widget, k)
        if isinstance(v, np.ndarray) or isinstance(old, np.ndarray):
            same = isinstance(old, np.ndarray) and np.shape(old) == np.shape(v) and np.array_equal(old, v, equal_nan=True)
        else:
            same = list(old) == list(v) if isinstance(v, (list, tuple)) else old == v
        if not same:
            changed[k] = v
    if changed:
        with widget.hold_sync():
            for k, v in changed.items():
                setattr(widget, k, v)


def _note(text: str) -> W.HTML:
    return W.HTML(f"<div style='color:#555;font-size:12px'>{text}</div>")


class AttributionPanel(Panel):
    key, title = "attribution", "Attribution"

    def __init__(self, ctx):
        super().__init__(ctx)
        self.summary = W.HTML()
        self.bars = ContributionBars(series_names=["contribution"], title="direct logit attribution")
        self.sources = MatrixHeatmap(title="head contribution by source token", x_label="source token", y_label="head")
        self.widget.children = [self.summary, self.bars, self.sources]

    def update(self, data):
        at = data.state.attribution
        self.summary.value = (f"<b>{at.direction}</b> at {at.source_labels[at.position]}: model logit difference "
                              f"<b>{at.logit_diff:+.4f}</b> = sum of the {len(at.values)} contributions "
                              f"({float(at.values.sum()):+.4f})")
        assign(self.bars, values=at.values[None], labels=at.labels, groups=at.kinds)
        if at.per_source is not None:
            assign(self.sources, values=at.per_source, row_labels=at.head_labels, col_labels=at.source_labels)


class AblationPanel(Panel):
    key, title = "ablation", "Ablation"

    def __init__(self, ctx):
        super().__init__(ctx)
        self.overview = ContributionBars(title="change in preference when one component is ablated",
                                         series_names=["Δ logit diff"])
        self.component = W.Dropdown(description="ablate", options=[])
        self.component.observe(lambda c: self._detail(), names="value")
        self.probs = ContributionBars(title="action probabilities", series_names=["clean", "ablated"])
        self.contrib = ContributionBars(title="contributions before / after", series_names=["clean", "ablated"])
        self.widget.children = [self.overview, self.component, W.HBox([self.probs, self.contrib])]
        self._window = self._baseline = None

    def update(self, data):
        ab = data.state.ablations
        assign(self.overview, values=ab.delta_logit_diff[None], labels=ab.labels,
               title=f"change in {ab.direction} when one component is {ab.mode}-ablated")
        if list(self.component.options) != list(ab.labels):
            self.component.options = ab.labels
        self._window, self._baseline = data.window, data.state.attribution
        self._detail()

    def _detail(self):
        if self._window is None or self.component.value is None:
            return
        a, b = self.ctx.pair
        r = ablate(self.ctx.model, self._window, [self.component.value], a, b,  # one forward: the clean
                   mode=self.ctx.ablation_mode, means=self.ctx.means, baseline=self._baseline)  # run is shared
        assign(self.probs, values=np.stack([r.probs_before, r.probs_after]), labels=list(r.action_names))
        assign(self.contrib, values=np.stack([r.contributions_before, r.contributions_after]), labels=r.labels)


class AttentionPanel(Panel):
    key, title = "attention", "Attention"

    def __init__(self, ctx):
        super().__init__(ctx)
        self.view = AttentionView()
        self.widget.children = [self.view]

    def update(self, data):
        at = data.state.attention
        assign(self.view, patterns=at.values, head_labels=at.head_labels, token_labels=at.token_labels)


class CircuitsPanel(Panel):
    key, title = "circuits", "QK / OV circuits"

    def __init__(self, ctx):
        super().__init__(ctx)
        cfg = ctx.model.backbone.cfg
        heads = [(f"L{l}H{h}", (l, h)) for l in range(cfg.n_layers) for h in range(cfg.n_heads)]
        self.head = W.Dropdown(options=heads, description="head")
        self.head.observe(lambda c: self._draw(), names="value")
        agent = ctx.model.schema.agent_cell
        self.qk = ChannelHeatmap(agent_cell=agent)
        self.ov = ChannelHeatmap(agent_cell=agent)
        self.emb = ChannelHeatmap(agent_cell=agent)
        self.qk_note, self.ov_note, self.emb_note = W.HTML(), W.HTML(), W.HTML()
        self.widget.children = [self.head, self.qk_note, self.qk, self.ov_note, self.ov, self.emb_note, self.emb]
        self._window = None
        a, b = ctx.pair
        e = state_embedding_projection(ctx.model, a, b)
        self.emb.values, self.emb.titles = e.values, list(e.channel_names)
        self.emb_note.value = f"<b>state embedding · ({e.direction})</b> — weights only, per unit of input feature"

    def update(self, data):
        self._window = data.window
        self._draw()

    def _draw(self):
        if self._window is None:
            return
        l, h = self.head.value
        a, b = self.ctx.pair
        q = qk_map(self.ctx.model, l, h, window=self._window)
        o = ov_map(self.ctx.model, l, h, a, b, window=self._window)
        assign(self.qk, values=q.values, titles=list(q.channel_names))
        assign(self.ov, values=o.values, titles=list(o.channel_names))
        att = "" if q.attention is None else f" (attention now {q.attention:.2f})"
        self.qk_note.value = f"<b>QK L{l}H{h}</b>: score towards {q.key}{att} — {q.terms}"
        self.ov_note.value = f"<b>OV L{l}H{h}</b> along {o.direction} — {o.terms}"


class RTGScanPanel(Panel):
    key, title = "rtg_scan", "RTG scan"

    def __init__(self, ctx):
        super().__init__(ctx)
        self.view = RTGScanView(title="behaviour as a function of the return-to-go")
        self.widget.children = [self.view]

    def update(self, data):
        s = data.state.rtg_scan
        A = len(s.action_names)
        series = [s.probs.T, s.logit_diff[None], s.contributions.T, s.attention_to_rtg.T]
        names = ([f"P({n})" for n in s.action_names] + [s.direction] + list(s.labels)
                 + [f"{h} → R" for h in s.head_labels])
        groups = (["probability"] * A + ["preference"] + ["contribution"] * len(s.labels)
                  + ["attention to RTG"] * len(s.head_labels))
        rtg_now = float(data.window.rtgs[0, -1])
        assign(self.view, rtgs=s.rtgs, series=np.concatenate(series, 0).astype(np.float32), series_names=names,
               series_groups=groups, index=int(np.argmin(np.abs(s.rtgs - rtg_now))))


class PatchingPanel(Panel):
    key, title = "patching", "Patching"

    def __init__(self, ctx):
        super().__init__(ctx)
        self.note = _note("Edit the grid to create a corrupted scenario; the unedited state is the clean one.")
        self.resid = MatrixHeatmap(title="residual stream patched at one position", x_label="position", y_label="layer",
                                   vmax=1.0)
        self.parts = ContributionBars(title="head / MLP outputs patched (all positions)", series_names=["fraction"])
        self.widget.children = [self.note]

    def update(self, data):
        p = data.patching
        if p is None:
            self.widget.children = [self.note]
            return
        assign(self.resid, values=p.resid, row_labels=p.resid_labels, col_labels=p.token_labels)
        assign(self.parts, values=np.concatenate([p.heads, p.mlp])[None], labels=list(p.head_labels) + list(p.mlp_labels))
        head = (f"Patching corrupted activations into the clean run: fraction of the change in <b>{p.direction}</b> "
                f"(clean {p.clean_value:+.3f} → corrupted {p.corrupted_value:+.3f}) each patch reproduces.")
        self.widget.children = [W.HTML(head), self.resid, self.parts]


PANEL_CLASSES = {c.key: c for c in (AttributionPanel, AblationPanel, AttentionPanel, CircuitsPanel, RTGScanPanel, PatchingPanel)}


def make_panels(ctx: AnalysisContext, keys) -> list[Panel]:
    unknown = [k for k in keys if k not in PANEL_CLASSES]
    if unknown:
        raise ValueError(f"expected panels from {PANELS}, got {unknown}")
    return [PANEL_CLASSES[k](ctx) for k in keys]

"""Analysis panels of the Explorer, and the registry that lets other modules add panels.

Each panel is usable alone::

    ctx = AnalysisContext(adapter, pair=("forward", "right"))
    panel = AttributionPanel(ctx)
    panel.update(ctx.compute(window))
    panel.widget            # an ipywidgets container of dtwidgets canvas widgets

A panel is any class with ``__init__(ctx: AnalysisContext)``, a ``widget`` attribute and
``update(data: PanelData)`` (optionally ``key``, ``title`` and ``needs``, the extras of the shared
analysis it reads, computed only while it is shown); :func:`register_panel` makes it
available by key to ``Explorer(..., panels=(..., "my_key"))``; a class can also be passed directly.

:class:`AnalysisContext` runs the shared analysis once per state
(:func:`dtwidgets.analysis.bundle.analyze_state`: forward + cache + attribution + every
single-component ablation + RTG scan in one batched forward, plus activation patching when a
clean scenario exists); panels only pick arrays out of it — no analysis maths here. Every text
that can come from a file or a model (action names, labels) is escaped before it reaches HTML.
"""
from __future__ import annotations

import html
from dataclasses import dataclass

import ipywidgets as W
import numpy as np

from ..adapters.schema import resolve_action
from ..analysis import _common as C
from ..analysis.ablation import ablate, mean_activations
from ..analysis.bundle import StateAnalysis, analyze_state
from ..analysis.circuits import ov_map, qk_map
from ..analysis.embeddings import state_embedding_projection
from ..analysis.state_map import linear_state_weights
from ..analysis.patching import PatchingResult, activation_patching
from .channel_use import ChannelUse
from ..widgets import AttentionView, ChannelHeatmap, ContributionBars, MatrixHeatmap, RTGScanView
from ..widgets._traits import escape_braces
from .token_names import component_names, episode_token_labels, episode_token_steps, relabel, token_names

PANELS = ("attribution", "ablation", "attention", "circuits", "rtg_scan", "patching")
"""Keys of the built-in panels, in their default order."""

@dataclass
class PanelData:
    """Everything the panels draw for one state.

    Attributes:
        window: the one-row model input of the current state; state: the shared analysis;
        patching: activation patching clean → edited (None without an edit);
        token_labels: ``P`` token labels naming the EPISODE step (``R₉ s₉`` for the state after 9
            steps; ``pad`` for left padding), not the window position.
    """

    window: object
    state: StateAnalysis
    patching: PatchingResult | None
    token_labels: list[str]
    clean_window: object | None = None
    """The unedited scenario's window (None when the grid is not edited)."""
    token_steps: np.ndarray | None = None
    """int16 ``[P]`` episode step of each token (-1 = padding), :func:`episode_token_steps`."""

    @property
    def logits(self) -> np.ndarray:
        return self.state.logits

    @property
    def rtg(self) -> float:
        """The current step's RTG (reward units)."""
        return float(self.window.rtgs[0, -1])  # type: ignore[attr-defined]


class AnalysisContext:
    """The adapter, the preference pair and the ablation reference shared by all panels.

    Args:
        adapter: a :class:`~dtwidgets.adapters.ModelAdapter`.
        pair: the preference direction ``(a, b)``, names or indices: logit[a] − logit[b].
        reference_windows: optional windows for mean ablation.
        rtgs: RTG grid of the scan (default 101 values).
        follow_group: page id of the Explorer's RTG slider ('' = panels do not follow it).
        env: the :class:`~dtwidgets.adapters.EnvAdapter` being played (read by the policy-map panel;
            set by the Explorer), or None.
        sae: a trained :class:`dtwidgets.sae.SparseAutoencoder` for the SAE panel, or None.
    """

    def __init__(self, adapter, pair=(0, 1), reference_windows=None, rtgs=None, follow_group: str = "",
                 env=None, sae=None):
        self.adapter = adapter
        self.env = env
        self.sae = sae
        self.pair = (0, 1)
        self.set_pair(pair)
        self.rtgs = rtgs
        self.follow_group = follow_group
        self.means = mean_activations(adapter, reference_windows) if reference_windows is not None else None
        self.ablation_mode = "mean" if self.means is not None else "zero"

    @property
    def model(self):
        """Alias of :attr:`adapter` for panels written against the earlier name."""
        return self.adapter

    def set_pair(self, pair) -> None:
        """Change the preference direction every panel analyses (names or indices)."""
        a, b = (resolve_action(self.adapter.action_names, p) for p in pair)
        self.pair = (a, b)

    def compute(self, window, clean_window=None, active=PANELS, needs=None) -> PanelData:
        """The shared analysis of ``window`` for the panels keyed ``active``.

        ``needs``: the bundle extras to add (``"lens"``, ``"per_neuron"``: see :func:`analyze_state`);
        by default those declared (class attribute ``needs``) by the registered panel types in ``active``.
        """
        a, b = self.pair
        if needs is None:
            needs = set().union(*(getattr(PANEL_TYPES.get(k), "needs", ()) for k in active))
        if not set(needs) <= {"lens", "per_neuron"}:
            raise ValueError(f"compute: expected needs among 'lens', 'per_neuron', got {sorted(needs)}")
        st = analyze_state(self.adapter, window, a, b, self.rtgs, ablation_mode=self.ablation_mode, means=self.means,
                           per_neuron="per_neuron" in needs, lens="lens" in needs)
        patch = None
        if clean_window is not None and "patching" in active:
            patch = activation_patching(self.adapter, clean_window, window, a, b)
        return PanelData(window, st, patch, episode_token_labels(self.adapter, window), clean_window,
                         episode_token_steps(self.adapter, window))


class Panel:
    """Base class of a panel: ``widget`` (an ipywidgets container) and ``update(data)``."""

    key = ""
    title = ""
    needs: frozenset[str] = frozenset()
    """Extras of the shared analysis this panel reads: ``"lens"`` (``state.lens`` and
    ``state.neuron_activations``) and/or ``"per_neuron"`` (``state.attribution.neuron_values``)."""

    def __init__(self, ctx: AnalysisContext):
        self.ctx = ctx
        self.widget = W.VBox(layout=W.Layout(width="auto", min_width="0"))

    def update(self, data: PanelData) -> None:  # pragma: no cover - interface
        raise NotImplementedError


PANEL_TYPES: dict[str, type] = {}
"""Registered panel classes by key (built-ins plus those added with :func:`register_panel`)."""


def register_panel(key: str, cls: type) -> type:
    """Make panel class ``cls`` available as ``Explorer(..., panels=(..., key))``; returns ``cls``.

    ``cls`` needs ``__init__(ctx)``, a ``widget`` and ``update(data: PanelData)``. Re-registering a
    key replaces the earlier class.
    """
    if not isinstance(key, str) or not key:
        raise ValueError(f"register_panel: expected a non-empty str key, got {key!r}")
    if not isinstance(cls, type) or not callable(getattr(cls, "update", None)):
        raise TypeError(f"register_panel({key!r}): expected a class with update(data), got {cls!r}")
    PANEL_TYPES[key] = cls
    return cls


def assign(widget, **traits) -> None:
    """Set only the traits whose value changed (arrays compared by value), in one message."""
    changed = {}
    for k, v in traits.items():
        old = getattr(widget, k)
        if isinstance(v, np.ndarray) or isinstance(old, np.ndarray):
            same = isinstance(old, np.ndarray) and np.shape(old) == np.shape(v) and np.array_equal(old, v, equal_nan=True)
        elif isinstance(v, (list, tuple)) and isinstance(old, (list, tuple)):
            same = list(old) == list(v)
        else:
            same = old == v
        if not same:
            changed[k] = v
    if changed:  # validated together (a label list and its values may change size at once), sent as one message
        with widget.hold_sync(), widget.hold_trait_notifications():
            for k, v in changed.items():
                setattr(widget, k, v)


def _note(text: str) -> W.HTML:
    """A grey note; ``text`` is plain text (escaped here)."""
    return W.HTML(f"<div style='color:#555;font-size:12px'>{html.escape(text)}</div>")


def _esc(x) -> str:
    return html.escape(str(x))


class AblationPanel(Panel):
    key, title = "ablation", "Ablation"
    SIGN = ("Δ = logit difference with the component ablated − without: a negative Δ means the component "
            "pushes towards the first action of the pair.")

    def __init__(self, ctx):
        super().__init__(ctx)
        self.sign = _note(self.SIGN)
        self.overview = ContributionBars(title="change in preference when one component is ablated",
                                         series_names=["Δ logit diff"])
        self.component = W.Dropdown(description="ablate", options=[], layout=W.Layout(width="auto", max_width="420px"))
        self.component.observe(self._on_component, names="value")
        box = W.Layout(flex="1 1 300px", min_width="0")
        self.probs = ContributionBars(title="action probabilities", series_names=["clean", "ablated"], scale="unit",
                                      layout=box)
        self.contrib = ContributionBars(title="contributions before / after", series_names=["clean", "ablated"],
                                        layout=W.Layout(flex="2 1 360px", min_width="0"))
        detail = W.Box([self.probs, self.contrib], layout=W.Layout(display="flex", flex_flow="row wrap", width="auto"))
        self.widget.children = [self.sign, self.overview, self.component, detail]
        self._window = self._baseline = None
        self._quiet = False

    def update(self, data):
        ab = data.state.ablations
        assign(self.overview, values=ab.delta_logit_diff[None], labels=ab.labels,
               title=f"change in {ab.direction} when one component is {ab.mode}-ablated")
        self._window, self._baseline, self._data = data.window, data.state.attribution, data
        labels = list(ab.labels)
        if list(self.component.options) != labels or self.component.value not in labels:
            # default: the component whose ablation changes the preference most
            default = labels[int(np.nanargmax(np.abs(ab.delta_logit_diff)))] if labels else None
            keep = self.component.value if self.component.value in labels else default
            self._quiet = True
            try:
                self.component.options = labels
                self.component.value = keep
            finally:
                self._quiet = False
        self._detail()

    def _on_component(self, _change):
        if not self._quiet:
            self._detail()

    def _detail(self):
        if self._window is None or self.component.value is None:
            return
        a, b = self.ctx.pair
        r = ablate(self.ctx.adapter, self._window, [self.component.value], a, b,  # one forward: the clean
                   mode=self.ctx.ablation_mode, means=self.ctx.means, baseline=self._baseline)  # run is shared
        assign(self.probs, values=np.stack([r.probs_before, r.probs_after]), labels=list(r.action_names))
        labels, steps = component_names(r.labels, self._data, self.ctx.adapter.layout.labels(), self.ctx.adapter)
        assert r.contributions_before is not None and r.contributions_after is not None  # a pair was given
        assign(self.contrib, values=np.stack([r.contributions_before, r.contributions_after]), labels=labels,
               steps=steps)


class AttentionPanel(Panel):
    key, title = "attention", "Attention"

    def __init__(self, ctx):
        super().__init__(ctx)
        self.view = AttentionView()
        self.widget.children = [_note("rows: the query token, columns: the key token it attends to; tokens are labelled by episode step "
                                      "(s₉ = the state after 9 steps). Pick a head for its labelled pattern."), self.view]

    def update(self, data):
        at = data.state.attention
        labels, steps = token_names(data, at.token_labels, self.ctx.adapter)
        assign(self.view, patterns=at.values, head_labels=at.head_labels, token_labels=labels, steps=steps)


class CircuitsPanel(Panel):
    key, title = "circuits", "QK / OV circuits"

    def __init__(self, ctx):
        super().__init__(ctx)
        L, H = C.n_layers(ctx.adapter), C.n_heads(ctx.adapter)
        self.head = W.Dropdown(options=[(f"L{l}H{h}", (l, h)) for l in range(L) for h in range(H)], description="head")
        self.head.observe(self._on_head, names="value")
        agent = ctx.adapter.schema.agent_cell
        self.qk = ChannelHeatmap(agent_cell=agent)
        self.ov = ChannelHeatmap(agent_cell=agent)
        self.emb = ChannelHeatmap(agent_cell=agent)
        self.qk_note, self.ov_note, self.emb_note = W.HTML(), W.HTML(), W.HTML()
        self.widget.children = [self.head, self.qk_note, self.qk, self.ov_note, self.ov, self.emb_note, self.emb]
        self._window = None
        self._emb_pair = None
        self._unused: set[int] = set()
        self._use = ChannelUse(ctx.adapter)
        self._proj_exact = True
        if linear_state_weights(ctx.adapter) is not None:  # a nonlinear encoder's map waits for a state
            self._embedding()

    def _embedding(self):
        """State-embedding projection along the current pair (weights only; recomputed when the pair changes)."""
        obs = None if self._window is None else self._window.observations[0, -1]  # the state shown
        if self._emb_pair == self.ctx.pair and (self._proj_exact or obs is None):
            return
        a, b = self._emb_pair = self.ctx.pair
        self._proj = e = state_embedding_projection(self.ctx.adapter, a, b, obs=obs)
        self._proj_exact = e.exact
        assign(self.emb, values=e.values, titles=self._titles(e.channel_names))
        self._emb_text = (f"<b>state embedding · ({_esc(e.direction)})</b> — how much one unit of each input "
                          "feature pushes the preference " + ("(weights only)" if e.exact else f"({_esc(e.note)})"))
        self.emb_note.value = self._emb_text + self._unused_note(e.channel_names)

    def _note_inputs(self, window) -> None:
        """Flag channels the model never uses (see :class:`~.channel_use.ChannelUse`): greyed maps, titles, a note."""
        unused = set(self._use.update(window))
        if unused != self._unused:
            self._unused = unused
            e = self._proj
            assign(self.emb, titles=self._titles(e.channel_names), unused=sorted(unused))
            self.emb_note.value = self._emb_text + self._unused_note(e.channel_names)

    def _titles(self, names) -> list[str]:
        return [f"{n} (unused)" if c in self._unused else str(n) for c, n in enumerate(names)]

    def _unused_note(self, names) -> str:
        if not self._unused:
            return ""
        used = ", ".join(_esc(names[c]) for c in sorted(self._unused))
        return (f"<br><span style='color:#8a5a00'>unused: {used} — the input was 0 in every observation seen so far "
                "(or its embedding weights are ≈ 0), so the model never reads it here and its maps carry no "
                "meaning</span>")

    def update(self, data):
        self._window, self._data = data.window, data
        self._embedding()
        self._note_inputs(data.window)
        self._draw()

    def _on_head(self, _change):
        self._draw()

    def _draw(self):
        if self._window is None:
            return
        l, h = self.head.value
        a, b = self.ctx.pair
        q = qk_map(self.ctx.adapter, l, h, window=self._window)
        o = ov_map(self.ctx.adapter, l, h, a, b, window=self._window)
        assign(self.qk, values=q.values, titles=self._titles(q.channel_names), unused=sorted(self._unused))
        assign(self.ov, values=o.values, titles=self._titles(o.channel_names), unused=sorted(self._unused))
        att = "" if q.attention is None else f" (attention now {q.attention:.2f})"
        key = relabel([q.key], self._data, self.ctx.adapter.layout.labels())[0] if q.key else q.key
        self.qk_note.value = (f"<b>QK L{l}H{h}</b>: <span title='{_esc(q.terms)}'>how strongly the state at each cell "
                              f"makes this head attend to {_esc(key)}{att} <u>formula</u></span>")
        self.ov_note.value = (f"<b>OV L{l}H{h}</b>: <span title='{_esc(o.terms)}'>if this head copies the state at a cell, "
                              f"how much that pushes {_esc(o.direction)} <u>formula</u></span>")


class RTGScanPanel(Panel):
    key, title = "rtg_scan", "RTG scan"

    def __init__(self, ctx):
        super().__init__(ctx)
        self.view = RTGScanView(title="behaviour as a function of the return-to-go (every step set to that RTG)",
                                follow_group=ctx.follow_group)
        self.widget.children = [self.view]

    def update(self, data):
        s = data.state.rtg_scan
        A = len(s.action_names)
        series = [s.probs.T, s.logit_diff[None], s.contributions.T, s.attention_to_rtg.T]
        contrib, steps = component_names(s.labels, data, data.state.attribution.source_labels, self.ctx.adapter)
        names = ([escape_braces(f"P({n})") for n in s.action_names] + [escape_braces(s.direction)]
                 + contrib  # s₉ = episode step, as elsewhere
                 + [escape_braces(f"{h} → R") for h in s.head_labels])
        groups = (["probability"] * A + ["preference"] + ["contribution"] * len(s.labels)
                  + ["attention to RTG"] * len(s.head_labels))
        assign(self.view, rtgs=s.rtgs, series=np.concatenate(series, 0).astype(np.float32), series_names=names,
               series_groups=groups, steps=steps, index=int(np.argmin(np.abs(s.rtgs - data.rtg))))


class PatchingPanel(Panel):
    key, title = "patching", "Patching"

    def __init__(self, ctx):
        super().__init__(ctx)
        self.note = _note("Edit the grid to create a corrupted scenario; the unedited state is the clean one.")
        self.head = W.HTML()
        self.resid = MatrixHeatmap(title="residual stream patched at one position", x_label="position",
                                   y_label="layer", vmax=1.0)
        self.parts = ContributionBars(title="head / MLP outputs patched (all positions)", series_names=["fraction"])
        self.widget.children = [self.note]

    def update(self, data):
        p = data.patching
        if p is None:
            self.widget.children = [self.note]
            return
        cols, steps = token_names(data, p.token_labels, self.ctx.adapter)
        assign(self.resid, values=p.resid, row_labels=[escape_braces(r) for r in p.resid_labels], col_labels=cols,
               steps=steps)
        assign(self.parts, values=np.concatenate([p.heads, p.mlp])[None], labels=list(p.head_labels) + list(p.mlp_labels))
        self.head.value = (f"Patching corrupted activations into the clean run: fraction of the change in "
                           f"<b>{_esc(p.direction)}</b> (clean {p.clean_value:+.3f} → corrupted {p.corrupted_value:+.3f}) "
                           "each patch reproduces.")
        self.widget.children = [self.head, self.resid, self.parts]


from .attribution_panel import AttributionPanel  # noqa: E402  (it builds on the classes above)

for _cls in (AttributionPanel, AblationPanel, AttentionPanel, CircuitsPanel, RTGScanPanel, PatchingPanel):
    register_panel(_cls.key, _cls)
PANEL_CLASSES = PANEL_TYPES  # earlier name


def make_panels(ctx: AnalysisContext, keys) -> list:
    """Instantiate panels from registered keys (see :data:`PANEL_TYPES`) or panel classes."""
    out = []
    for k in keys:
        cls = k if isinstance(k, type) else PANEL_TYPES.get(k)
        if cls is None:
            raise ValueError(f"expected panels from {tuple(PANEL_TYPES)} (or a panel class), got {k!r}")
        out.append(cls(ctx))
    return out

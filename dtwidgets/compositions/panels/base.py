"""What every analysis panel shares: the context (adapter, pair, ablation reference), the per-state
data, and the :class:`Panel` base.

A panel declares the analysis extras it reads (:mod:`dtwidgets.analysis.extras`) and renders
results; it computes nothing. :meth:`AnalysisContext.compute` runs the one per-state owner
(:func:`~dtwidgets.analysis.bundle.analyze_state`) with the extras of the panels shown;
:meth:`PanelData.result` gives a panel its extra's result (computed by the owner if a control of the
panel asked for another one since). Every text from a file or a model is escaped before HTML.
"""
from __future__ import annotations

import html
from dataclasses import dataclass
from typing import Any, Iterable

import ipywidgets as W
import numpy as np

from ...adapters.schema import resolve_action
from ...adapters.window import TrajectoryWindow
from ...analysis.ablation import mean_activations
from ...analysis.bundle import StateAnalysis, analyze_state
from ...analysis.extras import Extra, StateRequest
from ..token_names import episode_token_labels, episode_token_steps


@dataclass
class PanelData:
    """Everything the panels draw for one state.

    Attributes:
        window: the one-row model input of the current state; state: the per-state analysis (with
            the extras of the panels it was computed for);
        token_labels: ``P`` token labels naming the EPISODE step (``R₉ s₉`` for the state after 9
            steps; ``pad`` for left padding), not the window position.
        clean_window: the unedited scenario's window (None when the grid is not edited).
        token_steps: int16 ``[P]`` episode step of each token (-1 = padding).
    """

    window: TrajectoryWindow
    state: StateAnalysis
    token_labels: list[str]
    clean_window: TrajectoryWindow | None = None
    token_steps: np.ndarray | None = None

    @property
    def request(self) -> StateRequest | None:
        """What the state's extras were computed from (an extra asked for later is computed from it)."""
        return self.state.request

    @property
    def logits(self) -> np.ndarray:
        return self.state.logits

    @property
    def rtg(self) -> float:
        """The current step's RTG (reward units)."""
        return float(self.window.rtgs[0, -1])

    @property
    def patching(self):
        """Activation patching clean → edited (the :class:`~dtwidgets.analysis.extras.Patching` extra), or None."""
        from ...analysis.extras import Patching

        return self.result(Patching())

    def result(self, extra: Extra) -> Any:
        """The result of ``extra`` for this state: the one computed with the state when it is the same
        extra, else computed now by the extra itself from the state's request (one forward for a forward-shared one)."""
        kind = type(extra)
        if self.state.asked.get(kind) == extra and kind in self.state.extras:
            return self.state.extras[kind]
        if self.request is None:
            raise ValueError("PanelData.result: no request to compute extras from")
        self.state.extras[kind] = extra.compute(self.request)  # a forward-shared extra runs its own forward here
        self.state.asked[kind] = extra
        return self.state.extras[kind]


class AnalysisContext:
    """The adapter, the preference pair and the ablation reference shared by all panels.

    Args:
        adapter: a :class:`~dtwidgets.adapters.ModelAdapter`.
        pair: the preference direction ``(a, b)``, names or indices: logit[a] − logit[b].
        reference_windows: optional windows for mean ablation.
        rtgs: RTG grid of the scan (default 101 values).
        follow_group: page id of the Explorer's RTG slider ('' = panels do not follow it).
        env: the :class:`~dtwidgets.adapters.EnvAdapter` being played (read by the policy-map panel), or None.
        sae: a trained :class:`dtwidgets.sae.SparseAutoencoder` for the SAE panel, or None.
        session: the :class:`~dtwidgets.compositions.session.PlaySession` played (the spaces tabs read the
            episode so far from it when there are no reference windows), or None.
    """

    def __init__(self, adapter, pair=(0, 1), reference_windows=None, rtgs=None, follow_group: str = "",
                 env=None, sae=None, session=None):
        self.adapter = adapter
        self.env = env
        self.sae = sae
        self.session = session
        self.reference_windows = reference_windows
        """The reference states (mean ablation; the spaces tabs fit their PCA / NMF on them), or None."""
        self.pair = (0, 1)
        self.set_pair(pair)
        self.rtgs = rtgs
        self.follow_group = follow_group
        self.means = mean_activations(adapter, reference_windows) if reference_windows is not None else None
        self.ablation_mode = "mean" if self.means is not None else "zero"
        from ...analysis.saved_directions import DirectionStore

        self.directions = DirectionStore()
        """Named directions kept with the Explorer (the Directions tab; saved with its recordings)."""

    def set_pair(self, pair) -> None:
        """Change the preference direction every panel analyses (names or indices)."""
        a, b = (resolve_action(self.adapter.action_names, p) for p in pair)
        if a == b:
            name = self.adapter.action_names[a]
            raise ValueError(f"expected two different actions for the preference a − b, got {name!r} twice "
                             "(every chart would be 0)")
        self.pair = (a, b)

    def compute(self, window: TrajectoryWindow, clean_window: TrajectoryWindow | None = None,
                panels: Iterable | None = None) -> PanelData:
        """The per-state analysis of ``window`` with the extras of ``panels`` (panel instances, classes or
        registered keys; default: every registered panel type's declared extras)."""
        extras = _panel_extras(self, panels)
        st = analyze_state(self.adapter, window, self.pair, extras, rtgs=self.rtgs, clean=clean_window,
                           ablation_mode=self.ablation_mode, means=self.means)
        return PanelData(window, st, episode_token_labels(self.adapter, window), clean_window,
                         episode_token_steps(self.adapter, window))


def _panel_extras(ctx: AnalysisContext, panels: Iterable | None) -> list[Extra]:
    """The extras asked by ``panels`` (one per type: the first panel asking wins)."""
    from .registry import PANEL_TYPES

    items = list(PANEL_TYPES.values()) if panels is None else list(panels)
    out: dict[type, Extra] = {}
    for p in items:
        p = PANEL_TYPES.get(p, p) if isinstance(p, str) else p
        if isinstance(p, str):
            raise ValueError(f"expected panels from {tuple(PANEL_TYPES)} (or panel classes / instances), got {p!r}")
        ask = getattr(p, "wanted", None) if not isinstance(p, type) else None
        wanted = ask() if callable(ask) else list(getattr(p, "extras", ()))  # a minimal panel declares none
        for e in wanted:
            out.setdefault(type(e), e)
    return list(out.values())


class Panel:
    """Base class of a panel: ``widget`` (an ipywidgets container), the extras it reads and ``update(data)``.

    ``extras``: the extras every state needs for this panel (class attribute); :meth:`wanted` adds those
    that depend on the panel's own controls (e.g. which component the ablation detail shows).
    """

    key = ""
    title = ""
    extras: tuple[Extra, ...] = ()

    def __init__(self, ctx: AnalysisContext):
        self.ctx = ctx
        self.widget = W.VBox(layout=W.Layout(width="auto", min_width="0"))

    def wanted(self) -> list[Extra]:
        """The extras to compute with the next state for this panel."""
        return list(self.extras)

    def update(self, data: PanelData) -> None:  # pragma: no cover - interface
        raise NotImplementedError


def note(text: str) -> W.HTML:
    """A grey note; ``text`` is plain text (escaped here)."""
    return W.HTML(f"<div style='color:#555;font-size:12px'>{html.escape(text)}</div>")


def esc(x) -> str:
    """``x`` as text escaped for HTML."""
    return html.escape(str(x))

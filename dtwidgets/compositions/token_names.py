"""Naming window tokens by EPISODE step in the Explorer's panels (``s₉`` = the state after 9 steps).

Widgets with a ``steps`` trait receive their token names once, as templates (``s{25}``: token 25),
and per state only the int16 ``steps`` (the episode step of each token, -1 for padding); the rule
that fills them is :func:`~dtwidgets.widgets._traits.fill_steps` (``js/lib/steps.js`` in the
browser). Analyses name tokens by window position (``state embed (s₁)``); :func:`relabel` and
:func:`component_names` turn those names into episode-step names or templates.
"""
from __future__ import annotations

from typing import TYPE_CHECKING

import numpy as np

from ..widgets._traits import escape_braces, fill_steps

if TYPE_CHECKING:
    from .panels import PanelData


def episode_token_steps(adapter, window) -> np.ndarray:
    """int16 ``[P]``: the episode step of each window token (the timestep of its row; -1 for left padding)."""
    n_pad = int(window.n_pad[0])
    ts = [int(t) for t in window.timesteps[0].tolist()]
    return np.array([-1 if k < n_pad else ts[k] for k in adapter.layout.timestep_of], np.int16)


def token_templates(adapter) -> list[str]:
    """``P`` token-label templates (``R{0}``, ``s{1}``, ``a{2}``, ...) to fill with :func:`episode_token_steps`
    (:func:`~dtwidgets.widgets._traits.fill_steps`; widgets with a ``steps`` trait fill them in the browser)."""
    letter = {"rtg": "R", "state": "s", "action": "a"}
    return [f"{letter[kind]}{{{i}}}" for i, kind in enumerate(adapter.layout.kinds)]


def token_label_templates(labels, window_labels, templates) -> list[str]:
    """Component labels naming a token by window position (``state embed (s₁)``) as :func:`~dtwidgets.widgets._traits.fill_steps` templates
    naming it by episode step (``state embed (s{1})``); the rest of each label is kept literally (braces escaped).
    Filled with :func:`episode_token_steps` they equal :func:`relabel`'s labels."""
    out = []
    for lab in labels:
        for w, t in zip(window_labels, templates):
            if f"({w})" in lab:
                out.append(f"({t})".join(escape_braces(part) for part in lab.split(f"({w})")))
                break
        else:
            out.append(escape_braces(lab))
    return out


def episode_token_labels(adapter, window) -> list[str]:
    """Token labels by episode step: ``R₉ s₉`` for the RTG and state of the state after 9 steps,
    ``a₈`` for the action taken at step 8, ``R·pad`` for left padding (window row 0)."""
    steps = episode_token_steps(adapter, window)
    return [fill_steps(t, steps) for t in token_templates(adapter)]


def relabel(labels, data: PanelData, window_labels) -> list[str]:
    """Component labels naming tokens by window position (``state embed (s₁)``) renamed by episode step."""
    m = {f"({w})": f"({e})" for w, e in zip(window_labels, data.token_labels)}
    out = []
    for lab in labels:
        for w, e in m.items():
            if w in lab:
                lab = lab.replace(w, e)
                break
        out.append(lab)
    return out


def token_names(data: PanelData, labels, adapter) -> tuple[list[str], np.ndarray]:
    """``(templates, steps)`` naming an analysis' ``P`` tokens by episode step (a widget's ``steps`` fills
    them); an analysis that names other tokens than the window's keeps its ``labels`` as they are."""
    if data.token_steps is not None and len(labels) == len(data.token_steps):
        return token_templates(adapter), data.token_steps
    return [escape_braces(t) for t in labels], np.zeros(0, np.int16)


def component_names(labels, data: PanelData, window_labels, adapter) -> tuple[list[str], np.ndarray]:
    """``(templates, steps)`` of component labels that name a token by window position
    (``state embed (s₁)``), to show them by episode step (:func:`token_label_templates`)."""
    tokens, steps = token_names(data, window_labels, adapter)
    return token_label_templates(labels, window_labels, tokens), steps

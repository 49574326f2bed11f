"""Naming window tokens by EPISODE step in the Explorer's panels (``s₉`` = the state after 9 steps).

Widgets with a ``steps`` trait receive their token names once, as templates (``s{25}``: token 25),
and per state only the int16 ``steps`` (the episode step of each token, -1 for padding); the rule
that fills them is :func:`~dtwidgets.widgets._traits.fill_steps` (``js/lib/steps.js`` in the
browser). Results carry structured component ids (:mod:`dtwidgets.analysis.ids`);
:func:`component_templates` builds their labels naming tokens by episode step.
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


def component_templates(ids, data: PanelData, adapter) -> tuple[list[str], np.ndarray]:
    """``(templates, steps)``: component labels built from their structured ids
    (:class:`~dtwidgets.analysis.ids.ComponentId`), the token of an embedding term named by episode
    step (``state embed (s{25})``, filled with ``steps`` in the browser; nothing is parsed back)."""
    tokens, steps = token_names(data, adapter.layout.labels(), adapter)
    out = []
    for c in ids:
        name = escape_braces(c.name)
        out.append(name if c.token is None else f"{name} ({tokens[c.token]})")
    return out, steps


def episode_token_labels(adapter, window) -> list[str]:
    """Token labels by episode step: ``R₉ s₉`` for the RTG and state of the state after 9 steps,
    ``a₈`` for the action taken at step 8, ``R·pad`` for left padding (window row 0)."""
    steps = episode_token_steps(adapter, window)
    return [fill_steps(t, steps) for t in token_templates(adapter)]


def token_names(data: PanelData, labels, adapter) -> tuple[list[str], np.ndarray]:
    """``(templates, steps)`` naming an analysis' ``P`` tokens by episode step (a widget's ``steps`` fills
    them); an analysis that names other tokens than the window's keeps its ``labels`` as they are."""
    if data.token_steps is not None and len(labels) == len(data.token_steps):
        return token_templates(adapter), data.token_steps
    return [escape_braces(t) for t in labels], np.zeros(0, np.int16)

"""The one registry of the Explorer's panels: every built-in panel is registered here, and
:func:`register_panel` adds a user's.

A panel is any class with ``__init__(ctx: AnalysisContext)``, a ``widget`` attribute and
``update(data: PanelData)`` (optionally ``key``, ``title``, ``extras`` / ``wanted()``: the analysis
extras it reads); ``Explorer(..., panels=(..., "my_key"))`` takes registered keys or classes.

:class:`LazyPanels` creates a panel (and so its widget models) only when it is first asked for: a page
receives the ES modules of the panels shown, not of every tab (anywidget sends ``_esm`` with each model).
"""
from __future__ import annotations

import traceback
from collections.abc import Callable, Sequence
from typing import Any, overload

import ipywidgets as W

from .ablation import AblationPanel
from .attention import AttentionPanel
from .attribution import AttributionPanel
from .base import AnalysisContext, note
from .circuits import CircuitsPanel
from .circuits2 import Circuits2Panel
from .congruence import CongruencePanel
from .directions import DirectionsPanel
from .nmf import NMFPanel
from .patching import PatchingPanel
from .policy_map import PolicyPanel
from .rtg_scan import RTGScanPanel
from .sae import SAEPanel
from .spaces import SpacesPanel

PANELS = ("attribution", "ablation", "attention", "circuits", "rtg_scan", "patching")
"""Keys of the built-in per-state panels, in their default order."""
EXTRA_PANELS = ("policy_map", "circuits2", "directions", "spaces", "congruence", "nmf")
"""Panels shown by default after :data:`PANELS`."""

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


for _cls in (AttributionPanel, AblationPanel, AttentionPanel, CircuitsPanel, RTGScanPanel, PatchingPanel,
             PolicyPanel, Circuits2Panel, DirectionsPanel, SAEPanel, SpacesPanel, CongruencePanel, NMFPanel):
    register_panel(_cls.key, _cls)


def panel_class(key) -> type:
    """The panel class of a registered ``key`` (or ``key`` itself when it is a class)."""
    cls = key if isinstance(key, type) else PANEL_TYPES.get(key)
    if cls is None:
        raise ValueError(f"expected panels from {tuple(PANEL_TYPES)} (or a panel class), got {key!r}")
    return cls


def make_panels(ctx: AnalysisContext, keys) -> list:
    """Instantiate panels from registered keys (see :data:`PANEL_TYPES`) or panel classes."""
    return [panel_class(k)(ctx) for k in keys]


PLACEHOLDER = "computed when shown"
"""What the holder of a panel not created yet shows."""


class PanelCreationError(RuntimeError):
    """A panel's constructor raised. The message names the panel (tab title and key) and the error; the
    original exception is chained (``__cause__``)."""


class LazyPanels(Sequence):
    """The panels of a set of tabs, each created on first access (``panels[i]``), with its widget put
    into ``holders[i]`` (the tab's child: a VBox showing :data:`PLACEHOLDER` until then).

    ``len``, :meth:`keys`, :meth:`titles` and :meth:`is_built` create nothing; iterating creates every
    panel. Keys are validated at once (one error naming the unknown key). A constructor that raises gives
    :class:`PanelCreationError` naming the panel, and its tab shows that message instead of the placeholder.

    Args:
        ctx: the :class:`AnalysisContext` every panel is created with.
        keys: registered keys (:data:`PANEL_TYPES`) or panel classes.
        on_build: called with ``(index, panel)`` right after a panel is created (e.g. to retitle its tab).
    """

    def __init__(self, ctx: AnalysisContext, keys, on_build: Callable[[int, Any], None] | None = None) -> None:
        self.ctx = ctx
        self.classes = [panel_class(k) for k in keys]
        self.on_build = on_build
        self._panels: list[Any] = [None] * len(self.classes)
        self.holders = [W.VBox([note(PLACEHOLDER)], layout=W.Layout(width="auto", min_width="0")) for _ in self.classes]

    def __len__(self) -> int:
        return len(self.classes)

    @overload
    def __getitem__(self, i: int) -> Any: ...

    @overload
    def __getitem__(self, i: slice) -> list: ...

    def __getitem__(self, i):
        """Panel ``i`` (created now if it was not: its widget goes into ``holders[i]``)."""
        if isinstance(i, slice):
            return [self[j] for j in range(len(self))[i]]
        j = range(len(self))[i]  # IndexError for an index out of range; negative indices count from the end
        if self._panels[j] is None:
            panel = self._create(j)
            self._panels[j] = panel
            self.holders[j].children = (panel.widget,)
            if self.on_build is not None:
                self.on_build(j, panel)
        return self._panels[j]

    def _create(self, j: int):
        """Panel ``j`` created now; a constructor that raises leaves the panel uncreated (tried again on the
        next access), its tab saying what failed, and raises :class:`PanelCreationError` naming it."""
        cls = self.classes[j]
        try:
            return cls(self.ctx)
        except Exception as e:
            frames = traceback.extract_tb(e.__traceback__)
            where = f" (in {frames[-1].name})" if frames else ""
            key = getattr(cls, "key", "")
            named = f"{_title(cls, cls)!r} ({key})" if isinstance(key, str) and key else repr(_title(cls, cls))
            error = PanelCreationError(f"panel {named} could not be created: {type(e).__name__}: {e}{where}")
            self.holders[j].children = (note(str(error)),)
            raise error from e

    def is_built(self, i: int) -> bool:
        """Whether panel ``i`` exists (its widget models created)."""
        return self._panels[i] is not None

    def keys(self) -> list[str]:
        """Each panel's ``key`` (of the panel once created, else of its class)."""
        out = [getattr(p if p is not None else c, "key", "") for p, c in zip(self._panels, self.classes)]
        return [k if isinstance(k, str) else "" for k in out]

    def titles(self) -> list[str]:
        """Each tab's title: the panel's ``title``, else its ``key``, else its class name."""
        return [_title(p if p is not None else c, c) for p, c in zip(self._panels, self.classes)]


def _title(p, cls: type) -> str:
    """``p``'s ``title``, else its ``key``, else the class name (a non-text attribute, e.g. a property read
    on the class, does not count)."""
    for name in ("title", "key"):
        v = getattr(p, name, "")
        if isinstance(v, str) and v:
            return v
    return cls.__name__

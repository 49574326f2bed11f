"""PolicyMapView: action distributions over every agent placement, drawn on the grid (js/policy_map_view.js)."""

from __future__ import annotations

from typing import Any

import numpy as np
import traitlets

from ._arrays import SyncedArray
from ._base import DTWidget
from ._traits import IntPair, Labels, check_dims, check_indices

__all__ = ["PolicyMapView"]


class PolicyMapView(DTWidget):
    """The model's action distribution with the agent on every free cell, drawn on the grid.

    Each cell is split into four triangles, one per facing direction; each holds one arrow per
    action (``forward`` points the facing way, ``left`` / ``right`` are turned, other actions are
    dots), opacity = probability. A hover card lists every direction's distribution. All frames
    (e.g. the coefficients of a steering scan) are shipped at once and scrubbed client-side.
    """

    _module = "policy_map_view"
    grid = SyncedArray(3, "uint8", "[W, H, 3]", last_dim=3)
    """The full grid, uint8 [W, H, 3] (``EnvAdapter.full_grid``)."""
    agent_pos = IntPair(None, allow_none=True).tag(sync=True)
    """The real agent's cell (x, y), drawn faintly, or None."""
    agent_dir = traitlets.CInt(None, allow_none=True, min=0, max=3).tag(sync=True)
    """The real agent's facing (0 right .. 3 up) or None."""
    cells = SyncedArray(2, "int32", "[N, 2]", last_dim=2)
    """Placement cells, int32 [N, 2] (x, y)."""
    facings = SyncedArray(1, "int32", "[N]")
    """The facing of each placement (``PolicyMap.facings``), int32 [N] (0 right .. 3 up)."""
    probs = SyncedArray((2, 3), "float32", "[K, N, A]")
    """Probability of each action per frame and placement, float32 [K, N, A] ([N, A] = one frame)."""
    probs_b = SyncedArray((2, 3), "float32", "[K, N, A]")
    """A second map, float32 [K, N, A] (empty = none), for ``mode`` "side_by_side" / "difference"."""
    mode = traitlets.Enum(["single", "side_by_side", "difference"], "single").tag(sync=True)
    """"single", "side_by_side" or "difference" (``probs - probs_b``)."""
    action_names = Labels().tag(sync=True)
    """One name per action (A)."""
    map_labels = Labels().tag(sync=True)
    """Labels of ``probs`` and ``probs_b``."""
    action_kinds = Labels().tag(sync=True)
    """What each action does (A, or empty: MiniGrid's names), :data:`~dtwidgets.adapters.actions.ACTION_KINDS`, e.g. ``action_table(env).kinds``: turns and ``forward`` are drawn relative to the facing, absolute moves (``move_up`` ...) as arrows from the cell centre, others as dots."""
    frame_values = SyncedArray(1, "float32", "[K]")
    """Value of each frame, float32 [K] (e.g. the steering coefficient)."""
    frame_name = traitlets.Unicode("frame").tag(sync=True)
    """What a frame is (e.g. "coefficient")."""
    index = traitlets.CInt(0, min=0).tag(sync=True)
    """The frame shown (the slider; synced back debounced)."""
    selected = IntPair(None, allow_none=True).tag(sync=True)
    """The last clicked cell (x, y) or None."""
    cell_size = traitlets.CInt(0, min=0).tag(sync=True)
    """Cell size in CSS px (0 = automatic)."""
    title = traitlets.Unicode("").tag(sync=True)
    """Title above the map."""

    _DIMS = {"grid": ("W", "H", 3), "cells": ("N", 2), "facings": ("N",), "probs": ("K", "N", "A"),
             "probs_b": ("K", "N", "A"), "action_names": ("A",), "frame_values": ("K",), "action_kinds": ("A",)}

    @traitlets.validate("probs", "probs_b")
    def _three_d(self, proposal: dict) -> np.ndarray:
        v = proposal["value"]
        v = v[None] if v.ndim == 2 and v.size else (v.reshape(0, 0, 0) if not v.size else v)
        return self._shapes_agree({"trait": proposal["trait"], "value": v})

    @traitlets.validate("action_kinds")
    def _kinds(self, proposal: dict):
        from ..adapters.actions import ACTION_KINDS

        bad = [k for k in proposal["value"] if k not in ACTION_KINDS]
        if bad:
            raise traitlets.TraitError(f"PolicyMapView.action_kinds: expected kinds in {tuple(ACTION_KINDS)}, got {bad}")
        return check_dims(self, proposal, self._DIMS)

    @traitlets.validate("grid", "cells", "action_names", "frame_values", "map_labels")
    def _shapes_agree(self, proposal: dict):
        v = check_dims(self, proposal, self._DIMS)
        name = proposal["trait"].name
        if name == "map_labels" and len(v) > 2:
            raise traitlets.TraitError(f"PolicyMapView.map_labels: expected at most 2 labels (probs, probs_b), got {len(v)}")
        grid, cells = (v if name == "grid" else self.grid), (v if name == "cells" else self.cells)
        if grid.size and cells.size:
            W, H = grid.shape[:2]
            check_indices(self, "cells", cells[:, 0], W, f"x of a cell of the {W}x{H} grid")
            check_indices(self, "cells", cells[:, 1], H, f"y of a cell of the {W}x{H} grid")
        return v

    @traitlets.validate("facings")
    def _facings(self, proposal: dict) -> np.ndarray:
        v = proposal["value"]
        if v.size and (v.min() < 0 or v.max() > 3):
            raise traitlets.TraitError(f"PolicyMapView.facings: expected values in 0..3, got {v.min()}..{v.max()}")
        return check_dims(self, proposal, self._DIMS)

    @traitlets.validate("index")
    def _index_in_frames(self, proposal: dict) -> int:
        K = max(1, int(self.probs.shape[0]) if self.probs.size else 1)
        if not 0 <= proposal["value"] < K:
            raise traitlets.TraitError(f"PolicyMapView.index: expected a frame in [0, {K}), got {proposal['value']}")
        return proposal["value"]

    @classmethod
    def from_maps(cls, a: Any, b: Any = None, mode: str | None = None, **kw: Any) -> "PolicyMapView":
        """A view of a :class:`~dtwidgets.analysis.policy_map.PolicyMap` (and a second one to compare;
        default mode then "side_by_side")."""
        w = cls(**kw)
        w.show_maps(a, b, mode)
        return w

    def show_maps(self, a: Any, b: Any = None, mode: str | None = None) -> None:
        """Show one map (or two) as a single frame."""
        if b is not None and not (np.array_equal(a.cells, b.cells) and np.array_equal(a.facings, b.facings)):
            raise ValueError("expected two policy maps over the same placements (same grid and facings)")
        with self.hold_sync(), self.hold_trait_notifications():  # ONE message; shapes checked together at the end
            self._placements(a)
            self.probs = a.probs[None]
            self.probs_b = np.zeros((0, 0, 0), np.float32) if b is None else b.probs[None]
            self.map_labels = [a.label] + ([b.label] if b is not None else [])
            self.mode = mode or ("side_by_side" if b is not None else "single")
            self.frame_values = np.zeros(0, np.float32)
            self.index = 0

    @classmethod
    def from_scan(cls, scan: Any, reference: Any = None, mode: str | None = None, **kw: Any) -> "PolicyMapView":
        """A view of a :class:`~dtwidgets.analysis.steering.SteeringScan` with maps (one frame per
        coefficient); with ``reference`` (e.g. the unsteered map) side by side or as a difference."""
        w = cls(**kw)
        w.show_scan(scan, reference, mode)
        return w

    def show_scan(self, scan: Any, reference: Any = None, mode: str | None = None) -> None:
        """Show a steering scan's maps as frames (scrubbed client-side); see :meth:`from_scan`."""
        if scan.maps is None:
            raise ValueError("expected a steering scan with policy maps (steering_scan(..., placements=...))")
        K = len(scan.maps)
        with self.hold_sync(), self.hold_trait_notifications():  # one message; shapes checked together
            self._placements(scan.maps[0])
            self.probs = scan.map_probs
            self.probs_b = np.zeros((0, 0, 0), np.float32) if reference is None else np.repeat(reference.probs[None], K, 0)
            self.map_labels = [f"steered: {scan.direction_label}"] + ([reference.label] if reference is not None else [])
            self.mode = mode or ("difference" if reference is not None else "single")
            self.frame_values = scan.coefficients
            self.frame_name = "coefficient"
            self.index = int(np.argmax(np.where(np.max(scan.coefficients) > 0, scan.coefficients, np.abs(scan.coefficients))))  # largest c > 0, not 0

    def _placements(self, m: Any) -> None:
        with self.hold_sync(), self.hold_trait_notifications():
            self.grid = m.grid
            self.agent_pos, self.agent_dir = m.agent_pos, m.agent_dir
            self.cells = m.cells
            self.facings = m.facings
            self.action_names = list(m.action_names)

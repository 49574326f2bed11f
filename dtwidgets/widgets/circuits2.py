"""PolicyMapView (action distributions over every agent placement) and CircuitDiagram (strongest paths)."""

from __future__ import annotations

from typing import Any

import numpy as np
import traitlets

from ._arrays import ArrayTrait, array_serialization
from ._base import DTWidget
from ._traits import IntPair, Labels, check_dims, check_indices

__all__ = ["PolicyMapView", "CircuitDiagram"]

_sync_arr = dict(sync=True, **array_serialization)


class PolicyMapView(DTWidget):
    """The model's action distribution with the agent on every free cell, drawn on the grid.

    Each cell is split into four triangles, one per facing direction; each holds one arrow per
    action (``forward`` points the facing way, ``left`` / ``right`` are turned, other actions are
    dots), opacity = probability. A hover card lists every direction's distribution. All frames
    (e.g. the coefficients of a steering scan) are shipped at once and scrubbed client-side.

    Traits
    ------
    grid : uint8 [W, H, 3] the full grid (``EnvAdapter.full_grid``)
    agent_pos : (x, y) or None, agent_dir : int or None — the real agent (drawn faintly)
    cells : int32 [N, 2] placement cells; directions : int32 [N] facing direction (0 right .. 3 up)
    probs : float32 [K, N, A] probability of each action per frame and placement ([N, A] = one frame)
    probs_b : float32 [K, N, A] a second map (empty = none) for ``mode`` "side_by_side" / "difference"
    mode : "single" | "side_by_side" | "difference" (difference = probs - probs_b)
    action_names : list[str] (A); map_labels : [label of probs, label of probs_b]
    action_kinds : list[str] (A) or empty — what each action does
        (:data:`~dtwidgets.adapters.actions.ACTION_KINDS`, e.g. ``action_table(env).kinds``): turns and
        ``forward`` are drawn relative to the placement's facing, absolute moves (``move_up`` ...) as
        arrows from the cell centre (placements without a facing), others as dots. Empty: MiniGrid's
        names (``left`` / ``right`` turns, ``forward``).
    frame_values : float32 [K] value of each frame (e.g. steering coefficient); frame_name : str
    index : int, the shown frame (slider; synced back debounced)
    selected : (x, y) or None, the last clicked cell
    cell_size : int CSS px (0 = auto); title : str
    """

    _module = "policy_map_view"
    grid = ArrayTrait(ndim=3, dtype="uint8", last_dim=3, shape_doc="[W, H, 3]").tag(**_sync_arr)
    agent_pos = IntPair(None, allow_none=True).tag(sync=True)
    agent_dir = traitlets.CInt(None, allow_none=True, min=0, max=3).tag(sync=True)
    cells = ArrayTrait(ndim=2, dtype="int32", last_dim=2, shape_doc="[N, 2]").tag(**_sync_arr)
    directions = ArrayTrait(ndim=1, dtype="int32", shape_doc="[N]").tag(**_sync_arr)
    probs = ArrayTrait(ndim=(2, 3), dtype="float32", shape_doc="[K, N, A]").tag(**_sync_arr)
    probs_b = ArrayTrait(ndim=(2, 3), dtype="float32", shape_doc="[K, N, A]").tag(**_sync_arr)
    mode = traitlets.Enum(["single", "side_by_side", "difference"], "single").tag(sync=True)
    action_names = Labels().tag(sync=True)
    map_labels = Labels().tag(sync=True)
    action_kinds = Labels().tag(sync=True)
    frame_values = ArrayTrait(ndim=1, dtype="float32", shape_doc="[K]").tag(**_sync_arr)
    frame_name = traitlets.Unicode("frame").tag(sync=True)
    index = traitlets.CInt(0, min=0).tag(sync=True)
    selected = IntPair(None, allow_none=True).tag(sync=True)
    cell_size = traitlets.CInt(0, min=0).tag(sync=True)
    title = traitlets.Unicode("").tag(sync=True)

    _DIMS = {"grid": ("W", "H", 3), "cells": ("N", 2), "directions": ("N",), "probs": ("K", "N", "A"),
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

    @traitlets.validate("directions")
    def _dirs(self, proposal: dict) -> np.ndarray:
        v = proposal["value"]
        if v.size and (v.min() < 0 or v.max() > 3):
            raise traitlets.TraitError(f"PolicyMapView.directions: expected values in 0..3, got {v.min()}..{v.max()}")
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
        if b is not None and not (np.array_equal(a.cells, b.cells) and np.array_equal(a.directions, b.directions)):
            raise ValueError("expected two policy maps over the same placements (same grid and directions)")
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
            self.directions = m.directions
            self.action_names = list(m.action_names)


class CircuitDiagram(DTWidget):
    """A layered node-link diagram of a circuit's strongest paths.

    Traits
    ------
    node_labels : list[str] (n); node_layers : int32 [n] column of each node (e.g. its place in the
        residual stream: embeddings, layer 0 attention, layer 0 MLP, ..., action head)
    node_kinds : list[str] (n, optional) "input" | "head" | "mlp" | "output": the node's fill colour
    edges : float32 [E, 3] rows ``(source node, target node, value)``; width ∝ |value|, red > 0, blue < 0
    edge_labels : list[str] (E) written at each edge's middle (e.g. "q", "k", "v")
    unit : str shown with values on hover; title : str
    """

    _module = "circuit_diagram"
    node_labels = Labels().tag(sync=True)
    node_kinds = Labels().tag(sync=True)
    node_layers = ArrayTrait(ndim=1, dtype="int32", shape_doc="[n]").tag(**_sync_arr)
    edges = ArrayTrait(ndim=2, dtype="float32", shape_doc="[E, 3]").tag(**_sync_arr)
    edge_labels = Labels().tag(sync=True)
    unit = traitlets.Unicode("").tag(sync=True)
    title = traitlets.Unicode("").tag(sync=True)

    _DIMS = {"node_labels": ("n",), "node_kinds": ("n",), "node_layers": ("n",), "edges": ("E", 3),
             "edge_labels": ("E",)}

    @traitlets.validate("node_labels", "node_kinds", "node_layers", "edges", "edge_labels")
    def _shapes_agree(self, proposal: dict):
        v = check_dims(self, proposal, self._DIMS)
        name = proposal["trait"].name
        edges = v if name == "edges" else self.edges
        n = len(v) if name == "node_labels" else len(self.node_labels)
        if edges.size:
            if edges.shape[1] != 3:
                raise traitlets.TraitError(f"CircuitDiagram.edges: expected [E, 3] rows (source, target, value), "
                                           f"got shape {tuple(edges.shape)}")
            check_indices(self, "edges", edges[:, :2], n, f"source / target nodes of the {n} node_labels")
        return v

    @classmethod
    def from_path_patching(cls, pp: Any, k: int = 8, **kw: Any) -> "CircuitDiagram":
        """The ``k`` strongest paths of a :class:`~dtwidgets.analysis.path_patching.PathPatching`.

        Nodes are the senders (embeddings, heads, MLPs) and receiving heads / the action head, in
        columns by their place in the residual stream (embeddings, then each layer's attention and
        MLP, then the action head; empty columns dropped); edges are labelled with the receiver's
        input (``q`` / ``k`` / ``v``, ``in`` for an MLP, ``direct`` into the action head)."""
        stage = {lab: int(st) for lab, st in zip(pp.sender_labels, pp.sender_stages)}
        for lab, st in zip(pp.receiver_labels, pp.receiver_stages):
            stage.setdefault(lab.partition(" ")[0] if lab != "action head" else lab, int(st))
        paths = []
        for s, r, v in pp.strongest(k):
            head, _, comp = r.partition(" ") if r != "action head" else (r, "", "")
            paths.append((s, head, comp or ("direct" if r == "action head" else "in"), v))
        kw.setdefault("title", f"strongest direct paths ({pp.direction})")
        return cls.from_edges(paths, stage, **kw)

    @classmethod
    def from_edges(cls, paths: Any, stage: dict, **kw: Any) -> "CircuitDiagram":
        """A diagram of ``paths`` ``[(sender node, receiver node, edge label, value), ...]`` with nodes in
        columns by ``stage[node]`` (their place in the residual stream: 0 embeddings, then each layer's
        attention and MLP, then the action head; empty columns dropped), listed in stream order. A node
        is drawn as "output" (``"action head"``), "input" (stage 0), "mlp" (``"…MLP"``) or "head"."""
        nodes: list[str] = []

        def node(label: str) -> int:
            if label not in nodes:
                nodes.append(label)
            return nodes.index(label)

        edges, labels = [], []
        for s, r, lab, v in paths:
            edges.append((node(s), node(r), v))
            labels.append(lab)
        columns = sorted({stage[n] for n in nodes})
        order = sorted(range(len(nodes)), key=lambda i: (stage[nodes[i]], i))  # nodes listed in stream order
        remap = {old: new for new, old in enumerate(order)}
        edges = [(remap[s], remap[t], v) for s, t, v in edges]
        nodes = [nodes[i] for i in order]
        kw.setdefault("unit", "logits")
        kinds = ["output" if n == "action head" else "input" if stage[n] == 0 else "mlp" if n.endswith("MLP") else "head"
                 for n in nodes]
        return cls(node_labels=nodes, node_kinds=kinds, node_layers=np.asarray([columns.index(stage[n]) for n in nodes], np.int32),
                   edges=np.asarray(edges, np.float32).reshape(-1, 3), edge_labels=labels, **kw)

"""CircuitDiagram: a circuit's strongest paths as a layered node-link diagram (js/circuit_diagram.js)."""

from __future__ import annotations

from typing import Any

import numpy as np
import traitlets

from ._arrays import SyncedArray
from ._base import DTWidget
from ._traits import Labels, check_dims, check_indices

__all__ = ["CircuitDiagram"]


class CircuitDiagram(DTWidget):
    """A layered node-link diagram of a circuit's strongest paths.
    """

    _module = "circuit_diagram"
    node_labels = Labels().tag(sync=True)
    """One label per node (n)."""
    node_kinds = Labels().tag(sync=True)
    """Optional kind of each node (n): "input", "head", "mlp" or "output" (its fill colour)."""
    node_layers = SyncedArray(1, "int32", "[n]")
    """Column of each node, int32 [n] (its place in the residual stream: embeddings, layer 0 attention, layer 0 MLP, ..., action head)."""
    edges = SyncedArray(2, "float32", "[E, 3]")
    """Rows (source node, target node, value), float32 [E, 3]; width ∝ |value|, red > 0, blue < 0."""
    edge_labels = Labels().tag(sync=True)
    """Text at each edge's middle (E), e.g. "q", "k", "v"."""
    unit = traitlets.Unicode("").tag(sync=True)
    """Unit shown with values on hover."""
    title = traitlets.Unicode("").tag(sync=True)
    """Title above the diagram."""

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
        kw.setdefault("title", f"strongest direct paths ({pp.pair_label})")
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

"""Automatic circuit discovery on the DT's graph: edge attribution patching (EAP), exact single-edge
patching, ACDC-style pruning, and a faithfulness / minimality check of the result.

The graph, its edges and the circuit run are :mod:`dtwidgets.analysis.circuit_graph`'s: an edge
sender (embedding / head / MLP) → receiver (a later head's q / k / v input, a later MLP, the action
head); a circuit is a set of kept edges, and the model "with only the circuit" runs the **clean**
window with every other edge carrying the **corrupted** run's write. The metric is the preference
``logit[a] - logit[b]`` at the prediction token (logit units); ``gap = clean - corrupted``.

* :func:`edge_attribution` — EAP: ``score(s → r) = (write_s(corrupted) - write_s(clean)) · ∂metric/∂x_r``
  summed over positions and ``d_model``, with the gradient taken on the clean run with respect to
  receiver ``r``'s own input (one forward and one backward, plus one cached forward of each window).
  It estimates the change of the metric when that edge alone is patched; it is exact where the
  metric is linear in ``x_r`` (edges into the action head of a model without LayerNorm).
* :func:`exact_edge_effects` — the true change of the metric when each edge alone is patched (one
  batched forward, a row per edge); equal to :func:`~dtwidgets.analysis.path_patching.path_patching`'s
  ``effects`` (``ln="recompute"``).
* :func:`discover_circuit` — ``method="eap"`` keeps the edges with ``|score| > threshold·|gap|``;
  ``method="acdc"`` starts from the full graph and, receiver by receiver from the action head back
  (senders latest first), removes an edge for good when the circuit's metric moves by at most
  ``threshold·|gap|`` (one forward per edge). Then edges that cannot matter (from a sender whose
  inputs are all removed, into a node none of whose outputs are kept) are dropped, which leaves the
  metric unchanged exactly. The result states the measured **faithfulness** ``(circuit - corrupted) /
  gap`` and, per kept edge, the metric change when it alone is also removed (**minimal** when every one
  moves the metric by more than ``threshold·|gap|``). With ``make_minimal`` (the default) the search
  guarantees it: while some kept edge moves the metric by at most ``threshold·|gap|``, the one that moves
  it least is removed (one batched forward per round), so the returned circuit is always minimal.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch

from ..adapters.protocol import ModelAdapter
from ..adapters.window import TrajectoryWindow
from . import _common as C
from .circuit_graph import (CircuitGraph, Edge, PreparedRuns, circuit_graph, circuit_logits, preference_fn,
                            receiver_input_grads)

METHODS = ("eap", "acdc")


@dataclass
class EdgeScores:
    """One number per edge of the graph.

    Attributes:
        edges: ``E`` edges (:class:`~dtwidgets.analysis.circuit_graph.Edge`, structured sender / receiver).
        scores: ``[E]`` float64, the metric change (logit units) when that edge alone carries the
            corrupted write (estimated by EAP, or measured: ``method``).
        method: ``"eap"`` or ``"exact"``; pair_label: the metric's pair, e.g. ``"right − forward"``.
        clean_value, corrupted_value: the metric of each run (logit units).
    """

    edges: list[Edge]
    scores: np.ndarray
    method: str
    pair_label: str
    clean_value: float
    corrupted_value: float

    def score(self, sender: str, receiver: str) -> float:
        """The score of the edge ``sender`` (e.g. ``"L0H1"``) → ``receiver`` (e.g. ``"L1H0 q"``)."""
        for e, v in zip(self.edges, self.scores):
            if e.sender.label == sender and e.receiver.label == receiver:
                return float(v)
        raise KeyError(f"no edge {sender!r} → {receiver!r}; expected one of {[e.label for e in self.edges][:6]}...")

    def top(self, k: int = 10) -> list[tuple[str, float]]:
        """The ``k`` edges with the largest ``|score|``: ``[(label, score), ...]``."""
        order = np.argsort(-np.abs(self.scores), kind="stable")[:k]
        return [(self.edges[i].label, float(self.scores[i])) for i in order]


@dataclass
class Circuit:
    """A discovered circuit and how well it explains the metric.

    Attributes:
        edges: the ``K`` kept edges; kept: ``[E]`` bool over ``all_edges``.
        method, threshold: how it was found (``threshold`` is a fraction of ``|gap|``).
        clean_value, corrupted_value, circuit_value: the metric of the clean run, the corrupted run and
            the clean run with every edge outside the circuit corrupted (logit units).
        faithfulness: ``(circuit_value - corrupted_value) / (clean_value - corrupted_value)``.
        removal_effects: ``[K]`` metric change when each kept edge is also removed (logit units).
        contributions: ``[K]`` ``-removal_effects`` (what each edge carries, logit units).
        component_paths: ``[(sender, receiver component, inputs, carried)]``, one per pair of components
            joined by kept edges (``("state embed", "L0H1", "q,k", 6.9)``); ``carried`` is the fall of the
            metric when all of them are removed together (logit units): what the diagram draws.
        minimal: every ``|removal_effects| > threshold·|gap|``; not_minimal: labels of those that are not.
        scores: the :class:`EdgeScores` the search used (EAP for ``"eap"``, None for ``"acdc"``).
        pair_label: the metric's pair ``a − b``; n_forwards: forwards the search itself ran.
    """

    edges: list[Edge]
    kept: np.ndarray
    all_edges: list[Edge]
    method: str
    threshold: float
    pair_label: str
    clean_value: float
    corrupted_value: float
    circuit_value: float
    faithfulness: float
    removal_effects: np.ndarray
    component_paths: list[tuple[str, str, str, float]]
    minimal: bool
    not_minimal: list[str]
    scores: EdgeScores | None
    n_forwards: int

    @property
    def contributions(self) -> np.ndarray:
        return -self.removal_effects

    @property
    def caption(self) -> str:
        """One line: the metric, the size and the measured faithfulness."""
        return (f"{self.method.upper()} circuit for {self.pair_label}: {len(self.edges)} of {len(self.all_edges)} edges "
                f"keep {self.faithfulness:.1%} of clean − corrupted ({self.circuit_value - self.corrupted_value:+.3f} of "
                f"{self.clean_value - self.corrupted_value:+.3f} logits)" + ("" if self.minimal else
                                                                             f"; {len(self.not_minimal)} edge(s) not minimal"))

    def summary(self) -> str:
        lines = [self.caption, f"minimal: {self.minimal} (threshold {self.threshold:g} × |gap|)"]
        lines += [f"  {e.label}: carries {c:+.4f}" for e, c in zip(self.edges, self.contributions)]
        return "\n".join(lines)


def _gap_checked(clean_v: float, corr_v: float) -> float:
    gap = clean_v - corr_v
    if abs(gap) <= 1e-5 * max(1.0, abs(clean_v)):
        raise ValueError(f"clean and corrupted give the same metric ({clean_v:.6g} vs {corr_v:.6g}): there is no "
                         "difference for a circuit to explain; expected two windows the model treats differently")
    return gap


def edge_attribution(adapter: ModelAdapter, clean: TrajectoryWindow, corrupted: TrajectoryWindow, a, b=None, *,
                     graph: CircuitGraph | None = None, prepared: PreparedRuns | None = None) -> EdgeScores:
    """EAP scores of every edge (see the module docstring): ``[E]`` logit units."""
    graph = circuit_graph(adapter) if graph is None else graph
    pref = preference_fn(adapter, a, b)
    with C.reuse_weights():
        prepared = PreparedRuns(adapter, clean, corrupted) if prepared is None else prepared
        value, grads = receiver_input_grads(adapter, clean, pref, graph)  # [R, P, d]
    D = prepared.deltas.double()  # [S, P, d]
    scores = (D[graph.edge_sender] * grads.double()[graph.edge_receiver]).sum((1, 2))
    return EdgeScores(graph.edges, scores.cpu().numpy(), "eap", C.pair_label(adapter, a, b), value,
                      float(pref(prepared.corrupted_logits)))


def exact_edge_effects(adapter: ModelAdapter, clean: TrajectoryWindow, corrupted: TrajectoryWindow, a, b=None, *,
                       graph: CircuitGraph | None = None, prepared: PreparedRuns | None = None) -> EdgeScores:
    """The measured metric change when each edge alone is patched (one row per edge, batched)."""
    graph = circuit_graph(adapter) if graph is None else graph
    pref = preference_fn(adapter, a, b)
    prepared = PreparedRuns(adapter, clean, corrupted) if prepared is None else prepared
    E = len(graph.edges)
    dev = C.device(adapter)
    rows = torch.cat([torch.zeros(1, E, dtype=torch.bool, device=dev), torch.eye(E, dtype=torch.bool, device=dev)])
    v = pref(circuit_logits(adapter, clean, corrupted, rows, graph=graph, prepared=prepared))
    return EdgeScores(graph.edges, (v[1:] - v[0]).cpu().numpy(), "exact", C.pair_label(adapter, a, b),
                      float(pref(prepared.clean_logits)), float(pref(prepared.corrupted_logits)))


def prune_dangling(graph: CircuitGraph, kept: np.ndarray) -> np.ndarray:
    """``kept`` without the edges that cannot change a circuit run: edges from a head / MLP none of whose
    inputs has a kept edge from a live sender (it writes its corrupted value anyway), and edges into a
    head / MLP with no kept edge out of it on a path to the action head. ``[E]`` bool."""
    kept = np.asarray(kept, bool).copy()
    s_of, r_of = graph.edge_sender.numpy(), graph.edge_receiver.numpy()
    node_of_sender = [s.label for s in graph.senders]
    node_of_receiver = [r.node for r in graph.receivers]
    while True:
        fed = {s.label for s in graph.senders if s.kind == "embed"}
        for e in np.argsort(r_of, kind="stable"):  # receivers in stream order: a sender is fed before it sends
            if kept[e] and node_of_sender[s_of[e]] in fed:
                fed.add(node_of_receiver[r_of[e]])
        useful = {"action head"}
        for e in np.argsort(-s_of, kind="stable"):  # senders latest first
            if kept[e] and node_of_receiver[r_of[e]] in useful:
                useful.add(node_of_sender[s_of[e]])
        new = kept & np.array([node_of_sender[s] in fed and node_of_receiver[r] in useful for s, r in zip(s_of, r_of)])
        if (new == kept).all():
            return kept
        kept = new


def _acdc(adapter, clean, corrupted, graph, prepared, pref, tol: float) -> tuple[np.ndarray, int]:
    """Greedy ACDC: ``(kept [E] bool, forwards run)``."""
    removed = torch.zeros(1, len(graph.edges), dtype=torch.bool, device=C.device(adapter))
    current = float(pref(prepared.clean_logits))
    r_of, s_of = graph.edge_receiver.numpy(), graph.edge_sender.numpy()
    order = sorted(range(len(graph.edges)), key=lambda e: (-r_of[e], -s_of[e]))
    for e in order:
        trial = removed.clone()
        trial[0, e] = True
        v = float(pref(circuit_logits(adapter, clean, corrupted, trial, graph=graph, prepared=prepared))[0])
        if abs(v - current) <= tol:
            removed, current = trial, v
    return ~removed[0].cpu().numpy(), len(order)


def discover_circuit(adapter: ModelAdapter, clean: TrajectoryWindow, corrupted: TrajectoryWindow, a, b=None, *,
                     method: str = "eap", threshold: float = 0.02, make_minimal: bool = True) -> Circuit:
    """The circuit of the edges that matter for ``logit[a] - logit[b]`` between ``clean`` and ``corrupted``.

    Args:
        clean, corrupted: one-row windows the model treats differently (e.g. an obstacle ahead / none).
        a, b: actions by name or index; ``b`` None: the logit of ``a`` alone.
        method: ``"eap"`` (one gradient pass; keep ``|EAP score| > threshold·|gap|``) or ``"acdc"`` (one
            forward per edge; remove edges moving the circuit's metric by at most ``threshold·|gap|``).
        threshold: a fraction of ``|clean - corrupted|`` (e.g. 0.02 = 2 % of the difference), > 0.
        make_minimal: after the search, remove kept edges one at a time (the least important first) until
            every kept edge moves the metric by more than ``threshold·|gap|`` when removed (one batched
            forward per round); False returns the search's circuit as found (``minimal`` then reports it).
    """
    if method not in METHODS:
        raise ValueError(f"method: expected one of {METHODS}, got {method!r}")
    if not (isinstance(threshold, (int, float)) and 0 < float(threshold) < 1):
        raise ValueError(f"threshold: expected a fraction of |clean - corrupted| in (0, 1), got {threshold!r}")
    graph = circuit_graph(adapter)
    pref = preference_fn(adapter, a, b)
    with C.reuse_weights():
        prepared = PreparedRuns(adapter, clean, corrupted)
        clean_v, corr_v = float(pref(prepared.clean_logits)), float(pref(prepared.corrupted_logits))
        tol = float(threshold) * abs(_gap_checked(clean_v, corr_v))
        scores = None
        if method == "eap":
            scores = edge_attribution(adapter, clean, corrupted, a, b, graph=graph, prepared=prepared)
            kept, n_fwd = np.abs(scores.scores) > tol, 1
        else:
            kept, n_fwd = _acdc(adapter, clean, corrupted, graph, prepared, pref, tol)
        kept = prune_dangling(graph, kept)
        circuit_v, effects, paths = _removal_effects(adapter, clean, corrupted, graph, prepared, pref, kept)
        while make_minimal and len(effects) and np.abs(effects).min() <= tol:
            kept = kept.copy()
            kept[np.flatnonzero(kept)[int(np.abs(effects).argmin())]] = False
            kept = prune_dangling(graph, kept)
            circuit_v, effects, paths = _removal_effects(adapter, clean, corrupted, graph, prepared, pref, kept)
            n_fwd += 1
    idx = np.flatnonzero(kept)
    bad = [graph.edges[i].label for i, d in zip(idx, effects) if not abs(d) > tol]
    return Circuit([graph.edges[i] for i in idx], kept, graph.edges, method, float(threshold),
                   C.pair_label(adapter, a, b), clean_v, corr_v, circuit_v, (circuit_v - corr_v) / (clean_v - corr_v),
                   effects, paths, not bad, bad, scores, n_fwd)


def _node_groups(graph: CircuitGraph, kept: np.ndarray) -> dict[tuple[str, str], list[int]]:
    """``{(sender label, receiver node): [kept edge indices]}``: the kept edges between two components
    (e.g. ``state embed → L0H0`` through ``q`` and ``k``), in edge order."""
    groups: dict[tuple[str, str], list[int]] = {}
    for i in np.flatnonzero(kept):
        e = graph.edges[i]
        groups.setdefault((e.sender.label, e.receiver.node), []).append(int(i))
    return groups


def _removal_effects(adapter, clean, corrupted, graph, prepared, pref, kept: np.ndarray):
    """``(circuit value, [K] change when each kept edge is also removed, node paths)`` in one batched
    forward; node paths ``[(sender, receiver node, inputs, carried)]`` with ``carried`` the fall of the
    metric when all kept edges between those two components are removed together."""
    idx = np.flatnonzero(kept)
    groups = _node_groups(graph, kept)
    removals = [[int(i)] for i in idx] + [g for g in groups.values() if len(g) > 1]
    rows = torch.as_tensor(~kept, device=C.device(adapter))[None].repeat(len(removals) + 1, 1)
    for r, edges in enumerate(removals, start=1):
        rows[r, edges] = True
    v = pref(circuit_logits(adapter, clean, corrupted, rows, graph=graph, prepared=prepared))
    drop = {tuple(e): float(v[r] - v[0]) for r, e in enumerate(removals, start=1)}
    paths = []
    for (snd, node), edges in groups.items():
        r = graph.edges[edges[0]].receiver
        inputs = ",".join(graph.edges[i].receiver.input for i in edges) if r.kind == "head" else \
            "direct" if r.kind == "action head" else "in"
        paths.append((snd, node, inputs, -drop[tuple(edges)]))
    return float(v[0]), (v[1:len(idx) + 1] - v[0]).cpu().numpy(), paths


def circuit_diagram(circuit: Circuit, **kw):
    """A :class:`~dtwidgets.widgets.CircuitDiagram` of ``circuit``: one edge per pair of components joined
    by kept edges (:attr:`Circuit.component_paths`: ``q,k`` into one head are one drawn edge, valued by
    what they carry together, logit units), titled with :attr:`Circuit.caption` (the measured
    faithfulness)."""
    from ..widgets.circuit_diagram import CircuitDiagram

    stage: dict[str, int] = {}
    for e in circuit.edges:
        stage[e.sender.label], stage[e.receiver.node] = e.sender.stage, e.receiver.stage
    kw.setdefault("title", circuit.caption)
    return CircuitDiagram.from_edges(circuit.component_paths, stage, **kw)

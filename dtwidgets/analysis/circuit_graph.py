"""The DT's computational graph as edges, and two runs over it: a clean run with any set of edges
carrying the corrupted run's value, and the gradient of the preference with respect to every
receiver's input.

**Nodes and edges** are :mod:`dtwidgets.analysis.path_patching`'s (its :func:`senders` and
:func:`receivers`, the one owner): a sender (an embedding, a head's write ``z @ W_O``, an MLP's
``hook_mlp_out``) → a receiver (a later head's ``q`` / ``k`` / ``v`` input, a later MLP's input, the
action head), for every sender whose stage comes before the receiver's.

**A circuit run** (the ACDC convention: "clean run, everything outside the circuit corrupted")::

    x_r = resid(live) + sum over removed edges (s, r) of [ write_s(corrupted) - write_s(live) ]   [P, d_model]

where ``resid(live)`` is the residual stream the receiver reads in the running (patched) forward and
``write_s(live)`` the sender's write in that same forward (a head downstream of a removed edge
writes its patched value). Kept edges carry the live write; removed edges carry the corrupted one.
Every reader of the residual stream is a receiver, so removing every edge gives the corrupted run
exactly and removing none the clean run. Head receivers recompute ``ln1(x_r) @ W + b`` at
``hook_q`` / ``hook_k`` / ``hook_v``; the MLP reads ``x_r`` at ``hook_mlp_in`` (its input only); the
action head reads it at the last layer's ``hook_resid_post`` (only ``ln_final`` reads that). All
hooks come from :mod:`dtwidgets.adapters.hooks` and run through ``adapter.run_with_hooks``.
"""
from __future__ import annotations

from dataclasses import dataclass
from functools import cached_property

import torch

from ..adapters import hooks as hk
from ..adapters.protocol import ModelAdapter
from ..adapters.window import TrajectoryWindow
from . import _common as C
from .path_patching import COMPONENTS, normalize, receivers, sender_cache_names, sender_deltas, senders

_QKV = {"q": hk.hook_q, "k": hk.hook_k, "v": hk.hook_v}


@dataclass(frozen=True)
class Sender:
    """A writer to the residual stream. ``kind`` ``"embed"`` | ``"head"`` | ``"mlp"``; ``label`` e.g.
    ``"state embed"``, ``"L0H1"``, ``"L0MLP"``; ``layer`` / ``head`` None where they do not apply;
    ``stage`` its place in the stream (0 embeddings, ``1 + 2l`` layer ``l``'s heads, ``2 + 2l`` its MLP)."""

    kind: str
    label: str
    layer: int | None
    head: int | None
    stage: int


@dataclass(frozen=True)
class Receiver:
    """A reader of the residual stream. ``kind`` ``"head"`` | ``"mlp"`` | ``"action head"``; ``input``
    ``"q"`` | ``"k"`` | ``"v"`` for a head, None otherwise; ``stage`` as :class:`Sender`'s."""

    kind: str
    layer: int | None
    head: int | None
    input: str | None
    stage: int

    @property
    def node(self) -> str:
        """The component it belongs to: ``"L1H0"``, ``"L1MLP"`` or ``"action head"``."""
        return {"head": f"L{self.layer}H{self.head}", "mlp": f"L{self.layer}MLP"}.get(self.kind, "action head")

    @property
    def label(self) -> str:
        """``"L1H0 q"``, ``"L1MLP"``, ``"action head"``."""
        return f"{self.node} {self.input}" if self.kind == "head" else self.node


@dataclass(frozen=True)
class Edge:
    """One direct path ``sender → receiver``."""

    sender: Sender
    receiver: Receiver

    @property
    def label(self) -> str:
        return f"{self.sender.label} → {self.receiver.label}"


@dataclass
class CircuitGraph:
    """Every edge of a model (``E`` of them), senders ``S`` and receivers ``R`` (action head last).

    ``edge_sender`` / ``edge_receiver``: ``[E]`` int64 indices into ``senders`` / ``receivers``; edges
    are listed receiver by receiver (stream order), senders in stream order within a receiver."""

    senders: list[Sender]
    receivers: list[Receiver]
    edges: list[Edge]
    edge_sender: torch.Tensor
    edge_receiver: torch.Tensor

    @cached_property
    def index(self) -> dict[Edge, int]:
        return {e: i for i, e in enumerate(self.edges)}


def circuit_graph(adapter: ModelAdapter) -> CircuitGraph:
    """The graph of ``adapter`` (see the module docstring)."""
    snd = []
    for label, stage, how in senders(adapter):
        kind = how[0]
        snd.append(Sender(kind, label, None if kind == "embed" else how[1], how[2] if kind == "head" else None, stage))
    rec_list, stages = receivers(adapter)
    rec = [Receiver("mlp" if c == "mlp" else "head", l, h, None if c == "mlp" else c, st)
           for (l, h, c), st in zip(rec_list, stages)] + [Receiver("action head", None, None, None, stages[-1])]
    pairs = [(si, ri) for ri, r in enumerate(rec) for si, s in enumerate(snd) if s.stage < r.stage]
    return CircuitGraph(snd, rec, [Edge(snd[s], rec[r]) for s, r in pairs],
                        torch.tensor([s for s, _ in pairs], dtype=torch.long, device="cpu"),  # structure: CPU indices
                        torch.tensor([r for _, r in pairs], dtype=torch.long, device="cpu"))


def preference_fn(adapter: ModelAdapter, a, b):
    """``pref(logits [..., A]) -> [...]`` float64: ``logit[a] - logit[b]`` (``b`` None: ``logit[a]``)."""
    ia = C.action_index(adapter, a)
    ib = None if b is None else C.action_index(adapter, b)

    def pref(lg: torch.Tensor) -> torch.Tensor:
        return (lg[..., ia] - (lg[..., ib] if ib is not None else 0)).double()

    return pref


# ---- circuit runs ----------------------------------------------------------------------------------
class PreparedRuns:
    """What circuit runs need from the two one-row windows (two cached forwards): every sender's
    ``corrupted - clean`` write ``deltas [S, P, d]`` (the embeddings first: the live embeddings are
    the clean ones), the corrupted ``hook_z`` ``z [L, P, H, d_head]`` and ``hook_mlp_out`` ``mlp [L, P,
    d]``, and both runs' logits ``clean_logits`` / ``corrupted_logits`` ``[A]``."""

    def __init__(self, adapter: ModelAdapter, clean: TrajectoryWindow, corrupted: TrajectoryWindow):
        for name, w in (("clean", clean), ("corrupted", corrupted)):
            if not isinstance(w, TrajectoryWindow) or w.batch_size != 1:
                got = f"{w.batch_size} rows" if isinstance(w, TrajectoryWindow) else type(w).__name__
                raise ValueError(f"{name}: expected a one-row TrajectoryWindow, got {got}")
        L = C.n_layers(adapter)
        snd = senders(adapter)
        names = sender_cache_names(snd, L)
        with torch.inference_mode():
            self.clean_logits, cc = adapter.run_with_cache(clean, names_filter=names)
            self.corrupted_logits, cx = adapter.run_with_cache(corrupted, names_filter=names)
            self.n_embed = sum(x[2][0] == "embed" for x in snd)
            self.deltas = sender_deltas(adapter, snd, cc, cx)  # [S, P, d] every sender's corrupted - clean
            self.embed = self.deltas[:self.n_embed]
            self.z = torch.stack([cx[hk.hook_z(l)][0] for l in range(L)]).float()
            self.mlp = torch.stack([cx[hk.mlp_out(l)][0] for l in range(L)]).float()
            self.clean_logits, self.corrupted_logits = self.clean_logits[0], self.corrupted_logits[0]


def _prefix_deltas(adapter, corr: PreparedRuns, live: dict, n_layers_done: int, with_heads_of: int | None):
    """``[B, S', P, d]`` ``write_s(corrupted) - write_s(live)`` of the senders in stream order: the
    embeddings, every head and MLP of layers ``< n_layers_done``, then (``with_heads_of=l``) layer ``l``'s
    heads. ``live``: ``{("z", l): [B, P, H, d_head], ("mlp", l): [B, P, d]}`` of the running forward."""
    W_O = C.weight(adapter, "W_O").float()
    B = next(iter(live.values())).shape[0] if live else 1
    parts = [corr.embed[None].expand(B, -1, -1, -1)]

    def heads(l):
        dz = corr.z[l][None] - live[("z", l)].float()  # [B, P, H, dh]
        return torch.einsum("bphe,hed->bhpd", dz, W_O[l])

    for l in range(n_layers_done):
        parts += [heads(l), (corr.mlp[l][None] - live[("mlp", l)].float())[:, None]]
    if with_heads_of is not None:
        parts.append(heads(with_heads_of))
    return torch.cat(parts, 1)


def _circuit_hooks(adapter, graph: CircuitGraph, corr: PreparedRuns, removed: torch.Tensor):
    """The hooks of a circuit run for ``removed`` ``[B, E]`` bool (row ``b`` removes those edges)."""
    L, H = C.n_layers(adapter), C.n_heads(adapter)
    B, S, R = removed.shape[0], len(graph.senders), len(graph.receivers)
    M = torch.zeros(B, S, R, device=removed.device)
    M[:, graph.edge_sender.to(M.device), graph.edge_receiver.to(M.device)] = removed.float()
    live: dict = {}
    W = {c: C.weight(adapter, f"W_{c.upper()}").float() for c in COMPONENTS}
    bias = {c: C.weight(adapter, f"b_{c.upper()}").float() for c in COMPONENTS}
    rix = {(r.layer, r.head, r.input or r.kind): i for i, r in enumerate(graph.receivers)}

    def keep(key):
        def fn(act, hook):
            live[key] = act
        return fn

    def qkv(l, c, cols):
        def fn(act, hook):
            m = M[:, :, cols]  # [B, S, H]
            if not m.any():
                return None
            D = _prefix_deltas(adapter, corr, live, l, None)
            x = live[("resid", l)].float()[:, None] + torch.einsum("bsh,bspd->bhpd", m[:, :D.shape[1]], D)
            new = torch.einsum("bhpd,hde->bphe", normalize(adapter, x, "ln1", l), W[c][l]) + bias[c][l][None, None]
            hit = m.any(1)[:, None, :, None]  # [B, 1, H, 1]
            return torch.where(hit, new.to(act.dtype), act)
        return fn

    def add(col, layers_done, heads_of):
        def fn(act, hook):
            m = M[:, :, col]
            if not m.any():
                return None
            D = _prefix_deltas(adapter, corr, live, layers_done, heads_of)
            return act + torch.einsum("bs,bspd->bpd", m[:, :D.shape[1]], D).to(act.dtype)
        return fn

    hooks = []
    for l in range(L):
        hooks.append((hk.resid_pre(l), keep(("resid", l))))
        hooks += [(_QKV[c](l), qkv(l, c, [rix[(l, h, c)] for h in range(H)])) for c in COMPONENTS]
        hooks += [(hk.hook_z(l), keep(("z", l))), (hk.mlp_in(l), add(rix[(l, None, "mlp")], l, l)),
                  (hk.mlp_out(l), keep(("mlp", l)))]
    hooks.append((hk.resid_post(L - 1), add(R - 1, L, None)))
    return hooks


@torch.inference_mode()
def circuit_logits(adapter: ModelAdapter, clean: TrajectoryWindow, corrupted: TrajectoryWindow,
                   removed: torch.Tensor, *, graph: CircuitGraph | None = None, chunk_size: int = 256,
                   prepared: PreparedRuns | None = None) -> torch.Tensor:
    """Logits ``[B, A]`` of circuit runs: row ``b`` runs ``clean`` with the edges ``removed[b]`` (``[B, E]``
    bool over ``graph.edges``) carrying ``corrupted``'s writes (see the module docstring)."""
    graph = circuit_graph(adapter) if graph is None else graph
    removed = torch.as_tensor(removed, dtype=torch.bool, device=C.device(adapter))
    if removed.ndim != 2 or removed.shape[1] != len(graph.edges):
        raise ValueError(f"expected removed [B, {len(graph.edges)}] (one column per edge), got {tuple(removed.shape)}")
    with C.reuse_weights():
        corr = PreparedRuns(adapter, clean, corrupted) if prepared is None else prepared
        out = []
        for start in range(0, removed.shape[0], chunk_size):
            part = removed[start:start + chunk_size]
            out.append(adapter.run_with_hooks(clean.repeat(part.shape[0]),
                                              fwd_hooks=_circuit_hooks(adapter, graph, corr, part)))
    return torch.cat(out) if out else torch.zeros(0, adapter.n_actions, device=C.device(adapter))


# ---- gradients -------------------------------------------------------------------------------------
def receiver_input_grads(adapter: ModelAdapter, window: TrajectoryWindow, pref, graph: CircuitGraph):
    """``(pref value, grads [R, P, d_model])``: the gradient of ``pref(logits)`` with respect to each
    receiver's own input ``x_r`` (a zero perturbation added to it alone), in ONE forward and ONE backward
    of the backbone (``hooks.run_backbone`` on ``adapter.embed(window)``; the protocol's runs are
    gradient-free). The logits are read from the last ``hook_resid_post`` through ``ln_final`` and the
    action head (:func:`~dtwidgets.analysis._common.final_logits`); a mismatch with
    ``adapter.forward`` raises (an adapter whose backbone does not end the model)."""
    L, H, P = C.n_layers(adapter), C.n_heads(adapter), adapter.layout.n_tokens
    d = int(adapter.backbone.cfg.d_model)
    R = len(graph.receivers)
    eps = torch.zeros(R, P, d, requires_grad=True, device=C.device(adapter))
    rix = {(r.layer, r.head, r.input or r.kind): i for i, r in enumerate(graph.receivers)}
    W = {c: C.weight(adapter, f"W_{c.upper()}").float() for c in COMPONENTS}
    bias = {c: C.weight(adapter, f"b_{c.upper()}").float() for c in COMPONENTS}
    kept: dict = {}
    p = adapter.layout.prediction_position

    def keep(l):
        def fn(act, hook):
            kept[l] = act
        return fn

    def qkv(l, c):
        cols = torch.tensor([rix[(l, h, c)] for h in range(H)], device=eps.device)

        def fn(act, hook):
            x = kept[l].float()[:, None] + eps[cols][None]  # [1, H, P, d]
            new = torch.einsum("bhpd,hde->bphe", normalize(adapter, x, "ln1", l), W[c][l]) + bias[c][l][None, None]
            return new.to(act.dtype)
        return fn

    def add(col):
        def fn(act, hook):
            return act + eps[col][None].to(act.dtype)
        return fn

    def final(act, hook):
        kept["final"] = act
        return act

    hooks = []
    for l in range(L):
        hooks += [(hk.resid_pre(l), keep(l))] + [(_QKV[c](l), qkv(l, c)) for c in COMPONENTS]
        hooks.append((hk.mlp_in(l), add(rix[(l, None, "mlp")])))
    hooks += [(hk.resid_post(L - 1), add(R - 1)), (hk.resid_post(L - 1), final)]
    with torch.inference_mode():
        tokens = adapter.embed(window)
        want = float(pref(adapter.forward(window)[0]))
    with torch.enable_grad():
        hk.run_backbone(adapter.backbone, tokens.clone(), hooks)
        lg = C.final_logits(adapter, kept["final"][0, p:p + 1].float())[0]
        value = pref(lg)
        (grads,) = torch.autograd.grad(value, [eps])
    value = float(value.detach())
    if abs(value - want) > 1e-4 * max(1.0, abs(want)):
        raise RuntimeError(f"the gradient run's preference {value:.6g} differs from adapter.forward's {want:.6g}: "
                           "this adapter's backbone output is not read by ln_final and the action head alone")
    return value, grads.detach()

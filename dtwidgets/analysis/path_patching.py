"""Direct path patching: every sender of the residual stream → a later head's query / key / value
input, or → the action head.

**Senders** are everything that writes to the residual stream and differs between two runs, in
residual-stream order:

- the token embeddings, one sender per input: ``"RTG embed"``, ``"state embed"``, ``"action embed"``
  (windows of more than one step) and ``"time embed"`` (read from the DT's own hooks
  ``dt.hook_*_embed`` and placed at their tokens by the :class:`~dtwidgets.adapters.TokenLayout`);
- every attention head ``"L0H1"`` (its write ``z @ W_O``);
- every MLP layer ``"L0MLP"`` (``hook_mlp_out``).

The positional embedding and the attention / MLP output biases are constants: they write the same
vector in both runs, so their path effect is zero by definition and they are not senders. The
senders' writes add up to the whole residual stream difference, exactly.

**Receivers**: each head's ``q`` / ``k`` / ``v`` input (of a layer after the sender; the embeddings
reach every layer) and the action head (the preference at the prediction token).

Convention (as :mod:`dtwidgets.analysis.patching`): run the **clean** window; for one edge at a
time, the sender's write is moved to its value in the **corrupted** run *only along that edge*::

    delta_s      = write_s(corrupted) - write_s(clean)                              [P, d_model]
    x_receiver   = resid_pre[l_r] (clean, live) + delta_s   at every position
    q|k|v_{l_r,h_r} = ln1(x_receiver) @ W_{Q|K|V}[l_r, h_r] + b_{Q|K|V}[l_r, h_r]

while every other reader (other heads, the MLPs, the other two inputs of the receiver) still sees
the clean sender. The receiver ``"action head"`` adds ``delta_s`` to the final residual stream at the
prediction token and reads ``ln_final`` and the action head: the sender's direct effect.

``ln="recompute"`` (default) recomputes the receiver's LayerNorm on the patched input (the exact
edge intervention); ``ln="frozen"`` keeps the LayerNorm scale of the unpatched input (the standard
linearisation, as TransformerLens 3.9's ``get_act_patch_direct_path``): then the action-head column
is linear in the senders' writes and sums to ``full_input_effects[action head]``. Models without
LayerNorm give the same numbers either way.

``full_input_effects[r]`` patches **all** senders into receiver ``r`` at once: the receiver's whole
input moved to its corrupted value (for the action head: ``corrupted - clean``).

Why not TransformerLens' ``get_act_patch_direct_path``: TL 4's (``transformer_lens.patching``) computes
the exact head → head edge patch but needs ``use_split_qkv_input``, which TL 4's native bridge
attention (our backbone) does not offer; TL 3.9's (``tools.analysis.direct_path_patching``)
linearises through the cached ``ln1`` scale without centring or the LN weight (exact without
LayerNorm, where the tests match it). Both take heads as senders only and run one forward per edge;
here every edge is one row of ONE batched forward on the DT's window.

``effect = pref(patched) - pref(clean)`` with ``pref = logit[a] - logit[b]``; ``fraction`` divides by
``pref(corrupted) - pref(clean)`` (NaN when the two runs agree). ``reverse=True`` runs the corrupted
window and moves senders to their clean values.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Callable

import numpy as np
import torch

from ..adapters import hooks as hook_names
from ..adapters.protocol import ModelAdapter
from ..adapters.window import TrajectoryWindow
from . import _common as C
from .ids import head_id, mlp_id

COMPONENTS = ("q", "k", "v")
# (sender label, the DT's embedding hook, token kind it is added to; None = every token of its step)
EMBED_SENDERS = (("RTG embed", hook_names.DT_RTG_EMBED, "rtg"), ("state embed", hook_names.DT_STATE_EMBED, "state"),
                 ("action embed", hook_names.DT_ACTION_EMBED, "action"), ("time embed", hook_names.DT_TIME_EMBED, None))
LN_MODES = ("recompute", "frozen")


@dataclass
class PathPatching:
    """Effects of every direct path sender → receiver.

    Attributes:
        effects: ``[S, R]`` change of the preference (logit units) when only the path sender ``s`` →
            receiver ``r`` is patched; NaN where the receiver does not come after the sender.
        fractions: ``[S, R]`` ``effects / (corrupted_value - clean_value)``.
        full_input_effects: ``[R]`` change of the preference when every sender is patched into receiver
            ``r`` at once (its whole input moved to the other run's value).
        sender_labels: ``S`` names in residual-stream order: ``"RTG embed"``, ``"state embed"``,
            ``"action embed"``, ``"time embed"``, then per layer its heads ``"L0H1"`` and ``"L0MLP"``.
        receiver_labels: ``R`` names ``"L0H0 q"`` ... and ``"action head"``.
        sender_stages, receiver_stages: ``[S]`` / ``[R]`` int, place in the residual stream (0 embeddings,
            ``1 + 2l`` layer ``l``'s attention, ``2 + 2l`` its MLP, ``1 + 2L`` the action head); a path
            exists iff the sender's stage is below the receiver's.
        ln: ``"recompute"`` or ``"frozen"`` (see the module docstring).
        pair_label, reverse, clean_value, corrupted_value: as :class:`~dtwidgets.analysis.PatchingResult`.
    """

    effects: np.ndarray
    fractions: np.ndarray
    full_input_effects: np.ndarray
    sender_labels: list[str]
    receiver_labels: list[str]
    sender_stages: np.ndarray
    receiver_stages: np.ndarray
    ln: str
    pair_label: str
    reverse: bool
    clean_value: float
    corrupted_value: float

    def strongest(self, k: int = 5) -> list[tuple[str, str, float]]:
        """The ``k`` paths with the largest ``|effect|``: ``[(sender, receiver, effect), ...]``."""
        e = np.nan_to_num(np.abs(self.effects), nan=-1.0)
        order = np.argsort(-e, axis=None, kind="stable")[:k]
        out = []
        for i in order:
            s, r = np.unravel_index(i, e.shape)
            if e[s, r] >= 0:
                out.append((self.sender_labels[s], self.receiver_labels[r], float(self.effects[s, r])))
        return out

    def figure(self, **kw):
        """A static plotly figure (see :func:`dtwidgets.analysis.figures.path_patching_figure`)."""
        from .figures import path_patching_figure

        return path_patching_figure(self, **kw)


def normalize(adapter: ModelAdapter, x: torch.Tensor, which: str, layer: int | None = None,
          scale_of: torch.Tensor | None = None) -> torch.Tensor:
    """The backbone's LayerNorm ``which`` on ``x`` (identity without LN); with ``scale_of``, divided
    by the scale of ``scale_of`` instead of its own (frozen LN)."""
    if not C.normalization(adapter):
        return x
    ref = x if scale_of is None else scale_of
    ref = ref - ref.mean(-1, keepdim=True)
    x = (x - x.mean(-1, keepdim=True)) / (ref.pow(2).mean(-1, keepdim=True) + adapter.backbone.cfg.eps).sqrt()
    w, b = C.ln_params(adapter, which, layer)
    return x if w is None else x * w + b


def senders(adapter: ModelAdapter) -> list[tuple[str, int, tuple]]:
    """``[(label, stage, how)]``: ``how`` = ``("embed", hook, kind)``, ``("head", l, h)`` or ``("mlp", l)``."""
    L, H = C.n_layers(adapter), C.n_heads(adapter)
    out: list[tuple[str, int, tuple]] = [(lab, 0, ("embed", hook, kind)) for lab, hook, kind in EMBED_SENDERS
           if kind is None or adapter.layout.positions(kind)]  # only the token kinds the layout has
    for l in range(L):
        out += [(head_id(l, h).name, 1 + 2 * l, ("head", l, h)) for h in range(H)]
        out.append((mlp_id(l).name, 2 + 2 * l, ("mlp", l)))
    return out


def receivers(adapter: ModelAdapter) -> tuple[list[tuple[int, int | None, str]], list[int]]:
    """``(receivers, stages)``: every reader of the residual stream but the action head, in stream order,
    ``(l, h, "q" | "k" | "v")`` for each head's inputs then ``(l, None, "mlp")`` per layer; and the stage of
    each (``1 + 2l`` / ``2 + 2l``) followed by the action head's ``1 + 2L`` (one more entry)."""
    L, H = C.n_layers(adapter), C.n_heads(adapter)
    out: list[tuple[int, int | None, str]] = []
    for l in range(L):
        out += [(l, h, c) for h in range(H) for c in COMPONENTS] + [(l, None, "mlp")]
    return out, [1 + 2 * l + (c == "mlp") for l, _, c in out] + [1 + 2 * L]


def sender_cache_names(senders, L: int) -> list[str]:
    names = [how[1] for _, _, how in senders if how[0] == "embed"]
    names += [hook_names.hook_z(l) for l in range(L)] + [hook_names.mlp_out(l) for l in range(L)]
    return names + [hook_names.resid_post(L - 1)]


def sender_deltas(adapter: ModelAdapter, senders, base, source) -> torch.Tensor:
    """``[S, P, d_model]`` each sender's write in the source run minus the base run, at every token."""
    lay = adapter.layout
    W_O = adapter.backbone.W_O.detach()
    out = []
    for _, _, how in senders:
        if how[0] == "embed":
            _, hook, kind = how
            diff = (source[hook][0] - base[hook][0]).float()  # [T or T-1, d]
            d = torch.zeros(lay.n_tokens, diff.shape[-1], dtype=diff.dtype, device=diff.device)
            if kind is None:  # the time embedding is added to every token of its step
                d = diff[torch.tensor(lay.timestep_of, device=diff.device)]
            else:
                pos = lay.positions(kind)
                d[pos] = diff[:len(pos)]
        elif how[0] == "head":
            _, l, h = how
            name = hook_names.hook_z(l)
            d = (source[name][0, :, h] - base[name][0, :, h]).float() @ W_O[l, h].float()
        else:
            name = hook_names.mlp_out(how[1])
            d = (source[name][0] - base[name][0]).float()
        out.append(d)
    return torch.stack(out)


def _qkv_hooks(adapter: ModelAdapter, rows, ln: str, store):
    """Hooks for the head rows ``((l, h, c), delta [P, d])``: keep each receiver layer's live
    ``resid_pre``; overwrite the receiver head's q/k/v on its row. Row ``i`` of the batch is ``rows[i]``."""
    bb = adapter.backbone
    W = {"q": bb.W_Q.detach(), "k": bb.W_K.detach(), "v": bb.W_V.detach()}
    b = {"q": bb.b_Q.detach(), "k": bb.b_K.detach(), "v": bb.b_V.detach()}
    hooks = []
    for l in sorted({r[0] for r, _ in rows if r[2] != "mlp"}):
        def keep(act, hook, l=l):
            store[l] = act
        hooks.append((hook_names.resid_pre(l), keep))
        for c in COMPONENTS:
            mine = [i for i, (r, _) in enumerate(rows) if r[0] == l and r[2] == c]
            if not mine:
                continue
            idx = torch.tensor(mine, device=C.device(adapter))
            heads = torch.tensor([rows[i][0][1] for i in mine], device=idx.device)
            delta = torch.stack([rows[i][1] for i in mine])  # [n, P, d]

            def patch(act, hook, l=l, c=c, idx=idx, heads=heads, delta=delta):
                live = store[l][idx.to(act.device)]
                x = normalize(adapter, live + delta.to(live.dtype), "ln1", l, scale_of=live if ln == "frozen" else None)
                new = torch.einsum("npd,nde->npe", x, W[c][l][heads]) + b[c][l][heads][:, None]
                out = act.clone()
                out[idx, :, heads] = new.to(act.dtype)
                return out
            hooks.append(({"q": hook_names.hook_q, "k": hook_names.hook_k, "v": hook_names.hook_v}[c](l), patch))
    return hooks


def _mlp_hooks(adapter: ModelAdapter, rows, ln: str, fired: set):
    """Hooks for the MLP rows ``((l, None, "mlp"), delta)``: the MLP of layer ``l`` reads ``resid_mid +
    delta`` on those rows (``hook_mlp_in``: the MLP's input, not the residual stream), with ``ln2``'s
    scale frozen at the unpatched input's with ``ln="frozen"``. Each patched layer is added to ``fired``."""
    hooks: list[tuple[str, Callable]] = []
    for l in sorted({r[0] for r, _ in rows if r[2] == "mlp"}):
        mine = [i for i, (r, _) in enumerate(rows) if r[0] == l and r[2] == "mlp"]
        idx = torch.tensor(mine, device=C.device(adapter))
        delta = torch.stack([rows[i][1] for i in mine])
        kept: dict[str, torch.Tensor] = {}

        def mlp_in(act, hook, l=l, idx=idx, delta=delta, kept=kept):
            fired.add(l)
            kept["mid"] = act[idx].clone()
            out = act.clone()
            out[idx] = act[idx] + delta.to(act.dtype)
            return out

        def scale(act, hook, idx=idx, kept=kept):  # frozen ln2: the unpatched input's scale
            x = kept["mid"] - kept["mid"].mean(-1, keepdim=True)
            out = act.clone()
            out[idx] = (x.pow(2).mean(-1, keepdim=True) + adapter.backbone.cfg.eps).sqrt().to(act.dtype)
            return out

        hooks.append((hook_names.mlp_in(l), mlp_in))
        if ln == "frozen" and C.normalization(adapter):
            hooks.append((hook_names.ln_scale(l, "ln2"), scale))
    return hooks


def _receiver_effects(adapter: ModelAdapter, base: TrajectoryWindow, deltas, s_stage, receivers, r_stage, ln, pref):
    """``(effects [S, R], full [R])`` for the head q/k/v and MLP receivers (last column, the action head,
    left NaN / 0): one row per (sender, receiver) path, then one "all senders" row per receiver, and
    an unpatched reference row, all in ONE batched forward of ``base``."""
    S, R = deltas.shape[0], len(receivers) + 1
    dev = C.device(adapter)
    effects = torch.full((S, R), float("nan"), dtype=torch.float64, device=dev)
    full = torch.zeros(R, dtype=torch.float64, device=dev)
    rows, where = [], []
    for ri, r in enumerate(receivers):
        reach = torch.nonzero(s_stage < r_stage[ri]).flatten()
        rows += [(r, deltas[s]) for s in reach.tolist()] + [(r, deltas[reach].sum(0))]
        where += [(int(s), ri) for s in reach] + [(None, ri)]
    store: dict[int, torch.Tensor] = {}
    fired: set[int] = set()
    hooks = _qkv_hooks(adapter, rows, ln, store) + _mlp_hooks(adapter, rows, ln, fired)
    lg = adapter.run_with_hooks(base.repeat(len(rows) + 1), fwd_hooks=hooks)
    silent = sorted({r[0] for r, _ in rows if r[2] == "mlp"} - fired)
    if silent:  # e.g. a TransformerLens backbone's own run_with_hooks: TL 3 never fires hook_mlp_in
        raise RuntimeError(f"the adapter's run_with_hooks never ran {[hook_names.mlp_in(l) for l in silent]} (the "
                           "MLP's input); an adapter must give hook names their TransformerLens 3.9 meaning: route "
                           "backbone hooks through dtwidgets.adapters.hooks.run_backbone")
    ref = pref(lg[-1])
    for i, (s, ri) in enumerate(where):
        if s is None:
            full[ri] = pref(lg[i]) - ref
        else:
            effects[s, ri] = pref(lg[i]) - ref
    return effects, full


def _direct_effects(adapter: ModelAdapter, final: torch.Tensor, writes: torch.Tensor, ln: str, pref) -> torch.Tensor:
    """``[n]`` preference change when each write ``[n, d]`` is added to the final residual ``final [d]`` at
    the prediction token (``ln_final`` recomputed, or at ``final``'s scale with ``ln="frozen"``)."""
    x = torch.cat([final[None], final[None] + writes])
    x = normalize(adapter, x, "ln_final", scale_of=final[None].expand_as(x) if ln == "frozen" else None)
    lg = x @ adapter.W_action.float().T + adapter.b_action.float()
    return pref(lg[1:]) - pref(lg[:1])


@torch.inference_mode()
def path_patching(adapter: ModelAdapter, clean: TrajectoryWindow, corrupted: TrajectoryWindow, a, b=None, *,
                  reverse: bool = False, ln: str = "recompute") -> PathPatching:
    """Every direct path (embedding / head / MLP → later head's q/k/v, → action head) as rows of one forward.

    Args:
        clean, corrupted: one-row windows; a, b: the preference (actions by name or index);
        reverse: run the corrupted window and move senders to their clean values;
        ln: ``"recompute"`` (exact edge patch) or ``"frozen"`` (receiver LN scales of the unpatched input).
    """
    for name, w in (("clean", clean), ("corrupted", corrupted)):
        if w.batch_size != 1:
            raise ValueError(f"expected a one-row {name} window, got {w.batch_size} rows")
    if ln not in LN_MODES:
        raise ValueError(f"expected ln in {LN_MODES}, got {ln!r}")
    base, source = (corrupted, clean) if reverse else (clean, corrupted)
    L = C.n_layers(adapter)
    snd = senders(adapter)
    names = sender_cache_names(snd, L)
    lg_base, cb = adapter.run_with_cache(base, names_filter=names)
    lg_src, cs = adapter.run_with_cache(source, names_filter=names)
    ia = C.action_index(adapter, a)
    ib = None if b is None else C.action_index(adapter, b)

    def pref(lg):
        return (lg[..., ia] - (lg[..., ib] if ib is not None else 0)).double()

    deltas = sender_deltas(adapter, snd, cb, cs)  # [S, P, d]
    s_stage = torch.tensor([st for _, st, _ in snd], device=C.device(adapter))
    receiver_list, stages = receivers(adapter)
    r_stage = torch.tensor(stages, device=s_stage.device)
    S = len(snd)
    effects, full = _receiver_effects(adapter, base, deltas, s_stage, receiver_list, r_stage, ln, pref)
    # senders -> action head: final residual + delta at the prediction token
    p = adapter.layout.prediction_position
    final = cb[hook_names.resid_post(L - 1)][0, p].float()
    direct = _direct_effects(adapter, final, torch.cat([deltas[:, p], deltas[:, p].sum(0, keepdim=True)]), ln, pref)
    effects[:, -1], full[-1] = direct[:S], direct[S]
    v_base, v_src = float(pref(lg_base[0])), float(pref(lg_src[0]))
    denom = v_src - v_base
    fr = effects / denom if abs(denom) > 1e-5 * max(1.0, abs(v_base)) else torch.full_like(effects, float("nan"))
    clean_v, corr_v = (v_src, v_base) if reverse else (v_base, v_src)
    return PathPatching(C.np32(effects), C.np32(fr), C.np32(full), [lab for lab, _, _ in snd],
                        [mlp_id(l).name if c == "mlp" else f"{head_id(l, h).name} {c}"  # type: ignore[arg-type]
                         for l, h, c in receiver_list] + ["action head"],
                        s_stage.cpu().numpy().astype(np.int32), r_stage.cpu().numpy().astype(np.int32), ln,
                        C.pair_label(adapter, a, b), reverse, clean_v, corr_v)

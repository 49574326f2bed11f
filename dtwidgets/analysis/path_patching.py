"""Direct path patching: sender head → receiver head's query / key / value input, or → the action head.

Convention (as :mod:`dtwidgets.analysis.patching`): run the **clean** window; for one edge at a
time, the sender's write is moved to its value in the **corrupted** run *only along that edge*::

    delta_s      = (z_corr[:, :, h_s] - z_clean[:, :, h_s]) @ W_O[l_s, h_s]        [B, P, d_model]
    x_receiver   = resid_pre[l_r] (clean, live) + delta_s   at every position
    q|k|v_{l_r,h_r} = ln1(x_receiver) @ W_{Q|K|V}[l_r, h_r] + b_{Q|K|V}[l_r, h_r]   (LN recomputed)

while every other reader (other heads, the MLPs, the other two inputs of the receiver) still sees
the clean sender. The receiver ``"action head"`` adds ``delta_s`` to the final residual stream
(``ln_final`` recomputed) and reads the action head: the sender's direct effect.

Why not TransformerLens' ``get_act_patch_direct_path``: TL 4's (``transformer_lens.patching``) computes
this exact edge patch but needs ``use_split_qkv_input``, which TL 4's native bridge attention (our
backbone) does not offer; TL 3.9's (``tools.analysis.direct_path_patching``) linearises through the
cached ``ln1`` scale (exact only without LayerNorm, where the tests match it). Both run one forward
per edge on token input; here every edge is one row of ONE batched forward on the DT's window, with
LayerNorm recomputed exactly.

``effect = pref(patched) - pref(clean)`` with ``pref = logit[a] - logit[b]``; ``fraction`` divides by
``pref(corrupted) - pref(clean)`` (NaN when the two runs agree). ``reverse=True`` runs the corrupted
window and moves senders to their clean values.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch

from ..adapters.protocol import ModelAdapter
from ..adapters.window import TrajectoryWindow
from . import _common as C

COMPONENTS = ("q", "k", "v")


@dataclass
class PathPatching:
    """Effects of every direct path sender → receiver.

    Attributes:
        effects: ``[S, R]`` change of the preference (logit units) when only the path sender ``s`` →
            receiver ``r`` is patched; NaN where the receiver is not after the sender.
        fractions: ``[S, R]`` ``effects / (corrupted_value - clean_value)``.
        sender_labels: ``S`` heads ``"L0H1"``; receiver_labels: ``R`` ``"L1H0 q"`` ... and ``"action head"``.
        direction, reverse, clean_value, corrupted_value: as :class:`~dtwidgets.analysis.PatchingResult`.
    """

    effects: np.ndarray
    fractions: np.ndarray
    sender_labels: list[str]
    receiver_labels: list[str]
    direction: str
    reverse: bool
    clean_value: float
    corrupted_value: float

    def strongest(self, k: int = 5) -> list[tuple[str, str, float]]:
        """The ``k`` paths with the largest ``|effect|``: ``[(sender, receiver, effect), ...]``."""
        e = np.nan_to_num(np.abs(self.effects), nan=-1.0)
        order = np.argsort(-e, axis=None)[:k]
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


def _norm(adapter: ModelAdapter, x: torch.Tensor, which: str, layer: int | None = None) -> torch.Tensor:
    """The backbone's LayerNorm ``which`` recomputed on ``x`` (identity without LN)."""
    kind = C.normalization(adapter)
    if not kind:
        return x
    x = x - x.mean(-1, keepdim=True)
    x = x / (x.pow(2).mean(-1, keepdim=True) + adapter.backbone.cfg.eps).sqrt()
    w, b = C.ln_params(adapter, which, layer)
    return x if w is None else x * w + b


def _edges(adapter: ModelAdapter):
    L, H = C.n_layers(adapter), C.n_heads(adapter)
    senders = [(l, h) for l in range(L) for h in range(H)]
    receivers = [(l, h, c) for l in range(L) for h in range(H) for c in COMPONENTS]
    return senders, receivers


def _receiver_hooks(adapter: ModelAdapter, rows, deltas, store):
    """Hooks: keep each receiver layer's live ``resid_pre``; overwrite the receiver head's q/k/v per row."""
    bb = adapter.backbone
    W = {"q": bb.W_Q.detach(), "k": bb.W_K.detach(), "v": bb.W_V.detach()}
    b = {"q": bb.b_Q.detach(), "k": bb.b_K.detach(), "v": bb.b_V.detach()}
    hooks, layers = [], sorted({l for _, (l, _, _) in rows})
    for l in layers:
        def keep(act, hook, l=l):
            store[l] = act
        hooks.append((f"blocks.{l}.hook_resid_pre", keep))
        for c in COMPONENTS:
            mine = [(i, s, h) for i, (s, (lr, h, cc)) in enumerate(rows) if lr == l and cc == c]
            if not mine:
                continue

            def patch(act, hook, l=l, c=c, mine=mine):
                out = act.clone()
                for i, s, h in mine:
                    x = _norm(adapter, store[l][i] + deltas[s], "ln1", l)  # [P, d]
                    out[i, :, h] = (x @ W[c][l, h] + b[c][l, h]).to(act.dtype)
                return out
            hooks.append((f"blocks.{l}.attn.hook_{c}", patch))
    return hooks


@torch.inference_mode()
def path_patching(adapter: ModelAdapter, clean: TrajectoryWindow, corrupted: TrajectoryWindow, a, b=None, *, reverse: bool = False) -> PathPatching:
    """Every direct path (head → later head's q/k/v, head → action head) as rows of one forward.

    Args:
        clean, corrupted: one-row windows; a, b: the preference (actions by name or index).
    """
    for name, w in (("clean", clean), ("corrupted", corrupted)):
        if w.batch_size != 1:
            raise ValueError(f"expected a one-row {name} window, got {w.batch_size} rows")
    base, source = (corrupted, clean) if reverse else (clean, corrupted)
    L = C.n_layers(adapter)
    names = [f"blocks.{l}.attn.hook_z" for l in range(L)] + [f"blocks.{L - 1}.hook_resid_post"]
    lg_base, cb = adapter.run_with_cache(base, names_filter=names)
    lg_src, cs = adapter.run_with_cache(source, names_filter=names)
    ia = C.action_index(adapter, a)
    ib = None if b is None else C.action_index(adapter, b)

    def pref(lg):
        return lg[..., ia] - (lg[..., ib] if ib is not None else 0)

    W_O = adapter.backbone.W_O.detach()
    senders, receivers = _edges(adapter)
    deltas = torch.stack([(cs[f"blocks.{l}.attn.hook_z"][0, :, h] - cb[f"blocks.{l}.attn.hook_z"][0, :, h]) @ W_O[l, h]
                          for l, h in senders])  # [S, P, d]
    rows = [(s, r) for s, (ls, _) in enumerate(senders) for r in receivers if r[0] > ls]
    S, R = len(senders), len(receivers) + 1
    effects = torch.full((S, R), float("nan"), dtype=torch.float64)
    v_base = float(pref(lg_base[0]))
    if rows:
        store: dict[int, torch.Tensor] = {}
        hooks = _receiver_hooks(adapter, rows, deltas, store)
        # the last row is left unpatched: the reference of the same batch
        lg = adapter.run_with_hooks(base.repeat(len(rows) + 1), fwd_hooks=hooks)
        ref = pref(lg[-1]).double()
        for i, (s, r) in enumerate(rows):
            effects[s, receivers.index(r)] = pref(lg[i]).double() - ref
    # sender -> action head: final residual + delta, ln_final recomputed
    p = adapter.layout.prediction_position
    final = cb[f"blocks.{L - 1}.hook_resid_post"][0, p]
    x = _norm(adapter, torch.cat([final[None], final[None] + deltas[:, p]]), "ln_final")
    lg_dir = x @ adapter.W_action.T + adapter.b_action
    effects[:, -1] = (pref(lg_dir[1:]) - pref(lg_dir[:1])).double()
    v_src = float(pref(lg_src[0]))
    denom = v_src - v_base
    fr = effects / denom if abs(denom) > 1e-5 * max(1.0, abs(v_base)) else torch.full_like(effects, float("nan"))
    clean_v, corr_v = (v_src, v_base) if reverse else (v_base, v_src)
    return PathPatching(C.np32(effects), C.np32(fr), [f"L{l}H{h}" for l, h in senders],
                        [f"L{l}H{h} {c}" for l, h, c in receivers] + ["action head"],
                        C.direction_label(adapter, a, b), reverse, clean_v, corr_v)


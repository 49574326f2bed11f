"""Batched runs over copies of ONE window that differ only in their RTG, embedded once.

``analyze_state`` and ``rtg_scan`` run ``N`` rows that are the same window (clean rows, one per
ablation) or the same window with every step's RTG set to a scan value. Embedding the window ``N``
times is wasted work: the protocol's tokens are additive per step (``embed_rtg(R) + embed_time(t)``
...), so the window is embedded once with ``adapter.embed`` and a scan row's RTG tokens are
``embed_rtg(r) + embed_time(t)``. Additivity is checked on the window itself (its embedded RTG and
action tokens against ``embed_rtg``/``embed_action`` + ``embed_time``); an adapter whose tokens
are not additive (e.g. a LayerNorm over the tokens) gets ``None`` and the callers embed every row.

The run goes through the protocol's ``backbone`` with caching hooks (as TransformerLens'
``run_with_cache``) that keep only what the analyses read: the first rows at every position and
every row at the prediction position; the DT's embedding-hook entries (``dt.hook_*``) are added to
the caches, and the logits are read from the cached last ``resid_post`` with the cached
``ln_final`` scale, the way the action head reads it.

Only the prediction position is read after the last layer's attention, so for an adapter that
declares the optional capability ``last_position_trim = True`` (ours do) the last layer's MLP
runs on that position alone: a hook on ``blocks.{L-1}.hook_resid_mid`` passes on only the last
position (the MLP is ~30 % of a 2-layer model's work at every other position). Whether a backbone
computes the same last-position values that way is checked once per backbone against an untrimmed
run (:func:`_trim_checked`); cached entries after the trim hold NaN at every other position.
"""
from __future__ import annotations

import weakref
from typing import AbstractSet, Any, Callable, Sequence

import torch

from ..adapters.last_position import computed_after_cut, cut_point, keep_last_position
from ..adapters.protocol import ModelAdapter
from ..adapters.window import TrajectoryWindow
from . import _common as C
from ..adapters import hooks as hk


def _close(x: torch.Tensor, y: torch.Tensor) -> bool:
    tol = 1e-5 * max(1.0, float(y.abs().max()) if y.numel() else 1.0)
    return bool(x.shape == y.shape and (x - y).abs().max() <= tol) if x.numel() else x.shape == y.shape


def replicated_tokens(adapter: ModelAdapter, window: TrajectoryWindow, n_same: int, rtgs: torch.Tensor):
    """Tokens ``[n_same + R, P, d_model]``: ``n_same`` copies of the one-row ``window``, then one row
    per RTG in ``rtgs`` ``[R]`` (every step's RTG set to it, as ``window.with_rtg``), plus the
    ``dt.hook_*`` entries of those rows (``{name: [N, T or T-1, d_model]}``); ``None`` when the
    adapter's tokens are not additive per step (see the module docstring)."""
    lay = adapter.layout
    lo, hi = adapter.rtg_range
    if rtgs.numel() and bool((~torch.isfinite(rtgs) | (rtgs < lo - 1e-6) | (rtgs > hi + 1e-6)).any()):
        raise ValueError(f"expected scan RTGs in the model's range [{lo}, {hi}], got min {float(rtgs.min()):.4g}, "
                         f"max {float(rtgs.max()):.4g}")
    tokens = adapter.embed(window)[0]  # [P, d]
    ts = torch.tensor(lay.timestep_of, device=tokens.device)
    time = adapter.embed_time(window.timesteps[0])  # [T, d]
    time_at = time[ts]  # [P, d]: the time term of every token
    T = lay.n_timesteps
    rtg, scan_rtg = adapter.embed_rtg(torch.cat([window.rtgs[0].to(rtgs.device, torch.float32),
                                                 rtgs.float()])).split([T, int(rtgs.numel())])  # [T, d], [R, d]
    act = adapter.embed_action(window.actions[0])  # [T-1, d]
    rp, sp, ap = (C.kind_positions(adapter, k) for k in ("rtg", "state", "action"))
    if not (_close(tokens[rp], rtg[ts[rp]] + time_at[rp]) and _close(tokens[ap], act[ts[ap]] + time_at[ap])):
        return None
    R, N = int(rtgs.numel()), n_same + int(rtgs.numel())
    out = tokens.expand(N, -1, -1).clone()
    out[n_same:, rp] = scan_rtg[:, None, :] + time_at[rp][None]
    rtg_rows = torch.cat([rtg.expand(n_same, -1, -1), scan_rtg[:, None, :].expand(R, T, -1)])
    dt = {hk.DT_RTG_EMBED: rtg_rows,
          hk.DT_STATE_EMBED: (tokens[sp] - time_at[sp]).expand(N, -1, -1),
          hk.DT_ACTION_EMBED: act.expand(N, -1, -1),
          hk.DT_TIME_EMBED: time.expand(N, -1, -1),
          hk.DT_TOKENS: out}
    return out, dt


def run_tokens_with_cache(adapter: ModelAdapter, tokens: torch.Tensor, dt_entries: dict, names: Sequence[str],
                          fwd_hooks: Sequence = (), *, full_rows: int = 0, full_only: Sequence[str] = ()):
    """Run the backbone on ``tokens`` ``[N, P, d_model]`` with ``fwd_hooks`` active, keeping only what
    the analyses read. Returns ``(logits [N, n_actions], full, last)``:

    * ``full``: an ``ActivationCache`` of ``names`` (backbone hooks and ``dt.*``) for the first
      ``full_rows`` rows at every position (None when ``full_rows`` is 0);
    * ``last``: the same names for every row at the LAST position only, the prediction position
      where the decision is read (position axes narrowed to size 1; ``hook_pattern``: the query
      axis). Index it at position ``-1``, which is also the prediction position of a full cache.
      Backbone names in ``full_only`` are kept in ``full`` only (not in ``last``).

    Keeping every row at every position (~14 MB for 112 rows of a 2-layer, 26-token model) across
    the forward makes the allocator hand that memory back and fault it in again for every state.
    The logits are read from ``resid_post`` of the last layer with ``ln_final``'s cached scale.
    """
    lay, L = adapter.layout, C.n_layers(adapter)
    if lay.prediction_position != lay.n_tokens - 1:
        raise ValueError(f"expected the prediction position to be the last token ({lay.n_tokens - 1}), "
                         f"got {lay.prediction_position}")
    final = hk.resid_post(L - 1)
    norm = C.normalization(adapter)
    bb_names = {n for n in names if not n.startswith("dt.")} | {final} | ({hk.ln_scale()} if norm else set())
    row0 = set(full_only) - {final, hk.ln_scale()} if full_rows else set()
    points = adapter.backbone.hook_dict  # read once: a TL 4 bridge rebuilds it (aliases) on every access
    cut = L if _trim_checked(adapter, tokens, fwd_hooks, L, points) else None
    full, last = _run_hooked(adapter.backbone, tokens, fwd_hooks, sorted(bb_names), full_rows, row0, cut, points=points)
    scale = last[hk.ln_scale()][:, -1] if norm else None
    logits = C.final_logits(adapter, last[final][:, -1], scale)
    dt = {n: dt_entries[n] for n in names if n in dt_entries}
    last.cache_dict.update({n: v[:, -1:] if n == hk.DT_TOKENS else v for n, v in dt.items()})
    if full is not None:
        full.cache_dict.update({n: v[:full_rows] for n, v in dt.items()})
    return logits, full, last


_LEVEL = 0x5EED  # the TransformerLens hook "context level" of the hooks added here (removed by level)


def _last_position_copy(name: str, t: torch.Tensor) -> torch.Tensor:
    """A copy of activation ``t`` at the last position: query axis 2 of attention patterns/scores
    ``[B, H, Q, K]``, axis 1 of everything else (``[B, P, ...]``)."""
    axis = 2 if name.endswith(("hook_pattern", "hook_attn_scores")) else 1
    return t.narrow(axis, t.shape[axis] - 1, 1).clone()


def _nan_padded(t: torch.Tensor, rows: int, P: int) -> torch.Tensor:
    """``t[:rows]`` with its last position kept and NaN at the ``P - 1`` others ([rows, P, ...])."""
    out = torch.full((rows, P, *t.shape[2:]), float("nan"), dtype=t.dtype, device=t.device)
    out[:, -1] = t[:rows, -1]
    return out


_TRIM_OK: "weakref.WeakKeyDictionary[torch.nn.Module, bool]" = weakref.WeakKeyDictionary()


def _trim_checked(adapter: ModelAdapter, tokens: torch.Tensor, fwd_hooks: Sequence, L: int, points=None) -> bool:
    """Whether the last of the ``L`` layers may run on the last position alone
    (:mod:`dtwidgets.adapters.last_position`): never when a hook of ``fwd_hooks`` acts after the cut or
    the cut point is not among the backbone's hook ``points`` (default ``backbone.hook_dict``); else
    whether this backbone gave the same last-position residual and ``ln_final`` scale both ways on the
    first rows of ``tokens`` (checked once per backbone; a backbone that raises on the shortened run is
    run in full)."""
    if not getattr(adapter, "last_position_trim", False):  # the optional capability, declared by the adapter
        return False
    points = adapter.backbone.hook_dict if points is None else points
    if any(computed_after_cut(n, L) for n, _ in fwd_hooks) or cut_point(L) not in points:
        return False
    bb = adapter.backbone
    if bb not in _TRIM_OK:
        names = [hk.resid_post(L - 1)] + ([hk.ln_scale()] if C.normalization(adapter) else [])
        x = tokens[:2]
        _, plain = _run_hooked(bb, x, (), names, 0)
        try:
            _, trimmed = _run_hooked(bb, x, (), names, 0, cut=L)
            _TRIM_OK[bb] = all(_close(trimmed[n][:, -1], plain[n][:, -1]) for n in names)
        except Exception:  # noqa: BLE001 -- a backbone that cannot run a shortened last layer runs in full
            _TRIM_OK[bb] = False
    return _TRIM_OK[bb]


_FROM_OK: "weakref.WeakKeyDictionary[torch.nn.Module, dict[int, bool]]" = weakref.WeakKeyDictionary()


def can_run_from_layer(adapter: ModelAdapter) -> bool:
    """Whether ``adapter`` declares the optional protocol capability ``run_from_layer`` (ours do)."""
    return callable(getattr(adapter, "run_from_layer", None))


def run_from_layer_logits(adapter: ModelAdapter, layer: int, resid: torch.Tensor, n_rows: int, fwd_hooks: Sequence,
                          clean_logits: torch.Tensor) -> torch.Tensor | None:
    """Logits ``[n_rows, A]`` of ``n_rows`` copies of ``resid`` ``[1, P, d_model]``, the clean run's
    ``blocks.{layer}.hook_resid_pre``, run through blocks ``layer..L-1`` only (the adapter's
    ``run_from_layer``) with ``fwd_hooks`` (hooks for a batch of ``n_rows``, e.g. ablations of layer
    ``layer``'s components; they must not act before it), the last layer at the last position only when
    the trim was verified on this backbone (:func:`_trim_checked`). ``None`` when the adapter lacks the
    capability or it was refuted: the first run per (backbone, layer) carries one more row, unhooked,
    whose logits must equal ``clean_logits`` ``[A]`` (the clean run's); the callers then run full rows."""
    if not can_run_from_layer(adapter):
        return None
    bb, L = adapter.backbone, C.n_layers(adapter)
    seen = _FROM_OK.setdefault(bb, {})
    if seen.get(layer) is False:
        return None
    check = int(layer not in seen)
    cut = L if _TRIM_OK.get(bb) is True and not any(computed_after_cut(n, L) for n, _ in fwd_hooks) else None
    final, norm = hk.resid_post(L - 1), C.normalization(adapter)
    names = [final] + ([hk.ln_scale()] if norm else [])
    x = resid.expand(n_rows + check, -1, -1).contiguous()  # rows of their own: a block may write in place
    try:
        _, last = _run_hooked(bb, x, fwd_hooks, names, 0, cut=cut,
                              forward=lambda t: adapter.run_from_layer(t, layer))  # type: ignore[attr-defined]
    except Exception:  # noqa: BLE001 -- only while checking: a backbone that cannot start there runs in full
        if not check:
            raise
        seen[layer] = False
        return None
    logits = C.final_logits(adapter, last[final][:, -1], last[hk.ln_scale()][:, -1] if norm else None)
    if check:
        tol = 1e-4 * max(1.0, float(clean_logits.abs().max()))
        seen[layer] = bool((logits[-1] - clean_logits).abs().max() <= tol)
        if not seen[layer]:
            return None
    return logits[:n_rows]


def _run_hooked(backbone, tokens: torch.Tensor, fwd_hooks: Sequence, names: Sequence[str], full_rows: int,
                full_only: AbstractSet[str] = frozenset(), cut: int | None = None,
                forward: Callable[[torch.Tensor], Any] | None = None, points=None):
    """``backbone(tokens)`` with ``fwd_hooks`` and caching hooks on ``names`` attached straight to
    the HookPoints (``backbone.hook_dict``), then removed by level (no reset of every hook point,
    as ``run_with_cache`` inside ``backbone.hooks(...)`` does). The caching hooks copy rows
    ``[:full_rows]`` and every row's last position (see :func:`run_tokens_with_cache`), so the
    backbone's activations are freed as it goes; names in ``full_only`` skip ``last``. With ``cut``
    (the number of layers), the last layer runs on the last position only (``full`` entries after the
    cut are NaN at the other positions). ``forward``: what runs on ``tokens`` (default the backbone;
    :func:`run_from_layer_logits` passes the adapter's ``run_from_layer``); ``points``: the backbone's
    ``hook_dict`` when already read. Returns ``(full or None, last)`` caches."""
    from transformer_lens import ActivationCache

    points = backbone.hook_dict if points is None else points
    full: dict[str, torch.Tensor] = {}
    last: dict[str, torch.Tensor] = {}
    used: dict[int, Any] = {}  # the hook points hooked, each once (a point may carry several hooks)
    P = tokens.shape[1]

    def saver(name: str):
        trimmed = cut is not None and computed_after_cut(name, cut)

        def save(t, hook):
            t = t.detach()
            if name not in full_only:
                last[name] = _last_position_copy(name, t)
            if full_rows:
                full[name] = _nan_padded(t, full_rows, P) if trimmed else t[:full_rows].clone()

        return save

    trim = [(cut_point(cut), keep_last_position)] if cut is not None else []
    try:
        for name, fn in list(fwd_hooks) + trim + [(n, saver(n)) for n in names]:
            if name not in points:
                raise KeyError(f"expected a TransformerLens hook name of the backbone, got {name!r}")
            points[name].add_hook(fn, level=_LEVEL)
            used[id(points[name])] = points[name]
        (backbone if forward is None else forward)(tokens)
    finally:
        for hp in used.values():
            hp.remove_hooks(level=_LEVEL)
    return (ActivationCache(full, backbone) if full_rows else None), ActivationCache(last, backbone)

"""Hook names: the one owner. What each name means, which names a model accepts, and how a hook
reaches the backbone so that a name means the same thing on TransformerLens 3.9 and 4.x.

**Meaning** (TransformerLens 3.9's, on both majors; ``l`` = layer, shapes for ``B`` rows, ``P`` tokens)::

    hook_pos_embed                      W_pos[:P]                                  [B, P, d_model]
    blocks.l.hook_resid_pre             x                                           [B, P, d_model]
    blocks.l.ln1.hook_scale             sqrt(var(x) + eps)        (LN / LNPre only) [B, P, 1]
    blocks.l.ln1.hook_normalized        centre(x) / scale         (LN / LNPre only) [B, P, d_model]
    blocks.l.attn.hook_q / _k / _v      ln1(x) @ W_{Q,K,V} + b                      [B, P, H, d_head]
    blocks.l.attn.hook_attn_scores      q·k / sqrt(d_head), -inf above the diagonal [B, H, P, P]
    blocks.l.attn.hook_pattern          softmax(scores)                             [B, H, P, P]
    blocks.l.attn.hook_z                pattern @ v                                 [B, P, H, d_head]
    blocks.l.hook_attn_out              z @ W_O + b_O                               [B, P, d_model]
    blocks.l.hook_resid_mid             x + attn_out  (the residual stream: the MLP and every later layer read it)
    blocks.l.hook_mlp_in                the MLP's input (= resid_mid); an edit here reaches the MLP only
    blocks.l.ln2.hook_scale / hook_normalized   as ln1, on mlp_in
    blocks.l.mlp.hook_pre               ln2(mlp_in) @ W_in + b_in   (gated: ln2(mlp_in) @ W_gate)  [B, P, d_mlp]
    blocks.l.mlp.hook_pre_linear        ln2(mlp_in) @ W_in          (gated MLPs only)              [B, P, d_mlp]
    blocks.l.mlp.hook_post              act(pre)    (gated: act(pre) * pre_linear + b_in)          [B, P, d_mlp]
    blocks.l.hook_mlp_out               post @ W_out + b_out                        [B, P, d_model]
    blocks.l.hook_resid_post            resid_mid + mlp_out                         [B, P, d_model]
    ln_final.hook_scale / hook_normalized   (LN / LNPre only)

and the DT's own embedding hooks (fired by the adapter, before the backbone): ``dt.hook_rtg_embed``,
``dt.hook_state_embed``, ``dt.hook_action_embed``, ``dt.hook_time_embed`` ``[B, T (T-1 for actions),
d_model]`` and ``dt.hook_tokens`` ``[B, P, d_model]`` (HF adapters add ``dt.hook_embed_ln_scale``).
An edit at a hook (a hook function returning a tensor) is what every later reader sees. TL 3.9 runs
``ln1`` once for each of the q, k, v inputs, so hooks on ``ln1.hook_scale`` / ``ln1.hook_normalized``
run three times there (on equal tensors) and once on TL 4: a hook must not count its calls.

**Where TL 4 differs, and what is done about it.** TL 4's ``TransformerBridge`` maps
``hook_resid_mid`` onto ``ln2.hook_in``, the MLP's input: an edit there would never reach the residual
stream. Here hooks on ``hook_resid_mid`` run at that point and the residual is then carried on as
``resid_post = resid_mid' + mlp_out(resid_mid')``; ``hook_mlp_in`` (which TL 3 fires only with
``use_hook_mlp_in``) is run after them at the same point, with ``resid_post = resid_mid + mlp_out``
(so on both majors it edits what the MLP reads and nothing else). The bridge fires
``hook_attn_scores`` with the post-softmax pattern, after the pattern was used; here the scores are
computed from the (hooked) ``q`` and ``k``, the hooks on them run, and the pattern is the softmax of
what they return. Every other accepted name is the same tensor on both majors. Names that are not
accepted (the bridge's own ``*.hook_in`` / ``*.hook_out``, ``hook_embed``, ``attn.hook_result``,
``hook_q_input`` ...) are refused with :class:`HookNameError`.

Hooks enter the backbone only through :func:`attached` / :func:`run_backbone` (the adapters'
``run_with_hooks`` / ``run_with_cache`` use them); nested uses compose, in the order they were
entered. A hook function is called as ``fn(activation, hook=point)`` with ``point.name`` the accepted
name, as TransformerLens does.
"""
from __future__ import annotations

import functools
import math
import re
import weakref
from collections import defaultdict
from contextlib import contextmanager
from typing import Any, Callable, Iterable, Sequence

import torch
from transformer_lens.utilities import get_act_name

Hook = tuple[Any, Callable]

# ---- builders --------------------------------------------------------------------------------------
_act_name = functools.cache(get_act_name)  # a pure function of its arguments, ~2 us a call uncached
POS_EMBED = get_act_name("pos_embed")
DT_RTG_EMBED, DT_STATE_EMBED = "dt.hook_rtg_embed", "dt.hook_state_embed"
DT_ACTION_EMBED, DT_TIME_EMBED, DT_TOKENS = "dt.hook_action_embed", "dt.hook_time_embed", "dt.hook_tokens"
DT_EMBED_LN_SCALE = "dt.hook_embed_ln_scale"  # HF adapters: embed_ln's scale
DT_EMBED_HOOKS = (DT_RTG_EMBED, DT_STATE_EMBED, DT_ACTION_EMBED, DT_TIME_EMBED, DT_TOKENS)


def resid_pre(l: int) -> str: return _act_name("resid_pre", l)  # noqa: E704
def resid_mid(l: int) -> str: return _act_name("resid_mid", l)  # noqa: E704
def resid_post(l: int) -> str: return _act_name("resid_post", l)  # noqa: E704
def attn_out(l: int) -> str: return _act_name("attn_out", l)  # noqa: E704
def mlp_in(l: int) -> str: return _act_name("mlp_in", l)  # noqa: E704
def mlp_out(l: int) -> str: return _act_name("mlp_out", l)  # noqa: E704
def hook_q(l: int) -> str: return _act_name("q", l)  # noqa: E704
def hook_k(l: int) -> str: return _act_name("k", l)  # noqa: E704
def hook_v(l: int) -> str: return _act_name("v", l)  # noqa: E704
def hook_z(l: int) -> str: return _act_name("z", l)  # noqa: E704
def attn_scores(l: int) -> str: return _act_name("attn_scores", l)  # noqa: E704
def pattern(l: int) -> str: return _act_name("pattern", l)  # noqa: E704
def mlp_pre(l: int) -> str: return _act_name("pre", l)  # noqa: E704
def mlp_pre_linear(l: int) -> str: return _act_name("pre_linear", l)  # noqa: E704
def mlp_post(l: int) -> str: return _act_name("post", l)  # noqa: E704


def bridge_point(l: int, part: str) -> str:
    """A TL 4 bridge's own hook point ``blocks.{l}.{part}`` (e.g. ``mlp.out.hook_out``): internal to the
    backbone (permanent hooks such as the gated-MLP biases), never an accepted name."""
    return f"blocks.{l}.{part}"


def ln_scale(l: int | None = None, which: str = "ln1") -> str:
    """``blocks.{l}.{ln1|ln2}.hook_scale``; ``l=None``: ``ln_final.hook_scale``."""
    return _act_name("scale") if l is None else _act_name("scale", l, which)


def ln_normalized(l: int | None = None, which: str = "ln1") -> str:
    """``blocks.{l}.{ln1|ln2}.hook_normalized``; ``l=None``: ``ln_final.hook_normalized``."""
    return _act_name("normalized") if l is None else _act_name("normalized", l, which)


# ---- vocabulary ------------------------------------------------------------------------------------
_LN_PARTS = ("ln1.hook_scale", "ln1.hook_normalized", "ln2.hook_scale", "ln2.hook_normalized")
_BLOCK_RE = re.compile(r"^blocks\.(\d+)\.(.+)$")
_REFUSED = {  # names TransformerLens has that cannot mean here what they mean in TL 3.9 -> what to use
    "hook_embed": f"the backbone's token input is {DT_TOKENS}",
    "hook_attn_in": "hook_resid_pre (or attn.hook_q / hook_k / hook_v)",
    "hook_q_input": "attn.hook_q", "hook_k_input": "attn.hook_k", "hook_v_input": "attn.hook_v",
    "attn.hook_result": "attn.hook_z (times W_O[head])",
}


class HookNameError(ValueError, KeyError):
    """A hook name the model does not accept (a ValueError, and a KeyError for callers that catch one)."""

    def __str__(self) -> str:
        return str(self.args[0]) if self.args else ""


def block_parts(normalization: str | None, gated: bool) -> tuple[str, ...]:
    """The accepted names of a block, without ``blocks.{l}.``, in forward order."""
    ln = normalization in ("LN", "LNPre")
    parts = ["hook_resid_pre", *(_LN_PARTS[:2] if ln else ()), "attn.hook_q", "attn.hook_k", "attn.hook_v",
             "attn.hook_attn_scores", "attn.hook_pattern", "attn.hook_z", "hook_attn_out", "hook_resid_mid",
             "hook_mlp_in", *(_LN_PARTS[2:] if ln else ()), "mlp.hook_pre", *(("mlp.hook_pre_linear",) if gated else ()),
             "mlp.hook_post", "hook_mlp_out", "hook_resid_post"]
    return tuple(parts)


@functools.cache
def backbone_names(n_layers: int, normalization: str | None, gated: bool) -> tuple[str, ...]:
    """Every backbone hook name accepted for such a model, in forward order."""
    names = [POS_EMBED] + [f"blocks.{l}.{p}" for l in range(n_layers) for p in block_parts(normalization, gated)]
    if normalization in ("LN", "LNPre"):
        names += [ln_scale(), ln_normalized()]
    return tuple(names)


def accepted_names(backbone) -> tuple[str, ...]:
    """:func:`backbone_names` of a TransformerLens backbone (from its ``cfg``)."""
    cfg = backbone.cfg
    return backbone_names(int(cfg.n_layers), cfg.normalization_type, bool(cfg.gated_mlp))


def parse(name: str) -> tuple[int | None, str] | None:
    """``"blocks.3.hook_resid_mid"`` -> ``(3, "hook_resid_mid")``; ``"hook_pos_embed"`` -> ``(None, ...)``;
    None when ``name`` is no name of the vocabulary (whatever the model's configuration)."""
    m = _BLOCK_RE.match(str(name))
    if m:
        every = block_parts("LN", True)
        return (int(m.group(1)), m.group(2)) if m.group(2) in every else None
    if name in (POS_EMBED, ln_scale(), ln_normalized()):
        return None, name
    return None


def _in_vocabulary(name: Any, n_layers: int) -> bool:
    """A name of the vocabulary for a model of ``n_layers`` layers, whatever its LayerNorm / MLP kind."""
    if not isinstance(name, str):
        return False
    if name in (DT_EMBED_LN_SCALE, *DT_EMBED_HOOKS):
        return True
    p = parse(name)
    return p is not None and (p[0] is None or p[0] < n_layers)


def _summary(n_layers: int) -> str:
    return (f"{POS_EMBED}, blocks.{{l}}.{{{', '.join(block_parts('LN', True))}}} for l in 0..{n_layers - 1} "
            f"(ln*/hook_pre_linear: LayerNorm / gated-MLP models only), ln_final.hook_scale / hook_normalized, "
            f"and the DT's embedding hooks {', '.join(DT_EMBED_HOOKS)} (HF adapters: also {DT_EMBED_LN_SCALE})")


def refusal(name: Any, n_layers: int) -> HookNameError:
    """The one error for a hook name that is not accepted: names it, says why and what is accepted."""
    block = _BLOCK_RE.match(str(name))
    tail = block.group(2) if block else str(name)
    if tail in _REFUSED:
        why = f" (it cannot have its TransformerLens 3.9 meaning here; use {_REFUSED[tail]})"
    elif tail.endswith((".hook_in", ".hook_out")) or tail in ("hook_in", "hook_out"):
        why = " (a TransformerLens 4 bridge name; use the TransformerLens 3.9 name of that activation)"
    elif block and parse(str(name)) is not None and int(block.group(1)) >= n_layers:
        why = f" (this model has {n_layers} layer(s))"
    elif parse(str(name)) is not None or str(name) in (DT_EMBED_LN_SCALE, *DT_EMBED_HOOKS):
        why = " (this model has no such activation: no LayerNorm, no gated MLP, or not this adapter's)"
    else:
        why = ""
    return HookNameError(f"hook {name!r} is not accepted{why}; expected one of {_summary(n_layers)}")


def check_names(names: Iterable[Any], accepted: Sequence[str], n_layers: int) -> None:
    """Raise :func:`refusal` for the first of ``names`` not in ``accepted``."""
    ok = set(accepted)
    for n in names:
        if n not in ok:
            raise refusal(n, n_layers)


def expand(fwd_hooks: Iterable[Hook], accepted: Sequence[str], n_layers: int) -> list[tuple[str, Callable]]:
    """``(name or name filter, fn)`` pairs -> ``(name, fn)`` pairs, every name checked; a callable
    filter is applied to the accepted names (as TransformerLens applies it to its own)."""
    out: list[tuple[str, Callable]] = []
    for name, fn in fwd_hooks:
        if callable(name):
            out += [(n, fn) for n in accepted if name(n)]
        else:
            check_names([name], accepted, n_layers)
            out.append((name, fn))
    return out


def cache_request(names_filter, accepted: Sequence[str], n_layers: int) -> list[str]:
    """The names ``run_with_cache(names_filter=...)`` caches, of ``accepted`` (backbone and ``dt.*``):
    all (None), one (a string), those listed, or those a callable keeps. A listed name that is not in
    the vocabulary (nor a ``dt.*`` name) is refused; one this model lacks (an LN hook of a model
    without LayerNorm, ...) is left out, as TransformerLens leaves out names it does not have."""
    if names_filter is None:
        return list(accepted)
    if isinstance(names_filter, str):
        names_filter = [names_filter]
    if isinstance(names_filter, (list, tuple, set, frozenset)):
        for n in names_filter:
            if n not in accepted and not _in_vocabulary(n, n_layers):
                raise refusal(n, n_layers)
        return [n for n in accepted if n in names_filter]
    if callable(names_filter):
        return [n for n in accepted if names_filter(n)]
    raise TypeError(f"expected names_filter None, a hook name, a list of names or a callable, got {type(names_filter).__name__}")


# ---- attaching -------------------------------------------------------------------------------------
_LEVEL = 0x4B00  # the TransformerLens hook context level of every hook attached here (removed by level)
_STACKS: "weakref.WeakKeyDictionary[Any, list[list[tuple[str, Callable]]]]" = weakref.WeakKeyDictionary()
_USED: "weakref.WeakKeyDictionary[Any, list[Any]]" = weakref.WeakKeyDictionary()


def is_bridge(backbone) -> bool:
    """Whether ``backbone`` is a TransformerLens 4 ``TransformerBridge`` (else a TL 3 HookedTransformer)."""
    return type(backbone).__module__.startswith("transformer_lens.model_bridge")


class _Named:
    """A hook point as a hook function sees it, under its accepted name."""

    __slots__ = ("name", "_point")

    def __init__(self, name: str, point):
        self.name, self._point = name, point

    def __getattr__(self, attr):
        return getattr(self._point, attr)


def _as_named(fn: Callable, name: str, point) -> Callable:
    if getattr(point, "name", None) == name:
        return fn
    proxy = _Named(name, point)
    return lambda t, hook: fn(t, hook=proxy)


def _keep(store: dict, key: str) -> Callable:
    def keep(t, hook):
        store[key] = t
    return keep


def _mid_plan(backbone, l: int, mid_fns: list, in_fns: list) -> list:
    """``(point, fn, phase)`` for the hooks on ``resid_mid`` / ``mlp_in`` of layer ``l``: they run in that
    order where the MLP reads; on a bridge (every edit) or with ``mlp_in`` hooks (TL 3), the residual
    is then carried on as ``resid_post = resid_mid (after its hooks) + mlp_out``."""
    points = backbone.hook_dict
    at = points[resid_mid(l)]  # TL 3: the residual itself; TL 4: ln2.hook_in, the MLP's input
    plan = [(at, _as_named(f, resid_mid(l), at), 1) for f in mid_fns]
    if not (in_fns or is_bridge(backbone)):
        return plan
    kept: dict[str, torch.Tensor] = {}
    plan.append((at, _keep(kept, "mid"), 1))
    plan += [(at, _as_named(f, mlp_in(l), at), 1) for f in in_fns]
    plan.append((points[mlp_out(l)], _keep(kept, "mlp"), 2))  # after the hooks on mlp_out
    plan.append((points[resid_post(l)], lambda t, hook: kept["mid"] + kept["mlp"], 0))  # before those on resid_post
    return plan


def _scores_plan(backbone, l: int, fns: list) -> list:
    """TL 4 bridges: the hooks on ``attn_scores`` of layer ``l`` run on ``q·k / scale`` (causal -inf) from
    the hooked ``q`` and ``k``; when one returns a tensor the pattern is recomputed from it (before every
    other hook on ``hook_pattern``, the permanent ones included)."""
    cfg, points = backbone.cfg, backbone.hook_dict
    if float(getattr(cfg, "attn_scores_soft_cap", -1.0) or -1.0) > 0 or getattr(cfg, "positional_embedding_type",
                                                                              "standard") != "standard":
        raise HookNameError(f"hook {attn_scores(l)!r} is not accepted for this backbone (soft-capped or rotary "
                            "attention scores cannot be rebuilt from hook_q and hook_k)")
    scale = float(cfg.attn_scale) if getattr(cfg, "use_attn_scale", True) and float(cfg.attn_scale) > 0 \
        else math.sqrt(int(cfg.d_head))
    kept: dict[str, torch.Tensor] = {}
    proxy = _Named(attn_scores(l), points[pattern(l)])

    def rebuild(pat, hook):
        q, k = kept["q"], kept["k"]
        s = torch.einsum("bqhe,bkhe->bhqk", q, k) / scale
        Q, K = s.shape[-2:]
        s = s.masked_fill(torch.ones(Q, K, dtype=torch.bool, device=s.device).triu(K - Q + 1), float("-inf"))
        edited = False
        for f in fns:
            r = f(s, hook=proxy)
            if r is not None:
                s, edited = r, True
        if not edited:
            return None
        p = s.softmax(-1)
        return torch.where(torch.isnan(p), torch.zeros_like(p), p).to(pat.dtype)

    return [(points[hook_q(l)], _keep(kept, "q"), 2), (points[hook_k(l)], _keep(kept, "k"), 2),
            (points[pattern(l)], rebuild, 0)]


def _plan(backbone, hooks: list[tuple[str, Callable]]) -> list:
    """``(point, fn, phase)`` realising ``hooks`` with their TL 3.9 meaning; phase 0 runs before every
    other hook on its point (prepended), 1 in the callers' order, 2 after them."""
    points = backbone.hook_dict
    by_name: dict[str, list] = defaultdict(list)
    for name, fn in hooks:
        by_name[name].append(fn)
    plan: list = []
    mid_layers: set[int] = set()
    for name, fns in by_name.items():
        layer, part = parse(name) or (None, name)
        if part in ("hook_resid_mid", "hook_mlp_in"):
            mid_layers.add(int(layer))  # type: ignore[arg-type]
        elif part == "attn.hook_attn_scores" and is_bridge(backbone):
            plan += _scores_plan(backbone, int(layer), fns)  # type: ignore[arg-type]
        else:
            plan += [(points[name], _as_named(f, name, points[name]), 1) for f in fns]
    for l in sorted(mid_layers):
        plan += _mid_plan(backbone, l, by_name.get(resid_mid(l), []), by_name.get(mlp_in(l), []))
    return sorted(plan, key=lambda p: p[2])  # stable: the callers' order within a phase


def _install(backbone) -> None:
    for point in _USED.pop(backbone, []):
        point.remove_hooks("fwd", level=_LEVEL)
    hooks = [h for group in _STACKS.get(backbone, []) for h in group]
    used = []
    for point, fn, phase in _plan(backbone, hooks) if hooks else []:
        point.add_hook(fn, level=_LEVEL, prepend=phase == 0)
        used.append(point)
    if used:
        _USED[backbone] = used


@contextmanager
def attached(backbone, fwd_hooks: Iterable[Hook]):
    """Attach ``fwd_hooks`` (``(accepted name or name filter, fn)``) to ``backbone`` for a ``with`` block,
    with their TL 3.9 meaning (see the module docstring); names are checked first (:class:`HookNameError`)."""
    hooks = expand(fwd_hooks, accepted_names(backbone), int(backbone.cfg.n_layers))
    if not hooks:
        yield
        return
    stack = _STACKS.setdefault(backbone, [])
    stack.append(hooks)
    try:
        _install(backbone)
        yield
    finally:
        stack.remove(hooks)
        _install(backbone)


def run_backbone(backbone, tokens: torch.Tensor, fwd_hooks: Sequence[Hook] = (), cache: Sequence[str] = ()):
    """``(backbone(tokens), {name: activation})`` with ``fwd_hooks`` attached and the accepted names
    ``cache`` read after them (detached), both with their TL 3.9 meaning."""
    store: dict[str, torch.Tensor] = {}

    def saver(name: str) -> Callable:
        def save(t, hook):
            store[name] = t.detach()
        return save

    hooks = list(fwd_hooks) + [(n, saver(n)) for n in cache]
    if not hooks:
        return backbone(tokens), store
    with attached(backbone, hooks):
        out = backbone(tokens)
    return out, store


def split_dt(fwd_hooks: Iterable[Hook]) -> tuple[list[Hook], list[Hook]]:
    """``(dt.* hooks, backbone hooks)`` of ``fwd_hooks``, each in the given order."""
    hooks = list(fwd_hooks)
    dt = [(n, f) for n, f in hooks if isinstance(n, str) and n.startswith("dt.")]
    return dt, [(n, f) for n, f in hooks if not (isinstance(n, str) and n.startswith("dt."))]

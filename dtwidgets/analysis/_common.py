"""Shared helpers of the analysis layer: names, directions, weights and batched hook plumbing.

Everything here works on any :class:`~dtwidgets.adapters.ModelAdapter` whose backbone is a
TransformerLens ``HookedTransformer`` (TL 3.x) or ``TransformerBridge`` (TL 4.x), through the
protocol's members only.
"""
from __future__ import annotations

import contextvars
import re
import weakref
from contextlib import contextmanager
from typing import Sequence

import numpy as np
import torch

from ..adapters.device import device_of as device  # noqa: F401  (re-exported: where analyses create tensors)
from ..adapters.hooks import attached
from ..adapters.layout import TOKEN_KINDS
from ..adapters.protocol import ModelAdapter
from ..adapters.window import TrajectoryWindow
from ..adapters.schema import resolve_action
from .directions import pair_label  # noqa: F401  (re-exported for the analysis modules)
from ..adapters import hooks as hk

COMPONENT_RE = re.compile(r"^L(\d+)(?:H(\d+)|N(\d+)|(MLP))$")


# ---- model facts ---------------------------------------------------------------------------------
def n_layers(adapter: ModelAdapter) -> int:
    return int(adapter.backbone.cfg.n_layers)


def n_heads(adapter: ModelAdapter) -> int:
    return int(adapter.backbone.cfg.n_heads)


def d_head(adapter: ModelAdapter) -> int:
    return int(adapter.backbone.cfg.d_head)


def d_mlp(adapter: ModelAdapter) -> int:
    return int(adapter.backbone.cfg.d_mlp)


def has_mlp(adapter: ModelAdapter) -> bool:
    """Whether the blocks have MLPs (an attention-only backbone, ``attn_only`` or ``d_mlp`` 0, has none)."""
    cfg = adapter.backbone.cfg
    return not bool(getattr(cfg, "attn_only", False)) and int(getattr(cfg, "d_mlp", 0) or 0) > 0


def normalization(adapter: ModelAdapter) -> str | None:
    """``None``, ``"LN"`` or ``"LNPre"`` (the backbone's ``normalization_type``)."""
    return adapter.backbone.cfg.normalization_type


def head_labels(adapter: ModelAdapter) -> list[str]:
    """``["L0H0", "L0H1", ...]`` in TransformerLens' ``stack_head_results`` order."""
    from .ids import head_id  # the one format of a head's id

    return [head_id(l, h).name for l in range(n_layers(adapter)) for h in range(n_heads(adapter))]


def mlp_labels(adapter: ModelAdapter) -> list[str]:
    from .ids import mlp_id

    return [mlp_id(l).name for l in range(n_layers(adapter))] if has_mlp(adapter) else []


def action_index(adapter: ModelAdapter, action) -> int:
    """An action given by name (``"forward"``) or index -> index; clear error otherwise."""
    return resolve_action(adapter.action_names, action)


def ln_params(adapter: ModelAdapter, which: str, layer: int | None = None):
    """``(w, b)`` of a LayerNorm (``"ln_final"``, ``"ln1"``, ``"ln2"``) for LN models, ``(None, None)`` otherwise.

    Both TransformerLens majors expose the affine parameters as ``.w`` / ``.b``.
    """
    if normalization(adapter) != "LN":
        return None, None
    bb = adapter.backbone
    mod = bb.ln_final if which == "ln_final" else getattr(bb.blocks[layer], which)
    return mod.w.detach(), mod.b.detach()


def apply_ln(adapter: ModelAdapter, cache, stack: torch.Tensor, pos, layer: int = -1) -> torch.Tensor:
    """``cache.apply_ln_to_stack(stack, layer, pos_slice=pos)``: centre and divide by the cached
    LayerNorm scale of ``layer``'s attention input (``-1``: ``ln_final``); identity without LN."""
    if not normalization(adapter):
        return stack
    return cache.apply_ln_to_stack(stack, layer=layer, pos_slice=pos)


_WEIGHTS: contextvars.ContextVar[dict | None] = contextvars.ContextVar("dtwidgets_backbone_weights", default=None)
#: backbone -> (parameter fingerprint, {name: detached weight}): weights kept across analysis calls while
#: no parameter of the backbone is replaced, moved or edited in place (see :func:`_fingerprint`)
_KEPT: "weakref.WeakKeyDictionary[torch.nn.Module, tuple[tuple, dict]]" = weakref.WeakKeyDictionary()


def _tensors(root: torch.nn.Module) -> list[torch.Tensor | None]:
    """Every parameter and buffer held by ``root`` or a module below it (None for an unset one), read off
    the modules' own ``_parameters`` / ``_buffers`` (what ``parameters()`` and ``buffers()`` walk,
    without their named-member bookkeeping: ~4x faster on a TL 4 bridge; a tensor shared by two modules
    is listed twice). A TL 4 bridge's ``parameters()`` are its ``original_model``'s: that tree is walked too."""
    seen: set[int] = set()
    out: list[torch.Tensor | None] = []
    stack = [root, getattr(root, "original_model", None)]
    while stack:
        m = stack.pop()
        if m is None or id(m) in seen:
            continue
        seen.add(id(m))
        out.extend(m._parameters.values())
        out.extend(m._buffers.values())
        stack.extend(m._modules.values())
    return out


def _fingerprint(backbone: torch.nn.Module) -> tuple:
    """Identity, storage and in-place version counter of every parameter and buffer of ``backbone``:
    it changes when a weight or a module is replaced, moved to another device or dtype, or edited in place
    (``load_state_dict``, ``with torch.no_grad(): W[...] = ...``), so a kept weight is never stale."""
    try:
        return tuple((id(t), t.data_ptr(), t._version, t.dtype) for t in _tensors(backbone) if t is not None)
    except RuntimeError:  # inference tensors keep no version counter: nothing is kept across calls
        return (object(),)


@contextmanager
def reuse_weights():
    """Inside the block, :func:`weight` checks each backbone's parameters once (TL 4's bridge stacks
    ``W_O``, ``W_V``... from its blocks on every access, ~0.1 ms each; the stacked weights are kept
    while the parameters are unchanged). Wraps ONE analysis call (the weights must not change inside
    it); nested blocks share the outer one's check."""
    if _WEIGHTS.get() is not None:
        yield
        return
    token = _WEIGHTS.set({})
    try:
        yield
    finally:
        _WEIGHTS.reset(token)


def weight(adapter: ModelAdapter, name: str) -> torch.Tensor:
    """``adapter.backbone.<name>`` detached (``"W_O"`` ``[L, H, d_head, d_model]``, ``"W_V"``,
    ``"b_V"``, ``"b_O"`` ...): kept across calls while the backbone's parameters are unchanged (checked
    once per :func:`reuse_weights` block, or on every call outside one)."""
    backbone, checked = adapter.backbone, _WEIGHTS.get()
    kept = _KEPT.get(backbone)
    if checked is None or id(backbone) not in checked:
        fp = _fingerprint(backbone)
        if kept is None or kept[0] != fp:
            kept = _KEPT[backbone] = (fp, {})
        if checked is not None:
            checked[id(backbone)] = True
    assert kept is not None
    memo = kept[1]
    key = (name, torch.is_inference_mode_enabled())  # an inference tensor cannot enter autograd (EAP's backward)
    if key not in memo:
        memo[key] = getattr(backbone, name).detach()
    return memo[key]


def require_rtg(adapter: ModelAdapter, analysis: str) -> None:
    """Raise :class:`~dtwidgets.adapters.UnsupportedByModel` when the model's token layout has no RTG tokens."""
    if not adapter.layout.has_rtg:
        from ..adapters.protocol import UnsupportedByModel

        raise UnsupportedByModel(f"{analysis} needs RTG tokens, but this model's token layout is "
                                 f"{adapter.layout.name} (no return-to-go input): its behaviour does not depend on an RTG; "
                                 "use the analyses of the state and action tokens instead")



def last_token_position(adapter: ModelAdapter, kind: str) -> int:
    """Window position of the last ``kind`` token (``"state"``, ``"rtg"``, ``"action"``): where probes,
    SAEs and steering read "the state token" (a clear error when the layout has none)."""
    if kind not in TOKEN_KINDS:
        raise ValueError(f"expected a token kind in {TOKEN_KINDS}, got {kind!r}")
    pos = adapter.layout.positions(kind)
    if not pos:
        raise ValueError(f"this model's window ({adapter.layout.n_tokens} tokens) has no {kind!r} token; "
                         f"expected one of {[t for t in TOKEN_KINDS if adapter.layout.positions(t)]}")
    return int(pos[-1])


def kind_positions(adapter: ModelAdapter, kind: str):
    """The positions of ``kind`` tokens (``"rtg"``, ``"state"``, ``"action"``) as a slice when evenly
    spaced (basic indexing: views, no gather), else the list."""
    ps = adapter.layout.positions(kind)
    if len(ps) == 1:
        return slice(ps[0], ps[0] + 1)
    step = ps[1] - ps[0] if len(ps) > 1 else 0
    if step > 0 and all(b - a == step for a, b in zip(ps, ps[1:])):
        return slice(ps[0], ps[-1] + 1, step)
    return ps


# ---- components ----------------------------------------------------------------------------------
def parse_component(adapter: ModelAdapter, name: str) -> tuple[str, int, int | None]:
    """``"L0H1"`` -> ``("head", 0, 1)``, ``"L1MLP"`` -> ``("mlp", 1, None)``, ``"L0N12"`` -> ``("neuron", 0, 12)``."""
    m = COMPONENT_RE.match(str(name))
    if not m:
        raise ValueError(f"expected a component like 'L0H1' (head), 'L0MLP' (MLP) or 'L0N12' (neuron), got {name!r}")
    l = int(m.group(1))
    if l >= n_layers(adapter):
        raise ValueError(f"component {name!r}: expected a layer in [0, {n_layers(adapter) - 1}]")
    if m.group(2) is not None:
        h = int(m.group(2))
        if h >= n_heads(adapter):
            raise ValueError(f"component {name!r}: expected a head in [0, {n_heads(adapter) - 1}]")
        return "head", l, h
    if m.group(3) is not None:
        n = int(m.group(3))
        if n >= d_mlp(adapter):
            raise ValueError(f"component {name!r}: expected a neuron in [0, {d_mlp(adapter) - 1}]")
        return "neuron", l, n
    return "mlp", l, None


def hook_for(kind: str, layer: int) -> str:
    return {"head": hk.hook_z(layer), "mlp": hk.mlp_out(layer),
            "neuron": hk.mlp_post(layer)}[kind]


# ---- running -------------------------------------------------------------------------------------
@contextmanager
def backbone_hooks(adapter: ModelAdapter, fwd_hooks: Sequence):
    """Temporarily attach forward hooks to the backbone (so ``adapter.run_with_cache`` sees them)."""
    if not fwd_hooks:
        yield
        return
    with attached(adapter.backbone, fwd_hooks):  # the hook names' one owner: TL 3.9 meaning on both majors
        yield


def run_with_cache(adapter: ModelAdapter, window: TrajectoryWindow, names_filter=None, fwd_hooks: Sequence = ()):
    """``adapter.run_with_cache`` with optional backbone forward hooks active during the run."""
    with backbone_hooks(adapter, fwd_hooks):
        return adapter.run_with_cache(window, names_filter=names_filter)


def final_logits(adapter: ModelAdapter, resid: torch.Tensor, scale: torch.Tensor | None = None) -> torch.Tensor:
    """Action logits ``[N, A]`` read from final residuals ``resid`` ``[N, d_model]`` the way the model
    reads them: ``ln_final`` (``scale`` ``[N, 1]``: its cached scale; None: computed from ``resid``
    with the backbone's ``eps``), then the action head ``W_action``, ``b_action``."""
    norm = normalization(adapter)
    if norm:
        if norm in ("LN", "LNPre"):
            resid = resid - resid.mean(-1, keepdim=True)
        if scale is None:
            scale = (resid.pow(2).mean(-1, keepdim=True) + float(adapter.backbone.cfg.eps)).sqrt()
        resid = resid / scale
        if norm in ("LN", "RMS"):
            ln = adapter.backbone.ln_final
            resid = resid * ln.w.detach() + (ln.b.detach() if norm == "LN" else 0)
    return resid @ adapter.W_action.T + adapter.b_action


def softmax_np(logits: torch.Tensor) -> np.ndarray:
    return torch.softmax(logits.double(), -1).float().cpu().numpy()


def np32(t) -> np.ndarray:
    return t.detach().float().cpu().numpy() if torch.is_tensor(t) else np.asarray(t, dtype=np.float32)

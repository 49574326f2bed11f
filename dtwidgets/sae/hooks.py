"""Where an SAE reads a model: hook names, token positions, and the map from hook space to the residual stream.

Only the :class:`~dtwidgets.adapters.ModelAdapter` protocol is used (``run_with_cache``,
``run_with_hooks``, ``layout``, ``backbone`` weights in TransformerLens layout).

Supported hooks (``l`` = layer): ``blocks.{l}.hook_resid_pre``, ``hook_resid_mid``,
``hook_resid_post``, ``hook_attn_out``, ``hook_mlp_out`` (all ``d_model`` wide, in the residual
stream), ``blocks.{l}.mlp.hook_post`` (``d_mlp``, read by ``W_out[l]``) and
``blocks.{l}.attn.hook_z`` (``[n_heads, d_head]`` flattened to ``n_heads * d_head``, read by
``W_O[l]``). Each has its TransformerLens 3.9 meaning on both majors (an edit at ``hook_resid_mid``
reaches the MLP and the residual stream): :mod:`dtwidgets.adapters.hooks`.
"""
from __future__ import annotations

from dataclasses import dataclass

import torch

from ..adapters.hooks import attn_out, hook_z, mlp_out, mlp_post, parse, resid_mid, resid_post, resid_pre
from ..analysis._common import last_token_position

# the hooks of a layer an SAE reads, in forward order (names and their meaning: dtwidgets.adapters.hooks)
SAE_SITES = (resid_pre, hook_z, attn_out, resid_mid, mlp_post, mlp_out, resid_post)
TOKENS = ("state", "rtg", "action")


@dataclass(frozen=True)
class HookSite:
    """A parsed hook: ``name``, ``layer``, ``kind`` (``"resid"``, ``"mlp_post"`` or ``"z"``) and ``d_in``."""

    name: str
    layer: int
    kind: str
    d_in: int


def hook_names(adapter) -> list[str]:
    """Every hook an SAE can be trained on for this model, in forward order."""
    cfg = adapter.backbone.cfg
    return [site(l) for l in range(int(cfg.n_layers)) for site in SAE_SITES]


def hook_site(adapter, hook: str) -> HookSite:
    """Parse and check ``hook`` against the model (clear error naming the valid hooks otherwise)."""
    cfg = adapter.backbone.cfg
    if hook not in hook_names(adapter):
        raise ValueError(f"expected an SAE hook of this model, one of {hook_names(adapter)}, got {hook!r}")
    parsed = parse(hook)
    assert parsed is not None and parsed[0] is not None  # every name in hook_names is a block hook
    layer, part = int(parsed[0]), parsed[1]
    if part == "mlp.hook_post":
        return HookSite(hook, layer, "mlp_post", int(cfg.d_mlp))
    if part == "attn.hook_z":
        return HookSite(hook, layer, "z", int(cfg.n_heads) * int(cfg.d_head))
    return HookSite(hook, layer, "resid", int(cfg.d_model))


token_position = last_token_position
"""Position of the last ``token`` kind in the model's window: :func:`~dtwidgets.analysis._common.last_token_position`
(the one rule; this module's name for it)."""


def flat(t: torch.Tensor, site: HookSite) -> torch.Tensor:
    """Hook tensor ``[B, P, ...]`` -> ``[B, P, d_in]`` (``hook_z`` heads flattened)."""
    return t.reshape(*t.shape[:2], site.d_in)


def to_residual(adapter, site: HookSite) -> torch.Tensor | None:
    """``[d_in, d_model]`` linear map from hook space into the residual stream (``None`` = identity).

    ``mlp.hook_post`` -> ``W_out[l]``; ``attn.hook_z`` -> ``W_O[l]`` reshaped ``[H*d_head, d_model]``
    (output biases not included)."""
    bb = adapter.backbone
    if site.kind == "mlp_post":
        return bb.W_out[site.layer].detach().float()
    if site.kind == "z":
        W_O = bb.W_O[site.layer].detach().float()  # [H, d_head, d_model]
        return W_O.reshape(-1, W_O.shape[-1])
    return None


def activations_at(adapter, window, site: HookSite, position: int) -> torch.Tensor:
    """``[B, d_in]`` float32 activations of ``site`` at ``position`` (one forward, no graph)."""
    _, cache = adapter.run_with_cache(window, names_filter=[site.name])
    return flat(cache[site.name], site)[:, position].detach().float().clone()


def replace_hook(site: HookSite, positions, fn):
    """A ``(name, hook_fn)`` pair that replaces the activation at ``positions`` with ``fn(x [B, d_in])``.

    ``fn`` returns ``[B, d_in]``; the hook writes it back in the hook's own shape and dtype."""
    pos = [positions] if isinstance(positions, int) else list(positions)

    def hook(t, hook=None):
        out = t.clone()
        f = flat(out, site)
        for p in pos:
            f[:, p] = fn(f[:, p].float()).to(t.dtype)
        return f.reshape(t.shape)

    return (site.name, hook)

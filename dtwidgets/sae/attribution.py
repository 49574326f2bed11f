"""Per-feature direct shares of an action preference, and running the model with edited features.

For one window, with ``x`` the SAE's activation at its token (the last state token by default)::

    x = sum_i f_i W_dec[i] + b_dec + error          (error = x - decode(encode(x)))

Everything is mapped into the residual stream (``@ W_out`` / ``@ W_O`` for ``mlp.hook_post`` /
``attn.hook_z``, identity otherwise) and read the way the action head reads the final residual:
``read(v) = centre(v) / scale · dir_eff`` with ``dir_eff`` from
:func:`~dtwidgets.analysis.directions.preference_direction` with ``fold_ln=True``, ``scale``
the cached ``ln_final`` scale at that position and ``centre`` the LayerNorm centring (both identity
for models without LayerNorm). ``read`` is linear, so the feature shares + the decoder-bias share +
the error share sum exactly to the hook's share ``read(x)``.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch

from ..adapters import hooks as hook_names
from ..analysis import _common as C
from ..analysis.directions import preference_direction
from .hooks import flat, hook_site, replace_hook, to_residual, token_position
from .metrics import check_hook
from .model import SparseAutoencoder


@dataclass
class FeatureShares:
    """Direct shares of the ``pair_label`` preference for row 0 of a window (all float64 numpy, hook-space units).

    Attributes:
        pair_label: the pair ``a − b``, e.g. ``"forward − right"``; hook_name, position: where the SAE reads.
        activations: ``[d_sae]`` feature activations.
        active: ``[F]`` indices of the active features, largest |share| first.
        shares: ``[F]`` direct share of each active feature, ``f_i * read(W_dec[i])``.
        bias_share: ``read(b_dec)``; error_share: ``read(x - x_hat)``; hook_share: ``read(x)``.
        per_unit: ``[d_sae]`` ``read(W_dec[i])``, a feature's share per unit of activation.
        logits: ``[A]`` the clean action logits.
    """

    pair_label: str
    hook_name: str
    position: int
    activations: np.ndarray
    active: np.ndarray
    shares: np.ndarray
    bias_share: float
    error_share: float
    hook_share: float
    per_unit: np.ndarray
    logits: np.ndarray


def readout(adapter, vectors: torch.Tensor, a, b=None, scale: torch.Tensor | float = 1.0) -> torch.Tensor:
    """``[..., d_model]`` residual vectors -> ``[...]`` their direct effect on ``logit[a] - logit[b]``
    (``centre(v) / scale · dir_eff``; float64)."""
    d = preference_direction(adapter, a, b, fold_ln=True).vector
    v = vectors.double()
    if C.normalization(adapter) in ("LN", "LNPre"):
        v = v - v.mean(-1, keepdim=True)
    return (v @ d.double()) / torch.as_tensor(scale, dtype=torch.float64, device=v.device)


def decoder_readout(adapter, sae: SparseAutoencoder, a, b=None) -> torch.Tensor:
    """``[d_sae]`` each decoder direction's direct effect on the preference per unit activation
    (before ``ln_final``'s scale, which depends on the state)."""
    M = to_residual(adapter, hook_site(adapter, sae.cfg.hook_name))
    W = sae.W_dec.detach().double()
    return readout(adapter, W if M is None else W @ M.double(), a, b)


@torch.no_grad()
def feature_shares(adapter, sae: SparseAutoencoder, window, a, b=None) -> FeatureShares:
    """Direct shares of every active feature of row 0 of ``window`` along ``logit[a] - logit[b]``."""
    check_hook(adapter, sae)
    site = hook_site(adapter, sae.cfg.hook_name)
    pos = token_position(adapter, sae.cfg.token)
    names = [site.name] + ([hook_names.ln_scale()] if C.normalization(adapter) in ("LN", "LNPre") else [])
    logits, cache = adapter.run_with_cache(window.index(0), names_filter=names)
    x = flat(cache[site.name], site)[0, pos].float()
    scale = cache[hook_names.ln_scale()][0, pos].reshape(()).double() if len(names) > 1 else 1.0
    M = to_residual(adapter, site)
    to_res = (lambda v: v.double()) if M is None else (lambda v: v.double() @ M.double())
    f = sae.encode(x).double()
    x_hat = f @ sae.W_dec.detach().double() + sae.b_dec.detach().double()  # float64: the split is exact
    per_unit = readout(adapter, to_res(sae.W_dec.detach()), a, b, scale)
    shares_all = f * per_unit
    active = torch.nonzero(f > 0).flatten()
    active = active[torch.argsort(shares_all[active].abs(), descending=True)]
    return FeatureShares(
        pair_label=C.pair_label(adapter, a, b), hook_name=site.name, position=pos,
        activations=f.cpu().numpy(), active=active.cpu().numpy(), shares=shares_all[active].cpu().numpy(),
        bias_share=float(readout(adapter, to_res(sae.b_dec.detach()), a, b, scale)),
        error_share=float(readout(adapter, to_res(x.double() - x_hat), a, b, scale)),
        hook_share=float(readout(adapter, to_res(x), a, b, scale)),
        per_unit=per_unit.cpu().numpy(), logits=C.np32(logits[0]))


def feature_edit_hooks(adapter, sae: SparseAutoencoder, edits: dict) -> list:
    """Forward hooks ``[(hook name, fn)]`` that set SAE features to given values at the SAE's token.

    The activation ``x [B, d_in]`` is replaced by ``decode(f') + (x - decode(f))``: the edited
    reconstruction plus the unchanged error term, so ``edits={}`` changes nothing (up to float
    rounding). Usable wherever hooks are: :func:`edited_logits`, or a policy map
    (``policy_map(adapter, placements, rtg, fwd_hooks=feature_edit_hooks(...))``).

    Args:
        edits: ``{feature index: value}``; 0 zero-ablates a feature, any value >= 0 clamps it.
    """
    check_hook(adapter, sae)
    site = hook_site(adapter, sae.cfg.hook_name)
    pos = token_position(adapter, sae.cfg.token)
    idx, val = _edits(sae, edits)

    def edit(x):
        f = sae.encode(x)
        err = x - sae.decode(f)
        f2 = f.clone()
        f2[:, idx] = val.to(f2.dtype)
        return sae.decode(f2) + err

    return [replace_hook(site, pos, edit)]


@torch.no_grad()
def edited_logits(adapter, sae: SparseAutoencoder, window, edits: dict) -> torch.Tensor:
    """Action logits ``[B, A]`` with features set to given values at the SAE's token
    (see :func:`feature_edit_hooks`; ``edits={}`` reproduces the clean logits)."""
    return adapter.run_with_hooks(window, feature_edit_hooks(adapter, sae, edits))


def _edits(sae: SparseAutoencoder, edits: dict) -> tuple[torch.Tensor, torch.Tensor]:
    items = sorted((int(k), float(v)) for k, v in dict(edits).items())
    for k, v in items:
        if not 0 <= k < sae.d_sae:
            raise ValueError(f"expected feature indices in [0, {sae.d_sae - 1}], got {k}")
        if not np.isfinite(v):
            raise ValueError(f"expected a finite value for feature {k}, got {v}")
    dev = sae.W_dec.device
    return (torch.tensor([k for k, _ in items], dtype=torch.long, device=dev),
            torch.tensor([v for _, v in items], dtype=torch.float32, device=dev))

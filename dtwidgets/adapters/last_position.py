"""Running a backbone's last block at the prediction position only: where to cut, and what comes after.

In a TransformerLens-style backbone the last block's MLP, and then ``ln_final``, act position by
position, and only the prediction position (the last token) is read after the last block's
attention. Passing on ``blocks.{L-1}.hook_resid_mid`` at that position alone
(:func:`keep_last_position` on :func:`cut_point`) therefore computes the same last-position values,
without the MLP's work at the other positions. The DT's forward (``DecisionTransformer.last_logits``)
and the analyses' batched runs (``dtwidgets.analysis._tokens``) both cut there; each decides on its
own when cutting is safe (a caller's hooks, a backbone that mixes positions after the cut).
The cut is attached to that hook point directly, not through :mod:`dtwidgets.adapters.hooks`: on a
TL 4 bridge the point is the MLP's input, so the MLP runs on one position and the residual add
broadcasts it to every position, whose last one is the value read (the other positions are not read).
"""
from __future__ import annotations

from typing import Any

import torch

from .hooks import resid_mid

_AFTER_CUT = ("hook_resid_mid", "ln2.", "hook_mlp_in", "mlp.", "hook_mlp_out", "hook_resid_post")


def cut_point(n_layers: int) -> str:
    """The hook name where the last block is cut: ``blocks.{n_layers-1}.hook_resid_mid``."""
    return resid_mid(n_layers - 1)


def keep_last_position(t: torch.Tensor, hook: Any = None) -> torch.Tensor:
    """The hook function of the cut: ``t`` ``[B, P, d]`` -> ``[B, 1, d]`` (the last position)."""
    return t[:, -1:]


def computed_after_cut(name: str, n_layers: int) -> bool:
    """Whether hook ``name`` is computed after the cut (with the cut, its values exist only at the
    last position): the cut point itself, the last block's ``ln2`` / MLP / ``resid_post``, ``ln_final``."""
    if name.startswith("ln_final."):
        return True
    block = f"blocks.{n_layers - 1}."
    return name.startswith(block) and name[len(block):].startswith(_AFTER_CUT)

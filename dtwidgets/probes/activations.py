"""Residual activations at every recorded step, read through the ModelAdapter protocol.

For step ``i`` the model sees the window ending at ``i`` (left-padded at the episode start, the
training convention) and the activation is read at a token of that window's *last* timestep:
``"state"`` (the token whose output predicts the action), ``"rtg"`` or ``"action"`` (the previous
action; needs ``T > 1``). Sites are ``(hook, position)`` pairs.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch

from ..analysis import _common as C
from ..analysis._common import last_token_position
from ..adapters import hooks as hk

POSITIONS = ("state", "rtg", "action")


def default_hooks(adapter) -> list[str]:
    """``blocks.{l}.hook_resid_pre`` for every layer, then ``blocks.{L-1}.hook_resid_post``."""
    L = C.n_layers(adapter)
    return [hk.resid_pre(l) for l in range(L)] + [hk.resid_post(L - 1)]


def hook_label(hook: str) -> str:
    """``blocks.1.hook_resid_pre`` -> ``L1 resid_pre``; other names unchanged."""
    parts = hook.split(".")
    if len(parts) >= 3 and parts[0] == "blocks" and parts[1].isdigit():
        return f"L{parts[1]} " + ".".join(parts[2:]).replace("hook_", "")
    return hook


@dataclass
class Activations:
    """``values[(hook, position)]``: ``[N, d_model]`` float32, row ``i`` = recorded step ``i``."""

    values: dict[tuple[str, str], np.ndarray]
    n_steps: int

    @property
    def sites(self) -> list[tuple[str, str]]:
        return list(self.values)

    def site_label(self, site) -> str:
        return f"{hook_label(site[0])} @ {site[1]}"


def step_rtgs(adapter, traj) -> np.ndarray:
    """``[N]`` RTG each step is conditioned on: the recorded one (``traj.rtgs``) when present, else
    the return-to-go from the data, clipped to the model's range."""
    r = traj.rtgs if traj.rtgs is not None else traj.rtg()
    lo, hi = adapter.rtg_range
    return np.clip(np.asarray(r, np.float32), lo, hi)


@torch.inference_mode()
def site_activations(adapter, traj, hooks=None, positions=("state",), batch_size: int = 512,
                        steps=None) -> Activations:
    """Run every recorded step's window and keep the residual activations at the sites.

    Args:
        adapter: a :class:`~dtwidgets.adapters.ModelAdapter`.
        traj: :class:`~dtwidgets.data.Trajectories` of the model's env.
        hooks: TransformerLens hook names with a ``[B, P, d_model]`` output (default
            :func:`default_hooks`).
        positions: token positions of the last timestep (:data:`POSITIONS`).
        batch_size: windows per forward.
        steps: ``[N']`` subset of global step indices (default: all).
    """
    hooks = list(hooks or default_hooks(adapter))
    pos = {p: last_token_position(adapter, p) for p in positions}
    ends = np.arange(traj.n_steps) if steps is None else np.asarray(steps, np.int64)
    rtgs = step_rtgs(adapter, traj)
    T, pad = adapter.layout.n_timesteps, adapter.pad_action
    out: dict = {(h, p): [] for h in hooks for p in positions}
    for s in range(0, len(ends), batch_size):
        win, _ = traj.windows(ends[s:s + batch_size], T, pad, rtgs=rtgs)
        _, cache = adapter.run_with_cache(win, names_filter=lambda n: n in hooks)
        for h in hooks:
            if h not in cache.cache_dict:
                raise KeyError(f"hook {h!r} was not found in the model's cache; expected names such as "
                               f"{default_hooks(adapter)}")
            for p, i in pos.items():
                out[(h, p)].append(C.np32(cache[h][:, i]))
    return Activations({k: np.concatenate(v) for k, v in out.items()}, len(ends))

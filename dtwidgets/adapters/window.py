"""Trajectory windows: the batched model input, left-padded the way the reference work evaluated.

Shapes (B = batch, T = the model's timesteps of context):
    observations  [B, T, W, H, C]  raw MiniGrid codes (C=3, integers) or one-hot (C=20)
    actions       [B, T-1]         int64 action indices; ``pad_action`` (= n_actions) on padding
    rtgs          [B, T]           float32 return-to-go at each step (reward units)
    timesteps     [B, T]           int64 episode step index (0-based)
    n_pad         [B]              int64 number of left-padded steps (0 <= n_pad < T)

Padding (reference eval/app convention): padded steps have an all-zero observation feature
vector, the pad action, the RTG of the first real step, and timestep 0. There is no attention
mask: pads are attended, which is why the padding is explicit here.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch

from .device import CPU  # windows are input data: built on the CPU, moved by the adapter


@dataclass
class TrajectoryWindow:
    observations: torch.Tensor
    actions: torch.Tensor
    rtgs: torch.Tensor
    timesteps: torch.Tensor
    n_pad: torch.Tensor

    @property
    def batch_size(self) -> int:
        return int(self.observations.shape[0])

    @property
    def n_timesteps(self) -> int:
        return int(self.observations.shape[1])

    def to(self, device) -> "TrajectoryWindow":
        return TrajectoryWindow(*(getattr(self, f).to(device) for f in _FIELDS))

    def index(self, idx) -> "TrajectoryWindow":
        """Select batch rows (int, slice, list or tensor); keeps the batch dimension."""
        if isinstance(idx, int):
            idx = [idx]
        return TrajectoryWindow(*(getattr(self, f)[idx] for f in _FIELDS))

    @staticmethod
    def cat(windows: list["TrajectoryWindow"]) -> "TrajectoryWindow":
        windows = list(windows)
        if not windows:
            raise ValueError("TrajectoryWindow.cat: expected at least one window, got an empty list")
        return TrajectoryWindow(*(torch.cat([getattr(w, f) for w in windows]) for f in _FIELDS))

    def repeat(self, n: int) -> "TrajectoryWindow":
        """Repeat every row ``n`` times (``[B,...] -> [B*n,...]``)."""
        return TrajectoryWindow(*(getattr(self, f).repeat_interleave(n, dim=0) for f in _FIELDS))

    def with_rtg(self, rtg) -> "TrajectoryWindow":
        """Copy with the RTG of every step (padding included) replaced by ``rtg`` ([B] or scalar)."""
        r = torch.as_tensor(rtg, dtype=torch.float32, device=self.rtgs.device).reshape(-1, 1).expand_as(self.rtgs).clone()
        return TrajectoryWindow(self.observations, self.actions, r, self.timesteps, self.n_pad)


_FIELDS = ("observations", "actions", "rtgs", "timesteps", "n_pad")


def make_window(
    observations,
    rtgs,
    timesteps=None,
    actions=None,
    *,
    n_timesteps: int,
    pad_action: int,
) -> TrajectoryWindow:
    """Build a one-row window from the most recent steps of an episode, left-padding to ``n_timesteps``.

    Args:
        observations: ``[t, W, H, C]`` (or one ``[W, H, C]``) observations, oldest first.
        rtgs: ``[t]`` (or scalar) return-to-go per step.
        timesteps: ``[t]`` episode step index per step; default ``0..t-1``.
        actions: ``[t-1]`` actions taken between the given steps (None for ``t == 1``).
        n_timesteps: the model's context length in timesteps (T).
        pad_action: the pad action index (the model's ``n_actions``).

    Only the last ``n_timesteps`` steps are kept. Returns a batch of one.
    """
    if isinstance(n_timesteps, bool) or not isinstance(n_timesteps, (int, np.integer)) or n_timesteps < 1:
        raise ValueError(f"make_window: expected n_timesteps to be an integer >= 1, got {n_timesteps!r}")
    obs = torch.as_tensor(np.asarray(observations), device=CPU)
    if obs.ndim == 3:
        obs = obs[None]
    if obs.ndim != 4:
        raise ValueError(f"expected observations of shape [t, W, H, C] or [W, H, C], got {tuple(obs.shape)}")
    t = obs.shape[0]
    if t == 0:
        raise ValueError(f"make_window: expected at least one observation (the current step) in observations "
                         f"[t, W, H, C], got an empty window of shape {tuple(obs.shape)}")
    r = torch.as_tensor(np.asarray(rtgs, dtype=np.float32), device=CPU).reshape(-1)
    if r.numel() == 1 and t > 1:
        r = r.expand(t)
    if r.numel() != t:
        raise ValueError(f"expected {t} RTG values (one per observation), got {r.numel()}")
    ts = (torch.arange(t, device=CPU) if timesteps is None
          else torch.as_tensor(np.asarray(timesteps), device=CPU).reshape(-1).long())
    if ts.numel() != t:
        raise ValueError(f"expected {t} timesteps (one per observation), got {ts.numel()}")
    a = (torch.zeros(0, dtype=torch.long, device=CPU) if actions is None
         else torch.as_tensor(np.asarray(actions), device=CPU).reshape(-1).long())
    if a.numel() != max(t - 1, 0):
        raise ValueError(f"expected {t - 1} actions between {t} observations, got {a.numel()}")
    T = n_timesteps
    obs, r, ts = obs[-T:], r[-T:], ts[-T:]
    k = obs.shape[0]
    o = torch.zeros((T, *obs.shape[1:]), dtype=obs.dtype, device=CPU)
    o[T - k:] = obs
    rr = torch.zeros(T, dtype=torch.float32, device=CPU)
    rr[T - k:] = r
    tt = torch.zeros(T, dtype=torch.long, device=CPU)
    tt[T - k:] = ts
    aa = torch.zeros(max(T - 1, 0), dtype=torch.long, device=CPU)
    if k > 1:
        aa[T - k:] = a[-(k - 1):]
    return pad_left(o[None], aa[None], rr[None], tt[None], torch.tensor([T - k], device=CPU), pad_action)


def pad_left(observations, actions, rtgs, timesteps, n_pad, pad_action: int) -> TrajectoryWindow:
    """THE padding rule (the one implementation): rows whose real steps are right-aligned get, on
    their first ``n_pad[b]`` steps, an all-zero observation, the pad action, the RTG of the first
    real step and timestep 0 (whatever those entries held before).

    Args:
        observations ``[B, T, W, H, C]``, actions ``[B, T-1]``, rtgs ``[B, T]``, timesteps ``[B, T]``:
            tensors (or arrays) with the real steps at the end of each row.
        n_pad: ``[B]`` padded steps per row (``0 <= n_pad < T``).
        pad_action: the model's pad action index (``n_actions``).
    """
    dev = observations.device if torch.is_tensor(observations) else CPU
    obs, act = torch.as_tensor(observations, device=dev), torch.as_tensor(actions, device=dev).long()
    r, ts = torch.as_tensor(rtgs, device=dev).float(), torch.as_tensor(timesteps, device=dev).long()
    n = torch.as_tensor(n_pad, device=dev).long()
    T = r.shape[1]
    pad = torch.arange(T, device=dev)[None, :] < n[:, None]  # [B, T]
    first = r.gather(1, n.clamp(max=T - 1)[:, None])
    return TrajectoryWindow(obs.masked_fill(pad.reshape(*pad.shape, *([1] * (obs.ndim - 2))), 0),
                            act.masked_fill(pad[:, : max(T - 1, 0)], pad_action), torch.where(pad, first, r),
                            ts.masked_fill(pad, 0), n)

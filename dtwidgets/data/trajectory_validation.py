"""Validation of :class:`~dtwidgets.data.Trajectories`: every inconsistency a replay or training would
silently misuse, listed in one error (raised by ``Trajectories.validate``)."""
from __future__ import annotations

import numpy as np

from .trajectory_checks import episode_meta_problems, final_state_problems, observation_problems


def problems(traj) -> list[str]:
    """Every inconsistency of a :class:`~dtwidgets.data.Trajectories` as ``expected ...`` phrases (shapes,
    contiguous episodes, done flags, then the values: see :func:`value_problems`)."""
    p = []
    N = traj.actions.shape[0]
    if traj.observations.ndim < 2 or traj.observations.shape[0] != N:
        p.append(f"observations [N={N}, ...], got {traj.observations.shape}")
    for name in ("rewards", "terminated", "truncated", "timesteps"):
        if getattr(traj, name).shape != (N,):
            p.append(f"{name} of shape ({N},), got {getattr(traj, name).shape}")
    if traj.actions.ndim != 1:
        p.append(f"actions of shape (N,), got {traj.actions.shape}")
    E = traj.episode_starts.shape[0]
    for name in ("episode_lengths", "seeds"):
        if getattr(traj, name).shape != (E,):
            p.append(f"{name} of shape ({E},) (one per episode), got {getattr(traj, name).shape}")
    if not p and E:
        want = np.concatenate([[0], np.cumsum(traj.episode_lengths)[:-1]])
        if (traj.episode_lengths < 1).any():
            p.append("every episode to have at least one step")
        if not np.array_equal(traj.episode_starts, want) or int(traj.episode_lengths.sum()) != N:
            p.append(f"contiguous episodes (starts = cumulative lengths, total {N} steps)")
        else:
            last = np.zeros(N, bool)
            last[traj.episode_starts + traj.episode_lengths - 1] = True
            done = traj.terminated | traj.truncated
            if (done & ~last).any():
                p.append("terminated/truncated only at an episode's last step")
    elif not p and N:
        p.append(f"episode offsets for {N} steps, got no episodes")
    if traj.timesteps.size and (traj.timesteps < 0).any():
        p.append("non-negative timesteps")
    if traj.policies is not None and len(traj.policies) != E:
        p.append(f"{E} policy labels, got {len(traj.policies)}")
    if traj.rtgs is not None and traj.rtgs.shape != (N,):
        p.append(f"rtgs of shape ({N},), got {traj.rtgs.shape}")
    if traj.logits is not None and (traj.logits.ndim != 2 or traj.logits.shape[0] != N or traj.logits.shape[1] < 1):
        p.append(f"logits of shape ({N}, n_actions >= 1), got {traj.logits.shape}")
    if traj.max_steps < 1:
        p.append(f"max_steps >= 1, got {traj.max_steps}")
    return p + value_problems(traj)

def value_problems(traj) -> list[str]:
    """Values a replay would silently misuse: observation codes, non-finite rewards/RTGs, negative
    actions, and a malformed ``metadata["final"]`` (the on-screen state a saved Explorer session restores)."""
    p = []
    if traj.observations.ndim >= 2:
        p += observation_problems(traj.observations, traj.metadata.get("observation"))
    if "episode" in traj.metadata:
        p += episode_meta_problems(traj.metadata["episode"], traj.episode_starts.shape[0])
    for name in ("rewards", "rtgs"):
        a = getattr(traj, name)
        if a is not None and a.size and not np.isfinite(a).all():
            p.append(f"finite {name}, got {int((~np.isfinite(a)).sum())} NaN/Inf values")
    if traj.logits is not None and np.isinf(traj.logits).any():  # NaN means "not computed" (PlaySession.record)
        p.append(f"finite or NaN logits, got {int(np.isinf(traj.logits).sum())} infinite values")
    if traj.actions.size and traj.actions.min() < 0:
        p.append(f"non-negative actions, got {int(traj.actions.min())}")
    if "final" in traj.metadata:
        p += final_state_problems(traj.metadata["final"], traj.observations.shape[1:],
                                  None if traj.logits is None else traj.logits.shape[-1],
                                  traj.metadata.get("observation"))
    return p

"""Checks of a trajectory file's metadata: the top-level fields and ``metadata["final"]`` (the on-screen
state a saved Explorer session restores). Each returns a list of ``"what was expected, got what"``
strings (empty when all is well); :mod:`dtwidgets.data.trajectories` raises them as one error.
"""
from __future__ import annotations

import numpy as np

from ..adapters.schema import OUTCOMES, check_observation_codes


def meta_problems(meta: dict) -> list[str]:
    """Type problems of a file's top-level metadata (before anything is built from it)."""
    p = []
    if not isinstance(meta.get("env_id"), str):
        p.append(f"env_id to be a string, got {meta.get('env_id')!r}")
    m = meta.get("max_steps")
    if isinstance(m, bool) or not isinstance(m, int):
        p.append(f"max_steps to be an integer, got {m!r}")
    pol = meta.get("policies")
    if pol is not None and not (isinstance(pol, list) and all(isinstance(x, str) for x in pol)):
        p.append(f"policies to be null or a list of strings, got {type(pol).__name__}")
    if not isinstance(meta.get("metadata") or {}, dict):
        p.append(f"metadata to be a JSON object, got {type(meta.get('metadata')).__name__}")
    return p


_FINAL_KEYS = ("observation", "rtg", "timestep", "done", "outcome")


def final_state_problems(final, obs_shape, n_logits: int | None = None) -> list[str]:
    """What is wrong with a ``metadata["final"]`` entry (``[]`` when nothing is).

    Expected: ``{"observation": [W][H][3] integer codes with the observations' grid, "rtg": finite
    number, "timestep": int >= 0, "done": bool, "outcome": None or "goal"/"collision"/"timeout",
    "logits": None or n_actions finite numbers}``.
    """
    if not isinstance(final, dict):
        return [f'metadata["final"] to be a JSON object, got {type(final).__name__}']
    missing = [k for k in _FINAL_KEYS if k not in final]
    if missing:
        return [f'metadata["final"] with keys {list(_FINAL_KEYS)}, got {sorted(final)} (missing {missing})']
    p = []
    try:
        obs = np.asarray(final["observation"])
        shape_ok = obs.shape == tuple(obs_shape) and obs.dtype.kind in "biuf"
    except (ValueError, TypeError):
        obs, shape_ok = None, False
    if not shape_ok:
        got = getattr(obs, "shape", type(final["observation"]).__name__)
        p.append(f'metadata["final"]["observation"] of shape {tuple(obs_shape)} (the observations\' grid), got {got}')
    else:
        try:
            check_observation_codes(obs, 'metadata["final"]["observation"]')
        except ValueError as e:
            p.append('metadata["final"]["observation"] to hold ' + str(e).split(": expected ", 1)[-1])
    rtg = final["rtg"]
    if isinstance(rtg, bool) or not isinstance(rtg, (int, float)) or not np.isfinite(rtg):
        p.append(f'metadata["final"]["rtg"] to be a finite number, got {rtg!r}')
    t = final["timestep"]
    if isinstance(t, bool) or not isinstance(t, int) or t < 0:
        p.append(f'metadata["final"]["timestep"] to be an integer >= 0, got {t!r}')
    if not isinstance(final["done"], bool):
        p.append(f'metadata["final"]["done"] to be true or false, got {final["done"]!r}')
    outcome = final["outcome"]
    if outcome is not None and outcome not in OUTCOMES[:3]:
        p.append(f'metadata["final"]["outcome"] in {OUTCOMES[:3]} or null, got {outcome!r}')
    elif isinstance(final["done"], bool) and final["done"] != (outcome is not None):
        p.append(f'metadata["final"]["outcome"] set exactly when done, got done={final["done"]}, outcome={outcome!r}')
    logits = final.get("logits")
    if logits is not None:
        try:
            la = np.asarray(logits, dtype=np.float64)
            ok = la.ndim == 1 and np.isfinite(la).all() and (n_logits is None or la.shape[0] == n_logits)
        except (ValueError, TypeError):
            ok = False
        if not ok:
            p.append(f'metadata["final"]["logits"] to be null or {n_logits or "n_actions"} finite numbers, got {logits!r:.80}')
    return p

"""MiniGrid's own observation wrappers, bound to the :class:`~dtwidgets.adapters.ObservationSchema`.

:class:`~dtwidgets.adapters.MiniGridEnv` accepts ``wrappers=[...]`` (classes such as
``minigrid.wrappers.FullyObsWrapper`` or callables ``env -> env``). This module decides which
observation kind the wrapped env produces (:func:`schema_of`) and recomputes a wrapped observation
from the current state without stepping (:func:`wrapped_observation`, used for ``observation()`` and
``observation_at``).

Supported: ``FullyObsWrapper`` (codes, whole grid, the agent cell holds its facing),
``OneHotPartialObsWrapper`` (``[v, v, 20]``), ``RGBImgPartialObsWrapper`` / ``RGBImgObsWrapper``
(pixels), ``ImgObsWrapper`` (the image without the dict), ``ViewSizeWrapper`` and every wrapper that
leaves observations alone (``ReseedWrapper``, ``ActionBonus``, ``PositionBonus``, ``NoDeath`` ...).
"""
from __future__ import annotations

from typing import Any, Callable, Sequence

import numpy as np

from .schema import ObservationSchema

#: wrappers whose observations no :class:`ObservationSchema` describes, with what to do instead
UNSUPPORTED = {
    "FlatObsWrapper": "it mixes the image with a one-hot mission string; keep the default image and read "
                      "the mission from MiniGridEnv.mission",
    "SymbolicObsWrapper": "its (x, y, object) triples are not a grid of codes; use FullyObsWrapper",
    "DictObservationSpaceWrapper": "its word-index mission is not an image; read MiniGridEnv.mission",
    "DirectionObsWrapper": "its goal-direction slope is not part of the image; use FullyObsWrapper",
}


def apply_wrappers(env, wrappers: Sequence[Callable[[Any], Any]] | None):
    """``env`` wrapped by each of ``wrappers`` in order (innermost first); one clear error for an
    unsupported wrapper or something that is not a wrapper."""
    import gymnasium as gym

    for w in wrappers or ():
        name = getattr(w, "__name__", type(w).__name__)
        if name in UNSUPPORTED:
            raise ValueError(f"wrapper {name} is not supported by MiniGridEnv: {UNSUPPORTED[name]}; supported are "
                             "FullyObsWrapper, OneHotPartialObsWrapper, RGBImgPartialObsWrapper, RGBImgObsWrapper, "
                             "ImgObsWrapper, ViewSizeWrapper and wrappers that leave observations alone")
        if not callable(w):
            raise TypeError(f"expected each wrapper to be a gymnasium wrapper class or a callable env -> env, got {w!r}")
        out = w(env)
        if not isinstance(out, gym.Env):
            raise TypeError(f"expected wrapper {name} to return a gymnasium env, got {type(out).__name__}")
        env = out
    return env


def observation_wrappers(env) -> list:
    """The ``gymnasium.ObservationWrapper`` layers of ``env``, innermost first."""
    import gymnasium as gym

    chain = []
    e = env
    while isinstance(e, gym.Wrapper):
        if isinstance(e, gym.ObservationWrapper):
            chain.append(e)
        e = e.env
    return chain[::-1]


def wrapped_observation(env) -> np.ndarray:
    """The observation ``env`` (wrappers included) would return now, computed from the current
    state (``unwrapped.gen_obs()`` through each observation wrapper); changes nothing."""
    obs: Any = env.unwrapped.gen_obs()
    for w in observation_wrappers(env):
        obs = w.observation(obs)
    return image_of(obs)


def image_of(obs) -> np.ndarray:
    """The image of a MiniGrid observation (``obs["image"]`` of a dict, or the array itself)."""
    img = obs["image"] if isinstance(obs, dict) else obs
    return np.array(img, dtype=np.uint8)


def schema_of(env, observation: np.ndarray) -> ObservationSchema:
    """The :class:`ObservationSchema` of a (wrapped) MiniGrid env, from its wrappers and one observation."""
    names = {type(w).__name__ for w in observation_wrappers(env)}
    shape = tuple(observation.shape)
    if names & {"RGBImgPartialObsWrapper", "RGBImgObsWrapper"}:
        view = "egocentric" if "RGBImgPartialObsWrapper" in names else "full"
        return ObservationSchema(grid_shape=shape[:2], kind="pixels", view=view)
    if "OneHotPartialObsWrapper" in names:
        return ObservationSchema(grid_shape=shape[:2], kind="one_hot")
    if len(shape) != 3 or shape[-1] != 3:
        raise ValueError(f"unsupported MiniGrid observation of shape {shape} (wrappers {sorted(names)}): expected "
                         "[W, H, 3] codes, [W, H, 20] one-hot or [H, W, 3] pixels; write an EnvAdapter for it")
    view = "full" if "FullyObsWrapper" in names else "egocentric"
    return ObservationSchema(grid_shape=shape[:2], kind="codes", view=view)

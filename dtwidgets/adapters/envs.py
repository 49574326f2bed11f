"""Several independent environments for collection, rollouts and calibration: any
:class:`~dtwidgets.adapters.EnvAdapter` (copied) or a MiniGrid id, stepped in lockstep by the callers
(like ``gymnasium.vector.SyncVectorEnv``, but through the protocol).

Every episode starts with an explicit ``env.reset(seed=...)``, so episode ``k`` is reproducible on
its own whatever env ran it.
"""
from __future__ import annotations

import copy

from .minigrid_env import DEFAULT_MAX_STEPS
from .protocol import EnvAdapter


def make_envs(env: EnvAdapter | str | None, n: int, max_steps: int | None = None) -> list[EnvAdapter]:
    """``n`` independent environments.

    Args:
        env: an :class:`~dtwidgets.adapters.EnvAdapter` (used itself, plus ``n - 1`` deep copies),
            or a registered MiniGrid id (``n`` new :class:`~dtwidgets.adapters.MiniGridEnv`).
        max_steps: episode step limit for a MiniGrid id (default 1000); for an EnvAdapter it must
            be None or equal to ``env.max_steps``.
    """
    if isinstance(env, str):
        from .minigrid_env import MiniGridEnv, check_env_id

        check_env_id(env)
        steps = DEFAULT_MAX_STEPS if max_steps is None else int(max_steps)
        if steps < 1:
            raise ValueError(f"expected max_steps >= 1, got {max_steps}")
        return [MiniGridEnv(env, steps, seed=None) for _ in range(n)]
    if not isinstance(env, EnvAdapter):
        raise TypeError(f"expected an EnvAdapter (e.g. dtwidgets.adapters.MiniGridEnv) or a MiniGrid env id, "
                        f"got {type(env).__name__}")
    if max_steps is not None and int(max_steps) != env.max_steps:
        raise ValueError(f"expected max_steps=None or {env.max_steps} (the env's own limit), got {max_steps}")
    return [env] + [copy.deepcopy(env) for _ in range(n - 1)]

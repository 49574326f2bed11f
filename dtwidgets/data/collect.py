"""Collect MiniGrid trajectories from a mix of behaviour policies with ``gymnasium.vector.SyncVectorEnv``.

Gymnasium 1.x vector envs auto-reset on the *next* step: the step after an episode ends ignores the
action and returns the new episode's first observation (reward 0, not done). That step is not
recorded. Every episode ``k`` is reproducible on its own: it starts from ``reset(seed=seed + k)``
(the env's RNG is seeded that way just before the auto-reset), and its behaviour policy draws from
its own RNG, so ``MiniGridEnv(env_id, max_steps).reset(seed=seeds[k])`` followed by the recorded
actions replays it exactly.
"""
from __future__ import annotations

from typing import Mapping, Sequence

import numpy as np

from ..adapters.minigrid_env import DEFAULT_ENV_ID, DEFAULT_MAX_STEPS, check_env_id
from .policies import make_policy, parse_spec
from .trajectories import Trajectories

# A mix whose returns cover collisions (-1), timeouts (0) and goals (~1 - 0.9 * steps / max_steps).
DEFAULT_POLICY_MIX = {
    "bfs": 0.30, "bfs:0.05": 0.10, "bfs:0.2": 0.10, "survivor": 0.15, "suicidal": 0.25, "random": 0.10,
}


def normalise_mix(policy_mix) -> dict[str, float]:
    """A spec, a list of specs (equal weights) or ``{spec: weight}`` -> normalised ``{spec: weight}``."""
    if policy_mix is None:
        policy_mix = DEFAULT_POLICY_MIX
    if isinstance(policy_mix, str):
        policy_mix = {policy_mix: 1.0}
    elif not isinstance(policy_mix, Mapping):
        policy_mix = {p: 1.0 for p in policy_mix}
    mix = {str(k): float(v) for k, v in policy_mix.items()}
    for k, v in mix.items():
        parse_spec(k)
        if not np.isfinite(v) or v < 0:
            raise ValueError(f"expected a non-negative weight for policy {k!r}, got {v}")
    total = sum(mix.values())
    if total <= 0:
        raise ValueError(f"expected at least one positive policy weight, got {mix}")
    return {k: v / total for k, v in mix.items() if v > 0}


def assign_policies(mix: dict[str, float], n_episodes: int, rng: np.random.Generator) -> list[str]:
    """Exact quotas (largest remainder), shuffled: every policy with weight gets its share."""
    names = list(mix)
    w = np.array([mix[n] for n in names]) * n_episodes
    counts = np.floor(w).astype(int)
    rest = n_episodes - counts.sum()
    counts[np.argsort(-(w - counts), kind="stable")[:rest]] += 1
    out = [n for n, c in zip(names, counts) for _ in range(c)]
    rng.shuffle(out)
    return out


def collect_trajectories(
    env_id: str = DEFAULT_ENV_ID,
    n_episodes: int = 100,
    policy_mix: Mapping[str, float] | Sequence[str] | str | None = None,
    seed: int = 0,
    n_envs: int = 8,
    max_steps: int = DEFAULT_MAX_STEPS,
    progress: bool = True,
) -> Trajectories:
    """Run ``n_episodes`` episodes of behaviour policies and return them as :class:`Trajectories`.

    Args:
        env_id: a registered MiniGrid id.
        n_episodes: episodes to collect (exactly this many, in episode-index order).
        policy_mix: ``{spec: weight}`` (default :data:`DEFAULT_POLICY_MIX`), a list of specs, or one
            spec; see :mod:`dtwidgets.data.policies`. Episodes get policies by exact quota.
        seed: episode ``k`` resets with seed ``seed + k``; policies and the assignment derive from it.
        n_envs: parallel environments in the ``SyncVectorEnv``.
        max_steps: episode step limit (1000 in the reference work).
        progress: show a tqdm progress bar.
    """
    from gymnasium.utils import seeding
    from tqdm.auto import tqdm

    check_env_id(env_id)
    n_episodes = int(n_episodes)
    if n_episodes < 1:
        raise ValueError(f"expected n_episodes >= 1, got {n_episodes}")
    if int(n_envs) < 1:
        raise ValueError(f"expected n_envs >= 1, got {n_envs}")
    mix = normalise_mix(policy_mix)
    specs = assign_policies(mix, n_episodes, np.random.default_rng([seed, 0x5EED]))
    n = min(int(n_envs), n_episodes)

    from ._vec import make_vector_env, retire

    vec = make_vector_env(env_id, max_steps, n)
    n_actions = int(vec.single_action_space.n)
    obs_shape = tuple(vec.single_observation_space["image"].shape)

    def new_episode(k):
        return {"k": k, "seed": seed + k, "policy": specs[k],
                "pi": make_policy(specs[k], np.random.default_rng([seed, k]), n_actions),
                "observations": [], "actions": [], "rewards": [], "terminated": [], "truncated": []}

    done_eps: list[dict | None] = [None] * n_episodes
    slots: list[dict | None] = [new_episode(k) for k in range(n)]
    next_k = n
    obs, _ = vec.reset(seed=[seed + k for k in range(n)])
    for i in range(n):
        slots[i]["observations"].append(obs["image"][i].copy())
    pending = np.zeros(n, dtype=bool)  # env i's episode ended: its next step is the auto-reset
    finished = 0
    counts = {"goal": 0, "collision": 0, "timeout": 0}
    bar = tqdm(total=n_episodes, desc=f"collect {env_id}", unit="ep", disable=not progress, leave=False)
    try:
        while finished < n_episodes:
            actions = np.zeros(n, dtype=np.int64)
            for i in range(n):
                if pending[i]:
                    if next_k < n_episodes:  # seed the coming auto-reset as reset(seed=seed + k) would
                        vec.envs[i].unwrapped.np_random = seeding.np_random(seed + next_k)[0]
                        slots[i] = new_episode(next_k)
                        next_k += 1
                    else:
                        slots[i] = None  # retired: an idle stub from now on, nothing recorded
                        retire(vec, i)
                elif slots[i] is not None:
                    actions[i] = slots[i]["pi"](vec.envs[i].unwrapped)
            obs, rew, term, trunc, _ = vec.step(actions)
            for i in range(n):
                ep = slots[i]
                if pending[i]:
                    if ep is not None:
                        ep["observations"].append(obs["image"][i].copy())
                    continue
                if ep is None:
                    continue
                ep["actions"].append(int(actions[i]))
                ep["rewards"].append(float(rew[i]))
                ep["terminated"].append(bool(term[i]))
                ep["truncated"].append(bool(trunc[i]))
                if term[i] or trunc[i]:
                    done_eps[ep["k"]] = ep
                    finished += 1
                    counts["goal" if term[i] and rew[i] > 0 else "collision" if term[i] else "timeout"] += 1
                    bar.update(1)
                    bar.set_postfix(counts, refresh=False)
                else:
                    ep["observations"].append(obs["image"][i].copy())
            pending = np.logical_or(term, trunc)
    finally:
        bar.close()
        vec.close()
    meta = {"policy_mix": mix, "seed": int(seed), "n_envs": int(n), "collector": "dtwidgets.data.collect"}
    return Trajectories.from_episodes(done_eps, env_id=env_id, max_steps=max_steps, metadata=meta,
                                      obs_shape=obs_shape)

"""Collect MiniGrid trajectories from a mix of behaviour policies, through the :class:`EnvAdapter` protocol.

Several environments run in lockstep. Every episode ``k`` is reproducible on its own: it starts
from ``env.reset(seed=seed + k)`` and its behaviour policy draws from its own RNG, so
``MiniGridEnv(env_id, max_steps).reset(seed=seeds[k])`` followed by the recorded actions replays it
exactly, whatever ``n_envs``.
"""
from __future__ import annotations

from typing import Callable, Mapping, Sequence

import numpy as np

from ..adapters.minigrid_env import DEFAULT_ENV_ID
from ..adapters.protocol import EnvAdapter
from ..adapters.envs import make_envs
from .policies import POLICY_NAMES, parse_spec, policy_for
from .trajectories import Trajectories

# A mix whose returns cover collisions (-1), timeouts (0) and goals (~1 - 0.9 * steps / max_steps).
DEFAULT_POLICY_MIX = {
    "bfs": 0.30, "bfs:0.05": 0.10, "bfs:0.2": 0.10, "survivor": 0.15, "suicidal": 0.25, "random": 0.10,
}


def normalise_mix(policy_mix, user_policies: Mapping[str, Callable] | None = None) -> dict[str, float]:
    """A spec, a list of specs (equal weights) or ``{spec: weight}`` -> normalised ``{spec: weight}``
    (a name of ``user_policies`` counts as a spec)."""
    if policy_mix is None:
        policy_mix = DEFAULT_POLICY_MIX
    if isinstance(policy_mix, str):
        policy_mix = {policy_mix: 1.0}
    elif not isinstance(policy_mix, Mapping):
        policy_mix = {p: 1.0 for p in policy_mix}
    mix = {str(k): float(v) for k, v in policy_mix.items()}
    users = dict(user_policies or {})
    clash = sorted(k for k in users if k.partition(":")[0] in POLICY_NAMES)
    if clash:
        raise ValueError(f"user policy names {clash} shadow built-in behaviour policies; rename them")
    for k, v in mix.items():
        if k not in users:
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
    env: EnvAdapter | str = DEFAULT_ENV_ID,
    n_episodes: int = 100,
    policy_mix: Mapping[str, float] | Sequence[str] | str | None = None,
    seed: int = 0,
    n_envs: int = 8,
    max_steps: int | None = None,
    progress: bool = True,
    backend: str = "local",
    episodes: range | None = None,
    user_policies: Mapping[str, Callable] | None = None,
) -> Trajectories:
    """Run ``n_episodes`` episodes of behaviour policies and return them as :class:`Trajectories`.

    Args:
        env: an :class:`~dtwidgets.adapters.EnvAdapter` (deep-copied for parallel envs) or a
            registered MiniGrid id (default ``MiniGrid-Dynamic-Obstacles-8x8-v0``).
        n_episodes: episodes to collect (exactly this many, in episode-index order).
        policy_mix: ``{spec: weight}`` (default :data:`DEFAULT_POLICY_MIX`), a list of specs, or one
            spec; see :mod:`dtwidgets.data.policies`. Episodes get policies by exact quota.
        seed: episode ``k`` resets with seed ``seed + k``; policies and the assignment derive from it.
        n_envs: environments stepped in lockstep (the result does not depend on it).
        max_steps: episode step limit for a MiniGrid id (default 1000, as in the reference work);
            an EnvAdapter keeps its own.
        progress: show a tqdm progress bar.
        backend: ``"local"`` (this process) or ``"ray"`` (tasks over episode chunks on a local Ray
            runtime, see :func:`dtwidgets.scale.collect_many`; needs a MiniGrid id or a
            :class:`~dtwidgets.adapters.MiniGridEnv`). The result is the same on both.
        episodes: collect only these episode indices of the ``n_episodes`` (a ``range``; default all):
            the same episodes, policies and seeds as in the full run.
        user_policies: ``{name: policy}`` of your own behaviour policies, usable in ``policy_mix`` by
            name: ``policy(env, rng) -> action`` (an index or a name of ``env.action_names``; ``rng``
            the episode's own ``numpy.random.Generator``, so episodes stay reproducible).
    """
    n_episodes, users = int(n_episodes), _checked_users(n_episodes, n_envs, user_policies)
    mix = normalise_mix(policy_mix, users)
    if backend != "local":
        if users:
            raise ValueError("backend='ray' cannot ship user policies to its workers: use backend='local'")
        from ..scale import check_backend, collect_many, env_id_and_steps

        check_backend(backend)
        env_id, steps = env_id_and_steps(env, max_steps)
        return collect_many(env_id, n_episodes, mix, seed, n_envs=int(n_envs), max_steps=steps, backend=backend,
                            progress=progress)
    todo = range(n_episodes) if episodes is None else episodes
    if not isinstance(todo, range) or todo.step != 1 or todo.start < 0 or todo.stop > n_episodes or not len(todo):
        raise ValueError(f"expected episodes=range(start, stop) within range(0, {n_episodes}), got {episodes!r}")
    specs = assign_policies(mix, n_episodes, np.random.default_rng([seed, 0x5EED]))
    envs = make_envs(env, min(int(n_envs), len(todo)), max_steps)
    finished = _run_lockstep(envs, todo, n_episodes, specs, seed, users, progress)
    meta = {"policy_mix": mix, "seed": int(seed), "n_envs": len(envs), "collector": "dtwidgets.data.collect",
            **episode_metadata(envs[0], finished)}
    return Trajectories.from_episodes(finished, env_id=envs[0].env_id, max_steps=envs[0].max_steps, metadata=meta,
                                      obs_shape=tuple(finished[0]["observations"][0].shape))


def _checked_users(n_episodes, n_envs, user_policies) -> dict:
    """The user policies as a dict, after checking the counts (one clear error each)."""
    if int(n_episodes) < 1:
        raise ValueError(f"expected n_episodes >= 1, got {n_episodes}")
    if int(n_envs) < 1:
        raise ValueError(f"expected n_envs >= 1, got {n_envs}")
    users = dict(user_policies or {})
    bad = [k for k, f in users.items() if not callable(f)]
    if bad:
        raise TypeError(f"expected user_policies to map names to callables policy(env, rng) -> action, got {bad}")
    return users


def _run_lockstep(envs: list, todo: range, n_episodes: int, specs: list[str], seed: int, users: dict,
                  progress: bool) -> list[dict]:
    """Episodes ``todo`` stepped in lockstep over ``envs`` (a freed env starts the next episode);
    returns the finished episodes in episode-index order."""
    from tqdm.auto import tqdm

    done_eps: list[dict | None] = [None] * n_episodes
    counts = {"goal": 0, "collision": 0, "timeout": 0}
    bar = tqdm(total=len(todo), desc=f"collect {envs[0].env_id}", unit="ep", disable=not progress, leave=False)
    queue = iter(todo)
    running = {i: _start_episode(e, k, seed, specs[k], users) for (i, e), k in zip(enumerate(envs), queue)}
    try:
        while running:
            for i in list(running):
                ep = running[i]
                outcome = _step_episode(envs[i], ep)
                if outcome is None:
                    continue
                done_eps[ep["k"]] = ep
                counts[outcome] = counts.get(outcome, 0) + 1
                bar.update(1)
                bar.set_postfix(counts, refresh=False)
                k = next(queue, None)
                if k is None:
                    del running[i]
                else:
                    running[i] = _start_episode(envs[i], k, seed, specs[k], users)
    finally:
        bar.close()
    return [ep for ep in done_eps if ep is not None]


def _user_policy(fn: Callable, rng: np.random.Generator):
    return lambda env: env.action_index(fn(env, rng)) if hasattr(env, "action_index") else int(fn(env, rng))


def _start_episode(env: EnvAdapter, k: int, seed: int, spec: str, users: Mapping[str, Callable]) -> dict:
    """Reset ``env`` for episode ``k`` (seed ``seed + k``) and return its record with its policy."""
    obs = env.reset(seed=seed + k)
    rng = np.random.default_rng([seed, k])
    return {"k": k, "mission": getattr(env, "mission", None), "seed": seed + k, "policy": spec,
            "pi": _user_policy(users[spec], rng) if spec in users else policy_for(spec, env, rng),
            "observations": [obs], "actions": [], "rewards": [], "terminated": [], "truncated": []}


def episode_metadata(env: EnvAdapter, episodes: list[dict]) -> dict:
    """Trajectory metadata an env adds: its observation kind (``env.schema.describe()``) and the
    per-episode outcomes (as the env decided them) and missions (when the env has them)."""
    per = {"outcomes": [str(ep["outcome"]) for ep in episodes]}
    if episodes and all(isinstance(ep.get("mission"), str) for ep in episodes):
        per["missions"] = [ep["mission"] for ep in episodes]
    schema = getattr(env, "schema", None)
    out: dict = {"episode": per, **({"observation": schema.describe()} if schema is not None else {})}
    wrappers, kwargs = getattr(env, "wrappers", ()), getattr(env, "env_kwargs", {})
    if wrappers or kwargs:  # what rebuilds the env: MiniGridEnv(env_id, wrappers=..., **kwargs)
        out["env_options"] = {"wrappers": [getattr(w, "__name__", repr(w)) for w in wrappers],
                              "kwargs": {k: v for k, v in kwargs.items() if isinstance(v, (int, float, str, bool))}}
    return out


def _step_episode(env: EnvAdapter, ep: dict) -> str | None:
    """One policy step of episode ``ep``; returns its outcome once it ends, else None."""
    a = int(ep["pi"](env))
    r = env.step(a)
    ep["actions"].append(a)
    ep["rewards"].append(float(r.reward))
    ep["terminated"].append(bool(r.terminated))
    ep["truncated"].append(bool(r.truncated))
    if r.done:
        ep["outcome"] = r.outcome
        return ep["outcome"]
    ep["observations"].append(r.observation)
    return None

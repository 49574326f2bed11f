"""Registered MiniGrid environment ids: the list, and one clear error (with the closest ids) for an unknown one."""
from __future__ import annotations

DEFAULT_ENV_ID = "MiniGrid-Dynamic-Obstacles-8x8-v0"
"""The reference work's environment."""


def registered_minigrid_ids() -> list[str]:
    """All registered gymnasium ids whose entry point is a MiniGrid environment."""
    import gymnasium as gym
    import minigrid  # noqa: F401  (registers the MiniGrid ids)

    out = []
    for env_id, spec in gym.registry.items():
        ep = spec.entry_point if isinstance(spec.entry_point, str) else getattr(spec.entry_point, "__module__", "")
        if str(ep).startswith("minigrid"):
            out.append(env_id)
    return out


def check_env_id(env_id: str) -> None:
    """Raise one ValueError naming ``env_id`` when it is not a registered MiniGrid environment."""
    ids = registered_minigrid_ids()
    if env_id in ids:
        return
    examples = [i for i in ids if i.startswith("MiniGrid-")]
    preferred = [DEFAULT_ENV_ID, "MiniGrid-Empty-8x8-v0", "MiniGrid-LavaGapS7-v0", "MiniGrid-DoorKey-8x8-v0",
                 "MiniGrid-FourRooms-v0"]
    shown = ([i for i in preferred if i in ids] + [i for i in examples if i not in preferred])[:5]
    import gymnasium as gym

    why = "is registered with gymnasium but is not a MiniGrid environment" if env_id in gym.registry else \
        "is not a registered gymnasium environment id"
    close = closest_env_ids(str(env_id), ids)
    hint = f" (did you mean {' or '.join(close)}?)" if close else ""
    raise ValueError(f"unknown MiniGrid environment id {env_id!r}{hint}: it {why}; expected one of the "
                     f"{len(ids)} registered MiniGrid ids, e.g. {', '.join(shown)}")


def closest_env_ids(env_id: str, ids: list[str], n: int = 2) -> list[str]:
    """Registered ids a mistyped ``env_id`` most likely meant: versions of the same name first
    (``MiniGrid-Empty-5x5`` -> ``MiniGrid-Empty-5x5-v0``), then close spellings (case-insensitive)."""
    import difflib

    versions = sorted(i for i in ids if i.lower().startswith(env_id.lower().rstrip("-") + "-v"))
    if versions:
        return versions[-n:][::-1]  # newest version first
    lower = {i.lower(): i for i in ids}
    return [lower[m] for m in difflib.get_close_matches(env_id.lower(), list(lower), n=n, cutoff=0.75)]

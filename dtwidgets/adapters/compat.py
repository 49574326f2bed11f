"""Checks that a model adapter and an environment adapter can be used together."""
from __future__ import annotations


def check_compatible(adapter, env) -> None:
    """Raise one ValueError listing every mismatch between the model ``adapter`` and ``env``.

    Checks the number of actions (the model's logits vs the env's action space) and the
    observation grid (the model's view vs the env's partial view).
    """
    problems = []
    n_model, n_env = int(adapter.n_actions), len(env.action_names)
    if n_model != n_env:
        problems.append(f"{n_model} actions {tuple(adapter.action_names)} (the model's head), got {n_env} "
                        f"{tuple(env.action_names)} from env {env.env_id}")
    if tuple(adapter.schema.grid_shape) != tuple(env.schema.grid_shape):
        problems.append(f"a {adapter.schema.grid_shape} observation grid (the model's input), got "
                        f"{env.schema.grid_shape} from env {env.env_id}")
    if problems:
        raise ValueError("model and environment do not match: expected " + "; expected ".join(problems))

"""Train the SAE shipped for a demo model: ``python -m dtwidgets.sae.train_demo --variant post --out DIR``.

Episodes come from :func:`~dtwidgets.data.collect_trajectories` (default behaviour mix, seeded), the
activations are read at the last state token, and a TopK SAE is trained with a fixed seed; the
metrics (reconstruction and spliced downstream check) are stored in the SAE's ``cfg.json`` notes.
"""
from __future__ import annotations

import argparse
import time

import numpy as np

DEFAULTS: dict = {"hook": "blocks.0.hook_resid_post", "n_episodes": 300, "d_sae": 512, "k": 16, "epochs": 30.0,
            "batch_size": 1024, "seed": 0}
# What FeatureBrowser.demo() collects to show example states: short episodes (survivors time out at
# 150 steps, not 1000) so that the demo starts in seconds, with goals, collisions and timeouts.
BROWSER_EPISODES, BROWSER_SEED, BROWSER_MAX_STEPS = 100, 10_000, 150
BROWSER_MIX = {"bfs": 0.35, "bfs:0.2": 0.15, "survivor": 0.15, "suicidal": 0.25, "random": 0.1}


def train_demo_sae(variant: str = "post", out=None, *, hook: str = "blocks.0.hook_resid_post", n_episodes: int = 300,
                   d_sae: int = 512, k: int = 16, epochs: float = 30.0, batch_size: int = 1024, seed: int = 0,
                   threads: int | None = 1, progress: bool = True):
    """Collect, train, measure and (with ``out``) save; returns ``(sae, metrics, store)``
    (defaults: :data:`DEFAULTS`, the shipped SAE's settings)."""
    from ..data.collect import collect_trajectories
    from ..demo import load_demo
    from .io import save_sae
    from .metrics import reconstruction_metrics, spliced_metrics
    from .store import collect_activations
    from .train import train_sae

    adapter, env = load_demo(variant)
    t0 = time.perf_counter()
    traj = collect_trajectories(env.env_id, n_episodes=n_episodes, seed=seed, progress=progress)
    store = collect_activations(adapter, traj, hook, progress=progress)
    sae, hist = train_sae(store, d_sae=d_sae, k=k, epochs=epochs, batch_size=batch_size, seed=seed, threads=threads,
                          model_name=f"dtwidgets demo {variant!r}", progress=progress)
    m = reconstruction_metrics(sae, store)
    windows, _ = traj.windows(np.arange(traj.n_steps), adapter.layout.n_timesteps, adapter.pad_action,
                              rtgs=store.rtg if len(store) == traj.n_steps else None)
    spliced_metrics(adapter, sae, windows, m)
    sae.cfg.metadata.update({"command": f"python -m dtwidgets.sae.train_demo --variant {variant} --out <dir>",
                             "data": {"collector": "collect_trajectories", "n_episodes": n_episodes, "seed": seed,
                                      "n_steps": int(traj.n_steps)},
                             "metrics": m.summary(), "seconds": round(time.perf_counter() - t0, 1)})
    if out is not None:
        save_sae(sae, out)
    return sae, m, store


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--variant", default="post")
    p.add_argument("--out", required=True)
    for name, v in DEFAULTS.items():
        p.add_argument(f"--{name.replace('_', '-')}", type=type(v), default=v)
    a = p.parse_args(argv)
    sae, m, _ = train_demo_sae(a.variant, a.out, hook=a.hook, n_episodes=a.n_episodes, d_sae=a.d_sae, k=a.k,
                               epochs=a.epochs, batch_size=a.batch_size, seed=a.seed)
    print(sae)
    print(m)


if __name__ == "__main__":
    main()

"""Calibration speed relative to stepping the same vector env with a trivial policy (target <= 1.5x).

    python benchmarks/bench_calibration.py [--variant post|onehot] [--quick]

For each workload, runs :func:`dtwidgets.data.calibrate` on a shipped demo model (one batched forward
per step over the envs of all RTGs), then steps identical environments (the same ``EnvAdapter`` instances' kind) with uniformly random
actions (no model) for the same number of env steps, all envs busy, and prints both times and their
ratio. Workloads: ``short`` (RTGs -1, 0.5, 0.9: episodes of ~5-30 steps, so the per-step model cost
and the tail of the last running episodes weigh most) and ``full`` (adds RTG 0, whose episodes run
to the 1000-step limit, as in a real calibration curve).
"""
from __future__ import annotations

import argparse

WORKLOADS = {  # name: (rtgs, episodes per RTG, n_envs)
    "short": ((-1.0, 0.5, 0.9), 100, 32),
    "full": ((-1.0, 0.0, 0.5, 0.9), 50, 64),
}


def baseline(env_id: str, n_envs: int, max_steps: int, vec_steps: int, seed: int) -> float:
    """Seconds to run ``vec_steps`` steps of ``n_envs`` envs with random actions."""
    import time

    import numpy as np

    from dtwidgets.adapters.envs import make_envs

    envs = make_envs(env_id, n_envs, max_steps)  # the same EnvAdapter envs calibrate() steps
    rng = np.random.default_rng(0)
    n_act = len(envs[0].action_names)
    t0 = time.perf_counter()
    for i, e in enumerate(envs):
        e.reset(seed=seed + i)
    for _ in range(vec_steps):
        for i, e in enumerate(envs):
            if e.step(int(rng.integers(0, n_act))).done:
                e.reset(seed=seed + i)
    return time.perf_counter() - t0


def run(adapter, env_id: str, rtgs, episodes: int, n_envs: int, max_steps: int = 1000) -> dict:
    from dtwidgets.data.calibration import calibrate

    res = calibrate(adapter, env_id, rtgs=rtgs, n_episodes=episodes, n_envs=n_envs, max_steps=max_steps,
                    seed=1_000_000, progress=False)
    n = res.metadata["n_envs"]
    base_steps = -(-res.env_steps // n)  # the same number of env steps, all envs busy
    base = baseline(env_id, n, max_steps, base_steps, seed=1_000_000)
    return {"result": res, "calib_s": res.elapsed_s, "base_s": base, "ratio": res.elapsed_s / base,
            "env_steps": res.env_steps, "vec_steps": res.metadata["forward_steps"], "n_envs": n}


def main(argv=None) -> dict:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--variant", default="post", help="demo model: post or onehot")
    ap.add_argument("--quick", action="store_true", help="only the short workload")
    args = ap.parse_args(argv)

    import torch

    from dtwidgets.data.calibration import calibrate
    from dtwidgets.demo import load_demo

    torch.set_num_threads(1)
    adapter, env = load_demo(args.variant)
    calibrate(adapter, env.env_id, rtgs=[0.9], n_episodes=2, n_envs=2, max_steps=50, progress=False)  # warm-up
    out = {}
    for name, (rtgs, episodes, n_envs) in WORKLOADS.items():
        if args.quick and name != "short":
            continue
        r = out[name] = run(adapter, env.env_id, rtgs, episodes, n_envs)
        print(f"[{args.variant} / {name}] RTGs {list(rtgs)} x {episodes} episodes on {r['n_envs']} envs")
        print(r["result"].summary())
        print(f"  calibration {r['calib_s']:.2f} s ({r['env_steps']} env steps in {r['vec_steps']} vector steps, "
              f"{r['env_steps'] / r['calib_s']:,.0f} env steps/s); random actions, same env steps: {r['base_s']:.2f} s")
        print(f"  ratio {r['ratio']:.2f}x (target <= 1.5x): {'OK' if r['ratio'] <= 1.5 else 'SLOWER THAN TARGET'}")
    return out


if __name__ == "__main__":
    main()

"""Benchmark of per-checkpoint dynamics, local vs Ray (a script, not a test).

    python benchmarks/bench_dynamics.py [--checkpoints 10] [--rtgs 8] [--episodes 100] [--max-steps 1000]
                                        [--quick] [--run DIR] [--num-cpus N]

Trains a demo-sized DT (the "post" shape: 1 layer, d_model 128) for a few hundred steps with
``--checkpoints`` checkpoints (log-spaced then linear), unless ``--run`` names an existing run
directory. Then runs :func:`dtwidgets.dynamics.dynamics` (loss, calibration at ``--rtgs`` RTGs x
``--episodes`` episodes, attribution, ablations, probes; no cache) with ``backend="local"`` and with
``backend="ray"`` (one task per checkpoint), checks that both give identical calibrations, and
prints the wall times and the ratio local / ray. ``--quick`` scales everything down (5 episodes,
max_steps 100) for a smoke run. On a 2-core machine shared with other work Ray's start-up and
task overhead can outweigh the parallelism; the point of the Ray path is the same code on a cluster.
"""
from __future__ import annotations

import argparse
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

ENV_ID = "MiniGrid-Dynamic-Obstacles-8x8-v0"


def make_run(out: Path, n_checkpoints: int, max_steps: int) -> Path:
    from dtwidgets.data import TrainConfig, collect_trajectories, train
    from dtwidgets.training.demo import model_config

    traj = collect_trajectories(ENV_ID, 200, None, seed=0, n_envs=16, max_steps=max_steps, progress=True)
    train(model_config("post"), traj, TrainConfig(n_steps=300, batch_size=128, n_checkpoints=n_checkpoints, seed=0),
          out_dir=out, progress=True)
    return out


def main(argv=None) -> dict:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--checkpoints", type=int, default=10)
    ap.add_argument("--rtgs", type=int, default=8)
    ap.add_argument("--episodes", type=int, default=100)
    ap.add_argument("--max-steps", type=int, default=1000)
    ap.add_argument("--quick", action="store_true", help="5 episodes per RTG, max_steps 100")
    ap.add_argument("--run", default=None, help="existing run directory (skips training)")
    ap.add_argument("--num-cpus", type=int, default=None, help="Ray CPUs (default: all)")
    args = ap.parse_args(argv)
    if args.quick:
        args.episodes, args.max_steps = 5, 100

    from dtwidgets.adapters import MiniGridEnv
    from dtwidgets.data import collect_trajectories
    from dtwidgets.dynamics import dynamics, load_series
    from dtwidgets.scale import ray_init

    tmp = tempfile.TemporaryDirectory()
    run = Path(args.run) if args.run else make_run(Path(tmp.name), args.checkpoints - 1, min(args.max_steps, 200))
    series = load_series(run)
    held = collect_trajectories(ENV_ID, 20, {"bfs:0.2": 0.5, "random": 0.5}, seed=10_000, n_envs=8, max_steps=60,
                                progress=True)
    env = MiniGridEnv(ENV_ID, max_steps=60)
    kw = dict(rtgs=tuple(np.linspace(-1, 1, args.rtgs).round(3)), n_episodes=args.episodes, max_steps=args.max_steps,
              n_envs=64, concepts=("ball ahead", "wall ahead"), progress=True)
    print(f"{len(series)} checkpoints x {args.rtgs} RTGs x {args.episodes} episodes (max_steps {args.max_steps})")
    t0 = time.perf_counter()
    loc = dynamics(series, held, env, backend="local", **kw)
    t_local = time.perf_counter() - t0
    print(f"local: {t_local:.1f} s", flush=True)
    t0 = time.perf_counter()
    print("starting a local Ray runtime (up to a minute on a loaded machine) ...", flush=True)
    try:
        ray_init(args.num_cpus)
    except Exception as e:  # noqa: BLE001 - report instead of losing the local number
        print(f"ray could not start on this machine ({type(e).__name__}: {e}); local only")
        return {"local_s": t_local}
    t_init = time.perf_counter() - t0
    t0 = time.perf_counter()
    ray_ = dynamics(series, held, env, backend="ray", **kw)
    t_ray = time.perf_counter() - t0
    same = all(a["calibration"] == b["calibration"] for a, b in zip(loc.records, ray_.records))
    print(f"local {t_local:.1f} s | ray {t_ray:.1f} s (+ {t_init:.1f} s ray.init) | local/ray = {t_local / t_ray:.2f} "
          f"| identical calibrations: {same}")
    tmp.cleanup()
    return {"local_s": t_local, "ray_s": t_ray, "ray_init_s": t_init, "ratio": t_local / t_ray, "identical": same}


if __name__ == "__main__":
    main()

"""Re-runnable training of the shipped demo models (seeds fixed).

    python -m dtwidgets.training.demo --variant post   --out dtwidgets/demo/post.safetensors
    python -m dtwidgets.training.demo --variant onehot --out dtwidgets/demo/onehot.safetensors

Each run collects behaviour-policy trajectories on MiniGrid-Dynamic-Obstacles-8x8-v0 (max_steps 1000),
trains the variant's Decision Transformer, saves it with :func:`dtwidgets.model.save_model`, then
calibrates it (``--calib-episodes`` per RTG) and writes ``<out stem>.calibration.json`` next to it.
``--data`` caches the collected trajectories; ``--checkpoints DIR`` keeps periodic checkpoints.
"""
from __future__ import annotations

import argparse
import json
import time
from dataclasses import asdict
from pathlib import Path

ENV_ID = "MiniGrid-Dynamic-Obstacles-8x8-v0"
MAX_STEPS = 1000
POLICY_MIX = {"bfs": 0.30, "bfs:0.05": 0.10, "bfs:0.2": 0.10, "survivor": 0.10, "suicidal": 0.30, "random": 0.10}
N_EPISODES = 3000
DATA_SEED = 0
CALIB_RTGS = (-1.0, -0.5, 0.0, 0.25, 0.5, 0.75, 0.9, 1.0)
CALIB_SEED = 1_000_000

VARIANTS: dict[str, dict[str, dict]] = {
    # the reference post's setting: 1 layer, 2 heads, d_model 128, d_mlp 256, R+s context, raw obs, no LN
    "post": {"model": dict(d_model=128, n_heads=2, d_mlp=256, n_layers=1, n_ctx=2, layer_norm=None, one_hot_obs=False),
             "train": dict(n_steps=4000, batch_size=256, lr=1e-3, weight_decay=0.01, prob_go_from_end=0.1)},
    # one-hot observations, 3 timesteps of context (R s a R s a R s), 2 layers with LayerNorm (<= 2 MB on disk)
    "onehot": {"model": dict(d_model=96, n_heads=2, d_mlp=192, n_layers=2, n_ctx=8, layer_norm="LN", one_hot_obs=True),
               "train": dict(n_steps=4000, batch_size=256, lr=1e-3, weight_decay=0.01, prob_go_from_end=0.1)},
}


def model_config(variant: str):
    from ..model import DTConfig

    if variant not in VARIANTS:
        raise ValueError(f"unknown demo variant {variant!r}; expected one of {tuple(VARIANTS)}")
    return DTConfig(**VARIANTS[variant]["model"], obs_shape=(7, 7, 3), n_actions=3, max_timestep=MAX_STEPS,
                    time_embedding_type="embedding", env_id=ENV_ID, action_names=("left", "right", "forward"), seed=0)


def get_data(path: str | None, n_episodes: int, progress: bool):
    from ..data.collect import collect_trajectories
    from ..data.trajectories import Trajectories

    want = {"policy_mix": POLICY_MIX, "seed": DATA_SEED, "n_episodes": n_episodes, "max_steps": MAX_STEPS}
    if path and Path(path).is_file():
        traj = Trajectories.load(path)
        if traj.metadata.get("demo_recipe") == want:
            return traj
        print(f"{path} was collected with another recipe; collecting again")
    t0 = time.perf_counter()
    traj = collect_trajectories(ENV_ID, n_episodes, POLICY_MIX, seed=DATA_SEED, n_envs=16, max_steps=MAX_STEPS,
                                progress=progress)
    traj.metadata["demo_recipe"] = want
    print(f"collected {traj} in {time.perf_counter() - t0:.0f} s")
    if path:
        traj.save(path)
    return traj


def main(argv=None) -> dict:
    from ..model import DTAdapter, load_model, save_model
    from ..data.calibration import calibrate
    from .dt import TrainConfig, train

    ap = argparse.ArgumentParser(prog="python -m dtwidgets.training.demo", description=__doc__.split("\n\n")[0])
    ap.add_argument("--variant", choices=tuple(VARIANTS), default="post")
    ap.add_argument("--out", required=True, help="output .safetensors path")
    ap.add_argument("--data", default=None, help="trajectory cache (.npz): read if present, else written")
    ap.add_argument("--episodes", type=int, default=N_EPISODES, help="episodes to collect")
    ap.add_argument("--steps", type=int, default=None, help="optimiser steps (default: the variant's)")
    ap.add_argument("--checkpoints", default=None, help="directory for periodic checkpoints")
    ap.add_argument("--checkpoint-every", type=int, default=500)
    ap.add_argument("--eval-every", type=int, default=0, help="quick calibration every N steps (0 = off)")
    ap.add_argument("--calib-episodes", type=int, default=200, help="episodes per RTG of the final calibration")
    ap.add_argument("--no-progress", action="store_true")
    args = ap.parse_args(argv)
    progress = not args.no_progress

    traj = get_data(args.data, args.episodes, progress)
    tc = dict(VARIANTS[args.variant]["train"])
    if args.steps:
        tc["n_steps"] = args.steps
    tcfg = TrainConfig(**tc, seed=0, eval_every=args.eval_every,
                       checkpoint_every=args.checkpoint_every if args.checkpoints else 0)
    res = train(model_config(args.variant), traj, tcfg, out_dir=args.checkpoints, progress=progress)
    print(f"trained {args.variant} in {res.elapsed_s:.0f} s: final loss {res.losses[-200:].mean():.4f}, "
          f"accuracy {res.accuracies[-200:].mean():.3f}")
    for e in res.evals:
        print(f"  eval at step {e['step']}: " + ", ".join(
            f"RTG {r:+.1f}: return {m:+.2f}, goal {g:.0%}, collision {c:.0%}"
            for r, m, g, c in zip(e["rtgs"], e["mean_return"], e["frac_goal"], e["frac_collision"])))
    out = Path(args.out)
    out.parent.mkdir(parents=True, exist_ok=True)
    save_model(res.model, out)
    print(f"saved {out} ({out.stat().st_size / 1e6:.2f} MB)")

    adapter = DTAdapter(load_model(out))  # calibrate the file as shipped
    cal = calibrate(adapter, ENV_ID, rtgs=CALIB_RTGS, n_episodes=args.calib_episodes, n_envs=64,
                    max_steps=MAX_STEPS, seed=CALIB_SEED, progress=progress)
    print(cal.summary())
    report = {"variant": args.variant, "model_config": json.loads(adapter.cfg.to_json()),
              "train_config": {k: (list(v) if isinstance(v, tuple) else v) for k, v in asdict(tcfg).items()},
              "data": {"env_id": ENV_ID, "max_steps": MAX_STEPS, "n_episodes": traj.n_episodes,
                       "n_steps": traj.n_steps, "policy_mix": POLICY_MIX, "seed": DATA_SEED,
                       "outcomes": traj.outcome_counts()},
              "train_seconds": res.elapsed_s, "final_loss": float(res.losses[-200:].mean()),
              "calibration": cal.to_dict(), "file_bytes": out.stat().st_size}
    cal_path = out.with_name(out.stem + ".calibration.json")
    cal_path.write_text(json.dumps(report, indent=1))
    print(f"wrote {cal_path}")
    return report


if __name__ == "__main__":
    main()

"""Benchmark of one policy map (a script, not a test).

    python benchmarks/bench_policy_map.py [--repeats 20] [--threads N]

Grid: MiniGrid-Dynamic-Obstacles-8x8 (seed 0; 31 free cells × 4 directions = 124 placements,
one batched forward). Models: the 1-layer demo model ("post": 1L/2H, d_model 128, 2 tokens) and a
2-layer, 4-head, 26-token DT (d_model 128, d_mlp 256, LN, gated MLP, one-hot obs) with random
weights. Timed: ``policy_map`` for a new RTG each call (placements computed once per grid, as the
Explorer does; their cost is printed separately). Prints the median (p10/p90) in ms and the ratio
to the targets (30 ms / 150 ms). The machine's load average is printed: on a shared, loaded
machine torch's default thread count can be far slower than 1 thread (thread contention), so
both are measured, and the process CPU time (less sensitive to other processes) is printed too.
"""
from __future__ import annotations

import argparse
import os
import statistics
import sys
import time
from pathlib import Path

import numpy as np
import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from dtwidgets import MiniGridEnv  # noqa: E402
from dtwidgets.analysis.policy_map import agent_placements, policy_map  # noqa: E402
from dtwidgets.demo import load_demo  # noqa: E402
from dtwidgets.model import DecisionTransformer, DTAdapter, DTConfig, tl_major  # noqa: E402


def models():
    demo, _ = load_demo("post")
    big = DTAdapter(DecisionTransformer(DTConfig(n_layers=2, n_heads=4, d_model=128, d_mlp=256, n_ctx=26,
                                                 layer_norm="LN", gated_mlp=True, one_hot_obs=True, n_actions=7)))
    return [("demo 1L/2H/2 tokens", demo, 30.0), ("2L/4H/26 tokens d128", big, 150.0)]


def bench(adapter, placements, repeats):
    rng = np.random.default_rng(0)
    for _ in range(3):
        policy_map(adapter, placements, float(rng.uniform(-1, 1)))
    times, cpu = [], []
    for _ in range(repeats):
        r = float(rng.uniform(-1, 1))
        t0, c0 = time.perf_counter(), time.process_time()
        policy_map(adapter, placements, r)
        times.append((time.perf_counter() - t0) * 1e3)
        cpu.append((time.process_time() - c0) * 1e3)
    return statistics.median(times), np.percentile(times, [10, 90]), statistics.median(cpu)


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--repeats", type=int, default=20)
    ap.add_argument("--threads", type=int, default=None, help="only this torch thread count (default: torch's and 1)")
    args = ap.parse_args()
    env = MiniGridEnv(seed=0)
    t0 = time.perf_counter()
    placements = agent_placements(env)
    t_place = (time.perf_counter() - t0) * 1e3
    default = torch.get_num_threads()
    threads = [args.threads] if args.threads else sorted({default, 1}, reverse=True)
    print(f"TransformerLens {tl_major()}.x, torch {torch.__version__}, {os.cpu_count()} CPU(s), "
          f"load average {os.getloadavg()[0]:.2f} (a loaded, shared machine slows every number)")
    print(f"placements: {len(placements)} (cells x directions) computed once in {t_place:.1f} ms")
    for name, adapter, target in models():
        for n in threads:
            torch.set_num_threads(n)
            med, (p10, p90), cpu = bench(adapter, placements, args.repeats)
            print(f"policy_map [{name}, {n} thread(s)]: median {med:7.2f} ms (p10 {p10:.2f}, p90 {p90:.2f}; "
                  f"process CPU {cpu:.2f} ms)  target {target:.0f} ms -> ratio {med / target:.2f} "
                  f"{'OK' if med <= target else 'OVER'}")
    torch.set_num_threads(default)


if __name__ == "__main__":
    main()

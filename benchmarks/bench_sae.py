"""Benchmark of SAE training and of encoding one Explorer state (a script, not a test).

    python benchmarks/bench_sae.py [--n 300000] [--d-sae 2048] [--k 32] [--epochs 2] [--threads 2]

Training: ``n`` activations of width 128 (a synthetic sparse mixture of 4096 random unit directions
plus noise: real activations need a long collection, and the data's content does not change the
cost) into ``d_sae`` TopK features, batch 4096. Prints the wall time, the reached FVU, and the ratio
to the target (120 s on 2 CPU cores; < 1 meets it).

Encoding: the median over 2000 calls of ``sae.encode`` of one 128-wide activation with the trained
SAE (ratio to the 2 ms target), and for reference the full per-state cost of the Explorer's SAE tab
(``feature_shares``: one forward of the shipped "post" demo model with a cache + encode + shares).
The machine's load average is printed: on a shared machine the ratios are pessimistic.
"""
from __future__ import annotations

import argparse
import os
import statistics
import sys
import time
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from dtwidgets.sae import SAEConfig, SparseAutoencoder, feature_shares, reconstruction_metrics, train_sae  # noqa: E402

TRAIN_TARGET_S, ENCODE_TARGET_MS = 120.0, 2.0


def synthetic(n: int, d_in: int = 128, n_dirs: int = 4096, active: int = 8, seed: int = 0) -> torch.Tensor:
    g = torch.Generator().manual_seed(seed)
    D = torch.randn(n_dirs, d_in, generator=g)
    D /= D.norm(dim=1, keepdim=True)
    idx = torch.randint(0, n_dirs, (n, active), generator=g)
    mag = torch.rand(n, active, generator=g) * 3
    x = torch.nn.functional.embedding_bag(idx, D, per_sample_weights=mag, mode="sum")
    return x + 0.05 * torch.randn(n, d_in, generator=g)


def bench_train(a) -> SparseAutoencoder:
    x = synthetic(a.n)
    t = time.perf_counter()
    sae, hist = train_sae(x, d_sae=a.d_sae, k=a.k, epochs=a.epochs, batch_size=4096, lr=a.lr, threads=a.threads,
                          progress=not a.quiet)
    dt = time.perf_counter() - t
    m = reconstruction_metrics(sae, x[:50_000])
    print(f"train: {a.n} x 128 -> {a.d_sae} TopK(k={a.k}) features, {hist.n_steps} steps ({a.epochs} epochs) "
          f"on {a.threads} thread(s): {dt:.1f} s, FVU {m.fvu:.3f}, dead {m.dead_fraction:.1%}")
    print(f"train ratio to the {TRAIN_TARGET_S:.0f} s target: {dt / TRAIN_TARGET_S:.2f}")
    return sae


def bench_encode(sae: SparseAutoencoder, repeats: int = 2000) -> None:
    x = torch.randn(1, sae.d_in)
    times = []
    with torch.inference_mode():
        for _ in range(50):
            sae.encode(x)
        for _ in range(repeats):
            t = time.perf_counter()
            sae.encode(x)
            times.append(time.perf_counter() - t)
    med = statistics.median(times) * 1e3
    print(f"encode one state: median {med:.3f} ms; ratio to the {ENCODE_TARGET_MS:.0f} ms target: {med / ENCODE_TARGET_MS:.3f}")
    try:
        from dtwidgets.demo import load_demo
    except ImportError:
        return
    adapter, env = load_demo("post")
    small = SparseAutoencoder(SAEConfig(128, sae.d_sae, k=sae.cfg.k, hook_name="blocks.0.hook_resid_post"))
    small.load_state_dict(sae.state_dict())
    obs = env.reset(seed=0)
    w = adapter.make_window(obs[None], [0.9])
    feature_shares(adapter, small, w, "forward", "right")
    ts = []
    for _ in range(50):
        t = time.perf_counter()
        feature_shares(adapter, small, w, "forward", "right")
        ts.append(time.perf_counter() - t)
    print(f"(reference) SAE tab per state, forward + cache + encode + shares: median {statistics.median(ts) * 1e3:.2f} ms")


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--n", type=int, default=300_000)
    p.add_argument("--d-sae", type=int, default=2048)
    p.add_argument("--k", type=int, default=32)
    p.add_argument("--epochs", type=float, default=2.0)
    p.add_argument("--lr", type=float, default=4e-3)
    p.add_argument("--threads", type=int, default=2)
    p.add_argument("--quiet", action="store_true")
    a = p.parse_args()
    print(f"load average {os.getloadavg()[0]:.1f} on {os.cpu_count()} CPUs; torch {torch.__version__}")
    sae = bench_train(a)
    bench_encode(sae)


if __name__ == "__main__":
    main()

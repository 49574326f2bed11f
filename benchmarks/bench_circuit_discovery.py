"""Benchmark of circuit discovery (a script, not a test).

    python benchmarks/bench_circuit_discovery.py [--repeats 20] [--threads N]

Model: a 2-layer, 4-head, 26-token DT (d_model 128, d_mlp 256, LN, gated MLP, one-hot obs, 7 actions:
the MemoryGatedMLP shape) with random weights, 191 edges; and the 1-layer reference checkpoint when
present (29 edges). Timed, interleaved in one run on the same machine, medians in ms:

* ``plain forward``: ``adapter.forward`` of the clean window (one row): the unit of every ratio;
* ``hooked forward``: the same with one no-op hook (then every layer runs at every position, as in
  every hooked run below; ``adapter.forward`` runs the last MLP at the prediction token only);
* ``EAP gradient pass``: the one forward + one backward that gives every receiver's input gradient
  (``circuit_graph.receiver_input_grads``);
* ``edge_attribution``: all of EAP (the gradient pass plus the cached forward of each window);
* ``exact_edge_effects``: one batched forward of E + 1 circuit rows;
* ``discover_circuit(method="acdc")``: one forward per edge, plus the final check (one batched forward).
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

from dtwidgets.adapters import hooks as adapter_hooks  # noqa: E402
from dtwidgets.analysis import _common as C  # noqa: E402
from dtwidgets.analysis.circuit_discovery import discover_circuit, edge_attribution, exact_edge_effects  # noqa: E402
from dtwidgets.analysis.circuit_graph import circuit_graph, preference_fn, receiver_input_grads  # noqa: E402
from dtwidgets.model import DecisionTransformer, DTAdapter, DTConfig, load_checkpoint, tl_major  # noqa: E402

REF = Path(os.environ.get("DTW_SHARED", Path(__file__).resolve().parents[2] / "shared")) / "models" / \
    "bloom-dynamic-obstacles" / "ReproduceOriginalPostShort.pt"


def window(adapter, seed, rtg):
    rng = np.random.default_rng(seed)
    T = adapter.layout.n_timesteps
    obs = np.stack([rng.integers(0, 11, (T, 7, 7)), rng.integers(0, 6, (T, 7, 7)), rng.integers(0, 3, (T, 7, 7))], -1)
    acts = rng.integers(0, adapter.n_actions, T - 1) if T > 1 else None
    return adapter.make_window(obs, rtg, np.arange(T) + 3, acts)


def models():
    big = DTAdapter(DecisionTransformer(DTConfig(n_layers=2, n_heads=4, d_model=128, d_mlp=256, n_ctx=26,
                                                 layer_norm="LN", gated_mlp=True, one_hot_obs=True, n_actions=7)))
    out = [("2L/4H/26 tokens d128", big)]
    if REF.is_file():
        out.append(("reference 1L/2H/2 tokens", load_checkpoint(REF)))
    return out


def timed(fn):
    t0 = time.perf_counter()
    fn()
    return (time.perf_counter() - t0) * 1e3


def bench(adapter, repeats):
    clean, corr = window(adapter, 1, 0.8), window(adapter, 2, -0.6)
    a, b = adapter.action_names[2], adapter.action_names[0]
    graph, pref = circuit_graph(adapter), preference_fn(adapter, a, b)

    def grad_pass():
        with C.reuse_weights():
            receiver_input_grads(adapter, clean, pref, graph)

    noop = [(adapter_hooks.resid_pre(0), lambda act, hook: None)]  # any hook: the whole sequence runs
    jobs = {"plain forward": lambda: adapter.forward(clean),
            "hooked forward": lambda: adapter.run_with_hooks(clean, fwd_hooks=noop), "EAP gradient pass": grad_pass,
            "edge_attribution": lambda: edge_attribution(adapter, clean, corr, a, b, graph=graph),
            "exact_edge_effects": lambda: exact_edge_effects(adapter, clean, corr, a, b, graph=graph)}
    for fn in jobs.values():  # warm-up
        fn()
    times: dict[str, list[float]] = {k: [] for k in jobs}
    for _ in range(repeats):
        for k, fn in jobs.items():
            times[k].append(timed(fn))
    acdc = timed(lambda: discover_circuit(adapter, clean, corr, a, b, method="acdc"))
    return len(graph.edges), {k: statistics.median(v) for k, v in times.items()}, acdc


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--repeats", type=int, default=20)
    ap.add_argument("--threads", type=int, default=None, help="torch.set_num_threads (default: torch's choice)")
    args = ap.parse_args()
    if args.threads:
        torch.set_num_threads(args.threads)
    print(f"TransformerLens {tl_major()}.x, torch {torch.__version__}, {torch.get_num_threads()} thread(s), "
          f"{os.cpu_count()} CPU(s), load average {os.getloadavg()[0]:.2f}")
    for name, adapter in models():
        n_edges, med, acdc = bench(adapter, args.repeats)
        unit = med["plain forward"]
        print(f"[{name}] {n_edges} edges")
        for k, v in med.items():
            print(f"    {k:<22} median {v:8.2f} ms  = {v / unit:6.1f} x plain forward")
        print(f"    {'ACDC (one run)':<22}        {acdc:8.1f} ms  = {acdc / unit:6.1f} x plain forward "
              f"({n_edges} edges, one forward each)")


if __name__ == "__main__":
    main()

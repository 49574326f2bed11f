"""Benchmark: ``DTAdapter.forward`` (the protocol's forward, logits at the prediction position; the last
block's MLP and ``ln_final`` run on that position only) against the model's full forward
(``model(window)[:, -1]``, every position) on the same windows, interleaved in one run (a script, not
a test). Rollouts, calibration, training dynamics and the clone's teacher all run the protocol's forward.

    python benchmarks/bench_forward.py [--batch 256] [--repeats 9] [--threads 1]

Models: the Explorer benchmarks' two (the demo "post" model, 1 layer / 2 tokens, and a 2-layer /
4-head / 26-token DT). Prints medians in ms and the ratio forward / full (lower is better; the
outputs are checked equal first).
"""
from __future__ import annotations

import argparse
import statistics
import sys
import time
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))


def main(argv=None) -> dict:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--batch", type=int, default=256)
    ap.add_argument("--repeats", type=int, default=9)
    ap.add_argument("--threads", type=int, default=1)
    args = ap.parse_args(argv)
    torch.set_num_threads(args.threads)

    from benchmarks.bench_analysis import windows
    from benchmarks.bench_explorer import explorer_models
    from dtwidgets.adapters.window import TrajectoryWindow

    out = {}
    for name, adapter, _target in explorer_models():
        win = TrajectoryWindow.cat(windows(adapter, args.batch))
        runs = {"forward": lambda: adapter.forward(win), "full": lambda: adapter.model(win)[:, -1]}
        times: dict[str, list[float]] = {k: [] for k in runs}
        with torch.inference_mode():
            torch.testing.assert_close(runs["forward"](), runs["full"](), atol=1e-5, rtol=1e-5)
            for _ in range(args.repeats):
                for key, run in runs.items():
                    t = time.perf_counter()
                    run()
                    times[key].append(time.perf_counter() - t)
        fwd, full = (statistics.median(times[k]) * 1e3 for k in ("forward", "full"))
        out[name] = fwd / full
        print(f"{name}: {args.batch} windows: forward {fwd:.1f} ms, full forward {full:.1f} ms, ratio {fwd / full:.2f}")
    return out


if __name__ == "__main__":
    main()

"""The Attribution tab's extra cost per state: the logit lens + per-neuron list (one one-row forward with the
residual and ``mlp.hook_post`` hooks) next to the shared per-state bundle (``analyze_state``), in one run.

Prints medians and the ratio (lens + neurons) / bundle for the demo model and a 2-layer / 4-head / 26-token
model. The extra runs only while the Attribution tab is shown.

Run: python benchmarks/bench_attribution_tab.py
"""
from __future__ import annotations

import statistics
import time


def _median_ms(fn, n: int = 30) -> float:
    fn()
    times = []
    for _ in range(n):
        t = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t)
    return 1000 * statistics.median(times)


def bench(name, adapter, env):
    from dtwidgets.compositions.attribution_panel import lens_and_neurons
    from dtwidgets.compositions.panels import AnalysisContext
    from dtwidgets.compositions.session import PlaySession

    s = PlaySession(adapter, env, rtg=0.9, seed=1)
    for _ in range(5):
        s.step("left")
    w = s.window()
    ctx = AnalysisContext(adapter, pair=("forward", "right"))
    bundle = _median_ms(lambda: ctx.compute(w, active={"attribution"}))
    extra = _median_ms(lambda: lens_and_neurons(adapter, w, *ctx.pair))
    print(f"{name}: bundle {bundle:.1f} ms, lens + neurons {extra:.1f} ms, ratio {extra / bundle:.2f}")


def main():
    import torch

    from dtwidgets.adapters.minigrid_env import MiniGridEnv
    from dtwidgets.demo import load_demo
    from dtwidgets.model import DecisionTransformer, DTAdapter, DTConfig

    torch.manual_seed(0)
    small, env = load_demo("post")
    big = DTAdapter(DecisionTransformer(DTConfig(d_model=128, n_heads=4, d_mlp=256, n_layers=2, n_ctx=26,
                                                 layer_norm="LN", one_hot_obs=True)))
    bench("1 layer, 2 heads, 2 tokens (demo 'post')", small, env)
    bench("2 layers, 4 heads, 26 tokens", big, MiniGridEnv())


if __name__ == "__main__":
    main()

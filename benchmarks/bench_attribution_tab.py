"""The Attribution tab's extra cost per state, in one run: the shared per-state bundle (``analyze_state``)
computed for the Attribution tab (``needs = {"lens", "per_neuron"}``: the logit lens, the per-neuron shares
and ``mlp.hook_post``, read from row 0 of the bundle's one forward) against the same bundle for a tab that
needs no extras (Ablation). The tab runs no forward of its own; the extras are computed only while it is shown.

Prints medians and the ratio (bundle with extras) / (bundle without) for the demo model and a 2-layer /
4-head / 26-token model.

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
    from dtwidgets.compositions.panels import AnalysisContext
    from dtwidgets.compositions.session import PlaySession

    s = PlaySession(adapter, env, rtg=0.9, seed=1)
    for _ in range(5):
        s.step("left")
    w = s.window()
    ctx = AnalysisContext(adapter, pair=("forward", "right"))
    plain = _median_ms(lambda: ctx.compute(w, active={"ablation"}))
    tab = _median_ms(lambda: ctx.compute(w, active={"attribution"}))
    print(f"{name}: bundle {plain:.1f} ms, with the Attribution tab's lens + neurons {tab:.1f} ms "
          f"(extra {tab - plain:.1f} ms, ratio {tab / plain:.2f})")


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

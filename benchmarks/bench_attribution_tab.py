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
    plain = _median_ms(lambda: ctx.compute(w, panels={"ablation"}))
    tab = _median_ms(lambda: ctx.compute(w, panels={"attribution"}))
    print(f"{name}: bundle {plain:.1f} ms, with the Attribution tab's lens + neurons {tab:.1f} ms "
          f"(extra {tab - plain:.1f} ms, ratio {tab / plain:.2f})")


def main():
    from bench_explorer import explorer_models

    from dtwidgets.adapters.minigrid_env import MiniGridEnv

    for name, adapter, _target in explorer_models():
        bench(name, adapter, MiniGridEnv())

if __name__ == "__main__":
    main()

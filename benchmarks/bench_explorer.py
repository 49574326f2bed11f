"""Explorer responsiveness, measured in one run (kernel side; no browser).

Prints, for the 1-layer reference-sized model and a 2-layer / 4-head / 26-token model:
  * median time from a new state (an env step) to all panels' data ready (the shared analysis),
    and to all widgets updated, vs the targets 10 ms and 30 ms;
  * bytes sent to the front-end per update (JSON messages as Jupyter's packer encodes them, UTF-8
    with ensure_ascii=False, + binary buffers, counted by intercepting ipywidgets' ``Widget._send``)
    vs the raw bytes of the arrays in them (each binary buffer is a small dtype/shape header + the
    float32/uint8 array bytes; the header counts as sent, not as raw), and the number of widget
    messages; target <= 1.1x; then the same per widget class (where the bytes go). The Explorer updates only the
    panel on screen (the Attribution tab here), the grid, the preferences, the status line and the
    timeline; hidden panels are brought up to date when their tab is selected.

The updates of one refresh travel in ONE message of the Explorer's :class:`UpdateFeed` once its
front-end has said it is ready (JupyterLab, Notebook 7, VS Code); the benchmark plays that front-end's
``{"ready": n}``. The fallback (a front-end without the feed: one message per widget) is printed too.

Run: python benchmarks/bench_explorer.py
"""
from __future__ import annotations

import json
import statistics
import time

import ipywidgets
import numpy as np

from dtwidgets.widgets._arrays import wire_payload_bytes


class _Counter:
    def __init__(self):
        self.json = self.buffers = self.messages = self.raw = 0
        self.by_widget: dict[str, list[int]] = {}  # widget class -> [messages, JSON, binary, raw]

    def __enter__(self):
        self._orig = ipywidgets.Widget._send
        counter = self

        def send(widget, msg, buffers=None):
            sizes = (1, len(json.dumps(msg, default=str, ensure_ascii=False).encode()),
                     sum(memoryview(b).nbytes for b in (buffers or [])), sum(wire_payload_bytes(b) for b in (buffers or [])))
            counter.messages += sizes[0]
            counter.json += sizes[1]
            counter.buffers += sizes[2]
            counter.raw += sizes[3]
            row = counter.by_widget.setdefault(type(widget).__name__, [0, 0, 0, 0])
            row[:] = [a + b for a, b in zip(row, sizes)]

        ipywidgets.Widget._send = send
        return self

    def __exit__(self, *exc):
        ipywidgets.Widget._send = self._orig


def bench(name, model, target_ms, n=30, feed=True):
    from dtwidgets.adapters.minigrid_env import MiniGridEnv
    from dtwidgets.compositions import Explorer

    e = Explorer(model, MiniGridEnv(), coalesce_s=0, panels=("attribution", "ablation", "attention", "rtg_scan"))
    if feed:  # what the feed's front-end module sends once it has resolved the targets
        e.feed._on_front_end(e.feed, {"ready": len(e.feed.targets)}, [])
    name += "" if feed else " [fallback: no feed front-end]"
    analysis, total = [], []
    with _Counter() as c:
        for i in range(n):
            if e.session.done or e.session.n_steps > 20:
                e.session.reset(i)
            key = ("ArrowLeft", "ArrowRight")[i % 2]  # turning: never ends the episode
            t = time.perf_counter()
            e.press(key)  # what a key press runs: the grid at once, then the (here synchronous) refresh
            total.append(time.perf_counter() - t)
            analysis.append(e.timings["analysis_s"])
    a_ms, t_ms = statistics.median(analysis) * 1e3, statistics.median(total) * 1e3
    print(f"{name}: state -> panel data {a_ms:.1f} ms (target {target_ms} ms, ratio {a_ms / target_ms:.2f}); "
          f"state -> widgets updated {t_ms:.1f} ms")
    sent = c.json + c.buffers
    print(f"{name}: bytes sent per update {sent / n:,.0f} (binary {c.buffers / n:,.0f} incl. array headers "
          f"+ JSON {c.json / n:,.0f}); raw array bytes sent {c.raw / n:,.0f}; ratio {sent / max(c.raw, 1):.2f} "
          f"(target 1.10); {c.messages / n:.1f} widget messages per update")
    for cls, (m, js, buf, raw) in sorted(c.by_widget.items(), key=lambda kv: -kv[1][1] - kv[1][2]):
        print(f"    {cls:18s} {m / n:4.1f} msgs  JSON {js / n:6,.0f}  binary {buf / n:7,.0f}  raw {raw / n:7,.0f}  "
              f"overhead {(js + buf - raw) / n:5,.0f}")


def explorer_models():
    """``[(name, adapter, target_ms)]``: the demo "post" model and a 2-layer / 4-head / 26-token DT
    (random weights, seed 0) — the two models the Explorer benchmarks measure."""
    import torch

    from dtwidgets.demo import load_demo
    from dtwidgets.model import DecisionTransformer, DTAdapter, DTConfig

    torch.manual_seed(0)
    small, _ = load_demo("post")
    big = DTAdapter(DecisionTransformer(DTConfig(d_model=128, n_heads=4, d_mlp=256, n_layers=2, n_ctx=26,
                                                 layer_norm="LN", one_hot_obs=True)))
    return [("1 layer, 2 heads, 2 tokens (demo 'post')", small, 10), ("2 layers, 4 heads, 26 tokens", big, 30)]


def main():
    for name, adapter, target_ms in explorer_models():
        bench(name, adapter, target_ms)
        bench(name, adapter, target_ms, n=10, feed=False)


if __name__ == "__main__":
    main()

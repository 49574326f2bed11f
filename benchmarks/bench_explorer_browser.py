"""Explorer in a real browser (JupyterLab + Debian chromium via Playwright), measured in one run:

  * the comm round trip of a no-op widget message (JS ``model.send`` → kernel echo → JS), the baseline;
  * key press → the full-grid canvas redrawn;
  * key press → every visible panel updated (preference bars, status line, attribution bars),
on the shipped demo model and on a 2-layer / 4-head / 26-token model, each printed next to the
round trip of the same run (goals: grid <= 1.5x round trip, panels <= 3x). Timings are taken in
the page (performance.now, polled per animation frame), medians over N presses.
Run: python benchmarks/bench_explorer_browser.py [N]   (the machine's load shows in the numbers)
"""
from __future__ import annotations

import statistics
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from tests.browser.conftest import CHROMIUM_ARGS, find_chromium, jupyter_server, open_notebook  # noqa: E402

PING = '''
import anywidget
class Ping(anywidget.AnyWidget):
    _esm = "export default { render({ model, el }) { el.classList.add('dtw-ping'); el.__model = model; } }"
ping = Ping()
ping.on_msg(lambda w, content, buffers: w.send({"pong": content.get("ping")}))
display(ping)
'''
MODELS = {
    "demo 'post' (1 layer, 2 tokens)": "from dtwidgets import Explorer\ne = Explorer.demo(seed=1)\ne\n",
    "2 layers, 4 heads, 26 tokens": (
        "import torch\nfrom dtwidgets import Explorer, MiniGridEnv\n"
        "from dtwidgets.model import DecisionTransformer, DTAdapter, DTConfig\ntorch.manual_seed(0)\n"
        "big = DTAdapter(DecisionTransformer(DTConfig(d_model=128, n_heads=4, d_mlp=256, n_layers=2, n_ctx=26, "
        "layer_norm='LN', one_hot_obs=True)))\ne = Explorer(big, MiniGridEnv(), seed=1)\ne\n"),
}
OUT = ".jp-OutputArea-output"
GRID = f"{OUT} .dtw-gridview canvas.dtw-grid"
PING_JS = """async (n) => {
  const m = document.querySelector('.dtw-ping').__model, out = [];
  for (let i = 0; i < n; i++) {
    const t0 = performance.now();
    await new Promise((res) => { const h = (msg) => { if (msg && msg.pong === i) { m.off('msg:custom', h); res(); } };
      m.on('msg:custom', h); m.send({ ping: i }); });
    out.push(performance.now() - t0);
  }
  return out;
}"""
# JS: press `key` on the full grid; resolve to {grid, panels} ms (grid canvas changed / every visible panel changed)
PRESS_JS = """async ([key, out]) => {
  const q = (s) => document.querySelector(out + ' ' + s);
  const grid = q('.dtw-gridview canvas.dtw-grid');
  const watched = [() => q('.dtw-actionprefs canvas.dtw-probs').toDataURL(), () => q('.dtw-status').textContent,
                   () => [...document.querySelectorAll(out + ' .dtw-contrib canvas')].filter((c) => c.offsetParent).map((c) => c.toDataURL()).join()];
  const g0 = grid.toDataURL(), p0 = watched.map((f) => f());
  const t0 = performance.now();
  grid.closest('.dtw-root').dispatchEvent(new KeyboardEvent('keydown', { key, bubbles: true }));
  let tg = null;
  return await new Promise((res) => {
    const tick = () => {
      const t = performance.now();
      if (tg === null && grid.toDataURL() !== g0) tg = t - t0;
      if (tg !== null && watched.every((f, i) => f() !== p0[i])) return res({ grid: tg, panels: t - t0 });
      if (t - t0 > 20000) return res({ grid: tg, panels: null });
      requestAnimationFrame(tick);
    };
    requestAnimationFrame(tick);
  });
}"""


def measure(browser, server, name, cell, n):
    server.write_notebook("bench.ipynb", [PING, cell])
    with open_notebook(browser, server, "bench.ipynb", viewport=(1400, 1000)) as nb:
        page = nb.page
        nb.run_all(f"{OUT} .dtw-actionprefs canvas", timeout=120)
        page.wait_for_function("() => !!document.querySelector('.dtw-ping')", timeout=60_000)
        nb.wait_kernel_idle()
        page.wait_for_timeout(1500)
        page.evaluate(PING_JS, 3)  # warm-up
        rtt = page.evaluate(PING_JS, n)
        grid, panels = [], []
        for i in range(n):
            r = page.evaluate(PRESS_JS, ["ArrowLeft" if i % 2 else "ArrowRight", OUT])
            grid.append(r["grid"])
            panels.append(r["panels"])
            nb.wait_kernel_idle()
            page.wait_for_timeout(200)
        rtt2 = page.evaluate(PING_JS, n)  # the round trip again, after the presses (same run)
    rt = statistics.median(rtt + rtt2)
    g = statistics.median([x for x in grid if x is not None])
    p = statistics.median([x for x in panels if x is not None])
    print(f"{name}: no-op comm round trip median {rt:.0f} ms (n={2 * n})")
    print(f"{name}: key press -> grid redrawn median {g:.0f} ms = {g / rt:.2f}x round trip (goal <= 1.5x)")
    print(f"{name}: key press -> all visible panels updated median {p:.0f} ms = {p / rt:.2f}x round trip (goal <= 3x)"
          + ("" if None not in panels else f"; {panels.count(None)} presses timed out"))


def main(n: int = 10):
    from playwright.sync_api import sync_playwright

    with jupyter_server("lab") as server, sync_playwright() as pw:
        browser = pw.chromium.launch(executable_path=find_chromium(), headless=True, args=CHROMIUM_ARGS)
        for name, cell in MODELS.items():
            measure(browser, server, name, cell, n)
        browser.close()


if __name__ == "__main__":
    main(int(sys.argv[1]) if len(sys.argv) > 1 else 10)

"""Explorer in a real browser: time from a move (key press / button click) to the redrawn grid canvas.

Starts JupyterLab on a free localhost port (as the browser tests do), opens the Explorer on the
shipped demo model in Debian chromium via Playwright, presses ArrowLeft/ArrowRight N times and
clicks the "left" button N times, and prints the median time until the grid canvas changed.
Run: python benchmarks/bench_explorer_browser.py [N]
"""
from __future__ import annotations

import statistics
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from tests.browser.conftest import CHROMIUM_ARGS, find_chromium, jupyter_server, open_notebook  # noqa: E402

CELL = "from dtwidgets import Explorer\ne = Explorer.demo(seed=1)\ne\n"
GRID = ".jp-OutputArea .dtw-gridview canvas.dtw-grid"


def main(n: int = 10):
    from playwright.sync_api import sync_playwright

    with jupyter_server("lab") as server, sync_playwright() as pw:
        browser = pw.chromium.launch(executable_path=find_chromium(), headless=True, args=CHROMIUM_ARGS)
        server.write_notebook("bench.ipynb", [CELL])
        with open_notebook(browser, server, "bench.ipynb", viewport=(1400, 1000)) as nb:
            page = nb.page
            grid = nb.run_all(GRID, timeout=60)
            page.wait_for_timeout(1000)
            grid.click(position={"x": 10, "y": 10})

            def timed(action) -> float:
                before = page.evaluate("([c]) => c.toDataURL()", [grid.element_handle()])
                t = time.perf_counter()
                action()
                page.wait_for_function("([c, b]) => c.toDataURL() !== b", arg=[grid.element_handle(), before],
                                       timeout=20_000, polling=5)
                return time.perf_counter() - t

            keys = [timed(lambda k=k: page.keyboard.press(k)) for k in ["ArrowLeft", "ArrowRight"] * (n // 2)]
            button = page.get_by_role("button", name="left", exact=True)
            clicks = [timed(button.click) for _ in range(n)]
        browser.close()
    print(f"key press -> redrawn grid: median {statistics.median(keys) * 1000:.0f} ms over {len(keys)} "
          f"(min {min(keys) * 1000:.0f}, max {max(keys) * 1000:.0f})")
    print(f"button click -> redrawn grid: median {statistics.median(clicks) * 1000:.0f} ms over {len(clicks)} "
          f"(min {min(clicks) * 1000:.0f}, max {max(clicks) * 1000:.0f})")
    print("(the grid is sent right after the env step; the analysis refresh that follows is coalesced)")


if __name__ == "__main__":
    main(int(sys.argv[1]) if len(sys.argv) > 1 else 10)

"""Build a Jupyter Book 1 (Sphinx) site that shows an exported dtwidgets page, then check it offline in Chromium.

    python scripts/check_jupyter_book.py --jupyter-book /path/to/venv-with-jupyter-book/bin/python [--out DIR]

jupyter-book 1.x is not a dependency of dtwidgets (it pins Sphinx 7 and myst-nb), so it lives in its own
venv: ``python -m venv venv-jb1 && venv-jb1/bin/pip install "jupyter-book<2"``. This script runs under the
dtwidgets venv (with Playwright and Debian chromium). Steps:

1. ``dtwidgets.to_html(Explorer.demo(), "pages/explorer.html")``: one offline page;
2. a two-page book whose page ``lesson.md`` embeds it in a sandboxed iframe (``{raw} html``), the page
   copied next to the built HTML through Sphinx's ``html_extra_path``; built with ``jupyter-book build``;
3. the built site served on 127.0.0.1 and opened in Chromium with every request that is not to
   127.0.0.1 / blob: / data: / about: blocked and counted: the iframe's page must finish drawing
   (``body[data-dtw-ready='1']``), its grid canvas must have coloured pixels, every tab section must
   carry a drawn view, and no console error may appear. A screenshot goes to ``--out``.

Exit status 0 when every check passes; the failures are printed otherwise.
"""
from __future__ import annotations

import argparse
import functools
import http.server
import subprocess
import sys
import tempfile
import threading
import warnings
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

CONFIG = """title: dtwidgets lesson
author: dtwidgets
execute:
  execute_notebooks: "off"
sphinx:
  config:
    html_extra_path: ["pages"]
"""
TOC = """format: jb-book
root: intro
chapters:
- file: lesson
"""
INTRO = "# A course\n\nThe next page shows the Explorer, exported offline by dtwidgets.\n"
LESSON = """# The Explorer, offline

The view below is a page of its own (`dtwidgets.to_html`), shown in a sandboxed iframe.

```{raw} html
<iframe class="dtw-lesson" src="explorer.html" width="100%" height="1500" sandbox="allow-scripts"
        style="border:0"></iframe>
```
"""


def build_book(jb_python: str, book: Path) -> Path:
    """Write the book and the exported page under ``book``; returns the built HTML folder."""
    from dtwidgets import Explorer, to_html

    (book / "pages").mkdir(parents=True)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        to_html(Explorer.demo(), book / "pages" / "explorer.html", title="Explorer")
    for name, text in {"_config.yml": CONFIG, "_toc.yml": TOC, "intro.md": INTRO, "lesson.md": LESSON}.items():
        (book / name).write_text(text, encoding="utf-8")
    run = subprocess.run([jb_python, "-m", "jupyter_book", "build", str(book)], capture_output=True, text=True)
    if run.returncode != 0:
        raise SystemExit(f"jupyter-book build failed ({run.returncode}):\n{run.stdout[-3000:]}\n{run.stderr[-3000:]}")
    return book / "_build" / "html"


def serve(folder: Path) -> tuple[http.server.ThreadingHTTPServer, str]:
    handler = functools.partial(http.server.SimpleHTTPRequestHandler, directory=str(folder))
    handler.log_message = lambda *a, **k: None  # type: ignore[method-assign]
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    return server, f"http://127.0.0.1:{server.server_address[1]}"


def check_site(base: str, out: Path, width: int) -> list[str]:
    """Open ``lesson.html`` in Chromium at ``width`` px; returns the failures (empty: all passed)."""
    from playwright.sync_api import sync_playwright

    from tests.browser.conftest import find_chromium

    failures: list[str] = []
    foreign: list[str] = []
    errors: list[str] = []
    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=find_chromium(), args=["--no-sandbox"])
        page = browser.new_page(viewport={"width": width, "height": 1000})

        def route(r):
            url = r.request.url
            if url.startswith(("http://127.0.0.1", "blob:", "data:", "about:")):
                return r.continue_()
            foreign.append(url)
            return r.abort()
        page.route("**/*", route)
        page.on("console", lambda m: errors.append(m.text) if m.type == "error" else None)
        page.on("pageerror", lambda e: errors.append(str(e)))
        page.goto(f"{base}/lesson.html")
        frame = page.frame_locator("iframe.dtw-lesson")
        frame.locator("body[data-dtw-ready='1']").wait_for(timeout=60_000)
        grid = frame.locator("canvas").first
        grid.scroll_into_view_if_needed()
        coloured = grid.evaluate("c => { const d = c.getContext('2d').getImageData(0, 0, c.width, c.height).data;"
                                 " let n = 0; for (let i = 0; i < d.length; i += 4) if (d[i+3] && (d[i] !== d[i+1] ||"
                                 " d[i+1] !== d[i+2])) n++; return n; }")
        if coloured < 100:
            failures.append(f"{width}px: the grid canvas in the iframe has {coloured} coloured pixels (expected a drawn grid)")
        titles = frame.locator(".dtw-x-tabtitle")
        if titles.count() < 2:
            failures.append(f"{width}px: expected the Explorer's tabs (one section each) in the page, found {titles.count()}")
        elif frame.locator(".dtw-x-tabs canvas").count() < titles.count():
            failures.append(f"{width}px: fewer canvases than tab sections: a tab carries no data")
        out.mkdir(parents=True, exist_ok=True)
        page.screenshot(path=str(out / f"jupyter_book1_{width}.png"), full_page=False)
        browser.close()
    failures += [f"{width}px: request outside the page: {u}" for u in foreign]
    failures += [f"{width}px: console error: {e}" for e in errors]
    return failures


def main() -> int:
    ap = argparse.ArgumentParser()
    ap.add_argument("--jupyter-book", required=True, help="python of a venv with jupyter-book<2 installed")
    ap.add_argument("--out", default=str(ROOT / "docs" / "screenshots"), help="folder for the screenshots")
    args = ap.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        html = build_book(args.jupyter_book, Path(tmp) / "book")
        if not (html / "explorer.html").is_file():
            print("the exported page was not copied into the built site (html_extra_path)")
            return 1
        server, base = serve(html)
        try:
            failures = [f for w in (1100, 1600) for f in check_site(base, Path(args.out), w)]
        finally:
            server.shutdown()
    print("\n".join(failures) if failures else "Jupyter Book 1 site: the exported Explorer draws offline in its iframe "
          "(1100 and 1600 px, no foreign request, no console error)")
    return 1 if failures else 0


if __name__ == "__main__":
    raise SystemExit(main())

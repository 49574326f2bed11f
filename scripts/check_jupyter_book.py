"""Build a Jupyter Book 1 (Sphinx) site that shows an exported dtwidgets page, then check it offline in Chromium.

    python scripts/check_jupyter_book.py --jupyter-book /path/to/venv-with-jupyter-book/bin/python [--out DIR]

jupyter-book 1.x is not a dependency of dtwidgets (it pins Sphinx 7 and myst-nb), so it lives in its own
venv: ``python -m venv venv-jb1 && venv-jb1/bin/pip install "jupyter-book<2"``. This script runs under the
dtwidgets venv (with Playwright and Debian chromium). Steps:

1. ``dtwidgets.to_html(Explorer.demo(), "pages/explorer.html")``: one offline page;
2. a two-page book (``intro.md``, ``lesson.md``) whose ``lesson.md`` embeds it in a sandboxed iframe
   (``{raw} html``), the page copied next to the built HTML through Sphinx's ``html_extra_path``; built with
   ``jupyter-book build`` (the jupyter-book venv's ``jupyter_book.cli.main``);
3. the built site served on 127.0.0.1 and opened in Chromium at 1100 and 1600 px with every request that is
   not to 127.0.0.1 / blob: / data: / about: blocked and counted. A sandboxed iframe cannot size itself to
   its page, so the exported page's height inside the iframe is measured first and the book rebuilt with
   the iframe that tall. Then: the iframe's page must finish drawing (``body[data-dtw-ready='1']``), its
   grid canvas must have coloured pixels, every tab section must carry a drawn view, the page must fit the
   iframe (no overflow across or down: nothing clipped), no request may leave 127.0.0.1, and no console
   error may appear other than those the book's theme logs on ``intro.html`` too (a page without
   dtwidgets; they are printed, not counted). A screenshot of the whole page per width goes to ``--out``.

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
FRAME_SLACK_PX = 16  # over the measured page height: the frame loses its scrollbar once tall enough, which can reflow
INTRO = "# A course\n\nThe next page shows the Explorer, exported offline by dtwidgets.\n"
LESSON = """# The Explorer, offline

The view below is a page of its own (`dtwidgets.to_html`), shown in a sandboxed iframe.

```{raw} html
<iframe class="dtw-lesson" src="explorer.html" width="100%" height="FRAME_HEIGHT" sandbox="allow-scripts"
        style="border:0"></iframe>
```
"""


def export_page(book: Path) -> None:
    """``to_html(Explorer.demo())`` into ``book/pages/explorer.html`` (copied next to the built pages)."""
    from dtwidgets import Explorer, to_html

    (book / "pages").mkdir(parents=True)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        to_html(Explorer.demo(), book / "pages" / "explorer.html", title="Explorer")


def build_book(jb_python: str, book: Path, frame_height_px: int) -> Path:
    """Write the book's files under ``book`` (the iframe ``frame_height_px`` tall) and build it with
    ``jupyter-book build``; returns the built HTML folder."""
    lesson = LESSON.replace("FRAME_HEIGHT", str(int(frame_height_px)))
    for name, text in {"_config.yml": CONFIG, "_toc.yml": TOC, "intro.md": INTRO, "lesson.md": lesson}.items():
        (book / name).write_text(text, encoding="utf-8")
    # jupyter-book 1 has no ``python -m jupyter_book``: its console script calls ``jupyter_book.cli.main.main``.
    command = [jb_python, "-c", "import sys; from jupyter_book.cli.main import main; sys.exit(main())", "build", str(book)]
    run = subprocess.run(command, capture_output=True, text=True)
    if run.returncode != 0:
        raise SystemExit(f"jupyter-book build failed ({run.returncode}):\n{run.stdout[-3000:]}\n{run.stderr[-3000:]}")
    return book / "_build" / "html"


class QuietHandler(http.server.SimpleHTTPRequestHandler):
    """Serves a folder without a log line per request."""

    def log_message(self, format: str, *args: object) -> None:  # noqa: A002 (the base class's name)
        return None


def serve(folder: Path) -> tuple[http.server.ThreadingHTTPServer, str]:
    handler = functools.partial(QuietHandler, directory=str(folder))
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    return server, f"http://127.0.0.1:{server.server_address[1]}"


def open_offline(browser, url: str, width: int) -> tuple[object, list[str], list[str]]:
    """A page at ``width`` x 1000 px with every request outside 127.0.0.1 blocked; returns
    (page, foreign request URLs, console errors), both lists filled as the page runs."""
    page = browser.new_page(viewport={"width": width, "height": 1000})
    foreign: list[str] = []
    errors: list[str] = []

    def route(r):
        url = r.request.url
        if url.startswith(("http://127.0.0.1", "blob:", "data:", "about:")):
            return r.continue_()
        foreign.append(url)
        return r.abort()
    page.route("**/*", route)
    page.on("console", lambda m: errors.append(m.text) if m.type == "error" else None)
    page.on("pageerror", lambda e: errors.append(str(e)))
    page.goto(url)
    return page, foreign, errors


def site_errors(browser, base: str) -> list[str]:
    """Console errors of the book's own page without dtwidgets (``intro.html``): the theme's, to tell apart."""
    page, _, errors = open_offline(browser, f"{base}/intro.html", 1100)
    page.wait_for_load_state("load")
    page.wait_for_timeout(1000)
    page.close()
    return errors


# JS on the <html> inside the iframe (sandboxed: run in the frame itself): how far its content overflows
# the iframe's box, [across, down] in px (0 = fits, nothing needs the frame's own scrollbars).
OVERFLOW_JS = """h => [Math.max(h.scrollWidth, document.body.scrollWidth) - h.clientWidth,
  Math.max(h.scrollHeight, document.body.scrollHeight) - h.clientHeight]"""
COLOURED_JS = """c => { const d = c.getContext('2d').getImageData(0, 0, c.width, c.height).data; let n = 0;
  for (let i = 0; i < d.length; i += 4) if (d[i+3] && (d[i] !== d[i+1] || d[i+1] !== d[i+2])) n++; return n; }"""


def check_drawn_explorer(frame, width: int) -> list[str]:
    """The exported Explorer in ``frame`` (a Playwright frame locator) finished drawing: its grid canvas has
    coloured pixels and every tab section carries a drawn view. Returns the failures."""
    failures: list[str] = []
    frame.locator("body[data-dtw-ready='1']").wait_for(timeout=60_000)
    grid = frame.locator("canvas").first
    grid.scroll_into_view_if_needed()
    coloured = grid.evaluate(COLOURED_JS)
    if coloured < 100:
        failures.append(f"{width}px: the grid canvas in the iframe has {coloured} coloured pixels (expected a drawn grid)")
    titles = frame.locator(".dtw-x-tabtitle")
    if titles.count() < 2:
        failures.append(f"{width}px: expected the Explorer's tabs (one section each) in the page, found {titles.count()}")
    elif frame.locator(".dtw-x-tabs canvas").count() < titles.count():
        failures.append(f"{width}px: fewer canvases than tab sections: a tab carries no data")
    return failures


def check_frame(page, width: int) -> list[str]:
    """The drawn Explorer inside ``iframe.dtw-lesson``: grid pixels, one drawn view per tab, no clipping."""
    frame = page.frame_locator("iframe.dtw-lesson")
    failures = check_drawn_explorer(frame, width)
    over_x, over_y = frame.locator("html").evaluate(OVERFLOW_JS)
    if over_x > 0 or over_y > 0:
        failures.append(f"{width}px: the Explorer overflows its iframe by {over_x} px across and {over_y} px down (clipped)")
    return failures


def page_height(base: str, widths: tuple[int, ...]) -> int:
    """Height (CSS px) of the exported page inside the lesson's iframe: the most over the viewport ``widths``."""
    from playwright.sync_api import sync_playwright

    from tests.browser.conftest import find_chromium

    heights = []
    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=find_chromium(), args=["--no-sandbox"])
        for width in widths:
            page, _, _ = open_offline(browser, f"{base}/lesson.html", width)
            frame = page.frame_locator("iframe.dtw-lesson")
            frame.locator("body[data-dtw-ready='1']").wait_for(timeout=60_000)
            heights.append(frame.locator("html").evaluate("h => Math.max(h.scrollHeight, document.body.scrollHeight)"))
            page.close()
        browser.close()
    return int(max(heights))


def check_site(base: str, out: Path, width: int) -> list[str]:
    """Open ``lesson.html`` in Chromium at ``width`` px; returns the failures (empty: all passed).

    A console error counts unless the book's page without dtwidgets shows the same one (the theme's own)."""
    from playwright.sync_api import sync_playwright

    from tests.browser.conftest import find_chromium

    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=find_chromium(), args=["--no-sandbox"])
        theirs = site_errors(browser, base)
        page, foreign, errors = open_offline(browser, f"{base}/lesson.html", width)
        failures = check_frame(page, width)
        out.mkdir(parents=True, exist_ok=True)
        # Chromium paints an iframe only where the viewport is: make the viewport as tall as the whole page.
        page.set_viewport_size({"width": width, "height": page.evaluate("document.documentElement.scrollHeight")})
        page.evaluate("window.scrollTo(0, 0)")
        page.wait_for_timeout(500)
        page.screenshot(path=str(out / f"jupyter_book1_{width}.png"))
        browser.close()
    ours = list(errors)
    for e in theirs:
        if e in ours:
            ours.remove(e)
    if theirs and width == 1100:
        print("the book's theme logs these on every page, with or without dtwidgets (not counted):\n  "
              + "\n  ".join(sorted(set(theirs))))
    failures += [f"{width}px: request outside the page: {u}" for u in foreign]
    failures += [f"{width}px: console error: {e}" for e in ours]
    return failures


def main() -> int:
    ap = argparse.ArgumentParser()
    ap.add_argument("--jupyter-book", required=True, help="python of a venv with jupyter-book<2 installed")
    ap.add_argument("--out", default=str(ROOT / "docs" / "screenshots"), help="folder for the screenshots")
    args = ap.parse_args()
    widths = (1100, 1600)
    with tempfile.TemporaryDirectory() as tmp:
        book = Path(tmp) / "book"
        export_page(book)
        html = build_book(args.jupyter_book, book, frame_height_px=400)
        if not (html / "explorer.html").is_file():
            print("the exported page was not copied into the built site (html_extra_path)")
            return 1
        server, base = serve(html)
        try:
            # The iframe cannot size itself (sandboxed, no script of the site reads it): give it the page's height.
            height = page_height(base, widths) + FRAME_SLACK_PX
            build_book(args.jupyter_book, book, frame_height_px=height)
            failures = [f for w in widths for f in check_site(base, Path(args.out), w)]
        finally:
            server.shutdown()
    print("\n".join(failures) if failures else f"Jupyter Book 1 site: the exported Explorer draws offline in its {height} px "
          "iframe, nothing clipped (1100 and 1600 px, no foreign request, no console error of ours)")
    return 1 if failures else 0


if __name__ == "__main__":
    raise SystemExit(main())

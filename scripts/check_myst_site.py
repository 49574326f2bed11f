"""Build a Jupyter Book 2 / MyST site's content with an exported dtwidgets page in an ``{iframe}``, then check
what can be checked offline in Chromium.

    python scripts/check_myst_site.py --myst /path/to/venv-jb2/bin/jupyter-book [--out DIR] [--renderer DIR]

jupyter-book 2 (mystmd) is not a dependency of dtwidgets: ``python -m venv venv-jb2 && venv-jb2/bin/pip install
"jupyter-book>=2"``; ``--myst`` is its ``jupyter-book`` (or ``myst``) command, or that venv's python. This script
runs under the dtwidgets venv (with Playwright and Debian chromium). Steps:

1. ``dtwidgets.to_html(Explorer.demo(), "pages/explorer.html")``: one offline page;
2. a two-page book whose ``lesson.md`` shows it with ``:::{iframe} /explorer.html``, the page listed in
   ``project: static_files``; built with ``jupyter-book build --site`` (the site's content, no HTML). The site
   theme is a download (``api.mystmd.org``), so ``site: template:`` names a local folder holding only a
   ``template.yml``: mystmd reads the theme's options from it and needs nothing else to write the content.
   Checked: the build exits 0, ``_build/site/content/lesson.json`` has the iframe node with our ``src``, and
   ``_build/site/public/explorer.html`` is our page byte for byte (``myst start`` serves that folder at ``/``;
   ``build --html`` copies ``static_files`` to the site root);
3. the iframe node rendered to HTML by the theme's own renderer (``myst-to-react``'s ``iframe``, with React's
   ``renderToStaticMarkup``; installed from npm into ``--renderer`` if missing) and written where
   ``build --html`` puts the page, ``lesson/index.html``, with our page at the root as ``static_files`` are;
4. that folder served on 127.0.0.1 and ``/lesson/`` opened in Chromium at 1100 and 1600 px with every request
   outside 127.0.0.1 / blob: / data: / about: blocked and counted: the iframe's page must finish drawing, its
   grid canvas must have coloured pixels, every tab section must carry a drawn view, hovering the grid must
   show its cell card, no request may leave 127.0.0.1 and no console error may appear. A screenshot per
   width goes to ``--out``.

Not checked (printed at the end): the book theme itself (its page shell, CSS, client-side navigation), which is
downloaded at build time and cannot be here. Exit status 0 when every check passes; the failures are printed.
"""
from __future__ import annotations

import argparse
import json
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "scripts"))

from check_jupyter_book import check_drawn_explorer, export_page, open_offline, serve  # noqa: E402 (after the path)

FRAME_SRC = "/explorer.html"
MYST_YML = """version: 1
project:
  title: dtwidgets lesson
  static_files:
    - pages/explorer.html
  toc:
    - file: intro.md
    - file: lesson.md
site:
  template: ./theme-options
"""
# What mystmd reads from a site theme for ``--site``: its template.yml (options), nothing else.
TEMPLATE_YML = "jtex: v1\ntitle: theme options only (the book theme is a download)\n"
INTRO = "# A course\n\nThe next page shows the Explorer, exported offline by dtwidgets.\n"
LESSON = f"""# The Explorer, offline

The view below is a page of its own (`dtwidgets.to_html`), shown in an iframe.

:::{{iframe}} {FRAME_SRC}
:width: 100%
:title: dtwidgets Explorer
:::
"""
RENDERER_PACKAGES = ("myst-to-react@1.3.0", "react@18", "react-dom@18")
# Node script (run in the renderer folder): every iframe node of a content JSON, as the theme renders it.
RENDER_MJS = """import { readFileSync } from 'node:fs';
import { createElement } from 'react';
import { renderToStaticMarkup } from 'react-dom/server';
import { DEFAULT_RENDERERS } from 'myst-to-react';
const IFrame = DEFAULT_RENDERERS.iframe.base;
const found = [];
const walk = (n) => { if (n.type === 'iframe') found.push(n); (n.children || []).forEach(walk); };
walk(JSON.parse(readFileSync(process.argv[2], 'utf8')).mdast);
process.stdout.write(JSON.stringify(found.map((node) => renderToStaticMarkup(createElement(IFrame, { node })))));
"""
# The theme's Tailwind classes that the rendered iframe uses (its stylesheet is part of the downloaded theme).
PAGE = """<!doctype html><html><head><meta charset="utf-8"><title>lesson</title><style>
.relative{position:relative}.inline-block{display:inline-block}.leading-\\[0\\]{line-height:0}
body{margin:0}main{max-width:900px;margin:0 auto;padding:16px}</style></head>
<body><main><h1>The Explorer, offline</h1>BODY</main></body></html>"""
UNVERIFIED = """not verified here (no network: the book theme is downloaded from api.mystmd.org at build time):
  - `jupyter-book build --html` with the book theme: its page shell, stylesheet and client-side navigation
    around the iframe (the iframe element is myst-to-react 1.3.0's, checked above; the current theme uses ^1.4.1);
  - `myst start`'s live server (it serves _build/site/public at /, where our page is, checked above)."""


def myst_command(myst: str) -> list[str]:
    """The command that runs jupyter-book / myst: the binary itself, or ``python -m jupyter_book``."""
    return [myst, "-m", "jupyter_book"] if Path(myst).name.startswith("python") else [myst]


def build_site(myst: str, book: Path) -> list[str]:
    """Write the book under ``book`` (next to ``pages/explorer.html``) and run ``build --site``; returns failures."""
    (book / "theme-options").mkdir()
    (book / "theme-options" / "template.yml").write_text(TEMPLATE_YML, encoding="utf-8")
    for name, text in {"myst.yml": MYST_YML, "intro.md": INTRO, "lesson.md": LESSON}.items():
        (book / name).write_text(text, encoding="utf-8")
    run = subprocess.run([*myst_command(myst), "build", "--site"], cwd=book, capture_output=True, text=True)
    if run.returncode != 0:
        return [f"build --site failed ({run.returncode}):\n{run.stdout[-3000:]}\n{run.stderr[-3000:]}"]
    return check_content(book / "_build" / "site", (book / "pages" / "explorer.html").read_bytes())


def check_content(site: Path, page: bytes) -> list[str]:
    """The built content: the lesson's iframe node points at our page, which is in the site's public folder."""
    failures = []
    lesson = json.loads((site / "content" / "lesson.json").read_text(encoding="utf-8"))
    frames = [n for n in walk(lesson["mdast"]) if n.get("type") == "iframe"]
    if [n.get("src") for n in frames] != [FRAME_SRC]:
        failures.append(f"lesson.json: expected one iframe node with src {FRAME_SRC}, found {frames}")
    public = site / "public" / "explorer.html"
    if not public.is_file() or public.read_bytes() != page:
        failures.append(f"{public} is missing or is not the exported page (static_files)")
    slugs = [p["slug"] for p in json.loads((site / "config.json").read_text(encoding="utf-8"))["projects"][0]["pages"]]
    if slugs != ["lesson"]:
        failures.append(f"config.json: expected the lesson page after the index, found {slugs}")
    return failures


def walk(node: dict) -> list[dict]:
    """Every node of an mdast tree, depth first."""
    return [node] + [d for child in node.get("children", []) for d in walk(child)]


def render_lesson(renderer: Path, site: Path, html: Path, page: Path) -> str:
    """Render the lesson's iframe nodes with myst-to-react into ``html/lesson/index.html``, our page at
    ``html/explorer.html`` (where ``build --html`` puts pages and static files); returns the iframe HTML."""
    if not (renderer / "node_modules" / "myst-to-react").is_dir():
        renderer.mkdir(parents=True, exist_ok=True)
        subprocess.run(["npm", "install", "--prefix", str(renderer), "--no-audit", "--no-fund", *RENDERER_PACKAGES],
                       check=True, capture_output=True)
    (renderer / "render_iframes.mjs").write_text(RENDER_MJS, encoding="utf-8")
    run = subprocess.run(["node", "render_iframes.mjs", str(site / "content" / "lesson.json")], cwd=renderer,
                         capture_output=True, text=True, check=True)
    frames = "".join(json.loads(run.stdout))
    (html / "lesson").mkdir(parents=True)
    (html / "lesson" / "index.html").write_text(PAGE.replace("BODY", frames), encoding="utf-8")
    shutil.copy(page, html / "explorer.html")
    return frames


def check_frame(page, width: int) -> list[str]:
    """The drawn Explorer inside the lesson's iframe: grid pixels, one drawn view per tab, the grid's hover card."""
    frame = page.frame_locator("iframe")
    failures = check_drawn_explorer(frame, width)
    grid = frame.locator("canvas").first
    box = grid.bounding_box()
    grid.hover(position={"x": box["width"] / 2, "y": box["height"] / 2})
    tip = frame.locator(".dtw-tip").first
    if not tip.is_visible() or "(x=" not in (tip.text_content() or ""):
        failures.append(f"{width}px: hovering the grid in the iframe shows no cell card")
    return failures


def check_site(base: str, out: Path, width: int) -> list[str]:
    """Open ``/lesson/`` in Chromium at ``width`` px; returns the failures (empty: all passed)."""
    from playwright.sync_api import sync_playwright

    from tests.browser.conftest import find_chromium

    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=find_chromium(), args=["--no-sandbox"])
        page, foreign, errors = open_offline(browser, f"{base}/lesson/", width)
        failures = check_frame(page, width)
        frame_box = page.locator("iframe").bounding_box()
        inner = page.frame_locator("iframe").locator("html").evaluate("h => h.scrollHeight")
        print(f"{width}px: the theme's iframe is {frame_box['width']:.0f} x {frame_box['height']:.0f} px "
              f"(60% of its width); the Explorer inside is {inner} px tall and scrolls in the frame")
        out.mkdir(parents=True, exist_ok=True)
        page.screenshot(path=str(out / f"myst_site_{width}.png"))
        browser.close()
    failures += [f"{width}px: request outside the page: {u}" for u in foreign]
    failures += [f"{width}px: console error: {e}" for e in errors]
    return failures


def main() -> int:
    ap = argparse.ArgumentParser()
    ap.add_argument("--myst", required=True, help="jupyter-book (2.x) or myst command, or the python of its venv")
    ap.add_argument("--out", default=str(ROOT / "docs" / "screenshots"), help="folder for the screenshots")
    ap.add_argument("--renderer", default=str(Path(tempfile.gettempdir()) / "dtw-myst-renderer"),
                    help="folder with (or for) npm's myst-to-react, react, react-dom")
    args = ap.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        book = Path(tmp) / "book"
        export_page(book)
        failures = build_site(args.myst, book)
        if failures:
            print("\n".join(failures))
            return 1
        site, html = book / "_build" / "site", Path(tmp) / "html"
        frames = render_lesson(Path(args.renderer), site, html, book / "pages" / "explorer.html")
        print(f"the theme's renderer (myst-to-react) gives: {frames}")
        print("the iframe is " + ("sandboxed" if "sandbox=" in frames else "not sandboxed: the page runs with the site's origin"))
        server, base = serve(html)
        try:
            failures = [f for w in (1100, 1600) for f in check_site(base, Path(args.out), w)]
        finally:
            server.shutdown()
    print("\n".join(failures) if failures else "MyST site: build --site puts our page into the site and the iframe "
          f"node points at it ({FRAME_SRC}); in the theme renderer's iframe the Explorer draws and answers a hover "
          "offline (1100 and 1600 px, no foreign request, no console error)")
    print(UNVERIFIED)
    return 1 if failures else 0


if __name__ == "__main__":
    raise SystemExit(main())

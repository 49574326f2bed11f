"""``python -m dtwidgets.export lesson.ipynb -o lesson.html``: an executed notebook as one offline page."""

from __future__ import annotations

import argparse
import pathlib
import sys

from . import EMBEDS, notebook_to_html


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(prog="python -m dtwidgets.export",
                                 description="Turn an EXECUTED notebook (widget state saved) into one offline HTML page "
                                             "where every dtwidgets output is live.")
    ap.add_argument("notebook", help="the executed .ipynb")
    ap.add_argument("-o", "--output", help="the .html to write (default: the notebook's name with .html)")
    ap.add_argument("--title", help="page title (default: the first markdown heading)")
    ap.add_argument("--embed", choices=EMBEDS, default="page",
                    help="page: a whole document; iframe: a sandboxed <iframe srcdoc> snippet to paste into a site")
    a = ap.parse_args(argv)
    out = a.output or str(pathlib.Path(a.notebook).with_suffix(".html"))
    try:
        path = notebook_to_html(a.notebook, out, title=a.title, embed=a.embed)
    except (FileNotFoundError, ValueError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    print(path)
    return 0


if __name__ == "__main__":
    sys.exit(main())

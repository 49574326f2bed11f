"""Print the size of every bundled widget module in dtwidgets/static and the ratio to the budget.

Usage: python benchmarks/bench_js_bundle.py [--budget-kb 150] [--json]
Exit status 1 when the widget total exceeds the budget. Gzip sizes are shown for reference
(what a notebook file or HTML export costs after compression). Every bundle is self-contained
(anywidget sends it with each widget instance), so the total counts the shared runtime
(js/lib/widget.js, dom.js, errorbox.js, tooltip.js, base CSS...) once per widget: `node
js/build.mjs --analyze` shows what each bundle is made of and the bytes each source module adds
summed over all widget bundles.
"""

from __future__ import annotations

import argparse
import gzip
import json
import pathlib
import sys

STATIC = pathlib.Path(__file__).resolve().parents[1] / "dtwidgets" / "static"


def sizes() -> dict[str, tuple[int, int]]:
    out = {}
    for p in sorted(STATIC.glob("*.js")):
        raw = p.read_bytes()
        out[p.name] = (len(raw), len(gzip.compress(raw, 9, mtime=0)))
    return out


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--budget-kb", type=float, default=150.0)
    ap.add_argument("--json", action="store_true", help="print a JSON object instead of a table")
    a = ap.parse_args()
    s = sizes()
    if not s:
        print(f"no bundles in {STATIC}; run `cd js && npm ci && npm run build`", file=sys.stderr)
        return 2
    widgets = {k: v for k, v in s.items() if k != "export_runtime.js"}
    total = sum(v[0] for v in widgets.values())
    total_gz = sum(v[1] for v in widgets.values())
    budget = a.budget_kb * 1000
    ratio = total / budget
    if a.json:
        print(json.dumps({"files": {k: {"bytes": v[0], "gzip": v[1]} for k, v in s.items()},
                          "widget_total_bytes": total, "widget_total_gzip": total_gz,
                          "budget_bytes": budget, "ratio": round(ratio, 4)}))
    else:
        print(f"{'file':<26}{'bytes':>10}{'gzip':>9}")
        for k, (b, g) in s.items():
            print(f"{k:<26}{b:>10,}{g:>9,}")
        print(f"{'widgets total':<26}{total:>10,}{total_gz:>9,}")
        print(f"budget {a.budget_kb:g} KB -> ratio {ratio:.3f} ({'OK' if ratio <= 1 else 'OVER BUDGET'})")
    return 0 if ratio <= 1 else 1


if __name__ == "__main__":
    sys.exit(main())

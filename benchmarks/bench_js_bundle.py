"""Print the size of every bundled widget module in dtwidgets/static and the ratio to the budget.

Usage: python benchmarks/bench_js_bundle.py [--budget-kb 150] [--json] [--explorer [--page-budget-kb 150]]
Exit status 1 when the widget total exceeds the budget, or (``--explorer``) when the Explorer page does. Gzip sizes are shown for reference
(what a notebook file or HTML export costs after compression). Every bundle is self-contained
(anywidget sends it with each widget instance), so each is shipped deflate-compressed inside a small
loader (js/build.mjs); `unpacked` is the minified module it carries. `node js/build.mjs --analyze`
shows what each bundle is made of and the bytes each source module adds summed over all bundles.

``--explorer`` also builds ``Explorer.demo()`` and adds up what its page receives: anywidget sends
``_esm`` with EVERY widget model (a saved notebook keeps it per model too), so the bytes are summed
per instance, packed and unpacked (the ratio of the two measured in this one run). The page total is
what the page loads when displayed (hidden tabs create their models when first shown); the bytes
added once every tab is shown (``before_export``, as ``to_html`` does) are printed beside it.
"""

from __future__ import annotations

import argparse
import base64
import gzip
import json
import pathlib
import re
import sys
import zlib

STATIC = pathlib.Path(__file__).resolve().parents[1] / "dtwidgets" / "static"


def sizes() -> dict[str, tuple[int, int]]:
    out = {}
    for p in sorted(STATIC.glob("*.js")):
        raw = p.read_bytes()
        out[p.name] = (len(raw), len(gzip.compress(raw, 9, mtime=0)))
    return out


_PACKED = re.compile(r'^const K="[^"]*",Z="([A-Za-z0-9+/=]*)";$', re.M)


def unpacked(text: str) -> str:
    """The minified module a packed bundle carries (the text itself for an unpacked one)."""
    m = _PACKED.search(text)
    return zlib.decompress(base64.b64decode(m.group(1))).decode("utf-8") if m else text


def _esm_bytes(models) -> tuple[int, int]:
    """``_esm`` bytes of ``models``, packed and unpacked."""
    packed = sum(len(str(w._esm).encode("utf-8")) for w in models)
    return packed, sum(len(unpacked(str(w._esm)).encode("utf-8")) for w in models)


def explorer_bytes() -> dict:
    """Bytes of ``_esm`` the Explorer demo's page receives (every DTWidget model created), packed and
    unpacked; ``all_tabs_*``: the same once every tab is shown."""
    import warnings

    from ipywidgets.widgets.widget import _instances

    from dtwidgets import Explorer
    from dtwidgets.widgets import DTWidget

    before = set(_instances)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        e = Explorer.demo()
    models = [w for k, w in _instances.items() if k not in before and isinstance(w, DTWidget)]
    packed, plain = _esm_bytes(models)
    e.before_export()  # every tab created
    every = [w for k, w in _instances.items() if k not in before and isinstance(w, DTWidget)]
    all_packed, _ = _esm_bytes(every)
    del e
    return {"instances": len(models), "modules": len({w._module for w in models}),
            "packed_bytes": packed, "unpacked_bytes": plain, "ratio": round(packed / plain, 4),
            "all_tabs_instances": len(every), "all_tabs_packed_bytes": all_packed}


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--budget-kb", type=float, default=150.0)
    ap.add_argument("--json", action="store_true", help="print a JSON object instead of a table")
    ap.add_argument("--explorer", action="store_true", help="also sum the _esm bytes every model of Explorer.demo() sends")
    ap.add_argument("--page-budget-kb", type=float, default=150.0, help="budget of the Explorer page's _esm (packed)")
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
    unp = {k: len(unpacked(p.read_text(encoding="utf-8")).encode("utf-8")) for k, p in ((k, STATIC / k) for k in s)}
    total_unp = sum(unp[k] for k in widgets)
    exp = explorer_bytes() if a.explorer else None
    page_ratio = exp["packed_bytes"] / (a.page_budget_kb * 1000) if exp else 0.0
    if exp:
        exp.update(page_budget_bytes=a.page_budget_kb * 1000, page_ratio=round(page_ratio, 4))
    if a.json:
        print(json.dumps({"files": {k: {"bytes": v[0], "gzip": v[1], "unpacked": unp[k]} for k, v in s.items()},
                          "widget_total_bytes": total, "widget_total_gzip": total_gz, "widget_total_unpacked": total_unp,
                          "budget_bytes": budget, "ratio": round(ratio, 4), "explorer": exp}))
    else:
        print(f"{'file':<26}{'bytes':>10}{'gzip':>9}{'unpacked':>10}")
        for k, (b, g) in s.items():
            print(f"{k:<26}{b:>10,}{g:>9,}{unp[k]:>10,}")
        print(f"{'widgets total':<26}{total:>10,}{total_gz:>9,}{total_unp:>10,}")
        print(f"budget {a.budget_kb:g} KB -> ratio {ratio:.3f} ({'OK' if ratio <= 1 else 'OVER BUDGET'})")
        if exp:
            print(f"Explorer.demo(): {exp['instances']} widget models of {exp['modules']} modules receive "
                  f"{exp['packed_bytes']:,} B of _esm ({exp['unpacked_bytes']:,} B unpacked; ratio {exp['ratio']:.3f})")
            print(f"Explorer page total {exp['packed_bytes']:,} B; budget {a.page_budget_kb:g} KB -> ratio "
                  f"{page_ratio:.3f} ({'OK' if page_ratio <= 1 else 'OVER BUDGET'}); every tab shown: "
                  f"{exp['all_tabs_instances']} models, {exp['all_tabs_packed_bytes']:,} B")
    return 0 if ratio <= 1 and page_ratio <= 1 else 1


if __name__ == "__main__":
    sys.exit(main())

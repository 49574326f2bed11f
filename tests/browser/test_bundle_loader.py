"""The packed widget bundles (js/build.mjs: each minified module travels deflate-compressed inside a small
loader, since anywidget sends ``_esm`` with every widget model): each one unpacks to the module it
names, is smaller than that module, and a browser without ``DecompressionStream`` gets one readable
error (naming what is missing) instead of a silent blank. Drawing through the loader is covered by every
other browser test (they all render through it)."""
from __future__ import annotations

import base64
import re
import zlib

import numpy as np
import pytest

from dtwidgets.widgets import MatrixHeatmap, to_html
from dtwidgets.widgets._base import STATIC_DIR

from .conftest import LOCAL_SCHEMES, PageRecorder

PACKED = re.compile(r'^const K="([a-z_]+):[0-9a-f]{12}",Z="([A-Za-z0-9+/=]*)";$', re.M)
WIDGET_BUNDLES = sorted(p for p in STATIC_DIR.glob("*.js") if p.name != "export_runtime.js")


@pytest.mark.parametrize("path", WIDGET_BUNDLES, ids=[p.stem for p in WIDGET_BUNDLES])
def test_packed_bundle_unpacks_to_its_module(path) -> None:
    text = path.read_text(encoding="utf-8")
    m = PACKED.search(text)
    if m is None:  # left unpacked where packing would not make it smaller
        assert len(text) < 2000 and re.search(r"export\s*\{[^}]*as default\s*\}|export default", text), path.name
        return
    assert m.group(1) == path.stem
    module = zlib.decompress(base64.b64decode(m.group(2), validate=True)).decode("utf-8")
    assert module.endswith(f"//# sourceURL=dtwidgets/{path.stem}.js\n")
    assert re.search(r"export\s*\{[^}]*as default\s*\}|export default", module), "the unpacked text is an ES module"
    assert len(text) < 0.8 * len(module)
    assert "http://" not in module and "https://" not in module


@pytest.mark.browser
def test_missing_decompression_stream_is_one_readable_error(browser, tmp_path) -> None:
    path = to_html(MatrixHeatmap(values=np.array([[1.0]], np.float32)), tmp_path / "p.html")
    page = browser.new_page()
    rec = PageRecorder(page, lambda u: u.startswith(LOCAL_SCHEMES))
    page.add_init_script("delete window.DecompressionStream")
    page.goto(path.as_uri())
    page.wait_for_selector("body[data-dtw-ready]", timeout=15_000)
    err = page.locator(".dtw-x-error").inner_text()
    assert "failed to render matrix_heatmap" in err and "needs DecompressionStream" in err, err
    assert len(rec.errors) == 1 and "DecompressionStream" in rec.errors[0], rec.errors
    page.close()

"""The UpdateFeed's front-end (js/update_feed.js) in front-ends whose widget manager cannot look up other
models (issue 26: VS Code's and Colab's managers are untested; marimo has none): with no widget_manager,
no get_model, a get_model that throws or one that rejects, the feed never says ready (so the kernel keeps
sending each widget's updates the ordinary way), raises nothing, and says so once per page as a
warning; with a working get_model it says ready and applies a batch to its target's set_state."""
from __future__ import annotations

import pytest

from dtwidgets.widgets._base import STATIC_DIR

from .conftest import PageRecorder

pytestmark = pytest.mark.browser

# JS, argument [source, kinds]: mount the feed module once per kind of widget manager; returns what each sent.
MOUNT_JS = """
async ([src, kinds]) => {
  const url = URL.createObjectURL(new Blob([src], {type: 'text/javascript'}));
  const def = (await import(url)).default;
  const applied = [];
  const target = {set_state: (s) => applied.push(s)};
  const managers = {
    none: undefined,
    no_get_model: {},
    throws: {get_model() { throw new Error('get_model is not supported here'); }},
    rejects: {get_model() { return Promise.reject(new Error('model not found')); }},
    works: {get_model: async (id) => (id === 't1' ? target : undefined)},
  };
  const out = {};
  for (const kind of kinds) {
    const ev = {}, sent = [];
    const model = {get: (k) => (k === 'targets' ? ['IPY_MODEL_t1'] : undefined), on: (n, cb) => { ev[n] = cb; },
                   send: (m) => sent.push(m), widget_manager: managers[kind]};
    await def.initialize({model});
    await new Promise((r) => setTimeout(r, 50));
    if (sent.length) ev['msg:custom']({u: [[0, ['grid'], {value: 3}]]}, ['BUF']);  // the kernel feeds only ready feeds
    out[kind] = {sent, applied: applied.splice(0)};
  }
  return out;
}
"""


def test_feed_falls_back_without_get_model_and_says_so_once(browser, tmp_path) -> None:
    page = browser.new_page()
    rec = PageRecorder(page, lambda u: u.startswith(("file:", "blob:", "data:", "about:")))
    warnings: list[str] = []
    page.on("console", lambda m: m.type == "warning" and warnings.append(m.text))
    (tmp_path / "h.html").write_text("<!DOCTYPE html><title>harness</title>", encoding="utf-8")
    page.goto((tmp_path / "h.html").as_uri())
    src = (STATIC_DIR / "update_feed.js").read_text(encoding="utf-8")
    failing = ["none", "no_get_model", "throws", "rejects"]
    out = page.evaluate(MOUNT_JS, [src, failing + ["works"]])
    for kind in failing:
        assert out[kind]["sent"] == [], f"{kind}: a feed that cannot resolve its targets must not say ready"
    assert rec.errors == [], rec.errors
    assert out["works"]["sent"] == [{"ready": 1}]
    assert out["works"]["applied"] == [{"value": 3, "grid": "BUF"}]
    feed_warnings = [w for w in warnings if "widget_manager.get_model" in w]
    assert len(feed_warnings) == 1, warnings
    assert "each widget gets its own updates" in feed_warnings[0]
    page.close()


STATUS_JS = """
async ([src, kind]) => {
  const url = URL.createObjectURL(new Blob([src], {type: 'text/javascript'}));
  const def = (await import(url)).default;
  const attrs = {lead: ['step 3'], rtg: 0.5, logits: null, action_names: ['left', 'right'], preferences: 'IPY_MODEL_p1',
                 headline: '', notes: [], error: ''};
  const model = {get: (k) => attrs[k], on() {}, off() {}, send() {},
                 widget_manager: kind === 'none' ? undefined : {}};
  const el = document.createElement('div');
  document.body.appendChild(el);
  await def.render({model, el});
  await new Promise((r) => setTimeout(r, 50));
  return el.querySelector('.dtw-status-line').textContent;
}
"""


@pytest.mark.parametrize("kind", ["none", "no_get_model"])
def test_status_line_without_get_model_draws_its_own_values(browser, tmp_path, kind) -> None:
    page = browser.new_page()
    rec = PageRecorder(page, lambda u: u.startswith(("file:", "blob:", "data:", "about:")))
    (tmp_path / "h.html").write_text("<!DOCTYPE html><title>harness</title>", encoding="utf-8")
    page.goto((tmp_path / "h.html").as_uri())
    text = page.evaluate(STATUS_JS, [(STATIC_DIR / "status_line.js").read_text(encoding="utf-8"), kind])
    assert text.startswith("step 3") and "RTG +0.50" in text, text
    assert rec.errors == [] and page.locator(".dtw-error:visible").count() == 0
    page.close()

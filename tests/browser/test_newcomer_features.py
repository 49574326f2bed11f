"""Issue #26, newcomer list, FeatureBrowserView: the id filter applies while typing and on Enter (it
applied only on blur), the card never shows a feature the filter removed (it did: now the first
remaining feature, or a "no feature matches" note), at 1600 px the card uses the width and its example
thumbnails grow (it stayed 640 px wide with 70 px thumbnails), and a card switch is cheap (it took
0.4-0.5 s: the whole 300-row list with its sparklines was rebuilt on every click)."""
from __future__ import annotations

import numpy as np
import pytest

from dtwidgets.widgets import FeatureBrowserView

from .examples import partial_obs

pytestmark = pytest.mark.browser
F, E, C, B = 512, 9, 20, 24


def _view() -> FeatureBrowserView:
    """F synthetic features with every slot filled, C channel maps: the size of the demo SAE's browser."""
    rng = np.random.default_rng(1)
    obs = np.broadcast_to(partial_obs(), (F, E, 7, 7, 3)).copy()
    meta = np.stack([rng.random((F, E)), rng.random((F, E)), rng.integers(0, 50, (F, E)),
                     rng.integers(0, 3, (F, E)), rng.integers(0, 6, (F, E))], -1).astype(np.float32)
    return FeatureBrowserView(
        feature_ids=np.arange(F, dtype=np.int32), frequency=rng.random(F).astype(np.float32),
        max_act=rng.random(F).astype(np.float32) + 0.5, mean_act=rng.random(F).astype(np.float32),
        rtg_corr=rng.normal(size=F).astype(np.float32) * 0.3, time_corr=rng.normal(size=F).astype(np.float32) * 0.3,
        hist=rng.random((F, B)).astype(np.float32) * 10, action_bars=rng.normal(size=(F, 3)).astype(np.float32),
        action_names=["left", "right", "forward"], examples_obs=obs, examples_meta=meta,
        example_labels=[f"top {i + 1}" for i in range(6)] + ["q10", "q50", "q90"],
        write_maps=rng.normal(size=(F, C, 7, 7)).astype(np.float32), channel_names=[f"ch{c}" for c in range(C)],
        sort_by="index", sort_desc=False, title="features")


def _card(page) -> str | None:
    return page.locator(".dtw-fb-card").get_attribute("data-feature")


def _rows(page) -> list[str]:
    return page.locator(".dtw-fb-row[data-feature]").evaluate_all("(rs) => rs.map(r => r.dataset.feature)")


def test_filter_applies_while_typing_and_on_enter(static_page) -> None:
    rec = static_page(_view(), name="fb_filter")
    page = rec.page
    q = page.locator(".dtw-featurebrowser input[type=text]")
    q.click()
    q.type("17 3")
    page.wait_for_timeout(400)
    assert q.evaluate("(e) => document.activeElement === e"), "still typing: the input keeps focus"
    assert _rows(page) == ["3", "17"], "the filter did not apply while typing"
    q.fill("")  # an input event too
    page.wait_for_timeout(400)
    assert len(_rows(page)) == 300
    q.evaluate("(e) => { e.value = '5'; }")  # no input event: only Enter applies it
    q.press("Enter")
    page.wait_for_timeout(100)
    assert _rows(page) == ["5"], "Enter did not apply the filter"
    assert rec.errors == []


def test_card_follows_the_filter(static_page) -> None:
    rec = static_page(_view(), name="fb_card_filter")
    page = rec.page
    page.locator(".dtw-fb-row[data-feature='2']").click()
    assert _card(page) == "2"
    q = page.locator(".dtw-featurebrowser input[type=text]")
    q.fill("40 41")
    q.press("Enter")
    page.wait_for_timeout(100)
    assert _rows(page) == ["40", "41"]
    assert _card(page) == "40", "the card kept a feature the filter removed"
    assert page.locator(".dtw-fb-row[data-feature='40']").evaluate("(r) => r.classList.contains('dtw-fb-sel')")
    q.fill("9999")
    q.press("Enter")
    page.wait_for_timeout(100)
    assert _rows(page) == []
    assert _card(page) is None
    assert "no feature matches" in (page.locator(".dtw-fb-card").text_content() or "")
    assert rec.errors == []


@pytest.mark.parametrize("width", [1100, 1600])
def test_card_uses_the_width(static_page, width, screenshot_dir) -> None:
    rec = static_page(_view(), name=f"fb_width_{width}", viewport=(width, 1000))
    page = rec.page
    page.locator(".dtw-fb-row[data-feature='2']").click()
    card = page.locator(".dtw-fb-card").bounding_box()
    left = page.locator(".dtw-fb-list").bounding_box()
    thumbs = page.locator(".dtw-fb-card canvas.dtw-fb-thumb")
    assert thumbs.count() == E
    t = thumbs.first.bounding_box()
    assert card["x"] >= left["x"] + left["width"], "the card sits beside the list"
    assert card["x"] + card["width"] <= width
    if screenshot_dir is not None:
        page.screenshot(path=str(screenshot_dir / f"newcomer_fb_{width}.png"), full_page=True)
    if width == 1600:
        assert card["width"] > 900, card
        assert t["width"] >= 90 and abs(t["width"] - t["height"]) < 1.5, t
    assert rec.errors == []


def test_card_switch_is_cheap(static_page) -> None:
    rec = static_page(_view(), name="fb_switch", viewport=(1300, 1000))
    page = rec.page
    page.locator(".dtw-fb-row[data-feature='1']").click()
    page.evaluate("() => document.querySelectorAll('.dtw-fb-row[data-feature]').forEach(r => { r._kept = 1; })")
    times = page.evaluate("""async () => {
      const out = [];
      for (const f of [2, 3, 4, 5, 6]) {
        const row = document.querySelector(`.dtw-fb-row[data-feature='${f}']`);
        const t0 = performance.now();
        row.click();
        await new Promise((r) => requestAnimationFrame(() => setTimeout(r, 0)));
        out.push([f, performance.now() - t0, document.querySelector('.dtw-fb-card').dataset.feature]);
      }
      return out;
    }""")
    print("card switch ms:", [round(t[1], 1) for t in times])
    assert [t[2] for t in times] == ["2", "3", "4", "5", "6"]
    # the list is kept (the same row elements), only the highlight moves
    assert page.evaluate("() => [...document.querySelectorAll('.dtw-fb-row[data-feature]')].every(r => r._kept === 1)")
    assert page.locator(".dtw-fb-row.dtw-fb-sel").evaluate_all("(rs) => rs.map(r => r.dataset.feature)") == ["6"]
    assert sorted(t[1] for t in times)[2] < 250, times  # generous: the median switch
    assert rec.errors == []

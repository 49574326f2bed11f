"""GridView draws each observation kind as its schema says, in a real browser: a full grid with the
agent from its own cell (no second agent at (W//2, H-1)), a one-hot view decoded (drawn exactly as
its codes), pixels as an image (each canvas pixel is the observation's RGB), and a FrozenLake state;
the key legend follows the env's actions."""
from __future__ import annotations

import ipywidgets
import numpy as np
import pytest
from minigrid.wrappers import FullyObsWrapper, OneHotPartialObsWrapper, RGBImgPartialObsWrapper

from dtwidgets.adapters import GridWorldEnv, action_table
from dtwidgets.adapters.minigrid_env import MiniGridEnv
from dtwidgets.widgets import GridView

pytestmark = pytest.mark.browser
CS = 20
DK = "MiniGrid-DoorKey-5x5-v0"


def close(px, rgb, tol=12) -> bool:
    return all(abs(int(a) - int(b)) <= tol for a, b in zip(px[:3], rgb))


def _shown(obs, schema, **kw) -> GridView:
    g = GridView(**{"cell_size": CS, **kw})
    g.show(obs, schema)
    return g


def test_full_grid_one_hot_pixels_and_frozen_lake(static_page) -> None:
    full_env = MiniGridEnv(DK, wrappers=[FullyObsWrapper], seed=1)
    full = full_env.observation()
    (ax, ay), ad = full_env.schema.agent_in(full)
    hot_env, plain = MiniGridEnv(DK, wrappers=[OneHotPartialObsWrapper], seed=2), MiniGridEnv(DK, seed=2)
    rgb_env = MiniGridEnv(DK, wrappers=[RGBImgPartialObsWrapper], seed=0)
    pixels = rgb_env.observation()
    fl = GridWorldEnv("FrozenLake-v1", is_slippery=False)
    views = [_shown(full, full_env.schema), _shown(hot_env.observation(), hot_env.schema),
             GridView(plain.observation(), mode="partial", cell_size=CS), _shown(pixels, rgb_env.schema, cell_size=3),
             _shown(fl.observation(), fl.schema, bindings=action_table(fl).key_map())]
    rec = static_page(ipywidgets.HBox(views), name="observation_kinds", viewport=(1400, 700))
    cv = [rec.page.locator("canvas.dtw-grid").nth(i) for i in range(5)]
    mid = lambda x, y: (x * CS + CS / 2, y * CS + CS / 2)  # noqa: E731
    # full grid: the agent is drawn in its own cell, facing its direction; nothing at (W//2, H-1)
    assert close(rec.pixel(cv[0], *mid(ax, ay)), (255, 0, 0)), "agent drawn in its cell"
    dx, dy = ((1, 0), (0, 1), (-1, 0), (0, -1))[ad]
    assert close(rec.pixel(cv[0], (ax + 0.5 + 0.15 * dx) * CS, (ay + 0.5 + 0.15 * dy) * CS), (255, 0, 0)), "tip side"
    assert not close(rec.pixel(cv[0], (ax + 0.5 - 0.45 * dx) * CS, (ay + 0.5 - 0.45 * dy) * CS), (255, 0, 0)), "back"
    if (ax, ay) != (2, 4):
        assert not close(rec.pixel(cv[0], *mid(2, 4)), (255, 0, 0)), "no second agent at (W//2, H-1)"
    # one-hot: decoded, drawn exactly as the plain codes view of the same state
    for x in range(7):
        for y in range(7):
            for fx, fy in ((0.5, 0.5), (0.25, 0.3), (0.7, 0.8)):
                p = ((x + fx) * CS, (y + fy) * CS)
                assert rec.pixel(cv[1], *p) == rec.pixel(cv[2], *p), (x, y)
    # pixels: an image, each canvas pixel the observation's colour (3 CSS px per pixel)
    assert cv[3].get_attribute("data-kind") == "pixels"
    for x, y in ((0, 0), (27, 50), (30, 10), (55, 55), (12, 40)):
        assert close(rec.pixel(cv[3], x * 3 + 1.5, y * 3 + 1.5), pixels[y, x], tol=3), (x, y)
    # FrozenLake: agent at the start (0, 0), holes as lava, the goal green
    assert close(rec.pixel(cv[4], *mid(0, 0)), (255, 0, 0))
    assert close(rec.pixel(cv[4], 1 * CS + CS / 2, 1 * CS + 0.1 * CS), (255, 128, 0)), "hole drawn as lava"
    assert close(rec.pixel(cv[4], *mid(3, 3)), (0, 255, 0)), "goal"
    legend = rec.page.locator(".dtw-legend").nth(4).text_content()
    assert legend == "keys: ← left · ↓ down · → right · ↑ up", legend
    assert not rec.page.locator(".dtw-legend").nth(0).is_visible()  # no bindings: no legend
    assert rec.foreign == [] and rec.errors == []


def test_show_refuses_vectors_and_wrong_shapes() -> None:
    from dtwidgets.adapters.schema import ObservationSchema

    g = GridView()
    with pytest.raises(ValueError, match="vector"):
        g.show(np.zeros(8, np.uint8), ObservationSchema(grid_shape=(8, 1), kind="vector"))
    with pytest.raises(ValueError, match=r"shape \[\.\.\., 7, 7, 20\]"):
        g.show(np.zeros((7, 7, 3), np.uint8), ObservationSchema(kind="one_hot"))


PAL = {0: (78, 121, 167), 1: (242, 142, 43)}  # js/lib/colors.js PALETTE[0..1]


def test_policy_map_draws_absolute_moves_from_the_cell_centre(static_page) -> None:
    from dtwidgets.widgets import PolicyMapView

    cs = 60
    fl = GridWorldEnv("FrozenLake-v1", is_slippery=False)
    probs = np.array([[0, 1, 0, 0], [1, 0, 0, 0]], np.float32)  # (1, 0): down; (2, 0): left
    kw = dict(grid=fl.observation(), cells=np.array([[1, 0], [2, 0]], np.int32), facings=np.zeros(2, np.int32),
              probs=probs, action_names=list(fl.action_names), cell_size=cs)
    views = [PolicyMapView(action_kinds=list(action_table(fl).kinds), **kw), PolicyMapView(**kw)]
    rec = static_page(ipywidgets.HBox(views), name="policy_map_moves", viewport=(900, 500))
    new, old = (rec.page.locator("canvas.dtw-pmap").nth(i) for i in range(2))
    down = (1.5 * cs, 0.5 * cs + 0.3 * cs * 0.45)  # on the shaft of an arrow from the centre downwards
    left = (2.5 * cs - 0.3 * cs * 0.45, 0.5 * cs)
    assert close(rec.pixel(new, *down), PAL[1], tol=14), "down is a move down"
    assert close(rec.pixel(new, *left), PAL[0], tol=14), "left is a move left"
    # MiniGrid's name rule (no kinds): "left" is a turn, "down" a dot: neither arrow is there
    assert not close(rec.pixel(old, *down), PAL[1], tol=14) and not close(rec.pixel(old, *left), PAL[0], tol=14)
    assert rec.errors == []


THUMB_JS = """([c, x, y]) => Array.from(c.getContext('2d').getImageData(x, y, 1, 1).data)"""


def _browser(schema, obs) -> "FeatureBrowserView":
    """A one-feature browser whose one example is ``obs``, drawn as ``schema.thumbnails`` says."""
    from dtwidgets.widgets import FeatureBrowserView

    pics, view = schema.thumbnails(np.asarray(obs)[None, None])
    one = np.ones(1, np.float32)
    return FeatureBrowserView(feature_ids=np.zeros(1, np.int32), frequency=one, max_act=one, mean_act=one,
                              rtg_corr=one * 0, time_corr=one * 0, hist=np.ones((1, 4), np.float32),
                              action_bars=np.zeros((1, 3), np.float32), action_names=["left", "right", "forward"],
                              examples_obs=pics, examples_view=view, example_labels=["top 1"],
                              examples_meta=np.array([[[1.0, 0.5, 3, 0, 0]]], np.float32), selected=0)


def test_feature_browser_draws_examples_as_the_schema_says(static_page) -> None:
    """Issue #27 NMF / SAE cards on other observation kinds: a full grid's agent is its own cell (no
    agent drawn at (W//2, H-1)), pixels are drawn as the image (they used to be drawn as codes), one-hot
    cells as the plain view's codes, vectors without a picture but with their caption."""
    from dtwidgets.adapters.schema import ObservationSchema

    full_env = MiniGridEnv(DK, wrappers=[FullyObsWrapper], seed=1)
    full = full_env.observation()
    (ax, ay), _ = full_env.schema.agent_in(full)
    rgb_env = MiniGridEnv(DK, wrappers=[RGBImgPartialObsWrapper], seed=0)
    pixels = rgb_env.observation()
    hot_env, plain = MiniGridEnv(DK, wrappers=[OneHotPartialObsWrapper], seed=2), MiniGridEnv(DK, seed=2)
    vec = ObservationSchema(grid_shape=(8, 1), kind="vector")
    views = [_browser(full_env.schema, full), _browser(rgb_env.schema, pixels), _browser(hot_env.schema, hot_env.observation()),
             _browser(plain.schema, plain.observation()), _browser(vec, np.zeros(8, np.uint8))]
    rec = static_page(ipywidgets.VBox(views), name="feature_browser_kinds", viewport=(1400, 900))
    page = rec.page
    thumb = [page.locator(".dtw-featurebrowser").nth(i).locator("canvas.dtw-fb-thumb") for i in range(5)]
    px = lambda cv, x, y: page.evaluate(THUMB_JS, [cv.element_handle(), x, y])  # noqa: E731 canvas pixels
    s = thumb[0].evaluate("(c) => c.width") // full.shape[0]  # canvas pixels per cell
    assert thumb[0].get_attribute("data-view") == "full"
    assert close(px(thumb[0], int((ax + 0.5) * s), int((ay + 0.5) * s)), (255, 0, 0)), "agent drawn in its cell"
    W, H = full.shape[:2]
    if (ax, ay) != (W // 2, H - 1):
        assert not close(px(thumb[0], int((W // 2 + 0.5) * s), int((H - 0.5) * s)), (255, 0, 0)), "a second agent"
    assert thumb[1].get_attribute("data-view") == "pixels"
    assert thumb[1].evaluate("(c) => [c.width, c.height]") == [pixels.shape[1], pixels.shape[0]]
    for x, y in ((0, 0), (27, 50), (30, 10), (55, 55), (12, 40)):
        assert close(px(thumb[1], x, y), pixels[y, x], tol=0), (x, y)
    w = thumb[2].evaluate("(c) => c.width")
    for x in range(0, w, 7):
        for y in range(0, w, 11):
            assert px(thumb[2], x, y) == px(thumb[3], x, y), (x, y)
    assert not thumb[4].is_visible() and "RTG 0.5 · t 3" in (page.locator(".dtw-fb-example").nth(4).text_content() or "")
    assert rec.foreign == [] and rec.errors == []

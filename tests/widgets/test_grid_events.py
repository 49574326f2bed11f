"""GridView front-end events: key and click custom messages reach on_key / on_cell_click."""

from __future__ import annotations

import numpy as np
import pytest

from dtwidgets.widgets import GridView
from dtwidgets.widgets.grid_view import KEYS


def _grid() -> np.ndarray:
    g = np.ones((5, 4, 3), np.uint8)
    g[..., 1:] = 0
    return g


def _custom(w: GridView, content: object) -> None:
    """Deliver ``content`` exactly as the comm does for the front-end's ``model.send(content)``."""
    w._handle_msg({"content": {"data": {"method": "custom", "content": content}}, "buffers": []})


def _key(key: str, **mods: bool) -> dict:
    return {"event": "key", "key": key, "shift": False, "ctrl": False, "alt": False, **mods}


def test_on_key_receives_keys_and_modifiers() -> None:
    w = GridView(_grid())
    got: list[str] = []
    cb = got.append
    assert w.on_key(cb) is cb  # returns the callback (decorator use)
    assert w.last_key_event is None
    for k in KEYS:
        _custom(w, _key(k))
    _custom(w, _key("a"))
    _custom(w, _key("A", shift=True))
    _custom(w, _key("7", ctrl=True))
    assert got == [*KEYS, "a", "A", "7"]
    assert w.last_key_event == {"key": "7", "shift": False, "ctrl": True, "alt": False}
    _custom(w, _key(" "))  # raw KeyboardEvent.key of the space bar is normalised
    assert got[-1] == "Space"
    assert w.error == ""


def test_key_is_not_a_synced_trait() -> None:
    w = GridView(_grid())
    names = set(w.keys)
    assert not any("key" in n for n in names - {"_view_count"}), names
    sent: list = []
    w.send_state = lambda *a, **k: sent.append((a, k))  # type: ignore[method-assign]
    w.on_key(lambda k: None)
    _custom(w, _key("ArrowUp"))
    assert sent == [], "a key press must not echo any state back to the front-end"


def test_on_key_decorator_remove_and_multiple() -> None:
    w = GridView(_grid())
    a: list[str] = []
    b: list[str] = []

    @w.on_key
    def first(key: str) -> None:
        a.append(key)

    w.on_key(b.append)
    _custom(w, _key("ArrowRight"))
    w.on_key(first, remove=True)
    _custom(w, _key("ArrowLeft"))
    assert a == ["ArrowRight"] and b == ["ArrowRight", "ArrowLeft"]
    with pytest.raises(TypeError, match="callable"):
        w.on_key("not callable")  # type: ignore[arg-type]


def test_key_callback_error_goes_to_error_box_and_clears() -> None:
    w = GridView(_grid())
    state = {"fail": True}

    def cb(key: str) -> None:
        if state["fail"]:
            raise RuntimeError(f"bad key {key}")

    w.on_key(cb)
    _custom(w, _key("Enter"))  # does not raise
    assert "RuntimeError" in w.error and "bad key Enter" in w.error and "on_key callback" in w.error
    state["fail"] = False
    _custom(w, _key("Enter"))
    assert w.error == ""


def test_on_cell_click_repeated_clicks_and_errors() -> None:
    w = GridView(_grid())
    clicks: list[tuple[int, int]] = []
    w.on_cell_click(lambda x, y: clicks.append((x, y)))
    for _ in range(3):
        _custom(w, {"event": "click", "x": 2, "y": 3, "edited": False})
    assert clicks == [(2, 3)] * 3
    w.on_cell_click(lambda x, y: 1 / 0)
    _custom(w, {"event": "click", "x": 1, "y": 0, "edited": True})
    assert clicks[-1] == (1, 0) and "ZeroDivisionError" in w.error


def test_malformed_and_foreign_messages_are_ignored() -> None:
    w = GridView(_grid())
    keys: list[str] = []
    clicks: list = []
    other: list = []
    w.on_key(keys.append)
    w.on_cell_click(lambda x, y: clicks.append((x, y)))
    w.on_msg(lambda widget, content, buffers: other.append(content))
    for bad in [{"event": "key"}, {"event": "key", "key": ""}, {"event": "click", "x": "?"},
                {"event": "click"}, {"event": "scroll"}, "text", None, [1, 2]]:
        _custom(w, bad)
    assert keys == [] and clicks == [] and w.error == ""
    assert len(other) == 8, "on_msg handlers still see every custom message"
    _custom(w, _key("b"))
    assert keys == ["b"] and other[-1]["key"] == "b"

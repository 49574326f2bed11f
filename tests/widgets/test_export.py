"""Static export without a browser: structure, dedup, no network references."""

from __future__ import annotations

import json
import re

import ipywidgets
import numpy as np
import pytest

from dtwidgets.widgets import ChannelHeatmap, GridView, MatrixHeatmap, to_html, to_html_string


def _data(html: str) -> dict:
    m = re.search(r'<script id="dtw-[0-9a-f]{12}-data" data-dtw-page="[^"]+" type="application/json">(.*?)</script>', html, re.S)
    assert m
    return json.loads(m.group(1))


def test_export_dedups_modules_and_embeds_state(tmp_path) -> None:
    g1 = GridView(np.ones((3, 3, 3), np.uint8))
    g2 = GridView(np.ones((4, 4, 3), np.uint8), mode="channels")
    h = ChannelHeatmap(values=np.arange(8, dtype=np.float32).reshape(2, 2, 2), titles=["a", "b"])
    tab = ipywidgets.Tab([ipywidgets.HBox([g1, g2]), h])
    tab.titles = ("grids", "heat")
    layout = ipywidgets.VBox([ipywidgets.Label("<b>not html</b>"), tab, ipywidgets.IntSlider(description="n")])
    path = to_html(layout, tmp_path / "out.html", title="T <1>")
    html = path.read_text()
    assert html.count("<script") == 2  # data + runtime only
    assert "T &lt;1&gt;" in html
    data = _data(html)
    assert set(data["modules"]) == {"grid_view", "channel_heatmap"}
    assert len(data["models"]) == 3
    m = [v for v in data["models"].values() if v["module"] == "channel_heatmap"][0]
    assert m["buffer_paths"] == [["values"]] and "values" not in m["state"]  # one header-carrying buffer
    assert m["state"]["titles"] == ["a", "b"]
    import base64
    import struct
    raw = base64.b64decode(m["buffers"][0])
    assert raw[:4] == bytes([0, 3, 0, 0]) and struct.unpack("<3I", raw[4:16]) == (2, 2, 2)  # float32, [2, 2, 2]
    assert np.frombuffer(raw[16:], np.float32).tolist() == list(range(8))  # 4 + 3*4 header bytes
    tree = data["tree"]
    assert tree["type"] == "box" and tree["children"][0] == {"type": "text", "text": "<b>not html</b>"}
    assert tree["children"][1]["type"] == "tabs" and tree["children"][1]["titles"] == ["grids", "heat"]
    assert tree["children"][2]["text"] == "[n: need a kernel (not interactive on this page)]"
    assert "_esm" not in json.dumps(m["state"])


def test_export_has_no_network_urls() -> None:
    html = to_html_string(MatrixHeatmap(values=np.eye(3), title="</script><script>alert(1)</script>"))
    assert "</script><script>alert" not in html
    for bad in ("http://", "https://", "//cdn", "require.js", "unpkg", "jsdelivr"):
        assert bad not in html.lower()


def test_export_rejects_non_widgets(tmp_path) -> None:
    with pytest.raises(TypeError, match="DTWidget or an ipywidgets layout"):
        to_html(object(), tmp_path / "x.html")


def test_to_html_into_missing_folder_raises_naming_it(tmp_path) -> None:
    missing = tmp_path / "no" / "such"
    with pytest.raises(FileNotFoundError, match=re.escape(str(missing))):
        to_html(MatrixHeatmap(values=np.eye(2)), missing / "x.html")
    assert not missing.exists()
    with pytest.raises(IsADirectoryError, match="folder"):
        to_html(MatrixHeatmap(values=np.eye(2)), tmp_path)


def test_runs_of_controls_are_one_line_and_a_composition_exports_every_view() -> None:
    """Neighbouring controls become one 'need a kernel' line; a root with before_export() is brought up
    to date first (the Explorer fills its hidden tabs that way)."""
    from dtwidgets.widgets.export import page_data

    class Root(ipywidgets.VBox):
        prepared = 0

        def before_export(self):
            Root.prepared += 1

    box = Root([ipywidgets.Button(description="a"), ipywidgets.Button(description="b"), ipywidgets.Label("x"),
                ipywidgets.Dropdown(options=[1])])
    tree = page_data([box])["trees"][0]
    texts = [c["text"] for c in tree["children"]]
    assert texts == ["[a, b: need a kernel (not interactive on this page)]", "x",
                     "[Dropdown: need a kernel (not interactive on this page)]"]
    assert Root.prepared == 1

"""Serialisation round trips and validation of array traits."""

from __future__ import annotations

import struct

import numpy as np
import pytest
import traitlets

from dtwidgets.widgets import ArrayTrait, ChannelHeatmap, GridView, array_from_json, array_serialization, array_to_json
from dtwidgets.widgets._arrays import wire_payload_bytes


WIRE = ["float32", "float64", "int8", "int16", "int32", "uint8", "uint16", "uint32"]


def _parse(buf) -> tuple[str, list[int], bytes]:
    """The wire format read by hand: dtype code, ndim, 2 zero bytes, uint32 LE shape, padding to 8
    for 8-byte dtypes."""
    b = bytes(buf)
    assert b[2:4] == b"\0\0"
    ndim = b[1]
    shape = list(struct.unpack(f"<{ndim}I", b[4:4 + 4 * ndim]))
    align = 8 if WIRE[b[0]] == "float64" else 4
    start = -(-(4 + 4 * ndim) // align) * align
    assert b[4 + 4 * ndim:start] == bytes(start - 4 - 4 * ndim)
    return WIRE[b[0]], shape, b[start:]


@pytest.mark.parametrize(
    ("dtype", "wire"),
    [("float64", "float32"), ("float32", "float32"), ("float16", "float32"), ("int64", "int32"),
     ("int32", "int32"), ("int16", "int16"), ("uint8", "uint8"), ("bool", "uint8"), ("uint16", "uint16")],
)
def test_round_trip_dtype_shape_bytes(dtype: str, wire: str) -> None:
    rng = np.random.default_rng(1)
    a = (rng.normal(size=(3, 4, 5)) * 50).astype(dtype)
    msg = array_to_json(a)
    assert isinstance(msg, memoryview) and msg.format == "B"
    got_dtype, shape, data = _parse(msg)
    assert got_dtype == wire and shape == [3, 4, 5]
    expected = a.astype(wire)
    assert data == expected.tobytes()
    assert wire_payload_bytes(msg) == expected.nbytes
    back = array_from_json(msg)
    assert back.dtype == np.dtype(wire) and back.shape == (3, 4, 5)
    np.testing.assert_array_equal(back, expected)


def test_front_end_sends_the_same_wire_form() -> None:
    """js/lib/arrays.js ``encode`` writes header + data like Python; a dict form is refused."""
    a = np.arange(6, dtype=np.float32).reshape(2, 3)
    js_like = bytes([0, 2, 0, 0]) + np.asarray([2, 3], "<u4").tobytes() + a.tobytes()  # float32 code 0
    np.testing.assert_array_equal(array_from_json(memoryview(js_like)), a)
    np.testing.assert_array_equal(array_from_json(bytes(array_to_json(a))), a)
    with pytest.raises(ValueError, match="dtype/shape header"):
        array_from_json({"dtype": "float32", "shape": [2, 3], "view": memoryview(a.tobytes())})


def test_malformed_buffer_refused() -> None:
    good = bytes(array_to_json(np.arange(6, dtype=np.float32)))
    for bad in (good[:-4], b"\x09" + good[1:], good[:2], good[:2] + b"\x01" + good[3:]):
        with pytest.raises(ValueError, match="expected"):
            array_from_json(bad)


def test_non_contiguous_and_big_endian() -> None:
    a = np.arange(24, dtype=">f8").reshape(4, 6)[:, ::2]
    msg = array_to_json(a)
    assert _parse(msg)[:2] == ("float32", [4, 3])
    np.testing.assert_array_equal(array_from_json(msg), a.astype(np.float32))


def test_empty_and_none() -> None:
    assert array_to_json(None) is None and array_from_json(None) is None
    msg = array_to_json(np.zeros((0, 7, 7), np.float32))
    assert _parse(msg) == ("float32", [0, 7, 7], b"") and wire_payload_bytes(msg) == 0
    assert array_from_json(msg).shape == (0, 7, 7)


def test_int64_out_of_range_rejected() -> None:
    class W(traitlets.HasTraits):
        a = ArrayTrait(ndim=1)

    with pytest.raises(traitlets.TraitError, match="int32 range"):
        W(a=np.array([2**40], np.int64))
    assert W(a=np.array([5], np.int64)).a.dtype == np.int32


def test_torch_tensor_accepted() -> None:
    torch = pytest.importorskip("torch")
    t = torch.arange(12, dtype=torch.float64, requires_grad=True).reshape(3, 4) * 1.0
    w = ChannelHeatmap(values=t.reshape(1, 3, 4))
    assert w.values.dtype == np.float32 and w.values.shape == (1, 3, 4)
    np.testing.assert_array_equal(w.values[0], t.detach().numpy().astype(np.float32))
    g = GridView(grid=torch.ones((2, 2, 3), dtype=torch.int64))
    assert g.grid.dtype == np.uint8


def test_lists_accepted_and_get_state_is_binary() -> None:
    w = ChannelHeatmap(values=[[[1, 2], [3, 4]]])
    st = w.get_state()["values"]
    assert isinstance(st, memoryview)
    dtype, shape, data = _parse(st)
    assert dtype == "float32" and shape == [1, 2, 2]
    assert np.frombuffer(data, np.float32).tolist() == [1, 2, 3, 4]


@pytest.mark.parametrize(
    ("value", "fragment"),
    [
        (np.ones((3, 3)), "got shape (3, 3) (2-d)"),
        (np.ones((3, 3, 2)), "last axis must be 3"),
        (np.array([["a"]]), "got dtype <U1"),
        (np.full((2, 2, 3), 300), "values outside [0, 255]"),
        (np.full((2, 2, 3), -1), "values outside [0, 255]"),
        (None, "got None"),
        (np.array([[[1 + 2j, 0, 0]]]), "got dtype complex128"),
    ],
)
def test_grid_validation_messages(value, fragment: str) -> None:
    with pytest.raises(traitlets.TraitError) as err:
        GridView(grid=value)
    msg = str(err.value)
    assert "GridView.grid: expected 3-d uint8 array with shape [W, H, 3]" in msg
    assert fragment in msg


def test_ragged_list_rejected_with_clear_error() -> None:
    with pytest.raises(traitlets.TraitError, match="ChannelHeatmap.values: expected"):
        ChannelHeatmap(values=[[1, 2], [3]])


def test_nan_inf_kept_in_float_arrays() -> None:
    w = ChannelHeatmap(values=np.array([[[np.nan, np.inf], [-np.inf, 1.0]]]))
    back = array_from_json(array_to_json(w.values))
    assert np.isnan(back[0, 0, 0]) and back[0, 0, 1] == np.inf and back[0, 1, 0] == -np.inf


def test_serialization_kwargs_shape() -> None:
    assert set(array_serialization) == {"to_json", "from_json"}

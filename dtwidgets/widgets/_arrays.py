"""Binary array transport between Python and the widget front-ends.

An array trait is stored in Python as a C-contiguous :class:`numpy.ndarray` and sent
to JavaScript as ONE binary buffer (a ``memoryview``) that carries its own small header::

    byte 0: dtype code (index in WIRE_DTYPES)   byte 1: ndim   bytes 2-3: 0
    ndim x uint32 little-endian shape (then 4 zero bytes when needed so that 8-byte dtypes start
    at a multiple of 8; other dtypes start right after the shape, at a multiple of 4)
    the array bytes (little-endian, C order)

ipywidgets lifts the buffer out of the JSON state, so an array costs no JSON at all besides its
buffer path (a ``{"dtype", "shape", "view"}`` header costs ~60 bytes of JSON per array, which
dominated small updates). The JS side receives a ``DataView`` and decodes it without a copy
(``js/lib/arrays.js``). Arrays coming back from JavaScript (``encode``) use the same form.

Dtype rules applied on assignment (unless the trait fixes a dtype):
float64/float16 -> float32, int64/uint64 -> int32 (error if out of range), bool -> uint8.
numpy arrays, torch tensors (moved to CPU, detached), and nested lists are accepted.

Usage (a synced widget trait; :class:`SyncedArray` tags itself)::

    values = SyncedArray(3, "float32", "[C, W, H]")
    # then, on the next line, the trait's one docstring: a string literal saying what the values are
"""

from __future__ import annotations

from typing import Any

import numpy as np
import traitlets

__all__ = ["ArrayTrait", "SyncedArray", "array_serialization", "array_to_json", "array_from_json", "to_numpy", "wire_payload_bytes"]

#: dtypes the front-end can decode (little-endian, C order).
WIRE_DTYPES = ("float32", "float64", "int8", "int16", "int32", "uint8", "uint16", "uint32")

_DOWNCAST = {
    "float64": "float32", "float16": "float32", "longdouble": "float32",
    "int64": "int32", "uint64": "int32", "bool": "uint8",
}


def to_numpy(value: Any) -> np.ndarray:
    """Convert numpy / torch / sequences to a numpy array (no dtype conversion).

    torch is never imported here: tensors are recognised by their module name.
    """
    if isinstance(value, np.ndarray):
        return value
    mod = type(value).__module__ or ""
    if mod.startswith("torch") and hasattr(value, "detach"):
        t = value.detach().cpu()
        if str(t.dtype) == "torch.bfloat16":
            t = t.float()
        return t.numpy()
    return np.asarray(value)


def _wire_dtype(arr: np.ndarray) -> np.ndarray:
    """Apply the downcast rules so that the array has a dtype the JS side can read."""
    name = arr.dtype.name
    target = _DOWNCAST.get(name, name)
    if target == name:
        return arr
    if arr.dtype.kind in "iu" and target == "int32" and arr.size:
        lo, hi = np.iinfo(np.int32).min, np.iinfo(np.int32).max
        if arr.min() < lo or arr.max() > hi:
            raise ValueError(f"integer values out of int32 range [{lo}, {hi}]")
    return arr.astype(target)


def _align(itemsize: int) -> int:
    return 8 if itemsize == 8 else 4


def _data_start(code: int, ndim: int) -> int:
    """Offset of the array bytes in a wire buffer of dtype ``WIRE_DTYPES[code]`` and ``ndim`` dimensions."""
    a = _align(np.dtype(WIRE_DTYPES[code]).itemsize)
    return (4 + 4 * ndim + a - 1) // a * a


def _header(arr: np.ndarray) -> bytes:
    """The wire header of ``arr``: dtype code, ndim, shape (uint32), padded to the item size's alignment."""
    if arr.ndim > 255 or any(d > 0xFFFFFFFF for d in arr.shape):
        raise ValueError(f"expected at most 255 dimensions of at most 2**32 - 1, got shape {arr.shape}")
    head = bytes([WIRE_DTYPES.index(arr.dtype.name), arr.ndim, 0, 0]) + np.asarray(arr.shape, "<u4").tobytes()
    return head + bytes(-len(head) % _align(arr.dtype.itemsize))


def array_to_json(value: np.ndarray | None, widget: Any = None) -> memoryview | None:
    """Serialise an array as one byte ``memoryview``: header + data (see the module docstring)."""
    if value is None:
        return None
    arr = _wire_dtype(to_numpy(value))
    arr = np.ascontiguousarray(arr)
    if arr.dtype.byteorder == ">":
        arr = arr.astype(arr.dtype.newbyteorder("<"))
    head = _header(arr)
    out = np.empty(len(head) + arr.nbytes, np.uint8)
    out[:len(head)] = np.frombuffer(head, np.uint8)
    out[len(head):] = arr.reshape(-1).view(np.uint8)
    return memoryview(out)  # type: ignore[arg-type]  # ndarray is a buffer


def wire_payload_bytes(buffer) -> int:
    """The array bytes in a buffer made by :func:`array_to_json` (its size without the header)."""
    b = memoryview(buffer).cast("B")
    return b.nbytes - _data_start(b[0], b[1])


def _from_wire(buf) -> np.ndarray:
    b = bytes(buf)
    if len(b) < 4 or b[0] >= len(WIRE_DTYPES) or b[2:4] != b"\0\0":
        raise ValueError(f"expected an array buffer with a dtype/shape header, got {len(b)} bytes")
    ndim = b[1]
    start = _data_start(b[0], ndim)
    dtype = np.dtype(WIRE_DTYPES[b[0]])
    shape = tuple(int(d) for d in np.frombuffer(b[4:4 + 4 * ndim], "<u4"))
    if len(b) != start + dtype.itemsize * int(np.prod(shape, dtype=np.int64)):
        raise ValueError(f"expected {start} header bytes + {dtype.name} data of shape {shape}, got {len(b)} bytes")
    return np.frombuffer(b, dtype, offset=start).reshape(shape).copy()


def array_from_json(value, widget: Any = None) -> np.ndarray | None:
    """Inverse of :func:`array_to_json` (the front-end's ``encode`` sends the same wire form)."""
    if value is None:
        return None
    if not isinstance(value, (memoryview, bytes, bytearray)):
        raise ValueError(f"expected an array buffer with a dtype/shape header, got {type(value).__name__}")
    return _from_wire(value)


#: kwargs for ``.tag(sync=True, **array_serialization)``
array_serialization = {"to_json": array_to_json, "from_json": array_from_json}


class ArrayTrait(traitlets.TraitType):
    """A numeric ndarray trait with rank check and dtype conversion.

    Parameters
    ----------
    ndim : int or tuple of int, optional
        Allowed number of dimensions.
    dtype : str, optional
        Convert to this dtype on assignment (e.g. ``"float32"``, ``"uint8"``); values that do
        not fit an integer dtype raise. Without it the downcast rules of this module apply.
    shape_doc : str, optional
        Human-readable expected shape used in error messages, e.g. ``"[C, W, H]"``.
    last_dim : int, optional
        Required size of the last axis (e.g. 3 for MiniGrid encodings).
    allow_none : bool
        Whether ``None`` is accepted.
    """

    info_text = "a numeric array"

    def __init__(self, default_value: Any = traitlets.Undefined, *, ndim: int | tuple[int, ...] | None = None,
                 dtype: str | None = None, shape_doc: str = "", last_dim: int | None = None,
                 allow_none: bool = False, **kwargs: Any) -> None:
        self.ndims = (ndim,) if isinstance(ndim, int) else ndim
        self.dtype = np.dtype(dtype) if dtype else None
        self.shape_doc = shape_doc
        self.last_dim = last_dim
        if default_value is traitlets.Undefined:
            nd = self.ndims[-1] if self.ndims else 1
            shape = (0,) * (nd - 1) + ((last_dim,) if last_dim is not None else (0,)) if nd else ()
            default_value = np.zeros(shape, dtype=self.dtype or np.float32)
        super().__init__(default_value=default_value, allow_none=allow_none, **kwargs)

    def _expected(self) -> str:
        parts = []
        if self.ndims:
            parts.append(" or ".join(f"{n}-d" for n in self.ndims))
        parts.append(f"{self.dtype.name} " if self.dtype else "numeric ")
        s = " ".join(parts) + "array"
        return s + (f" with shape {self.shape_doc}" if self.shape_doc else "")

    def _fail(self, obj: Any, got: str) -> None:
        owner = type(obj).__name__ if obj is not None else "widget"
        raise traitlets.TraitError(f"{owner}.{self.name}: expected {self._expected()}, got {got}")

    def validate(self, obj: Any, value: Any) -> np.ndarray | None:
        if value is None:
            if self.allow_none:
                return None
            self._fail(obj, "None")
        try:
            arr = to_numpy(value)
        except Exception as exc:  # ragged lists, odd objects
            self._fail(obj, f"{type(value).__name__} that cannot be converted ({exc})")
        if arr.dtype.kind not in "biuf":
            self._fail(obj, f"dtype {arr.dtype} (from {type(value).__name__})")
        if self.ndims and arr.ndim not in self.ndims:
            self._fail(obj, f"shape {tuple(arr.shape)} ({arr.ndim}-d)")
        if self.last_dim is not None and arr.ndim and arr.shape[-1] != self.last_dim:
            self._fail(obj, f"shape {tuple(arr.shape)} (last axis must be {self.last_dim})")
        if self.dtype is not None and arr.dtype != self.dtype:
            if self.dtype.kind in "iu" and arr.size:
                info = np.iinfo(self.dtype)
                finite = arr.dtype.kind != "f" or bool(np.isfinite(arr).all())
                if not finite or arr.min() < info.min or arr.max() > info.max:
                    self._fail(obj, f"values outside [{info.min}, {info.max}] (min {arr.min()}, max {arr.max()})")
            arr = arr.astype(self.dtype)
        else:
            try:
                arr = _wire_dtype(arr)
            except ValueError as exc:
                self._fail(obj, str(exc))
        return np.ascontiguousarray(arr)


class SyncedArray(ArrayTrait):
    """An :class:`ArrayTrait` synced with the front-end as one binary buffer: it tags itself
    ``sync=True`` with :data:`array_serialization`, so a widget declares ``logits = SyncedArray(1, "float32", "[A]")``.

    ``ndim``, ``dtype`` and ``shape_doc`` as in :class:`ArrayTrait` (positional, in that order); the other
    arguments are keywords (``last_dim``, ``allow_none``, ``default_value``).
    """

    def __init__(self, ndim: int | tuple[int, ...] | None = None, dtype: str | None = None, shape_doc: str = "", *,
                 default_value: Any = traitlets.Undefined, **kwargs: Any) -> None:
        super().__init__(default_value, ndim=ndim, dtype=dtype, shape_doc=shape_doc, **kwargs)
        self.tag(sync=True, **array_serialization)

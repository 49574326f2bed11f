"""Binary array transport between Python and the widget front-ends.

An array trait is stored in Python as a C-contiguous :class:`numpy.ndarray` and sent
to JavaScript as ``{"dtype": str, "shape": [int, ...], "view": memoryview}``; ipywidgets
lifts the ``memoryview`` into a binary buffer, which the JS side receives as a
``DataView`` and decodes with ``new Float32Array(view.buffer, view.byteOffset,
view.byteLength / 4)`` (see ``js/lib/arrays.js``).

Dtype rules applied on assignment (unless the trait fixes a dtype):
float64/float16 -> float32, int64/uint64 -> int32 (error if out of range), bool -> uint8.
numpy arrays, torch tensors (moved to CPU, detached), and nested lists are accepted.

Usage::

    values = ArrayTrait(ndim=3, dtype="float32", shape_doc="[C, W, H]").tag(sync=True, **array_serialization)
"""

from __future__ import annotations

from typing import Any

import numpy as np
import traitlets

__all__ = ["ArrayTrait", "array_serialization", "array_to_json", "array_from_json", "to_numpy"]

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


def array_to_json(value: np.ndarray | None, widget: Any = None) -> dict | None:
    """Serialise an array as ``{"dtype", "shape", "view"}`` (``view`` is a byte memoryview)."""
    if value is None:
        return None
    arr = _wire_dtype(to_numpy(value))
    arr = np.ascontiguousarray(arr)
    if arr.dtype.byteorder == ">":
        arr = arr.astype(arr.dtype.newbyteorder("<"))
    return {
        "dtype": arr.dtype.name,
        "shape": [int(d) for d in arr.shape],
        "view": memoryview(arr.reshape(-1)).cast("B"),  # type: ignore[arg-type]  # ndarray is a buffer
    }


def array_from_json(value: dict | None, widget: Any = None) -> np.ndarray | None:
    """Inverse of :func:`array_to_json`; accepts memoryview/bytes/list ``view``."""
    if value is None:
        return None
    dtype = np.dtype(value.get("dtype", "float32"))
    shape = tuple(int(d) for d in value.get("shape", ()))
    view = value.get("view")
    if isinstance(view, (list, tuple)):
        arr = np.asarray(view, dtype=dtype)
    else:
        arr = np.frombuffer(bytes(view) if view is not None else b"", dtype=dtype)
    return arr.reshape(shape).copy()


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

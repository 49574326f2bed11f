"""Small traitlets helpers shared by the widgets (label lists, integer pairs, step-numbered labels)."""

from __future__ import annotations

import re
from typing import Any

import numpy as np
import traitlets

__all__ = ["Labels", "IntPair", "OptionalVmax", "check_count", "check_first_axis", "check_dims", "check_indices",
           "step_text", "fill_steps", "escape_braces"]

_SUB = str.maketrans("0123456789", "₀₁₂₃₄₅₆₇₈₉")
_FIELD = re.compile(r"\{\{|\}\}|\{(\d+)\}")


def step_text(step: int) -> str:
    """An episode step as a token subscript: ``9 -> "₉"``, ``12 -> "₁₂"``; a negative step (left padding) -> ``"·pad"``."""
    return "·pad" if step < 0 else str(int(step)).translate(_SUB)


def fill_steps(text: str, steps) -> str:
    """``text`` with each ``{k}`` replaced by :func:`step_text` of ``steps[k]`` (``?`` when k is out of range) and
    ``{{`` / ``}}`` read as literal braces; ``text`` unchanged when ``steps`` is empty (no templating).

    This is how widgets with a ``steps`` trait label tokens by episode step: the labels are sent once
    (``"s{25}"``) and only the steps change per state. The front-end applies the same rule (``js/lib/steps.js``)."""
    if steps is None or len(steps) == 0:
        return text
    n = len(steps)

    def one(m: re.Match) -> str:
        if m.group(1) is None:
            return m.group(0)[0]
        k = int(m.group(1))
        return step_text(int(steps[k])) if k < n else "?"
    return _FIELD.sub(one, text)


def escape_braces(text: str) -> str:
    """``text`` as a literal in a :func:`fill_steps` template (braces doubled)."""
    return str(text).replace("{", "{{").replace("}", "}}")


class Labels(traitlets.TraitType):
    """A list of strings. Accepts any iterable (list, tuple, numpy array); items go through ``str``."""

    info_text = "a list of strings"
    default_value: list = []

    def validate(self, obj: Any, value: Any) -> list[str]:
        if value is None:
            return []
        if isinstance(value, (str, bytes)):
            self.error(obj, value, info=f"a list of strings (got a single {type(value).__name__}; wrap it in a list)")
        try:
            return [str(v) for v in value]
        except TypeError:
            self.error(obj, value)
        return []  # unreachable

    def make_dynamic_default(self) -> list:
        return []


class IntPair(traitlets.TraitType):
    """A pair of integers ``(a, b)`` (e.g. a cell ``(x, y)``), or ``None`` when allowed."""

    info_text = "a pair of integers (a, b)"

    def validate(self, obj: Any, value: Any) -> tuple[int, int] | None:
        if value is None:
            if self.allow_none:
                return None
            self.error(obj, value)
        try:
            items = list(np.asarray(value).reshape(-1).tolist()) if not isinstance(value, (list, tuple)) else list(value)
        except Exception:  # noqa: BLE001
            self.error(obj, value)
        if len(items) != 2 or not all(isinstance(v, (int, np.integer)) or (isinstance(v, float) and v.is_integer()) for v in items):
            self.error(obj, value, info=f"a pair of integers (a, b) (got {value!r})")
        return (int(items[0]), int(items[1]))


class OptionalVmax(traitlets.Float):
    """Colour-scale limit: a positive float, or ``None`` for automatic (max |finite value|)."""

    def __init__(self, **kwargs: Any) -> None:
        super().__init__(None, allow_none=True, **kwargs)

    def validate(self, obj: Any, value: Any) -> float | None:
        if value is None:
            return None
        v = super().validate(obj, float(value) if isinstance(value, (int, np.number)) else value)
        if not (v > 0 and np.isfinite(v)):
            raise traitlets.TraitError(f"{type(obj).__name__}.{self.name}: expected a positive finite float or None, got {value!r}")
        return v


TOGETHER = ("when both change size, set them together: `with widget.hold_trait_notifications(): ...` "
            "(or pass both to the constructor)")


def check_count(obj: Any, name: str, got: int, expected: int, per: str) -> None:
    """Raise ``TraitError`` naming ``obj.name`` unless it holds ``expected`` items (``per`` says what one item
    stands for, e.g. "one per component (values [S, N] has N = 5)"). ``got == 0`` (unset) is accepted."""
    if got and got != expected:
        raise traitlets.TraitError(f"{type(obj).__name__}.{name}: expected {expected} items, {per}; got {got}. {TOGETHER}")


def check_first_axis(obj: Any, name: str, arr: np.ndarray, expected: int, per: str) -> None:
    """Like :func:`check_count` for an array's first axis; an empty array (unset) is accepted."""
    if arr.size and arr.shape[0] != expected:
        raise traitlets.TraitError(f"{type(obj).__name__}.{name}: expected first axis {expected}, {per}; "
                                   f"got shape {tuple(arr.shape)}. {TOGETHER}")


def _shape(v: Any) -> tuple[int, ...] | None:
    """An array's shape or a list's ``(len,)``; None when unset (empty)."""
    if isinstance(v, np.ndarray):
        return tuple(v.shape) if v.size else None
    if isinstance(v, (list, tuple)):
        return (len(v),) if len(v) else None
    return None


def _fmt(dims: tuple) -> str:
    return "[" + ", ".join(str(d) for d in dims) + "]"


def check_dims(obj: Any, proposal: dict, spec: dict[str, tuple]) -> Any:
    """Cross-trait shape check, the one rule for every widget: ``spec`` names each array / list trait's
    dimensions (``{"cells": ("N", 2), "probs": ("K", "N", "A"), "action_names": ("A",)}``); every
    named dimension must have one size across the traits that are set (empty = unset). The trait
    being set is checked last, so the error names it with the trait that fixed the size. Returns the
    proposed value (use as the body of a ``@traitlets.validate``)."""
    name, value = proposal["trait"].name, proposal["value"]
    sizes: dict[str, tuple[int, str]] = {}
    for trait in [t for t in spec if t != name] + ([name] if name in spec else []):
        shape = _shape(value if trait == name else getattr(obj, trait))
        dims = spec[trait]
        if shape is None or len(shape) != len(dims):
            continue
        for d, n in zip(dims, shape):
            if isinstance(d, int):
                continue
            if d in sizes and sizes[d][0] != n:
                size, origin = sizes[d]
                raise traitlets.TraitError(f"{type(obj).__name__}.{trait}: expected {_fmt(dims)} with {d} = {size} "
                                           f"(from {origin}), got shape {shape}. {TOGETHER}")
            sizes.setdefault(d, (n, f"{trait} {shape}"))
    return value


def check_indices(obj: Any, name: str, values: np.ndarray, bound: int, what: str) -> None:
    """Raise ``TraitError`` unless ``values`` are integers in ``[0, bound)`` (``what`` names the bound)."""
    v = np.asarray(values)
    if not v.size:
        return
    if not np.all(np.isfinite(v)) or not np.all(v == np.round(v)) or v.min() < 0 or v.max() >= bound:
        raise traitlets.TraitError(f"{type(obj).__name__}.{name}: expected integer indices in [0, {bound}) ({what}), "
                                   f"got values {v.min()}..{v.max()}. {TOGETHER}")

"""Lazy package attributes: a package lists ``{name: module}`` and the module is imported on first use
(torch, TransformerLens and gymnasium stay unloaded until something needs them)."""
from __future__ import annotations

import importlib
from typing import Callable


def lazy_exports(package: str, table: dict[str, str], names) -> tuple[Callable, Callable]:
    """``(__getattr__, __dir__)`` for ``package`` serving ``table`` (``{attribute: module}``); ``names``
    is the package's ``globals`` (its eager attributes, listed by ``dir``)."""

    def __getattr__(name: str):
        if name in table:
            return getattr(importlib.import_module(table[name]), name)
        raise AttributeError(f"module {package!r} has no attribute {name!r}")

    def __dir__():
        return sorted(list(names) + list(table))

    return __getattr__, __dir__

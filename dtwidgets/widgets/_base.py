"""Base class of all dtwidgets widgets.

Each subclass names its front-end module with ``_module = "grid_view"``; the bundled ESM
``dtwidgets/static/<module>.js`` (built from ``js/<module>.js``) becomes the anywidget ``_esm``.
"""

from __future__ import annotations

import functools
import logging
import pathlib
import traceback
from typing import Any, Callable, TypeVar

import anywidget
import traitlets

__all__ = ["DTWidget", "STATIC_DIR"]

STATIC_DIR = pathlib.Path(__file__).resolve().parent.parent / "static"
_log = logging.getLogger("dtwidgets")
F = TypeVar("F", bound=Callable[..., Any])
_PAGE = "value from the page"  # the error-box entry of a refused front-end value


class DTWidget(anywidget.AnyWidget):
    """anywidget base: loads the bundled ESM, rejects unknown kwargs, shows callback errors.

    ``error`` (str, synced) is displayed by the front-end as a red box under the widget;
    an empty string hides it. Wrap observers with :meth:`_guard` (or use
    :meth:`observe_guarded`) so that an exception raised while handling a front-end event
    is shown there instead of disappearing into the kernel log.
    """

    _module: str = ""
    _feed: Any = None  # an UpdateFeed collecting this widget's updates (widgets/feed.py), or None
    error = traitlets.Unicode("", help="error text shown under the widget ('' = none)").tag(sync=True)

    def __init_subclass__(cls, **kwargs: Any) -> None:
        if cls.__dict__.get("_module"):
            cls._esm = STATIC_DIR / f"{cls._module}.js"
        super().__init_subclass__(**kwargs)

    def __init__(self, **kwargs: Any) -> None:
        unknown = sorted(k for k in kwargs if not self.has_trait(k))
        if unknown:
            public = sorted(n for n in self.class_own_trait_names_public())
            raise TypeError(
                f"{type(self).__name__}() got unexpected keyword argument(s) {', '.join(map(repr, unknown))}; "
                f"expected some of: {', '.join(public)}"
            )
        self._guard_errors: dict[str, str] = {}
        super().__init__(**kwargs)

    def send_state(self, key: Any = None) -> None:
        """Send the state of ``key`` (None = every synced key) to the front-end, or leave it to the
        :class:`~dtwidgets.widgets.feed.UpdateFeed` batch this widget is part of."""
        if self._feed is not None and self._feed.collect(self, key):
            return
        super().send_state(key)

    def send_state_directly(self, key: Any = None) -> None:
        """``send_state`` in its own message, bypassing any feed."""
        super().send_state(key)

    def set_state(self, sync_data: dict) -> None:
        """Apply a state sent by the front-end. A value the traits refuse (``TraitError``: a NaN from a
        slider, an unknown sort key, an index out of range) is never raised out of the message handler:
        every key of that update keeps its last good value, the front-end is sent those values back
        (so page and kernel agree again) and the refusal is shown in the widget's error box."""
        try:
            super().set_state(sync_data)
        except traitlets.TraitError as exc:
            _log.warning("refused a value from the front-end: %s", exc)
            self._guard_errors[_PAGE] = f"a value from the page was refused (the last good value is kept): {exc}"
            self.error = "\n\n".join(self._guard_errors.values())
            self.send_state_directly([k for k in sync_data if k in self.keys])
            return
        if _PAGE in self._guard_errors:
            del self._guard_errors[_PAGE]
            self.error = "\n\n".join(self._guard_errors.values())

    @classmethod
    def class_own_trait_names_public(cls) -> list[str]:
        """Synced, public trait names declared by dtwidgets (not ipywidgets internals)."""
        base = set(anywidget.AnyWidget.class_trait_names())
        return [n for n in cls.class_trait_names(sync=True) if not n.startswith("_") and n not in base]

    # -- error reporting ---------------------------------------------------------------
    def _guard(self, fn: F, name: str | None = None) -> F:
        """Wrap ``fn`` so that exceptions are logged and shown in the widget's error box.

        The message set by a failing call is cleared by the next successful call of the
        same wrapped function. Returns ``None`` instead of raising.
        """
        key: str = name or str(getattr(fn, "__qualname__", repr(fn)))

        @functools.wraps(fn)
        def wrapper(*args: Any, **kwargs: Any) -> Any:
            try:
                result = fn(*args, **kwargs)
            except Exception as exc:  # noqa: BLE001 - shown to the user instead
                _log.exception("error in %s", key)
                tb = traceback.format_exception(type(exc), exc, exc.__traceback__)
                tail = "".join(tb[-3:]).rstrip()
                self._guard_errors[key] = f"{type(exc).__name__} in {key}: {exc}\n{tail}"
                self.error = "\n\n".join(self._guard_errors.values())
                return None
            if key in self._guard_errors:
                del self._guard_errors[key]
                self.error = "\n\n".join(self._guard_errors.values())
            return result

        return wrapper  # type: ignore[return-value]

    def observe_guarded(self, handler: Callable[[dict], Any], names: Any = traitlets.All) -> Callable:
        """``observe(handler, names)`` with :meth:`_guard`; returns the wrapper (for unobserve)."""
        wrapped = self._guard(handler)
        self.observe(wrapped, names=names)
        return wrapped

    def show_error(self, message: str) -> None:
        """Show ``message`` under the widget ('' clears it)."""
        self.error = str(message)

    def __repr__(self) -> str:
        return f"<{type(self).__name__}>"

"""Coalesced refreshes for compositions: an isolated input refreshes at once; the inputs that follow it
within ``coalesce_s`` run one refresh ~``coalesce_s`` after the last of them.

Inside a Jupyter kernel the refresh is a timer on the kernel's asyncio loop. Outside a kernel, or
on a loop that is marked running but not driven (another library's loop in this thread, an
embedding host), the refresh runs synchronously: a view must never go stale silently.
"""
from __future__ import annotations

import asyncio
import time
from typing import Callable


class CoalescedRefresh:
    """Coalesces the calls of ``refresh`` (a callable taking no argument, looked up at each call).

    Args:
        refresh: what to run, e.g. ``lambda: explorer.refresh()``; it calls :meth:`cancel` first thing
            when it can also be run directly (a refresh run by hand makes a pending one unneeded).
        coalesce_s: seconds after the last input of a burst (0 = always synchronous).
        clock: the clock inputs and refreshes are timed with (seconds; ``time.monotonic``).
    """

    def __init__(self, refresh: Callable[[], None], coalesce_s: float = 0.03,
                 clock: Callable[[], float] = time.monotonic) -> None:
        self.refresh = refresh
        self.coalesce_s = float(coalesce_s)
        self.clock = clock
        self._pending: asyncio.TimerHandle | None = None
        self._pending_at = self._last_input = self._last_refresh = 0.0
        self._loop_undriven = False

    @property
    def pending(self) -> bool:
        """Whether a refresh is scheduled on the loop and has not run yet."""
        return self._pending is not None

    @property
    def synchronous(self) -> bool:
        """Whether every refresh runs synchronously from now on (``coalesce_s`` is 0, or a scheduled
        refresh never ran: the loop marked running is not driven)."""
        return self.coalesce_s <= 0 or self._loop_undriven

    def _driven_loop(self):
        """The running asyncio loop if something is driving it, else None (refresh synchronously)."""
        if self.synchronous:
            return None
        try:
            loop = asyncio.get_running_loop()
        except RuntimeError:
            return None
        kernel_loop = _kernel_loop()
        if kernel_loop is None or loop is not kernel_loop:
            return None  # outside a kernel, or a foreign loop marked running: nothing promises to drive it
        if (self._pending is not None and asyncio.current_task(loop) is None
                and self.clock() - self._pending_at > max(1.0, 20 * self.coalesce_s)):
            # a refresh due long ago never ran, and we are not inside one of the loop's own tasks
            # (a burst handled in one task blocks its timers legitimately): nothing drives the loop
            self._loop_undriven = True
            return None
        return loop

    def schedule(self) -> None:
        """Refresh at once for an input that follows none (the leading edge: no refresh pending, none
        ended in the last ``coalesce_s``); otherwise coalesce: one refresh runs ~coalesce_s after the
        last input. Synchronous without a driven loop.

        One timer at a time: an input while it is pending only moves the deadline, and the timer re-arms
        itself for the remainder when it fires early (no cancelled handles pile up during a burst).
        """
        loop = self._driven_loop()
        if loop is None:
            self.cancel()
            self.refresh()
            return
        now = self._last_input = self.clock()
        if self._pending is None and now - self._last_refresh > self.coalesce_s:
            self._refresh_now()
        elif self._pending is None:
            self._arm(loop, self.coalesce_s)

    def cancel(self) -> None:
        """Forget a pending refresh (one is running, or not needed any more)."""
        if self._pending is not None:
            self._pending.cancel()
            self._pending = None

    def _refresh_now(self) -> None:
        try:
            self.refresh()
        finally:
            self._last_refresh = self.clock()

    def _arm(self, loop, delay: float) -> None:
        self._pending_at = self.clock()
        self._pending = loop.call_later(delay, self._fire, loop)

    def _fire(self, loop) -> None:
        self._pending = None
        wait = self._last_input + self.coalesce_s - self.clock()
        if wait > 1e-3:  # inputs kept coming: wait for the remainder
            self._arm(loop, wait)
            return
        self._refresh_now()

    def flush(self) -> None:
        """Run a pending coalesced refresh now."""
        if self._pending is not None:
            self.cancel()
            self.refresh()


def _kernel_loop():
    """The asyncio loop of the running IPython kernel, or None outside a kernel."""
    try:
        from IPython import get_ipython

        kernel = getattr(get_ipython(), "kernel", None)
        io_loop = getattr(kernel, "io_loop", None)
        return getattr(io_loop, "asyncio_loop", None)
    except Exception:  # noqa: BLE001
        return None


def in_notebook() -> bool:
    try:
        from IPython import get_ipython

        return getattr(get_ipython(), "kernel", None) is not None
    except Exception:  # noqa: BLE001
        return False



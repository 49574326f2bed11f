"""The project's one optimisation loop: :class:`Trainer` (used by the DT training, the behavioural clone
and the SAE).

Each step ``s`` (0-based) the trainer

1. sets every parameter group's learning rate to ``schedule(s)``;
2. calls ``loss_fn(s)``, which builds the batch and returns the scalar loss tensor, or
   ``(loss, metrics)`` with ``metrics`` a dict of scalars (floats or 0-d tensors) to log;
3. ``zero_grad`` / ``backward``, then each callback's ``on_backward`` (gradient edits), then gradient-norm
   clipping to ``grad_clip`` (0 / None = none), then ``optimizer.step()``;
4. logs ``loss`` and the metrics as Python floats in :attr:`Trainer.history`, then each callback's
   ``on_step`` (parameter constraints, progress-bar text, evaluation, checkpoints).

``on_start`` runs once before step 0 (e.g. the step-0 checkpoint), ``on_end`` after the last step.
The torch thread count is set for the run (:func:`torch_threads`) and restored afterwards.
"""
from __future__ import annotations

import contextlib
import operator
import time
from typing import Any, Callable, Iterable, Iterator, Sequence


@contextlib.contextmanager
def torch_threads(n: int | None) -> Iterator[None]:
    """Run the block with ``torch.set_num_threads(n)`` (``None`` / 0 = leave as is), restoring the count after."""
    import torch

    old = torch.get_num_threads()
    if n:
        torch.set_num_threads(int(n))
    try:
        yield
    finally:
        torch.set_num_threads(old)


class Callback:
    """Hooks into :class:`Trainer` (all optional). ``step`` is the 0-based step just taken."""

    def on_start(self, trainer: "Trainer") -> None:
        """Before step 0."""

    def on_backward(self, trainer: "Trainer", step: int) -> None:
        """After ``backward``, before clipping and the optimizer step: the gradients may be edited."""

    def on_step(self, trainer: "Trainer", step: int) -> None:
        """After the optimizer step and logging (``trainer.history[k][-1]`` are this step's values)."""

    def on_end(self, trainer: "Trainer") -> None:
        """After the last step (before the progress bar closes)."""


class Every(Callback):
    """Calls ``fn(trainer, done)`` after every ``every``-th step (``done = step + 1`` steps taken); 0 = never."""

    def __init__(self, every: int, fn: Callable[["Trainer", int], None]):
        self.every, self.fn = int(every or 0), fn

    def on_step(self, trainer: "Trainer", step: int) -> None:
        if self.every and (step + 1) % self.every == 0:
            self.fn(trainer, step + 1)


class Trainer:
    """One optimisation loop (see the module docstring).

    Args:
        optimizer: a ``torch.optim.Optimizer`` over the trained parameters.
        schedule: ``schedule(step) -> lr`` (:mod:`dtwidgets.training.schedules`); None = keep the optimizer's lr.
        n_steps: optimiser steps to take.
        grad_clip: max global gradient norm (0 / None = no clipping) over ``clip_params`` (default: the
            optimizer's parameters, group by group; the order of the norm's terms matters to the last bit).
        threads: torch threads during :meth:`run` (None = leave as is).
        callbacks: :class:`Callback` objects, called in order.
        progress: show a tqdm bar (``desc`` its label); callbacks reach it as ``trainer.bar``.
    """

    def __init__(self, optimizer, schedule: Callable[[int], float] | None, n_steps: int, *,
                 grad_clip: float | None = None, clip_params: Iterable | None = None, threads: int | None = None,
                 callbacks: Sequence[Callback] = (), progress: bool = True, desc: str = "train"):
        try:
            steps = -1 if isinstance(n_steps, bool) else operator.index(n_steps)
        except TypeError:
            steps = -1
        if steps < 0:
            raise ValueError(f"expected Trainer n_steps a non-negative integer, got {n_steps!r}")
        n_steps = steps
        if grad_clip is not None and not grad_clip >= 0:
            raise ValueError(f"expected Trainer grad_clip >= 0 or None, got {grad_clip!r}")
        self.optimizer, self.schedule, self.n_steps = optimizer, schedule, n_steps
        self.grad_clip, self.threads, self.callbacks = grad_clip, threads, list(callbacks)
        self.clip_params = list(clip_params) if clip_params is not None else [
            p for g in optimizer.param_groups for p in g["params"]]
        self.progress, self.desc = bool(progress), desc
        self.history: dict[str, list[float]] = {"loss": []}
        self.bar: Any = None  # the tqdm bar while run() runs
        self.seconds = 0.0

    def run(self, loss_fn: Callable[[int], object]) -> dict[str, list[float]]:
        """Take ``n_steps`` steps of ``loss_fn`` (see the module docstring); returns :attr:`history`
        (``{"loss": [n_steps], metric: [n_steps], ...}`` Python floats; a new history each run)."""
        from tqdm.auto import tqdm

        self.history = {"loss": []}
        with torch_threads(self.threads):
            t0 = time.perf_counter()
            self.bar = tqdm(range(self.n_steps), desc=self.desc, unit="step", disable=not self.progress, leave=False)
            try:
                for cb in self.callbacks:
                    cb.on_start(self)
                for step in self.bar:
                    self._step(step, loss_fn)
                for cb in self.callbacks:
                    cb.on_end(self)
            finally:
                self.bar.close()
                self.seconds = time.perf_counter() - t0
        return self.history

    def _step(self, step: int, loss_fn) -> None:
        import torch

        if self.schedule is not None:
            lr = self.schedule(step)
            for g in self.optimizer.param_groups:
                g["lr"] = lr
        out = loss_fn(step)
        loss, metrics = out if isinstance(out, tuple) else (out, {})
        self.optimizer.zero_grad(set_to_none=True)
        loss.backward()
        for cb in self.callbacks:
            cb.on_backward(self, step)
        if self.grad_clip:
            torch.nn.utils.clip_grad_norm_(self.clip_params, self.grad_clip)
        self.optimizer.step()
        self._log("loss", loss)
        for k, v in metrics.items():
            self._log(k, v)
        for cb in self.callbacks:
            cb.on_step(self, step)

    def _log(self, name: str, value) -> None:
        self.history.setdefault(name, []).append(float(value.item() if hasattr(value, "item") else value))

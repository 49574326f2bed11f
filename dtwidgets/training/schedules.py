"""Learning-rate schedules: small callables ``schedule(step) -> lr`` (absolute learning rate, not a factor).

The one owner of the project's schedules (a CI guard forbids another cosine schedule elsewhere):

- :class:`WarmupCosine`: linear warm-up over ``warmup_steps`` (step ``s`` gets ``lr * (s + 1) / warmup_steps``),
  then cosine decay from ``lr`` to ``min_lr_ratio * lr`` at step ``n_steps`` (held there after), used by
  the DT training and the behavioural clone;
- :class:`LinearDecay`: constant ``lr``, then linear decay to 0 over the last ``decay_fraction`` of
  ``n_steps`` (the SAE's schedule);
- :class:`Constant`: ``lr`` at every step.

Steps count from 0 (the step about to be taken). Every schedule is a frozen dataclass, so it can be
printed, compared and stored with a run's config.
"""
from __future__ import annotations

import math
from dataclasses import dataclass


def _check(name: str, value, lo: float, *, strict: bool = False) -> None:
    ok = isinstance(value, (int, float)) and not isinstance(value, bool) and math.isfinite(value) and (
        value > lo if strict else value >= lo)
    if not ok:
        raise ValueError(f"expected {name} a finite number {'>' if strict else '>='} {lo}, got {value!r}")


@dataclass(frozen=True)
class Constant:
    """``lr`` at every step."""

    lr: float

    def __post_init__(self):
        _check("Constant.lr", self.lr, 0.0)

    def __call__(self, step: int) -> float:
        return self.lr


@dataclass(frozen=True)
class WarmupCosine:
    """Linear warm-up then cosine decay.

    ``lr(s) = lr * (s + 1) / warmup_steps`` for ``s < warmup_steps``; afterwards, with
    ``p = min(1, (s - warmup_steps) / max(1, n_steps - warmup_steps))``,
    ``lr(s) = lr * (min_lr_ratio + (1 - min_lr_ratio) * (1 + cos(pi * p)) / 2)``.
    """

    lr: float
    n_steps: int
    warmup_steps: int = 0
    min_lr_ratio: float = 0.0

    def __post_init__(self):
        _check("WarmupCosine.lr", self.lr, 0.0)
        _check("WarmupCosine.n_steps", self.n_steps, 0)
        _check("WarmupCosine.warmup_steps", self.warmup_steps, 0)
        _check("WarmupCosine.min_lr_ratio", self.min_lr_ratio, 0.0)

    def __call__(self, step: int) -> float:
        if step < self.warmup_steps:
            return self.lr * (step + 1) / self.warmup_steps
        p = min(1.0, (step - self.warmup_steps) / max(1, self.n_steps - self.warmup_steps))
        return self.lr * (self.min_lr_ratio + (1 - self.min_lr_ratio) * 0.5 * (1 + math.cos(math.pi * p)))


@dataclass(frozen=True)
class LinearDecay:
    """Constant ``lr``, then linear decay to 0 at step ``n_steps``:
    ``lr(s) = lr * min(1, (n_steps - s) / max(1, decay_fraction * n_steps))``."""

    lr: float
    n_steps: int
    decay_fraction: float = 0.2

    def __post_init__(self):
        _check("LinearDecay.lr", self.lr, 0.0)
        _check("LinearDecay.n_steps", self.n_steps, 0)
        _check("LinearDecay.decay_fraction", self.decay_fraction, 0.0)

    def __call__(self, step: int) -> float:
        return self.lr * min(1.0, (self.n_steps - step) / max(1, self.decay_fraction * self.n_steps))

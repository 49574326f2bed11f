"""A training run's checkpoints as an ordered series (:func:`load_series`)."""
from __future__ import annotations

import hashlib
import json
import math
import re
from dataclasses import dataclass, field
from functools import cached_property
from pathlib import Path

_NAME = re.compile(r"^[A-Za-z0-9_.\-]+\.safetensors$")


@dataclass(frozen=True, eq=False)
class Checkpoint:
    """One checkpoint: optimiser ``step``, training ``loss`` of the batch that led to it (NaN at
    step 0 or when unknown) and the file ``path``."""

    step: int
    loss: float
    path: Path

    def load(self):
        """The model as a :class:`~dtwidgets.model.DTAdapter`."""
        from ..model import DTAdapter, load_model

        return DTAdapter(load_model(self.path), metadata={"source": str(self.path), "step": self.step})

    @property
    def label(self) -> str:
        """How errors name this checkpoint: ``"step 20 (step_000020.safetensors)"``."""
        return f"step {self.step} ({self.path.name})"

    @cached_property
    def key(self) -> str:
        """Cache key: the file's name and the sha256 of its content (a rewritten file is recomputed)."""
        return f"{self.path.name}:{hashlib.sha256(self.path.read_bytes()).hexdigest()}"


@dataclass
class CheckpointSeries:
    """Checkpoints in increasing step order (``series[i]``, ``len(series)``, ``series.steps``)."""

    checkpoints: list[Checkpoint]
    directory: Path
    train_config: dict = field(default_factory=dict)

    def __len__(self) -> int:
        return len(self.checkpoints)

    def __getitem__(self, i) -> Checkpoint:
        return self.checkpoints[i]

    def __iter__(self):
        return iter(self.checkpoints)

    @property
    def steps(self) -> list[int]:
        return [c.step for c in self.checkpoints]

    @property
    def losses(self) -> list[float]:
        return [c.loss for c in self.checkpoints]

    def __repr__(self) -> str:
        return f"CheckpointSeries({len(self)} checkpoints, steps {self.steps[:3]}...{self.steps[-1:]}, {self.directory})"


def load_series(directory) -> CheckpointSeries:
    """Read a training run's checkpoints (written by :func:`dtwidgets.data.train`) in step order.

    Args:
        directory: the run's ``out_dir`` or its ``checkpoints/`` folder (holding ``index.json``).

    The index is untrusted: entries must be plain ``.safetensors`` file names inside the folder,
    integer steps, unique; a missing file raises naming it.
    """
    d = Path(directory)
    if (d / "checkpoints" / "index.json").is_file():
        d = d / "checkpoints"
    index = d / "index.json"
    if not index.is_file():
        raise FileNotFoundError(f"expected a checkpoint index at {index} (written by dtwidgets.data.train with "
                                f"checkpoints enabled), got no such file")
    try:
        meta = json.loads(index.read_text())
        rows = meta["checkpoints"]
    except (ValueError, KeyError, TypeError) as e:
        raise ValueError(f"expected JSON with a 'checkpoints' list in {index}, could not read it: {e}") from None
    if not isinstance(rows, list) or not rows:
        raise ValueError(f"expected a non-empty 'checkpoints' list in {index}, got {type(rows).__name__}")
    out = [_entry(index, d, i, r) for i, r in enumerate(rows)]
    out.sort(key=lambda c: c.step)
    steps = [c.step for c in out]
    if len(set(steps)) != len(steps):
        raise ValueError(f"{index}: expected unique checkpoint steps, got {steps}")
    names = [c.path.name for c in out]
    if len(set(names)) != len(names):
        dup = sorted({n for n in names if names.count(n) > 1})
        raise ValueError(f"{index}: expected one file per step, got steps naming the same file {dup}")
    return CheckpointSeries(out, d, meta.get("train_config") or {})


def _entry(index: Path, d: Path, i: int, r) -> Checkpoint:
    """Index entry ``i`` -> a :class:`Checkpoint`; steps must be JSON integers (not ``true``, not 20.0)
    >= 0, the path a plain file name inside ``d``, the loss a number, null or absent."""
    name, step = (r.get("path"), r.get("step")) if isinstance(r, dict) else (None, None)
    if not isinstance(name, str) or not _NAME.match(name) or type(step) is not int or step < 0:
        raise ValueError(f"{index}: entry {i} expected {{'step': int >= 0, 'path': 'name.safetensors'}} "
                         f"(a plain file name), got {str(r)[:120]!r}")
    path = d / name
    if not path.is_file():
        raise FileNotFoundError(f"{index}: entry {i} names {name}, which is missing from {d}")
    loss = r.get("loss")
    if loss is not None and (type(loss) not in (int, float)):
        raise ValueError(f"{index}: entry {i} (step {step}) expected 'loss' to be a number or null, got {loss!r:.60}")
    loss = float(loss) if loss is not None and math.isfinite(loss) else float("nan")
    return Checkpoint(step, loss, path)

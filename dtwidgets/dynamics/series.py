"""A training run's checkpoints as an ordered series (:func:`load_series`)."""
from __future__ import annotations

import json
import math
import re
from dataclasses import dataclass, field
from pathlib import Path

_NAME = re.compile(r"^[A-Za-z0-9_.\-]+\.safetensors$")


@dataclass(frozen=True)
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
    def key(self) -> str:
        """Cache key: the file name, size and modification time (a rewritten file is recomputed)."""
        st = self.path.stat()
        return f"{self.path.name}:{st.st_size}:{st.st_mtime_ns}"


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
    out = []
    for i, r in enumerate(rows):
        name, step = (r.get("path"), r.get("step")) if isinstance(r, dict) else (None, None)
        if not isinstance(name, str) or not _NAME.match(name) or not isinstance(step, int) or step < 0:
            raise ValueError(f"{index}: entry {i} expected {{'step': int >= 0, 'path': 'name.safetensors'}} "
                             f"(a plain file name), got {str(r)[:120]!r}")
        path = d / name
        if not path.is_file():
            raise FileNotFoundError(f"{index}: entry {i} names {name}, which is missing from {d}")
        loss = r.get("loss")
        loss = float(loss) if isinstance(loss, (int, float)) and math.isfinite(loss) else float("nan")
        out.append(Checkpoint(step, loss, path))
    out.sort(key=lambda c: c.step)
    steps = [c.step for c in out]
    if len(set(steps)) != len(steps):
        raise ValueError(f"{index}: expected unique checkpoint steps, got {steps}")
    return CheckpointSeries(out, d, meta.get("train_config") or {})

"""Training: the one optimisation loop (:class:`~dtwidgets.training.loop.Trainer`) and its learning-rate
schedules (:mod:`dtwidgets.training.schedules`), and what runs through them: the Decision Transformer's
training (:mod:`~dtwidgets.training.dt`), behavioural clones (:mod:`~dtwidgets.training.clone`) and
the shipped demo models (``python -m dtwidgets.training.demo``). The SAE trainer
(:func:`dtwidgets.sae.train_sae`) uses the same loop. Submodules load lazily (they need torch)."""
from __future__ import annotations

from .._lazy import lazy_exports

_LAZY = {
    "Trainer": "dtwidgets.training.loop",
    "Callback": "dtwidgets.training.loop",
    "Every": "dtwidgets.training.loop",
    "torch_threads": "dtwidgets.training.loop",
    "WarmupCosine": "dtwidgets.training.schedules",
    "LinearDecay": "dtwidgets.training.schedules",
    "Constant": "dtwidgets.training.schedules",
    "TrainConfig": "dtwidgets.training.dt",
    "TrainResult": "dtwidgets.training.dt",
    "train": "dtwidgets.training.dt",
    "checkpoint_steps": "dtwidgets.training.dt",
    "data_order": "dtwidgets.training.dt",
    "DistillConfig": "dtwidgets.training.clone",
    "CloneResult": "dtwidgets.training.clone",
    "distill": "dtwidgets.training.clone",
}

__all__ = sorted(_LAZY)


__getattr__, __dir__ = lazy_exports("dtwidgets.training", _LAZY, globals())

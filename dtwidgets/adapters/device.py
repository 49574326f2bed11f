"""Where a model's tensors live: the one rule for a ``device`` argument and for an adapter's device.

* :func:`resolve_device` turns a user's ``device`` (``"cpu"``, ``"cuda"``, ``"cuda:1"``, ``"mps"`` or a
  :class:`torch.device`) into a :class:`torch.device`, with one clear error naming the argument for an
  unknown device or an accelerator this machine does not have.
* :func:`device_of` is the device of a :class:`~dtwidgets.adapters.ModelAdapter`: its OPTIONAL
  ``device`` member, CPU when it has none. Analyses create their tensors there; arrays leave the
  device once, as numpy, at the widget / result boundary.
"""
from __future__ import annotations

import torch

CPU = torch.device("cpu")


def resolve_device(device, argument: str = "device") -> torch.device:
    """``device`` (str or :class:`torch.device`; None = CPU) -> a :class:`torch.device` this machine has.

    Raises:
        ValueError: naming ``argument``, for a value that is not a device, a CUDA device without CUDA
            (or past the last GPU), or MPS where it is not available.
    """
    if device is None:
        return CPU
    if not isinstance(device, (str, torch.device)):
        raise ValueError(f"{argument}: expected a device such as 'cpu', 'cuda' or 'cuda:0', got "
                         f"{type(device).__name__} {device!r}")
    try:
        dev = torch.device(device)
    except (RuntimeError, ValueError):
        raise ValueError(f"{argument}: expected a device such as 'cpu', 'cuda' or 'cuda:0', got {device!r}") from None
    if dev.type == "cpu":
        return dev
    if dev.type == "cuda":
        if not torch.cuda.is_available():
            raise ValueError(f"{argument}: expected a device this machine has, got {device!r} but CUDA is not "
                             f"available (torch {torch.__version__}, CUDA build: {torch.version.cuda or 'none'}); "
                             f"use device='cpu'")
        n = torch.cuda.device_count()
        if dev.index is not None and dev.index >= n:
            raise ValueError(f"{argument}: expected a CUDA device in 0..{n - 1}, got {device!r}")
        return dev
    if dev.type == "mps":
        if not torch.backends.mps.is_available():
            raise ValueError(f"{argument}: expected a device this machine has, got {device!r} but MPS is not available")
        return dev
    raise ValueError(f"{argument}: expected 'cpu', 'cuda[:index]' or 'mps', got {device!r}")


def device_of(adapter) -> torch.device:
    """The device ``adapter``'s weights and activations live on: its optional ``device`` member, else CPU."""
    dev = getattr(adapter, "device", None)
    return CPU if dev is None else torch.device(dev)

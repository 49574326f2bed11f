"""A model with an intervention built in: any component ablated, an activation patched or steered.

:func:`intervened` wraps a :class:`~dtwidgets.adapters.ModelAdapter` with a list of forward hooks
and returns another ``ModelAdapter``: every member delegates to the wrapped adapter, except that

* ``forward(window)`` is ``adapter.run_with_hooks(window, hooks)``;
* ``run_with_hooks(window, more)`` runs the intervention's hooks, then the caller's ``more``;
* ``run_with_cache(window)`` caches the intervened run (backbone hooks only; see
  :meth:`IntervenedAdapter.run_with_cache`).

So anything that reaches a model through the protocol — :func:`~dtwidgets.data.calibrate`,
:func:`~dtwidgets.data.record_rollouts`, the Explorer, every analysis — runs the intervened model
unchanged. The hooks are the analyses' own builders, never a second copy of their rules:

* :func:`ablated`: :func:`~dtwidgets.analysis.ablation.component_ablation_hooks` (zero / mean
  ablation of heads ``LlHh``, MLPs ``LlMLP``, neurons ``LlNn``, at every position by default);
* :func:`steered`: :func:`~dtwidgets.analysis.steering.steering_hooks` (``act += coeff × direction``);
* :func:`patched`: :func:`~dtwidgets.analysis.steering.patch_hooks` (a source run's activation).

Every hook here applies to every row of any batch, so one intervened adapter serves batched
forwards of any size (lockstep rollouts shrink the batch as episodes end).
"""
from __future__ import annotations

from typing import Any, Sequence

import torch

from ..adapters.protocol import Hook, ModelAdapter
from ..adapters.window import TrajectoryWindow
from . import _common as C
from .ablation import component_ablation_hooks
from .steering import patch_hooks, steering_hooks


def _is_dt_hook(name) -> bool:
    return isinstance(name, str) and name.startswith("dt.")


def _check_hooks(fwd_hooks, where: str) -> list[Hook]:
    hooks = list(fwd_hooks)
    bad = [h for h in hooks if not (isinstance(h, tuple) and len(h) == 2 and callable(h[1]))]
    if bad:
        raise TypeError(f"{where}: expected forward hooks as (hook name, fn) pairs, got {bad[:2]!r}")
    return hooks


class IntervenedAdapter:
    """A :class:`~dtwidgets.adapters.ModelAdapter` running ``base`` with ``hooks`` always active.

    Attributes:
        base: the wrapped adapter (itself possibly intervened: interventions compose).
        hooks: the intervention's forward hooks ``[(hook name, fn), ...]``.
        label: what the intervention is (e.g. ``"L0H0 zero-ablated"``).
        metadata: the base's metadata plus ``{"intervention": label}``.
    """

    def __init__(self, base: ModelAdapter, fwd_hooks: Sequence[Hook], label: str = "intervened"):
        if not isinstance(base, ModelAdapter):
            raise TypeError(f"expected a ModelAdapter to intervene on, got {type(base).__name__}")
        self.base = base
        self.hooks: list[Hook] = _check_hooks(fwd_hooks, "intervened()")
        self.label = str(label)
        self.backbone = base.backbone
        self.layout = base.layout
        self.schema = base.schema
        self.action_names = tuple(base.action_names)
        meta = getattr(base, "metadata", None)
        self.metadata = {**(dict(meta) if isinstance(meta, dict) else {}), "intervention": self.label}

    def __repr__(self) -> str:
        return f"IntervenedAdapter({self.label!r}, {len(self.hooks)} hook(s), base={self.base!r})"

    # ---- delegated protocol members --------------------------------------------------------------
    @property
    def device(self) -> torch.device:
        return C.device(self.base)

    @property
    def n_actions(self) -> int:
        return self.base.n_actions

    @property
    def pad_action(self) -> int:
        return self.base.pad_action

    @property
    def rtg_range(self) -> tuple[float, float]:
        return self.base.rtg_range

    @property
    def max_timestep(self) -> int:
        return self.base.max_timestep

    def action_index(self, action) -> int:
        return self.base.action_index(action)

    @property
    def W_action(self) -> torch.Tensor:
        return self.base.W_action

    @property
    def b_action(self) -> torch.Tensor:
        return self.base.b_action

    @property
    def W_state(self) -> torch.Tensor | None:
        return getattr(self.base, "W_state", None)

    def embed_state(self, features: torch.Tensor) -> torch.Tensor:
        fn = getattr(self.base, "embed_state", None)
        if fn is None:
            raise AttributeError(f"{type(self.base).__name__} has no embed_state")
        return fn(features)

    @property
    def b_mlp_out(self) -> torch.Tensor:
        return self.base.b_mlp_out

    def embed_rtg(self, rtgs: torch.Tensor) -> torch.Tensor:
        return self.base.embed_rtg(rtgs)

    def embed_time(self, timesteps: torch.Tensor) -> torch.Tensor:
        return self.base.embed_time(timesteps)

    def embed_action(self, actions: torch.Tensor) -> torch.Tensor:
        return self.base.embed_action(actions)

    def features(self, observations: torch.Tensor) -> torch.Tensor:
        return self.base.features(observations)

    def make_window(self, observations, rtgs, timesteps=None, actions=None) -> TrajectoryWindow:
        return self.base.make_window(observations, rtgs, timesteps, actions)

    def embed(self, window: TrajectoryWindow) -> torch.Tensor:
        """The base's token embeddings (an intervention on a ``dt.*`` embedding hook shows in
        ``forward`` / ``run_with_hooks``, not here: ``embed`` is the clean input)."""
        return self.base.embed(window)

    # ---- running, with the intervention --------------------------------------------------------
    def forward(self, window: TrajectoryWindow) -> torch.Tensor:
        """Action logits ``[B, n_actions]`` of the intervened model (without hooks: ``base.forward``,
        bit for bit; with hooks the whole sequence runs, equal to float rounding)."""
        return self.base.run_with_hooks(window, self.hooks) if self.hooks else self.base.forward(window)

    __call__ = forward

    def run_with_hooks(self, window: TrajectoryWindow, fwd_hooks: Sequence[Hook] = ()) -> torch.Tensor:
        """Logits ``[B, n_actions]`` with the intervention's hooks, then ``fwd_hooks``, active."""
        return self.base.run_with_hooks(window, self.hooks + _check_hooks(fwd_hooks, "run_with_hooks"))

    def run_with_cache(self, window: TrajectoryWindow, names_filter=None):
        """``(logits [B, n_actions], ActivationCache)`` of the intervened run: the intervention's
        backbone hooks are attached for the duration of ``base.run_with_cache`` (the analyses'
        :func:`~dtwidgets.analysis._common.run_with_cache`), so the cache shows the edited
        activations. An intervention on a DT embedding hook (``dt.*``) cannot be attached that way
        through the protocol and raises (``forward`` / ``run_with_hooks`` support it)."""
        dt = [n for n, _ in self.hooks if _is_dt_hook(n)]
        if dt:
            raise ValueError(f"run_with_cache of an intervened model supports backbone hooks only; this intervention "
                             f"({self.label!r}) edits DT embedding hooks {dt}: use forward / run_with_hooks "
                             f"(rollouts, calibration), or steer the same direction at blocks.0.hook_resid_pre")
        return C.run_with_cache(self.base, window, names_filter, fwd_hooks=self.hooks)


def intervened(adapter: ModelAdapter, fwd_hooks: Sequence[Hook], label: str = "intervened") -> IntervenedAdapter:
    """``adapter`` with ``fwd_hooks`` (``[(hook name, fn), ...]``, backbone or ``dt.*`` hooks)
    active in every run; an empty list is the clean model. See the module docstring."""
    return IntervenedAdapter(adapter, fwd_hooks, label)


def ablated(adapter: ModelAdapter, components, mode: str = "zero", means=None, positions=None) -> IntervenedAdapter:
    """``adapter`` with ``components`` (``"L0H0"``, ``["L0H1", "L0MLP"]``, ``"L0N12"``) ablated at
    ``positions`` (default: every position) in every window: the hooks of
    :func:`~dtwidgets.analysis.ablate` (``mode`` ``"zero"`` or ``"mean"`` with ``means`` from
    :func:`~dtwidgets.analysis.mean_activations`)."""
    comps = [components] if isinstance(components, str) else list(components)
    hooks = component_ablation_hooks(adapter, comps, mode, means, positions)
    where = "" if positions is None else f" at positions {list(positions)}"
    return IntervenedAdapter(adapter, hooks, f"{'+'.join(comps)} {mode}-ablated{where}")


def steered(adapter: ModelAdapter, hook: str, direction, coeff: float, positions=None,
            label: str | None = None) -> IntervenedAdapter:
    """``adapter`` with ``coeff × direction`` (``[d]``, or ``(direction, label)`` from
    :func:`~dtwidgets.analysis.steering_direction`) added at ``hook`` and ``positions`` (default
    all) in every window: :func:`~dtwidgets.analysis.steering_hooks`."""
    v, dlabel = direction if isinstance(direction, tuple) else (direction, label or "direction")
    hooks = steering_hooks(hook, torch.as_tensor(v, device=C.device(adapter)).float(), float(coeff), positions)
    return IntervenedAdapter(adapter, hooks, label or f"{dlabel} × {float(coeff):g} at {hook}")


def patched(adapter: ModelAdapter, source: TrajectoryWindow, hook: str, positions=None, head: int | None = None,
            label: str | None = None) -> IntervenedAdapter:
    """``adapter`` with ``source``'s (one row, clean model) activation at ``hook`` written into every
    window: :func:`~dtwidgets.analysis.patch_hooks`."""
    hooks = patch_hooks(adapter, source, hook, positions, head)
    what = hook if head is None else f"{hook}[head {int(head)}]"
    return IntervenedAdapter(adapter, hooks, label or f"{what} patched from a source window")


_SPEC_KEYS = {"ablate": ("mode", "means", "positions"), "steer": ("direction", "coeff", "positions", "label"),
              "patch": ("source", "positions", "head", "label"), "hooks": ("label",)}


def as_intervention(adapter: ModelAdapter, spec: Any, name: str = "intervention") -> IntervenedAdapter:
    """An intervention given any of these ways -> an :class:`IntervenedAdapter` of ``adapter``:

    * an :class:`IntervenedAdapter` (of ``adapter``, returned as is);
    * ``None`` or ``[]``: no intervention (the clean model through the wrapper);
    * a component name or a list of them (``"L0H0"``, ``["L0H1", "L0MLP"]``): zero ablation;
    * a list of forward hooks ``[(hook name, fn), ...]``;
    * a dict with one of the keys ``"ablate"`` (components; optional ``mode``, ``means``,
      ``positions``), ``"steer"`` (the hook; ``direction``, ``coeff``, optional ``positions``),
      ``"patch"`` (the hook; ``source`` window, optional ``positions``, ``head``) or ``"hooks"``.
    """
    if isinstance(spec, IntervenedAdapter):
        if spec.base is not adapter:
            raise ValueError(f"intervention {name!r}: expected an intervention of the adapter given, got one of "
                             f"{spec.base!r}")
        return spec
    if spec is None or (isinstance(spec, (list, tuple)) and len(spec) == 0):
        return IntervenedAdapter(adapter, [], "clean")
    if isinstance(spec, str) or (isinstance(spec, (list, tuple)) and all(isinstance(c, str) for c in spec)):
        return ablated(adapter, spec)
    if isinstance(spec, dict):
        return _from_dict(adapter, spec, name)
    if isinstance(spec, (list, tuple)):
        return IntervenedAdapter(adapter, _check_hooks(spec, f"intervention {name!r}"), name)
    raise TypeError(f"intervention {name!r}: expected component name(s), forward hooks, a dict spec or an "
                    f"IntervenedAdapter, got {type(spec).__name__}")


def _from_dict(adapter: ModelAdapter, spec: dict, name: str) -> IntervenedAdapter:
    kinds = [k for k in _SPEC_KEYS if k in spec]
    if len(kinds) != 1:
        raise ValueError(f"intervention {name!r}: expected exactly one of {sorted(_SPEC_KEYS)} in the dict, "
                         f"got keys {sorted(spec)}")
    kind = kinds[0]
    extra = sorted(set(spec) - {kind, *_SPEC_KEYS[kind]})
    if extra:
        raise ValueError(f"intervention {name!r}: unknown keys {extra} for {kind!r} (allowed: {_SPEC_KEYS[kind]})")
    kw = {k: spec[k] for k in _SPEC_KEYS[kind] if k in spec}
    if kind == "ablate":
        return ablated(adapter, spec["ablate"], **kw)
    if kind == "steer":
        missing = [k for k in ("direction", "coeff") if k not in spec]
        if missing:
            raise ValueError(f"intervention {name!r}: a steering spec needs {missing}")
        return steered(adapter, spec["steer"], **kw)
    if kind == "patch":
        if "source" not in spec:
            raise ValueError(f"intervention {name!r}: a patching spec needs source= (a one-row window)")
        return patched(adapter, hook=spec["patch"], **kw)
    return IntervenedAdapter(adapter, _check_hooks(spec["hooks"], f"intervention {name!r}"), spec.get("label", name))

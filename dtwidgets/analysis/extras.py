"""Typed extras of the per-state analysis: what a view needs beyond the shared bundle.

:func:`~dtwidgets.analysis.bundle.analyze_state` computes the shared bundle of a state (logits,
attribution, every single-component ablation, RTG scan, attention) in one batched forward, and each
extra it is asked for. A view declares the extras it reads and renders their results; it computes
nothing itself::

    st = analyze_state(adapter, window, ("forward", "right"), [Lens(), HeadCircuits(0, 1)])
    st[Lens].lens, st[HeadCircuits].qk

Two kinds of extra:

* **forward-shared** (:class:`Lens`, :class:`Neurons`): hooks added to the bundle's one forward
  (``hooks(adapter)``), read from its cache (``from_cache``);
* **computed** (every other): ``compute(req)`` with the :class:`StateRequest` of the state (the
  adapter, the window, the pair, the clean window of an edited grid, the ablation mode). They reuse
  the bundle's results where they can (e.g. the clean logits and attribution of the state).

One extra of each type per request; ``st[Type]`` returns its result. A new extra is a frozen
dataclass deriving from :class:`Extra` (or :class:`SharedExtra`) with a ``compute``; no registry.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Sequence

import numpy as np

from ..adapters import hooks as hk
from ..adapters.protocol import ModelAdapter
from ..adapters.window import TrajectoryWindow
from . import _common as C


@dataclass
class StateRequest:
    """What a computed extra may read: the state, its bundle and the analysis settings.

    Attributes:
        adapter: the :class:`~dtwidgets.adapters.ModelAdapter`; window: the one-row window analysed.
        pair: ``(a, b)`` action indices of the preference ``logit[a] − logit[b]``.
        clean: the unedited scenario's window (None unless the grid was edited).
        ablation_mode, means: ``"zero"`` or ``"mean"`` ablation (``means`` from ``mean_activations``).
        state: the shared :class:`~dtwidgets.analysis.bundle.StateAnalysis` (None while it is built).
    """

    adapter: ModelAdapter
    window: TrajectoryWindow
    pair: tuple[int, int]
    clean: TrajectoryWindow | None = None
    ablation_mode: str = "zero"
    means: dict | None = None
    state: Any = None


class Extra:
    """Base of computed extras: ``compute(req: StateRequest) -> result``."""

    shared = False

    def compute(self, req: StateRequest) -> Any:  # pragma: no cover - interface
        raise NotImplementedError


class SharedExtra(Extra):
    """An extra read from the bundle's own forward: ``hooks`` are added to it and ``read`` takes its
    row-0 cache. Asked for after the state was computed (a panel's control changed), ``compute`` runs
    one forward of the window for those hooks and reads it the same way."""

    shared = True

    def hooks(self, adapter: ModelAdapter) -> list[str]:  # pragma: no cover - interface
        raise NotImplementedError

    def read(self, req: StateRequest, cache) -> Any:  # pragma: no cover - interface
        raise NotImplementedError

    def compute(self, req: StateRequest) -> Any:
        _, cache = req.adapter.run_with_cache(req.window, names_filter=self.hooks(req.adapter))
        return self.read(req, cache)


@dataclass(frozen=True)
class Lens(SharedExtra):
    """The logit lens along the pair (``LogitLens``) and every MLP neuron's activation ``[L, d_mlp]``
    (``mlp.hook_post``) at the prediction position. Result: :class:`LensResult`."""

    def hooks(self, adapter: ModelAdapter) -> list[str]:
        L, M = C.n_layers(adapter), C.n_layers(adapter) if C.has_mlp(adapter) else 0  # M: layers with an MLP
        resid = [f(l) for l in range(L) for f in ((hk.resid_pre, hk.resid_mid, hk.resid_post) if M else
                                                  (hk.resid_pre, hk.resid_post))]
        return resid + [hk.mlp_post(l) for l in range(M)] + ([hk.ln_scale()] if C.normalization(adapter) else [])

    def read(self, req: StateRequest, cache) -> "LensResult":
        from .attribution import logit_lens

        a, b = req.pair
        pos = req.adapter.layout.prediction_position
        lens = logit_lens(req.adapter, req.window, a, b, cache=cache, position=pos)
        L = C.n_layers(req.adapter)
        acts = np.stack([C.np32(cache[hk.mlp_post(l)][0, pos]) for l in range(L)]) if C.has_mlp(req.adapter) \
            else np.zeros((L, 0), np.float32)
        return LensResult(lens, acts)


@dataclass
class LensResult:
    """``lens``: :class:`~dtwidgets.analysis.LogitLens`; ``neuron_activations``: ``[L, d_mlp]`` (``[L, 0]``
    without MLPs)."""

    lens: Any
    neuron_activations: np.ndarray


@dataclass(frozen=True)
class Neurons(SharedExtra):
    """Per-neuron direct shares in the bundle's attribution (``attribution.neuron_values [L, d_mlp]``)."""

    def hooks(self, adapter: ModelAdapter) -> list[str]:
        from .attribution import attribution_hooks

        return attribution_hooks(adapter, per_source=False, per_neuron=True)

    def read(self, req: StateRequest, cache):
        """The attribution with ``neuron_values`` (the bundle's own when it was asked with the state)."""
        from .attribution import logit_attribution

        at = req.state.attribution if req.state is not None else None
        if at is not None and at.neuron_values is not None:
            return at
        a, b = req.pair
        return logit_attribution(req.adapter, req.window, a, b, per_source=False, per_neuron=True, cache=cache)


@dataclass(frozen=True)
class AblationDetail(Extra):
    """One component ablated (``"L0H1"``, ``"L1MLP"``, ``"L0N12"``): probabilities and contributions
    before / after. Result: :class:`~dtwidgets.analysis.AblationResult` (one forward; the clean run is
    the bundle's)."""

    component: str

    def compute(self, req: StateRequest):
        from .ablation import ablate

        a, b = req.pair
        base = req.state.attribution if req.state is not None else None
        return ablate(req.adapter, req.window, [self.component], a, b, mode=req.ablation_mode, means=req.means,
                      baseline=base)


@dataclass(frozen=True)
class HeadCircuits(Extra):
    """QK (towards the RTG token) and OV (along the pair) maps of one head at the state shown.
    Result: :class:`HeadCircuitMaps`."""

    layer: int
    head: int

    def compute(self, req: StateRequest):
        from .circuits import ov_map, qk_map

        a, b = req.pair
        q = qk_map(req.adapter, self.layer, self.head, window=req.window)
        o = ov_map(req.adapter, self.layer, self.head, a, b, window=req.window)
        return HeadCircuitMaps(q, o)


@dataclass
class HeadCircuitMaps:
    """``qk``, ``ov``: :class:`~dtwidgets.analysis.CircuitMap` of one head."""

    qk: Any
    ov: Any


def _shown(req: StateRequest):
    """The observation shown ``[W, H, C]`` (the window's last step), or None for a weights-only request."""
    return None if req.window is None else req.window.observations[0, -1]


@dataclass(frozen=True)
class StateEmbedding(Extra):
    """The state-embedding projection along the pair (weights only; for a nonlinear state encoder, its
    Jacobian at the state shown). Result: :class:`~dtwidgets.analysis.StateEmbeddingProjection`."""

    def compute(self, req: StateRequest):
        from .embeddings import state_embedding_projection

        a, b = req.pair
        return state_embedding_projection(req.adapter, a, b, obs=_shown(req))


@dataclass(frozen=True)
class Patching(Extra):
    """Activation patching clean → edited (needs ``req.clean``; None without an edit).
    Result: :class:`~dtwidgets.analysis.PatchingResult` or None."""

    def compute(self, req: StateRequest):
        from .patching import activation_patching

        if req.clean is None:
            return None
        a, b = req.pair
        return activation_patching(req.adapter, req.clean, req.window, a, b)


@dataclass(frozen=True)
class PathPatchingExtra(Extra):
    """Direct path patching clean → edited (None without an edit).
    Result: :class:`~dtwidgets.analysis.PathPatching` or None."""

    def compute(self, req: StateRequest):
        from .path_patching import path_patching

        if req.clean is None:
            return None
        a, b = req.pair
        return path_patching(req.adapter, req.clean, req.window, a, b)


@dataclass(frozen=True)
class HeadWeights(Extra):
    """A head's virtual weights (``"L0H1"``) and the SVD (``"ov"`` / ``"qk"``) of its circuit (weights
    only; for a nonlinear state encoder, its Jacobian at the state shown). Result: :class:`HeadWeightsResult`."""

    head: str
    svd_kind: str = "ov"

    def compute(self, req: StateRequest):
        from .weights import head_svd, virtual_weights

        l, h = _head_index(req.adapter, self.head)
        obs = _shown(req)  # read only by a nonlinear state encoder (its Jacobian there)
        return HeadWeightsResult(virtual_weights(req.adapter, self.head, obs=obs),
                                 head_svd(req.adapter, l, h, self.svd_kind, k=1, obs=obs))


@dataclass
class HeadWeightsResult:
    """``virtual``: :class:`~dtwidgets.analysis.VirtualWeights`; ``svd``: :class:`~dtwidgets.analysis.HeadSVD`."""

    virtual: Any
    svd: Any


@dataclass(frozen=True)
class Composition(Extra):
    """Composition scores of every pair of heads (weights only). Result: ``CompositionScores``."""

    def compute(self, req: StateRequest):
        from .weights import composition_scores

        return composition_scores(req.adapter)


POLICY_COMPARE = ("none", "rtg", "ablation", "steering")
"""What a :class:`PolicyMaps` extra compares the current map with."""


@dataclass(frozen=True)
class PolicyMaps(Extra):
    """The policy over every agent placement of ``placements`` at the state's RTG and timestep,
    compared with another RTG, an ablated component or a steering scan along the pair.

    Result: :class:`PolicyMapsResult`. ``placements``: a :class:`~dtwidgets.analysis.Placements`
    (from the env, e.g. ``agent_placements(env)``); ``history``: use the current window with its last
    observation replaced (else one-step windows at the current timestep).
    """

    placements: Any = field(compare=False)
    compare: str = "none"
    other_rtg: float = -1.0
    component: str = ""
    history: bool = False
    coefficients: tuple[float, ...] = tuple(np.round(np.linspace(-3, 3, 13), 3).tolist())

    def compute(self, req: StateRequest):
        from .policy_map import policy_map, rtg_policy_maps

        if self.compare not in POLICY_COMPARE:
            raise ValueError(f"PolicyMaps.compare: expected one of {POLICY_COMPARE}, got {self.compare!r}")
        adapter, w, p = req.adapter, req.window, self.placements
        rtg, t = float(w.rtgs[0, -1]), int(w.timesteps[0, -1])
        hist = w if self.history else None
        kw: dict[str, Any] = dict(history=hist, timestep=t)
        if self.compare == "rtg":
            a, b = rtg_policy_maps(adapter, p, [rtg, float(self.other_rtg)], **kw)
            return PolicyMapsResult(a, b, None, rtg)
        clean = policy_map(adapter, p, rtg, **kw, label="clean" if self.compare == "steering" else None)
        if self.compare == "ablation":
            return PolicyMapsResult(self._ablated(req, p, rtg, kw), clean, None, rtg)
        if self.compare == "steering":
            return PolicyMapsResult(clean, None, self._steered(req, p, rtg, kw), rtg)
        return PolicyMapsResult(clean, None, None, rtg)

    def _ablated(self, req: StateRequest, p, rtg: float, kw: dict):
        from .ablation import ablation_hooks
        from .policy_map import policy_map

        comp = self.component

        def hooks(n: int) -> Sequence:
            return ablation_hooks(req.adapter, [(None, comp)], n, req.ablation_mode, req.means)

        return policy_map(req.adapter, p, rtg, **kw, fwd_hooks=hooks, label=f"{comp} ablated")

    def _steered(self, req: StateRequest, p, rtg: float, kw: dict):
        from .steering import steering_direction, steering_scan

        v = steering_direction(req.adapter, action=req.pair, normalize=True)
        return steering_scan(req.adapter, None, v, coefficients=list(self.coefficients), placements=p, rtg=rtg, **kw)


@dataclass
class PolicyMapsResult:
    """``first``: the map shown (clean, or ablated / RTG A); ``second``: the map compared with (or None);
    ``scan``: a :class:`~dtwidgets.analysis.SteeringScan` with a map per coefficient (or None); ``rtg``."""

    first: Any
    second: Any
    scan: Any
    rtg: float


def _head_index(adapter: ModelAdapter, label: str) -> tuple[int, int]:
    """``"L1H3"`` → ``(1, 3)``: the head ids :func:`~dtwidgets.analysis._common.head_labels` makes."""
    kind, layer, head = C.parse_component(adapter, label)
    if kind != "head" or head is None:
        raise ValueError(f"expected a head label like 'L0H1', got {label!r}")
    return layer, head


def compute_extras(req: StateRequest, extras: Sequence[Extra]) -> dict[type, Any]:
    """Results of the computed (non-shared) ``extras`` of one state, keyed by their type."""
    out: dict[type, Any] = {}
    for e in extras:
        if not e.shared:
            out[type(e)] = e.compute(req)
    return out


def check_extras(extras: Sequence[Any]) -> list[Extra]:
    """``extras`` as a list of :class:`Extra` instances, one per type (a clear error otherwise)."""
    out: list[Extra] = []
    seen: set[type] = set()
    for e in extras:
        if isinstance(e, type) and issubclass(e, Extra):
            raise TypeError(f"analyze_state extras: expected instances (e.g. {e.__name__}()), got the class {e.__name__}")
        if not isinstance(e, Extra):
            raise TypeError(f"analyze_state extras: expected Extra instances (Lens(), HeadCircuits(0, 1), ...), "
                            f"got {e!r}")
        if type(e) in seen:
            raise ValueError(f"analyze_state extras: one {type(e).__name__} per request, got two")
        seen.add(type(e))
        out.append(e)
    return out


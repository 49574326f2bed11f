"""Typed extras of the Explorer's spaces tabs (the conventions of :mod:`dtwidgets.analysis.extras`).

Each is a :class:`~dtwidgets.analysis.extras.SharedExtra`: its hooks join the bundle's one forward, so the
state shown is read from that forward's cache; its model-level fit is made once and only read per state.

* :class:`SpacePCA`: PCA (:func:`~dtwidgets.analysis.activation_pca`) of a residual hook at the state token
  over a set of reference states, and the state shown projected onto the same components
  (:meth:`~dtwidgets.analysis.spaces.PCAResult.project`).
* :class:`CongruenceNow`: the neurons whose output the action head reads most (the top rows of
  :func:`~dtwidgets.analysis.neuron_congruence`'s ``out_action``) and the state's activation of each.
* :class:`NMFNow`: NMF (:func:`~dtwidgets.analysis.activation_nmf`) of a hook's activation at the state
  token over the reference states, as FeatureBrowser cards (:func:`~dtwidgets.analysis.nmf_browser_data`),
  and the state's weight on each component: the non-negative least-squares fit of its activation (split into
  positive and negative parts like the factorised matrix) on the fixed components.

**Fits are made once** per (adapter, kind, hook, reference set, settings) and kept in :data:`FITS`, a table
per adapter object (weakly keyed): a state only reads a fit. A reference set is a :class:`ReferenceStates`,
which compares by a content hash of its windows, so the same states give the same fit.

A model without MLP neurons, or a hook the model lacks, gets a result with ``note`` set (one sentence for the
tab) and no numbers.
"""
from __future__ import annotations

import hashlib
import math
import weakref
from dataclasses import dataclass, field, replace
from typing import Any, Callable

import numpy as np
import torch

from ..adapters import hooks as hk
from ..adapters.protocol import ModelAdapter
from ..adapters.window import TrajectoryWindow
from . import _common as C
from .extras import SharedExtra, StateRequest
from .ids import ComponentId, neuron_id

COLOUR_BY = ("action", "rtg")
"""What a :class:`SpacePCA` colours its points by: the model's predicted action, or the state's RTG."""

FITS: "weakref.WeakKeyDictionary[Any, dict]" = weakref.WeakKeyDictionary()
"""The model-level fits made so far: ``{adapter: {key: fit}}`` (see :func:`fitted`)."""

_WINDOW_FIELDS = ("observations", "actions", "rtgs", "timesteps", "n_pad")


def fitted(adapter: ModelAdapter, key: tuple, make: Callable[[], Any]) -> Any:
    """The fit of ``adapter`` under ``key``: ``make()`` the first time it is asked for, then the kept one."""
    table = FITS.setdefault(adapter, {})
    if key not in table:
        table[key] = make()
    return table[key]


@dataclass(frozen=True)
class ReferenceStates:
    """A set of reference states: ``windows`` (``B`` rows, each row's last step is the state), ``source``
    (what they are, said in the tab) and ``key`` (sha1 of the windows' tensors: two sets are equal when
    their windows are)."""

    windows: TrajectoryWindow = field(compare=False, repr=False)
    source: str
    key: str

    def __len__(self) -> int:
        return self.windows.batch_size

    @classmethod
    def of(cls, windows: TrajectoryWindow, source: str) -> "ReferenceStates":
        if not isinstance(windows, TrajectoryWindow):
            raise TypeError(f"ReferenceStates: expected a TrajectoryWindow batch, got {type(windows).__name__}")
        h = hashlib.sha1()
        for f in _WINDOW_FIELDS:
            t = getattr(windows, f).detach().cpu().contiguous()
            h.update(f"{f}{tuple(t.shape)}{t.dtype}".encode())
            h.update(t.numpy().tobytes())
        return cls(windows, str(source), h.hexdigest())

    @classmethod
    def from_episode(cls, adapter: ModelAdapter, record: dict) -> "ReferenceStates":
        """Every state of an episode so far, one window each (``record``: :meth:`PlaySession.record`)."""
        obs, rtgs, ts, acts = (np.asarray(record[k]) for k in ("observations", "rtgs", "timesteps", "actions"))
        rows = [adapter.make_window(obs[:i + 1], rtgs[:i + 1], ts[:i + 1], acts[:i] if i else None)
                for i in range(len(obs))]
        n = len(rows)
        return cls.of(TrajectoryWindow.cat(rows), f"the {n} states of the episode played (steps 0–{n - 1})")


def space_hooks(adapter: ModelAdapter) -> list[tuple[str, str]]:
    """``(label, hook)`` of the residual hooks a :class:`SpacePCA` reads: the embeddings (the residual
    before the first block), then each layer's ``resid_mid`` (with an MLP) and ``resid_post``."""
    out = [(f"embeddings ({hk.resid_pre(0)})", hk.resid_pre(0))]
    for l in range(C.n_layers(adapter)):
        names = ([hk.resid_mid(l)] if C.has_mlp(adapter) else []) + [hk.resid_post(l)]
        out += [(n, n) for n in names]
    return out


def nmf_hooks(adapter: ModelAdapter) -> list[str]:
    """The hooks an :class:`NMFNow` reads (:func:`dtwidgets.sae.hooks.hook_names`; no MLP hooks and no
    ``resid_mid`` on a model without MLP)."""
    from ..sae.hooks import hook_names

    mlp_parts = ("mlp.hook_post", "hook_mlp_out", "hook_resid_mid")
    return [h for h in hook_names(adapter) if C.has_mlp(adapter) or not h.endswith(mlp_parts)]


def _predicted(req: StateRequest) -> int:
    """The model's action for the state shown (the bundle's logits when there is one)."""
    if req.state is not None:
        return int(np.argmax(req.state.logits))
    return int(req.adapter.forward(req.window)[0].argmax())


# ---- PCA ------------------------------------------------------------------------------------------------
@dataclass
class SpacePCAResult:
    """What the spaces tab draws.

    Attributes:
        pca: the fit over the reference states (:class:`~dtwidgets.analysis.spaces.PCAResult`; ``colour``:
            codes into ``colour_classes`` = the action names for ``"action"``, RTG values for ``"rtg"``).
        current: ``[k]`` the state shown on the same components (input units); current_colour: its colour
            value; current_label: its hover label.
        source: which reference states; note: why nothing is drawn (the other fields are then empty).
    """

    pca: Any = None
    current: np.ndarray | None = None
    current_colour: float = math.nan
    current_label: str = ""
    source: str = ""
    note: str = ""


@dataclass(frozen=True)
class SpacePCA(SharedExtra):
    """PCA of ``hook`` (one of :func:`space_hooks`) at the last state token over ``reference``, and the state
    shown projected in. ``colour_by``: one of :data:`COLOUR_BY`. Result: :class:`SpacePCAResult`."""

    hook: str
    reference: ReferenceStates | None = None
    colour_by: str = "action"
    n_components: int = 3

    def hooks(self, adapter: ModelAdapter) -> list[str]:
        return [self.hook] if self.hook in dict(space_hooks(adapter)).values() else []

    def read(self, req: StateRequest, cache) -> SpacePCAResult:
        ad = req.adapter
        if self.colour_by not in COLOUR_BY:
            raise ValueError(f"SpacePCA.colour_by: expected one of {COLOUR_BY}, got {self.colour_by!r}")
        if not self.hooks(ad):
            return SpacePCAResult(note=f"{self.hook} is not a residual hook of this model; expected one of "
                                       f"{[h for _, h in space_hooks(ad)]}")
        if self.reference is None or len(self.reference) < 2:
            return SpacePCAResult(note="PCA needs at least 2 reference states: take a step, or pass "
                                       "reference_windows= to the Explorer")
        key = ("pca", self.hook, self.reference.key, self.colour_by, int(self.n_components))
        fit = fitted(ad, key, lambda: _fit_pca(ad, self))
        x = cache[self.hook][0, C.last_token_position(ad, "state")]
        a = _predicted(req)
        rtg, t = float(req.window.rtgs[0, -1]), int(req.window.timesteps[0, -1])
        colour = float(a) if self.colour_by == "action" else rtg
        return SpacePCAResult(fit, fit.project(x)[0], colour, f"the state shown: t={t}, RTG {rtg:.2f}, "
                              f"{ad.action_names[a]}", self.reference.source)


@torch.inference_mode()
def _fit_pca(adapter: ModelAdapter, ext: SpacePCA):
    """The PCA of ``ext.hook`` over ``ext.reference`` coloured by the model's action or the RTG."""
    from .spaces import activation_pca

    assert ext.reference is not None
    w = ext.reference.windows
    pred = adapter.forward(w).argmax(-1).cpu().numpy()
    rtg, t = w.rtgs[:, -1].cpu().numpy(), w.timesteps[:, -1].cpu().numpy()
    names = adapter.action_names
    labels = [f"reference {i}: t={int(t[i])}, RTG {rtg[i]:.2f}, {names[int(pred[i])]}" for i in range(len(pred))]
    colour = pred.astype(np.float32) if ext.colour_by == "action" else rtg.astype(np.float32)
    fit = activation_pca(adapter, w, ext.hook, position=C.last_token_position(adapter, "state"),
                         n_components=int(ext.n_components), colour=colour, point_labels=labels)
    return replace(fit, colour_classes=tuple(names) if ext.colour_by == "action" else ())


# ---- congruence -----------------------------------------------------------------------------------------
@dataclass
class CongruenceNowResult:
    """The ``k`` most congruent neurons (largest ``max_a |out_action|``, all layers).

    Attributes:
        ids: their :class:`~dtwidgets.analysis.ids.ComponentId` (kind ``"neuron"``); labels: ``"L0N12"``.
        congruence: ``[k, A]`` ``W_out[l, n] · u_a`` (logits per unit activation, LN scale held at 1);
            action_names: ``A``.
        activation: ``[k]`` each neuron's activation (``mlp.hook_post``) at the prediction token of the state shown.
        along_pair: ``[k]`` activation × (``out_action[a] − out_action[b]``): its direct push on the preference.
        note: why nothing is shown (a model without MLP neurons).
    """

    ids: list = field(default_factory=list)
    labels: list = field(default_factory=list)
    congruence: np.ndarray = field(default_factory=lambda: np.zeros((0, 0), np.float32))
    action_names: tuple = ()
    activation: np.ndarray = field(default_factory=lambda: np.zeros(0, np.float32))
    along_pair: np.ndarray = field(default_factory=lambda: np.zeros(0, np.float32))
    note: str = ""


@dataclass(frozen=True)
class CongruenceNow(SharedExtra):
    """The ``k`` neurons whose output the action head reads most, and the state's activation of each.
    Result: :class:`CongruenceNowResult` (congruence from the weights, fitted once per adapter)."""

    k: int = 16

    def hooks(self, adapter: ModelAdapter) -> list[str]:
        return [hk.mlp_post(l) for l in range(C.n_layers(adapter))] if C.has_mlp(adapter) else []

    def read(self, req: StateRequest, cache) -> CongruenceNowResult:
        from .congruence import neuron_congruence, top_rows

        ad = req.adapter
        if not C.has_mlp(ad):
            return CongruenceNowResult(note="This model has no MLP neurons, so there is no neuron congruence to show.")
        cong = fitted(ad, ("congruence",), lambda: neuron_congruence(ad))
        L, N, A = cong.out_action.shape
        flat = cong.out_action.reshape(L * N, A)
        top = top_rows(flat, min(int(self.k), L * N))
        pos = ad.layout.prediction_position
        acts = np.concatenate([C.np32(cache[hk.mlp_post(l)][0, pos]) for l in range(L)])[top]
        a, b = req.pair
        push = flat[top, a] - (flat[top, b] if b is not None else 0.0)
        ids: list[ComponentId] = [neuron_id(int(i) // N, int(i) % N) for i in top]
        return CongruenceNowResult(ids, [c.name for c in ids], flat[top], cong.action_names, acts,
                                   (acts * push).astype(np.float32))


# ---- NMF ------------------------------------------------------------------------------------------------
@dataclass
class NMFNowResult:
    """What the NMF tab draws.

    Attributes:
        nmf: the :class:`~dtwidgets.analysis.nmf.NMFResult` over the reference states; cards: the
            :class:`~dtwidgets.widgets.FeatureBrowserView` traits of its components.
        weights: ``[K]`` the state shown's non-negative weight on each component (activation units);
            order: ``[K]`` components by weight, largest first; labels: ``K`` names ``"component 3"``;
            residual: the relative error ``|x' − w H| / |x'|`` of that fit.
        source: which reference states; note: why nothing is shown.
    """

    nmf: Any = None
    cards: dict = field(default_factory=dict)
    weights: np.ndarray = field(default_factory=lambda: np.zeros(0, np.float32))
    order: np.ndarray = field(default_factory=lambda: np.zeros(0, np.int64))
    labels: list = field(default_factory=list)
    residual: float = math.nan
    source: str = ""
    note: str = ""


@dataclass(frozen=True)
class NMFNow(SharedExtra):
    """NMF of ``hook`` (one of :func:`nmf_hooks`) at the last state token over ``reference`` into
    ``n_components`` parts (at most one per reference state), and the state's weight on each.
    Result: :class:`NMFNowResult`."""

    hook: str
    reference: ReferenceStates | None = None
    n_components: int = 6
    seed: int = 0

    def hooks(self, adapter: ModelAdapter) -> list[str]:
        return [self.hook] if self.hook in nmf_hooks(adapter) else []

    def read(self, req: StateRequest, cache) -> NMFNowResult:
        from ..sae.hooks import flat, hook_site

        ad = req.adapter
        if not self.hooks(ad):
            return NMFNowResult(note=f"{self.hook} is not a hook NMF reads on this model; expected one of {nmf_hooks(ad)}")
        if self.reference is None or len(self.reference) < 2:
            return NMFNowResult(note="NMF needs at least 2 reference states: take a step, or pass "
                                     "reference_windows= to the Explorer")
        K = min(int(self.n_components), len(self.reference))
        fit, cards = fitted(ad, ("nmf", self.hook, self.reference.key, K, int(self.seed)), lambda: _fit_nmf(ad, self, K))
        site = hook_site(ad, self.hook)
        x = flat(cache[self.hook], site)[0, C.last_token_position(ad, "state")].double().cpu().numpy()
        w, rel = state_weights(fit, x)
        return NMFNowResult(fit, cards, w, np.argsort(-w, kind="stable"), [f"component {k}" for k in range(K)], rel,
                            self.reference.source)


def state_weights(fit, x: np.ndarray) -> tuple[np.ndarray, float]:
    """``(w [K] float32, relative error)``: the non-negative least-squares weights of one activation ``x``
    ``[D]`` on the components of ``fit`` (an :class:`~dtwidgets.analysis.nmf.NMFResult`), ``x`` split into
    ``[max(x, 0), max(-x, 0)]`` when the fit was."""
    from scipy.optimize import nnls

    x = np.asarray(x, np.float64).reshape(-1)
    xs = np.concatenate([np.maximum(x, 0), np.maximum(-x, 0)]) if fit.split else x
    H = np.asarray(fit.components, np.float64)
    if H.shape[1] != xs.shape[0]:
        raise ValueError(f"x: expected an activation of size {H.shape[1] // (2 if fit.split else 1)} for this NMF, "
                         f"got {x.shape[0]}")
    w, res = nnls(H.T, xs)
    n = float(np.linalg.norm(xs))
    return w.astype(np.float32), float(res / n) if n > 0 else 0.0


@torch.inference_mode()
def _fit_nmf(adapter: ModelAdapter, ext: NMFNow, K: int):
    """``(NMFResult, FeatureBrowser traits)`` of ``ext.hook`` over ``ext.reference`` (actions: the model's)."""
    from ..sae.hooks import activations_at, hook_site
    from ..sae.store import ActivationStore
    from .nmf import activation_nmf, nmf_browser_data

    assert ext.reference is not None
    w = ext.reference.windows
    pos = C.last_token_position(adapter, "state")
    acts = activations_at(adapter, w, hook_site(adapter, ext.hook), pos)
    pred = adapter.forward(w).argmax(-1).cpu().numpy().astype(np.int64)
    store = ActivationStore(acts, ext.hook, "state", pos, np.zeros(len(pred), np.int64),
                            w.timesteps[:, -1].cpu().numpy().astype(np.int64), w.rtgs[:, -1].cpu().numpy(),
                            w.observations[:, -1].cpu().numpy(), pred,
                            {"source": ext.reference.source, "actions": "the model's predicted action"})
    fit = activation_nmf(store, K, seed=int(ext.seed))
    parts = "positive/negative parts of " if fit.split else ""
    cards = nmf_browser_data(adapter, fit, store, title=f"{K} NMF components of {parts}{ext.hook}")
    return fit, cards

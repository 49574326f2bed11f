"""The state map: how the state token moves per unit of each observation feature (the one owner).

Every analysis that reads the observation side of a model through "the state embedding" (state-embedding
projection, QK / OV maps, head SVD, virtual weights, probe and SAE observation maps, channel use)
gets its matrix here, never from ``adapter.W_state`` directly:

* a **linear** state encoder (the adapter's ``W_state`` ``[d_model, n_features]`` is a tensor): the
  map is ``W_state`` itself, the same at every observation (``exact=True``);
* a **nonlinear** encoder (an MLP, a CNN: ``W_state`` is ``None`` or absent, and the adapter has
  ``embed_state(features [N, n_features]) -> [N, d_model]``): the map is the encoder's Jacobian
  ``d embed_state / d features`` at the observation shown (``exact=False``: a first-order reading,
  true for small changes of that observation only). For a linear encoder the Jacobian is ``W_state``.

An adapter with neither raises :class:`~dtwidgets.adapters.UnsupportedByModel` naming the analysis.
"""
from __future__ import annotations

from typing import NamedTuple

import torch

from ..adapters.device import device_of
from ..adapters.protocol import ModelAdapter, UnsupportedByModel


class StateMap(NamedTuple):
    """``E`` ``[n_features, d_model]``: row ``i`` is the change of the state token (no time term) per unit
    of flattened observation feature ``i``; ``exact``: True for a linear encoder (``E = W_state.T``);
    ``note``: one line saying which, for a panel or a result field."""

    E: torch.Tensor
    exact: bool
    note: str


LINEAR_NOTE = "exact: linear state embedding W_state"
JACOBIAN_NOTE = "nonlinear state encoder: its Jacobian at the observation shown (a first-order reading)"


def linear_state_weights(adapter: ModelAdapter) -> torch.Tensor | None:
    """``W_state`` ``[d_model, n_features]`` float when the adapter has a linear state embedding, else None
    (``W_state`` absent, ``None``, or a property that raises)."""
    try:
        W = getattr(adapter, "W_state", None)
    except Exception:  # noqa: BLE001  a property that raises means "no linear map"
        W = None
    return None if W is None else torch.as_tensor(W, device=device_of(adapter)).detach().float()


def state_jacobian(adapter: ModelAdapter, obs) -> torch.Tensor:
    """``d embed_state / d features`` at one observation ``obs`` ``[W, H, C]``: ``[d_model, n_features]``.

    Uses the adapter's ``embed_state`` (features -> state token without the time term), differentiated
    with ``torch.func.jacrev`` outside inference mode (the encoder's parameters are not changed)."""
    fn = getattr(adapter, "embed_state", None)
    if fn is None:
        raise UnsupportedByModel("the state Jacobian needs the adapter's embed_state(features [N, n_features]) -> "
                                 "[N, d_model]; this adapter has neither W_state nor embed_state")
    o = torch.as_tensor(obs, device="cpu")  # observation data: the adapter moves its features
    if o.ndim != 3:
        raise ValueError(f"expected one observation [W, H, C] for the state Jacobian, got shape {tuple(o.shape)}")
    with torch.inference_mode(False), torch.enable_grad():
        x = adapter.features(o[None]).detach().float().clone()[0]  # [n_features], a normal (non-inference) tensor

        def f(v):
            return fn(v[None])[0]

        J = torch.func.jacrev(f)(x)  # [d_model, n_features]
    return J.detach()


def state_map(adapter: ModelAdapter, obs=None, *, analysis: str = "this analysis") -> StateMap:
    """The state map of ``adapter`` (see the module docstring) at observation ``obs`` ``[W, H, C]``.

    ``obs`` is needed only for a nonlinear encoder; without it that raises
    :class:`~dtwidgets.adapters.UnsupportedByModel` naming ``analysis`` and saying what to pass."""
    W = linear_state_weights(adapter)
    if W is not None:
        return StateMap(W.T, True, LINEAR_NOTE)
    if getattr(adapter, "embed_state", None) is None:
        raise UnsupportedByModel(f"{analysis} reads the state embedding, but this model has neither a linear "
                                 "W_state nor embed_state(features) to differentiate; add embed_state to the adapter")
    if obs is None:
        raise UnsupportedByModel(f"{analysis}: this model's state encoder is nonlinear (no W_state), so the map "
                                 "depends on the observation; pass obs= (the observation shown, [W, H, C]) to read "
                                 "the encoder's Jacobian there, or window= where the analysis takes one")
    return StateMap(state_jacobian(adapter, obs).T.float(), False, JACOBIAN_NOTE)


def state_embeddings(adapter: ModelAdapter, observations) -> torch.Tensor:
    """State tokens without the time term ``[N, d_model]`` of observations ``[N, W, H, C]``: ``features @ W_state.T``
    for a linear embedding, ``embed_state(features)`` for a nonlinear encoder (exact either way)."""
    feats = adapter.features(torch.as_tensor(observations, device="cpu")).float().to(device_of(adapter))
    W = linear_state_weights(adapter)
    if W is not None:
        return feats @ W.T
    fn = getattr(adapter, "embed_state", None)
    if fn is None:
        raise UnsupportedByModel("the state embeddings of observations need W_state or embed_state(features); "
                                 "this adapter has neither")
    with torch.no_grad():
        return fn(feats).detach().float()


def window_observation(window, row: int = 0, position: int = -1):
    """The observation ``[W, H, C]`` of ``window`` at step ``position`` of ``row`` (the state shown)."""
    return window.observations[row, position]

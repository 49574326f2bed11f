"""Hand-written adapters of DTs with a NONLINEAR state encoder (no linear ``W_state``).

``MLPStateAdapter``: ``W_state = None`` and ``embed_state(f) = W2 tanh(W1 f + b1) + b2``.
``CNNStateAdapter``: no ``W_state`` attribute at all; ``embed_state`` reshapes the flattened
``(channel, x, y)`` features to an image ``[N, C, W, H]`` and runs two convolutions and a linear
readout. Both reuse a random DT's backbone, RTG / time / action embeddings and head (the way a user
binds their own DT) and place their tokens where the layout says (:class:`MinimalAdapter`).
"""
from __future__ import annotations

import functools

import torch
from torch import nn

from dtwidgets.adapters import ObservationSchema
from dtwidgets.model.checkpoint import state_dict_of
from tests.analysis.helpers import CONFIGS, make_adapter
from tests.protocol.minimal_adapter import MinimalAdapter, minimal_from


class _EncoderAdapter(MinimalAdapter):
    """A :class:`MinimalAdapter` whose state token is ``encoder(features)`` (padded steps: zeros)."""

    def __init__(self, *, encoder: nn.Module, **kw):
        super().__init__(**kw)
        self._encoder = encoder.eval()

    def embed_state(self, features: torch.Tensor) -> torch.Tensor:
        """``[N, n_features]`` -> ``[N, d_model]`` (differentiable)."""
        return self._encoder(torch.as_tensor(features).float())

    def _state_tokens(self, feats: torch.Tensor, real: torch.Tensor) -> torch.Tensor:
        B, T, F = feats.shape
        return self._encoder(feats.reshape(B * T, F)).reshape(B, T, -1) * real[..., None]


class MLPStateAdapter(_EncoderAdapter):
    W_state = None  # a nonlinear encoder: no linear map


class CNNStateAdapter(_EncoderAdapter):
    @property
    def W_state(self):  # absent: hasattr(adapter, "W_state") is False
        raise AttributeError("a CNN state encoder has no linear W_state")


class MLPEncoder(nn.Module):
    def __init__(self, n_features: int, d_model: int, hidden: int = 48, seed: int = 0):
        super().__init__()
        torch.manual_seed(seed)
        self.l1, self.l2 = nn.Linear(n_features, hidden), nn.Linear(hidden, d_model)
        with torch.no_grad():
            self.l1.weight.mul_(3.0)  # tanh well away from linear on codes 0..10

    def forward(self, f):
        return self.l2(torch.tanh(self.l1(f)))


class CNNEncoder(nn.Module):
    """``[N, C*W*H]`` (channel, x, y order) -> image ``[N, C, W, H]`` -> conv 3x3 (8) -> ReLU -> conv 3x3 (4)
    -> ReLU -> linear -> ``[N, d_model]``."""

    def __init__(self, shape: tuple[int, int, int], d_model: int, seed: int = 0):
        super().__init__()
        torch.manual_seed(seed)
        self.shape = shape  # (C, W, H)
        C, W, H = shape
        self.c1, self.c2 = nn.Conv2d(C, 8, 3, padding=1), nn.Conv2d(8, 4, 3)
        self.out = nn.Linear(4 * (W - 2) * (H - 2), d_model)

    def forward(self, f):
        x = f.reshape(f.shape[0], *self.shape)
        x = torch.relu(self.c2(torch.relu(self.c1(x))))
        return self.out(x.flatten(1))


@functools.lru_cache(maxsize=None)
def shipped(name: str):
    """A random DT of ``tests.analysis.helpers.CONFIGS[name]`` (its backbone and embeddings are reused)."""
    return make_adapter(**CONFIGS[name])


def encoder_adapter(kind: str, name: str = "lnpre-8tok", *, schema: ObservationSchema | None = None):
    """``(adapter, encoder, shipped DT)``: an MLP (``kind="mlp"``) or CNN (``"cnn"``) state-encoder adapter on
    the backbone of the random DT ``name``; ``schema``: the observation it reads (default: the DT's own)."""
    base = shipped(name)
    c, schema = base.cfg, schema or base.schema
    d = c.d_model
    if kind == "mlp":
        enc, cls = MLPEncoder(schema.n_features, d), MLPStateAdapter
    else:
        enc, cls = CNNEncoder((schema.n_channels, *schema.grid_shape), d), CNNStateAdapter
    ad = minimal_from(state_dict_of(base.model), backbone=base.backbone, layout=base.layout, schema=schema,
                      action_names=c.action_names, rtg_range=c.rtg_range, max_timestep=c.max_timestep,
                      one_hot=c.one_hot_obs, n_layers=c.n_layers, cls=cls, encoder=enc)
    return ad, enc, base

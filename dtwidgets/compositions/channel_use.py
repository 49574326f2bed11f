"""Which observation channels a model never uses, so channel maps can say so instead of drawing noise.

A channel is *unused* when its state-embedding columns are ≈ 0 (inputs that were always 0 in training
decay there, e.g. the state channel of Dynamic-Obstacles, which has no doors), or when its input was 0
in every observation seen so far in this session (the model cannot read it here).
"""
from __future__ import annotations

import numpy as np

from ..analysis.state_map import linear_state_weights


class ChannelUse:
    """Tracks the unused channels of ``adapter``'s observation maps across the windows seen.

        use = ChannelUse(adapter)
        use.update(window)        # -> sorted list of unused channel indices
        heatmap.unused = use.unused
    """

    def __init__(self, adapter):
        self.adapter = adapter
        W = linear_state_weights(adapter)  # [d, n_features], None for a nonlinear encoder (it may read any channel)
        norms = W.norm(dim=0).numpy() if W is not None else np.ones(adapter.schema.n_features, np.float32)
        nz = adapter.schema.to_maps(norms > 1e-6 * float(norms.max()))  # [C, W, H] column norm above ~0
        self.weighted = nz.reshape(nz.shape[0], -1).any(1)  # [C]: the embedding reads the channel
        self.seen = np.zeros_like(self.weighted)  # [C]: a non-zero input was seen
        self.unused: list[int] = []

    def update(self, window) -> list[int]:
        """Add ``window``'s observations (every row and step) to those seen; returns :attr:`unused`."""
        obs = window.observations.reshape(-1, *window.observations.shape[-3:])
        active = self.adapter.schema.to_maps(np.asarray(self.adapter.features(obs) != 0).any(0))  # [C, W, H]
        self.seen |= active.reshape(active.shape[0], -1).any(1)
        self.unused = [int(c) for c in np.flatnonzero(~(self.weighted & self.seen))]
        return self.unused

    def names(self) -> list[str]:
        """Names of the unused channels."""
        names = self.adapter.schema.channel_names
        return [str(names[c]) for c in self.unused]

"""AttentionView: attention patterns, one heatmap per head."""

from __future__ import annotations

import numpy as np
import traitlets

from ._arrays import SyncedArray
from ._base import DTWidget
from ._traits import Labels, fill_steps

__all__ = ["AttentionView"]


class AttentionView(DTWidget):
    """Attention patterns, one heatmap per head (rows = queries, columns = keys)."""

    _module = "attention_view"
    patterns = SyncedArray((2, 3), "float32", "[heads, Q, K]")
    """float32 [N_heads_total, Q, K]: probabilities in [0, 1] use a white-to-purple scale (1 = darkest); any
    negative value (e.g. raw scores) switches to the diverging scale. A 2-D [Q, K] input becomes one head."""
    head_labels = Labels().tag(sync=True)
    """list[str] (len N_heads_total), e.g. "L0H1" (see :meth:`labels_for`)."""
    token_labels = Labels().tag(sync=True)
    """list[str] (len Q = K), e.g. "R1", "s1", "a1"; used for both queries and keys (templates when ``steps`` is set)."""
    steps = SyncedArray(1, "int16", "[T]")
    """int16 [T]: episode steps of tokens; ``token_labels`` are then templates whose ``{k}`` shows the episode
    step of token ``k`` (:func:`~dtwidgets.widgets._traits.fill_steps`); empty = labels as they are.
    :attr:`shown_token_labels` are the texts as shown."""
    selected_head = traitlets.CInt(-1, min=-1).tag(sync=True)
    """int: -1 shows all heads as small multiples (click one to select it); i >= 0 shows head i large with
    token labels. Synced both ways."""

    @property
    def shown_token_labels(self) -> list[str]:
        """Token labels as shown (``steps`` filled in)."""
        return [fill_steps(t, self.steps) for t in self.token_labels]

    @traitlets.validate("patterns")
    def _patterns_3d(self, proposal: dict) -> np.ndarray:
        v = proposal["value"]
        return v[None] if v.ndim == 2 else v

    @staticmethod
    def labels_for(n_layers: int, n_heads: int) -> list[str]:
        """["L0H0", "L0H1", ...] for layer-major flattened heads."""
        return [f"L{layer}H{h}" for layer in range(n_layers) for h in range(n_heads)]

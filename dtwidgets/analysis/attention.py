"""Attention patterns of every head, labelled with head names and token labels."""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch

from ..adapters.protocol import ModelAdapter
from ..adapters.window import TrajectoryWindow
from . import _common as C
from ..adapters import hooks as hk


def attention_hooks(adapter: ModelAdapter, scores: bool = False) -> list[str]:
    L = C.n_layers(adapter)
    names = [hk.pattern(l) for l in range(L)]
    # scores are recomputed from q and k: on TL 4.3 bridges the cached ``hook_attn_scores`` holds the
    # post-softmax pattern, not the scores
    return names + ([f(l) for l in range(L) for f in (hk.hook_q, hk.hook_k)] if scores else [])


@dataclass
class AttentionPatterns:
    """Attention of every head for one window row.

    Attributes:
        values: ``[L*H, P, P]`` softmax pattern, ``values[i, query, key]`` (rows sum to 1; causal,
            so entries above the diagonal are 0).
        head_labels: ``L*H`` names ``"L0H0"`` ...; token_labels: ``P`` labels ``"R₁", "s₁", "a₁"`` ...
        prediction_position: the query position where the action is read.
        scores: ``[L*H, P, P]`` pre-softmax scores ``q·k / sqrt(d_head)`` (from ``hook_q``/``hook_k``;
            masked entries are NaN), or None.
    """

    values: np.ndarray
    head_labels: list[str]
    token_labels: list[str]
    prediction_position: int
    scores: np.ndarray | None = None

    def from_prediction(self) -> np.ndarray:
        """``[L*H, P]`` attention paid by the prediction token to every key."""
        return self.values[:, self.prediction_position]

    def head(self, label: str) -> np.ndarray:
        return self.values[self.head_labels.index(label)]


@torch.inference_mode()
def attention_patterns(adapter: ModelAdapter, window: TrajectoryWindow, *, cache=None, row: int = 0,
                       scores: bool = False) -> AttentionPatterns:
    """Every head's attention pattern ``[L*H, P, P]`` (from ``cache`` if given, else one forward)."""
    if cache is None:
        _, cache = adapter.run_with_cache(window, names_filter=attention_hooks(adapter, scores))
    L = C.n_layers(adapter)
    pat = torch.cat([cache[hk.pattern(l)][row] for l in range(L)])
    res = AttentionPatterns(values=C.np32(pat), head_labels=C.head_labels(adapter),
                            token_labels=adapter.layout.labels(), prediction_position=adapter.layout.prediction_position)
    if scores:
        s = torch.cat([torch.einsum("qhe,khe->hqk", cache[hk.hook_q(l)][row],
                                    cache[hk.hook_k(l)][row]) for l in range(L)]) / C.d_head(adapter) ** 0.5
        P = s.shape[-1]
        s[:, ~torch.tril(torch.ones(P, P, dtype=torch.bool, device=s.device))] = float("nan")
        res.scores = C.np32(s)
    return res

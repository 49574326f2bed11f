"""Two models side by side on the same states (e.g. a behavioural clone and its teacher).

``action_agreement(a, b, traj)`` is the fraction of recorded steps where the greedy actions agree;
``compare_models(a, b, windows)`` computes the same attribution and single-component ablation views
for both models on the same windows and says which components match. Both models are reached only
through the :class:`~dtwidgets.adapters.ModelAdapter` protocol.
"""
from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
import torch

from . import _common as C
from .attribution import attribution_hooks, direct_contributions


@torch.inference_mode()
def action_agreement(a, b, traj) -> float:
    """Fraction of ``traj``'s steps where the two models' greedy actions agree (each model on every
    recorded step's window, conditioned as :func:`~dtwidgets.training.clone.teacher_logits` does)."""
    from ..training.clone import teacher_logits

    return float((teacher_logits(a, traj).argmax(1) == teacher_logits(b, traj).argmax(1)).mean())


@dataclass
class ModelComparison:
    """Two models on the same S windows, along the preference of ``pair_label`` (``"a − b"``).

    Attributes:
        labels: N components present in both models (attribution order).
        attribution: ``[2, S, N]`` direct logit attribution of each model.
        ablation_labels: K components; ablation: ``[2, S, K]`` change of the preference when each is
            zero-ablated alone.
        agreement: fraction of windows with the same greedy action.
        attribution_corr, ablation_corr: ``[N]`` / ``[K]`` Pearson correlation across windows of the
            two models' values per component (NaN when constant).
        matches: ``{component: bool}`` — correlation >= ``threshold`` on both views where defined.
    """

    names: tuple[str, str]
    pair_label: str
    labels: list[str]
    attribution: np.ndarray
    ablation_labels: list[str]
    ablation: np.ndarray
    agreement: float
    attribution_corr: np.ndarray
    ablation_corr: np.ndarray
    matches: dict = field(default_factory=dict)

    def summary(self) -> str:
        ok = [c for c, m in self.matches.items() if m]
        return (f"{self.names[0]} vs {self.names[1]}: greedy actions agree on {self.agreement:.1%} of the states; "
                f"components that match: {', '.join(ok) or 'none'}; differ: "
                f"{', '.join(c for c, m in self.matches.items() if not m) or 'none'}")


def _corr(x, y) -> np.ndarray:
    x = x - x.mean(0)
    y = y - y.mean(0)
    den = np.sqrt((x ** 2).sum(0) * (y ** 2).sum(0))
    with np.errstate(invalid="ignore", divide="ignore"):
        return np.where(den > 1e-12, (x * y).sum(0) / den, np.nan)


@torch.inference_mode()
def _views(adapter, win, a, b):
    from ..analysis.ablation import ablation_hooks

    _, cache = adapter.run_with_cache(win, names_filter=attribution_hooks(adapter, per_source=False))
    vals, labels, _ = direct_contributions(adapter, cache, adapter.layout.prediction_position, a, b)
    comps = C.head_labels(adapter) + C.mlp_labels(adapter)
    S, K = win.batch_size, len(comps)
    rows = [(s * K + k, comp) for s in range(S) for k, comp in enumerate(comps)]
    lg = adapter.run_with_hooks(win.repeat(K), fwd_hooks=ablation_hooks(adapter, rows, S * K)).float()
    base = adapter.forward(win).float()
    ia, ib = C.action_index(adapter, a), C.action_index(adapter, b)
    delta = (lg[:, ia] - lg[:, ib]).reshape(S, K) - (base[:, ia] - base[:, ib])[:, None]
    return C.np32(vals.T), labels, C.np32(delta), comps, C.np32(base).argmax(1)


def compare_models(a, b, windows, pair=None, names=("teacher", "clone"), threshold: float = 0.8) -> ModelComparison:
    """Attribution and single-component ablation of two models on the same windows, and which
    components match (same-labelled components whose values correlate across windows)."""
    pair = pair or (a.action_names[-1], a.action_names[0])
    va, la, da, ca, ga = _views(a, windows, *pair)
    vb, lb, db, cb, gb = _views(b, windows, *pair)
    labels = [l for l in la if l in lb]
    ia, ib = [la.index(l) for l in labels], [lb.index(l) for l in labels]
    comps = [c for c in ca if c in cb]
    ka, kb = [ca.index(c) for c in comps], [cb.index(c) for c in comps]
    attr = np.stack([va[:, ia], vb[:, ib]])
    abl = np.stack([da[:, ka], db[:, kb]])
    ac, bc = _corr(attr[0], attr[1]), _corr(abl[0], abl[1])
    matches = {}
    for j, comp in enumerate(comps):
        vals = [bc[j]] + ([ac[labels.index(comp)]] if comp in labels else [])
        vals = [v for v in vals if np.isfinite(v)]
        matches[comp] = bool(vals) and min(vals) >= threshold
    return ModelComparison(tuple(names), C.pair_label(a, *pair), labels, attr, comps, abl,
                           float((ga == gb).mean()), ac, bc, matches)

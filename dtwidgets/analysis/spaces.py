"""Spaces: principal components of the embeddings and of any hook's activations.

:func:`embedding_pca` reads the embedding vectors through the protocol (``W_state`` columns or the
state embeddings of given observations, ``embed_rtg`` over an RTG grid, ``embed_time`` over timesteps,
``embed_action`` over the actions); :func:`activation_pca` caches one hook at one token position over
the rows of a window. Both centre the ``[N, D]`` rows and take the SVD ``X - mean = U S Vᵀ``:

* ``components`` ``[k, D]`` = the first ``k`` rows of ``Vᵀ`` (unit vectors; each one's sign is fixed so
  that its largest-magnitude entry is positive),
* ``explained_variance`` ``[r]`` = ``S² / (N - 1)`` for every component (the scree), ``ratio`` its share,
* ``coordinates`` ``[N, k]`` = ``(X - mean) · componentsᵀ`` (2-D / 3-D scatter),
* ``loadings`` ``[D, k]`` = ``componentsᵀ · sqrt(explained_variance[:k])`` (as in factor analysis).

Points are coloured by a concept: pass ``colour`` (``[N]`` numbers, or text labels such as
:meth:`dtwidgets.probes.ConceptTable.labels` gives).
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch

from ..adapters.device import device_of
from ..adapters.protocol import ModelAdapter
from ..adapters.window import TrajectoryWindow

EMBEDDING_KINDS = ("state", "rtg", "time", "action")


@dataclass
class PCAResult:
    """PCA of ``N`` points in a ``D``-dimensional space.

    Attributes:
        coordinates: ``[N, k]`` the points on the first ``k`` components (input units).
        components: ``[k, D]`` unit principal directions; mean: ``[D]`` the centre removed.
        explained_variance: ``[r]`` variance along every component (``r = min(N, D)``), input units²;
            explained_variance_ratio: ``[r]`` its share of the total (sums to 1).
        loadings: ``[D, k]`` ``componentsᵀ · sqrt(variance)``.
        point_labels: ``N`` names of the points; dim_labels: ``D`` names of the input dimensions.
        colour: ``[N]`` float values to colour by (codes into ``colour_classes`` for a categorical
            concept; NaN where unknown) or None; colour_classes: class names (empty: scalar values).
        space: what was decomposed (``"embedding:time"``, a hook name and position ...).
    """

    coordinates: np.ndarray
    components: np.ndarray
    mean: np.ndarray
    explained_variance: np.ndarray
    explained_variance_ratio: np.ndarray
    loadings: np.ndarray
    point_labels: list[str]
    dim_labels: list[str]
    colour: np.ndarray | None
    colour_classes: tuple[str, ...]
    space: str

    def project(self, X) -> np.ndarray:
        """``[M, k]`` coordinates of new points ``X`` ``[M, D]`` (or one ``[D]``) on the same components:
        ``(X - mean) · componentsᵀ`` (float64 product, float32 result)."""
        X = np.asarray(X.detach().cpu() if torch.is_tensor(X) else X, dtype=np.float64)
        X = X[None] if X.ndim == 1 else X
        if X.ndim != 2 or X.shape[1] != self.mean.shape[0]:
            raise ValueError(f"X: expected [M, {self.mean.shape[0]}] points in this PCA's space, got shape {X.shape}")
        return ((X - self.mean.astype(np.float64)) @ self.components.T.astype(np.float64)).astype(np.float32)


def colour_values(colour, n: int) -> tuple[np.ndarray | None, tuple[str, ...]]:
    """``colour`` (None, ``[n]`` numbers or ``[n]`` text labels) -> ``(values [n] float32 | None, classes)``:
    text labels become codes into the sorted class names."""
    if colour is None:
        return None, ()
    arr = np.asarray(colour)
    if arr.ndim != 1 or arr.shape[0] != n:
        raise ValueError(f"colour: expected one value per point ([{n}]), got shape {arr.shape}")
    if arr.dtype.kind in "biuf":
        return arr.astype(np.float32), ()
    texts = [str(v) for v in arr.tolist()]
    classes = tuple(sorted(set(texts)))
    index = {c: i for i, c in enumerate(classes)}
    return np.array([index[t] for t in texts], dtype=np.float32), classes


def pca(X, n_components: int = 3, *, point_labels=None, dim_labels=None, colour=None, space: str = "") -> PCAResult:
    """PCA of the rows of ``X`` ``[N, D]`` (float64 SVD) keeping ``n_components`` coordinates."""
    X = np.asarray(X.detach().cpu() if torch.is_tensor(X) else X, dtype=np.float64)
    if X.ndim != 2 or X.shape[0] < 2 or not np.isfinite(X).all():
        raise ValueError(f"X: expected a finite [N, D] array with N >= 2, got shape {X.shape}")
    N, D = X.shape
    k = int(n_components)
    if not 1 <= k <= min(N, D):
        raise ValueError(f"n_components: expected 1..{min(N, D)} for {N} points in {D} dimensions, got {n_components}")
    mean = X.mean(0)
    U, S, Vt = np.linalg.svd(X - mean, full_matrices=False)
    signs = np.sign(Vt[np.arange(len(S)), np.abs(Vt).argmax(1)])
    Vt = Vt * np.where(signs == 0, 1.0, signs)[:, None]
    var = S ** 2 / (N - 1)
    total = var.sum()
    ratio = var / total if total > 0 else np.zeros_like(var)
    comps = Vt[:k]
    c, classes = colour_values(colour, N)
    return PCAResult(coordinates=((X - mean) @ comps.T).astype(np.float32), components=comps.astype(np.float32),
                     mean=mean.astype(np.float32), explained_variance=var.astype(np.float32),
                     explained_variance_ratio=ratio.astype(np.float32),
                     loadings=(comps.T * np.sqrt(var[:k])).astype(np.float32),
                     point_labels=list(point_labels) if point_labels is not None else [str(i) for i in range(N)],
                     dim_labels=list(dim_labels) if dim_labels is not None else [f"d{i}" for i in range(D)],
                     colour=c, colour_classes=classes, space=space)


def embedding_vectors(adapter: ModelAdapter, kind: str, values=None) -> tuple[torch.Tensor, list[str]]:
    """``(vectors [N, d_model], labels)`` of one embedding (see :func:`embedding_pca` for ``values``)."""
    if kind == "state":
        from .state_map import linear_state_weights, state_embeddings

        if values is None:
            W = linear_state_weights(adapter)
            if W is None:
                from ..adapters.protocol import UnsupportedByModel

                raise UnsupportedByModel("embedding_pca('state') without values reads the columns of a linear W_state; "
                                         "this model's state encoder is nonlinear: pass values= observations [N, W, H, C] "
                                         "(their state embeddings are used)")
            return W.T, adapter.schema.feature_labels()
        emb = state_embeddings(adapter, np.asarray(values))
        return emb, [f"state {i}" for i in range(emb.shape[0])]
    if kind == "rtg":
        r = np.linspace(*adapter.rtg_range, 51) if values is None else np.asarray(values, dtype=np.float64).reshape(-1)
        return adapter.embed_rtg(torch.as_tensor(r, dtype=torch.float32, device=device_of(adapter))).detach(), [f"rtg {v:.3g}" for v in r]
    if kind == "time":
        t = np.arange(adapter.max_timestep + 1) if values is None else np.asarray(values).reshape(-1).astype(np.int64)
        if t.size and (t.min() < 0 or t.max() > adapter.max_timestep):
            raise ValueError(f"values: expected timesteps in [0, {adapter.max_timestep}], got [{t.min()}, {t.max()}]")
        return adapter.embed_time(torch.as_tensor(t, device=device_of(adapter))).detach(), [f"t={v}" for v in t]
    if kind == "action":
        idx = list(range(adapter.n_actions)) if values is None else [adapter.action_index(v) for v in values]
        names = [adapter.action_names[i] for i in idx]
        return adapter.embed_action(torch.as_tensor(idx, dtype=torch.long, device=device_of(adapter))).detach(), names
    raise ValueError(f"kind: expected one of {EMBEDDING_KINDS}, got {kind!r}")


@torch.inference_mode()
def embedding_pca(adapter: ModelAdapter, kind: str, values=None, n_components: int = 3, colour=None) -> PCAResult:
    """PCA of one embedding's vectors in the residual space (``D = d_model``).

    Args:
        kind: ``"state"`` (default points: the ``n_features`` columns of ``W_state``, labelled by feature;
            or, with ``values`` = observations ``[N, W, H, C]``, their state embeddings ``W_state · features``),
            ``"rtg"`` (``values``: RTGs, default 51 in ``rtg_range``), ``"time"`` (``values``: timesteps,
            default all) or ``"action"`` (``values``: action names / indices, default all).
        colour: optional ``[N]`` values or labels to colour the points by.
    """
    vecs, labels = embedding_vectors(adapter, kind, values)
    k = min(int(n_components), *vecs.shape)
    return pca(vecs, k, point_labels=labels, dim_labels=[f"d{i}" for i in range(vecs.shape[1])], colour=colour,
               space=f"embedding:{kind}")


@torch.inference_mode()
def activation_pca(adapter: ModelAdapter, windows: TrajectoryWindow, hook: str, position: int | None = None,
                   n_components: int = 3, colour=None, point_labels=None) -> PCAResult:
    """PCA of ``hook``'s activation at token ``position`` (default: the prediction position) over the
    ``B`` rows of ``windows`` (``D`` = the activation's size at one position, e.g. ``d_model``, ``d_mlp``,
    or ``H * d_head`` for ``hook_z``, flattened head-major). ``hook``: a name from
    :mod:`dtwidgets.adapters.hooks` (``hooks.resid_post(0)``); ``colour``: optional ``[B]`` values or labels."""
    pos = adapter.layout.prediction_position if position is None else int(position)
    if not 0 <= pos < adapter.layout.n_tokens:
        raise ValueError(f"position: expected 0..{adapter.layout.n_tokens - 1}, got {position}")
    _, cache = adapter.run_with_cache(windows, names_filter=[hook])
    act = cache[hook]
    if act.dim() < 3 or act.shape[1] != adapter.layout.n_tokens:
        raise ValueError(f"hook: expected an activation with a token axis ([B, P, ...]), {hook!r} has shape "
                         f"{tuple(act.shape)}")
    X = act[:, pos].reshape(act.shape[0], -1).double()
    k = min(int(n_components), *X.shape)
    return pca(X, k, point_labels=point_labels, colour=colour, space=f"{hook}@{pos}")

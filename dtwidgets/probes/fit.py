"""Linear probes (scikit-learn) with episode-grouped cross-validation, baselines and control tasks.

Categorical concepts: ``StandardScaler`` + ``LogisticRegression``; scalar ones: ``StandardScaler`` +
``Ridge``. Folds are over episodes, never over steps: ``StratifiedGroupKFold`` for categorical concepts
(a rare class lands in as many test folds as its episodes allow), ``GroupKFold`` for scalars. A class
absent from a fold's train or test rows leaves that fold's AUC undefined (NaN), never an error.
Beside each score:

* the majority-class baseline (categorical; the train-fold mean for scalars, R² ≈ 0);
* a control task (Hewitt & Liang 2019): every distinct observation gets a random label drawn from
  the concept's label distribution (``control="type"``), or the labels are permuted
  (``control="shuffle"``); ``selectivity = score - control score``.

Scores: accuracy (categorical, the selectivity metric), ROC AUC (binary; macro one-vs-rest for more
classes) and R² (scalar). Directions are in the raw residual space of the probed site
(``[d_model]``, the convention of :mod:`dtwidgets.analysis`): the logistic/ridge weights divided by
the scaler's scale, so ``x · direction + intercept`` is the probe's decision value on an
unstandardised activation.
"""
from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

CONTROLS = ("type", "shuffle")


class ProbeUndefined(ValueError):
    """The concept cannot be probed on these steps (one class only, never defined, too few episodes);
    the message says why. Probe suites report such concepts instead of dropping them."""


@dataclass
class ProbeResult:
    """One probe of one concept at one site.

    Attributes:
        concept, site, kind: what was probed where (kind ``"categorical"`` or ``"scalar"``).
        score: mean test accuracy (categorical) or R² (scalar) over the folds.
        auc: mean test ROC AUC (categorical; NaN for scalars or single-class folds).
        baseline: majority-class accuracy (categorical) or 0 (scalar R² of the train mean).
        control_score: the same probe's score on the control task; selectivity = score - control.
        directions: ``[K, d_model]`` fitted on all rows (K = 1 for binary/scalar: towards the
            positive class / higher values; K = n_classes otherwise), raw residual units.
        intercepts: ``[K]`` so that ``x @ directions.T + intercepts`` is the decision value.
        dom_directions: ``[K, d_model]`` difference of means (class minus rest; above minus below
            the median for scalars).
        classes: class labels (categorical) of ``directions``' rows.
        n, n_groups: rows and episodes used.
    """

    concept: str
    site: tuple
    kind: str
    score: float
    auc: float
    baseline: float
    control_score: float
    directions: np.ndarray
    intercepts: np.ndarray
    dom_directions: np.ndarray
    classes: tuple = ()
    n: int = 0
    n_groups: int = 0
    fold_scores: list = field(default_factory=list)

    @property
    def selectivity(self) -> float:
        return float(self.score - self.control_score)

    def direction(self, cls=None, method: str = "fitted") -> np.ndarray:
        """``[d_model]`` direction for class ``cls`` (default: the positive/only row); ``method``
        ``"fitted"`` or ``"dom"`` (difference of means)."""
        if method not in ("fitted", "dom"):
            raise ValueError(f"expected method 'fitted' or 'dom', got {method!r}")
        rows = self.directions if method == "fitted" else self.dom_directions
        if cls is None:
            return rows[0]
        if len(rows) == 1:
            if str(cls) != str(self.classes[-1]):
                raise ValueError(f"binary probe of {self.concept!r}: its direction points to {self.classes[-1]!r}, "
                                 f"got class {cls!r}")
            return rows[0]
        if str(cls) not in map(str, self.classes):
            raise ValueError(f"expected a class of {self.concept!r} in {self.classes}, got {cls!r}")
        return rows[list(map(str, self.classes)).index(str(cls))]

    def metrics(self) -> dict:
        """The scores as a flat dict (for tables and hover text)."""
        return {"score": self.score, "auc": self.auc, "baseline": self.baseline, "control": self.control_score,
                "selectivity": self.selectivity, "n": self.n, "episodes": self.n_groups}


def _model(kind: str, C: float, alpha: float, seed: int):
    from sklearn.linear_model import LogisticRegression, Ridge
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import StandardScaler

    if kind == "categorical":
        return make_pipeline(StandardScaler(), LogisticRegression(C=C, max_iter=1000, random_state=seed))
    return make_pipeline(StandardScaler(), Ridge(alpha=alpha))


def _auc(y, proba, classes) -> float:
    """ROC AUC of the test rows whose class the model knows; NaN when fewer than 2 such classes."""
    from sklearn.metrics import roc_auc_score

    known = np.isin(y, classes)
    y, proba = y[known], proba[known]
    present = np.unique(y)
    if len(present) < 2:
        return float("nan")
    cols = np.isin(classes, present)
    p = proba[:, cols] / np.clip(proba[:, cols].sum(1, keepdims=True), 1e-12, None)
    if len(present) == 2:
        return float(roc_auc_score(y == present[1], p[:, 1]))
    return float(roc_auc_score(y, p, multi_class="ovr", average="macro", labels=classes[cols]))


def _folds(X, y, groups, kind: str, n_splits: int, seed: int):
    from sklearn.model_selection import GroupKFold, StratifiedGroupKFold

    import warnings

    if kind == "categorical":
        with warnings.catch_warnings():  # a rare class is expected here: its folds' AUC is NaN, said in the docs
            warnings.filterwarnings("ignore", message="The least populated class")
            return list(StratifiedGroupKFold(n_splits=n_splits, shuffle=True, random_state=seed).split(X, y, groups))
    return list(GroupKFold(n_splits=n_splits).split(X, y, groups))


def _cv_scores(X, y, groups, kind, n_splits, C, alpha, seed):
    """``(score, auc, baseline, fold scores)`` averaged over episode-grouped folds."""
    from sklearn.metrics import r2_score

    scores, aucs, bases = [], [], []
    for tr, te in _folds(X, y, groups, kind, n_splits, seed):
        if kind == "categorical":
            vals, counts = np.unique(y[tr], return_counts=True)
            bases.append(float(np.mean(y[te] == vals[np.argmax(counts)])))
            if len(vals) < 2:
                scores.append(bases[-1])
                aucs.append(float("nan"))
                continue
            m = _model(kind, C, alpha, seed).fit(X[tr], y[tr])
            scores.append(float(np.mean(m.predict(X[te]) == y[te])))
            aucs.append(_auc(y[te], m.predict_proba(X[te]), m.classes_))
        else:
            m = _model(kind, C, alpha, seed).fit(X[tr], y[tr])
            scores.append(float(r2_score(y[te], m.predict(X[te]))))
            bases.append(float(r2_score(y[te], np.full(len(te), y[tr].mean()))))
    with np.errstate(all="ignore"):
        auc = float(np.nanmean(aucs)) if aucs and np.isfinite(aucs).any() else float("nan")
    return float(np.mean(scores)), auc, float(np.mean(bases)), scores


def control_labels(y, observation_ids, mode: str, seed: int) -> np.ndarray:
    """Control-task labels: one random label per distinct observation drawn from ``y``'s empirical
    distribution (``"type"``), or ``y`` permuted (``"shuffle"``)."""
    rng = np.random.default_rng(seed)
    if mode == "shuffle":
        return rng.permutation(y)
    if mode != "type":
        raise ValueError(f"expected control in {CONTROLS}, got {mode!r}")
    if observation_ids is None:
        raise ValueError("control='type' needs observation ids (one per distinct observation)")
    _, inv = np.unique(observation_ids, return_inverse=True)
    per_type = rng.choice(y, size=inv.max() + 1, replace=True)
    return per_type[inv]


def _directions(X, y, kind, C, alpha, seed):
    m = _model(kind, C, alpha, seed).fit(X, y)
    scaler, est = m[0], m[-1]
    scale = np.where(scaler.scale_ > 0, scaler.scale_, 1.0)
    W = np.atleast_2d(est.coef_) / scale
    b = np.atleast_1d(est.intercept_) - W @ scaler.mean_
    if kind == "categorical":
        classes = est.classes_
        groups = [classes[-1]] if len(classes) == 2 else list(classes)
        dom = np.stack([X[y == c].mean(0) - X[y != c].mean(0) for c in groups])
    else:
        hi = y > np.median(y)
        dom = (X[hi].mean(0) - X[~hi].mean(0))[None] if hi.any() and (~hi).any() else np.zeros((1, X.shape[1]))
    return W.astype(np.float32), b.astype(np.float32), dom.astype(np.float32)


def fit_probe(X, y, groups, kind: str = "categorical", *, observation_ids=None, control: str = "type",
              n_splits: int = 5, C: float = 0.1, alpha: float = 1.0, seed: int = 0, concept: str = "",
              site=(), class_names=()) -> ProbeResult:
    """Fit and cross-validate one probe.

    Args:
        X: ``[N, d_model]`` activations. y: ``[N]`` labels (int codes) or scalar values.
        groups: ``[N]`` episode of each row (folds never split an episode).
        kind: ``"categorical"`` (logistic regression) or ``"scalar"`` (ridge).
        observation_ids: ``[N]`` distinct-observation id per row (for ``control="type"``; default:
            one id per distinct row of ``X``).
        control: ``"type"`` (Hewitt & Liang) or ``"shuffle"``.
        n_splits: GroupKFold folds (reduced to the number of episodes when fewer).
        C, alpha: logistic inverse regularisation, ridge penalty.
    """
    from threadpoolctl import threadpool_limits

    with threadpool_limits(1):  # BLAS threads only add contention for these small fits
        return _fit_probe(X, y, groups, kind, observation_ids, control, n_splits, C, alpha, seed, concept, site,
                          class_names)


def _checked_rows(X, y, groups, kind, concept, site, class_names=()):
    """The rows to probe (scalar concepts: where defined), after the checks that name concept and site."""
    X = np.asarray(X, np.float64)
    y = np.asarray(y)
    groups = np.asarray(groups)
    where = f"probe of {concept!r}" + (f" at {site}" if site else "")
    if X.ndim != 2 or y.shape != (X.shape[0],) or groups.shape != y.shape:
        raise ValueError(f"{where}: expected X [N, d], y [N] and groups [N], got {X.shape}, {y.shape}, {groups.shape}")
    if kind not in ("categorical", "scalar"):
        raise ValueError(f"{where}: expected kind 'categorical' or 'scalar', got {kind!r}")
    if len(y) == 0:
        raise ValueError(f"{where}: expected at least one step, got none (empty trajectories?)")
    bad = ~np.isfinite(X).all(1)
    if bad.any():
        raise ValueError(f"{where}: expected finite activations, got NaN/Inf in {int(bad.sum())} of {len(X)} rows "
                         f"(first at row {int(np.argmax(bad))})")
    keep = np.isfinite(y) if kind == "scalar" else np.ones(len(y), bool)
    if not keep.any():
        raise ProbeUndefined(f"{where}: undefined: the concept has no value at any of the {len(y)} steps (e.g. a "
                             f"distance to an object the env never has)")
    if kind == "categorical" and len(np.unique(y)) < 2:
        only = int(np.unique(y)[0])
        label = class_names[only] if 0 <= only < len(class_names) else str(only)
        raise ProbeUndefined(f"{where}: undefined: only one class ({label!r}) in all {len(y)} steps; "
                             f"a probe needs at least two")
    return X[keep], y[keep], groups[keep], keep, where


def _fit_probe(X, y, groups, kind, observation_ids, control, n_splits, C, alpha, seed, concept, site, class_names):
    X, y, groups, keep, where = _checked_rows(X, y, groups, kind, concept, site, class_names)
    if observation_ids is None:  # distinct inputs stand in for distinct observations
        observation_ids = np.unique(np.asarray(X, np.float32), axis=0, return_inverse=True)[1].reshape(-1)
    else:
        observation_ids = np.asarray(observation_ids)[keep]
    obs = observation_ids
    n_groups = len(np.unique(groups))
    if n_groups < 2:
        raise ProbeUndefined(f"{where}: undefined: expected steps from at least 2 episodes where it is defined "
                             f"(splits are by episode), got {n_groups}")
    k = min(int(n_splits), n_groups)
    score, auc, base, folds = _cv_scores(X, y, groups, kind, k, C, alpha, seed)
    yc = control_labels(y, obs, control, seed + 1)
    cscore = _cv_scores(X, yc, groups, kind, k, C, alpha, seed)[0]
    W, b, dom = _directions(X, y, kind, C, alpha, seed)
    classes = tuple(class_names[int(c)] if len(class_names) else str(c) for c in np.unique(y)) \
        if kind == "categorical" else ()
    return ProbeResult(concept, tuple(site), kind, score, auc, base, cscore, W, b, dom, classes, len(y), n_groups,
                       folds)

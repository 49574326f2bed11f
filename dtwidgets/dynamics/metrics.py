"""Flat line-chart metrics of a :class:`~dtwidgets.dynamics.Dynamics` and automatic jump detection."""
from __future__ import annotations

import numpy as np


def _get(dyn, part, fn):
    out = np.full(len(dyn.steps), np.nan)
    for i, rec in enumerate(dyn.records):
        if rec.get(part):
            try:
                out[i] = fn(rec[part])
            except (KeyError, IndexError, TypeError, ValueError):
                pass
    return out


def _first(dyn, part):
    return next((r[part] for r in dyn.records if r.get(part)), None)


def _top_labels(dyn, part, key, k):
    """Labels of the ``k`` components with the largest mean |value| over checkpoints and scenarios."""
    first = _first(dyn, part)
    if first is None:
        return [], []
    labels = first["labels"]
    mags = np.zeros(len(labels))
    for r in dyn.records:
        if r.get(part) and r[part]["labels"] == labels:
            mags += np.abs(np.asarray(r[part][key], np.float64)).mean(0)
    order = [i for i in np.argsort(-mags) if mags[i] > 0][:k]
    return [labels[i] for i in order], order


def flat_metrics(dyn, top_k: int = 4) -> dict[str, np.ndarray]:
    """``{name: [K] float64}``: loss, accuracy, training loss, mean return and goal fraction per RTG,
    mean attribution of the top components, mean |ablation effect| of the top components, best-site
    selectivity per concept, SAE explained variance / L0."""
    m: dict[str, np.ndarray] = {}
    if "loss" in dyn.parts:
        m["held-out loss"] = _get(dyn, "loss", lambda d: d["loss"])
        m["held-out accuracy"] = _get(dyn, "loss", lambda d: d["accuracy"])
    if np.isfinite(dyn.train_loss).any():
        m["train loss"] = np.asarray(dyn.train_loss, np.float64)
    cal = _first(dyn, "calibration")
    if cal:
        for j, r in enumerate(cal["rtgs"]):
            m[f"return @ RTG {r:g}"] = _get(dyn, "calibration", lambda d, j=j: d["mean_return"][j])
            m[f"goal rate @ RTG {r:g}"] = _get(
                dyn, "calibration", lambda d, j=j: d["outcome_counts"]["goal"][j] / max(d["n_finished"][j], 1))
    labels, idx = _top_labels(dyn, "attribution", "values", top_k)
    for lab, i in zip(labels, idx):
        m[f"DLA {lab}"] = _get(dyn, "attribution", lambda d, i=i: np.mean(np.asarray(d["values"])[:, i]))
    labels, idx = _top_labels(dyn, "ablation", "delta", top_k)
    for lab, i in zip(labels, idx):
        m[f"ablate {lab} |Δ|"] = _get(dyn, "ablation", lambda d, i=i: np.mean(np.abs(np.asarray(d["delta"])[:, i])))
    pr = _first(dyn, "probes")
    if pr:
        for name in pr["concepts"]:  # looked up by name: a concept undefined at one checkpoint is NaN there
            m[f"probe {name} selectivity"] = _get(dyn, "probes", lambda d, n=name: _selectivity(d, n))
    if "sae" in dyn.parts:
        m["SAE explained variance"] = _get(dyn, "sae", lambda d: d["explained_variance"])
        m["SAE L0"] = _get(dyn, "sae", lambda d: d["l0"])
    return m


def _selectivity(d: dict, name: str) -> float:
    """Best-site selectivity of concept ``name`` in one checkpoint's probe record (NaN when not probed)."""
    if name not in d["concepts"]:
        return float("nan")
    row = np.asarray(d["selectivity"][d["concepts"].index(name)], np.float64)
    return float(np.nanmax(row)) if np.isfinite(row).any() else float("nan")


def find_jumps(values, min_rel: float = 0.3, z: float = 3.0) -> list[int]:
    """The phase transition of a series, if any: ``[i]`` where ``values[i] - values[i-1]`` is the
    largest step, at least ``min_rel`` of the series' range and at least ``z`` times the median
    absolute step (NaNs ignored); ``[]`` otherwise."""
    v = np.asarray(values, np.float64)
    if np.isfinite(v).sum() < 3:
        return []
    rng = np.nanmax(v) - np.nanmin(v)
    d = np.diff(v)
    finite = np.isfinite(d)
    if not rng > 0 or not finite.any():
        return []
    med = np.median(np.abs(d[finite]))
    i = int(np.nanargmax(np.where(finite, np.abs(d), -np.inf)))
    return [i + 1] if abs(d[i]) >= min_rel * rng and abs(d[i]) >= z * med else []

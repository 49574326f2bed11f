"""``TrainingDynamics``: a :class:`~dtwidgets.dynamics.Dynamics` as one client-side scrubbable view."""
from __future__ import annotations

import html

import ipywidgets as W
import numpy as np

from ..widgets.training_dynamics import TrainingDynamicsView

_GROUPS = (("held-out", "loss"), ("train", "loss"), ("return", "calibration"), ("goal", "calibration"),
           ("DLA", "attribution"), ("ablate", "ablation"), ("probe", "probe"), ("SAE", "SAE"))


def _group(name: str) -> str:
    return next((g for prefix, g in _GROUPS if name.startswith(prefix)), "")


def _calibration_arrays(dyn):
    first = next((r["calibration"] for r in dyn.records if r.get("calibration")), None)
    K = len(dyn.steps)
    if first is None:
        return np.zeros(0, np.float32), *(np.zeros((K, 0), np.float32) for _ in range(3))
    R = len(first["rtgs"])
    out = [np.full((K, R), np.nan, np.float32) for _ in range(3)]
    for k, rec in enumerate(dyn.records):
        c = rec.get("calibration")
        if c and len(c["rtgs"]) == R:
            for arr, key in zip(out, ("mean_return", "return_low", "return_high")):
                arr[k] = [np.nan if v is None else v for v in c[key]]
    return np.asarray(first["rtgs"], np.float32), *out


def _attribution_arrays(dyn):
    first = next((r["attribution"] for r in dyn.records if r.get("attribution")), None)
    K = len(dyn.steps)
    if first is None:
        return np.zeros((K, 0), np.float32), [], ""
    labels = first["labels"]
    A = np.full((K, len(labels)), np.nan, np.float32)
    for k, rec in enumerate(dyn.records):
        a = rec.get("attribution")
        if a and a["labels"] == labels:
            A[k] = np.asarray(a["values"], np.float32).mean(0)
    pair = first.get("pair_label", first.get("direction"))  # cache entries written before the rename say "direction"
    return A, labels, f"direct logit attribution of {pair} (mean over {len(first['values'])} scenarios)"


def _probe_arrays(dyn):
    first = next((r["probes"] for r in dyn.records if r.get("probes")), None)
    K = len(dyn.steps)
    names = ["score", "auc", "baseline", "control", "selectivity"]
    if first is None:
        return np.zeros((K, 0, 0), np.float32), np.zeros((K, len(names), 0, 0), np.float32), names, [], []
    C, S = len(first["concepts"]), len(first["sites"])
    M = np.full((K, len(names), C, S), np.nan, np.float32)
    for k, rec in enumerate(dyn.records):
        p = rec.get("probes")
        if p and p["concepts"] == first["concepts"] and p["sites"] == first["sites"]:
            for m, n in enumerate(names):
                M[k, m] = np.asarray(p[n], np.float64)  # None (JSON null) -> NaN
    return M[:, names.index("selectivity")], M, names, first["concepts"], first["sites"]


def dynamics_view(dyn, title: str = "training dynamics", index: int | None = None) -> TrainingDynamicsView:
    """The :class:`~dtwidgets.widgets.TrainingDynamicsView` of a :class:`~dtwidgets.dynamics.Dynamics`."""
    metrics = dyn.metrics()
    names = list(metrics)
    jumps = dyn.phase_transitions()
    rtgs, cm, cl, ch = _calibration_arrays(dyn)
    A, alabels, atitle = _attribution_arrays(dyn)
    PS, PM, pnames, concepts, sites = _probe_arrays(dyn)
    return TrainingDynamicsView(
        steps=np.asarray(dyn.steps, np.float32),
        metrics=np.stack([metrics[n] for n in names]).astype(np.float32) if names else np.zeros((0, len(dyn.steps)), np.float32),
        metric_names=names, metric_groups=[_group(n) for n in names],
        jumps=np.array([[names.index(j["metric"]), j["index"]] for j in jumps], np.float32).reshape(-1, 2),
        calib_rtgs=rtgs, calib_mean=cm, calib_lo=cl, calib_hi=ch, attribution=A, attribution_labels=alabels,
        attribution_title=atitle, probe_selectivity=PS, probe_metrics=PM, probe_metric_names=pnames,
        concepts=concepts, sites=sites, index=len(dyn.steps) - 1 if index is None else int(index), title=title)


class TrainingDynamics(W.VBox):
    """Training dynamics of a checkpoint series: a step slider scrubbing (client-side) across line
    charts of every metric, the selected checkpoint's calibration curve, attribution bars and probe
    matrix, and a list of the detected jumps (phase transitions).

    Attributes: ``view`` (:class:`~dtwidgets.widgets.TrainingDynamicsView`), ``dynamics``.
    """

    def __init__(self, dyn, title: str = "training dynamics", index: int | None = None):
        self.dynamics = dyn
        self.view = dynamics_view(dyn, title, index)
        super().__init__([self.view, W.HTML(self._jump_summary())])

    def _jump_summary(self) -> str:
        jumps = self.dynamics.phase_transitions()
        if not jumps:
            return "<p>No metric jumps detected.</p>"
        items = "".join(f"<li>step {j['step']}: {html.escape(j['metric'])} ({j['jump']:+.3g})</li>" for j in jumps)
        return f"<p>Detected jumps (phase transitions):</p><ul>{items}</ul>"

"""Synthetic dynamics() output for widget tests (no training needed)."""
from __future__ import annotations

import numpy as np

from dtwidgets.dynamics import Dynamics


def synthetic_dynamics(K=12):
    """Records shaped like dynamics() output; the probe of concept 'b' jumps at checkpoint 6."""
    rng = np.random.default_rng(0)
    steps = np.array([0, 1, 2, 4, 8, 16, 50, 100, 150, 200, 250, 300][:K])
    recs = []
    for k in range(K):
        late = k >= 6
        recs.append({
            "loss": {"loss": 1.1 - 0.05 * k, "accuracy": 0.4 + 0.04 * k},
            "calibration": {"rtgs": [-1.0, 0.0, 0.9], "mean_return": [-1.0, 0.0, 0.9 if late else -0.5],
                            "return_low": [-1.0, 0.0, 0.8], "return_high": [-1.0, 0.0, 0.95],
                            "outcome_labels": ["goal", "collision", "timeout"], "n_finished": [4, 4, 4],
                            "outcome_counts": {"goal": [0, 0, 4 if late else 1], "collision": [4, 0, 0],
                                               "timeout": [0, 4, 0]}},
            "attribution": {"values": (rng.normal(size=(3, 5)) + (2.0 if late else -2.0)).tolist(),
                            "labels": ["state embed", "L0H0", "L0H1", "L0MLP", "action bias"],
                            "kinds": ["embed", "head", "head", "mlp", "bias"], "pair_label": "forward − left"},
            "ablation": {"delta": rng.normal(size=(3, 3)).tolist(), "labels": ["L0H0", "L0H1", "L0MLP"]},
            "probes": {"concepts": ["a", "b"], "sites": ["L0 resid_pre @ state", "L0 resid_post @ state"],
                       **{m: [[0.1, 0.2], [0.5 if late else 0.0, 0.6 if late else 0.01]] for m in
                          ("score", "auc", "baseline", "control", "selectivity")}},
        })
    return Dynamics(steps, np.linspace(1.2, 0.3, K), recs, ("loss", "calibration", "attribution", "ablation",
                                                              "probes"))

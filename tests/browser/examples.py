"""Deterministic example widgets used by the browser tests and the README screenshots."""

from __future__ import annotations

import numpy as np

from dtwidgets.widgets import (
    ActionPreferences, AttentionView, CalibrationCurve, ChannelHeatmap, ContributionBars,
    GridView, MatrixHeatmap, RTGScanView,
)

LONG = "a very long label that should be truncated with an ellipsis but shown in full on hover"


def dynamic_obstacles_grid(size: int = 8) -> np.ndarray:
    """An 8x8 Dynamic-Obstacles-like full grid: walls around, goal at (6, 6), blue balls."""
    g = np.zeros((size, size, 3), np.uint8)
    g[:, :, 0] = 1  # empty
    g[0, :] = g[-1, :] = g[:, 0] = g[:, -1] = (2, 5, 0)  # grey walls
    g[size - 2, size - 2] = (8, 1, 0)  # green goal
    for x, y in [(3, 2), (5, 4), (2, 5)]:
        g[x, y] = (6, 2, 0)  # blue balls
    return g


def partial_obs() -> np.ndarray:
    """A 7x7 egocentric observation with unseen cells, a key, doors and lava."""
    g = np.ones((7, 7, 3), np.uint8)
    g[:, :, 1:] = 0
    g[0:2, 0:3] = (0, 0, 0)  # unseen
    g[6, :] = (2, 5, 0)  # wall column
    g[1, 4] = (5, 4, 0)  # yellow key
    g[4, 1] = (4, 4, 0)  # open yellow door
    g[5, 1] = (4, 3, 1)  # closed purple door
    g[5, 3] = (4, 2, 2)  # locked blue door
    g[2, 2] = (9, 0, 0)  # lava
    g[4, 4] = (7, 4, 0)  # box
    g[3, 3] = (6, 0, 0)  # red ball
    return g


def examples() -> dict:
    rng = np.random.default_rng(0)
    grid = GridView(dynamic_obstacles_grid(), agent_pos=(1, 1), agent_dir=0, view_size=7)
    partial = GridView(partial_obs(), mode="partial")
    channels = GridView(partial_obs(), mode="channels")
    vals = rng.normal(size=(6, 7, 7)).astype(np.float32)
    vals[0, 1, 2] = 2.5       # strongly positive at x=1, y=2
    vals[0, 4, 5] = -2.5      # strongly negative at x=4, y=5
    vals[1, 0, 0] = np.nan
    vals[1, 6, 6] = np.inf
    heat = ChannelHeatmap(values=vals, titles=["object: wall", "colour: green", LONG, "c3", "c4", "c5"],
                          vmax=2.5, agent_cell=(3, 6), annotate=True)
    prefs = ActionPreferences(logits=np.array([1.2, -0.3, 2.1]), action_names=["left", "right", "forward"], pair=(2, 0))
    pat = rng.random((4, 9, 9)).astype(np.float32)
    pat = np.tril(pat)
    pat /= pat.sum(-1, keepdims=True)
    toks = [f"{k}{t}" for t in range(1, 4) for k in ("R", "s", "a")]
    attn = AttentionView(patterns=pat, head_labels=AttentionView.labels_for(2, 2), token_labels=toks)
    contrib = ContributionBars(values=np.array([[0.8, -0.4, 1.5, -1.1, 0.2], [0.3, -0.5, 0.1, -1.0, 0.25]]),
                               series_names=["clean", "ablated"], labels=["embed", "L0H0", "L0H1", "MLP0", LONG],
                               groups=["embed", "attn", "attn", "mlp", "mlp"], title="direct logit attribution")
    mat = MatrixHeatmap(values=np.array([[1.0, -1.0, 0.0, 0.5], [0.2, 0.9, -0.3, np.nan]]),
                        row_labels=["resid_pre 0", "resid_pre 1"], col_labels=["R1", "s1", "a1", LONG],
                        title="activation patching", x_label="position", y_label="layer", annotate=True)
    r = np.linspace(-1, 1, 41).astype(np.float32)
    p_fwd = 1 / (1 + np.exp(-4 * r))
    series = np.stack([p_fwd * 0.9, (1 - p_fwd) * 0.5, 1 - p_fwd * 0.9 - (1 - p_fwd) * 0.5, 2 * r, -np.sin(3 * r)])
    scan = RTGScanView(rtgs=r, series=series, series_names=["P(forward)", "P(left)", "P(right)", "L0H0", "MLP0"],
                       series_groups=["probability"] * 3 + ["contribution"] * 2, index=20, title="RTG scan")
    t = np.linspace(0, 1, 11).astype(np.float32)
    mean = 0.9 * t - 0.05
    counts = np.stack([t * 50 + 5, (1 - t) * 30 + 2, np.full_like(t, 5)], axis=1)
    calib = CalibrationCurve(targets=t, mean=mean, lo=mean - 0.15, hi=mean + 0.1, outcome_counts=counts,
                             outcome_names=["goal", "collision", "timeout"], title="calibration")
    return {"grid_view": grid, "grid_partial": partial, "grid_channels": channels, "channel_heatmap": heat,
            "action_preferences": prefs, "attention_view": attn, "contribution_bars": contrib,
            "matrix_heatmap": mat, "rtg_scan_view": scan, "calibration_curve": calib}

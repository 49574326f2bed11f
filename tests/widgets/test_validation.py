"""Widget input validation (issues 12/13): count mismatches raise naming the argument, expected vs got."""

from __future__ import annotations

import numpy as np
import pytest
import traitlets

from dtwidgets.widgets import ActionPreferences, CalibrationCurve, ChannelHeatmap, ContributionBars


def test_calibration_mean_longer_than_targets_raises() -> None:
    t = np.linspace(0, 1, 3)
    with pytest.raises(traitlets.TraitError, match=r"CalibrationCurve\.mean: expected first axis 3.*got shape \(5,\)"):
        CalibrationCurve(targets=t, mean=np.zeros(5))
    for arr in ("lo", "hi"):
        with pytest.raises(traitlets.TraitError, match=rf"CalibrationCurve\.{arr}: expected first axis 3"):
            CalibrationCurve(targets=t, mean=t, **{arr: np.zeros(2)})
    with pytest.raises(traitlets.TraitError, match=r"outcome_counts: expected first axis 3.*\(4, 2\)"):
        CalibrationCurve(targets=t, mean=t, outcome_counts=np.ones((4, 2)))
    with pytest.raises(traitlets.TraitError, match=r"outcome_names: expected 2 items.*K = 2.*got 3"):
        CalibrationCurve(targets=t, mean=t, outcome_counts=np.ones((3, 2)), outcome_names=["a", "b", "c"])
    ok = CalibrationCurve(targets=t, mean=t, lo=t - 0.1, hi=t + 0.1, outcome_counts=np.ones((3, 2)), outcome_names=["g", "c"])
    with pytest.raises(traitlets.TraitError, match="mean"):
        ok.mean = np.zeros(5)
    assert ok.mean.shape == (3,), "a refused assignment leaves the old value"
    # both change size together: allowed inside hold_trait_notifications
    with ok.hold_trait_notifications():
        ok.targets, ok.mean, ok.lo, ok.hi = (np.zeros(5),) * 4
        ok.outcome_counts = np.ones((5, 2))
    assert ok.targets.shape == ok.mean.shape == (5,)


def test_contribution_bars_counts_must_match() -> None:
    v = np.ones((2, 3), np.float32)
    with pytest.raises(traitlets.TraitError, match=r"ContributionBars\.labels: expected 3 items, one per component .*\[2, 3\].*got 2"):
        ContributionBars(values=v, labels=["a", "b"])
    with pytest.raises(traitlets.TraitError, match=r"labels: expected 3 items.*got 4"):
        ContributionBars(values=v, labels=list("abcd"))
    with pytest.raises(traitlets.TraitError, match=r"series_names: expected 2 items, one per series.*got 1"):
        ContributionBars(values=v, series_names=["clean"])
    with pytest.raises(traitlets.TraitError, match=r"groups: expected 3 items"):
        ContributionBars(values=v, groups=["g"])
    w = ContributionBars(values=v, labels=list("abc"), series_names=["x", "y"])
    with pytest.raises(traitlets.TraitError, match=r"labels: expected 3 items.*got 2"):
        w.labels = ["a", "b"]
    with pytest.raises(traitlets.TraitError, match=r"labels: expected 4 items"):
        w.values = np.ones((2, 4))
    assert w.values.shape == (2, 3) and w.labels == list("abc")
    # unset labels (numbered in the widget) and unset values (no data) are fine
    ContributionBars(values=v)
    ContributionBars(series_names=["clean", "ablated"], labels=["a"])
    # a 1-D value is one series
    assert ContributionBars(values=np.ones(3), labels=list("abc"), series_names=["s"]).values.shape == (1, 3)


def test_action_preferences_names_must_match_logits() -> None:
    with pytest.raises(traitlets.TraitError, match=r"ActionPreferences\.action_names: expected 3 items, one per logit.*got 2"):
        ActionPreferences(logits=np.zeros(3), action_names=["left", "right"])
    p = ActionPreferences(logits=np.zeros(3), action_names=["left", "right", "forward"])
    with pytest.raises(traitlets.TraitError, match=r"action_names: expected 4 items.*got 3"):
        p.logits = np.zeros(4)
    assert p.logits.shape == (3,)
    ActionPreferences(logits=np.zeros(3))  # unnamed: numbered in the widget


def test_channel_heatmap_refuses_a_raw_observation_and_says_how() -> None:
    obs = np.zeros((7, 7, 3), np.uint8)
    obs[:, :, 0] = 1
    with pytest.raises(traitlets.TraitError, match=r"ChannelHeatmap\.values.*\(7, 7, 3\).*MiniGrid observation.*np\.moveaxis\(obs, -1, 0\)"):
        ChannelHeatmap(values=obs)
    w = ChannelHeatmap(values=np.moveaxis(obs, -1, 0), titles=["object", "colour", "state"])
    assert w.values.shape == (3, 7, 7) and w.values[0].min() == 1
    # [C, W, 3] maps are accepted when each of the C channels is titled
    assert ChannelHeatmap(values=np.zeros((7, 7, 3)), titles=[f"c{i}" for i in range(7)]).values.shape == (7, 7, 3)
    assert ChannelHeatmap(values=np.zeros((3, 5, 3))).values.shape == (3, 5, 3)  # 3 channels: unambiguous
    assert ChannelHeatmap(values=np.zeros((2, 3, 3))).values.shape == (2, 3, 3)  # square 3x3 maps
    with pytest.raises(traitlets.TraitError, match=r"looks like a MiniGrid observation \[W=19, H=7, 3\]"):
        ChannelHeatmap(values=np.zeros((19, 7, 3)))  # a full, non-square grid encoding
    with pytest.raises(traitlets.TraitError, match=r"ChannelHeatmap\.titles: expected 2 items.*C = 2.*got 3"):
        ChannelHeatmap(values=np.zeros((2, 5, 5)), titles=["a", "b", "c"])
    assert ChannelHeatmap(values=np.zeros((5, 5)), titles=["only"]).values.shape == (1, 5, 5)

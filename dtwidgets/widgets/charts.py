"""Chart widgets: ActionPreferences, ContributionBars, RTGScanView, CalibrationCurve."""

from __future__ import annotations

import numpy as np
import traitlets

from ._arrays import ArrayTrait, array_serialization
from ._base import DTWidget
from ._traits import TOGETHER, IntPair, Labels, check_count, check_first_axis, fill_steps

__all__ = ["ActionPreferences", "ContributionBars", "RTGScanView", "CalibrationCurve", "FollowsRTG"]

_sync_arr = dict(sync=True, **array_serialization)


def _vec(doc: str) -> ArrayTrait:
    return ArrayTrait(ndim=1, dtype="float32", shape_doc=doc).tag(**_sync_arr)


def _table(doc: str) -> ArrayTrait:
    return ArrayTrait(ndim=2, dtype="float32", shape_doc=doc).tag(**_sync_arr)


class FollowsRTG(DTWidget):
    """Base of widgets that follow an :class:`~dtwidgets.widgets.RTGSlider` client-side.

    While the slider of the same ``follow_group`` is dragged, the front-end previews the widget's
    data from an RTG scan shipped with the state (``scan_rtgs`` plus a ``[R, ...]`` table trait of
    the subclass), linearly interpolated between grid points and marked "preview"; the preview
    ends when the kernel sends data computed at the released RTG (trait ``rtg``).
    """

    follow_group = traitlets.Unicode("").tag(sync=True)
    """Page-level id shared with an RTGSlider ('' = do not follow)."""
    rtg = traitlets.Float(None, allow_none=True).tag(sync=True)
    """The RTG (reward units) at which the widget's kernel data was computed (None = unknown)."""
    scan_rtgs = _vec("[R]")
    """The ascending RTG grid of the scan tables, float32 [R] (empty = no preview)."""


class ActionPreferences(FollowsRTG):
    """Softmax action probabilities as bars plus the pairwise preference logit[a] - logit[b].

    Traits
    ------
    logits : float32 array [A]
    action_names : list[str] (len A)
    pair : (a, b) action indices; two dropdowns in the widget, synced both ways
    scan_logits : float32 [R, A] logits over ``scan_rtgs`` (RTG following, see :class:`FollowsRTG`)
    """

    _module = "action_preferences"
    logits = _vec("[A]")
    scan_logits = _table("[R, A]")
    action_names = Labels().tag(sync=True)
    pair = IntPair((0, 1)).tag(sync=True)

    @traitlets.validate("logits", "action_names")
    def _names_match_logits(self, proposal: dict):
        v, name = proposal["value"], proposal["trait"].name
        logits = v if name == "logits" else self.logits
        names = v if name == "action_names" else self.action_names
        if logits.size:
            check_count(self, "action_names", len(names), logits.shape[0], f"one per logit (logits [A] has A = {logits.shape[0]})")
        return v

    @property
    def probabilities(self) -> np.ndarray:
        """softmax(logits) as float64 [A] (same rule as the front-end)."""
        x = self.logits.astype(np.float64)
        if x.size == 0:
            return x
        m = np.max(x[np.isfinite(x)]) if np.isfinite(x).any() else 0.0
        e = np.exp(x - m)
        return e / e[np.isfinite(e)].sum()

    @property
    def preference(self) -> float:
        """logit[a] - logit[b] for the current ``pair`` (NaN if out of range)."""
        a, b = self.pair
        n = self.logits.shape[0]
        if not (0 <= a < n and 0 <= b < n):
            return float("nan")
        return float(self.logits[a]) - float(self.logits[b])


class ContributionBars(FollowsRTG):
    """Horizontal grouped bars of signed contributions (DLA, ablation before/after).

    Traits
    ------
    values : float32 array [S, N]; S series (e.g. "clean", "ablated"), N components. 1-D [N] = one series.
    series_names : list[str] (len S)
    labels : list[str] (len N) component labels, e.g. "L0H1", "MLP0"
    groups : list[str] (len N) or [] ; components are shown under group headers in order of first appearance
    title : str
    selected : int component index (-1 = none), synced on click
    scale : "symmetric" (signed values, axis [-m, m]) or "unit" (probabilities, axis [0, 1])
    scan_values : float32 [R, N] series 0 over ``scan_rtgs`` (RTG following, see :class:`FollowsRTG`)
    show_sum : bool, append the sum of series 0 to the title (follows previews)
    rows : optional unsigned int [N]; row n shows ``labels[rows[n]]`` (and ``groups[rows[n]]``), so a long
        label list (e.g. every MLP neuron) is sent once and each update sends only which rows to show,
        in which order (e.g. a sorted top 30); empty = row n is ``labels[n]``. :attr:`row_labels` are
        the labels as shown.
    separate_axes : bool, draw each series in its own column with its own axis (series in different units,
        e.g. a neuron's direct share and its activation), sharing one label column
    steps : optional int16 [T], episode steps of tokens: ``labels`` and ``title`` are then templates whose
        ``{k}`` shows token k's step (``"state embed (s{25})"`` -> ``"state embed (s₉)"``, see
        :func:`~dtwidgets.widgets._traits.fill_steps`), so per-state token names cost a few bytes;
        :attr:`row_labels` and :attr:`shown_title` are the texts as shown
    """

    _module = "contribution_bars"
    values = ArrayTrait(ndim=(1, 2), dtype="float32", shape_doc="[S, N]").tag(**_sync_arr)
    series_names = Labels().tag(sync=True)
    labels = Labels().tag(sync=True)
    groups = Labels().tag(sync=True)
    title = traitlets.Unicode("").tag(sync=True)
    selected = traitlets.CInt(-1, min=-1).tag(sync=True)
    scale = traitlets.Enum(("symmetric", "unit"), "symmetric").tag(sync=True)
    scan_values = _table("[R, N]")
    show_sum = traitlets.Bool(False).tag(sync=True)
    """Append " = <sum of series 0>" to the title (computed client-side from the values drawn)."""
    separate_axes = traitlets.Bool(False).tag(sync=True)
    """One axis per series, side by side (see the class docstring); False = all series on one axis."""
    rows = ArrayTrait(ndim=1, shape_doc="[N] (indices into labels)").tag(**_sync_arr)
    """Which label each row shows (see the class docstring); empty = row n shows ``labels[n]``."""
    steps = ArrayTrait(ndim=1, dtype="int16", shape_doc="[T]").tag(**_sync_arr)
    """Episode step of each token for the label templates (negative = padding); empty = labels as they are."""

    @traitlets.validate("rows")
    def _rows_unsigned(self, proposal: dict) -> np.ndarray:
        v = proposal["value"]
        if v.size and (v.dtype.kind not in "iu" or v.min() < 0):
            raise traitlets.TraitError(f"ContributionBars.rows: expected non-negative integer indices into labels, "
                                       f"got {v.dtype} values {v[:5].tolist()}...")
        dtype = np.uint16 if not v.size or v.max() < 2**16 else np.uint32  # the smallest the front-end reads
        return self._counts_match_values({"value": np.ascontiguousarray(v, dtype), "trait": self.traits()["rows"]})

    @traitlets.validate("values", "labels", "series_names", "groups")
    def _counts_match_values(self, proposal: dict):
        v, name = proposal["value"], proposal["trait"].name
        if name == "values" and v.ndim == 1:
            v = v[None]
        cur = {"values": self.values, "labels": self.labels, "series_names": self.series_names, "groups": self.groups,
               "rows": self.rows}
        cur[name] = v
        values = cur["values"].reshape(1, -1) if cur["values"].ndim == 1 else cur["values"]  # not yet cross-validated
        rows = cur["rows"]
        if values.size:
            S, N = values.shape
            per_row = (("rows", N, "one per component"),) if rows.size else (("labels", N, "one per component"),
                                                                             ("groups", N, "one per component"))
            for lst, n, per in (*per_row, ("series_names", S, "one per series")):
                check_count(self, lst, len(cur[lst]), n, f"{per} (values [S, N] has shape [{S}, {N}])")
        if rows.size:
            for lst in ("labels", "groups"):
                if cur[lst] and int(rows.max()) >= len(cur[lst]):
                    raise traitlets.TraitError(f"ContributionBars.rows: expected indices into {lst} (len {len(cur[lst])}), "
                                               f"got a row index {int(rows.max())}. {TOGETHER}")
            if not cur["labels"]:
                raise traitlets.TraitError(f"ContributionBars.rows: expected labels for the rows to index, got none. {TOGETHER}")
        return v

    @property
    def row_labels(self) -> list[str]:
        """The label of each row as shown: ``labels[rows[n]]``, or ``labels`` when ``rows`` is empty ([] without values)."""
        if not self.values.size:
            return []
        labels = [self.labels[int(i)] for i in self.rows] if self.rows.size else list(self.labels)
        return [fill_steps(lab, self.steps) for lab in labels]

    @property
    def shown_title(self) -> str:
        """The title as shown (``steps`` filled in; without the front-end's " = <sum>")."""
        return fill_steps(self.title, self.steps)


class RTGScanView(DTWidget):
    """Series against return-to-go with a client-side scrubber.

    Traits
    ------
    rtgs : float32 array [R], the scanned RTG values (x axis)
    series : float32 array [S, R], one line per series (action probabilities, contributions, ...)
    series_names : list[str] (len S)
    series_groups : list[str] (len S); series with the same group share a panel
        (e.g. "probability", "contribution", "attention"); a group whose name contains "prob" and
        whose values lie in [0, 1] gets a fixed [0, 1] axis
    index : int, selected RTG index; the slider moves the marker and readout without a kernel
        round trip and syncs ``index`` back debounced by ~150 ms
    title : str
    steps : optional int16 [T], episode steps of tokens: ``series_names`` are then templates whose
        ``{k}`` shows the episode step of token ``k`` (:func:`~dtwidgets.widgets._traits.fill_steps`);
        :attr:`shown_series_names` are the texts as shown
    """

    _module = "rtg_scan_view"
    rtgs = _vec("[R]")
    follow_group = traitlets.Unicode("").tag(sync=True)
    """Page-level id of an RTGSlider whose position moves the marker client-side ('' = none)."""
    series = ArrayTrait(ndim=(1, 2), dtype="float32", shape_doc="[S, R]").tag(**_sync_arr)
    series_names = Labels().tag(sync=True)
    series_groups = Labels().tag(sync=True)
    index = traitlets.CInt(0, min=0).tag(sync=True)
    title = traitlets.Unicode("").tag(sync=True)
    steps = ArrayTrait(ndim=1, dtype="int16", shape_doc="[T]").tag(**_sync_arr)

    @traitlets.validate("series")
    def _series_2d(self, proposal: dict) -> np.ndarray:
        v = proposal["value"]
        return v[None] if v.ndim == 1 else v

    @property
    def shown_series_names(self) -> list[str]:
        """Series names as shown (``steps`` filled in)."""
        return [fill_steps(n, self.steps) for n in self.series_names]

    @property
    def rtg(self) -> float:
        """RTG value at ``index`` (NaN when out of range)."""
        return float(self.rtgs[self.index]) if 0 <= self.index < self.rtgs.shape[0] else float("nan")


class CalibrationCurve(DTWidget):
    """Target return vs achieved return with a quantile band and stacked outcome bars.

    Traits
    ------
    targets : float32 [R] target returns (x)
    mean : float32 [R] mean achieved return; lo, hi : float32 [R] quantile band
    outcome_counts : float32 [R, K] episode counts per outcome, drawn as stacked fractions
    outcome_names : list[str] (len K), e.g. ["goal", "collision", "timeout"]
    title, x_label, y_label : str (axis labels default to "target return" / "achieved return")
    """

    _module = "calibration_curve"
    targets = _vec("[R]")
    mean = _vec("[R]")
    lo = _vec("[R]")
    hi = _vec("[R]")
    outcome_counts = ArrayTrait(ndim=2, dtype="float32", shape_doc="[R, K]").tag(**_sync_arr)
    outcome_names = Labels().tag(sync=True)
    title = traitlets.Unicode("").tag(sync=True)
    x_label = traitlets.Unicode("").tag(sync=True)
    y_label = traitlets.Unicode("").tag(sync=True)

    @traitlets.validate("targets", "mean", "lo", "hi", "outcome_counts", "outcome_names")
    def _lengths_match_targets(self, proposal: dict):
        v, name = proposal["value"], proposal["trait"].name
        cur = {n: getattr(self, n) for n in ("targets", "mean", "lo", "hi", "outcome_counts", "outcome_names")}
        cur[name] = v
        R = cur["targets"].shape[0]
        for arr in ("mean", "lo", "hi", "outcome_counts"):
            check_first_axis(self, arr, cur[arr], R, f"one row per target (targets [R] has R = {R})")
        counts = cur["outcome_counts"]
        if counts.size:
            K = counts.shape[1]
            check_count(self, "outcome_names", len(cur["outcome_names"]), K, f"one per outcome (outcome_counts [R, K] has K = {K})")
        return v

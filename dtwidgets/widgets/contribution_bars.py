"""ContributionBars: grouped bars of signed contributions (DLA, ablations)."""

from __future__ import annotations

import numpy as np
import traitlets

from ._arrays import SyncedArray
from ._follows_rtg import FollowsRTG
from ._traits import TOGETHER, Labels, check_count, fill_steps

__all__ = ["ContributionBars"]


class ContributionBars(FollowsRTG):
    """Horizontal grouped bars of signed contributions (DLA, ablation before/after)."""

    _module = "contribution_bars"
    values = SyncedArray((1, 2), "float32", "[S, N]")
    """float32 [S, N]: S series (e.g. "clean", "ablated") of N components' values; 1-D [N] = one series."""
    series_names = Labels().tag(sync=True)
    """list[str] (len S): series names."""
    labels = Labels().tag(sync=True)
    """list[str] (len N, or indexed by ``rows``): component labels, e.g. "L0H1", "MLP0"; templates when ``steps`` is set."""
    groups = Labels().tag(sync=True)
    """list[str] (like ``labels``) or []: components are shown under group headers in order of first appearance."""
    title = traitlets.Unicode("").tag(sync=True)
    """str: title above the bars (a template when ``steps`` is set, see :attr:`shown_title`)."""
    selected = traitlets.CInt(-1, min=-1).tag(sync=True)
    """int: selected component index (-1 = none), synced on click."""
    scale = traitlets.Enum(("symmetric", "unit"), "symmetric").tag(sync=True)
    """Axis: "symmetric" (signed values, axis [-m, m]) or "unit" (probabilities, axis [0, 1])."""
    scan_values = SyncedArray(2, "float32", "[R, N]")
    """float32 [R, N]: series 0 over ``scan_rtgs`` for RTG following (see :class:`FollowsRTG`); empty = no preview."""
    show_sum = traitlets.Bool(False).tag(sync=True)
    """Append " = <sum of series 0>" to the title (computed client-side from the values drawn, so it follows previews)."""
    separate_axes = traitlets.Bool(False).tag(sync=True)
    """Draw each series in its own column with its own axis (series in different units, e.g. a neuron's direct
    share and its activation), sharing one label column; False = all series on one axis."""
    rows = SyncedArray(1, shape_doc="[N] (indices into labels)")
    """unsigned int [N]: row n shows ``labels[rows[n]]`` (and ``groups[rows[n]]``), so a long label list (e.g. every
    MLP neuron) is sent once and each update sends only which rows to show, in which order (e.g. a sorted top 30);
    empty = row n shows ``labels[n]``. :attr:`row_labels` are the labels as shown."""
    steps = SyncedArray(1, "int16", "[T]")
    """int16 [T]: episode step of each token (negative = padding); ``labels`` and ``title`` are then templates whose
    ``{k}`` shows token k's step (``"state embed (s{25})"`` -> ``"state embed (s₉)"``, see
    :func:`~dtwidgets.widgets._traits.fill_steps`), so per-state token names cost a few bytes; empty = labels as
    they are. :attr:`row_labels` and :attr:`shown_title` are the texts as shown."""

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

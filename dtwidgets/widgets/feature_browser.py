"""FeatureBrowserView: the canvas front-end of :class:`dtwidgets.compositions.FeatureBrowser`."""

from __future__ import annotations

import numpy as np
import traitlets

from ._arrays import SyncedArray
from ._base import DTWidget
from ._traits import IntPair, Labels, check_dims, check_indices

__all__ = ["FeatureBrowserView"]

SORT_KEYS = ("index", "frequency", "max_act", "effect", "rtg_corr", "time_corr")


class FeatureBrowserView(DTWidget):
    """SAE features as a sortable, filterable list plus a card for the selected feature.

    Everything the card shows is held in the traits, so selection, sorting and filtering work in
    the browser without a kernel (also in a static :func:`~dtwidgets.widgets.to_html` page).
    F features (rows), A actions, E example slots, B histogram bins, C observation channels.
    """

    _module = "feature_browser"
    feature_ids = SyncedArray(1, "int32", "[F]")
    """[F] int32 SAE feature index of each row."""
    frequency = SyncedArray(1, "float32", "[F]")
    """[F] fraction of stored states where the feature fires."""
    max_act = SyncedArray(1, "float32", "[F]")
    """[F] largest activation."""
    mean_act = SyncedArray(1, "float32", "[F]")
    """[F] mean activation over the states where it fires."""
    rtg_corr = SyncedArray(1, "float32", "[F]")
    """[F] Pearson correlation of the activation with the RTG."""
    time_corr = SyncedArray(1, "float32", "[F]")
    """[F] Pearson correlation of the activation with the episode timestep."""
    hist = SyncedArray(2, "float32", "[F, B]")
    """[F, B] counts of non-zero activations in B equal bins of [0, max_act]."""
    action_bars = SyncedArray(2, "float32", "[F, A]")
    """[F, A] decoder direction read by the action head (logit per unit activation)."""
    action_names = Labels().tag(sync=True)
    """[A] action names."""
    pair = IntPair((0, 1)).tag(sync=True)
    """(a, b): the list's "effect" column is ``action_bars[:, a] - action_bars[:, b]``."""
    examples_obs = SyncedArray(5, "uint8", "[F, E, W, H, 3]", last_dim=3)
    """[F, E, W, H, 3] uint8 example observations, drawn as ``examples_view`` says: MiniGrid codes
    ``[x, y, channel]`` for a grid, RGB ``[row, column, channel]`` for pixels (build both with
    :meth:`~dtwidgets.adapters.ObservationSchema.thumbnails`)."""
    examples_view = traitlets.Enum(("egocentric", "full", "pixels", "none"), "egocentric").tag(sync=True)
    """How ``examples_obs`` is drawn: an egocentric grid (agent at the bottom centre, facing up), a full
    grid (the agent is its own cell), an RGB image, or no picture (vector observations)."""
    examples_meta = SyncedArray(3, "float32", "[F, E, 5]", last_dim=5)
    """[F, E, 5] (activation, RTG, step, action, episode) per example; activation < 0 marks an empty slot."""
    example_labels = Labels().tag(sync=True)
    """[E] slot labels ("top 1", ..., "q50", ...)."""
    write_maps = SyncedArray((1, 4), "float32", "[F, C, W, H]")
    """[F, C, W, H] encoder direction pulled back through the state embedding (empty = not available)."""
    channel_names = Labels().tag(sync=True)
    """[C] observation channel names."""
    selected = traitlets.CInt(-1, min=-1).tag(sync=True)
    """Row whose card is open (-1 = none); set by a click."""
    sort_by = traitlets.Enum(SORT_KEYS, "frequency").tag(sync=True)
    """Sort key (correlations and effect sort by absolute value)."""
    sort_desc = traitlets.Bool(True).tag(sync=True)
    """Sort descending."""
    min_frequency = traitlets.Float(0.0, min=0.0).tag(sync=True)
    """Hide features firing less often than this."""
    query = traitlets.Unicode("").tag(sync=True)
    """Space-separated feature ids to show ('' = all)."""
    title = traitlets.Unicode("").tag(sync=True)
    """Heading."""

    _DIMS = {"feature_ids": ("F",), "frequency": ("F",), "max_act": ("F",), "mean_act": ("F",), "rtg_corr": ("F",),
             "time_corr": ("F",), "hist": ("F", "B"), "action_bars": ("F", "A"), "action_names": ("A",),
             "examples_obs": ("F", "E", "W", "H", 3), "examples_meta": ("F", "E", 5), "example_labels": ("E",),
             "write_maps": ("F", "C", "W", "H"), "channel_names": ("C",)}

    @traitlets.validate(*_DIMS)
    def _shapes_agree(self, proposal: dict):
        return check_dims(self, proposal, self._DIMS)

    @traitlets.validate("pair")
    def _pair_in_actions(self, proposal: dict):
        A = len(self.action_names) or (self.action_bars.shape[1] if self.action_bars.size else 0)
        if A:
            check_indices(self, "pair", np.asarray(proposal["value"]), A, f"actions of the {A} action_names")
        return proposal["value"]

    @traitlets.validate("selected")
    def _selected_in_rows(self, proposal: dict) -> int:
        F = len(self.feature_ids)
        if F and proposal["value"] >= F:
            raise traitlets.TraitError(f"FeatureBrowserView.selected: expected a row in [-1, {F}), got {proposal['value']}")
        return proposal["value"]

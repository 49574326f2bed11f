"""ChannelHeatmap: small-multiple heatmaps of per-cell values, one per channel."""

from __future__ import annotations

import traitlets

from ._arrays import SyncedArray
from ._base import DTWidget
from ._traits import IntPair, Labels, OptionalVmax, check_count

__all__ = ["ChannelHeatmap"]


class ChannelHeatmap(DTWidget):
    """Small-multiple heatmaps of per-cell values, one map per channel."""

    _module = "channel_heatmap"
    values = SyncedArray((2, 3), "float32", "[C, W, H]")
    """float32 [C, W, H], stored like a MiniGrid observation, ``values[c, x, y]``; drawn with x horizontal and
    y vertical (row 0 at top), i.e. transposed from storage. A 2-D [W, H] input becomes C = 1.
    NaN is drawn hatched grey; ±Inf is clamped to the scale limit and flagged."""
    titles = Labels().tag(sync=True)
    """list[str] (len C): one title per channel."""
    vmax = OptionalVmax().tag(sync=True)
    """float > 0 or None: symmetric limit of the blue-white-red scale centred on 0 (None = max |finite value|).
    Editable in the widget (number input)."""
    annotate = traitlets.Bool(False).tag(sync=True)
    """Write rounded values in the cells (when cells are large enough)."""
    agent_cell = IntPair(None, allow_none=True).tag(sync=True)
    """(x, y) or None: outlined in black on every map."""
    selected_cell = IntPair(None, allow_none=True).tag(sync=True)
    """(x, y) or None: synced on click."""
    cell_size = traitlets.CInt(0, min=0).tag(sync=True)
    """int: CSS pixels per cell (0 = automatic)."""
    unused = traitlets.List(traitlets.CInt(min=0)).tag(sync=True)
    """list[int]: channels the model never uses (e.g. an input that is always 0): drawn greyed out with "unused"
    in the title (values still in the hover) and left out of the automatic ``vmax``."""

    @traitlets.validate("values", "titles")
    def _values_3d(self, proposal: dict):
        v, name = proposal["value"], proposal["trait"].name
        if name == "values" and v.ndim == 2:
            v = v[None]
        values = v if name == "values" else self.values
        values = values[None] if values.ndim == 2 else values  # not yet cross-validated
        titles = v if name == "titles" else self.titles
        if values.size:
            C, W, H = values.shape
            if H == 3 and W != 3 and C != 3 and len(titles) != C:  # [W, H, 3] codes, not [C, 3, 3] maps
                raise traitlets.TraitError(
                    f"ChannelHeatmap.values: expected [C, W, H], got shape {tuple(values.shape)}, which looks like a "
                    f"MiniGrid observation [W={C}, H={W}, 3] (object, colour, state codes on the last axis); pass "
                    "values=np.moveaxis(obs, -1, 0) with titles=['object', 'colour', 'state'] to draw its 3 channels "
                    f"(or give {C} titles if these really are {C} channel maps of {W}x{H} cells)")
            check_count(self, "titles", len(titles), C, f"one per channel (values [C, W, H] has C = {C})")
        return v

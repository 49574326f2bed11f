"""Heatmap widgets: ChannelHeatmap, MatrixHeatmap, AttentionView."""

from __future__ import annotations


import numpy as np
import traitlets

from ._arrays import ArrayTrait, array_serialization
from ._base import DTWidget
from ._traits import IntPair, Labels, OptionalVmax, check_count, fill_steps

__all__ = ["ChannelHeatmap", "MatrixHeatmap", "AttentionView"]

_sync_arr = dict(sync=True, **array_serialization)


class ChannelHeatmap(DTWidget):
    """Small-multiple heatmaps of per-cell values, one map per channel.

    Traits
    ------
    values : float32 array [C, W, H]
        Stored like a MiniGrid observation, ``values[c, x, y]``; drawn with x horizontal and
        y vertical (row 0 at top), i.e. transposed from storage. A 2-D [W, H] input becomes C = 1.
        NaN is drawn hatched grey; ±Inf is clamped to the scale limit and flagged.
    titles : list[str] (len C)
    vmax : float > 0 or None
        Symmetric limit of the blue-white-red scale centred on 0; ``None`` = max |finite value|.
        Editable in the widget (number input).
    annotate : bool
        Write rounded values in the cells (when cells are large enough).
    agent_cell : (x, y) or None
        Outlined in black on every map.
    selected_cell : (x, y) or None
        Synced on click.
    cell_size : int
        CSS pixels per cell (0 = automatic).
    unused : list[int]
        Channels the model never uses (e.g. an input that is always 0): drawn greyed out with
        "unused" in the title (values still in the hover) and left out of the automatic ``vmax``.
    """

    _module = "channel_heatmap"
    values = ArrayTrait(ndim=(2, 3), dtype="float32", shape_doc="[C, W, H]").tag(**_sync_arr)
    titles = Labels().tag(sync=True)
    vmax = OptionalVmax().tag(sync=True)
    annotate = traitlets.Bool(False).tag(sync=True)
    agent_cell = IntPair(None, allow_none=True).tag(sync=True)
    selected_cell = IntPair(None, allow_none=True).tag(sync=True)
    cell_size = traitlets.CInt(0, min=0).tag(sync=True)
    unused = traitlets.List(traitlets.CInt(min=0)).tag(sync=True)

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


class MatrixHeatmap(DTWidget):
    """A labelled [R, C] matrix on a diverging scale (activation patching, QK/OV maps).

    Traits
    ------
    values : float32 array [R, C]   (row 0 at top)
    row_labels : list[str] (len R), col_labels : list[str] (len C)
    title, x_label, y_label : str
    vmax : float > 0 or None (auto = max |finite value|); annotate : bool
    selected_cell : (row, col) or None, synced on click
    cell_size : int (0 = automatic)
    steps : optional int16 [T], episode steps of tokens: labels and title are then templates whose ``{k}``
        shows token k's step (``col_labels=["R{0}", "s{1}"]`` -> ``R₈ s₉``, see
        :func:`~dtwidgets.widgets._traits.fill_steps`); :attr:`shown_col_labels` etc. are the texts as shown
    """

    _module = "matrix_heatmap"
    values = ArrayTrait(ndim=2, dtype="float32", shape_doc="[R, C]").tag(**_sync_arr)
    row_labels = Labels().tag(sync=True)
    col_labels = Labels().tag(sync=True)
    title = traitlets.Unicode("").tag(sync=True)
    x_label = traitlets.Unicode("").tag(sync=True)
    y_label = traitlets.Unicode("").tag(sync=True)
    vmax = OptionalVmax().tag(sync=True)
    annotate = traitlets.Bool(False).tag(sync=True)
    selected_cell = IntPair(None, allow_none=True).tag(sync=True)
    cell_size = traitlets.CInt(0, min=0).tag(sync=True)
    steps = ArrayTrait(ndim=1, dtype="int16", shape_doc="[T]").tag(**_sync_arr)
    """Episode step of each token for the label templates (negative = padding); empty = labels as they are."""

    @property
    def shown_col_labels(self) -> list[str]:
        """Column labels as shown (``steps`` filled in)."""
        return [fill_steps(c, self.steps) for c in self.col_labels]

    @property
    def shown_row_labels(self) -> list[str]:
        """Row labels as shown (``steps`` filled in)."""
        return [fill_steps(r, self.steps) for r in self.row_labels]

    @property
    def shown_title(self) -> str:
        """The title as shown (``steps`` filled in)."""
        return fill_steps(self.title, self.steps)


class AttentionView(DTWidget):
    """Attention patterns, one heatmap per head (rows = queries, columns = keys).

    Traits
    ------
    patterns : float32 array [N_heads_total, Q, K]
        Probabilities in [0, 1] use a white-to-purple scale (1 = darkest); any negative value
        (e.g. raw scores) switches to the diverging scale. A 2-D [Q, K] input becomes one head.
    head_labels : list[str] (len N), e.g. "L0H1"
    token_labels : list[str], e.g. "R1", "s1", "a1"; used for both queries and keys
    steps : optional int16 [T], episode steps of tokens: ``token_labels`` are then templates whose
        ``{k}`` shows the episode step of token ``k`` (:func:`~dtwidgets.widgets._traits.fill_steps`);
        :attr:`shown_token_labels` are the texts as shown
    selected_head : int
        -1 shows all heads as small multiples (click one to select it); i >= 0 shows head i large
        with token labels. Synced both ways.
    """

    _module = "attention_view"
    patterns = ArrayTrait(ndim=(2, 3), dtype="float32", shape_doc="[heads, Q, K]").tag(**_sync_arr)
    head_labels = Labels().tag(sync=True)
    token_labels = Labels().tag(sync=True)
    steps = ArrayTrait(ndim=1, dtype="int16", shape_doc="[T]").tag(**_sync_arr)
    selected_head = traitlets.CInt(-1, min=-1).tag(sync=True)

    @property
    def shown_token_labels(self) -> list[str]:
        """Token labels as shown (``steps`` filled in)."""
        return [fill_steps(t, self.steps) for t in self.token_labels]

    @traitlets.validate("patterns")
    def _patterns_3d(self, proposal: dict) -> np.ndarray:
        v = proposal["value"]
        return v[None] if v.ndim == 2 else v

    @staticmethod
    def labels_for(n_layers: int, n_heads: int) -> list[str]:
        """["L0H0", "L0H1", ...] for layer-major flattened heads."""
        return [f"L{layer}H{h}" for layer in range(n_layers) for h in range(n_heads)]



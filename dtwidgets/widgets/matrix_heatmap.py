"""MatrixHeatmap: a labelled [R, C] matrix on a diverging scale."""

from __future__ import annotations

import traitlets

from ._arrays import SyncedArray
from ._base import DTWidget
from ._traits import IntPair, Labels, OptionalVmax, fill_steps

__all__ = ["MatrixHeatmap"]


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
    values = SyncedArray(2, "float32", "[R, C]")
    row_labels = Labels().tag(sync=True)
    col_labels = Labels().tag(sync=True)
    title = traitlets.Unicode("").tag(sync=True)
    x_label = traitlets.Unicode("").tag(sync=True)
    y_label = traitlets.Unicode("").tag(sync=True)
    vmax = OptionalVmax().tag(sync=True)
    annotate = traitlets.Bool(False).tag(sync=True)
    selected_cell = IntPair(None, allow_none=True).tag(sync=True)
    cell_size = traitlets.CInt(0, min=0).tag(sync=True)
    steps = SyncedArray(1, "int16", "[T]")
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

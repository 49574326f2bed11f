"""MatrixHeatmap: a labelled [R, C] matrix on a diverging scale."""

from __future__ import annotations

import traitlets

from ._arrays import SyncedArray
from ._base import DTWidget
from ._traits import IntPair, Labels, OptionalVmax, fill_steps

__all__ = ["MatrixHeatmap"]


class MatrixHeatmap(DTWidget):
    """A labelled [R, C] matrix on a diverging scale (activation patching, QK/OV maps)."""

    _module = "matrix_heatmap"
    values = SyncedArray(2, "float32", "[R, C]")
    """float32 [R, C] (row 0 at top)."""
    row_labels = Labels().tag(sync=True)
    """list[str] (len R): row labels (templates when ``steps`` is set)."""
    col_labels = Labels().tag(sync=True)
    """list[str] (len C): column labels (templates when ``steps`` is set)."""
    title = traitlets.Unicode("").tag(sync=True)
    """str: title (a template when ``steps`` is set)."""
    x_label = traitlets.Unicode("").tag(sync=True)
    """str: x axis label."""
    y_label = traitlets.Unicode("").tag(sync=True)
    """str: y axis label."""
    vmax = OptionalVmax().tag(sync=True)
    """float > 0 or None: colour-scale limit (None = max |finite value|); editable in the widget."""
    annotate = traitlets.Bool(False).tag(sync=True)
    """Write rounded values in the cells (when cells are large enough)."""
    selected_cell = IntPair(None, allow_none=True).tag(sync=True)
    """(row, col) or None: synced on click."""
    cell_size = traitlets.CInt(0, min=0).tag(sync=True)
    """int: CSS pixels per cell (0 = automatic)."""
    steps = SyncedArray(1, "int16", "[T]")
    """int16 [T]: episode step of each token (negative = padding); labels and title are then templates whose
    ``{k}`` shows token k's step (``col_labels=["R{0}", "s{1}"]`` -> ``R₈ s₉``, see
    :func:`~dtwidgets.widgets._traits.fill_steps`); empty = labels as they are. :attr:`shown_col_labels` etc.
    are the texts as shown."""

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

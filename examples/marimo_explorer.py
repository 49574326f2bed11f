"""The Explorer in marimo: its dtwidgets parts, each wrapped in ``mo.ui.anywidget``, wired by the
Explorer's own Python callbacks; marimo buttons stand in for its ipywidgets buttons.

    marimo run examples/marimo_explorer.py        (or: marimo edit examples/marimo_explorer.py)

marimo draws anywidgets but not ipywidgets containers (the Explorer as a whole is a VBox of
HBoxes and Tabs), so this app lays the parts out with ``mo.hstack`` / ``mo.vstack``. See
docs/frontends.md. Tested by tests/browser/test_marimo.py (drawing, a click, a key and the RTG slider
reach Python).
"""

import marimo

__generated_with = "0.25.2"
app = marimo.App(width="full")


@app.cell
def _():
    import warnings

    import marimo as mo

    from dtwidgets import Explorer

    with warnings.catch_warnings():  # Explorer.demo() warns outside Jupyter; marimo displays it fine
        warnings.simplefilter("ignore")
        explorer = Explorer.demo(rtg=0.9)
    return explorer, mo


@app.cell
def _(explorer, mo):
    grid = mo.ui.anywidget(explorer.grid)            # click a cell; focus it and press the arrow keys
    view = mo.ui.anywidget(explorer.view)            # the agent's 7x7 view
    prefs = mo.ui.anywidget(explorer.prefs)
    rtg = mo.ui.anywidget(explorer.rtg_slider)
    status = mo.ui.anywidget(explorer.status)
    act = mo.ui.button(label="model acts", on_click=lambda _: explorer.act_button.click())
    back = mo.ui.button(label="step back", on_click=lambda _: explorer.back_button.click())
    reset = mo.ui.button(label="reset", on_click=lambda _: explorer.reset_button.click())
    # titles() / keys() read the registry without creating a panel: each is created when first shown
    panels = dict(zip(explorer.panels.titles(), explorer.panels.keys()))
    panel = mo.ui.dropdown(options=panels, value=next(t for t, k in panels.items() if k == "rtg_scan"), label="analysis")
    return act, back, grid, panel, prefs, reset, rtg, status, view


@app.cell
def _(act, back, grid, mo, panel, prefs, reset, rtg, status, view):
    mo.hstack([grid, mo.vstack([view, prefs]),
               mo.vstack([mo.hstack([act, back, reset], justify="start"), rtg, status, panel])],
              justify="start", align="start", wrap=True)
    return


@app.cell
def _(grid, mo):
    # re-runs whenever the grid's synced state changes (marimo reactivity): this text is computed in Python
    cell = grid.value.get("selected_cell")
    mo.md(f"python sees selected cell: `{tuple(cell) if cell else None}`")
    return


@app.cell
def _(mo, rtg):
    mo.md(f"python sees RTG: `{rtg.value['value']:+.2f}`")
    return


@app.cell
def _(explorer, mo, panel):
    # the Explorer computes only the panel shown: choosing one in the dropdown shows (and refreshes) it
    from dtwidgets.widgets import DTWidget

    def dtwidgets_in(w):
        """The dtwidgets views inside an ipywidgets layout, in order (marimo draws these, not the containers)."""
        if isinstance(w, DTWidget):
            return [w]
        return [v for c in getattr(w, "children", ()) for v in dtwidgets_in(c)]

    shown = explorer.show_panel(panel.value)
    mo.vstack([mo.md(f"### {panel.selected_key}")] + [mo.ui.anywidget(w) for w in dtwidgets_in(shown.widget)])
    return


if __name__ == "__main__":
    app.run()
